import json

import attrs
import numpy as np
import pytest

import codi_kit
from codi_kit.cli import main
from codi_kit.data.dataset import Dataset
from conftest import inline_plugin
from tiny import tiny

TINY = ["--augmenter", "none", *tiny(**{"collect.episodes": 40, "evaluate.episodes": 10, "learner.steps": 60,
                                          "learner.log_every": 20, "student.steps": None})]
RESULT_KEYS = {"env", "labeler", "augmenter", "learner", "seed", "profile", "return_mean", "return_std",
               "normalized_return", "R_lo", "R_hi", "dataset_episodes", "generated_episodes", "timings", "versions"}


def test_run_writes_results_and_report_then_reuses_every_stage(tmp_path, runner):
    out = tmp_path / "run"
    result = runner.invoke(main, ["run", "--env", "mpe/cn", "--augmenter", "none", "--learner", "bc", "--out", str(out), *TINY])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert RESULT_KEYS <= set(results)
    assert results["dataset_episodes"] == 40 and results["generated_episodes"] == 0
    assert results["R_hi"] > results["R_lo"]
    expected = (results["return_mean"] - results["R_lo"]) / (results["R_hi"] - results["R_lo"])
    assert results["normalized_return"] == pytest.approx(expected, rel=1e-5)
    assert set(results["timings"]) >= {"collect", "generate", "learn", "evaluate", "report"}
    assert results["reused"] == []
    report = (out / "report.md").read_text()
    assert "normalised return" in report and f"{results['normalized_return']:.4g}" in report
    assert (out / "learning_curve.png").read_bytes()[:4] == b"\x89PNG"
    assert len(list(out.glob("learn-*/metrics.jsonl"))) == 1

    again = runner.invoke(main, ["run", "--out", str(out), *TINY])
    assert again.exit_code == 0, again.output
    rerun = json.loads((out / "results.json").read_text())
    assert set(rerun["reused"]) == {"collect", "generate", "learn", "evaluate"}
    assert rerun["return_mean"] == results["return_mean"]

    forced = runner.invoke(main, ["run", "--out", str(out), "--force", *TINY])
    assert forced.exit_code == 0
    assert json.loads((out / "results.json").read_text())["reused"] == []


def test_changed_setting_recomputes_only_downstream(tmp_path, runner):
    out = tmp_path / "run"
    assert runner.invoke(main, ["run", "--out", str(out), *TINY]).exit_code == 0
    result = runner.invoke(main, ["run", "--out", str(out), *TINY, "--set", "learner.steps=40"])
    assert result.exit_code == 0
    results = json.loads((out / "results.json").read_text())
    assert set(results["reused"]) == {"collect", "generate"}
    assert len(list(out.glob("learn-*"))) == 2


def test_crash_leaves_no_partial_artifact_and_rerun_resumes(tmp_path, runner):
    from codi_kit.learn import Learner

    class CrashingLearner(Learner):
        @attrs.frozen
        class Config:
            pass

        def __init__(self, config):
            pass

        def fit(self, request):
            (request.context.workdir / "half-written").write_text("x")
            raise RuntimeError("killed mid-training")

        def save(self, policy, folder):
            pass

        def load(self, folder, context):
            pass

    class Provider:
        @codi_kit.hookimpl
        def register_learners(self, register):
            register("crashing", CrashingLearner)

    out = tmp_path / "run"
    with inline_plugin(Provider(), "crashing-learner"):
        result = runner.invoke(main, ["run", "--learner", "crashing", "--out", str(out), "--profile", "smoke", "--quiet",
                                      "--set", "collect.episodes=40"])
    assert result.exit_code != 0
    assert list(out.glob("collect-*/meta.json")) and not list(out.glob("learn-*"))
    assert not list(out.glob(".*tmp"))  # the temporary folder is gone too
    resumed = runner.invoke(main, ["run", "--out", str(out), *TINY])
    assert resumed.exit_code == 0
    assert "collect" in json.loads((out / "results.json").read_text())["reused"]


