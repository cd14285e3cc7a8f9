"""The offline learners on the imbalanced CN dataset: normalised return, update rate, wall time.

    python benchmarks/learners.py [--profile quick] [--seeds 0,1,2] [--learners bc,bc50,omar,omiga]

Collects one imbalanced mpe/cn dataset (N=3, the profile's episode count, seed 0), then trains and
evaluates each learner with each seed through the real pipeline (greedy evaluation, and sampled as
a second number). Writes benchmarks/results/learners.json and prints a table.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from common import save  # noqa: E402

from codi_kit.run.config import build_config  # noqa: E402
from codi_kit.envs.evaluate import evaluate  # noqa: E402
from codi_kit.data.collect import normalization_of  # noqa: E402
from codi_kit.run.pipeline import Pipeline  # noqa: E402
from codi_kit.progress import set_quiet  # noqa: E402


def run_one(profile, learner, seed, dataset, root, overrides):
    config = build_config(profile, overrides=[f"collect.dataset={json.dumps(str(dataset))}", *overrides],
                          **{"learner.name": learner, "seed": seed, "device": "cpu"})
    pipeline = Pipeline(config, root / f"{learner}-s{seed}")
    try:
        results = pipeline.report()
        steps = pipeline.component("learner")[1]["steps"]
        learn_seconds = pipeline.artifacts["learn"].meta()["seconds"]
        policy = pipeline.build("learner").load(pipeline.artifacts["learn"].folder, pipeline.context())
        sampled = evaluate(pipeline.env, policy, int(config["evaluate"]["episodes"]), seed,
                           normalization_of(pipeline.dataset()), greedy=False)
    finally:
        pipeline.close()
    return {"seed": seed, "normalized_return": results["normalized_return"], "return_mean": results["return_mean"],
            "sampled_normalized_return": sampled["normalized_return"], "steps": steps,
            "updates_per_second": steps / learn_seconds, "learn_seconds": learn_seconds}


@click.command()
@click.option("--profile", default="quick", show_default=True)
@click.option("--seeds", default="0,1,2", show_default=True)
@click.option("--learners", default="bc,bc50,omar,omiga", show_default=True)
@click.option("--set", "overrides", multiple=True, help="Extra settings, e.g. evaluate.episodes=200.")
@click.option("--root", default="benchmarks/runs", show_default=True, type=click.Path(file_okay=False))
@click.option("--name", default="learners", show_default=True, help="Results file: benchmarks/results/NAME.json.")
def main(profile, seeds, learners, overrides, root, name):
    set_quiet(True)
    root = Path(root)
    dataset = root / f"cn3-imbalanced-{profile}.npz"
    if not dataset.exists():
        from codi_kit.cli import main as cli

        cli(["collect", "--env", "mpe/cn", "--protocol", "imbalanced", "--seed", "0", "--profile", profile,
             "--out", str(dataset), "--quiet"], standalone_mode=False)
    summary, table = [], Table(title=f"learners on imbalanced mpe/cn (N=3), profile {profile}")
    for column in ("learner", "normalised return (greedy)", "sampled", "updates/s", "wall s (learn)"):
        table.add_column(column)
    for learner in learners.split(","):
        started = time.perf_counter()
        runs = [run_one(profile, learner, int(seed), dataset, root, overrides) for seed in seeds.split(",")]
        greedy = np.array([r["normalized_return"] for r in runs])
        sampled = np.array([r["sampled_normalized_return"] for r in runs])
        row = {"learner": learner, "runs": runs, "normalized_return_mean": float(greedy.mean()),
               "normalized_return_std": float(greedy.std()), "sampled_mean": float(sampled.mean()),
               "sampled_std": float(sampled.std()),
               "updates_per_second": float(np.mean([r["updates_per_second"] for r in runs])),
               "learn_seconds_mean": float(np.mean([r["learn_seconds"] for r in runs])),
               "wall_seconds": time.perf_counter() - started}
        summary.append(row)
        table.add_row(learner, f"{row['normalized_return_mean']:.3f} ± {row['normalized_return_std']:.3f}",
                      f"{row['sampled_mean']:.3f} ± {row['sampled_std']:.3f}", f"{row['updates_per_second']:.0f}",
                      f"{row['learn_seconds_mean']:.1f}")
    Console().print(table)
    save(name, {"profile": profile, "dataset": str(dataset), "seeds": seeds, "overrides": list(overrides),
                      "rows": summary})


if __name__ == "__main__":
    main()
