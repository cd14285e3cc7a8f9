"""Optional environment probes: measurements of behaviour that diagnostics and reports use when an
environment offers them, and skip when it does not.

An environment adapter offers a probe by defining the method; nothing else is needed. Each probe
is a ``typing.Protocol``, so ``probe(env, GoalDistance)`` returns the bound method or None.
"""
from __future__ import annotations

from typing import Protocol, TypeVar, runtime_checkable

import numpy as np


@runtime_checkable
class GoalDistance(Protocol):
    def goal_distance(self, obs: np.ndarray) -> np.ndarray:
        """Each agent's distance to its goal, [..., N] from obs [..., N, O] (CN: nearest landmark).
        Used by the diffusion probe "does the agent conditioned as good approach it"."""


@runtime_checkable
class Speed(Protocol):
    def speed(self, obs: np.ndarray) -> np.ndarray:
        """Each agent's speed, [..., N] from obs [..., N, O]."""


@runtime_checkable
class QualityScore(Protocol):
    def quality_score(self, obs: np.ndarray) -> float | None:
        """An env-specific score of final observations [B, N, O] (higher is better)."""


@runtime_checkable
class WinRate(Protocol):
    def win_rate(self, returns: np.ndarray) -> float:
        """The share of episodes won, from their team returns [E] (battles: a win adds a bonus)."""


@runtime_checkable
class DrawEpisode(Protocol):
    def draw_episode(self, axis, obs: np.ndarray, expert: np.ndarray | None) -> None:
        """Draw one episode's observations [T, N, O] on a matplotlib ``axis`` (MPE: every agent's
        path among the landmarks; battles: units' positions and health). ``expert`` [N] bool marks
        the dataset's expert agents; None for generated episodes, where every agent is conditioned
        good. Used by the run report's Figure 3(a) picture."""


Probe = TypeVar("Probe")


def probe(env, kind: type[Probe]):
    """The env's method for probe ``kind`` (GoalDistance, Speed, QualityScore, WinRate, DrawEpisode), or None."""
    if not isinstance(env, kind):
        return None
    name = next(n for n in vars(kind) if not n.startswith("_") and callable(getattr(kind, n)))
    return getattr(env, name)
