"""What a person sees after a run: report.md is tables and figures (no JSON dumps), every figure it
links exists, generated data are counted as what they are, the terminal shows the same tables,
``codi-kit plot`` redraws the figures, and training curves reach TensorBoard."""
import json
import re
from pathlib import Path

import numpy as np
import pytest

from codi_kit.cli import main
from tiny import tiny

TINY = tiny(quiet=False, **{"collect.episodes": 40, "evaluate.episodes": 6, "learner.steps": 40,
                              "learner.log_every": 10, "augmenter.train_steps": 20, "augmenter.log_every": 5})


@pytest.fixture(scope="module")
def codi_run(tmp_path_factory):
    from click.testing import CliRunner

    out = tmp_path_factory.mktemp("report") / "run"
    result = CliRunner().invoke(main, ["run", "--augmenter", "codi", "--learner", "bc", "--out", str(out), *TINY])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_the_report_is_tables_and_figures_and_every_linked_figure_exists(codi_run):
    out, _ = codi_run
    report = (out / "report.md").read_text()
    results = json.loads((out / "results.json").read_text())
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert set(links) == {"learning_curve.png", "episodes.png", "labels.png"}
    assert all((out / link).read_bytes()[:4] == b"\x89PNG" for link in links)
    for line in report.splitlines():  # no JSON fragment: dumps stay in results.json
        assert not line.startswith(("```", "{", "}", '"')) and not re.search(r'"\w+": ', line), line
        assert "| None |" not in line and not line.endswith("None |"), line  # fields that do not apply are left out
    assert "win rate" not in report  # CN has none
    for title in ("## What augmentation buys", "## Labels", "## Generated data against the dataset", "## Stages"):
        assert title in report
    # the generated data are counted as what they are: one-step branches off real steps, in transitions
    assert results["generated_branches"] == results["generated_episodes"] == results["generated_transitions"] == 8
    assert "8 generated transitions, in 8 branches of 1 step off real steps" in report
    assert f"{results['dataset_summary']['steps']:,} transitions" in report
    # the one-line readings say what the tables hold, with the run's numbers
    check = results["generated_versus_dataset"]
    assert f"{check['generated']:.2f} vs {check['dataset']:.2f}" in report
    assert f"on {results['label_stats']['student_accuracy']:.2f} of them" in report


def test_the_picture_draws_a_real_episode_beside_whole_generated_ones(codi_run):
    from codi_kit.data.dataset import Dataset
    from codi_kit.report.figures import real_episode

    out, _ = codi_run
    results = json.loads((out / "results.json").read_text())
    generate = out / results["artifacts"]["generate"]
    examples = Dataset.load(generate / "examples.npz")  # whole episodes, though the learner's data are branches
    original = Dataset.load(out / results["artifacts"]["collect"] / "dataset.npz")
    assert examples.episodes == 3 and examples.truncated is None and (examples.lengths == original.padded_length).all()
    assert Dataset.load(generate / "generated.npz").truncated.all()
    assert original.expert_mask[real_episode(original)].sum() == 1  # the imbalanced case is the one drawn


def test_the_terminal_shows_the_same_tables(codi_run):
    _, output = codi_run
    assert "codi-kit run: mpe/cn" in output and "Labels" in output and "Generated data against the dataset" in output
    assert "None" not in output and "{'" not in output  # no Python dicts or Nones printed


def test_codi_kit_plot_redraws_every_figure(codi_run, runner):
    out, _ = codi_run
    for figure in out.glob("*.png"):
        figure.unlink()
    result = runner.invoke(main, ["plot", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*.png")) == ["episodes.png", "labels.png", "learning_curve.png"]
    missing = runner.invoke(main, ["plot", str(out / "nowhere")])
    assert missing.exit_code == 2 and "results.json: no results" in missing.output


def test_training_curves_reach_tensorboard_as_in_metrics_jsonl(codi_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, _ = codi_run
    results = json.loads((out / "results.json").read_text())
    for stage, tag in (("learn", "loss"), ("train", "denoising_loss")):
        folder = out / results["artifacts"][stage]
        logged = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
        logged = [(r["step"], r[tag]) for r in logged if tag in r]
        events = EventAccumulator(str(folder / "tensorboard"))
        events.Reload()
        found = [(e.step, e.value) for e in events.Scalars(tag)]
        assert len(found) == len(logged) >= 2
        assert [s for s, _ in found] == [s for s, _ in logged]
        assert np.allclose([v for _, v in found], [v for _, v in logged], rtol=1e-6)
    assert not list(Path(out).glob(".*.tmp"))
