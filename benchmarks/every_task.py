"""CODI on every task of the paper's Table 1: one JSON from the bench folders of each task.

    codi-kit bench --env mpe/world --augmenter none,codi-w-pri,codi --learner bc,omiga \\
        --seeds 0,1,2 --profile quick --out bench-world
    python benchmarks/every_task.py bench-world [bench-cn ...]

Writes benchmarks/results/every-task.json: one row per (env, augmenter, learner) with
``normalized_return_mean``, ``normalized_return_std`` (over seeds), the per-seed values and the
paper's Table 1 value where it has the row; and per (env, augmenter) the label accuracy (teacher,
student; means over seeds) and the generated data's agreement with the expert (or the env's quality
score) against the dataset's, as the generate stage measured them.
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

from codi_kit.bench.paper import paper_value  # noqa: E402


def records(benches: tuple[Path, ...]) -> list[dict]:
    rows = []
    for bench in benches:
        for line in (bench / "results.jsonl").read_text().splitlines():
            record = json.loads(line)
            if record["status"] == "ok":
                rows.append({**record, "bench": str(bench)})
    return rows


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def cells(rows: list[dict]) -> list[dict]:
    groups = defaultdict(dict)
    for r in rows:
        groups[(r["env"], r["agents"], r["augmenter"], r["learner"])][r["seed"]] = r["results"]
    out = []
    for (env, agents, augmenter, learner), by_seed in sorted(groups.items(), key=str):
        values = [by_seed[s]["normalized_return"] for s in sorted(by_seed)]
        paper = paper_value(env, next(iter(by_seed.values())).get("env_settings"), learner, augmenter)
        out.append({"env": env, "agents": agents, "augmenter": augmenter, "learner": learner,
                    "seeds": sorted(by_seed), "normalized_return": values,
                    "normalized_return_mean": float(np.mean(values)),
                    "normalized_return_std": float(np.std(values)),
                    "paper": list(paper) if paper else None})
    return out


def data_quality(rows: list[dict]) -> list[dict]:
    """Labels and generated data per (env, augmenter): one value per seed (learners share them)."""
    groups = defaultdict(dict)
    for r in rows:
        if r["augmenter"] != "none":
            groups[(r["env"], r["agents"], r["augmenter"])][r["seed"]] = r["results"]
    out = []
    for (env, agents, augmenter), by_seed in sorted(groups.items(), key=str):
        stats = [res.get("label_stats") or {} for res in by_seed.values()]
        check = [res.get("generated_versus_dataset") or {} for res in by_seed.values()]
        out.append({"env": env, "agents": agents, "augmenter": augmenter, "seeds": sorted(by_seed),
                    "teacher_accuracy": _mean([s.get("teacher_accuracy") for s in stats]),
                    "student_accuracy": _mean([s.get("student_accuracy") for s in stats]),
                    "measure": next((c["measure"] for c in check if c), None),
                    "generated": _mean([c.get("generated") for c in check]),
                    "dataset": _mean([c.get("dataset") for c in check])})
    return out


@click.command()
@click.argument("benches", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--name", default="every-task", show_default=True)
def main(benches: tuple[Path, ...], name: str) -> None:
    rows = records(benches)
    profiles = sorted({r["results"]["profile"] for r in rows})
    save(name, {"benches": [str(b) for b in benches], "profiles": profiles,
                "rows": cells(rows), "data": data_quality(rows)})


if __name__ == "__main__":
    main()
