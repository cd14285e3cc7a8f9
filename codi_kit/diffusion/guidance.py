"""Classifier-free guidance: plain (Eq. 3) and composed over per-agent conditions (Eq. 4, Eq. 8).

The unconditional prediction and every conditional one come from ONE forward pass over a batch
stacked as [unconditional; condition 1; ...; condition c]."""
from __future__ import annotations

import attrs
import torch


@attrs.frozen
class Conditions:
    """c conditions for a batch of B segments: returns [c,B], masks [c,B], labels [c,B,N], masks [c,B,N]."""

    return_to_go: torch.Tensor
    return_mask: torch.Tensor
    labels: torch.Tensor
    label_mask: torch.Tensor
    weights: torch.Tensor  # [c] guidance weight of each condition
    steers: torch.Tensor | None = None  # [c,B,N] the agents each condition's guidance moves; None: all (Eq. 8)
    return_weight: float | None = None  # nested composition: the return's own guidance weight; None: Eq. 8

    @property
    def count(self) -> int:
        return int(self.weights.shape[0])


COMPOSITIONS = ("eq8", "nested")


def agent_conditions(return_to_go: torch.Tensor, agents: int, *, weight: float, compose: bool, use_labels: bool,
                     good: list[int] | None = None, scope: str = "joint", composition: str = "eq8") -> Conditions:
    """Which conditions to compose for ``B`` segments with target return ``return_to_go [B]``.

    - compose (CODI, Eq. 7-8): one condition "R and agent i is good" (z_i = 1, others masked)
      per agent i in ``good`` (default: every agent);
    - not compose, with labels (CODI w/o Com.): one condition "R and z_i = 1 for every i in good";
    - without labels (MADiff): one condition "R".

    ``scope="own"``: each composed condition's guidance moves only its own agent's channels. Why:
    imbalanced data makes the conditions exclusive (when agent j is the expert, agent i is not),
    so the denoiser learns that "agent j is good" pushes agent i *away* from expert behaviour;
    composed over every j with Eq. 8's joint scope those pushes add up against the condition on i
    itself (agreement with the expert at real expert states: README "What the CPU path buys",
    benchmarks/results/exp-h2-own.json). ``"joint"`` is Eq. 8 as written.

    ``composition`` (composed conditions only): ``"eq8"`` as the authors compute it (lilh76/CODI
    ``diffusion.py``): eps_u + w sum_i (eps_{R,z_i} - eps_u), every term carrying the return, so
    return guidance counts once per agent; ``"nested"`` as Composable Diffusion (Liu et al. 2022)
    and Decision Diffuser compose conditions: eps_u + w (eps_R - eps_u) + sum_i w (eps_{R,z_i} -
    eps_R), the return once and each label on top of it.
    """
    if composition not in COMPOSITIONS:
        raise ValueError(f"composition '{composition}': choose one of {', '.join(COMPOSITIONS)}")
    batch, device = return_to_go.shape[0], return_to_go.device
    ones = torch.ones(batch, device=device)
    chosen = torch.eye(agents, device=device)[list(range(agents)) if good is None else good]  # [c,N]
    if use_labels and compose:
        label_mask = chosen[:, None, :].expand(len(chosen), batch, agents)
        return Conditions(return_to_go.expand(len(chosen), batch), ones.expand(len(chosen), batch), label_mask.clone(),
                          label_mask.clone(), torch.full((len(chosen),), weight, device=device),
                          label_mask.clone() if scope == "own" else None,
                          weight if composition == "nested" else None)
    labels = chosen.sum(0).expand(1, batch, agents) if use_labels else torch.zeros(1, batch, agents, device=device)
    return Conditions(return_to_go[None], ones[None], labels.clone(), labels.clone(), torch.full((1,), weight, device=device))


def sampling_conditions(settings, return_to_go: torch.Tensor, agents: int, good: list[int] | None = None,
                        **override) -> Conditions:
    """``agent_conditions`` as a diffusion augmenter's sampling settings ask for them (guidance weight,
    compose, labels, scope, composition); ``override`` replaces some (the goal probe always composes)."""
    chosen = dict(weight=settings.guidance_weight, compose=settings.compose, use_labels=settings.use_labels,
                  scope=settings.guidance_scope, composition=settings.composition)
    return agent_conditions(return_to_go, agents, good=good, **{**chosen, **override})


def guided_output(denoiser, x: torch.Tensor, k: torch.Tensor, conditions: Conditions,
                  first_observation: torch.Tensor | None = None) -> torch.Tensor:
    """out_u + sum_i w_i (out_i - out_u) (Eq. 8), or with ``conditions.return_weight`` the nested
    out_u + w_R (out_R - out_u) + sum_i w_i (out_i - out_R); every prediction from a single batched
    forward. The outputs are whatever the denoiser predicts (noise, sample or v); each is linear in
    the noise, so composing them is composing the noise estimates. ``first_observation`` [B,N,O] (the
    agents' first observations, for a denoiser that reads them) is the same under every condition."""
    batch, agents = x.shape[0], x.shape[2]
    nested = conditions.return_weight is not None
    head = 1 + nested  # the batch's first slots: unconditional, then (nested only) the return alone
    zeros, ones = torch.zeros(1, batch, device=x.device), torch.ones(1, batch, device=x.device)
    no_labels = torch.zeros(head, batch, agents, device=x.device)
    return_to_go = torch.cat([zeros, conditions.return_to_go[:1]][:head] + [conditions.return_to_go])
    return_mask = torch.cat([zeros, ones][:head] + [conditions.return_mask])
    labels = torch.cat([no_labels, conditions.labels])
    label_mask = torch.cat([no_labels, conditions.label_mask])
    slots = return_to_go.shape[0]
    extra = () if first_observation is None else (first_observation.repeat(slots, 1, 1),)
    outputs = denoiser(x.repeat(slots, 1, 1, 1), k.repeat(slots), return_to_go.reshape(-1), return_mask.reshape(-1),
                       labels.reshape(-1, agents), label_mask.reshape(-1, agents), *extra)
    outputs = outputs.view(slots, batch, *x.shape[1:])
    unconditional, conditional = outputs[0], outputs[head:]
    base = outputs[1] if nested else unconditional  # what each label term is measured against
    weights = conditions.weights.view(conditions.count, 1, 1, 1, 1)
    if conditions.steers is not None:
        weights = weights * conditions.steers[:, :, None, :, None]  # [c,B,1,N,1]: condition i moves agent i
    guided = unconditional + (weights * (conditional - base)).sum(0)  # Eq. 8
    if nested:
        guided = guided + conditions.return_weight * (base - unconditional)  # the return's guidance, once
    return guided
