"""The learned models MBTS stitches with: an ensemble of the core's dynamics models (f_inv, f_fwd
and r_fwd of paper Eq. 9), each from its own initialisation and minibatches. The authors train 7
forward models and keep 5 (lilh76/CODI MBTS/TrajectoryStitching.py); we train the ones we keep.
Their forward models are Gaussians p(s'|s) without the action and a CVAE proposes the action
between two states; ours are f_fwd(s, a) with the action f_inv(s, s') proposes: for discrete
actions f_inv is exactly that proposal (a classifier of the action between two states), and the
same models already serve CODI's consistency check."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from codi_kit.run.atomic import atomic_path, write_json
from codi_kit.envs.codec import codec_named
from codi_kit.diffusion.dynamics import DynamicsModels
from codi_kit.diffusion.model import Normaliser
from codi_kit.errors import CodiKitError
from codi_kit.learners.nets import masked_logits
from codi_kit.progress import progress_bar
from codi_kit.data.replay import Transitions
from codi_kit.torch_utils import adam

MODEL_FILE, DESCRIPTION_FILE = "ensemble.pt", "ensemble.json"


class Ensemble(nn.Module):
    """Works in the normaliser's units of the joint state [...,N,D]."""

    def __init__(self, shape: dict, normaliser: Normaliser):
        super().__init__()
        self.shape, self.normaliser = shape, normaliser
        self.members = nn.ModuleList(DynamicsModels(shape["features"], shape["agents"], shape["actions"], shape["hidden"],
                                                    normaliser.held) for _ in range(shape["members"]))
        self.to(normaliser.mean.device)

    @torch.no_grad()
    def errors(self, obs: torch.Tensor, next_obs: torch.Tensor, actions: torch.Tensor | None = None) -> torch.Tensor:
        """[M,...]: each member's mean |s' - f_fwd(s, a)| over every feature (held ones too: a jump to
        another episode's landmarks is implausible), with a the given actions or its own f_inv's."""
        errors = []
        for member in self.members:
            taken = member.action_logits(obs, next_obs).argmax(-1) if actions is None else actions
            errors.append((next_obs - member.predict_next(obs, taken)).abs().mean(dim=(-1, -2)))
        return torch.stack(errors)

    @torch.no_grad()
    def action(self, obs: torch.Tensor, next_obs: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
        """The joint action [...,N] between two states: the argmax of the members' mean f_inv logits."""
        logits = torch.stack([member.action_logits(obs, next_obs) for member in self.members]).mean(0)
        return masked_logits(logits, avail).argmax(-1)

    @torch.no_grad()
    def reward(self, obs: torch.Tensor, actions: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        """The members' mean r_fwd, in dataset units."""
        rewards = torch.stack([member.predict_reward(obs, actions, next_obs) for member in self.members])
        return rewards.mean(0) * self.normaliser.reward_scale

    def fit(self, replay: Transitions, steps: int, batch_size: int, learning_rate: float, seed: int, log) -> list[dict]:
        """``steps`` updates of every member (Eq. 9's three terms) on the real transitions of ``replay``
        (states in the codec's units, not yet normalised)."""
        real = torch.nonzero(replay.done == 0).squeeze(1)
        curve = []
        with progress_bar(steps * len(self.members), "train MBTS ensemble") as bar:
            for index, member in enumerate(self.members):
                generator = torch.Generator().manual_seed(seed * 100 + index)
                optimizer = adam(member.parameters(), learning_rate)
                for step in range(1, steps + 1):
                    parts = member.update(optimizer, replay, real, batch_size, generator, self.normaliser.normalise,
                                          self.normaliser.reward_scale)
                    bar.advance()
                    if step == steps:
                        record = {"member": index, "step": step, **{k: float(v) for k, v in parts.items()}}
                        curve.append(record)
                        log(record)
        return curve

    def save(self, folder: Path) -> None:
        with atomic_path(folder / MODEL_FILE) as temporary:
            torch.save(self.state_dict(), temporary)
        write_json(folder / DESCRIPTION_FILE, {"shape": self.shape, "normaliser": self.normaliser.describe(),
                                               "codec": self.normaliser.codec.name})

    @staticmethod
    def load(folder: Path, env, device) -> Ensemble:
        try:
            description = json.loads((folder / DESCRIPTION_FILE).read_text())
            codec = codec_named(env, description["codec"])
            ensemble = Ensemble(description["shape"], Normaliser.from_description(description["normaliser"], codec, device))
            ensemble.load_state_dict(torch.load(folder / MODEL_FILE, map_location=device, weights_only=True))
        except (OSError, KeyError, TypeError, ValueError, RuntimeError) as error:
            raise CodiKitError(f"{folder}: not a readable MBTS ensemble: {error}") from None
        return ensemble.eval()
