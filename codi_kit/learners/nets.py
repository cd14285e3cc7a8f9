"""Networks shared by learners: one MLP over agents, told apart by an agent-id one-hot."""
from __future__ import annotations

import torch
from torch import nn


def mlp(inputs: int, hidden: int, layers: int, outputs: int) -> nn.Sequential:
    sizes = [inputs] + [hidden] * layers
    blocks = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        blocks += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*blocks, nn.Linear(sizes[-1], outputs))


def with_agent_id(obs: torch.Tensor) -> torch.Tensor:
    """[..., N, O] -> [..., N, O+N]: parameter sharing with the agent's identity as input."""
    agents = obs.shape[-2]
    ids = torch.eye(agents, device=obs.device, dtype=obs.dtype).expand(*obs.shape[:-1], agents)
    return torch.cat([obs, ids], dim=-1)


class SharedAgentNetwork(nn.Module):
    """Per-agent outputs from a shared MLP: [..., N, O] -> [..., N, outputs]."""

    def __init__(self, obs_dim: int, agents: int, outputs: int, hidden: int = 256, layers: int = 2):
        super().__init__()
        self.obs_dim, self.agents, self.outputs, self.hidden, self.layers = obs_dim, agents, outputs, hidden, layers
        self.body = mlp(obs_dim + agents, hidden, layers, outputs)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.body(with_agent_id(obs))

    def shape_args(self) -> dict:
        return {"obs_dim": self.obs_dim, "agents": self.agents, "outputs": self.outputs,
                "hidden": self.hidden, "layers": self.layers}


def masked_logits(logits: torch.Tensor, avail: torch.Tensor) -> torch.Tensor:
    return logits.masked_fill(~avail, torch.finfo(logits.dtype).min)


class StateMixer(nn.Module):
    """Non-negative per-agent weights w_i(s) and a bias b(s) from the global state (OMIGA's mixer):
    a team value is sum_i w_i(s) x_i + b(s), monotone in every agent's local value."""

    def __init__(self, state_dim: int, agents: int, hidden: int = 64):
        super().__init__()
        self.embed = nn.Sequential(nn.Linear(state_dim, hidden), nn.ReLU())
        self.weights = nn.Linear(hidden, agents)
        self.bias = nn.Linear(hidden, 1)

    def forward(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.embed(state)
        return self.weights(hidden).abs(), self.bias(hidden)  # [B,N], [B,1]
