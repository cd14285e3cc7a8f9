"""Human-readable reports: a run's report.md and learning-curve plot, and tables over runs."""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from rich.table import Table

from codi_kit.atomic import atomic_path
from codi_kit.generated_check import verdict

ROWS = [("env", "env"), ("labeler", "labeler"), ("augmenter", "augmenter"), ("learner", "learner"),
        ("seed", "seed"), ("profile", "profile"), ("device", "device"),
        ("return (team, mean ± std)", None), ("return per agent", "return_per_agent_mean"),
        ("normalised return", "normalized_return"), ("R_lo (dataset)", "R_lo"), ("R_hi (balanced expert)", "R_hi"),
        ("evaluation", None), ("quality score", "quality_score"),
        ("win rate", "win_rate"), ("dataset episodes", "dataset_episodes"), ("generated episodes", "generated_episodes")]


def _cell(results: dict, label: str, key: str | None) -> str:
    if label.startswith("return (team"):
        return f"{results['return_mean']:.3f} ± {results['return_std']:.3f}"
    if label == "evaluation":
        return f"{results['evaluation_episodes']} episodes, {'greedy' if results['greedy'] else 'sampled'}"
    value = results.get(key)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as temporary:
        Path(temporary).write_text(text)


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path: Path) -> Path:
    """Lay out, write atomically as PNG, and close ``figure``."""
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=100)
    pyplot().close(figure)
    return path


def plot_learning_curve(metrics_file: Path, target: Path) -> bool:
    """Loss (and validation loss) against update step, as PNG; False when there is nothing to plot."""
    records = [json.loads(line) for line in metrics_file.read_text().splitlines() if line.strip()] if metrics_file.exists() else []
    records = [r for r in records if "step" in r]
    if not records:
        return False
    figure, axis = pyplot().subplots(figsize=(6, 3.5))
    for key in sorted({k for r in records for k in r if k != "step" and isinstance(r[k], (int, float))}):
        points = [(r["step"], r[key]) for r in records if key in r]
        axis.plot(*zip(*points), label=key)
    axis.set_xlabel("update step")
    axis.legend()
    axis.grid(alpha=0.3)
    save_figure(figure, target.with_suffix(".png"))
    return True


def side_by_side(results: dict) -> list[tuple[str, str, str]]:
    """(trained on, normalised return, team return) for the original data alone and with the
    augmenter's generated data, then the gain; empty when the run has no baseline."""
    original = results.get("baseline")
    if not original:
        return []
    augmented = f"original + {results['generated_episodes']} episodes from {results['augmenter']}"
    return [("original data", f"{original['normalized_return']:.3f} ± {original['normalized_return_std']:.3f}",
             f"{original['return_mean']:.3f} ± {original['return_std']:.3f}"),
            (augmented, f"{results['normalized_return']:.3f} ± {results['normalized_return_std']:.3f}",
             f"{results['return_mean']:.3f} ± {results['return_std']:.3f}"),
            ("gain from augmentation", f"{results['gain']:+.3f}", f"{results['return_mean'] - original['return_mean']:+.3f}")]


