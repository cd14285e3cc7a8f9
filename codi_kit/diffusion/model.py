"""One trained diffusion model and everything sampling needs: the denoiser (raw weights to resume
training, an exponential moving average of them to sample with), the dynamics models of Eq. 9,
the noise schedule, the normaliser and the codec of what is diffused. ``fit`` saves it into the
train artifact; every generation, ablation and diagnostic loads it from there."""
from __future__ import annotations

import json
from pathlib import Path

import attrs
import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from codi_kit.run.atomic import atomic_path, write_json
from codi_kit.envs.codec import StateCodec, codec_named
from codi_kit.data.dataset import Dataset
from codi_kit.diffusion.denoiser import DENOISERS
from codi_kit.diffusion.dynamics import DynamicsModels
from codi_kit.diffusion.guidance import Conditions
from codi_kit.diffusion.sample import known_mask, sample_segments
from codi_kit.diffusion.schedule import CosineSchedule
from codi_kit.errors import CodiKitError

MODEL_FILE, DESCRIPTION_FILE = "model.pt", "model.json"


@attrs.frozen(kw_only=True)
class Architecture:
    """What the networks are: enough to rebuild them before their weights are loaded."""

    features: int  # per-agent size of the state that is diffused (observations or the codec's state)
    agents: int
    actions: int
    horizon: int  # segment length H
    denoiser: str
    width: int
    prediction: str  # what the denoiser outputs: "noise", "sample" or "velocity"
    diffusion_steps: int
    dynamics_hidden: int
    ema_decay: float
    codec: str  # the StateCodec's name: "observations" or the env's compact state
    diffuse_actions: bool = False  # each agent's action one-hot is diffused beside its state
    observation_input: int = 0  # >0: the denoiser reads each agent's clean first observation (this many features)
    unet_multipliers: tuple = attrs.field(default=(1, 2), converter=tuple)  # the U-Net's channel multiplier per level
    availability: bool = False  # an availability model f_avail: the data has actions that are not always available
    activation: str = "mish"  # the denoiser's nonlinearity (models saved before it was a setting: Mish)
    label_embedding: str = "own"  # what each stream reads of the labels (Conditioning): "own" or "team"

    @property
    def channels(self) -> int:
        """Per agent and step: the state features, then (when diffused) the action channels."""
        return self.features + self.actions * self.diffuse_actions

    @staticmethod
    def of(settings, features: int, agents: int, actions: int, codec: StateCodec, observation_features: int,
           availability: bool = False) -> Architecture:
        return Architecture(features=features, agents=agents, actions=actions, horizon=settings.horizon,
                            denoiser=settings.denoiser, width=settings.width, prediction=settings.prediction,
                            diffusion_steps=settings.diffusion_steps, dynamics_hidden=settings.dynamics_hidden,
                            ema_decay=settings.ema_decay, codec=codec.name, diffuse_actions=settings.diffuse_actions,
                            observation_input=observation_features * settings.observation_input,
                            unet_multipliers=settings.unet_multipliers, availability=availability,
                            activation=settings.activation, label_embedding=settings.label_embedding)


