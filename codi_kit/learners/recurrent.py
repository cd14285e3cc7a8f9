"""The recurrent agent of the authors' learners (PyMARL's ``RNNAgent`` as OffPyMARL runs it): per
agent, a GRU over the episode whose input at step t is o_t, the agent's own last action a_{t-1}
(one-hot, zeros at t = 0) and the agent's id (one-hot); parameters are shared across agents.

History matters on imbalanced data even where observations are Markov: an agent that has acted
like the expert so far is the episode's expert, so a recurrent clone can follow the expert's
mode of the data instead of the mixture of all agents' actions. Its policy, which carries the
hidden state through a rollout, is ``codi_kit.learners.torch_policy.RecurrentPolicy``.
"""
from __future__ import annotations

import attrs
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from codi_kit.data.dataset import Dataset
from codi_kit.data.parts import DatasetParts


class RecurrentAgent(nn.Module):
    """[B,T,N,O] observations and [B,T,N] last actions (-1: none) -> [B,T,N,K] logits."""

    def __init__(self, obs_dim: int, agents: int, actions: int, hidden: int = 64):
        super().__init__()
        self.obs_dim, self.agents, self.actions, self.hidden = obs_dim, agents, actions, hidden
        self.embed = nn.Linear(obs_dim + actions + agents, hidden)  # PyMARL's fc1
        self.gru = nn.GRU(hidden, hidden, batch_first=True)
        self.head = nn.Linear(hidden, actions)  # fc2

    def inputs(self, obs: torch.Tensor, last_actions: torch.Tensor) -> torch.Tensor:
        last = F.one_hot(last_actions.clamp(min=0), self.actions).to(obs.dtype) * (last_actions >= 0).unsqueeze(-1)
        ids = torch.eye(self.agents, device=obs.device, dtype=obs.dtype).expand(*obs.shape[:-1], self.agents)
        return torch.cat([obs, last, ids], dim=-1)

    def forward(self, obs: torch.Tensor, last_actions: torch.Tensor, hidden: torch.Tensor | None = None):
        """Logits [B,T,N,K] and the final hidden state [1, B*N, H]."""
        batch, steps, agents, _ = obs.shape
        x = torch.relu(self.embed(self.inputs(obs, last_actions)))  # [B,T,N,H]
        x = x.transpose(1, 2).reshape(batch * agents, steps, self.hidden)  # each agent's stream
        out, hidden = self.gru(x, hidden)
        logits = self.head(out).reshape(batch, agents, steps, self.actions).transpose(1, 2)
        return logits, hidden

    def shape_args(self) -> dict:
        return {"obs_dim": self.obs_dim, "agents": self.agents, "actions": self.actions, "hidden": self.hidden}


def previous_actions(actions: torch.Tensor) -> torch.Tensor:
    """[B,T,N] -> the action each agent took one step before (-1 at t = 0)."""
    return torch.cat([torch.full_like(actions[:, :1], -1), actions[:, :-1]], dim=1)


@attrs.frozen
class EpisodeBatch:
    obs: torch.Tensor  # [B,T,N,O]
    actions: torch.Tensor  # [B,T,N]
    avail: torch.Tensor  # [B,T,N,K] bool
    valid: torch.Tensor  # [B,T] bool: a transition (not padding, not a truncated episode's bootstrap step)


class Episodes:
    """Whole episodes on the device, each part padded only to its own length; ``sample`` draws
    episodes uniformly across the parts and pads the batch to its longest."""

    def __init__(self, data: Dataset | DatasetParts, device: torch.device, actions: int):
        self.parts = [EpisodeBatch(*(torch.as_tensor(np.ascontiguousarray(a), device=device) for a in
                                     (part.obs, part.actions, part.availability(actions), part.transition_mask())))
                      for part in DatasetParts.of(data)]
        self.sizes = np.array([len(p.obs) for p in self.parts])
        self.steps = int(sum(int(p.valid.sum()) for p in self.parts))

    def __len__(self) -> int:
        return int(self.sizes.sum())

    def take(self, rows: np.ndarray) -> EpisodeBatch:
        """Episodes ``rows`` (numbered across the parts), padded to the longest among them."""
        bounds = np.concatenate([[0], np.cumsum(self.sizes)])
        pieces = []
        for part, start, end in zip(self.parts, bounds[:-1], bounds[1:]):
            mine = rows[(rows >= start) & (rows < end)] - start
            if len(mine):
                index = torch.as_tensor(mine, device=part.obs.device)
                pieces.append([part.obs[index], part.actions[index], part.avail[index], part.valid[index]])
        length = max(piece[0].shape[1] for piece in pieces)
        padded = [[_pad_time(tensor, length) for tensor in piece] for piece in pieces]
        return EpisodeBatch(*(torch.cat(column) for column in zip(*padded)))

    def sample(self, batch: int, generator: torch.Generator) -> EpisodeBatch:
        return self.take(torch.randint(0, len(self), (batch,), generator=generator).numpy())


def _pad_time(tensor: torch.Tensor, length: int) -> torch.Tensor:
    missing = length - tensor.shape[1]
    if not missing:
        return tensor
    if tensor.dtype == torch.bool and tensor.dim() == 4:  # availability: only action 0 on padding
        pad = torch.zeros(tensor.shape[0], missing, *tensor.shape[2:], dtype=torch.bool, device=tensor.device)
        pad[..., 0] = True
    else:
        pad = torch.zeros(tensor.shape[0], missing, *tensor.shape[2:], dtype=tensor.dtype, device=tensor.device)
    return torch.cat([tensor, pad], dim=1)
