"""Every registered component of every kind runs through a tiny pipeline, parametrised over the
registry (BenchMARL's habit): a plugin added tomorrow, bundled or pip-installed, is tested the day
it is added, without a new test. Learners have their own registry-wide tests in test_learners.py.

A plugin that needs something from outside (a server, a model folder, the StarCraft II game)
gets it from ``resources`` / ``outside_env`` (the game is the fake of smacv2's API in
fake_smacv2.py); every other plugin runs on its defaults at the smoke profile.
"""
import json

import numpy as np
import pytest

from codi_kit import plugins
from codi_kit.cli import main
from codi_kit.data.dataset import Dataset
from codi_kit.report.figures import episodes_figure
import fake_smacv2
from conftest import FakeServer, build_tiny_causal_lm, completion
from tiny import tiny

TINY = tiny(**{"learner.log_every": 10})


def names(kind):
    return [r.name for r in plugins.registrations(kind)]


@pytest.fixture
def openai_server(httpserver, monkeypatch):
    """A fake OpenAI-compatible server on 127.0.0.1 that names agent 1 (and records the prompts)."""
    monkeypatch.setenv("CODI_KIT_TEST_KEY", "sk-test")
    return FakeServer(httpserver, lambda body, n: completion("Best agent: Agent 1"))


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    return build_tiny_causal_lm(tmp_path_factory.mktemp("registry-lm"), chat_template=False)


def resources(request, name) -> list[str]:
    """``--set`` options a labeler needs from outside the toolkit."""
    if name == "openai":
        server = request.getfixturevalue("openai_server").server
        return ["--set", f"labeler.base_url=\"{server.url_for('/v1')}\"", "--set", "labeler.api_key_env=\"CODI_KIT_TEST_KEY\""]
    if name == "hf":
        return ["--set", f"labeler.model=\"{request.getfixturevalue('tiny_lm')}\"", "--set", "labeler.device=\"cpu\""]
    return []


def outside_env(name, monkeypatch, tmp_path) -> None:
    """What an env needs from outside: smacv2's envs get the fake game."""
    if name.startswith("smacv2/"):
        fake_smacv2.install(monkeypatch, tmp_path)


@pytest.mark.parametrize("name", names("env"))
def test_every_env_runs_the_pipeline(name, tmp_path, runner, monkeypatch):
    outside_env(name, monkeypatch, tmp_path)
    out = tmp_path / "run"
    result = runner.invoke(main, ["run", "--env", name, "--augmenter", "none", "--out", str(out), *TINY])
    assert result.exit_code == 0, result.output
    data = Dataset.load(next(out.glob("collect-*/dataset.npz")))
    spec = plugins.configure(plugins.lookup("env", name), {}).spec
    assert data.obs.shape[2:] == (spec.agents, spec.obs_dim) and data.episodes == 24
    assert (data.expert_mask.sum(1) == 1).all()  # the imbalance protocol: one expert per episode
    assert 0 < data.lengths.min() and data.lengths.max() <= spec.episode_limit
    results = json.loads((out / "results.json").read_text())
    assert results["R_hi"] > results["R_lo"], "the env's expert must beat the imbalanced data"
    assert np.isfinite(results["normalized_return"])
    # the report's picture: every bundled env draws an episode (a third party's may leave the probe out)
    registration = plugins.lookup("env", name)
    env = plugins.configure(registration, {})
    try:
        drew = episodes_figure(env, data, data.select(np.arange(2)), tmp_path / "episodes.png")
    finally:
        env.close()
    assert drew or registration.distribution != "codi-kit"
    assert not drew or (tmp_path / "episodes.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("name", names("text_converter"))
def test_every_text_converter_feeds_an_llm_teacher(name, tmp_path, runner, request, monkeypatch):
    outside_env(name, monkeypatch, tmp_path)
    out = tmp_path / "run"
    result = runner.invoke(main, ["label", "--env", name, "--labeler", "openai", "--out", str(out), *TINY,
                                  *resources(request, "openai")])
    assert result.exit_code == 0, result.output
    prompts = [r["messages"][0]["content"] for r in request.getfixturevalue("openai_server").requests]
    agents = plugins.configure(plugins.lookup("env", name), {}).spec.agents
    assert prompts and all(f"Agent {i + 1}" in prompts[0] for i in range(agents))
    stats = json.loads(next(out.glob("label-*/meta.json")).read_text())["stats"]
    assert stats["teacher_answered"] == stats["teacher_asked"] > 0


@pytest.mark.parametrize("name", names("labeler"))
def test_every_labeler_labels_every_segment(name, tmp_path, runner, request):
    out = tmp_path / "run"
    result = runner.invoke(main, ["label", "--labeler", name, "--out", str(out), *TINY, *resources(request, name)])
    assert result.exit_code == 0, result.output
    labels = np.load(next(out.glob("label-*/labels.npz")))
    data = Dataset.load(next(out.glob("collect-*/dataset.npz")))
    assert len(labels["segments"]) == len(data.segment_index(int(labels["horizon"])))
    np.testing.assert_allclose(labels["z"].sum(1), 1.0, rtol=1e-5)  # a distribution over agents per segment
    stats = json.loads(next(out.glob("label-*/meta.json")).read_text())["stats"]
    assert stats["teacher_asked"] > 0 and stats["teacher_answered"] > 0


@pytest.mark.parametrize("name", names("augmenter"))
def test_every_augmenter_generates_data_the_learner_trains_on(name, tmp_path, runner):
    out = tmp_path / "run"
    result = runner.invoke(main, ["run", "--augmenter", name, "--labeler", "privileged", "--out", str(out), *TINY])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    generated = Dataset.load(out / results["artifacts"]["generate"] / "generated.npz")
    original = Dataset.load(next(out.glob("collect-*/dataset.npz")))
    assert generated.episodes == results["generated_episodes"]
    assert (generated.provenance == f"generated:{name}").all()
    if generated.episodes:
        # the data's schema, episodes at most as long as the data's (short branches are not padded)
        assert generated.obs.shape[2:] == original.obs.shape[2:] and generated.actions.shape[2:] == original.actions.shape[2:]
        assert generated.padded_length <= original.padded_length
    learned = json.loads((out / results["artifacts"]["learn"] / "meta.json").read_text())
    assert learned["training_episodes"] == original.episodes + generated.episodes
    registration = plugins.lookup("augmenter", name)
    augmenter = plugins.configure(registration, dict(getattr(registration.factory, "PROFILES", {}).get("smoke", {})))
    assert bool(list(out.glob("train-*"))) == (augmenter.training_settings() is not None)
    assert bool(list(out.glob("label-*"))) == augmenter.needs_labels
