"""``Policy`` objects backed by torch networks: the shared-agent MLP's logits, or the recurrent
agent's, carried step by step; one file format for both."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from codi_kit.learners.nets import SharedAgentNetwork, masked_logits
from codi_kit.policy import Policy, sample_available
from codi_kit.learners.recurrent import RecurrentAgent


def save_policy(policy, folder: Path) -> None:
    """``policy.pt``: which kind of policy, its network's shape and weights."""
    torch.save({"kind": policy.kind, "shape": policy.network.shape_args(), "state": policy.network.state_dict()},
               Path(folder) / "policy.pt")


def load_policy(folder: Path, device: torch.device) -> Policy:
    """What ``save_policy`` wrote (a file without a kind holds logits, as before recurrent policies)."""
    saved = torch.load(Path(folder) / "policy.pt", map_location=device, weights_only=True)
    kind = {cls.kind: cls for cls in (LogitsPolicy, RecurrentPolicy)}[saved.get("kind", LogitsPolicy.kind)]
    network = kind.network_class(**saved["shape"])
    network.load_state_dict(saved["state"])
    return kind(network, device)


class LogitsPolicy(Policy):
    """Greedy: argmax over available actions; sampled: softmax over available actions."""

    kind, network_class = "logits", SharedAgentNetwork

    def __init__(self, network: SharedAgentNetwork, device: torch.device):
        self.network, self.device = network.to(device).eval(), device

    @torch.no_grad()
    def act(self, obs, avail, rng, greedy=True):
        logits = self.network(torch.as_tensor(obs, device=self.device))
        logits = masked_logits(logits, torch.as_tensor(avail, device=self.device)).cpu().double().numpy()
        if greedy:
            return logits.argmax(-1).astype(np.int64)
        return sample_available(logits, avail, rng)

    def save(self, folder: Path) -> None:
        save_policy(self, folder)

    @staticmethod
    def load(folder: Path, device: torch.device) -> Policy:
        return load_policy(folder, device)


class RecurrentPolicy(Policy):
    """Acts one step at a time, carrying each copy's hidden state and last action."""

    kind, network_class = "recurrent", RecurrentAgent

    def __init__(self, network: RecurrentAgent, device: torch.device):
        self.network, self.device = network.to(device).eval(), device
        self.hidden, self.last = None, None

    def reset(self, copies: int) -> None:
        self.hidden = None
        self.last = torch.full((copies, 1, self.network.agents), -1, dtype=torch.int64, device=self.device)

    @torch.no_grad()
    def act(self, obs, avail, rng, greedy=True):
        obs = torch.as_tensor(obs, device=self.device).unsqueeze(1)  # [B,1,N,O]
        if self.last is None or self.last.shape[0] != obs.shape[0]:
            self.reset(obs.shape[0])
        logits, self.hidden = self.network(obs, self.last, self.hidden)
        logits = masked_logits(logits[:, 0], torch.as_tensor(avail, device=self.device)).cpu().double().numpy()
        chosen = logits.argmax(-1).astype(np.int64) if greedy else sample_available(logits, avail, rng)
        self.last = torch.as_tensor(chosen, device=self.device).unsqueeze(1)
        return chosen

    def save(self, folder: Path) -> None:
        save_policy(self, folder)
