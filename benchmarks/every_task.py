"""CODI on every task of the paper's Table 1: one JSON from the bench folders of each task.

    codi-kit bench --env mpe/world --augmenter none,codi-w-pri,codi --learner bc,omiga \\
        --seeds 0,1,2 --profile quick --out bench-world
    python benchmarks/every_task.py bench-world [bench-cn ...] [--merge]

``--merge`` keeps the rows of the existing JSON for the (env, augmenter, learner) cells the given
folders do not hold, and adds the folders' seeds to a cell the JSON already has (a seed both hold
is taken from the folders), so tasks and extra seeds benchmarked in different sessions gather in
one file; every row names the bench folder(s) and the git commit(s) it came from (``source``). A bench run with ``--set
augmenter.KEY=VALUE`` or ``label.KEY=VALUE`` gives rows of their own (``variant``), so ablations of one augmenter sit side
by side (``--name composition`` for the composition grid); Original (``none``) reads neither, so its
rows have no variant and join the Original seeds of every bench.

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
from common import RESULTS, save  # noqa: E402

from codi_kit.bench.paper import paper_value  # noqa: E402


def records(benches: tuple[Path, ...]) -> list[dict]:
    """Every finished cell, with its bench folder, commit and ``variant``: the bench's ``--set``
    augmenter and label settings (e.g. ``augmenter.label_embedding="team"``, ``label.pool="episode"``),
    empty for the defaults."""
    rows = []
    for bench in benches:
        grid = json.loads((bench / "bench.json").read_text())["grid"]
        variant = " ".join(sorted(s for s in grid.get("set", []) if s.startswith(("augmenter.", "label."))))
        for line in (bench / "results.jsonl").read_text().splitlines():
            record = json.loads(line)
            if record["status"] == "ok":
                commit = (record["results"].get("versions") or {}).get("git_commit")
                rows.append({**record, "bench": str(bench), "commit": commit,
                             "variant": "" if record["augmenter"] == "none" else variant})
    return rows


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _source(pairs: set) -> dict:
    """The bench folder(s) and the git commit(s) the cells ran at."""
    return {"bench": ",".join(sorted({b for b, _ in pairs})), "commit": ",".join(sorted({str(c) for _, c in pairs}))}


def cells(rows: list[dict]) -> list[dict]:
    """One row per (env, agents, augmenter, variant, learner), with where it came from (``source``)."""
    groups, benches = defaultdict(dict), defaultdict(set)
    for r in rows:
        key = (r["env"], r["agents"], r["augmenter"], r["variant"], r["learner"])
        groups[key][r["seed"]] = r["results"]
        benches[key].add((r["bench"], r["commit"]))
    out = []
    for key, by_seed in sorted(groups.items(), key=str):
        env, agents, augmenter, variant, learner = key
        values = [by_seed[s]["normalized_return"] for s in sorted(by_seed)]
        paper = paper_value(env, next(iter(by_seed.values())).get("env_settings"), learner, augmenter)
        out.append({"env": env, "agents": agents, "augmenter": augmenter, "variant": variant, "learner": learner,
                    "seeds": sorted(by_seed), "normalized_return": values,
                    "normalized_return_mean": float(np.mean(values)),
                    "normalized_return_std": float(np.std(values)),
                    "paper": list(paper) if paper else None, "source": _source(benches[key])})
    return out


def data_quality(rows: list[dict]) -> list[dict]:
    """Labels and generated data per (env, augmenter): one value per seed (learners share them)."""
    groups, benches = defaultdict(dict), defaultdict(set)
    for r in rows:
        if r["augmenter"] != "none":
            key = (r["env"], r["agents"], r["augmenter"], r["variant"])
            groups[key][r["seed"]] = r["results"]
            benches[key].add((r["bench"], r["commit"]))
    out = []
    for key, by_seed in sorted(groups.items(), key=str):
        env, agents, augmenter, variant = key
        stats = [res.get("label_stats") or {} for res in by_seed.values()]
        check = [res.get("generated_versus_dataset") or {} for res in by_seed.values()]
        out.append({"env": env, "agents": agents, "augmenter": augmenter, "variant": variant, "seeds": sorted(by_seed),
                    "teacher_accuracy": _mean([s.get("teacher_accuracy") for s in stats]),
                    "student_accuracy": _mean([s.get("student_accuracy") for s in stats]),
                    "measure": next((c["measure"] for c in check if c), None),
                    "generated": _mean([c.get("generated") for c in check]),
                    "dataset": _mean([c.get("dataset") for c in check]), "source": _source(benches[key])})
    return out


@click.command()
@click.argument("benches", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--name", default="every-task", show_default=True)
@click.option("--merge", is_flag=True, help="Keep the existing JSON's rows for cells these folders do not hold.")
def main(benches: tuple[Path, ...], name: str, merge: bool) -> None:
    rows = records(benches)
    table, data = cells(rows), data_quality(rows)
    profiles = {r["results"]["profile"] for r in rows}
    path = RESULTS / f"{name}.json"
    if merge and path.exists():
        old = json.loads(path.read_text())
        before = {"bench": ",".join(old.get("benches", [])), "commit": old.get("versions", {}).get("git_commit")}
        table = _merged(table, old["rows"], before, _join_returns)
        data = _merged(data, old["data"], before, _join_quality)
        profiles |= set(old.get("profiles", []))
    benches_used = sorted({r["source"]["bench"] for r in table + data})
    save(name, {"benches": benches_used, "profiles": sorted(profiles),
                "rows": sorted(table, key=_order), "data": sorted(data, key=_order)})


def _merged(new: list[dict], old: list[dict], before: dict, join) -> list[dict]:
    """``new`` plus the old rows: a cell only the old JSON has is kept as it was; a cell both have
    gets the old seeds the new rows lack, joined by ``join(new_row, old_row, old_seeds)``."""
    by_key = {_key(r): r for r in new}
    out = list(new)
    for row in old:
        row = {"source": before, **row, "variant": row.get("variant") or ""}
        mine = by_key.get(_key(row))
        if mine is None:
            out.append(row)
            continue
        extra = [s for s in row["seeds"] if s not in mine["seeds"]]
        if extra:
            out[out.index(mine)] = {**join(mine, row, extra), "seeds": sorted(mine["seeds"] + extra),
                                    "source": {k: ",".join(sorted(set(mine["source"][k].split(",")) |
                                                                  set(str(row["source"][k]).split(","))))
                                               for k in ("bench", "commit")}}
    return out


def _join_returns(mine: dict, row: dict, extra: list) -> dict:
    """Per-seed returns of both, in seed order, and their mean and std."""
    by_seed = dict(zip(row["seeds"], row["normalized_return"])) | dict(zip(mine["seeds"], mine["normalized_return"]))
    values = [by_seed[s] for s in sorted(mine["seeds"] + extra)]
    return {**mine, "normalized_return": values, "normalized_return_mean": float(np.mean(values)),
            "normalized_return_std": float(np.std(values))}


def _join_quality(mine: dict, row: dict, extra: list) -> dict:
    """Means over the seeds of both, each weighted by its number of seeds. The old row holds only its
    mean, so where its seeds overlap the new ones that mean stands in for its extra seeds alone."""
    def weighted(field):
        pairs = [(mine.get(field), len(mine["seeds"])), (row.get(field), len(extra))]
        pairs = [(v, n) for v, n in pairs if v is not None]
        return sum(v * n for v, n in pairs) / sum(n for _, n in pairs) if pairs else None
    return {**mine, **{f: weighted(f) for f in ("teacher_accuracy", "student_accuracy", "generated", "dataset")}}


def _key(row: dict) -> tuple:
    return row["env"], row.get("agents"), row["augmenter"], row.get("variant", ""), row.get("learner")


def _order(row: dict) -> tuple:
    return tuple(str(v) for v in _key(row))


if __name__ == "__main__":
    main()