@attrs.frozen(kw_only=True)
class Normaliser:
    """Per-feature standardisation of what is diffused (and of the observations, for the denoiser's
    observation input), and the scales of returns and rewards."""

    mean: torch.Tensor  # [D]
    std: torch.Tensor  # [D]
    return_scale: float  # normalised return-to-go = RTG / return_scale
    reward_scale: float  # the reward model predicts r / reward_scale
    held: torch.Tensor  # [D] bool: features held from o_0 at every step (constant within an episode)
    codec: StateCodec
    observation_mean: torch.Tensor  # [O]
    observation_std: torch.Tensor  # [O]

    @staticmethod
    def fit(dataset: Dataset, codec: StateCodec, device) -> Normaliser:
        """From the real steps of ``dataset`` (observations; what is diffused is ``codec``'s encoding)."""
        valid = dataset.step_mask()
        observations = dataset.obs[valid].reshape(-1, dataset.obs.shape[-1])
        steps = codec.encode(dataset.obs[valid]).reshape(-1, codec.encode(dataset.obs[:1, :1]).shape[-1])
        held = torch.zeros(steps.shape[-1], dtype=torch.bool, device=device)
        held[list(codec.held)] = True

        def stats(values):
            return torch.as_tensor(values.mean(0), device=device), torch.as_tensor(values.std(0) + 1e-3, device=device)

        (mean, std), (observation_mean, observation_std) = stats(steps), stats(observations)
        return Normaliser(mean=mean, std=std, return_scale=float(np.abs(dataset.return_to_go()[:, 0]).max() or 1.0),
                          reward_scale=float(dataset.rewards[valid].std() or 1.0), held=held, codec=codec,
                          observation_mean=observation_mean, observation_std=observation_std)

    def normalise(self, x):
        return (x - self.mean) / self.std

    def denormalise(self, x):
        return x * self.std + self.mean

    def observations(self, x: torch.Tensor) -> np.ndarray:
        """Normalised diffused segments -> observations (numpy)."""
        return self.codec.decode(self.denormalise(x).cpu().numpy())

    def observation_input(self, states: torch.Tensor) -> torch.Tensor:
        """Normalised states [...,N,D] -> each agent's normalised observation [...,N,O]: what the agent
        sees, in its own frame (the denoiser's observation input)."""
        observations = torch.as_tensor(self.observations(states), device=self.mean.device)
        return (observations - self.observation_mean) / self.observation_std

    def describe(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "return_scale": self.return_scale,
                "reward_scale": self.reward_scale, "held": self.held.tolist(),
                "observation_mean": self.observation_mean.tolist(), "observation_std": self.observation_std.tolist()}

    @staticmethod
    def from_description(values: dict, codec: StateCodec, device) -> Normaliser:
        def tensor(key, dtype=torch.float32):
            return torch.tensor(values[key], dtype=dtype, device=device)

        return Normaliser(mean=tensor("mean"), std=tensor("std"), return_scale=values["return_scale"],
                          reward_scale=values["reward_scale"], held=tensor("held", torch.bool), codec=codec,
                          observation_mean=tensor("observation_mean"), observation_std=tensor("observation_std"))


