"""The diffusion core: guidance, label dropout, inpainting, stitching, and the CODI/MADiff plugins."""
import json

import attrs
import numpy as np
import pytest
import torch

from codi_kit.envs.codec import identity_codec
from codi_kit.data.dataset import Dataset
from codi_kit.diffusion.denoiser import DENOISERS, AgentAttention, AgentUnet
from codi_kit.diffusion.diagnostics import expert_agreement
from codi_kit.diffusion.guidance import agent_conditions, guided_output
from codi_kit.diffusion.model import Architecture, DiffusionModel, Normaliser
from codi_kit.diffusion.sample import sample_segments
from codi_kit.diffusion.schedule import CosineSchedule
from codi_kit.diffusion.settings import DiffusionSettings
from codi_kit.diffusion.stitch import Stitcher
from codi_kit.diffusion.trainer import segment_data, training_conditions
from codi_kit.data.replay import transitions


@pytest.fixture(scope="module", params=sorted(DENOISERS))
def net(request):
    """Every denoiser the settings offer."""
    torch.manual_seed(0)
    return DENOISERS[request.param](feature_dim=18, agents=3, width=32, horizon=8).eval()


def untrained_model(denoiser: str, dataset) -> DiffusionModel:
    """An untrained diffusion model over CN observations (what stitching tests need)."""
    torch.manual_seed(0)
    architecture = Architecture(features=18, agents=3, actions=5, horizon=8, denoiser=denoiser, width=32,
                                prediction="noise", diffusion_steps=20, dynamics_hidden=16, ema_decay=0.995,
                                codec="observations")
    return DiffusionModel(architecture, Normaliser.fit(dataset, identity_codec(), "cpu"), "cpu").eval()


def test_composed_guidance_in_one_pass_equals_n_plus_one_separate_passes(net):
    x, k = torch.randn(5, 8, 3, 18), torch.full((5,), 7)
    rtg = torch.rand(5)
    conditions = agent_conditions(rtg, 3, weight=1.5, compose=True, use_labels=True)
    batched = guided_output(net, x, k, conditions)
    zeros = torch.zeros(5, 3)
    with torch.no_grad():
        unconditional = net(x, k, torch.zeros(5), torch.zeros(5), zeros, zeros)
        expected = unconditional.clone()
        for agent in range(3):  # Eq. 8: one pass per "agent i is good"
            mask = torch.zeros(5, 3)
            mask[:, agent] = 1
            expected += 1.5 * (net(x, k, rtg, torch.ones(5), mask, mask) - unconditional)
    torch.testing.assert_close(batched, expected, rtol=1e-4, atol=1e-5)