def write_run_report(root: Path, results: dict, artifacts: dict) -> None:
    lines = ["# codi-kit run", ""]
    shortfall = results.get("generation_shortfall")
    if shortfall:
        lines += [f"**Augmenter '{results['augmenter']}' generated {shortfall['generated']} of the {shortfall['requested']} "
                  f"episodes it set out to ({shortfall['reason'] or 'no reason given'}): learners trained on "
                  f"{'the original data alone' if not shortfall['generated'] else 'a shortfall of generated data'} "
                  "(generate.allow_shortfall).**", ""]
    warning = verdict(results.get("generated_versus_dataset"))
    if warning:
        lines += [f"**Warning: {warning}.**", ""]
    rows = side_by_side(results)
    if rows:
        lines += [f"## What augmentation buys: {results['learner']} on {results['env']}", "",
                  "| trained on | normalised return (mean ± std over episodes) | team return |", "|---|---|---|"]
        lines += [f"| {a} | {b} | {c} |" for a, b, c in rows] + [""]
    lines += ["| quantity | value |", "|---|---|"]
    lines += [f"| {label} | {_cell(results, label, key)} |" for label, key in ROWS]
    lines += ["", "## Stages", "", "| stage | artifact | seconds now | reused |", "|---|---|---|---|"]
    for stage, artifact in artifacts.items():
        if artifact is not None:
            lines.append(f"| {stage} | `{artifact.folder.name}` | {artifact.seconds:.1f} | {artifact.reused} |")
    original = results.get("baseline") or {}
    for stage, folder in original.get("artifacts", {}).items():
        lines.append(f"| {stage} (original data) | `{folder}` | {original['timings'][stage]:.1f} | "
                     f"{stage in original['reused']} |")
    if results.get("label_stats"):
        lines += ["", "## Labels", "", "```json", json.dumps(results["label_stats"], indent=2), "```"]
    if results.get("augment_diagnostics"):
        lines += ["", "## Augmentation diagnostics", "", "```json", json.dumps(results["augment_diagnostics"], indent=2), "```"]
    learned = artifacts.get("learn")
    if learned is not None and plot_learning_curve(learned.folder / "metrics.jsonl", root / "learning_curve.png"):
        lines += ["", "## Learning curve", "", "![learning curve](learning_curve.png)"]
    lines += ["", f"Normalised return = (R - R_lo) / (R_hi - R_lo); team return = {results['env']} team reward summed over the episode.", ""]
    write_text(root / "report.md", "\n".join(lines))


def run_table(results: dict) -> Table:
    table = Table(title=f"codi-kit run: {results['env']}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for label, key in ROWS:
        table.add_row(label, _cell(results, label, key))
    check = results.get("generated_versus_dataset")
    if check:
        measure = "agreement with the expert" if check["measure"] == "expert_agreement" else "quality score"
        table.add_row(f"{measure}: generated / dataset", f"{check['generated']:.3f} / {check['dataset']:.3f}",
                      style=None if check["better"] else "bold yellow")
    for trained_on, normalized, team in side_by_side(results):
        table.add_row(f"normalised return: {trained_on}", normalized, style="bold" if trained_on.startswith("gain") else None)
    return table


def aggregate(all_results: list[dict]) -> list[dict]:
    """Mean ± std over seeds of each (env, labeler, augmenter, learner, profile)."""
    groups = defaultdict(list)
    for results in all_results:
        groups[(results["env"], results["labeler"], results["augmenter"], results["learner"], results["profile"])].append(results)
    rows = []
    for (env, labeler, augmenter, learner, profile), members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        normalized = np.array([m["normalized_return"] for m in members])
        returns = np.array([m["return_mean"] for m in members])
        rows.append({"env": env, "labeler": labeler, "augmenter": augmenter, "learner": learner, "profile": profile,
                     "seeds": sorted(m["seed"] for m in members),
                     "normalized_return_mean": float(normalized.mean()), "normalized_return_std": float(normalized.std()),
                     "return_mean": float(returns.mean()), "return_std": float(returns.std())})
    return rows


def aggregate_table(rows: list[dict]) -> Table:
    table = Table(title="codi-kit results (mean ± std over seeds)")
    for column in ("env", "labeler", "augmenter", "learner", "profile", "seeds", "normalised return", "team return"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["env"], str(row["labeler"]), row["augmenter"], row["learner"], str(row["profile"]),
                      ",".join(map(str, row["seeds"])),
                      f"{row['normalized_return_mean']:.3f} ± {row['normalized_return_std']:.3f}",
                      f"{row['return_mean']:.2f} ± {row['return_std']:.2f}")
    return table


def aggregate_markdown(rows: list[dict]) -> str:
    lines = ["# codi-kit results", "", "| env | labeler | augmenter | learner | profile | seeds | normalised return | team return |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        lines.append(f"| {row['env']} | {row['labeler']} | {row['augmenter']} | {row['learner']} | {row['profile']} | "
                     f"{','.join(map(str, row['seeds']))} | {row['normalized_return_mean']:.3f} ± {row['normalized_return_std']:.3f} | "
                     f"{row['return_mean']:.2f} ± {row['return_std']:.2f} |")
    return "\n".join(lines) + "\n"