def test_collect_to_file_with_agent_count_setting(tmp_path, runner):
    path = tmp_path / "data.npz"
    result = runner.invoke(main, ["collect", "--env", "mpe/cn", "--episodes", "30", "--seed", "0", "--protocol",
                                  "imbalanced", "--out", str(path), "--set", "env.agents=4", "--quiet"])
    assert result.exit_code == 0, result.output
    data = Dataset.load(path)
    assert data.obs.shape[:3] == (30, 25, 4) and (data.expert_mask.sum(1) == 1).all()
    norm = data.meta["normalization"]
    assert norm["R_hi"] > norm["R_lo"] and norm["episodes"] == 30
    assert norm["R_lo"] == pytest.approx(float(data.returns().mean()), rel=1e-5)


def test_run_on_an_existing_dataset_file_and_report_over_runs(tmp_path, runner):
    path = tmp_path / "data.npz"
    assert runner.invoke(main, ["collect", "--episodes", "40", "--out", str(path), "--quiet"]).exit_code == 0
    for seed in (0, 1):
        result = runner.invoke(main, ["run", "--dataset", str(path), "--seed", str(seed), "--out", str(tmp_path / f"s{seed}"), *TINY])
        assert result.exit_code == 0, result.output
    table = tmp_path / "table.md"
    result = runner.invoke(main, ["report", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(table), "--quiet"])
    assert result.exit_code == 0, result.output
    rows = json.loads(table.with_suffix(".json").read_text())
    assert len(rows) == 1 and rows[0]["seeds"] == [0, 1]
    values = [json.loads((tmp_path / f"s{s}" / "results.json").read_text())["normalized_return"] for s in (0, 1)]
    assert rows[0]["normalized_return_mean"] == pytest.approx(np.mean(values))


def test_stage_command_runs_up_to_its_stage(tmp_path, runner):
    out = tmp_path / "run"
    result = runner.invoke(main, ["generate", "--out", str(out), *TINY])
    assert result.exit_code == 0, result.output
    assert list(out.glob("collect-*")) and list(out.glob("generate-*")) and not list(out.glob("learn-*"))


def test_privileged_labels_match_the_expert(tmp_path, cn_dataset, cn_env):
    from codi_kit import plugins
    from codi_kit.context import StageContext
    from codi_kit.labeling import label_dataset
    import torch

    labeler = plugins.configure(plugins.lookup("labeler", "privileged"), {})
    context = StageContext(0, torch.device("cpu"), tmp_path, cn_env)
    labels, stats, student = label_dataset(labeler, cn_dataset, 8, 0.1, context)
    assert student is None
    assert stats["teacher_accuracy"] == 1.0 and stats["teacher_asked"] == stats["segments"]
    np.testing.assert_array_equal(labels.z.argmax(1), cn_dataset.expert_mask[labels.segments[:, 0]].argmax(1))
    labels.save(tmp_path / "labels.npz")
    from codi_kit.labeling import QualityLabels

    assert QualityLabels.load(tmp_path / "labels.npz").z.shape == labels.z.shape


def test_labels_reach_an_augmenter_and_generated_episodes_reach_the_learner(tmp_path, runner):
    from codi_kit.augment import Augmenter, Generated

    seen = {}

    class ReplayBestLabelled(Augmenter):
        """Test augmenter: re-emits the episodes whose first segment's label is agent 0."""

        needs_labels = True

        def generate(self, request):
            labels = request.labels
            first = labels.segments[:, 1] == 0
            chosen = labels.segments[first][labels.z[first].argmax(1) == 0, 0]
            seen["z_rows"] = labels.z.shape
            return Generated(request.dataset.select(chosen), {"chosen": int(len(chosen))})

    class Provider:
        @codi_kit.hookimpl
        def register_augmenters(self, register):
            register("replay-test", ReplayBestLabelled)

    out = tmp_path / "run"
    with inline_plugin(Provider(), "replay-augmenter"):
        result = runner.invoke(main, ["run", *TINY, "--augmenter", "replay-test", "--labeler", "privileged", "--out", str(out)])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["labeler"] == "privileged" and results["label_stats"]["teacher_accuracy"] == 1.0
    chosen = results["augment_diagnostics"]["chosen"]
    assert chosen > 0 and results["generated_episodes"] == chosen
    learned = json.loads((out / results["artifacts"]["learn"] / "meta.json").read_text())
    assert learned["training_episodes"] == 40 + chosen
    generated = Dataset.load(out / results["artifacts"]["generate"] / "generated.npz")
    assert (generated.provenance == "generated:replay-test").all()


