"""The quick ``codi-kit run`` as a new user runs it, before and after a change, on one machine in one invocation.

    python benchmarks/run_time.py [--before REF] [--seeds 0,1,2] [--profile quick] [--name run_time]

``--before`` is a git commit (default: the last commit before the speed work of issue 28); its
source is exported to a temporary folder and run with this environment's Python and packages, so
both sides differ only in the project's code. For every seed, the two run one after the other
(before, after), so a drift in the machine's speed touches both alike. Each is a fresh
``codi-kit run --seed S`` in an empty run directory: the wall time of the whole command (without
installing), the seconds of every stage (the original-data learner's included), the train stage's
updates per second, and BC's normalised return with and without CODI's data and the gain.
Writes benchmarks/results/NAME.json and prints a table.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from common import save  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BEFORE = "a951a3d"  # main before issue 28
STAGES = ("collect", "label", "train", "generate", "learn", "evaluate", "report")


def source_tree(ref: str | None, folder: Path) -> Path:
    """A folder to put first on PYTHONPATH so that ``codi_kit`` and ``codi_kit_plugins`` are the
    code of ``ref`` (None: this working tree)."""
    tree = ROOT
    if ref is not None:
        tree = folder / "source"
        tree.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "codi_kit", "plugins"], check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    imports = folder / "imports"
    imports.mkdir()
    (imports / "codi_kit").symlink_to(tree / "codi_kit")
    (imports / "codi_kit_plugins").symlink_to(tree / "plugins")
    return imports


def quick_run(imports: Path, seed: int, folder: Path, profile: str) -> dict:
    """One ``codi-kit run --seed SEED`` in a fresh run directory, from a neutral working directory."""
    out = folder / f"run-s{seed}"
    environment = dict(os.environ, PYTHONPATH=str(imports))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "codi_kit.cli", "run", "--quiet", "--profile", profile, "--seed", str(seed),
                    "--out", str(out)], check=True, cwd=folder, env=environment, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    results = json.loads((out / "results.json").read_text())
    baseline = results["baseline"]
    stages = {stage: results["timings"].get(stage, 0.0) for stage in STAGES}
    stages["learn_original"] = baseline["timings"]["learn"]
    stages["evaluate_original"] = baseline["timings"]["evaluate"]
    updates = results["train_diagnostics"]["updates"]
    return {"seed": seed, "wall_seconds": wall, "stage_seconds": stages,
            "train_updates": updates, "train_updates_per_second": updates / stages["train"],
            "bc_codi": results["normalized_return"], "bc_original": baseline["normalized_return"],
            "gain": results["gain"],
            "generated_expert_agreement": results["augment_diagnostics"]["behaviour_generated"]["expert_agreement"],
            "dataset_expert_agreement": results["augment_diagnostics"]["behaviour_dataset"]["expert_agreement"]}


def summary(runs: list[dict]) -> dict:
    def spread(values):
        return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0}

    return {"wall_seconds_median": statistics.median(r["wall_seconds"] for r in runs),
            "stage_seconds_mean": {s: statistics.mean(r["stage_seconds"][s] for r in runs) for s in runs[0]["stage_seconds"]},
            "train_updates_per_second_median": statistics.median(r["train_updates_per_second"] for r in runs),
            **{key: spread([r[key] for r in runs]) for key in ("bc_codi", "bc_original", "gain", "generated_expert_agreement")}}


@click.command()
@click.option("--before", default=BEFORE, show_default=True, help="git commit to compare with")
@click.option("--seeds", default="0,1,2", show_default=True)
@click.option("--profile", default="quick", show_default=True, help="the runs' profile (smoke: a check of this script)")
@click.option("--name", default="run_time", show_default=True, help="results file name")
def main(before, seeds, profile, name):
    seeds = [int(s) for s in seeds.split(",")]
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", before], check=True, capture_output=True,
                            text=True).stdout.strip()
    runs = {"before": [], "after": []}
    with tempfile.TemporaryDirectory(prefix="codi-run-time-") as temporary:
        folders = {side: Path(temporary) / side for side in runs}
        imports = {}
        for side, folder in folders.items():
            folder.mkdir()
            imports[side] = source_tree(commit if side == "before" else None, folder)
        for seed in seeds:
            for side in runs:
                runs[side].append(quick_run(imports[side], seed, folders[side], profile))
                print(side, json.dumps(runs[side][-1]), flush=True)
    summaries = {side: summary(side_runs) for side, side_runs in runs.items()}
    table = Table(title=f"{profile} codi-kit run, before ({commit[:7]}) and after, seeds {seeds}")
    for column in ("", "wall s (median)", *STAGES[:-1], "learn original", "train updates/s", "BC original", "BC + CODI",
                   "gain", "agreement"):
        table.add_column(column)
    for side, s in summaries.items():
        stage = s["stage_seconds_mean"]
        table.add_row(side, f"{s['wall_seconds_median']:.0f}", *(f"{stage[k]:.1f}" for k in STAGES[:-1]),
                      f"{stage['learn_original']:.1f}", f"{s['train_updates_per_second_median']:.1f}",
                      *(f"{s[k]['mean']:.2f} ± {s[k]['std']:.2f}" for k in ("bc_original", "bc_codi", "gain")),
                      f"{s['generated_expert_agreement']['mean']:.3f}")
    Console(width=200).print(table)
    save(name, {"before_commit": commit, "profile": profile, "seeds": seeds, "runs": runs, "summary": summaries,
                "speedup_wall": summaries["before"]["wall_seconds_median"] / summaries["after"]["wall_seconds_median"]})


if __name__ == "__main__":
    main()
