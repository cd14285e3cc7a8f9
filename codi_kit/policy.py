"""Decentralised joint policies: each agent acts from its own observation and available actions."""
from __future__ import annotations

import abc

import numpy as np


def masked_argmax(scores: np.ndarray, avail: np.ndarray) -> np.ndarray:
    """Greedy choice among available actions; ``scores`` and ``avail`` are [..., K]."""
    return np.where(avail, scores, -np.inf).argmax(axis=-1).astype(np.int64)


def sample_available(logits: np.ndarray, avail: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw from softmax(logits) per [..., K] row (unavailable actions' logits are masked)."""
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    draws = rng.random(probabilities.shape[:-1] + (1,))
    return np.minimum((probabilities.cumsum(-1) < draws).sum(-1), avail.shape[-1] - 1).astype(np.int64)


def uniform_available(avail: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One action drawn uniformly among the available ones, per [..., K] mask."""
    noise = rng.random(avail.shape)
    return masked_argmax(noise, avail)


class Policy(abc.ABC):
    """Maps a batch of joint observations to joint actions."""

    @abc.abstractmethod
    def act(self, obs: np.ndarray, avail: np.ndarray, rng: np.random.Generator, greedy: bool = True) -> np.ndarray:
        """``obs [B,N,O]``, ``avail [B,N,K]`` bool -> actions ``[B,N]`` int64 (always available ones)."""

    def reset(self, copies: int) -> None:
        """Called at the start of a batch of episodes (for policies with memory)."""


class RandomPolicy(Policy):
    """Uniform over available actions: the paper's sub-optimal agents."""

    def act(self, obs, avail, rng, greedy=True):
        return uniform_available(avail, rng)


class PerAgentMixture(Policy):
    """Agent i follows ``expert`` where ``expert_mask[b, i]``, otherwise ``other``."""

    def __init__(self, expert: Policy, other: Policy, expert_mask: np.ndarray):
        self.expert, self.other, self.expert_mask = expert, other, expert_mask

    def reset(self, copies):
        self.expert.reset(copies)
        self.other.reset(copies)

    def act(self, obs, avail, rng, greedy=True):
        expert_actions = self.expert.act(obs, avail, rng, greedy)
        other_actions = self.other.act(obs, avail, rng, greedy)
        return np.where(self.expert_mask, expert_actions, other_actions)
