"""Integrated gradients (Sundararajan, Taly & Yan 2017) and the per-agent reading of a learned team
reward that MADiTS uses to find the agents that under-perform in a generated segment."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch.nn import functional as F

IG_STEPS = 10  # interpolation points per path (the authors' each_ig_step_num, lilh76/CODI syn_spread.yaml)


def integrated_gradients(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, baseline: torch.Tensor,
                         steps: int = IG_STEPS) -> torch.Tensor:
    """IG_j(x) = (x_j - x'_j) * integral_0^1 df/dx_j(x' + a (x - x')) da, the straight-line path from
    ``baseline`` x' to ``x`` [B,F] with the integral taken by the midpoint rule over ``steps`` points
    (exact for an f linear in x). ``f`` maps [M,F] to [M]; the result is [B,F] and sums to about
    f(x) - f(x') (completeness)."""
    alphas = (torch.arange(steps, device=x.device, dtype=x.dtype) + 0.5) / steps
    baseline = baseline.expand_as(x)
    with torch.enable_grad():
        path = (baseline + alphas[:, None, None] * (x - baseline)).detach().requires_grad_(True)  # [steps,B,F]
        (gradients,) = torch.autograd.grad(f(path.flatten(0, 1)).sum(), path)
    return (x - baseline) * gradients.mean(0)


def reward_attribution(dynamics, states: torch.Tensor, actions: torch.Tensor, steps: int = IG_STEPS) -> torch.Tensor:
    """[B,T,N]: how much of each imputed team reward r(o_t, a_t, o_t+1) the learned reward model
    puts on each agent: the integrated gradients of its input, summed over the agent's own
    (observation, action one-hot, next observation) features. States [B,T+1,N,D] are normalised,
    so the baseline is the data's mean state (zero) with no action preferred (one-hot 1/A)."""
    batch, length, agents, features = states.shape[0], actions.shape[1], states.shape[2], states.shape[3]
    one_hot = F.one_hot(actions, dynamics.actions).to(states.dtype)
    x = torch.cat([states[:, :-1], one_hot, states[:, 1:]], -1).flatten(0, 1)  # [B*T,N,2D+A]
    baseline = torch.zeros_like(x[:1])
    baseline[..., features: features + dynamics.actions] = 1.0 / dynamics.actions

    def reward(flat: torch.Tensor) -> torch.Tensor:
        per_agent = flat.view(-1, agents, x.shape[-1])
        obs, chosen, next_obs = per_agent.split([features, dynamics.actions, features], -1)
        return dynamics.reward_of(obs, chosen, next_obs)

    attribution = integrated_gradients(reward, x.flatten(1), baseline.flatten(1), steps)
    return attribution.view(batch, length, agents, -1).sum(-1)


def bad_agents(attribution: torch.Tensor) -> torch.Tensor:
    """[B,N] bool from per-step attributions [B,T,N]: agents ranked at each step (0 = largest share
    of the reward), bad when the mean rank over the segment is above 2(N-1)/3, the authors' 4/3 at
    N = 3 (lilh76/CODI imbalance.py): at one step, the last of three."""
    agents = attribution.shape[-1]
    rank = attribution.argsort(-1, descending=True).argsort(-1).to(attribution.dtype)
    return rank.mean(1) > 2 * (agents - 1) / 3
