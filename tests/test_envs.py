import numpy as np
import pytest

from codi_kit import plugins
from codi_kit.data.collect import collect
from codi_kit.parallel_env import ParallelEnvAdapter
from codi_kit.policy import RandomPolicy


def make(name, **settings):
    return plugins.configure(plugins.lookup("env", name), settings)


@pytest.mark.parametrize("agents", [3, 4, 5])
def test_cn_protocols_order_balanced_above_imbalanced_above_random(agents):
    env = make("mpe/cn", agents=agents)
    assert env.spec.agents == agents and env.spec.obs_dim == 6 * agents and env.spec.actions == 5
    returns = {p: collect(env, p, 60, seed=1).returns() for p in ("balanced", "imbalanced", "random")}
    means = {p: r.mean() for p, r in returns.items()}
    # clear separation: gaps larger than three standard errors of either mean
    for high, low in (("balanced", "imbalanced"), ("imbalanced", "random")):
        error = np.hypot(returns[high].std(), returns[low].std()) / np.sqrt(60)
        assert means[high] - means[low] > 3 * error, (agents, means)
    env.close()


def test_imbalanced_protocol_has_exactly_one_expert_per_episode(cn_dataset):
    assert (cn_dataset.expert_mask.sum(axis=1) == 1).all()
    assert len(np.unique(cn_dataset.expert_mask.argmax(axis=1))) == 3


def test_cn_expert_matches_the_calibration(cn_env):
    per_agent = collect(cn_env, "balanced", 100, seed=3).returns().mean() / 3
    random_per_agent = collect(cn_env, "random", 100, seed=3).returns().mean() / 3
    assert -10.0 < per_agent < -7.5  # about -8.8 per agent per episode at N=3
    assert -32.0 < random_per_agent < -23.0  # about -27 for random play


def test_cn_rule_judge_finds_the_expert_more_often_than_chance(cn_dataset, cn_env):
    index = cn_dataset.segment_index(8)[::7]
    obs, actions = cn_dataset.segments("obs", index, 8), cn_dataset.segments("actions", index, 8)
    judged = np.array([cn_env.rule_judge(o, a) for o, a in zip(obs, actions)])
    truth = cn_dataset.expert_mask[index[:, 0]].argmax(axis=1)
    assert (judged == truth).mean() > 0.6


def test_cn_compact_prompt_summarises_the_timeline_prompt(cn_dataset):
    """Each agent's compact line is its timeline's first and last nearest-landmark distance, and the
    expert (who heads straight to a landmark) closes in more than the others on most segments."""
    import re

    converter = plugins.configure(plugins.lookup("text_converter", "mpe/cn"), {})
    index = cn_dataset.segment_index(8)[::11]
    closes_most = []
    for (episode, start), obs, actions in zip(index, cn_dataset.segments("obs", index, 8),
                                              cn_dataset.segments("actions", index, 8)):
        timeline, compact = converter.prompt(obs, actions), converter.compact_prompt(obs, actions)
        assert len(compact) < len(timeline) / 3
        distances = [float(d) for d in re.findall(r"distance to nearest landmark=([\d.]+)", timeline)]
        summary = re.findall(r"Agent (\d): ([\d.]+) -> ([\d.]+) \(([+-][\d.]+)\)", compact)
        assert [int(a) for a, *_ in summary] == [1, 2, 3]
        for i, (_, first, last, change) in enumerate(summary):
            assert float(first) == pytest.approx(distances[8 * i], abs=0.006)
            assert float(last) == pytest.approx(distances[8 * i + 7], abs=0.006)
            assert float(change) == pytest.approx(float(last) - float(first), abs=0.011)
        changes = [float(change) for *_, change in summary]
        closes_most.append(int(np.argmin(changes)) == cn_dataset.expert_mask[episode].argmax())
    assert np.mean(closes_most) > 0.5  # chance: 1/3


def test_available_actions_and_transition_shapes(cn_env):
    step = cn_env.reset([1, 2, 3, 4])
    assert step.obs.shape == (4, 3, 18) and step.avail.shape == (4, 3, 5) and step.avail.all()
    assert step.state.shape == (4, 54)
    step = cn_env.step(RandomPolicy().act(step.obs, step.avail, np.random.default_rng(0)))
    assert step.reward.shape == (4,) and step.reward.dtype == np.float32 and not step.done.any()


