"""The paper's Table 1 layout over a bench: rows env x learner, columns augmenters, mean ± std over seeds."""
from __future__ import annotations

from collections import defaultdict

import attrs
import numpy as np

from codi_kit.bench.paper import PRIVILEGED, paper_value


@attrs.define
class Entry:
    """One (env, learner, augmenter) over seeds."""
    values: list[float] = attrs.field(factory=list)  # normalised return per seed that finished
    failed: list[str] = attrs.field(factory=list)  # "seed 1: error" per seed that did not
    paper: tuple[float, float] | None = None

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.values)) if self.values else None

    @property
    def std(self) -> float | None:
        return float(np.std(self.values)) if self.values else None


def env_label(record: dict) -> str:
    return record["env"] if record["agents"] is None else f"{record['env']} N={record['agents']}"


def table1(records: list[dict]) -> tuple[list[str], dict[tuple[str, str], dict[str, Entry]]]:
    """(augmenter columns in grid order, {(env label, learner): {augmenter: Entry}})."""
    columns = list(dict.fromkeys(r["augmenter"] for r in records))
    rows: dict[tuple[str, str], dict[str, Entry]] = defaultdict(lambda: {c: Entry() for c in columns})
    for record in records:
        entry = rows[(env_label(record), record["learner"])][record["augmenter"]]
        if record["status"] == "ok":
            results = record["results"]
            entry.values.append(results["normalized_return"])
            entry.paper = paper_value(record["env"], results.get("env_settings"), record["learner"], record["augmenter"])
        else:
            entry.failed.append(f"seed {record['seed']}: {record['error']}")
    return columns, dict(rows)


def best_column(entries: dict[str, Entry]) -> str | None:
    """The highest mean in a row, leaving out privileged columns as the paper does."""
    scored = {c: e.mean for c, e in entries.items() if e.mean is not None and c not in PRIVILEGED}
    return max(scored, key=scored.get) if scored else None


def cell_text(entry: Entry, bold: bool) -> str:
    if entry.mean is None:
        text = "failed"
    else:
        text = f"{entry.mean:.2f} ± {entry.std:.2f}"
        text = f"**{text}**" if bold else text
        if entry.failed:
            text += f" ({len(entry.values)} of {len(entry.values) + len(entry.failed)} seeds)"
    if entry.paper is not None:
        text += f" (paper {entry.paper[0]:.2f} ± {entry.paper[1]:.2f})"
    return text


def table1_markdown(records: list[dict]) -> list[str]:
    columns, rows = table1(records)
    lines = ["| env | learner | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    for (env, learner), entries in rows.items():
        best = best_column(entries)
        lines.append(f"| {env} | {learner} | " + " | ".join(cell_text(entries[c], c == best) for c in columns) + " |")
    return lines
