"""MADiTS's repair of a generated segment (Yuan et al., ICLR 2025; as the CODI authors ran it,
lilh76/CODI CODI_diffusion/diffuser/utils/stitching.py): the learned team reward is attributed to
agents by integrated gradients, the agents that earn least are re-denoised with the first step and
every other agent held (inpainting), and the repaired segment must pass the same
dynamics-consistency check as any sampled segment."""
from __future__ import annotations

import attrs
import torch

from codi_kit.diffusion.attribution import bad_agents, reward_attribution
from codi_kit.diffusion.settings import DiffusionSettings, sampling


@attrs.frozen
class MADiTSSettings(DiffusionSettings):
    """The diffusion settings with MADiTS's own: both only generation reads."""

    regenerate_bad_agents: bool = sampling(True)  # re-denoise the agents integrated gradients find earn least (partially_noise)
    attribution_steps: int = sampling(10)  # interpolation points of those integrated gradients (the authors' each_ig_step_num)


def repairs(settings) -> bool:
    """Whether accepted segments are repaired: MADiTS's settings say so; no other augmenter has them."""
    return bool(getattr(settings, "regenerate_bad_agents", False))


@attrs.frozen
class Repair:
    states: torch.Tensor  # [B,H,N,D] the repaired segments' states (kept agents' unchanged)
    actions: torch.Tensor  # [B,H-1,N]
    bad: torch.Tensor  # [B,N] bool: the agents that were re-denoised
    passed: torch.Tensor  # [B] bool: the repaired segment passed the consistency check


def repair_segments(model, settings, segments: torch.Tensor, states: torch.Tensor, actions: torch.Tensor, conditions,
                    threshold: float, generator: torch.Generator) -> Repair:
    """Accepted segments [B,H,N,C] (diffused channels), their states [B,H,N,D] and actions
    [B,H-1,N] as the trajectory would keep them -> the repaired ones."""
    attribution = reward_attribution(model.dynamics, states, actions, settings.attribution_steps)  # [B,H-1,N]
    bad = bad_agents(attribution)
    given = segments.clone()
    given[..., : model.architecture.features] = states  # the kept agents keep exactly what the trajectory has
    redone = model.sample(states[:, 0], conditions, sampling_steps=settings.sampling_steps, eta=settings.eta,
                          spacing=settings.sampling_spacing, generator=generator, given=given, keep=~bad)
    new_states, new_actions, error = model.transitions(redone, settings.resimulate, only=bad)
    return Repair(new_states, new_actions, bad, error.max(dim=1).values <= threshold)