@pytest.mark.parametrize("agents", [2, 3, 5])
def test_cn_numpy_backend_steps_exactly_like_mpe2(agents):
    """The NumPy simulator gives bit-identical observations, states, rewards and ends to one mpe2
    world per copy, on random play crowded enough for agents to collide (the contact forces and
    the collision penalty are exercised), and past the episode's end."""
    numpy_env, mpe2_env = (make("mpe/cn", agents=agents, episode_limit=12, backend=b) for b in ("numpy", "mpe2"))
    assert numpy_env.spec == mpe2_env.spec
    seeds, rng = np.arange(30) * 11 + 5, np.random.default_rng(agents)
    ours, theirs = numpy_env.reset(seeds), mpe2_env.reset(seeds)
    collisions = 0
    for t in range(14):
        for field in ("obs", "avail", "state", "reward", "done"):
            mine, reference = getattr(ours, field), getattr(theirs, field)
            assert mine.dtype == reference.dtype and np.array_equal(mine, reference), field
        if t < 12:  # agents closer than two radii (0.15 each) collide
            apart = np.linalg.norm(ours.obs[:, :, None, 2:4] - ours.obs[:, None, :, 2:4], axis=-1)
            collisions += int(((apart < 0.3).sum(axis=(1, 2)) - agents).sum())
        moves = rng.integers(0, 5, (30, agents))
        ours, theirs = numpy_env.step(moves), mpe2_env.step(moves)
    assert collisions > 0
    mpe2_env.close()


@pytest.mark.parametrize("agents", [3, 5, 7])
def test_cn_expert_assignment_is_a_least_cost_one(agents):
    """The vectorised assignment (every permutation scored, or the Hungarian method beyond six
    agents) costs what scipy's optimum costs, copy by copy."""
    from scipy.optimize import linear_sum_assignment

    from codi_kit_plugins.envs.mpe_cn import minimum_cost_assignment

    cost = np.random.default_rng(agents).random((200, agents, agents)).astype(np.float32)
    columns = minimum_cost_assignment(cost)
    assert (np.sort(columns, axis=1) == np.arange(agents)).all()  # a permutation per copy
    ours = np.take_along_axis(cost, columns[..., None], 2).sum(axis=(1, 2))
    optimum = np.array([each[linear_sum_assignment(each)].sum() for each in cost])
    assert np.allclose(ours, optimum, atol=1e-5)


def test_world_predators_team_and_protocols():
    env = make("mpe/world")
    assert env.spec.agents == 3 and env.spec.actions == 5 and env.spec.obs_dim == 28
    returns = {p: collect(env, p, 40, seed=2).returns().mean() for p in ("balanced", "imbalanced", "random")}
    assert returns["balanced"] > returns["imbalanced"] > returns["random"], returns
    env.close()


def test_world_lean_stepping_gives_pettingzoos_parallel_episodes():
    """mpe/world steps mpe2 without PettingZoo's AEC-to-parallel wrapper: the same seeds and
    actions give the same observations, states, rewards and ends as ``parallel_env``, step by step."""
    from mpe2 import simple_world_comm_v3

    lean = make("mpe/world")
    reference = ParallelEnvAdapter(
        "mpe/world", lambda: simple_world_comm_v3.parallel_env(**lean.scenario_settings()), team=lean.team,
        scripted=lean._prey_actions, episode_limit=lean.spec.episode_limit, action_count=lambda env, agent: 5)
    assert reference.spec == lean.spec
    seeds, rng = [3, 17, 101], np.random.default_rng(0)
    steps = [lean.reset(seeds), reference.reset(seeds)]
    for t in range(lean.spec.episode_limit + 1):
        ours, theirs = steps
        assert np.array_equal(ours.obs, theirs.obs) and np.array_equal(ours.state, theirs.state), t
        assert np.array_equal(ours.reward, theirs.reward) and np.array_equal(ours.done, theirs.done), t
        if ours.done.all():
            break
        actions = rng.integers(0, 5, (len(seeds), lean.spec.agents))
        steps = [lean.step(actions), reference.step(actions)]
    assert t == lean.spec.episode_limit and steps[0].reward.any()  # ran to the limit, with rewards to compare
    lean.close(), reference.close()


