"""An mpe2 scenario stepped as a PettingZoo ParallelEnv without the AEC-to-parallel conversion.

PettingZoo's ``parallel_wrapper_fn`` steps the AEC env agent by agent and asks for observations
three times per step: ``last()`` before each agent's action, the returned dict after the cycle,
and ``state()`` (mpe2 concatenates every agent's observation again). On World, whose observation
checks every entity against every forest, that is two thirds of collection time. ``LeanParallel``
sets all actions, runs mpe2's own ``_execute_world_step`` once, and computes each observation
once per step, reusing them for ``state()``. Same seeds, same episodes: the tests compare it step
by step with ``parallel_env``.
"""
from __future__ import annotations

import numpy as np


class LeanParallel:
    """The part of the ParallelEnv surface ``ParallelEnvAdapter`` uses, over an mpe2 ``SimpleEnv``
    (a scenario's ``raw_env(...)``, discrete actions)."""

    def __init__(self, simple_env):
        self.env = simple_env
        self.unwrapped = simple_env
        self.possible_agents = list(simple_env.possible_agents)
        self.agents: list[str] = []
        self._observations: dict[str, np.ndarray] = {}

    def observation_space(self, agent):
        return self.env.observation_space(agent)

    def action_space(self, agent):
        return self.env.action_space(agent)

    def reset(self, seed=None, options=None):
        self.env.reset(seed=seed, options=options)
        self.agents = list(self.possible_agents)
        return self._observe(), {agent: {} for agent in self.agents}

    def step(self, actions: dict):
        env = self.env
        for agent in self.agents:  # the AEC env stores each action in the world's agent order
            env.current_actions[env._index_map[agent]] = actions[agent]
        env._execute_world_step()  # mpe2: set actions, world.step(), rewards
        env.steps += 1
        truncated = env.steps >= env.max_cycles
        terminated = not truncated and bool(env.scenario.is_terminal(env.world))
        rewards = {agent: float(env.rewards[agent]) for agent in self.agents}
        observations = self._observe()
        terminations = {agent: terminated for agent in self.agents}
        truncations = {agent: truncated for agent in self.agents}
        infos = {agent: {} for agent in self.agents}
        if truncated or terminated:
            self.agents = []
        return observations, rewards, terminations, truncations, infos

    def state(self) -> np.ndarray:
        """mpe2's ``state()``: every possible agent's observation, concatenated."""
        return np.concatenate([self._observations[agent] for agent in self.possible_agents], axis=None)

    def close(self):
        self.env.close()

    def _observe(self) -> dict[str, np.ndarray]:
        self._observations = {agent: self.env.observe(agent) for agent in self.possible_agents}
        return {agent: self._observations[agent] for agent in self.agents}
