"""Sampling segments with the first observation held fixed (inpainting at every step, Eq. 10)."""
from __future__ import annotations

import torch

from codi_kit.diffusion.guidance import Conditions, guided_noise
from codi_kit.diffusion.schedule import CosineSchedule


@torch.no_grad()
def sample_segments(model, schedule: CosineSchedule, first: torch.Tensor, horizon: int, conditions: Conditions,
                    sampling_steps: int, eta: float, generator: torch.Generator) -> torch.Tensor:
    """Segments [B,H,N,D] (normalised) starting exactly at ``first`` [B,N,D]."""
    batch, agents, features = first.shape
    x = torch.randn((batch, horizon, agents, features), generator=generator).to(first.device)
    x[:, 0] = first
    steps = schedule.sampling_steps(sampling_steps)
    for k, k_previous in zip(steps, steps[1:] + [0]):
        epsilon = guided_noise(model, x, torch.full((batch,), k, device=first.device), conditions)
        x = schedule.ddim_step(x, epsilon, k, k_previous, eta, generator)
        x[:, 0] = first
    return x
