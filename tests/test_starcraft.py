"""StarCraft-style battles: SMAX run for real (JaxMARL, on the CPU), SMACv2 against a fake of its API."""
import json
import re
import sys

import numpy as np
import pytest

import fake_smacv2
from codi_kit import plugins
from codi_kit.cli import main
from codi_kit.data.collect import collect
from codi_kit.data.dataset import Dataset
from codi_kit.errors import CodiKitError
from codi_kit.policy import RandomPolicy
from codi_kit.progress import set_quiet
from codi_kit_plugins.envs.combat import combat_scores, shots
from tiny import tiny

TINY = tiny()


def env_named(name, **settings):
    return plugins.configure(plugins.lookup("env", name), settings)


@pytest.fixture(scope="module")
def smax_3m():
    set_quiet(True)
    return env_named("smax/3m")


@pytest.mark.parametrize("name", ["smax/3m", "smax/zerg_3v4"])
def test_smax_copies_step_together_to_the_end(name):
    env = env_named(name)
    spec = env.spec
    first = env.reset([1, 2, 3, 4])
    assert first.obs.shape == (4, spec.agents, spec.obs_dim) and first.state.shape == (4, spec.state_dim)
    assert first.avail[..., 4].all() and not first.done.any()  # stop is always available to the living
    rng, steps, ended = np.random.default_rng(0), [], np.zeros(4, bool)
    for t in range(spec.episode_limit):
        step = env.step(RandomPolicy().act(first.obs, first.avail, rng) if t == 0 else
                        RandomPolicy().act(step.obs, step.avail, rng))
        assert (step.reward[ended] == 0).all() and (step.obs[ended] == 0).all()  # ended copies stay ended
        steps.append(step.reward.copy())
        ended = step.done.copy()
        if ended.all():
            break
    assert ended.all(), "every episode ends by the episode limit"
    assert (np.array(steps) >= 0).all() and np.array(steps).sum() > 0  # damage dealt earns reward
    again = env.reset([1, 2, 3, 4])
    np.testing.assert_array_equal(again.obs, first.obs)  # seeded copies are reproducible


def test_zerg_teams_are_zerglings_and_hydralisks_mirrored_plus_one():
    env = env_named("smax/zerg_3v4")
    step = env.reset(list(range(32)))
    own_type = step.obs[..., -env.bits:].argmax(-1)  # [B, N]
    assert set(np.unique(own_type)) == {4, 5}  # both kinds appear over 32 draws, nothing else
    assert step.state.shape[1] == 7 * 12 and env.spec.actions == 5 + 4


def test_focus_fire_expert_beats_random_play(smax_3m):
    expert = collect(smax_3m, "balanced", 60, 0).returns()
    random = collect(smax_3m, "random", 60, 0).returns()
    assert expert.mean() > random.mean() + 0.5
    assert smax_3m.win_rate(expert) > 0.3 > smax_3m.win_rate(random)


def test_rule_judge_finds_the_expert_well_above_chance(smax_3m):
    data = collect(smax_3m, "imbalanced", 80, 1)
    segments = [(e, s) for e in range(data.episodes) for s in range(0, data.lengths[e] - 7, 8)]
    judged = np.array([smax_3m.rule_judge(data.obs[e, s:s + 8], data.actions[e, s:s + 8]) for e, s in segments])
    truth = np.array([data.expert_mask[e].argmax() for e, _ in segments])
    answered = judged >= 0
    assert len(segments) > 50 and answered.mean() > 0.3
    assert np.mean(judged[answered] == truth[answered]) > 0.6  # chance: 1/3
    for (e, s), answer in zip(segments, judged):  # "cannot tell" exactly where nobody fired at an enemy in range
        scores = combat_scores(smax_3m.parse(data.obs[e, s:s + 8]), data.actions[e, s:s + 8], smax_3m.layout)
        assert (answer == -1) == (scores.max() == 0)


