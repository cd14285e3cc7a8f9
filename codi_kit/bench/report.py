"""The bench's report.md: Table 1, failures, generated-data diagnostics, figures, wall time per stage."""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from codi_kit.bench.figures import agents_figure, bar_charts
from codi_kit.bench.statistics import available as statistics_available
from codi_kit.bench.statistics import bench_statistics, intervals_figure, statistics_markdown
from codi_kit.bench.table import env_label, table1_markdown
from codi_kit.report.run_report import write_text

# (column, path into an augmenter's diagnostics); behaviour_* are measured by the core's probes
DIAGNOSTICS = [("quality score", "quality_score"), ("speed", "mean_speed"), ("no-op share", "noop_share"),
               ("agreement with expert", "expert_agreement")]


def _mean(values: list) -> str:
    found = [v for v in values if isinstance(v, (int, float))]
    return f"{np.mean(found):.3f}" if found else "–"


def diagnostics_markdown(records: list[dict]) -> list[str]:
    """Per env, the generated data of each augmenter (one generate stage per seed, shared by learners)
    beside the dataset and the balanced expert, averaged over seeds."""
    by_env = defaultdict(dict)  # env -> {generate artifact: (augmenter, diagnostics)}
    for record in records:
        if record["status"] == "ok":
            results = record["results"]
            by_env[env_label(record)][results["artifacts"]["generate"]] = (
                record["augmenter"], results.get("augment_diagnostics") or {},
                results.get("generated_transitions") or results["generated_episodes"])
    lines = []
    for env, generated in by_env.items():
        lines += ["", f"### {env}", "", "| data | generated transitions | " + " | ".join(c for c, _ in DIAGNOSTICS) + " | accepted |",
                  "|---|---|" + "---|" * (len(DIAGNOSTICS) + 1)]
        every = [d for _, d, _ in generated.values()]
        for source, key in (("dataset", "behaviour_dataset"), ("balanced expert", "behaviour_expert")):
            found = [d[key] for d in every if key in d]
            if found:
                lines.append(f"| {source} | | " + " | ".join(_mean([f.get(k) for f in found]) for _, k in DIAGNOSTICS) + " | |")
        for augmenter in dict.fromkeys(a for a, _, _ in generated.values()):
            runs = [(d, n) for a, d, n in generated.values() if a == augmenter and "behaviour_generated" in d]
            if not runs:  # an augmenter that generates nothing (none)
                continue
            behaviour = [d.get("behaviour_generated", {}) for d, _ in runs]
            accepted = [d.get("generation", {}).get("acceptance_rate") for d, _ in runs]
            lines.append(f"| {augmenter} | {np.mean([n for _, n in runs]):.0f} | "
                         + " | ".join(_mean([b.get(k) for b in behaviour]) for _, k in DIAGNOSTICS) + f" | {_mean(accepted)} |")
    return lines


def stage_times(records: list[dict], store: Path) -> list[str]:
    """Compute seconds of every stage the grid used, each shared stage counted once."""
    used = {folder for r in records if r["status"] == "ok" for folder in r["results"]["artifacts"].values()}
    seconds = defaultdict(list)
    for folder in sorted(used):
        meta = store / folder / "meta.json"
        if meta.exists():
            seconds[folder.rsplit("-", 1)[0]].append(json.loads(meta.read_text())["seconds"])
    lines = ["| stage | artifacts | total s | mean s |", "|---|---|---|---|"]
    for stage in ("collect", "label", "train", "generate", "learn", "evaluate"):
        if seconds.get(stage):
            lines.append(f"| {stage} | {len(seconds[stage])} | {sum(seconds[stage]):.0f} | {np.mean(seconds[stage]):.1f} |")
    return lines


def write_bench_report(bench: Path, records: list[dict], summary: dict) -> None:
    """``summary``: what bench.json holds (the grid, backend, wall time, tasks computed)."""
    ok = sum(r["status"] == "ok" for r in records)
    profile = summary["grid"]["profile"]
    lines = ["# codi-kit bench", "",
             f"{len(records)} cells ({ok} finished, {len(records) - ok} failed), profile `{profile}`, seeds "
             f"{', '.join(map(str, summary['grid']['seeds']))}, backend `{summary['backend']}`; this invocation took "
             f"{summary['wall_seconds']:.0f} s and computed {len(summary['computed'])} of {summary['tasks']} tasks "
             "(the others were reused or failed).", "",
             "## Normalised return (Table 1 layout)", "",
             "Mean ± std over seeds of (R - R_lo) / (R_hi - R_lo), R_lo the dataset's mean return, R_hi the balanced "
             "expert's. Bold: the best in the row, leaving out `codi-w-pri` (privileged labels) as the paper does. "
             "'paper': the paper's Table 1 at its scale (CODI, AAMAS 2026), where it has the row.", ""]
    lines += table1_markdown(records)
    failed = [r for r in records if r["status"] != "ok"]
    if failed:
        lines += ["", "## Failed cells", "", "| cell | error |", "|---|---|"]
        lines += [f"| {r['cell']} | {r['error'].replace('|', '/')} |" for r in failed]
        lines += ["", "Tracebacks are in `errors/`; a rerun of the same command computes only what is missing."]
    statistics = bench_statistics(records) if statistics_available() else []
    if not statistics_available():
        lines += ["", "## Aggregate statistics", "", "IQM, bootstrap intervals and the probability of improvement need "
                  "rliable: `pip install \"codi-kit[stats]\"`, then rerun the bench (it recomputes nothing)."]
    elif statistics:
        lines += ["", "## Aggregate statistics", "",
                  "Per learner, over every task every column finished: the interquartile mean (IQM) and mean of the "
                  "normalised returns with 95% stratified bootstrap confidence intervals, and the probability that "
                  "`codi` improves on each column (a run of one beats a run of the other, averaged over tasks), "
                  "computed by rliable (Agarwal et al. 2021). Three seeds make wide intervals: read overlap as 'not shown'."]
        lines += statistics_markdown(statistics)
    figures = bar_charts(records, bench) + agents_figure(records, bench)
    if statistics:
        figures.append(intervals_figure(statistics, bench / "intervals.png"))
    if figures:
        lines += ["", "## Figures", ""] + [f"![{path.stem}]({path.name})" for path in figures]
    lines += ["", "## Generated data", "",
              "Per augmenter, averaged over seeds: the env's quality score of final observations (CN: the paper's CN "
              "score, higher is better), mean speed, share of idle actions (the env's no-op or stop), agreement of "
              "actions with the expert's in the same state, share of generated segments accepted by the dynamics check."]
    lines += diagnostics_markdown(records)
    lines += ["", "## Wall time per stage", ""] + stage_times(records, bench / "stages") + [""]
    write_text(bench / "report.md", "\n".join(lines))
