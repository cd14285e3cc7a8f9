"""A ``Policy`` backed by a shared-agent torch network producing action logits."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from codi_kit.nets import SharedAgentNetwork, masked_logits
from codi_kit.policy import Policy


def sample_available(logits: np.ndarray, avail: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw from softmax(logits) per [..., K] row (unavailable actions' logits are masked)."""
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    draws = rng.random(probabilities.shape[:-1] + (1,))
    return np.minimum((probabilities.cumsum(-1) < draws).sum(-1), avail.shape[-1] - 1).astype(np.int64)


def load_policy(folder: Path, device: torch.device) -> Policy:
    """What a learner's ``save`` wrote: a recurrent policy where its file says so, else logits."""
    saved = torch.load(Path(folder) / "policy.pt", map_location=device, weights_only=True)
    if saved.get("kind") == "recurrent":
        from codi_kit.recurrent import RecurrentPolicy

        return RecurrentPolicy.load(folder, device)
    return LogitsPolicy.load(folder, device)


class LogitsPolicy(Policy):
    """Greedy: argmax over available actions; sampled: softmax over available actions."""

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
        torch.save({"shape": self.network.shape_args(), "state": self.network.state_dict()}, Path(folder) / "policy.pt")

    @staticmethod
    def load(folder: Path, device: torch.device) -> "LogitsPolicy":
        saved = torch.load(Path(folder) / "policy.pt", map_location=device, weights_only=True)
        network = SharedAgentNetwork(**saved["shape"])
        network.load_state_dict(saved["state"])
        return LogitsPolicy(network, device)
