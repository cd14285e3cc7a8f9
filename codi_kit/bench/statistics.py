"""Aggregate statistics over a bench, as the field reports them (Agarwal et al. 2021, "Deep RL at the
Edge of the Statistical Precipice"; Gorsane et al. 2022 for cooperative MARL): per learner and augmenter
column, the interquartile mean (IQM) and mean over every (task, seed) score with 95% stratified
bootstrap confidence intervals, and the probability that CODI improves on each other column. The
numbers come from rliable; this module only lays the bench's records out as its score matrices."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import attrs
import numpy as np

from codi_kit.bench.table import env_label

# bootstrap resamples: rliable's examples use 2000; its probability of improvement runs a Mann-Whitney
# test per task per resample (about 7 ms), so it gets fewer to keep a bench report within seconds
REPS = 2000
IMPROVEMENT_REPS = 500
CONFIDENCE = 0.95
REFERENCE = "codi"  # the column whose probability of improving on the others is reported


@attrs.frozen
class Interval:
    point: float
    low: float
    high: float

    def text(self) -> str:
        return f"{self.point:.2f} [{self.low:.2f}, {self.high:.2f}]"


@attrs.frozen
class LearnerStatistics:
    """One learner's aggregate over the tasks (env rows) every column finished, ``runs`` seeds each."""
    learner: str
    tasks: list[str]
    runs: int
    iqm: dict[str, Interval]
    mean: dict[str, Interval]
    improvement: dict[str, Interval]  # other column -> P(REFERENCE > other)


def available() -> bool:
    """Whether rliable is installed (``pip install "codi-kit[stats]"``)."""
    import importlib.util

    return importlib.util.find_spec("rliable") is not None


def score_matrices(records: list[dict]) -> dict[str, tuple[list[str], dict[str, np.ndarray]]]:
    """learner -> (tasks, {augmenter: [runs, tasks] normalised returns}), rliable's layout. A task enters
    when every column of the learner finished it; ``runs`` is the fewest seeds any such cell finished
    (the first seeds in seed order), so every matrix has the same shape."""
    cells = defaultdict(lambda: defaultdict(dict))  # learner -> augmenter -> task -> {seed: score}
    for record in records:
        if record["status"] == "ok":
            cells[record["learner"]][record["augmenter"]].setdefault(env_label(record), {})[record["seed"]] = (
                record["results"]["normalized_return"])
    found = {}
    for learner, columns in cells.items():
        tasks = [t for t in dict.fromkeys(t for c in columns.values() for t in c) if all(t in c for c in columns.values())]
        if tasks:
            runs = min(len(c[t]) for c in columns.values() for t in tasks)
            found[learner] = (tasks, {augmenter: np.array([[v for _, v in sorted(scores[t].items())[:runs]] for t in tasks]).T
                                      for augmenter, scores in columns.items()})
    return found


def _estimates(scores: dict, func, reps: int, seed: int) -> tuple[dict, dict]:
    """rliable's point estimates and [2, metrics] percentile intervals, stratified over tasks."""
    from rliable import library

    # rliable 1.2 draws its resamples from numpy's global generator (StratifiedBootstrap.update_indices),
    # whatever random_state it is given: seed that one for repeatable intervals, then put it back
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        return library.get_interval_estimates(scores, func, reps=reps, confidence_interval_size=CONFIDENCE)
    finally:
        np.random.set_state(saved)


def bench_statistics(records: list[dict], reps: int = REPS, improvement_reps: int = IMPROVEMENT_REPS, seed: int = 0) -> list[LearnerStatistics]:
    from rliable import metrics

    def aggregates(matrix):
        return np.array([metrics.aggregate_iqm(matrix), metrics.aggregate_mean(matrix)])

    found = []
    for learner, (tasks, matrices) in score_matrices(records).items():
        points, intervals = _estimates(matrices, aggregates, reps, seed)
        pairs = {c: (matrices[REFERENCE], m) for c, m in matrices.items() if c != REFERENCE} if REFERENCE in matrices else {}
        chance, chance_intervals = _estimates(pairs, metrics.probability_of_improvement, improvement_reps, seed) if pairs else ({}, {})
        interval = {c: [Interval(float(points[c][i]), float(intervals[c][0][i]), float(intervals[c][1][i])) for i in (0, 1)]
                    for c in matrices}
        found.append(LearnerStatistics(
            learner, tasks, next(iter(matrices.values())).shape[0],
            iqm={c: v[0] for c, v in interval.items()}, mean={c: v[1] for c, v in interval.items()},
            improvement={c: Interval(float(chance[c]), float(np.squeeze(chance_intervals[c][0])),
                                     float(np.squeeze(chance_intervals[c][1]))) for c in pairs}))
    return found


def statistics_markdown(found: list[LearnerStatistics]) -> list[str]:
    lines = []
    for stats in found:
        lines += ["", f"### {stats.learner}: {len(stats.tasks)} task(s) x {stats.runs} seed(s) ({', '.join(stats.tasks)})", "",
                  f"| augmenter | IQM [95% CI] | mean [95% CI] | P({REFERENCE} > column) [95% CI] |", "|---|---|---|---|"]
        for column in stats.iqm:
            improvement = stats.improvement.get(column)
            lines.append(f"| {column} | {stats.iqm[column].text()} | {stats.mean[column].text()} | "
                         f"{improvement.text() if improvement else '–'} |")
    return lines


def intervals_figure(found: list[LearnerStatistics], path: Path) -> Path:
    """IQM and mean with their 95% intervals (bars) and point estimates (ticks), a row of two panels per
    learner, in the style of rliable's interval plot (whose fixed layout clips the column names)."""
    from codi_kit.report.run_report import pyplot, save_figure

    plt = pyplot()
    columns = list(dict.fromkeys(c for stats in found for c in stats.iqm))
    colours = dict(zip(columns, plt.get_cmap("tab10").colors))
    figure, axes = plt.subplots(len(found), 2, figsize=(8, 0.9 + 0.4 * len(columns) * len(found)), squeeze=False)
    for row, stats in zip(axes, found):
        for axis, (name, estimate) in zip(row, (("IQM", stats.iqm), ("mean", stats.mean))):
            for index, column in enumerate(estimate):
                value = estimate[column]
                axis.barh(index, value.high - value.low, left=value.low, height=0.6, color=colours[column], alpha=0.75)
                axis.vlines(value.point, index - 0.3, index + 0.3, color="black", linewidth=1.2)
            axis.set_yticks(range(len(estimate)), list(estimate) if name == "IQM" else [])
            axis.set_title(f"{stats.learner}: {name}, {stats.runs} seeds x {len(stats.tasks)} tasks", fontsize=9)
            axis.grid(axis="x", alpha=0.3)
        row[0].set_xlabel("normalised return (95% bootstrap CI)")
        row[1].set_xlabel("normalised return (95% bootstrap CI)")
    return save_figure(figure, path)