class DiffusionModel(nn.Module):
    def __init__(self, architecture: Architecture, normaliser: Normaliser, device):
        super().__init__()
        a = self.architecture = architecture
        self.normaliser = normaliser
        shape = {"multipliers": a.unet_multipliers} if a.denoiser == "unet" else {}
        self.denoiser = DENOISERS[a.denoiser](a.channels, a.agents, a.width, a.horizon, a.prediction,
                                              observation_features=a.observation_input, activation=a.activation,
                                              label_embedding=a.label_embedding, **shape)
        self.ema = AveragedModel(self.denoiser, multi_avg_fn=get_ema_multi_avg_fn(a.ema_decay), use_buffers=True)
        self.dynamics = DynamicsModels(a.features, a.agents, a.actions, a.dynamics_hidden, normaliser.held, a.availability)
        self.schedule = CosineSchedule(a.diffusion_steps, device)
        self.consistency_threshold: float | None = None  # delta, chosen on real data after training
        self.updates = 0
        self.to(device)

    @property
    def sampler(self) -> nn.Module:
        """The denoiser that generation and diagnostics use: the EMA weights."""
        return self.ema.module

    def update_ema(self, step: int, every: int, start: int) -> None:
        """Before ``start`` the average copies the raw weights; after it, one EMA step every ``every``."""
        if step < start:
            self.ema.n_averaged.zero_()  # the next update copies (AveragedModel's first-average rule)
            self.ema.update_parameters(self.denoiser)
        elif step % every == 0:
            self.ema.update_parameters(self.denoiser)

    # -- what is diffused ---------------------------------------------------------------------
    @property
    def known(self) -> torch.Tensor:
        """[H,D] the state features generation is given: the first step's, and held ones at every step."""
        return known_mask(self.architecture.horizon, self.architecture.features, self.normaliser.held,
                          self.normaliser.mean.device)

    def states(self, segments: torch.Tensor) -> torch.Tensor:
        """The state channels [...,N,D] of diffused segments [...,N,C]."""
        return segments[..., : self.architecture.features]

    def encode(self, states: torch.Tensor, actions: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised states [...,N,D] (and actions [...,N]) -> the diffused channels [...,N,C]: the
        action one-hot scaled to {-1, 1}, like a normalised feature."""
        if not self.architecture.diffuse_actions:
            return states
        one_hot = torch.nn.functional.one_hot(actions, self.architecture.actions).to(states.dtype)
        return torch.cat([states, 2 * one_hot - 1], -1)

    def transitions(self, segments: torch.Tensor, resimulate: bool = False, only: torch.Tensor | None = None):
        """What diffused segments [B,H,N,C] say happened: states [B,H,N,D], actions [B,H-1,N] (the
        diffused action channels' argmax, or f_inv's reading of the states) and the consistency
        error [B,H-1] of each transition under f_fwd. ``resimulate``: the states after the first
        are f_fwd's under those actions (consistent by construction); the error is still that of
        the diffused states. ``only`` [B,N] (bool): resimulate these agents' states alone (the others
        keep theirs: re-denoising holds them)."""
        states = self.states(segments)
        scores = segments[:, :-1, :, self.architecture.features:] if self.architecture.diffuse_actions else None
        actions = None if scores is None else self.dynamics.best_available(scores, states[:, :-1])
        error, actions = self.dynamics.consistency_error(states[:, :-1], states[:, 1:], actions)
        if resimulate:
            rolled, rolled_actions = self.dynamics.rollout(states[:, 0], actions, scores)
            states = rolled if only is None else torch.where(only[:, None, :, None], rolled, states)
            actions = rolled_actions if only is None else torch.where(only[:, None, :], rolled_actions, actions)
        return states, actions, error

    # -- generation --------------------------------------------------------------------------
    def sample(self, first: torch.Tensor, conditions: Conditions, *, sampling_steps: int, eta: float, spacing: str,
               generator: torch.Generator, given: torch.Tensor | None = None, keep: torch.Tensor | None = None) -> torch.Tensor:
        """Segments [B,H,N,C] (normalised) from the given first states ``first`` [B,N,D]; with ``keep``
        [B,N], those agents' channels are held at ``given`` [B,H,N,C] (re-denoising the others)."""
        first_observation = self.normaliser.observation_input(first) if self.architecture.observation_input else None
        return sample_segments(self.sampler, self.schedule, first, self.architecture.horizon, conditions,
                               sampling_steps=sampling_steps, eta=eta, generator=generator, held=self.normaliser.held,
                               spacing=spacing, channels=self.architecture.channels,
                               first_observation=first_observation, given=given, keep=keep)

    @torch.no_grad()
    def rewards(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """Imputed team rewards [B,H-1] in dataset units, from states [B,H,N,D] and actions [B,H-1,N]."""
        return self.dynamics.predict_reward(states[:, :-1], actions, states[:, 1:]) * self.normaliser.reward_scale

    def calibrate(self, real_segments: torch.Tensor, quantile: float) -> float:
        """delta: the ``quantile`` of the worst transition's consistency error on real segments (section 3.3)."""
        _, _, error = self.transitions(real_segments)
        self.consistency_threshold = float(error.max(dim=1).values.quantile(quantile))
        return self.consistency_threshold

    # -- files -------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        with atomic_path(folder / MODEL_FILE) as temporary:
            torch.save(self.state_dict(), temporary)
        write_json(folder / DESCRIPTION_FILE, {"architecture": attrs.asdict(self.architecture),
                                               "normaliser": self.normaliser.describe(),
                                               "consistency_threshold": self.consistency_threshold,
                                               "updates": self.updates})

    @staticmethod
    def load(folder: Path, env, device) -> DiffusionModel:
        try:
            description = json.loads((folder / DESCRIPTION_FILE).read_text())
            architecture = Architecture(**description["architecture"])
            codec = codec_named(env, architecture.codec)
            model = DiffusionModel(architecture, Normaliser.from_description(description["normaliser"], codec, device), device)
            model.load_state_dict(torch.load(folder / MODEL_FILE, map_location=device, weights_only=True))
        except (OSError, KeyError, TypeError, ValueError, RuntimeError) as error:
            raise CodiKitError(f"{folder}: not a readable trained diffusion model: {error}") from None
        model.consistency_threshold, model.updates = description["consistency_threshold"], description["updates"]
        return model.eval()
