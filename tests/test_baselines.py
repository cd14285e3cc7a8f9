"""The paper's two non-CODI baselines: MADiTS (integrated gradients, re-denoising the bad agents)
and MBTS (model-based trajectory stitching over the data's own states)."""
import attrs
import numpy as np
import pytest
import torch
from torch import nn

from codi_kit.diffusion.attribution import bad_agents, integrated_gradients, reward_attribution
from codi_kit.envs.codec import identity_codec
from codi_kit.diffusion.dynamics import DynamicsModels
from codi_kit.diffusion.guidance import agent_conditions
from codi_kit.diffusion.model import Architecture, DiffusionModel, Normaliser
from codi_kit.diffusion.regenerate import MADiTSSettings, repair_segments
from codi_kit.mbts.augmenter import MBTSSettings
from codi_kit.mbts.ensemble import Ensemble
from codi_kit.mbts.stitch import Trajectories, stitch


def test_integrated_gradients_of_a_linear_function_are_its_coefficients():
    coefficients = torch.tensor([1.5, -2.0, 0.25, 3.0])
    x = torch.tensor([[1.0, 1.0, 1.0, 1.0], [2.0, -3.0, 0.5, 0.0]])
    baseline = torch.tensor([0.0, 0.0, 0.0, 0.0])
    attribution = integrated_gradients(lambda p: p @ coefficients + 7.0, x, baseline)
    assert torch.allclose(attribution[0], coefficients)  # x - x' = 1: exactly the coefficients
    assert torch.allclose(attribution[1], coefficients * x[1])


def test_reward_attribution_of_a_linear_reward_model_sums_each_agents_coefficients():
    """r = w . [o_1..o_N, onehot(a_1)..onehot(a_N), o'_1..o'_N] + b: agent i gets exactly the
    terms of its own inputs, measured from the mean state with no action preferred."""
    torch.manual_seed(0)
    agents, features, actions = 3, 2, 4
    dynamics = DynamicsModels(features, agents, actions, hidden=8)
    linear = nn.Linear(2 * agents * features + agents * actions, 1)
    dynamics.reward = linear
    states = torch.randn(5, 2, agents, features)  # 5 one-step segments
    chosen = torch.randint(0, actions, (5, 1, agents))
    attribution = reward_attribution(dynamics, states, chosen)  # [5,1,N]
    w = linear.weight.detach()[0]
    w_obs = w[: agents * features].view(agents, features)
    w_act = w[agents * features: agents * (features + actions)].view(agents, actions)
    w_next = w[agents * (features + actions):].view(agents, features)
    one_hot = torch.nn.functional.one_hot(chosen[:, 0], actions).float()
    expected = ((states[:, 0] * w_obs).sum(-1) + ((one_hot - 1 / actions) * w_act).sum(-1)
                + (states[:, 1] * w_next).sum(-1))
    assert torch.allclose(attribution[:, 0], expected, atol=1e-5)
    # completeness: the attributions add up to r(x) - r(baseline)
    assert torch.allclose(attribution[:, 0].sum(-1), dynamics.predict_reward(states[:, 0], chosen[:, 0], states[:, 1])
                          - linear.bias.detach() - (w_act / actions).sum(), atol=1e-5)


def test_bad_agents_rank_low_on_average_over_the_segment():
    one_step = torch.tensor([[[3.0, 1.0, 2.0]]])
    assert bad_agents(one_step).tolist() == [[False, True, False]]
    # agent 2 is last at two of three steps, agent 1 once: only agent 2's mean rank is above 4/3
    steps = torch.tensor([[[3.0, 2.0, 1.0], [3.0, 1.0, 2.0], [1.0, 3.0, 0.0]]])
    assert bad_agents(steps).tolist() == [[False, False, True]]
    assert not bad_agents(torch.tensor([[[5.0]]])).any()  # one agent is never bad


def tiny_model(resimulate_dataset_features=4) -> DiffusionModel:
    torch.manual_seed(0)
    features, agents, actions = resimulate_dataset_features, 3, 5
    architecture = Architecture(features=features, agents=agents, actions=actions, horizon=3, denoiser="mlp", width=32,
                                prediction="sample", diffusion_steps=10, dynamics_hidden=16, ema_decay=0.99,
                                codec="observations", diffuse_actions=True)
    normaliser = Normaliser(mean=torch.zeros(features), std=torch.ones(features), return_scale=1.0, reward_scale=1.0,
                            held=torch.zeros(features, dtype=torch.bool), codec=identity_codec(),
                            observation_mean=torch.zeros(features), observation_std=torch.ones(features))
    return DiffusionModel(architecture, normaliser, "cpu").eval()


