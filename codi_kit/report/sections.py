"""The sections of a run's report, each a table with its units and a one-line reading, written once
and shown twice: as Markdown in report.md and as a rich table in the terminal. Fields that do not
apply to a run (no labels, no win rate, an augmenter without a diagnostic) leave their row out."""
from __future__ import annotations

import attrs
from rich.table import Table

BEHAVIOUR = [("quality score", "quality_score"), ("mean speed", "mean_speed"), ("no-op share", "noop_share"),
             ("agreement with the expert", "expert_agreement")]
BEHAVIOUR_SOURCES = [("dataset", "behaviour_dataset"), ("generated (kept)", "behaviour_generated"),
                     ("generated (all sampled)", "behaviour_sampled"), ("balanced expert", "behaviour_expert")]
SHOWN_ELSEWHERE = {key for _, key in BEHAVIOUR_SOURCES} | {"seconds", "generated_episodes"}  # counted in data_seen


@attrs.frozen
class Section:
    title: str
    columns: list[str]
    rows: list[list[str]]
    reading: str | None = None  # what the table says, in one sentence

    def markdown(self) -> list[str]:
        lines = ["", f"## {self.title}", ""]
        if self.reading:
            lines += [self.reading, ""]
        lines += ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        return lines + ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in self.rows]

    def table(self) -> Table:
        table = Table(title=self.title, caption=self.reading, caption_justify="left")
        for index, column in enumerate(self.columns):
            table.add_column(column, justify="left" if index == 0 else "right")
        for row in self.rows:
            table.add_row(*row)
        return table


def number(value) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:,}" if isinstance(value, int) else f"{value:.4g}"


def data_seen(results: dict) -> tuple[str, str | None]:
    """What the learner trained on, counted as what it is: (original data, generated data or None).
    Generated branches are short rollouts off real steps, not episodes, and are counted in transitions."""
    summary = results.get("dataset_summary") or {}
    original = f"{results['dataset_episodes']:,} episodes" if "dataset_episodes" in results else "the dataset"
    if "steps" in summary:
        original += f", {summary['steps']:,} transitions"
    episodes, transitions = results.get("generated_episodes") or 0, results.get("generated_transitions")
    if not episodes:
        return original, None
    if transitions is None:
        return original, f"{episodes:,} generated episodes"
    branches = results.get("generated_branches") or 0
    if branches == episodes:
        length = transitions / episodes
        return original, (f"{transitions:,} generated transitions, in {episodes:,} branches of "
                          f"{length:.3g} step{'s' if length != 1 else ''} off real steps")
    return original, f"{episodes:,} generated episodes, {transitions:,} transitions"


def buys_section(results: dict) -> Section | None:
    """Original data alone against original + generated, the gain, and how much data each saw."""
    original = results.get("baseline")
    if not original:
        return None
    dataset, generated = data_seen(results)
    rows = [["original data", dataset, f"{original['normalized_return']:.3f} ± {original['normalized_return_std']:.3f}",
             f"{original['return_mean']:.3f} ± {original['return_std']:.3f}"],
            [f"original + {results['augmenter']}", f"{dataset} + {generated or 'nothing generated'}",
             f"{results['normalized_return']:.3f} ± {results['normalized_return_std']:.3f}",
             f"{results['return_mean']:.3f} ± {results['return_std']:.3f}"],
            ["gain from augmentation", "", f"{results['gain']:+.3f}", f"{results['return_mean'] - original['return_mean']:+.3f}"]]
    reading = (f"{results['augmenter']}'s data {'raised' if results['gain'] > 0 else 'lowered'} {results['learner']}'s "
               f"normalised return from {original['normalized_return']:.3f} to {results['normalized_return']:.3f} "
               f"(± is the std over {results.get('evaluation_episodes', '?')} evaluation episodes).")
    return Section(f"What augmentation buys: {results['learner']} on {results['env']}",
                   ["trained on", "data the learner saw", "normalised return", "team return"], rows, reading)


def run_section(results: dict) -> Section:
    facts = [("env", results.get("env")), ("labeler", results.get("labeler")), ("augmenter", results.get("augmenter")),
             ("learner", results.get("learner")), ("seed", results.get("seed")), ("profile", results.get("profile")),
             ("device", results.get("device"))]
    if "return_mean" in results:
        facts.append(("team return (mean ± std over episodes)", f"{results['return_mean']:.3f} ± {results['return_std']:.3f}"))
    facts += [("return per agent", results.get("return_per_agent_mean")),
              ("normalised return", results.get("normalized_return")),
              ("R_lo (the dataset's mean return)", results.get("R_lo")),
              ("R_hi (the balanced expert's)", results.get("R_hi"))]
    if "evaluation_episodes" in results:
        facts.append(("evaluation", f"{results['evaluation_episodes']} episodes, "
                                    f"{'greedy' if results.get('greedy') else 'sampled'}"))
    facts += [("quality score (the env's)", results.get("quality_score")), ("win rate", results.get("win_rate"))]
    dataset, generated = data_seen(results)
    facts += [("dataset", dataset), ("generated data", generated)]
    return Section("Run", ["quantity", "value"], [[k, number(v)] for k, v in facts if v is not None])


