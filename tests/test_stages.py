"""Diffusion augmentation as cached stages: train once (resumable), generate many times."""
import json

import pytest
import torch

from codi_kit import plugins
from codi_kit.cli import main
from codi_kit.run.config import build_config
from codi_kit.diffusion import trainer
from codi_kit.diffusion.guidance import agent_conditions
from codi_kit.diffusion.model import DiffusionModel
from codi_kit.diffusion.settings import training_settings
from codi_kit.run.pipeline import Pipeline
from tiny import tiny

TINY = tiny(**{"report.baseline": "false"})


def results(out):
    return json.loads((out / "results.json").read_text())


def test_sampling_settings_reuse_the_trained_model(tmp_path, runner):
    out = tmp_path / "run"
    codi = ["run", "--augmenter", "codi", "--out", str(out), *TINY]
    assert runner.invoke(main, codi).exit_code == 0
    first = results(out)
    assert "train" not in first["reused"] and first["timings"]["train"] > 0
    for extra in (["--set", "augmenter.compose=false"], ["--set", "augmenter.guidance_weight=2"]):
        result = runner.invoke(main, [*codi, *extra])
        assert result.exit_code == 0, result.output
        again = results(out)
        assert {"collect", "label", "train"} <= set(again["reused"]) and "generate" not in again["reused"]
        assert again["timings"]["train"] == 0 and again["artifacts"]["train"] == first["artifacts"]["train"]
    assert len(list(out.glob("train-*"))) == 1 and len(list(out.glob("generate-*"))) == 3
    result = runner.invoke(main, [*codi, "--set", "augmenter.learning_rate=0.002"])  # training reads it
    assert result.exit_code == 0 and "train" not in results(out)["reused"]
    assert len(list(out.glob("train-*"))) == 2


def test_a_default_changed_by_a_subclass_keeps_its_stage():
    madiff = plugins.configure(plugins.lookup("augmenter", "madiff"), {})
    keys = set(madiff.training_settings())
    assert {"use_labels", "horizon", "train_steps", "ema_decay"} <= keys
    assert not keys & {"compose", "guidance_weight", "sampling_steps", "generated_episodes", "checkpoint_every", "log_every"}
    assert training_settings(madiff.config) == madiff.training_settings()
    # how often training logs is bookkeeping: it changes neither the trained model nor its stage
    often = plugins.configure(plugins.lookup("augmenter", "madiff"), {"log_every": 7})
    assert often.training_settings() == madiff.training_settings()


def interrupted_after(updates: int, monkeypatch):
    """Make training die right after writing the checkpoint at ``updates`` (as a kill would)."""
    real = trainer._checkpoint

    def checkpoint_then_die(context, state, step):
        real(context, state, step)
        if step == updates:
            raise KeyboardInterrupt(f"killed after update {step}")

    monkeypatch.setattr(trainer, "_checkpoint", checkpoint_then_die)


def train_stage(root, **overrides):
    config = build_config("smoke", overrides=["collect.episodes=24", *[f"{k}={v}" for k, v in overrides.items()]],
                          **{"augmenter.name": "codi", "labeler.name": "privileged", "device": "cpu"})
    pipeline = Pipeline(config, root)
    try:
        return pipeline.train(), pipeline
    finally:
        pipeline.close()


def test_training_resumes_from_its_last_checkpoint_and_ends_where_an_uninterrupted_run_ends(tmp_path, monkeypatch):
    settings = {"augmenter.train_steps": 60, "augmenter.checkpoint_every": 20, "augmenter.log_every": 10}
    uninterrupted, pipeline = train_stage(tmp_path / "whole", **settings)
    reference = DiffusionModel.load(uninterrupted.folder, pipeline.env, "cpu")

    with monkeypatch.context() as patch:
        interrupted_after(40, patch)
        with pytest.raises(KeyboardInterrupt):
            train_stage(tmp_path / "split", **settings)
    assert not list((tmp_path / "split").glob("train-*"))  # no half artifact ...
    checkpoints = list((tmp_path / "split").glob(".train-*.checkpoints/checkpoint.pt"))
    assert len(checkpoints) == 1 and torch.load(checkpoints[0], weights_only=True)["step"] == 40  # ... but a checkpoint

    resumed, pipeline = train_stage(tmp_path / "split", **settings)
    model = DiffusionModel.load(resumed.folder, pipeline.env, "cpu")
    assert model.updates == reference.updates == 60
    for (name, value), expected in zip(model.state_dict().items(), reference.state_dict().values()):
        torch.testing.assert_close(value, expected, rtol=0, atol=0, msg=name)
    curve = [json.loads(line)["step"] for line in (resumed.folder / "metrics.jsonl").read_text().splitlines()]
    assert curve == [10, 20, 30, 40, 50, 60]  # the training curve survives the interruption
    assert not list((tmp_path / "split").glob(".train-*"))  # checkpoints are gone once the stage is done


def test_a_saved_model_loads_back_and_samples_the_same(tmp_path):
    trained, pipeline = train_stage(tmp_path)
    first = DiffusionModel.load(trained.folder, pipeline.env, "cpu")
    again = DiffusionModel.load(trained.folder, pipeline.env, "cpu")
    assert first.consistency_threshold == again.consistency_threshold > 0
    start = torch.randn(3, 3, first.architecture.features)
    conditions = agent_conditions(torch.rand(3), 3, weight=1.0, compose=True, use_labels=True)
    samples = [m.sample(start, conditions, sampling_steps=4, eta=1.0, spacing="quadratic",
                         generator=torch.Generator().manual_seed(0)) for m in (first, again)]
    torch.testing.assert_close(samples[0], samples[1], rtol=0, atol=0)
    raw, ema = first.denoiser.state_dict(), first.sampler.state_dict()
    assert any(not torch.equal(raw[k], ema[k]) for k in raw)  # sampling uses the averaged weights, not the raw ones


