"""Training of the conditional denoiser (paper Eq. 6) jointly with the dynamics models (Eq. 9)."""
from __future__ import annotations

import attrs
import numpy as np
import torch

from codi_kit.codec import StateCodec, identity_codec
from codi_kit.dataset import Dataset
from codi_kit.diffusion.denoiser import DENOISERS
from codi_kit.diffusion.dynamics import DynamicsModels
from codi_kit.diffusion.sample import inpaint
from codi_kit.diffusion.schedule import CosineSchedule
from codi_kit.diffusion.settings import DiffusionSettings
from codi_kit.progress import progress_bar
from codi_kit.replay import transitions


@attrs.define
class SegmentData:
    """Normalised training segments: x [M,H,N,O], initial RTG [M], labels z [M,N] (or None)."""

    x: torch.Tensor
    return_to_go: torch.Tensor
    labels: torch.Tensor | None
    mean: torch.Tensor  # [O] observation normalisation
    std: torch.Tensor
    return_scale: float
    reward_scale: float
    held: torch.Tensor  # [O] bool: features held from o_0 at every step (constant within an episode)
    codec: StateCodec = attrs.field(factory=identity_codec)  # what x is: observations or an env's states

    def normalise(self, obs):
        return (obs - self.mean) / self.std

    def denormalise(self, x):
        return x * self.std + self.mean

    def observations(self, x: torch.Tensor) -> np.ndarray:
        """Normalised diffused segments -> observations (numpy)."""
        return self.codec.decode(self.denormalise(x).cpu().numpy())


def segment_data(dataset: Dataset, horizon: int, index: np.ndarray, labels: np.ndarray | None, device,
                 codec: StateCodec | None = None) -> SegmentData:
    """``dataset`` holds what is diffused in its ``obs``: observations, or ``codec``'s states."""
    codec = codec or identity_codec()
    valid = dataset.step_mask()
    steps = dataset.obs[valid]  # [S,N,O]
    mean = torch.as_tensor(steps.reshape(-1, steps.shape[-1]).mean(0), device=device)
    std = torch.as_tensor(steps.reshape(-1, steps.shape[-1]).std(0) + 1e-3, device=device)
    return_to_go = dataset.return_to_go()
    return_scale = float(np.abs(return_to_go[:, 0]).max() or 1.0)
    reward_scale = float(dataset.rewards[valid].std() or 1.0)
    x = (torch.as_tensor(dataset.segments("obs", index, horizon), device=device) - mean) / std
    rtg = torch.as_tensor(return_to_go[index[:, 0], index[:, 1]] / return_scale, device=device, dtype=torch.float32)
    z = None if labels is None else torch.as_tensor(labels, device=device)
    held_mask = torch.zeros(x.shape[-1], dtype=torch.bool, device=device)
    held_mask[list(codec.held)] = True
    return SegmentData(x, rtg, z, mean, std, return_scale, reward_scale, held_mask, codec)


def training_conditions(data: SegmentData, rows: torch.Tensor, settings: DiffusionSettings, generator: torch.Generator):
    """Conditions of a training batch with label dropout (each dimension, p=0.25) and whole-condition
    dropout (the unconditional branch)."""
    batch, agents = rows.shape[0], data.x.shape[2]
    device = data.x.device

    def uniform(*shape):
        return torch.rand(*shape, generator=generator).to(device)

    keep_all = (uniform(batch) >= settings.condition_dropout).float()
    return_mask = keep_all
    if data.labels is None:
        return data.return_to_go[rows], return_mask, torch.zeros(batch, agents, device=device), torch.zeros(batch, agents, device=device)
    label_mask = (uniform(batch, agents) >= settings.label_dropout).float() * keep_all[:, None]
    return data.return_to_go[rows], return_mask, data.labels[rows], label_mask


def denoising_loss(model, schedule, x0, conditions, generator, held: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 6: || eps - eps_theta(x_k, k | R, z) ||^2 with the first observation and the held
    features kept clean (they are always given at generation: inpainting)."""
    batch = x0.shape[0]
    k = torch.randint(1, schedule.steps + 1, (batch,), generator=generator).to(x0.device)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    noisy = inpaint(schedule.noise(x0, k, noise), x0[:, 0], held)
    error = (model(noisy, k, *conditions) - schedule.target(model.prediction, x0, k, noise))[:, 1:]
    return (error if held is None else error[..., ~held]).pow(2).mean()


def train_models(dataset: Dataset, data: SegmentData, settings: DiffusionSettings, context, description: str):
    """The denoiser and the dynamics models, trained side by side for ``train_steps`` updates."""
    device, spec = context.device, context.env.spec
    torch.manual_seed(context.seed)
    agents, features = data.x.shape[2], data.x.shape[3]
    model = DENOISERS[settings.denoiser](features, agents, settings.width, settings.horizon, settings.prediction).to(device)
    dynamics = DynamicsModels(features, agents, spec.actions, settings.dynamics_hidden).to(device)
    schedule = CosineSchedule(settings.diffusion_steps, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    dynamics_optimizer = torch.optim.Adam(dynamics.parameters(), lr=settings.dynamics_learning_rate)
    replay = transitions(dataset, device)
    real_steps = torch.nonzero(replay.done == 0).squeeze(1)  # an episode's last step has no next observation
    generator = torch.Generator().manual_seed(context.seed)
    with progress_bar(settings.train_steps, description) as bar:
        for step in range(1, settings.train_steps + 1):
            rows = torch.randint(0, data.x.shape[0], (settings.batch_size,), generator=generator).to(device)
            loss = denoising_loss(model, schedule, data.x[rows], training_conditions(data, rows, settings, generator), generator,
                                  data.held)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            picked = torch.randint(0, len(real_steps), (settings.batch_size,), generator=generator).to(device)
            batch = replay.take(real_steps[picked])
            dynamics_loss, parts = dynamics.loss(data.normalise(batch["obs"]), batch["actions"], data.normalise(batch["next_obs"]),
                                                 batch["rewards"], batch["avail"], data.reward_scale)
            dynamics_optimizer.zero_grad()
            dynamics_loss.backward()
            dynamics_optimizer.step()
            bar.advance()
            if step % settings.log_every == 0 or step == settings.train_steps:
                record = {"step": step, "denoising_loss": loss.item(), **{k: float(v) for k, v in parts.items()}}
                context.log_metrics(record)
                bar.update(loss=record["denoising_loss"], inverse=record["inverse_loss"])
    return model.eval(), dynamics.eval(), schedule
