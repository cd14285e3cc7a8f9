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

    @property
    def count(self) -> int:
        return int(self.weights.shape[0])


def agent_conditions(return_to_go: torch.Tensor, agents: int, weight: float, compose: bool, use_labels: bool) -> Conditions:
    """Which conditions to compose for ``B`` segments with target return ``return_to_go [B]``.

    - compose (CODI, Eq. 7-8): n conditions "R and agent i is good" (z_i = 1, others masked);
    - not compose, with labels (CODI w/o Com.): one condition "R and z = 1_n";
    - without labels (MADiff): one condition "R".
    """
    batch, device = return_to_go.shape[0], return_to_go.device
    ones = torch.ones(batch, device=device)
    if use_labels and compose:
        eye = torch.eye(agents, device=device)
        label_mask = eye[:, None, :].expand(agents, batch, agents)
        return Conditions(return_to_go.expand(agents, batch), ones.expand(agents, batch), label_mask.clone(),
                          label_mask.clone(), torch.full((agents,), weight, device=device))
    labels = torch.ones(1, batch, agents, device=device) if use_labels else torch.zeros(1, batch, agents, device=device)
    return Conditions(return_to_go[None], ones[None], labels, labels.clone(), torch.full((1,), weight, device=device))


def guided_output(denoiser, x: torch.Tensor, k: torch.Tensor, conditions: Conditions) -> torch.Tensor:
    """out_u + sum_i w_i (out_i - out_u), all c+1 predictions from a single batched forward. The
    outputs are whatever the denoiser predicts (noise, sample or v); each is linear in the noise,
    so composing them is composing the noise estimates of Eq. 8."""
    c, batch = conditions.count, x.shape[0]
    agents = x.shape[2]
    zeros = torch.zeros(1, batch, device=x.device)
    return_to_go = torch.cat([zeros, conditions.return_to_go]).reshape(-1)
    return_mask = torch.cat([zeros, conditions.return_mask]).reshape(-1)
    no_labels = torch.zeros(1, batch, agents, device=x.device)
    labels = torch.cat([no_labels, conditions.labels]).reshape(-1, agents)
    label_mask = torch.cat([no_labels, conditions.label_mask]).reshape(-1, agents)
    repeated = x.repeat(c + 1, 1, 1, 1)
    outputs = denoiser(repeated, k.repeat(c + 1), return_to_go, return_mask, labels, label_mask)
    outputs = outputs.view(c + 1, batch, *x.shape[1:])
    unconditional, conditional = outputs[0], outputs[1:]
    weights = conditions.weights.view(c, 1, 1, 1, 1)
    return unconditional + (weights * (conditional - unconditional)).sum(0)  # Eq. 8
