"""mpe2's simple_spread with every copy stepped at once in NumPy: the same seeds give the same
episodes as ``simple_spread_v3.parallel_env`` (reset draws, physics, observations, rewards; the
tests check them step by step against mpe2), at a fraction of the cost of one Python world per copy.

The physics follows mpe2's ``World.step`` operation for operation, in float64, so the floating
point results match: an agent's contact forces are added in ascending order of the other agent's
index, which is the order mpe2's pair loop adds them in.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from codi_kit.env import EnvSpec, Transition, team_reward_of

# mpe2 defaults (mpe2/_mpe_utils/core.py World, Entity; simple_spread.make_world)
DT, DAMPING = 0.1, 0.25
CONTACT_FORCE, CONTACT_MARGIN = 1e2, 1e-3
AGENT_SIZE = 0.15
SENSITIVITY = 5.0  # SimpleEnv._set_action: agents without their own accel
COMMUNICATION = 2  # world.dim_c; the agents are silent, so their messages are zeros
# Discrete moves: no-op, -x, +x, -y, +y (SimpleEnv._set_action)
MOVES = np.array([[0.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])


def spread_spec(name: str, agents: int, episode_limit: int) -> EnvSpec:
    obs_dim = 4 + 2 * agents + 2 * (agents - 1) + COMMUNICATION * (agents - 1)
    return EnvSpec(name=name, agents=agents, obs_dim=obs_dim, actions=5, episode_limit=episode_limit,
                   state_dim=agents * obs_dim, team_reward="sum")


class BatchedSpread:
    """B copies of simple_spread: ``reset(seeds)`` and ``step(actions [B,N])`` as an EnvAdapter's."""

    def __init__(self, spec: EnvSpec, local_ratio: float):
        self.spec, self.local_ratio = spec, local_ratio
        self.agents = spec.agents

    def reset(self, seeds: Sequence[int]) -> Transition:
        batch, agents = len(seeds), self.agents
        draws = np.empty((batch, 2 * agents, 2))
        for b, seed in enumerate(seeds):  # reset_world: each agent's position, then each landmark's
            draws[b] = np.random.default_rng(int(seed)).uniform(-1, +1, (2 * agents, 2))
        self.position, self.landmarks = draws[:, :agents].copy(), draws[:, agents:].copy()
        self.velocity = np.zeros((batch, agents, 2))
        self.steps = np.zeros(batch, np.int64)
        self.done = np.zeros(batch, bool)
        return self._transition(np.zeros(batch, np.float32), finished=self.done.copy())

    def step(self, actions: np.ndarray) -> Transition:
        finished = self.done.copy()
        running = ~finished
        force = self._contact_forces(MOVES[np.asarray(actions)] * SENSITIVITY + 0.0)  # action force (no noise)
        position = self.position + self.velocity * DT  # integrate_state
        velocity = self.velocity * (1 - DAMPING) + force * DT  # mass 1
        self.position = np.where(running[:, None, None], position, self.position)
        self.velocity = np.where(running[:, None, None], velocity, self.velocity)
        rewards = self._rewards()
        self.steps += running
        self.done = finished | (self.steps >= self.spec.episode_limit)
        reward = np.where(running, team_reward_of("sum", rewards), np.float32(0.0))
        return self._transition(reward.astype(np.float32), finished)

    def _contact_forces(self, total: np.ndarray) -> np.ndarray:
        """apply_environment_force: each agent's contact forces added to ``total`` [B,N,2] (landmarks
        do not collide in simple_spread)."""
        for j in range(self.agents):
            delta = self.position - self.position[:, j:j + 1]  # agent i minus agent j
            distance = np.sqrt(delta[..., 0] ** 2 + delta[..., 1] ** 2)
            penetration = np.logaddexp(0, -(distance - (AGENT_SIZE + AGENT_SIZE)) / CONTACT_MARGIN) * CONTACT_MARGIN
            with np.errstate(invalid="ignore", divide="ignore"):
                force = CONTACT_FORCE * delta / distance[..., None] * penetration[..., None]
            others = np.arange(self.agents) != j
            total[:, others] = total[:, others] + force[:, others]
        return total

    def _rewards(self) -> np.ndarray:
        """[B,N] per-agent rewards: (1 - local_ratio) x the shared coverage reward + local_ratio x
        minus one per other agent in contact (simple_spread's reward and global_reward)."""
        to_landmarks = self.position[:, :, None] - self.landmarks[:, None]  # [B,agent,landmark,2]
        nearest = np.sqrt(to_landmarks[..., 0] ** 2 + to_landmarks[..., 1] ** 2).min(axis=1)  # [B,landmark]
        coverage = np.zeros(len(self.position))
        for landmark in range(nearest.shape[1]):
            coverage = coverage - nearest[:, landmark]
        apart = self.position[:, None] - self.position[:, :, None]  # [B,agent,other,2]
        touching = np.sqrt(apart[..., 0] ** 2 + apart[..., 1] ** 2) < AGENT_SIZE + AGENT_SIZE
        touching[:, np.arange(self.agents), np.arange(self.agents)] = False
        local = -touching.sum(axis=2).astype(np.float64)
        return coverage[:, None] * (1 - self.local_ratio) + local * self.local_ratio

    def _observations(self) -> np.ndarray:
        """[B,N,O] float32: own velocity, own position, every landmark and every other agent
        relative to it, and the others' (silent) messages."""
        batch, agents = self.position.shape[:2]
        own = self.position[:, :, None]
        landmarks = (self.landmarks[:, None] - own).reshape(batch, agents, -1)
        others = self.position[:, None] - own  # [B,i,j,2]
        keep = ~np.eye(agents, dtype=bool)
        others = others[:, keep].reshape(batch, agents, -1)
        silent = np.zeros((batch, agents, COMMUNICATION * (agents - 1)))
        return np.concatenate([self.velocity, self.position, landmarks, others, silent], axis=-1).astype(np.float32)

    def _transition(self, reward: np.ndarray, finished: np.ndarray) -> Transition:
        """Copies ``finished`` before this step give zero observations and only the no-op available."""
        obs = np.where(finished[:, None, None], np.float32(0.0), self._observations())
        avail = np.ones((len(obs), self.agents, self.spec.actions), bool)
        avail[finished, :, 1:] = False
        return Transition(obs=obs, avail=avail, state=obs.reshape(len(obs), -1), reward=reward, done=self.done.copy())