def test_nested_composition_applies_return_guidance_once(net):
    """eps_u + w (eps_R - eps_u) + sum_i w (eps_{R,z_i} - eps_R): against Eq. 8's n-fold return
    guidance, the two differ by (n - 1) w (eps_R - eps_u)."""
    x, k, rtg = torch.randn(4, 8, 3, 18), torch.full((4,), 5), torch.rand(4)
    nested = guided_output(net, x, k, agent_conditions(rtg, 3, weight=1.5, compose=True, use_labels=True, composition="nested"))
    eq8 = guided_output(net, x, k, agent_conditions(rtg, 3, weight=1.5, compose=True, use_labels=True, composition="eq8"))
    zeros = torch.zeros(4, 3)
    with torch.no_grad():
        unconditional = net(x, k, torch.zeros(4), torch.zeros(4), zeros, zeros)
        returns = net(x, k, rtg, torch.ones(4), zeros, zeros)
        expected = unconditional + 1.5 * (returns - unconditional)
        for agent in range(3):
            mask = torch.zeros(4, 3)
            mask[:, agent] = 1
            expected += 1.5 * (net(x, k, rtg, torch.ones(4), mask, mask) - returns)
    torch.testing.assert_close(nested, expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(eq8 - nested, 2 * 1.5 * (returns - unconditional), rtol=1e-4, atol=1e-4)


def test_ablation_and_madiff_conditions():
    rtg = torch.rand(4)
    without_composition = agent_conditions(rtg, 3, weight=2.0, compose=False, use_labels=True)
    assert without_composition.count == 1 and (without_composition.labels == 1).all()
    assert (without_composition.label_mask == 1).all()  # plain CFG on z = 1_n
    madiff = agent_conditions(rtg, 3, weight=1.2, compose=False, use_labels=False)
    assert madiff.count == 1 and (madiff.label_mask == 0).all() and (madiff.return_mask == 1).all()
    composed = agent_conditions(rtg, 3, weight=1.0, compose=True, use_labels=True)
    assert composed.count == 3 and torch.equal(composed.label_mask[:, 0], torch.eye(3))


def test_label_dropout_masks_each_dimension_at_the_set_rate(cn_dataset):
    index = cn_dataset.segment_index(8)
    labels = np.eye(3, dtype=np.float32)[cn_dataset.expert_mask[index[:, 0]].argmax(1)]
    data = segment_data(cn_dataset, 8, index, labels, untrained_model("mlp", cn_dataset))
    settings = DiffusionSettings(label_dropout=0.25, condition_dropout=0.0)
    rows = torch.randint(0, len(index), (20000,))
    _, return_mask, z, label_mask = training_conditions(data, rows, settings, torch.Generator().manual_seed(0))
    assert return_mask.eq(1).all()
    dropped = 1 - label_mask.mean(0)
    assert torch.allclose(dropped, torch.full((3,), 0.25), atol=0.015)  # each dimension independently
    assert abs(float((label_mask.sum(1) == 0).float().mean()) - 0.25 ** 3) < 0.01
    everything = training_conditions(data, rows, attrs.evolve(settings, condition_dropout=0.1), torch.Generator().manual_seed(1))
    assert abs(float((everything[1] == 0).float().mean()) - 0.1) < 0.01


def test_first_observation_is_preserved_exactly(net):
    schedule = CosineSchedule(20)
    first = torch.randn(4, 3, 18)
    conditions = agent_conditions(torch.rand(4), 3, weight=1.0, compose=True, use_labels=True)
    segments = sample_segments(net, schedule, first, 8, conditions, sampling_steps=5, eta=1.0, generator=torch.Generator().manual_seed(0))
    assert segments.shape == (4, 8, 3, 18)
    assert torch.equal(segments[:, 0], first)


def test_held_features_keep_their_first_value_at_every_step(net):
    first = torch.randn(4, 3, 18)
    held = torch.zeros(18, dtype=torch.bool)
    held[4:10] = True
    conditions = agent_conditions(torch.rand(4), 3, weight=1.0, compose=True, use_labels=True)
    segments = sample_segments(net, CosineSchedule(20), first, 8, conditions, sampling_steps=5, eta=1.0,
                               generator=torch.Generator().manual_seed(0), held=held)
    assert torch.equal(segments[:, 0], first)
    assert torch.equal(segments[..., held], first[:, None, :, held].expand(-1, 8, -1, -1))
    assert not torch.equal(segments[:, 1:, :, ~held], first[:, None, :, ~held].expand(-1, 7, -1, -1))


def model_with_held(denoiser: str, diffuse_actions: bool = False) -> DiffusionModel:
    """10 state features of which 4.. are held, optionally with 5 action channels."""
    held = torch.zeros(10, dtype=torch.bool)
    held[4:] = True
    normaliser = Normaliser(mean=torch.zeros(10), std=torch.ones(10), return_scale=1.0, reward_scale=1.0, held=held,
                            codec=identity_codec(), observation_mean=torch.zeros(10), observation_std=torch.ones(10))
    architecture = Architecture(features=10, agents=3, actions=5, horizon=8, denoiser=denoiser, width=16,
                                prediction="noise", diffusion_steps=20, dynamics_hidden=16, ema_decay=0.995,
                                codec="observations", diffuse_actions=diffuse_actions)
    return DiffusionModel(architecture, normaliser, "cpu")


def test_denoising_loss_ignores_held_features(cn_dataset):
    from codi_kit.diffusion.trainer import denoising_loss, loss_weights

    x0 = torch.randn(6, 8, 3, 10)
    conditions = (torch.rand(6), torch.ones(6), torch.zeros(6, 3), torch.zeros(6, 3))
    model = model_with_held("unet")
    loss = denoising_loss(model, model.denoiser, x0, conditions, torch.Generator().manual_seed(0), loss_weights(model))
    loss.backward()
    out = model.denoiser.out
    assert out.weight.grad[4:].abs().sum() == 0 and out.weight.grad[:4].abs().sum() > 0
    model = model_with_held("mlp")
    denoising_loss(model, model.denoiser, x0, conditions, torch.Generator().manual_seed(0), loss_weights(model)).backward()
    rows = model.denoiser.out[1].weight.grad.view(8, 10, 16)  # output rows per (step, feature)
    assert rows[:, 4:].abs().sum() == 0 and rows[1:, :4].abs().sum() > 0
    assert rows[0].abs().sum() == 0  # the first step is given, not predicted


def test_the_first_action_is_generated_while_the_first_state_is_given():
    from codi_kit.diffusion.trainer import denoising_loss, loss_weights

    model = model_with_held("mlp", diffuse_actions=True)
    x0 = model.encode(torch.randn(6, 8, 3, 10), torch.randint(0, 5, (6, 8, 3)))
    assert x0.shape[-1] == 15 and set(x0[..., 10:].unique().tolist()) == {-1.0, 1.0}
    conditions = (torch.rand(6), torch.ones(6), torch.zeros(6, 3), torch.zeros(6, 3))
    denoising_loss(model, model.denoiser, x0, conditions, torch.Generator().manual_seed(0),
                   loss_weights(model, action_weight=10.0)).backward()
    rows = model.denoiser.out[1].weight.grad.view(8, 15, 16)
    assert rows[0, :10].abs().sum() == 0 and rows[0, 10:].abs().sum() > 0  # a_0 is learned, s_0 is given
    first = torch.randn(4, 3, 10)
    conditions = agent_conditions(torch.rand(4), 3, weight=1.0, compose=True, use_labels=True)
    segments = model.sample(first, conditions, sampling_steps=3, eta=1.0, spacing="quadratic",
                           generator=torch.Generator().manual_seed(0))
    states, actions, error = model.transitions(segments, resimulate=True)
    assert torch.equal(states[:, 0], first) and actions.shape == (4, 7, 3) and error.shape == (4, 7)
    torch.testing.assert_close(actions, segments[:, :-1, :, 10:].argmax(-1))
    torch.testing.assert_close(states[:, 1:], model.dynamics.rollout(first, actions)[0][:, 1:])  # f_fwd's states
    assert torch.equal(states[..., 4:], first[:, None, :, 4:].expand(-1, 8, -1, -1))  # held features never drift


def test_every_denoiser_couples_agents_and_reads_each_agents_own_label():
    for name, denoiser in DENOISERS.items():
        torch.manual_seed(0)
        model = denoiser(feature_dim=10, agents=3, width=32, horizon=8).eval()
        x, k = torch.randn(2, 8, 3, 10), torch.full((2,), 5)
        base = (torch.zeros(2), torch.zeros(2), torch.zeros(2, 3), torch.zeros(2, 3))
        with torch.no_grad():
            reference = model(x, k, *base)
            moved = x.clone()
            moved[:, :, 1] += 1.0  # agent 1's stream changes ...
            assert not torch.allclose(model(moved, k, *base)[:, :, 0], reference[:, :, 0]), name  # ... agent 0 sees it
            label = torch.tensor([[0.0, 0.0, 1.0]] * 2)
            labelled = model(x, k, base[0], base[1], label, label)
        assert not torch.allclose(labelled, reference), name


@pytest.mark.parametrize("agents", [2, 3, 5])
def test_agent_attention_equals_the_library_attention_with_its_weights(agents):
    """Our broadcast attention over agents computes what nn.MultiheadAttention computes with the
    same weights, and gives the same gradients, so trained models keep their meaning."""
    torch.manual_seed(agents)
    attention = AgentAttention(32, agents)
    tokens = torch.randn(7, agents, 32, requires_grad=True)
    library, _ = attention.attention(tokens, tokens, tokens, need_weights=False)
    ours = attention.mix(tokens)
    assert torch.allclose(ours, library, atol=1e-5)
    upstream = torch.randn_like(ours)
    ours_gradients = torch.autograd.grad(ours, [tokens, *attention.attention.parameters()], upstream)
    library_gradients = torch.autograd.grad(library, [tokens, *attention.attention.parameters()], upstream)
    for mine, reference in zip(ours_gradients, library_gradients):
        assert torch.allclose(mine, reference, atol=1e-5)


@pytest.mark.parametrize("agents", [3, 5])
def test_cn_state_codec_rebuilds_real_observations_exactly(agents):
    from codi_kit.data.collect import collect
    from codi_kit_plugins.envs.mpe_cn import CooperativeNavigation

    env = CooperativeNavigation(CooperativeNavigation.Config(agents=agents))
    dataset = collect(env, "imbalanced", 6, 0)
    codec = env.state_codec()
    states = codec.encode(dataset.obs)
    assert states.shape[-1] == 4 + 2 * agents < dataset.obs.shape[-1]
    np.testing.assert_allclose(codec.decode(states), dataset.obs, atol=1e-5)
    held = states[..., list(codec.held)]  # landmarks: the same all episode long (padding is zeros)
    np.testing.assert_allclose(held, held[:, :1] * dataset.step_mask()[..., None, None], atol=1e-5)


def test_a_codec_that_does_not_rebuild_the_observations_is_refused(cn_dataset):
    from codi_kit.envs.codec import StateCodec

    broken = StateCodec("lossy", lambda obs: obs[..., :4], lambda state: np.pad(state, [(0, 0)] * (state.ndim - 1) + [(0, 14)]))
    with pytest.raises(ValueError, match="lossy"):
        broken.check(cn_dataset.obs)


@pytest.mark.parametrize("denoiser", sorted(DENOISERS))
def test_stitched_episodes_have_the_length_and_consistent_imputed_actions(denoiser, cn_dataset):
    model = untrained_model(denoiser, cn_dataset)
    settings = DiffusionSettings(sampling_steps=3, generation_batch=4, use_labels=False, compose=False,
                                 consistency_threshold=1e9)
    starts = model.normaliser.normalise(torch.as_tensor(cn_dataset.obs[:, 0])).numpy()
    stitcher = Stitcher(model, settings, starts, 0.0, 0)
    trajectories = stitcher.run(5, 25)
    assert len(trajectories) == 5 and stitcher.stats.summary()["acceptance_rate"] == 1.0
    for trajectory in trajectories:
        obs = torch.stack(trajectory.obs)
        assert len(obs) >= 26 and len(trajectory.actions) >= 25 and len(trajectory.rewards) >= 25
        assert any(np.allclose(obs[0].numpy(), start) for start in starts)  # o_0 drawn from the dataset
        imputed = torch.stack(trajectory.actions)
        _, recomputed, _ = model.transitions(obs.unsqueeze(0))
        torch.testing.assert_close(imputed, recomputed[0][: len(imputed)])


@pytest.mark.parametrize("denoiser", sorted(DENOISERS))
def test_failed_segments_are_resampled_then_restarted_then_given_up(denoiser, cn_dataset):
    model = untrained_model(denoiser, cn_dataset)
    settings = DiffusionSettings(sampling_steps=2, generation_batch=2, use_labels=False, compose=False,
                                 max_resamples=2, max_restarts=1, consistency_threshold=-1.0)
    starts = model.normaliser.normalise(torch.as_tensor(cn_dataset.obs[:, 0])).numpy()
    stitcher = Stitcher(model, settings, starts, 0.0, 0)
    trajectories, stats = stitcher.run(2, 25), stitcher.stats
    assert trajectories == [] and stats.segments_accepted == 0
    assert stats.resamples > 0 and stats.restarts > 0 and stats.abandoned > 0
    assert stats.stopped_early  # two full rounds with nothing accepted: no more time is burnt


# the paper's path: 8-step segments of states, actions by f_inv, whole stitched episodes
PAPER_PATH = [f"augmenter.{setting}" for setting in (
    "horizon=8", "diffuse_actions=false", "observation_input=false", "noise_floor=0", "sampling_steps=4",
    "branch_length=0", "keep_fraction=0.5", "guidance_scope=\"joint\"", "resimulate=false")]


@pytest.mark.parametrize("augmenter,labeler,extra", [
    ("codi", "rule", []), ("codi", "privileged", ["--set", "augmenter.compose=false"]), ("madiff", "rule", []),
    ("codi", "rule", ["--set", 'augmenter.label_embedding="team"', "--set", 'augmenter.composition="nested"'])])
def test_diffusion_augmenters_run_through_the_pipeline(tmp_path, runner, augmenter, labeler, extra):
    from codi_kit.cli import main

    out = tmp_path / "run"
    result = runner.invoke(main, ["run", "--augmenter", augmenter, "--labeler", labeler, "--out", str(out), "--profile", "smoke",
                                  "--quiet", "--set", "collect.episodes=30", "--set", "evaluate.episodes=5",
                                  "--set", "learner.steps=20", "--set", "augmenter.train_steps=10", "--set", "student.steps=10",
                                  *[a for setting in PAPER_PATH for a in ("--set", setting)], *extra])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    assert results["generated_episodes"] == 8
    diagnostics = results["augment_diagnostics"]
    assert diagnostics["generation"]["acceptance_rate"] == 1.0
    assert {"quality_score", "mean_speed", "noop_share"} <= set(diagnostics["behaviour_generated"])
    # keep_fraction 0.5: twice the episodes were sampled (4 segments of 7 steps each), the best half kept
    assert diagnostics["generation"]["segments_accepted"] == 16 * 4 and diagnostics["behaviour_sampled"]
    if augmenter == "codi":
        assert results["labeler"] == labeler and diagnostics["label_sensitivity"] is not None
        progress = diagnostics["denoised_progress"]
        assert progress["k30_labels"] != progress["k30_masked"]  # the labels reach the model's estimate
        per_agent = diagnostics["probe"]["probe_margin_per_agent"]
        assert len(per_agent) == 3 and len(set(per_agent)) == 3  # conditioning each agent in turn changes the samples
    else:
        assert results["labeler"] is None and diagnostics["label_sensitivity"] is None
    learned = json.loads((out / results["artifacts"]["learn"] / "meta.json").read_text())
    assert learned["training_episodes"] == 30 + 8
    assert json.loads((out / results["baseline"]["artifacts"]["learn"] / "meta.json").read_text())["training_episodes"] == 30


@pytest.mark.parametrize("embedding", ["own", "team"])
def test_label_embedding_own_reads_its_label_team_reads_the_whole_vector(embedding):
    """Stream 0 under z = (1, 0, 0) and (1, 1, 0): the same for "own" (it reads z_0 alone), different
    for "team" (one embedding of z); a masked label is not read by either."""
    from codi_kit.diffusion.denoiser import Conditioning

    torch.manual_seed(0)
    conditioning = Conditioning(3, 16, label_embedding=embedding)
    k, rtg, ones = torch.full((2,), 4), torch.rand(2), torch.ones(2)

    def stream(labels, mask):
        labels, mask = torch.tensor([labels] * 2), torch.tensor([mask] * 2)
        return conditioning(k, rtg, ones, labels, mask).view(2, 3, 16)

    with torch.no_grad():
        one, two = stream([1.0, 0, 0], [1.0, 1, 1]), stream([1.0, 1, 0], [1.0, 1, 1])
        hidden_one, hidden_two = stream([1.0, 0, 0], [1.0, 0, 1]), stream([1.0, 1, 0], [1.0, 0, 1])
    assert torch.equal(one[:, 0], two[:, 0]) == (embedding == "own")
    assert not torch.equal(one[:, 1], two[:, 1])  # agent 1's label changed: its stream reads it in both
    torch.testing.assert_close(hidden_one, hidden_two)


def test_own_scope_guidance_moves_only_the_conditioned_agent(net):
    x, k = torch.randn(4, 8, 3, 18), torch.full((4,), 9)
    zeros = torch.zeros(4, 3)
    with torch.no_grad():
        unconditional = net(x, k, torch.zeros(4), torch.zeros(4), zeros, zeros)
        own = guided_output(net, x, k, agent_conditions(torch.rand(4), 3, weight=2.0, compose=True, use_labels=True, good=[0], scope="own"))
        joint = guided_output(net, x, k, agent_conditions(torch.rand(4), 3, weight=2.0, compose=True, use_labels=True, good=[0], scope="joint"))
    torch.testing.assert_close(own[:, :, 1:], unconditional[:, :, 1:])  # agents 1, 2 are left alone ...
    assert not torch.allclose(own[:, :, 0], unconditional[:, :, 0])  # ... agent 0 is guided
    assert not torch.allclose(joint[:, :, 1:], unconditional[:, :, 1:])  # Eq. 8 as written moves everyone


def test_branches_start_at_real_steps_and_last_branch_length_steps(cn_dataset):
    from codi_kit.diffusion.augmenter import starting_points

    model = untrained_model("mlp", cn_dataset)
    starts, targets = starting_points(model, cn_dataset, 0.9, branch=True)
    assert len(starts) == int(cn_dataset.lengths.sum()) == len(targets)  # every real step can start a branch
    rtg = np.where(cn_dataset.step_mask(), cn_dataset.return_to_go(), np.nan)
    late = np.nanquantile(rtg, 0.9, axis=0)[-1] / model.normaliser.return_scale
    assert targets.max() == pytest.approx(late)  # the last step's return-to-go is the least negative
    settings = DiffusionSettings(sampling_steps=2, generation_batch=8, use_labels=False, compose=False,
                                 consistency_threshold=1e9)
    generated = Stitcher(model, settings, starts, targets, 0).generate(12, cn_dataset, length=2)
    # two steps and the state the second leads to, marked truncated: a learner bootstraps from it
    assert (generated.lengths == 3).all() and generated.padded_length == 3 and generated.truncated.all()
    assert generated.transition_mask().sum() == 2 * generated.episodes
    assert Dataset.merge(cn_dataset, generated).padded_length == cn_dataset.padded_length
    replay = transitions(generated, torch.device("cpu"))
    assert len(replay) == 2 * generated.episodes and not replay.done.any()
    torch.testing.assert_close(replay.next_obs[1::2], torch.as_tensor(generated.obs[:, 2]))
    real = cn_dataset.obs[cn_dataset.step_mask()]
    for first in generated.obs[:, 0]:
        assert np.abs(real - first).max(axis=(1, 2)).min() < 1e-4  # each branch starts at a real step


def test_a_shorter_horizon_takes_the_label_of_the_labelled_segment_starting_there(cn_dataset, cn_env, tmp_path):
    from codi_kit.augment import FitRequest
    from codi_kit.data.collect import References
    from codi_kit.context import StageContext
    from codi_kit.errors import CodiKitError
    from codi_kit.labeling import QualityLabels
    from codi_kit_plugins.augmenters.codi import Codi

    windows = cn_dataset.segment_index(8)
    z = np.eye(3, dtype=np.float32)[windows[:, 1] % 3]  # each labelled window names a different agent
    labels = QualityLabels(windows, z, np.full(len(windows), -1), 8)
    augmenter = Codi(Codi.Config(horizon=2, train_steps=2, width=16, batch_size=4, checkpoint_every=10))
    model = untrained_model("mlp", cn_dataset)
    data = augmenter.segments(cn_dataset, labels, model)
    short = cn_dataset.segment_index(2)
    assert len(data.x) == len(short)
    expected = np.minimum(short[:, 1], cn_dataset.lengths[short[:, 0]] - 8) % 3
    np.testing.assert_array_equal(data.labels.argmax(1).numpy(), expected)
    references = References(cn_dataset, cn_dataset)
    context = StageContext(0, torch.device("cpu"), tmp_path, cn_env)
    with pytest.raises(CodiKitError, match="augmenter.horizon=9 is longer than the labelled segments"):
        Codi(Codi.Config(horizon=9)).fit(FitRequest(cn_dataset, labels, references, context))


def test_the_cpu_path_branches_one_generated_transition_off_real_steps(tmp_path, runner):
    from codi_kit.cli import main

    out = tmp_path / "run"
    result = runner.invoke(main, ["run", "--augmenter", "codi", "--labeler", "privileged", "--out", str(out), "--profile", "smoke",
                                  "--quiet", "--set", "collect.episodes=30", "--set", "evaluate.episodes=5",
                                  "--set", "learner.steps=20", "--set", "augmenter.train_steps=10"])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    generated = Dataset.load(out / results["artifacts"]["generate"] / "generated.npz")
    original = Dataset.load(next(out.glob("collect-*/dataset.npz")))
    assert generated.episodes == 8 and (generated.lengths == 2).all() and generated.truncated.all()  # + its next state
    real = original.obs[original.step_mask()]
    assert all(np.abs(real - first).max(axis=(1, 2)).min() < 1e-4 for first in generated.obs[:, 0])
    diagnostics = json.loads((out / "results.json").read_text())["augment_diagnostics"]
    # the reported agreement is the share of generated actions the CN expert takes at their states
    from codi_kit import plugins

    env = plugins.configure(plugins.lookup("env", "mpe/cn"), {})
    expert = env.expert_policy().act(generated.obs[:, 0], generated.avail_actions[:, 0], np.random.default_rng(0), greedy=True)
    env.close()
    assert diagnostics["behaviour_generated"]["expert_agreement"] == pytest.approx((expert == generated.actions[:, 0]).mean())
    assert diagnostics["behaviour_dataset"]["expert_agreement"] == pytest.approx(0.47, abs=0.1)


@pytest.mark.parametrize("horizon", [8, 2, 5])
def test_the_authors_three_level_unet_keeps_the_segment_shape_and_couples_agents(horizon):
    torch.manual_seed(0)
    net = AgentUnet(feature_dim=23, agents=3, width=32, horizon=horizon, multipliers=(1, 4, 8)).eval()
    assert net.middle[-1].second[0].out_channels == 32 * 8  # the bottom level has width x 8 channels
    x, k = torch.randn(2, horizon, 3, 23), torch.full((2,), 3)
    base = (torch.zeros(2), torch.zeros(2), torch.zeros(2, 3), torch.zeros(2, 3))
    with torch.no_grad():
        out = net(x, k, *base)
        moved = x.clone()
        moved[:, :, 2] += 1.0
        assert out.shape == x.shape
        assert not torch.allclose(net(moved, k, *base)[:, :, 0], out[:, :, 0])


def test_a_setting_added_later_keys_training_only_when_changed():
    from codi_kit.diffusion.settings import training_settings

    default = training_settings(DiffusionSettings())
    assert "unet_multipliers" not in default  # models trained before the setting existed stay valid
    changed = training_settings(DiffusionSettings(unet_multipliers=[1, 4, 8]))
    assert changed["unet_multipliers"] == (1, 4, 8)
    assert {k: v for k, v in changed.items() if k != "unet_multipliers"} == default


def test_the_paper_profile_builds_the_authors_network():
    from codi_kit.diffusion.settings import PROFILES

    settings = DiffusionSettings(**PROFILES["paper"])
    architecture = Architecture.of(settings, features=18, agents=3, actions=5, codec=identity_codec(), observation_features=18)
    assert architecture.unet_multipliers == (1, 4, 8) and architecture.diffusion_steps == 200
    torch.manual_seed(0)
    model = DiffusionModel(architecture, Normaliser(mean=torch.zeros(23), std=torch.ones(23), return_scale=1.0, reward_scale=1.0,
                                                    held=torch.zeros(23, dtype=torch.bool), codec=identity_codec(),
                                                    observation_mean=torch.zeros(18), observation_std=torch.ones(18)), "cpu")
    assert model.denoiser.middle_attention.attention.embed_dim == 128 * 8


def test_expert_agreement_where_the_expert_moves(cn_env, cn_dataset):
    """An agent that always idles agrees with the expert wherever the expert idles, and nowhere else:
    ``where_expert_moves`` is 0 for it, while the dataset's own actions score above it."""
    idle = attrs.evolve(cn_dataset, actions=np.full_like(cn_dataset.actions, cn_env.spec.idle_action))
    idling, dataset = expert_agreement(cn_env, idle), expert_agreement(cn_env, cn_dataset)
    assert idling["where_expert_moves"] == 0.0 and idling["overall"] > 0
    assert dataset["where_expert_moves"] > 0.1
    assert dataset["where_expert_moves"] < dataset["overall"]  # the imbalanced data idles where the expert moves


def test_generated_episodes_zero_adds_as_many_transitions_as_the_data_has(tmp_path, runner):
    """The standard profile's amount: branches of one step, as many as the data has real steps."""
    from codi_kit.cli import main

    out = tmp_path / "run"
    result = runner.invoke(main, ["run", "--augmenter", "codi", "--labeler", "privileged", "--out", str(out), "--profile", "smoke",
                                  "--quiet", "--set", "collect.episodes=12", "--set", "evaluate.episodes=2",
                                  "--set", "learner.steps=5", "--set", "augmenter.train_steps=5",
                                  "--set", "augmenter.generated_episodes=0", "--set", "report.baseline=false"])
    assert result.exit_code == 0, result.output
    results = json.loads((out / "results.json").read_text())
    original = Dataset.load(next(out.glob("collect-*/dataset.npz")))
    assert results["generated_transitions"] == int(original.lengths.sum()) == results["generated_episodes"]
    learned = json.loads((out / results["artifacts"]["learn"] / "meta.json").read_text())
    assert learned["training_episodes"] == original.episodes + results["generated_episodes"]