@pytest.mark.parametrize("resimulate", [False, True])
def test_madits_re_denoises_only_the_agents_it_calls_bad(resimulate):
    model = tiny_model()
    settings = MADiTSSettings(use_labels=False, compose=False, sampling_steps=3, resimulate=resimulate)
    generator = torch.Generator().manual_seed(1)
    first = torch.randn(16, 3, 4)
    conditions = agent_conditions(torch.full((16,), 0.5), 3, weight=1.2, compose=False, use_labels=False)
    segments = model.sample(first, conditions, sampling_steps=3, eta=1.0, spacing="uniform", generator=generator)
    states, actions, _ = model.transitions(segments, resimulate=resimulate)
    repair = repair_segments(model, settings, segments, states, actions, conditions, float("inf"), generator)
    assert repair.bad.any(1).float().mean() > 0.5 and not repair.bad.all(1).any()  # never every agent
    kept = ~repair.bad
    assert torch.equal(repair.states[kept[:, None].expand(-1, 3, -1)], states[kept[:, None].expand(-1, 3, -1)])
    assert torch.equal(repair.actions[kept[:, None].expand(-1, 2, -1)], actions[kept[:, None].expand(-1, 2, -1)])
    bad = repair.bad[:, None].expand(-1, 3, -1)
    assert torch.equal(repair.states[:, 0], states[:, 0])  # the first step is held for everyone
    moved = (repair.states[:, 1:] - states[:, 1:]).abs().amax(-1)[repair.bad[:, None].expand(-1, 2, -1)]
    if not resimulate:  # the bad agents' states were denoised anew (resimulated, they move only if their action did)
        assert (moved > 0).all()
    assert bad.sum() > 0


def random_dataset(episodes=24, length=6, agents=2, features=3, actions=4, seed=0):
    from codi_kit.data.dataset import Dataset

    rng = np.random.default_rng(seed)
    return Dataset(obs=rng.normal(size=(episodes, length, agents, features)).astype(np.float32),
                   actions=rng.integers(0, actions, (episodes, length, agents)),
                   rewards=rng.normal(size=(episodes, length)).astype(np.float32),
                   lengths=np.full(episodes, length, np.int64),
                   avail_actions=np.ones((episodes, length, agents, actions), bool))


def mbts_inputs(dataset, members=3):
    torch.manual_seed(0)
    normaliser = Normaliser.fit(dataset, identity_codec(), "cpu")
    ensemble = Ensemble({"features": dataset.obs.shape[-1], "agents": dataset.agents, "actions": 4, "hidden": 16,
                         "members": members}, normaliser).eval()
    states = normaliser.normalise(torch.as_tensor(dataset.obs.reshape(-1, dataset.agents, dataset.obs.shape[-1])))
    return ensemble, states


def test_mbts_stitches_only_to_the_datas_states_and_keeps_only_higher_returns():
    dataset = random_dataset()
    ensemble, states = mbts_inputs(dataset)
    settings = MBTSSettings(iterations=1, neighbours=4, value_steps=30, value_hidden=16, batch_size=32)
    trajectories, passes = stitch(dataset, states, ensemble, settings, seed=0)
    assert passes[0]["jumps"] > 0 and trajectories.stitched.any()  # an untrained ensemble finds jumps
    stitched = np.nonzero(trajectories.stitched)[0]
    generated = trajectories.to_dataset(dataset, stitched)
    steps = generated.obs[generated.step_mask()]  # [M,N,O] every generated joint observation
    real = dataset.obs[dataset.step_mask()]
    assert all((np.abs(real - step).max(axis=(1, 2)) == 0).any() for step in steps)
    assert any((generated.obs[i] != dataset.obs[e]).any() for i, e in enumerate(stitched))  # they moved somewhere
    original = Trajectories.of(dataset).returns(trajectories.lengths)[stitched]
    assert (generated.returns() > original + 0.01 * np.abs(original)).all()
    untouched = ~trajectories.stitched
    assert np.array_equal(trajectories.source[untouched], Trajectories.of(dataset).source[untouched])


def test_mbts_later_passes_stitch_over_the_grown_data_and_still_only_to_real_states():
    dataset = random_dataset(seed=3)
    ensemble, states = mbts_inputs(dataset)
    settings = MBTSSettings(iterations=3, neighbours=4, value_steps=30, value_hidden=16, batch_size=32)
    trajectories, passes = stitch(dataset, states, ensemble, settings, seed=0)
    assert len(passes) == 3
    valid = trajectories.source[trajectories.source >= 0]
    flat_real = np.nonzero(dataset.step_mask().reshape(-1))[0]
    assert np.isin(valid, flat_real).all()
    assert (trajectories.lengths <= dataset.padded_length).all()
