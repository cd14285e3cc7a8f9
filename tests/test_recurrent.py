"""The recurrent learner setting and the unmerged training data it and every learner read."""
import attrs
import numpy as np
import torch

from codi_kit import plugins
from codi_kit.context import StageContext
from codi_kit.data.dataset import Dataset
from codi_kit.data.parts import DatasetParts
from codi_kit.learn import LearnRequest
from codi_kit.learners.recurrent import Episodes, RecurrentAgent, previous_actions
from codi_kit.data.replay import transitions
from codi_kit.learners.torch_policy import RecurrentPolicy


def branches(dataset: Dataset, count: int) -> Dataset:
    """``count`` one-step branches off real steps, each with the state it leads to (truncated)."""
    rows = np.arange(count)
    picked = dataset.select(rows)
    return Dataset(obs=picked.obs[:, 3:5].copy(), actions=picked.actions[:, 3:5].copy(),
                   rewards=np.stack([picked.rewards[:, 3], np.zeros(count, np.float32)], 1),
                   lengths=np.full(count, 2), avail_actions=picked.avail_actions[:, 3:5].copy(),
                   truncated=np.ones(count, bool), meta=dict(dataset.meta, source="generated"))


def test_parts_give_the_transitions_of_the_merged_dataset_without_its_padding(cn_dataset):
    generated = branches(cn_dataset, 10)
    parts = DatasetParts((cn_dataset, generated))
    flat, merged = transitions(parts, torch.device("cpu")), transitions(parts.merged(), torch.device("cpu"))
    for field in attrs.fields(type(flat)):
        torch.testing.assert_close(getattr(flat, field.name), getattr(merged, field.name))
    assert len(flat) == int(cn_dataset.lengths.sum()) + 10  # a branch is one transition and its next state
    tail = slice(len(flat) - 10, None)
    assert not flat.done[tail].any()  # the branch's end bootstraps
    torch.testing.assert_close(flat.next_obs[tail], torch.as_tensor(generated.obs[:, 1]))
    chosen = parts.select(np.array([0, 59, 60, 69]))
    assert [p.episodes for p in chosen.parts] == [2, 2] and chosen.returns()[2] == generated.returns()[0]


def test_acting_step_by_step_reproduces_the_recurrent_forward_pass(cn_dataset):
    torch.manual_seed(0)
    agent = RecurrentAgent(cn_dataset.obs.shape[-1], cn_dataset.agents, 5, hidden=16)
    obs, actions = torch.as_tensor(cn_dataset.obs[:4]), torch.as_tensor(cn_dataset.actions[:4])
    logits, _ = agent(obs, previous_actions(actions))
    policy = RecurrentPolicy(agent, torch.device("cpu"))
    policy.reset(4)
    rng = np.random.default_rng(0)
    avail = np.ones((4, cn_dataset.agents, 5), bool)
    for t in range(obs.shape[1]):
        chosen = policy.act(obs[:, t].numpy(), avail, rng)
        np.testing.assert_array_equal(chosen, logits[:, t].argmax(-1).numpy())
        policy.last = actions[:, t:t + 1]  # feed the data's actions, as training does
    assert previous_actions(actions)[:, 0].eq(-1).all()
    torch.testing.assert_close(previous_actions(actions)[:, 1:], actions[:, :-1])


def test_episode_batches_pad_each_part_only_to_the_batch(cn_dataset):
    episodes = Episodes(DatasetParts((cn_dataset, branches(cn_dataset, 10))), torch.device("cpu"), 5)
    assert len(episodes) == 70 and episodes.steps == int(cn_dataset.lengths.sum()) + 10
    only_branches = episodes.take(np.array([60, 65]))
    assert only_branches.obs.shape[1] == 2 and only_branches.valid.sum() == 2
    mixed = episodes.take(np.array([0, 65]))
    assert mixed.obs.shape[1] == cn_dataset.padded_length and mixed.valid[1].sum() == 1


def test_recurrent_bc_saves_loads_and_acts_like_itself(cn_dataset, cn_env, tmp_path):
    from codi_kit.data.collect import normalization_of
    from codi_kit.envs.evaluate import evaluate

    learner = plugins.configure(plugins.lookup("learner", "bc50"), {"steps": 30, "log_every": 10, "network": "gru",
                                                                    "episode_batch": 8})
    context = StageContext(0, torch.device("cpu"), tmp_path, cn_env, "smoke")
    policy = learner.fit(LearnRequest(DatasetParts((cn_dataset, branches(cn_dataset, 10))), context))
    learner.save(policy, tmp_path)
    loaded = learner.load(tmp_path, context)
    assert isinstance(loaded, RecurrentPolicy)
    first = evaluate(cn_env, policy, 6, 0, normalization_of(cn_dataset))
    again = evaluate(cn_env, loaded, 6, 0, normalization_of(cn_dataset))
    assert first["returns"] == again["returns"]
