"""The state value V(s) MBTS stitches toward: two MLP heads on the joint state, trained by TD(0)
against a slowly updated target copy, the smaller head read (the authors' Value_net, lilh76/CODI
MBTS/Algorithms/Value_net.py: hidden 256, lr 3e-4, gamma 0.99, tau 0.005, batch 256)."""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from codi_kit.learners.nets import mlp
from codi_kit.torch_utils import adam


class StateValue(nn.Module):
    def __init__(self, inputs: int, hidden: int):
        super().__init__()
        self.heads = nn.ModuleList(mlp(inputs, hidden, 2, 1) for _ in range(2))

    def both(self, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return tuple(head(state).squeeze(-1) for head in self.heads)

    def forward(self, state: torch.Tensor) -> torch.Tensor:
        return torch.minimum(*self.both(state))


def fit_value(states: torch.Tensor, rewards: torch.Tensor, next_states: torch.Tensor, done: torch.Tensor, settings,
              generator: torch.Generator) -> StateValue:
    """V on transitions (flat states [M,F], rewards [M] in any fixed scale, done [M] 1 at an episode's
    end): ``settings.value_steps`` updates of V(s) <- r + gamma (1 - done) min V_target(s')."""
    value = StateValue(states.shape[-1], settings.value_hidden).to(states.device)
    target = copy.deepcopy(value).requires_grad_(False)
    optimizer = adam(value.parameters(), settings.value_learning_rate)
    for _ in range(settings.value_steps):
        rows = torch.randint(0, len(states), (settings.batch_size,), generator=generator).to(states.device)
        with torch.no_grad():
            goal = rewards[rows] + settings.gamma * (1 - done[rows]) * target(next_states[rows])
        first, second = value.both(states[rows])
        loss = F.mse_loss(first, goal) + F.mse_loss(second, goal)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            for slow, fast in zip(target.parameters(), value.parameters()):
                slow.lerp_(fast, settings.tau)
    return value.eval()