def labels_section(results: dict) -> Section | None:
    stats = results.get("label_stats")
    if not stats:
        return None
    labeler = results.get("labeler") or "teacher"
    rows = []
    if "teacher_asked" in stats:
        asked = (f"{stats['teacher_asked']:,} of {stats['segments']:,} segments "
                 f"({stats.get('teacher_fraction', stats['teacher_asked'] / max(stats['segments'], 1)):.0%})")
        if stats.get("teacher_unanswered"):
            asked += f", {stats['teacher_unanswered']:,} unanswered"
        rows.append([f"teacher ({labeler})", asked, number(stats.get("teacher_accuracy", "–"))])
    if "student_accuracy" in stats:
        trained = f"trained on {stats.get('student_trained_on', 0):,}, {stats.get('student_holdout', 0):,} held out"
        if stats.get("student_holdout_accuracy") is not None:
            trained += f" (accuracy {stats['student_holdout_accuracy']:.3f})"
        rows.append(["student (GRU + MLP)", trained, number(stats["student_accuracy"])])
        if stats.get("student_accuracy_unasked") is not None:
            rows.append(["student, segments the teacher never saw", "", number(stats["student_accuracy_unasked"])])
    for key, value in stats.items():  # whatever else a labeler reports
        if key.startswith(("teacher_", "student_")) or key in ("segments", "horizon") or not isinstance(value, (int, float)):
            continue
        rows.append([key.replace("_", " "), number(value), ""])
    reading = None
    accuracy = stats.get("student_accuracy", stats.get("teacher_accuracy"))
    if isinstance(accuracy, float) and "segments" in stats:
        reading = (f"Every one of the {stats['segments']:,} segments of {stats.get('horizon', '?')} steps is labelled; "
                   f"the labels name the dataset's expert agent on {accuracy:.2f} of them.")
    return Section("Labels", ["labeller", "segments", "accuracy against the ground-truth expert"], rows, reading)


def behaviour_section(results: dict) -> Section | None:
    diagnostics = results.get("augment_diagnostics") or {}
    sources = [(name, diagnostics[key]) for name, key in BEHAVIOUR_SOURCES if diagnostics.get(key)]
    if not sources:
        return None
    columns = [(label, key) for label, key in BEHAVIOUR if any(key in found for _, found in sources)]
    rows = [[name] + [number(found.get(key, "–")) for _, key in columns] for name, found in sources]
    check, reading = results.get("generated_versus_dataset"), None
    if check and check["measure"] == "expert_agreement":
        reading = (f"Generated actions agree with the expert {'more' if check['better'] else 'no more'} often than the "
                   f"dataset's: {check['generated']:.2f} vs {check['dataset']:.2f}.")
    elif check:
        reading = (f"Generated data score {check['generated']:.3f} on the env's quality score against the dataset's "
                   f"{check['dataset']:.3f}{'' if check['better'] else ': no better'}.")
    return Section("Generated data against the dataset", ["data"] + [label for label, _ in columns], rows, reading)


def flat(mapping: dict, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted name, value) for every scalar or short list in a nested diagnostics dict."""
    rows = []
    for key, value in mapping.items():
        name = f"{prefix}{key}".replace("_", " ")
        if isinstance(value, dict):
            rows += flat(value, f"{prefix}{key}.")
        elif isinstance(value, list) and len(value) <= 8 and all(isinstance(v, (int, float)) for v in value):
            rows.append((name, ", ".join(number(v) for v in value) if value else "none"))
        elif value is not None and not isinstance(value, list):
            rows.append((name, number(value)))
    return rows


def diagnostics_section(results: dict) -> Section | None:
    """The augmenter's own diagnostics (the model's label sensitivity, goal probe, generation counts)."""
    diagnostics = {k: v for k, v in (results.get("augment_diagnostics") or {}).items() if k not in SHOWN_ELSEWHERE}
    rows = [[name, value] for name, value in flat(diagnostics)]
    if not rows:
        return None
    sensitivity = diagnostics.get("label_sensitivity")
    reading = None
    if isinstance(sensitivity, dict) and "loss_gap" in sensitivity:
        reading = (f"Shuffling the labels across segments raises the denoising loss by {sensitivity['loss_gap']:.4f} "
                   f"({sensitivity['loss_gap'] / sensitivity['loss_correct_labels']:.1%}): the larger, the more the "
                   "model reads its labels.")
    return Section(f"Augmenter diagnostics ({results.get('augmenter')})", ["diagnostic", "value"], rows, reading)


def sections(results: dict) -> list[Section]:
    found = [buys_section(results), run_section(results), labels_section(results), behaviour_section(results),
             diagnostics_section(results)]
    return [section for section in found if section is not None]
