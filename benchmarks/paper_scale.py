"""CODI at the paper's data scale on a CPU: the ``standard`` profile's bench on CN N = 3.

    python benchmarks/paper_scale.py [--augmenter none,codi] [--learner bc,omiga] [--seeds 0,1,2] [--bench DIR]

Runs (or resumes: finished stages and cells are reused) ``codi-kit bench --profile standard``
into ``--bench`` and writes benchmarks/results/NAME.json: one row per (env, augmenter, learner)
with ``normalized_return_mean``, ``normalized_return_std`` and the per-seed values, the paper's
Table 1 value beside it, each learner's budget (updates, batch) and its convergence evidence: the
held-out validation loss curve where the learner has one (BC, 50%BC: early stopping reads it) and
the periodic evaluation curve (rollouts on episodes the final evaluation never uses).
"""
from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import save  # noqa: E402

from codi_kit.bench.backends import LocalBackend  # noqa: E402
from codi_kit.bench.grid import load_grid  # noqa: E402
from codi_kit.bench.paper import paper_value  # noqa: E402
from codi_kit.bench.runner import run_bench  # noqa: E402
from codi_kit.bench.table import table1_markdown  # noqa: E402
from codi_kit.data.dataset import FIELDS, Dataset  # noqa: E402

CURVE_KEYS = ("loss", "validation_loss", "q_loss", "actor_loss", "z_std", "eval_normalized_return")


def curve(bench: Path, results: dict) -> list[dict]:
    metrics = bench / "stages" / results["artifacts"]["learn"] / "metrics.jsonl"
    if not metrics.exists():
        return []
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    return [{k: r[k] for k in ("step", *CURVE_KEYS) if k in r} for r in records if "step" in r]


def data_bytes(bench: Path, records: list[dict]) -> dict | None:
    """What the first CODI cell's learner data takes unmerged (the parts' arrays) against what
    ``Dataset.merge`` would allocate padding every episode to the longest."""
    cell = next((r for r in records if r["status"] == "ok" and r["augmenter"] != "none"), None)
    if cell is None:
        return None
    stages = bench / "stages"
    original = Dataset.load(stages / cell["results"]["artifacts"]["collect"] / "dataset.npz")
    generated = Dataset.load(stages / cell["results"]["artifacts"]["generate"] / "generated.npz")

    def held(dataset):
        return sum(getattr(dataset, f).nbytes for f in FIELDS if getattr(dataset, f) is not None)

    merged = Dataset.merge(original.select(slice(0, 2)), generated.select(slice(0, 2)))  # which fields merging keeps
    length = merged.padded_length
    per_episode = {f: getattr(merged, f).nbytes / 4 for f in FIELDS if getattr(merged, f) is not None}
    return {"original_episodes": original.episodes, "generated_episodes": generated.episodes,
            "generated_transitions": int(generated.transition_mask().sum()), "padded_length": length,
            "parts_bytes": held(original) + held(generated),
            "merged_bytes": int(sum(per_episode.values()) * (original.episodes + generated.episodes))}


def rows_of(records: list[dict], bench: Path) -> list[dict]:
    grouped = defaultdict(list)
    for record in records:
        if record["status"] == "ok":
            grouped[(record["env"], record["augmenter"], record["learner"])].append(record)
    rows = []
    for (env, augmenter, learner), cells in grouped.items():
        values = [c["results"]["normalized_return"] for c in cells]
        first = cells[0]["results"]
        learn_settings = first.get("learner_settings") or {}
        rows.append({
            "env": env, "augmenter": augmenter, "learner": learner,
            "normalized_return_mean": float(np.mean(values)), "normalized_return_std": float(np.std(values)),
            "per_seed": {str(c["seed"]): c["results"]["normalized_return"] for c in cells},
            "paper": paper_value(env, first.get("env_settings"), learner, augmenter),
            "learner_steps": first.get("learner_steps"), "learner_settings": learn_settings,
            "dataset_episodes": first.get("dataset_episodes"), "generated_episodes": first.get("generated_episodes"),
            "curves": {str(c["seed"]): curve(bench, c["results"]) for c in cells},
        })
    return rows


@click.command()
@click.option("--augmenter", default="none,codi", show_default=True)
@click.option("--learner", default="bc,omiga", show_default=True)
@click.option("--seeds", default="0,1,2", show_default=True)
@click.option("--set", "overrides", multiple=True, help="A setting for every cell.")
@click.option("--bench", "bench", default="benchmarks/runs/paper-scale", show_default=True, type=click.Path(file_okay=False))
@click.option("--workers", default=2, show_default=True)
@click.option("--name", default="paper-scale", show_default=True)
def main(augmenter, learner, seeds, overrides, bench, workers, name):
    grid = load_grid(None, env=("mpe/cn",), agents=(), augmenter=(augmenter,), learner=(learner,), seeds=seeds,
                     labeler=None, profile="standard", set=overrides, device="cpu")
    backend = LocalBackend(workers)
    try:
        records = run_bench(grid, bench, backend)
    finally:
        backend.close()
    table = table1_markdown(records)
    print("\n".join(table))
    summary = json.loads((Path(bench) / "bench.json").read_text())
    save(name, {"command": " ".join(sys.argv), "profile": "standard", "bench": summary, "table": table,
                "rows": rows_of(records, Path(bench)), "learner_data_bytes": data_bytes(Path(bench), records),
                "failed": [{"cell": r["cell"], "error": r["error"]} for r in records if r["status"] != "ok"]})


if __name__ == "__main__":
    main()