def test_combat_text_describes_every_agent(smax_3m):
    data = collect(smax_3m, "balanced", 4, 0)
    converter = plugins.configure(plugins.lookup("text_converter", "smax/3m"), {})
    prompt = converter.prompt(data.obs[0, :data.lengths[0]], data.actions[0, :data.lengths[0]])
    assert all(f"Agent {i}:" in prompt for i in (1, 2, 3)) and "health=" in prompt
    assert "attack enemy" in prompt and "Best agent: Agent <number>" in prompt
    # the compact prompt counts, per agent, the focused shots the rule judge scores
    data = collect(smax_3m, "imbalanced", 6, 0)
    obs, actions = data.obs[0, :8], data.actions[0, :8]
    compact = converter.compact_prompt(obs, actions)
    focused = [int(n) for n in re.findall(r"shots at the weakest enemy in range (\d+)", compact)]
    assert len(focused) == 3 and len(compact) < len(converter.prompt(obs, actions)) / 2
    assert focused == shots(converter.parse(obs), actions, converter.layout)[0].sum(0).tolist()


def test_generated_smax_data_takes_only_available_actions(tmp_path, runner):
    out = tmp_path / "run"
    result = runner.invoke(main, ["run", "--env", "smax/3m", "--augmenter", "codi", "--labeler", "privileged",
                                  "--out", str(out), *TINY, "--set", "augmenter.generated_episodes=64"])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    generated = Dataset.load(out / results["artifacts"]["generate"] / "generated.npz")
    valid = np.arange(generated.obs.shape[1])[None] < generated.lengths[:, None]
    taken = np.take_along_axis(generated.avail_actions, generated.actions[..., None], -1)[..., 0]
    assert generated.episodes > 0 and taken[valid].all()
    assert not generated.avail_actions[valid].all(), "the stored masks are the availability model's, not all-true"


def test_smacv2_adapter_speaks_the_game_api(monkeypatch, tmp_path):
    fake_smacv2.install(monkeypatch, tmp_path)
    fake_smacv2.StarCraft2Env.launched.clear()
    env = env_named("smacv2/3m", copies=4)
    assert env.spec.actions == 9 and env.spec.agents == 3 and env.spec.obs_dim == 4 + 3 * 5 + 2 * 5 + 3
    data = collect(env, "balanced", 10, 0)  # batches of at most 4 games
    assert len(fake_smacv2.StarCraft2Env.launched) == 4
    assert {g.kwargs["map_name"] for g in fake_smacv2.StarCraft2Env.launched} == {"3m"}
    assert data.episodes == 10 and (data.lengths > 0).all()
    assert data.returns().mean() > collect(env, "random", 10, 0).returns().mean()
    assert 0 < env.win_rate(data.returns()) == np.mean(data.returns() > 19.9)
    zerg = env_named("smacv2/zerg_3v4", copies=2)
    game = fake_smacv2.StarCraft2Env.launched[-1]
    assert game.kwargs["map_name"] == "10gen_zerg" and (zerg.spec.agents, zerg.enemies) == (3, 4)
    env.close()
    assert all(g.closed for g in fake_smacv2.StarCraft2Env.launched[:4])


def test_smacv2_without_the_game_says_how_to_get_it(monkeypatch, tmp_path, runner):
    monkeypatch.setitem(sys.modules, "smacv2", None)
    with pytest.raises(CodiKitError, match=r"pip install \"codi-kit\[smacv2\]\".*smax/3m"):
        env_named("smacv2/3m")
    fake_smacv2.install(monkeypatch, tmp_path / "missing")
    result = runner.invoke(main, ["collect", "--env", "smacv2/zerg_3v4", "--out", str(tmp_path / "run"), *TINY])
    assert result.exit_code == 2
    line = [x for x in result.output.splitlines() if "SC2PATH" in x]
    assert len(line) == 1 and "smax/zerg_3v4" in line[0]


def test_smax_without_jaxmarl_names_the_extra(monkeypatch):
    for module in [m for m in sys.modules if m == "jaxmarl" or m.startswith("jaxmarl.")] + ["jaxmarl"]:
        monkeypatch.setitem(sys.modules, module, None)  # None in sys.modules: the import fails
    with pytest.raises(CodiKitError, match=r"smax/3m.*pip install \"codi-kit\[smax\]\""):
        env_named("smax/3m")


def test_idle_share_counts_the_battle_stop_action(smax_3m):
    from codi_kit.diffusion.diagnostics import behaviour

    data = collect(smax_3m, "random", 20, 0)
    stops = data.actions[data.step_mask()] == 4  # SMAX's stop; action 0 is a move there
    assert 0 < stops.mean() < 1 and behaviour(smax_3m, data)["noop_share"] == pytest.approx(stops.mean())