def test_generation_rolls_nothing_out_the_references_come_from_collect(tmp_path, runner, monkeypatch):
    out = tmp_path / "run"
    assert runner.invoke(main, ["label", "--augmenter", "codi", "--out", str(out), *TINY]).exit_code == 0
    assert sorted(p.name for p in next(out.glob("collect-*")).glob("reference-*.npz")) == [
        "reference-expert.npz", "reference-imbalanced.npz"]

    def no_rollouts(*args, **kwargs):
        raise AssertionError("train or generate rolled the environment out")

    monkeypatch.setattr("codi_kit.data.collect.rollout", no_rollouts)
    result = runner.invoke(main, ["generate", "--augmenter", "codi", "--out", str(out), *TINY])
    assert result.exit_code == 0, result.output
    meta = json.loads(next(out.glob("generate-*/meta.json")).read_text())
    assert meta["diagnostics"]["behaviour_expert"]["quality_score"] > meta["diagnostics"]["behaviour_dataset"]["quality_score"]
    assert len(meta["diagnostics"]["probe"]["probe_margin_per_agent"]) == 3  # the model was probed from real starts


@pytest.mark.parametrize("augmenter,use_labels", [("madiff", True), ("codi", False)])
def test_the_configured_augmenter_decides_whether_labels_are_made(augmenter, use_labels, tmp_path, runner):
    out = tmp_path / "run"
    result = runner.invoke(main, ["run", "--augmenter", augmenter, "--labeler", "privileged", "--out", str(out), *TINY,
                                  "--set", f"augmenter.use_labels={str(use_labels).lower()}"])
    assert result.exit_code == 0, result.output
    assert bool(list(out.glob("label-*"))) == use_labels
    assert (results(out)["labeler"] is not None) == use_labels
    assert (results(out)["augment_diagnostics"]["label_sensitivity"] is not None) == use_labels


def test_a_horizon_longer_than_the_labelled_segments_is_an_error_naming_both(tmp_path, runner):
    out = tmp_path / "run"
    result = runner.invoke(main, ["train", "--augmenter", "codi", "--out", str(out), *TINY, "--set", "label.horizon=4",
                                  "--set", "augmenter.horizon=8"])
    assert result.exit_code == 2
    assert "augmenter.horizon=8" in result.output and "label.horizon=4" in result.output
    assert not list(out.glob("label-*"))  # found before any labels were paid for
    result = runner.invoke(main, ["train", "--augmenter", "codi", "--out", str(out), *TINY, "--set", "label.horizon=4",
                                  "--set", "augmenter.horizon=4"])
    assert result.exit_code == 0, result.output
    assert json.loads(next(out.glob("train-*/meta.json")).read_text())["diagnostics"]["horizon"] == 4


SHORTFALL = ["--augmenter", "codi", "--labeler", "privileged", "--profile", "smoke", "--quiet",
             "--set", "augmenter.branch_length=0", "--set", "augmenter.resimulate=false",
             "--set", "augmenter.consistency_threshold=1e-12", "--set", "augmenter.max_restarts=0",
             "--set", "learner.steps=3", "--set", "evaluate.episodes=3"]


def test_a_run_whose_augmenter_generated_nothing_stops_and_keeps_the_finished_stages(tmp_path, runner):
    from codi_kit.cli import main

    out = tmp_path / "run"
    result = runner.invoke(main, ["run", "--out", str(out), "--set", "collect.episodes=30", *SHORTFALL])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "augmenter 'codi' generated 0 of the 8 episodes" in lines[0]
    assert "consistency check" in lines[0] and "Traceback" not in result.output
    assert any(out.glob("train-*/model.pt")) and not any(out.glob("generate-*")) and not any(out.glob("learn-*"))
    allowed = runner.invoke(main, ["run", "--out", str(out), "--set", "collect.episodes=30", *SHORTFALL,
                                   "--set", "generate.allow_shortfall=true"])
    assert allowed.exit_code == 0, allowed.output
    results = json.loads((out / "results.json").read_text())
    assert results["generated_episodes"] == 0 and results["generation_shortfall"]["requested"] == 8
    report = (out / "report.md").read_text().splitlines()
    assert report[2].startswith("**Augmenter 'codi' generated 0 of the 8 episodes") and "original data alone" in report[2]


def test_a_plugins_distribution_and_version_key_its_stages_and_are_recorded(tmp_path, monkeypatch):
    import attrs as attrs_module

    config = build_config("smoke", overrides=["collect.episodes=20"])
    pipeline = Pipeline(config, tmp_path / "run")
    try:
        collected = pipeline.collect()
        identity = collected.meta()["inputs"]["env"]
        assert identity["distribution"] == "codi-kit" and identity["version"]
        original = plugins.lookup

        def reversioned(kind, name):  # the same env plugin, re-released
            found = original(kind, name)
            return attrs_module.evolve(found, version=found.version + ".post1") if kind == "env" else found

        monkeypatch.setattr(plugins, "lookup", reversioned)
        again = Pipeline(config, tmp_path / "run")
        try:
            assert again.collect().key != collected.key  # not the stale folder
        finally:
            again.close()
    finally:
        pipeline.close()
