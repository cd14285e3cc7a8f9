"""The environment contract: what every environment adapter exposes to the pipeline."""
from __future__ import annotations

import abc
from typing import Sequence

import attrs
import numpy as np

from codi_kit.policy import Policy


@attrs.frozen
class EnvSpec:
    """Sizes the pipeline needs; observations are padded to one size across agents."""

    name: str
    agents: int
    obs_dim: int
    actions: int  # discrete action count (per agent; unavailable ones are masked)
    episode_limit: int
    state_dim: int = 0  # 0 when the environment has no global state
    team_reward: str = "sum"  # "sum": sum of the agents' rewards; "shared": the env's own team reward
    idle_action: int = 0  # the action that does nothing (MPE's no-op, SMAX's and SMAC's stop), for diagnostics


def team_reward_of(rule: str, rewards: np.ndarray) -> np.ndarray:
    """The team reward from per-agent rewards ``[..., N]`` by ``EnvSpec.team_reward``: their sum,
    or, for a reward every agent shares, that reward counted once (their mean)."""
    rewards = np.asarray(rewards, np.float32)
    return rewards.sum(-1) if rule == "sum" else rewards.mean(-1)


@attrs.define
class Transition:
    """What a batched reset or step returns for B copies."""

    obs: np.ndarray  # [B,N,O] float32
    avail: np.ndarray  # [B,N,K] bool
    state: np.ndarray | None  # [B,S] float32
    reward: np.ndarray  # [B] float32 team reward of the step (0 on reset)
    done: np.ndarray  # [B] bool: the episode ended with this step (copies already done stay True)


class EnvAdapter(abc.ABC):
    """B copies of one environment stepped together. Subclasses set ``spec`` in ``__init__``.

    Measurements that only diagnostics use (goal distance, speed, a quality score) are optional
    probes an adapter may also define: see ``codi_kit.envs.probes``."""

    spec: EnvSpec
    max_copies: int | None = None  # copies it can hold at once (a game process each); rollouts batch at most this many

    @abc.abstractmethod
    def reset(self, seeds: Sequence[int]) -> Transition:
        """Start ``len(seeds)`` episodes, copy b seeded with ``seeds[b]``."""

    @abc.abstractmethod
    def step(self, actions: np.ndarray) -> Transition:
        """Apply joint actions ``[B,N]``. Copies already done are not stepped: their observations
        are zeros, reward 0 and done True."""

    @abc.abstractmethod
    def expert_policy(self) -> Policy:
        """A scripted (or loaded) expert acting per agent from its own observation."""

    def rule_judge(self, obs: np.ndarray, actions: np.ndarray) -> int | None:
        """Optional: the best agent of one segment (``obs [H,N,O]``, ``actions [H,N]``) by a rule,
        -1 where no agent stands out (the segment is left unanswered, as an LLM's "cannot tell");
        None when the environment has no rule judge."""
        return None

    def state_codec(self):
        """Optional: a ``codi_kit.envs.codec.StateCodec``, a compact per-agent state the diffusion
        augmenters may generate instead of observations (``augmenter.diffused``); None: none."""
        return None

    def close(self) -> None:
        """Release simulator resources."""