def test_temporary_folders_a_killed_run_left_are_removed_on_the_next_run(tmp_path, runner):
    out = tmp_path / "run"
    first = runner.invoke(main, ["run", "--out", str(out), *TINY])
    assert first.exit_code == 0, first.output
    left = [out / f".{folder.name}.killed{n}.tmp" for n, folder in enumerate(out.glob("*-*")) if folder.is_dir()]
    for folder in left:  # what kill -9 leaves: a half-written stage folder
        folder.mkdir()
        (folder / "half-written").write_text("x")
    second = runner.invoke(main, ["run", "--out", str(out), *TINY])
    assert second.exit_code == 0 and left
    assert not any(folder.exists() for folder in left)


def test_an_augmented_run_reports_its_learner_on_the_original_data_beside_it(tmp_path, runner):
    """The baseline shares collect (one collect folder) and is the very run `--augmenter none` makes."""
    from codi_kit.augment import Augmenter, Generated

    class BestEpisodesTwice(Augmenter):  # a real, if naive, augmenter: the top quarter of episodes again
        def generate(self, request):
            returns = request.dataset.returns()
            best = np.argsort(returns)[-max(1, request.dataset.episodes // 4):]
            return Generated(request.dataset.select(best), requested=len(best))

    class Provider:
        @codi_kit.hookimpl
        def register_augmenters(self, register):
            register("best-twice", BestEpisodesTwice)

    out = tmp_path / "run"
    with inline_plugin(Provider(), "best-twice"):
        result = runner.invoke(main, ["run", *TINY, "--augmenter", "best-twice", "--out", str(out)])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    original = results["baseline"]
    assert results["gain"] == pytest.approx(results["normalized_return"] - original["normalized_return"])
    assert original["artifacts"]["learn"] != results["artifacts"]["learn"]
    assert len(list(out.glob("collect-*"))) == 1 and len(list(out.glob("learn-*"))) == 2
    report = (out / "report.md").read_text()
    assert "What augmentation buys" in report and f"{original['normalized_return']:.3f}" in report
    assert f"{results['gain']:+.3f}" in report

    plain = runner.invoke(main, ["run", *TINY, "--augmenter", "none", "--out", str(out)])
    assert plain.exit_code == 0, plain.output
    alone = json.loads((out / "results.json").read_text())
    assert set(alone["reused"]) == {"collect", "generate", "learn", "evaluate"} and "baseline" not in alone
    assert alone["normalized_return"] == original["normalized_return"]


def test_codi_kit_config_names_the_layer_that_set_each_setting(tmp_path, runner):
    settings_file = tmp_path / "run.toml"
    settings_file.write_text("[augmenter]\nwidth = 64\n")

    def sources(*arguments):
        result = runner.invoke(main, ["config", "--config", str(settings_file), "--set", "learner.steps=7", "--json", *arguments])
        assert result.exit_code == 0, result.output
        return {(s["section"], s["key"]): (s["value"], s["source"]) for s in json.loads(result.output)}

    codi = sources("--augmenter", "codi")
    assert codi[("learner", "steps")] == (7, "command line") and codi[("augmenter", "name")] == ("codi", "command line")
    assert codi[("augmenter", "width")] == (64, "config file")
    assert codi[("augmenter", "horizon")] == (2, "profile 'quick' of augmenter 'codi'")  # the CPU path
    assert codi[("augmenter", "guidance_weight")] == (2.0, "profile 'quick' of augmenter 'codi'")
    assert codi[("collect", "episodes")] == (2000, "profile 'quick'") and codi[("label", "horizon")] == (8, "default")
    assert codi[("augmenter", "label_embedding")] == ("own", "default (DiffusionSettings)")
    madiff = sources("--augmenter", "madiff", "--profile", "smoke")
    assert madiff[("augmenter", "guidance_weight")] == (1.2, "default (MADiff.Config)")  # MADiff's own default
    assert madiff[("collect", "episodes")] == (200, "profile 'smoke'")
    # a run records the same table in its run directory
    out = tmp_path / "run"
    result = runner.invoke(main, ["run", "--out", str(out), *TINY, "--set", "learner.steps=7"])
    assert result.exit_code == 0, result.output
    recorded = {(s["section"], s["key"]): s["source"] for s in json.loads((out / "settings.json").read_text())}
    assert recorded[("learner", "steps")] == "command line" and recorded[("augmenter", "name")] == "command line"
    assert recorded[("learner", "batch_size")].startswith("default (")
