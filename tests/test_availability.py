"""Action availability in generated data: an availability model beside the dynamics models, the
imputed actions chosen among the actions it allows, and its masks stored with the generated data."""
import numpy as np
import pytest
import torch
from torch import nn

from codi_kit.envs.codec import identity_codec
from codi_kit.diffusion.dynamics import DynamicsModels
from codi_kit.diffusion.model import Architecture, DiffusionModel, Normaliser
from codi_kit.diffusion.settings import DiffusionSettings
from codi_kit.diffusion.stitch import Stitcher


def test_the_availability_model_learns_which_actions_a_state_allows():
    """Action 2 is available to agent i only where its first feature is positive."""
    torch.manual_seed(0)
    model = DynamicsModels(2, 2, 3, hidden=32, availability=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

    def batch(size):
        obs = torch.randn(size, 2, 2)
        avail = torch.ones(size, 2, 3, dtype=torch.bool)
        avail[..., 2] = obs[..., 0] > 0
        return obs, avail

    for _ in range(400):
        obs, avail = batch(128)
        actions = torch.zeros(128, 2, dtype=torch.long)
        loss, parts = model.loss(obs, actions, obs, torch.zeros(128), avail, 1.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    obs, avail = batch(1000)
    with torch.no_grad():
        predicted = model.available(obs)
    assert predicted[..., :2].all()
    assert (predicted[..., 2] == avail[..., 2]).float().mean() > 0.95
    assert "availability_loss" in parts
    assert DynamicsModels(2, 2, 3).available(obs) is None  # no model: every action is available


class Rule(nn.Module):
    """Availability by hand: action 4 only where the agent's first (normalised) feature is positive."""

    def forward(self, joint):
        obs = joint.view(*joint.shape[:-1], 3, 18)
        logits = torch.full((*obs.shape[:-1], 5), 10.0)
        logits[..., 4] = torch.where(obs[..., 0] > 0, 10.0, -10.0)
        return logits.flatten(-2)


@pytest.mark.parametrize("resimulate", [False, True])
def test_every_generated_action_is_available_under_the_stored_mask(resimulate, cn_dataset):
    torch.manual_seed(0)
    architecture = Architecture(features=18, agents=3, actions=5, horizon=3, denoiser="mlp", width=32,
                                prediction="sample", diffusion_steps=10, dynamics_hidden=16, ema_decay=0.99,
                                codec="observations", diffuse_actions=True, availability=True)
    model = DiffusionModel(architecture, Normaliser.fit(cn_dataset, identity_codec(), "cpu"), "cpu").eval()
    model.dynamics.availability = Rule()
    # push every action channel toward action 4, so the mask is what keeps it out
    model.ema.module.register_forward_hook(lambda module, args, out: out.index_add(
        -1, torch.tensor([18 + 4]), torch.full((*out.shape[:-1], 1), 50.0)))
    settings = DiffusionSettings(sampling_steps=2, generation_batch=8, use_labels=False, compose=False,
                                 consistency_threshold=1e9, resimulate=resimulate)
    starts = model.normaliser.normalise(torch.as_tensor(cn_dataset.obs[:, 0])).numpy()
    generated = Stitcher(model, settings, starts, 0.0, 0).generate(6, cn_dataset, length=4)
    valid = generated.step_mask()
    taken = np.take_along_axis(generated.avail_actions, generated.actions[..., None], -1)[..., 0]
    assert taken[valid].all()  # every generated action is available under its stored mask
    rule = model.normaliser.normalise(torch.as_tensor(generated.obs)).numpy()[..., 0] > 0
    assert np.array_equal(generated.avail_actions[..., 4][valid], rule[valid])  # the masks are the model's
    assert (generated.actions[valid] == 4).any() and (~rule[valid]).any()  # both cases happened
