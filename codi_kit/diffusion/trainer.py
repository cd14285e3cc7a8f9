"""Training of the conditional denoiser (paper Eq. 6) jointly with the dynamics models (Eq. 9),
resumable from checkpoints written atomically every ``checkpoint_every`` updates."""
from __future__ import annotations

import math
from typing import Callable

import attrs
import numpy as np
import torch

from codi_kit.run.atomic import atomic_path
from codi_kit.data.dataset import Dataset
from codi_kit.diffusion.model import DiffusionModel
from codi_kit.diffusion.sample import inpaint
from codi_kit.diffusion.settings import DiffusionSettings
from codi_kit.progress import progress_bar, say
from codi_kit.data.replay import transitions
from codi_kit.torch_utils import adam

CHECKPOINT_FILE = "checkpoint.pt"


@attrs.define
class SegmentData:
    """Training segments in the diffused channels: x [M,H,N,C], initial RTG [M], labels z [M,N] (or
    None) and, for a denoiser that reads them, the agents' first observations [M,N,O] (normalised)."""

    x: torch.Tensor
    return_to_go: torch.Tensor
    labels: torch.Tensor | None
    observations: torch.Tensor | None = None

    def conditions(self, rows: torch.Tensor, return_mask, labels, label_mask) -> tuple:
        """The denoiser's conditioning arguments for segments ``rows``."""
        extra = () if self.observations is None else (self.observations[rows],)
        return (self.return_to_go[rows], return_mask, labels, label_mask, *extra)


def segment_data(dataset: Dataset, horizon: int, index: np.ndarray, labels: np.ndarray | None,
                 model: DiffusionModel) -> SegmentData:
    """``dataset`` holds what is diffused in its ``obs`` (observations, or the codec's states)."""
    normaliser = model.normaliser
    device = normaliser.mean.device
    states = normaliser.normalise(torch.as_tensor(dataset.segments("obs", index, horizon), device=device))
    actions = torch.as_tensor(dataset.segments("actions", index, horizon), device=device)
    return_to_go = dataset.return_to_go()[index[:, 0], index[:, 1]] / normaliser.return_scale
    z = None if labels is None else torch.as_tensor(labels, device=device)
    observations = normaliser.observation_input(states[:, 0]) if model.architecture.observation_input else None
    return SegmentData(model.encode(states, actions), torch.as_tensor(return_to_go, device=device, dtype=torch.float32), z,
                       observations)


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
        return data.conditions(rows, return_mask, torch.zeros(batch, agents, device=device), torch.zeros(batch, agents, device=device))
    label_mask = (uniform(batch, agents) >= settings.label_dropout).float() * keep_all[:, None]
    return data.conditions(rows, return_mask, data.labels[rows], label_mask)


def loss_weights(model: DiffusionModel, action_weight: float = 1.0) -> torch.Tensor:
    """[H,C] weight of each step's channel in the denoising loss: 0 where generation is given the
    value (the first state, held features), ``action_weight`` on the first step's action channels
    (Diffuser's and the authors' action_weight: the action taken from the given state), 1 elsewhere."""
    a = model.architecture
    weights = torch.ones(a.horizon, a.channels, device=model.normaliser.mean.device)
    weights[:, : a.features] = (~model.known).float()
    weights[0, a.features:] = action_weight
    return weights


def lowest_step(settings: DiffusionSettings) -> int:
    """The least noisy step training visits: ``noise_floor`` x K (at least 1)."""
    return max(1, math.ceil(settings.noise_floor * settings.diffusion_steps))


def denoising_loss(model: DiffusionModel, denoiser, x0, conditions, generator, weights: torch.Tensor,
                   rounding: float = 0.0, lowest_step: int = 1) -> torch.Tensor:
    """Eq. 6: || target - output_theta(x_k, k | R, z) ||^2 (the target is the noise, the sample or v,
    as the denoiser predicts), weighted per step and channel by ``weights`` [H,C]; what generation
    is given (the first state, held features) is put in clean, as it is at generation (inpainting).
    ``rounding`` > 0 adds Diffusion-LM's rounding term for the diffused actions: the cross-entropy
    of the true action under a softmax of the implied clean action channels (logits x_0 . e_a).
    Noise levels are drawn uniformly from ``lowest_step``..K."""
    schedule, features = model.schedule, model.architecture.features
    batch = x0.shape[0]
    k = torch.randint(lowest_step, schedule.steps + 1, (batch,), generator=generator).to(x0.device)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device)
    noisy = inpaint(schedule.noise(x0, k, noise), x0[:, 0, :, :features], model.known)
    output = denoiser(noisy, k, *conditions)
    error = (output - schedule.target(denoiser.prediction, x0, k, noise)).pow(2)
    loss = (error * weights[None, :, None]).sum() / (weights > 0).sum() / batch / x0.shape[2]
    if rounding and model.architecture.diffuse_actions:
        logits = 2 * schedule.sample_from(denoiser.prediction, noisy, k, output)[..., features:]  # x_0 . (2 e_a - 1) + const
        loss = loss + rounding * torch.nn.functional.cross_entropy(logits.flatten(0, -2), x0[..., features:].argmax(-1).flatten())
    return loss


