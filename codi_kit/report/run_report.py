"""Human-readable reports: a run's report.md and learning-curve plot, and tables over runs."""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from rich.table import Table

from codi_kit.run.atomic import atomic_path
from codi_kit.report.generated_check import verdict
from codi_kit.report.sections import Section, behaviour_section, buys_section, labels_section, run_section, sections


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


def plot_learning_curve(metrics_file: Path, target: Path, title: str | None = None) -> bool:
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
    axis.set_ylabel("loss")
    if title:
        axis.set_title(title, fontsize=10)
    axis.legend()
    axis.grid(alpha=0.3)
    save_figure(figure, target.with_suffix(".png"))
    return True


def write_run_report(root: Path, results: dict, artifacts: dict, env=None) -> None:
    """report.md of a finished run; ``env`` (the run's adapter) draws its episodes when it can."""
    from codi_kit.report.figures import draw_run_figures

    lines = [f"# codi-kit run: {results.get('augmenter')} + {results.get('learner')} on {results.get('env')}", ""]
    shortfall = results.get("generation_shortfall")
    if shortfall:
        lines += [f"**Augmenter '{results['augmenter']}' generated {shortfall['generated']} of the {shortfall['requested']} "
                  f"episodes it set out to ({shortfall['reason'] or 'no reason given'}): learners trained on "
                  f"{'the original data alone' if not shortfall['generated'] else 'a shortfall of generated data'} "
                  "(generate.allow_shortfall).**", ""]
    warning = verdict(results.get("generated_versus_dataset"))
    if warning:
        lines += [f"**Warning: {warning}.**", ""]
    for section in sections(results):
        lines += section.markdown()
    folders = {stage: artifact.folder for stage, artifact in artifacts.items() if artifact is not None}
    for figure in draw_run_figures(root, results, env, folders):
        lines += ["", f"## {figure.title}", "", figure.reading, "", f"![{figure.title}]({figure.file})"]
    stage_rows = [[stage, f"`{a.folder.name}`", f"{a.seconds:.1f}", "yes" if a.reused else "no"]
                  for stage, a in artifacts.items() if a is not None]
    original = results.get("baseline") or {}
    stage_rows += [[f"{stage} (original data)", f"`{folder}`", f"{original['timings'][stage]:.1f}",
                    "yes" if stage in original["reused"] else "no"] for stage, folder in original.get("artifacts", {}).items()]
    if stage_rows:
        lines += Section("Stages", ["stage", "artifact", "seconds now", "reused"], stage_rows,
                         "Each stage's folder in this run directory; a reused stage was computed by an earlier run.").markdown()
    lines += ["", f"Normalised return = (R - R_lo) / (R_hi - R_lo); team return = {results.get('env')} team reward summed "
                  "over the episode. Every number here is also in `results.json`.", ""]
    write_text(root / "report.md", "\n".join(lines))


def run_table(results: dict) -> Table:
    """The run's facts, the generated data against the dataset, and what augmentation buys, in one table."""
    table = Table(title=f"codi-kit run: {results['env']}")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for label, value in run_section(results).rows:
        table.add_row(label, value)
    check = results.get("generated_versus_dataset")
    if check:
        measure = "agreement with the expert" if check["measure"] == "expert_agreement" else "quality score"
        table.add_row(f"{measure}: generated / dataset", f"{check['generated']:.3f} / {check['dataset']:.3f}",
                      style=None if check["better"] else "bold yellow")
    buys = buys_section(results)
    for trained_on, _, normalized, _ in buys.rows if buys else []:
        table.add_row(f"normalised return: {trained_on}", normalized, style="bold" if trained_on.startswith("gain") else None)
    return table


def run_tables(results: dict) -> list[Table]:
    """What the terminal shows after a run: the run table, then the labels and the generated data."""
    return [run_table(results)] + [section.table() for section in (labels_section(results), behaviour_section(results))
                                   if section is not None]


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
