"""Sampling segments with what generation is given held fixed (inpainting at every step, Eq. 10):
the first step's state and the held features at every step. Action channels, where the model
diffuses them, are never given: the first step's action is generated while its state is known.
Re-denoising (MADiTS) also holds whole agents: every channel of the agents it keeps, at every step."""
from __future__ import annotations

import torch

from codi_kit.diffusion.guidance import Conditions, guided_output
from codi_kit.diffusion.schedule import CosineSchedule


def known_mask(horizon: int, features: int, held: torch.Tensor | None = None, device=None) -> torch.Tensor:
    """[H, F] bool: which state features generation is given (step 0's, and ``held`` [F] at every step)."""
    known = torch.zeros(horizon, features, dtype=torch.bool, device=device)
    known[0] = True
    if held is not None:
        known[:, held] = True
    return known


def inpaint(x: torch.Tensor, first: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Put what generation is given into segments ``x`` [B,H,N,C] (in place): the first step's
    state ``first`` [B,N,F] (F <= C: the state channels lead) where ``known`` [H,F] says so."""
    features = first.shape[-1]
    x[..., :features] = torch.where(known[None, :, None, :], first[:, None], x[..., :features])
    return x


@torch.no_grad()
def sample_segments(denoiser, schedule: CosineSchedule, first: torch.Tensor, horizon: int, conditions: Conditions, *,
                    sampling_steps: int, eta: float, generator: torch.Generator,
                    held: torch.Tensor | None = None, spacing: str = "uniform", channels: int | None = None,
                    first_observation: torch.Tensor | None = None, given: torch.Tensor | None = None,
                    keep: torch.Tensor | None = None) -> torch.Tensor:
    """Segments [B,H,N,C] (normalised) starting exactly at the state ``first`` [B,N,F]; the ``held``
    features [F] (bool) keep their first value at every step. ``channels`` C (default F) is the
    denoiser's width per agent and step: state features, then any action channels; ``first_observation``
    [B,N,O] the agents' first observations, for a denoiser that reads them. ``keep`` [B,N] (bool):
    agents whose every channel is taken from the segments ``given`` [B,H,N,C] at every step."""
    batch, agents, features = first.shape
    known = known_mask(horizon, features, held, first.device)

    def inpaint_all(x):
        x = inpaint(x, first, known)
        return x if keep is None else torch.where(keep[:, None, :, None], given, x)

    x = inpaint_all(torch.randn((batch, horizon, agents, channels or features), generator=generator).to(first.device))
    steps = schedule.sampling_steps(sampling_steps, spacing)
    for k, k_previous in zip(steps, steps[1:] + [0]):
        output = guided_output(denoiser, x, torch.full((batch,), k, device=first.device), conditions, first_observation)
        noise = schedule.noise_from(denoiser.prediction, x, k, output)
        x = inpaint_all(schedule.ddim_step(x, noise, k, k_previous, eta, generator))
    return x