def train(model: DiffusionModel, data: SegmentData, dataset: Dataset, settings: DiffusionSettings, context,
          description: str, on_log: Callable[[int], dict] | None = None) -> None:
    """``train_steps`` updates of the denoiser and the dynamics models side by side, continuing from
    the last checkpoint in ``context.checkpoints`` when an earlier run was interrupted. Every
    ``log_every`` updates the losses are logged, with what ``on_log(step)`` adds (a benchmark's
    measurement of the model so far)."""
    optimizer = adam(model.denoiser.parameters(), settings.learning_rate)
    dynamics_optimizer = adam(model.dynamics.parameters(), settings.dynamics_learning_rate)
    generator = torch.Generator().manual_seed(context.seed)
    replay = transitions(dataset, data.x.device)
    real_steps = torch.nonzero(replay.done == 0).squeeze(1)  # an episode's last step has no next observation
    normalise = model.normaliser.normalise
    weights = loss_weights(model, settings.action_weight)
    state = {"model": model, "optimizer": optimizer, "dynamics_optimizer": dynamics_optimizer, "generator": generator,
             "curve": []}
    done = _resume(context, state)
    with progress_bar(settings.train_steps, description) as bar:
        bar.advance(done)
        for step in range(done + 1, settings.train_steps + 1):
            rows = torch.randint(0, data.x.shape[0], (settings.batch_size,), generator=generator).to(data.x.device)
            loss = denoising_loss(model, model.denoiser, data.x[rows], training_conditions(data, rows, settings, generator),
                                  generator, weights, settings.rounding_weight, lowest_step(settings))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.denoiser.parameters(), 1.0, foreach=True)
            optimizer.step()
            model.update_ema(step, settings.ema_every, settings.ema_start)
            parts = model.dynamics.update(dynamics_optimizer, replay, real_steps, settings.batch_size, generator, normalise,
                                          model.normaliser.reward_scale)
            model.updates = step
            bar.advance()
            if step % settings.log_every == 0 or step == settings.train_steps:
                record = {"step": step, "denoising_loss": loss.item(), **{k: float(v) for k, v in parts.items()}}
                if on_log is not None:
                    record.update(on_log(step))
                state["curve"].append(record)
                context.log_metrics(record)
                bar.update(loss=record["denoising_loss"], inverse=record["inverse_loss"])
            if context.checkpoints is not None and step % settings.checkpoint_every == 0 and step < settings.train_steps:
                _checkpoint(context, state, step)
    model.eval()


def _checkpoint(context, state: dict, step: int) -> None:
    """Everything a rerun needs to continue exactly: weights (raw, EMA, dynamics), optimiser
    moments, the sampling generator and the training curve so far; one atomic rename."""
    context.checkpoints.mkdir(parents=True, exist_ok=True)
    payload = {"step": step, "curve": state["curve"], "generator": state["generator"].get_state(),
               **{name: state[name].state_dict() for name in ("model", "optimizer", "dynamics_optimizer")}}
    with atomic_path(context.checkpoints / CHECKPOINT_FILE) as temporary:
        torch.save(payload, temporary)


def _resume(context, state: dict) -> int:
    """Load the last checkpoint into ``state``; the number of updates it had done (0: none)."""
    path = None if context.checkpoints is None else context.checkpoints / CHECKPOINT_FILE
    if path is None or not path.exists():
        return 0
    payload = torch.load(path, map_location=state["model"].schedule.alpha_bar.device, weights_only=True)
    for name in ("model", "optimizer", "dynamics_optimizer"):
        state[name].load_state_dict(payload[name])
    state["generator"].set_state(payload["generator"].cpu())
    state["curve"] = payload["curve"]
    for record in state["curve"]:  # the training curve so far, into this run's metrics log
        context.log_metrics(record)
    say(f"train: resuming from the checkpoint at update {payload['step']}")
    return int(payload["step"])
