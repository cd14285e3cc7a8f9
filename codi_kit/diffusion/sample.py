"""Sampling segments with the first observation held fixed (inpainting at every step, Eq. 10)."""
from __future__ import annotations

import torch

from codi_kit.diffusion.guidance import Conditions, guided_output
from codi_kit.diffusion.schedule import CosineSchedule


def inpaint(x: torch.Tensor, first: torch.Tensor, held: torch.Tensor | None = None) -> torch.Tensor:
    """Put what generation is given into segments ``x`` [B,H,N,D] (in place): the first step
    ``first`` [B,N,D] and, at every step, its ``held`` features ([D] bool)."""
    x[:, 0] = first
    if held is not None:
        x[..., held] = first[:, None][..., held]
    return x


@torch.no_grad()
def sample_segments(denoiser, schedule: CosineSchedule, first: torch.Tensor, horizon: int, conditions: Conditions,
                    sampling_steps: int, eta: float, generator: torch.Generator,
                    held: torch.Tensor | None = None, spacing: str = "uniform") -> torch.Tensor:
    """Segments [B,H,N,D] (normalised) starting exactly at ``first`` [B,N,D]; the ``held`` features
    [D] (bool) keep their o_0 value at every step."""
    batch, agents, features = first.shape
    x = torch.randn((batch, horizon, agents, features), generator=generator).to(first.device)
    x = inpaint(x, first, held)
    steps = schedule.sampling_steps(sampling_steps, spacing)
    for k, k_previous in zip(steps, steps[1:] + [0]):
        output = guided_output(denoiser, x, torch.full((batch,), k, device=first.device), conditions)
        noise = schedule.noise_from(denoiser.prediction, x, k, output)
        x = inpaint(schedule.ddim_step(x, noise, k, k_previous, eta, generator), first, held)
    return x