def test_world_rule_judge_finds_the_intercepting_predator_and_the_prompts_say_why():
    """Summed headings towards the prey's predicted position name the expert far above chance (0.33;
    "distance shrank most" managed 0.46), and the compact prompt's counts rank the predators alike."""
    import re

    env = make("mpe/world")
    data = collect(env, "imbalanced", 40, seed=4)
    converter = plugins.configure(plugins.lookup("text_converter", "mpe/world"), {})
    index = data.segment_index(8)[::3]
    judged, counted = [], []
    for episode, start in index:
        obs, actions = data.obs[episode, start:start + 8], data.actions[episode, start:start + 8]
        judged.append(env.rule_judge(obs, actions))
        counts = [int(c) for c in re.findall(r"(\d) of 8 moves towards the prey", converter.compact_prompt(obs, actions))]
        assert len(counts) == 3
        counted.append(int(np.argmax(counts)))
    truth = data.expert_mask[index[:, 0]].argmax(axis=1)
    assert (np.array(judged) == truth).mean() > 0.85
    assert (np.array(counted) == truth).mean() > 0.7
    env.close()


def test_generic_adapter_wraps_any_parallel_env_factory():
    from mpe2 import simple_spread_v3

    env = ParallelEnvAdapter("generic/spread", lambda: simple_spread_v3.parallel_env(N=2, max_cycles=10))
    assert env.spec.agents == 2 and env.spec.episode_limit == 10 and env.spec.state_dim > 0
    data = collect(env, "random", 6, seed=0)
    assert data.obs.shape == (6, 10, 2, env.spec.obs_dim) and (data.lengths == 10).all()
    assert np.isfinite(data.rewards).all() and (data.rewards != 0).any()


def test_the_generic_adapter_requires_an_expert_for_the_expert_protocols():
    from mpe2 import simple_spread_v3

    from codi_kit.errors import CodiKitError

    env = ParallelEnvAdapter("generic/spread", lambda: simple_spread_v3.parallel_env(N=2, max_cycles=5))
    for protocol in ("imbalanced", "balanced"):
        with pytest.raises(CodiKitError, match="env 'generic/spread': no expert policy.*expert=<Policy>"):
            collect(env, protocol, 2, seed=0)
    env.close()


def test_a_shared_team_reward_is_counted_once():
    from mpe2 import simple_tag_v3

    def factory():
        return simple_tag_v3.parallel_env(num_good=1, num_adversaries=3, num_obstacles=0, max_cycles=25)

    team = ["adversary_0", "adversary_1", "adversary_2"]
    returns = {}
    for rule in ("sum", "shared"):
        env = ParallelEnvAdapter("generic/tag", factory, team=team, scripted=lambda env, obs: {"agent_0": 0},
                                 team_reward=rule)
        assert env.spec.team_reward == rule
        returns[rule] = collect(env, "random", 40, seed=3).returns()
        env.close()
    assert (returns["sum"] != 0).any()  # some catches happened
    np.testing.assert_allclose(returns["sum"], 3 * returns["shared"], rtol=1e-5)


def test_an_expert_no_better_than_the_data_is_warned_about_loudly(capsys):
    from mpe2 import simple_spread_v3

    from codi_kit.data.collect import collect_with_references
    from codi_kit.policy import RandomPolicy
    from codi_kit.progress import set_quiet

    set_quiet(True)
    try:
        env = ParallelEnvAdapter("generic/spread", lambda: simple_spread_v3.parallel_env(N=2, max_cycles=5),
                                 expert=RandomPolicy())
        collect_with_references(env, "imbalanced", 30, seed=0)
        env.close()
    finally:
        set_quiet(False)
    error = capsys.readouterr().err
    assert "warning:" in error and "generic/spread" in error and "within noise" in error
