"""The bench's figures: a bar chart per environment, and the paper's Figure 4 (normalised return
against the number of agents) when the grid spans ``env.agents``."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from codi_kit.bench.table import table1
from codi_kit.report.run_report import pyplot, save_figure


def slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in text).strip("-")


def bar_charts(records: list[dict], folder: Path) -> list[Path]:
    """One PNG per env: grouped bars (learners x augmenters), error bars one std over seeds."""
    plt = pyplot()
    columns, rows = table1(records)
    written = []
    for env in dict.fromkeys(env for env, _ in rows):
        learners = [learner for e, learner in rows if e == env]
        figure, axis = plt.subplots(figsize=(max(4.0, 1.6 * len(learners) * max(1, len(columns)) / 2), 3.6))
        width = 0.8 / len(columns)
        for index, column in enumerate(columns):
            entries = [rows[(env, learner)][column] for learner in learners]
            means = [e.mean if e.mean is not None else np.nan for e in entries]
            stds = [e.std if e.std is not None else 0.0 for e in entries]
            axis.bar(np.arange(len(learners)) + (index - (len(columns) - 1) / 2) * width, means, width, yerr=stds,
                     capsize=3, label=column)
        axis.axhline(0, color="grey", linewidth=0.8)
        axis.axhline(1, color="grey", linewidth=0.8, linestyle="--")
        axis.set_xticks(np.arange(len(learners)), learners)
        axis.set_ylabel("normalised return")
        axis.set_title(env)
        axis.legend(fontsize=8)
        written.append(save_figure(figure, folder / f"bars-{slug(env)}.png"))
    return written


def agents_figure(records: list[dict], folder: Path) -> list[Path]:
    """Per env with several agent counts: normalised return (mean ± std over seeds) against agents,
    one line per augmenter, one panel per learner (the paper's Figure 4)."""
    plt = pyplot()
    by_env = defaultdict(list)
    for record in records:
        if record["status"] == "ok" and record["agents"] is not None:
            by_env[record["env"]].append(record)
    written = []
    for env, found in by_env.items():
        counts = sorted({r["agents"] for r in found})
        if len(counts) < 2:
            continue
        learners = list(dict.fromkeys(r["learner"] for r in found))
        figure, axes = plt.subplots(1, len(learners), figsize=(4 * len(learners), 3.4), squeeze=False)
        for axis, learner in zip(axes[0], learners):
            for augmenter in dict.fromkeys(r["augmenter"] for r in found):
                points = [(n, [r["results"]["normalized_return"] for r in found
                               if r["agents"] == n and r["learner"] == learner and r["augmenter"] == augmenter])
                          for n in counts]
                points = [(n, v) for n, v in points if v]
                if points:
                    axis.errorbar([n for n, _ in points], [np.mean(v) for _, v in points],
                                  yerr=[np.std(v) for _, v in points], marker="o", capsize=3, label=augmenter)
            axis.axhline(0, color="grey", linewidth=0.8)
            axis.set_xticks(counts)
            axis.set_xlabel("agents")
            axis.set_title(f"{env}, {learner}")
        axes[0][0].set_ylabel("normalised return")
        axes[0][-1].legend(fontsize=8)
        written.append(save_figure(figure, folder / f"agents-{slug(env)}.png"))
    return written

