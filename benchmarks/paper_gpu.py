"""CODI at the authors' CN configuration (``--profile paper``) on a GPU inside a fixed time budget.

    python benchmarks/paper_gpu.py --dataset benchmarks/runs/cn3-imbalanced-quick.npz --budget 540 --results DIR

1. Measures the device (benchmarks/gpu.py: training segment samples/s, composed guidance).
2. Starts BC and OMIGA on the original data (their own run directory) in the background.
3. Labels (rule labeler, the toolkit's default CODI), then trains the paper U-Net for as many
   updates as the measured rate fits into the time left, generates as many episodes (up to the
   paper's 20k) as the measured guidance speed fits, and trains BC and OMIGA on original +
   generated data, side by side.
4. Writes DIR/paper_gpu.json: every run's results.json, the updates and segment samples reached,
   the timings, and the paper's CN row beside ours.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import click

HERE = Path(__file__).parent
PAPER_CN = {"original": {"bc": 0.21, "omiga": 0.66}, "madiff": {"bc": 0.33, "omiga": 0.93},
            "codi": {"bc": 0.58, "omiga": 0.96}}  # CODI paper (AAMAS 2026) Table 1, CN row


def codi_kit(*arguments, out: Path, log, timeout: float | None = None, wait: bool = True):
    command = ["codi-kit", *arguments, "--out", str(out), "--quiet"]
    log.write(f"$ {' '.join(command)}\n")
    log.flush()
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    if not wait:
        return process
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
    if process.returncode:
        raise SystemExit(f"failed ({process.returncode}): {' '.join(command)}")
    return process


@click.command()
@click.option("--dataset", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--budget", default=540.0, show_default=True, help="Seconds for the whole script.")
@click.option("--root", default="runs/paper-gpu", show_default=True)
@click.option("--results", default="benchmarks/results", show_default=True)
@click.option("--device", default="cuda", show_default=True)
@click.option("--guidance-batch", default=1024, show_default=True)
@click.option("--learner-steps", default=10000, show_default=True)
@click.option("--reserve", default=230.0, show_default=True, help="Seconds kept for generation and learners after training.")
def main(dataset, budget, root, results, device, guidance_batch, learner_steps, reserve):
    started = time.perf_counter()
    root, results = Path(root), Path(results)
    results.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("OMP_NUM_THREADS", "4")
    log = open(results / "paper_gpu.log", "a")
    summary = {"dataset": dataset, "budget_seconds": budget, "learner_steps": learner_steps, "paper_cn": PAPER_CN,
               "seconds": {}}

    def lap(name, since):
        summary["seconds"][name] = time.perf_counter() - since
        write()

    def write():
        (results / "paper_gpu.json").write_text(json.dumps(summary, indent=1, default=str))

    since = time.perf_counter()
    subprocess.run([sys.executable, str(HERE / "gpu.py"), "--dataset", dataset, "--seconds", "6", "--device", device,
                    "--guidance-batch", str(guidance_batch)], check=True,
                   stdout=log, stderr=subprocess.STDOUT)
    gpu = json.loads((HERE / "results" / "gpu.json").read_text())
    shutil.copy(HERE / "results" / "gpu.json", results / "gpu.json")
    summary["device_name"] = gpu["device_name"]
    lap("device benchmark", since)

    common = ["--dataset", dataset, "--profile", "paper", "--device", device, "--set", f"learner.steps={learner_steps}"]
    originals = [codi_kit("run", *common, "--augmenter", "none", "--learner", learner, out=root / f"original-{learner}",
                          log=log, wait=False) for learner in ("bc", "omiga")]

    codi = [*common, "--augmenter", "codi", "--labeler", "rule"]
    since = time.perf_counter()
    codi_kit("label", *codi, out=root / "codi", log=log)
    lap("label", since)

    rate = gpu["training"]["paper (U-Net)"]["updates_per_second"]
    train_seconds = budget - (time.perf_counter() - started) - reserve
    updates = max(10, int(rate * train_seconds * 0.9))  # 0.9: the dynamics models train beside the denoiser
    summary.update({"train_updates": updates, "segment_samples": updates * 64, "paper_segment_samples": 500000 * 64})
    codi += ["--set", f"augmenter.train_steps={updates}"]
    since = time.perf_counter()
    codi_kit("train", *codi, out=root / "codi", log=log)
    lap("train", since)

    composed = gpu["guidance"]["paper (U-Net)"]["batched_seconds"]  # one composed denoising pass of a batch
    passes_per_episode = 15 * 4 * 4 / guidance_batch  # 15 DDIM steps x ~4 segments x resampling slack, per episode
    episodes = int(min(20000, max(16, 90.0 / (composed * passes_per_episode))))
    since = time.perf_counter()
    for attempt in range(2):  # a model that passes few consistency checks resamples more: then ask for fewer
        summary["generated_episodes_asked"] = episodes
        try:
            codi_kit("generate", *codi, "--set", f"augmenter.generated_episodes={episodes}", "--set",
                     "augmenter.diagnostics_segments=128", out=root / "codi", log=log, timeout=150 if attempt == 0 else 90)
            break
        except subprocess.TimeoutExpired:
            summary.setdefault("generation_timeouts", []).append(episodes)
            episodes = max(16, episodes // 5)
    codi += ["--set", f"augmenter.generated_episodes={episodes}", "--set", "augmenter.diagnostics_segments=128"]
    lap("generate", since)

    since = time.perf_counter()
    for learner in ("bc", "omiga"):  # each learner its own copy of the shared stages: both run at once
        shutil.copytree(root / "codi", root / f"codi-{learner}", dirs_exist_ok=True)
    augmented = [codi_kit("run", *codi, "--learner", learner, out=root / f"codi-{learner}", log=log, wait=False)
                 for learner in ("bc", "omiga")]
    for process in originals + augmented:
        try:
            process.wait(timeout=max(1.0, budget - (time.perf_counter() - started)))
        except subprocess.TimeoutExpired:  # out of budget: report what finished
            process.kill()
    lap("learners (after generation)", since)

    summary["runs"] = {}
    for name in ("original-bc", "original-omiga", "codi-bc", "codi-omiga"):
        path = root / name / "results.json"
        summary["runs"][name] = json.loads(path.read_text()) if path.exists() else None
    summary["normalized_return"] = {name: (run or {}).get("normalized_return") for name, run in summary["runs"].items()}
    summary["seconds"]["total"] = time.perf_counter() - started
    write()
    print(json.dumps({k: summary[k] for k in ("device_name", "train_updates", "segment_samples",
                                              "generated_episodes_asked", "normalized_return", "seconds")}, indent=1))


if __name__ == "__main__":
    main()
