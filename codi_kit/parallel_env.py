"""A generic adapter over PettingZoo ``ParallelEnv`` factories with discrete actions.

Bring an environment without writing an adapter: ``ParallelEnvAdapter(name, factory,
expert=...)``. Team agents may be a subset of the env's agents; the others ("scripted") are driven
by a callable. Observations are zero-padded to the largest agent's size; actions beyond an agent's
own ``Discrete(n)`` are masked unavailable, as is everything but the env's ``action_mask`` when
the observation is a dict carrying one. The README's "Writing a plugin" has a complete example.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from codi_kit.env import EnvAdapter, EnvSpec, Transition, team_reward_of
from codi_kit.errors import CodiKitError
from codi_kit.policy import Policy

TEAM_REWARDS = ("sum", "shared")


class ParallelEnvAdapter(EnvAdapter):
    def __init__(
        self,
        name: str,
        factory: Callable[[], object],
        team: Sequence[str] | None = None,
        scripted: Callable[[object, dict], dict] | None = None,
        episode_limit: int | None = None,
        action_count: Callable[[object, str], int] | None = None,
        encode_action: Callable[[str, int], int] | None = None,
        expert: Policy | None = None,
        team_reward: str = "sum",
    ):
        """``factory()``: a fresh PettingZoo ParallelEnv. ``team``: the agents codi-kit controls (default
        all). ``scripted(env, observations) -> {agent: action}``: actions of the others.
        ``episode_limit``: steps per episode (default the env's ``max_cycles``). ``action_count(env,
        agent)`` and ``encode_action(agent, index)``: for non-Discrete action spaces. ``expert``: the
        policy the imbalanced and balanced protocols (and R_hi) need; ``Policy.act(obs [B,N,O], avail
        [B,N,K], rng, greedy) -> actions [B,N]``. ``team_reward``: "sum" adds the team agents' rewards;
        "shared" counts once a reward the env gives every agent alike (their mean)."""
        if team_reward not in TEAM_REWARDS:
            raise CodiKitError(f"env '{name}': team_reward '{team_reward}'; choose one of {', '.join(TEAM_REWARDS)}")
        self.name, self.expert, self.team_reward_rule = name, expert, team_reward
        self.factory = factory
        self.scripted = scripted  # (env copy, raw observations) -> actions of non-team agents
        self.encode_action = encode_action or (lambda agent, action: int(action))
        self.copies: list = []
        probe = factory()
        self.team = list(team) if team is not None else list(probe.possible_agents)
        for agent in self.team:
            space = probe.action_space(agent)
            if not hasattr(space, "n") and action_count is None:
                raise CodiKitError(f"env '{name}': agent '{agent}' has action space {space}; only Discrete is supported")
        counts = [action_count(probe, a) if action_count else int(probe.action_space(a).n) for a in self.team]
        sizes = [int(np.prod(_observation_space(probe, a).shape)) for a in self.team]
        self.own_actions = np.array(counts)
        limit = episode_limit or getattr(probe.unwrapped, "max_cycles", None)
        if limit is None:
            raise CodiKitError(f"env '{name}': cannot tell the episode limit; pass episode_limit")
        probe.reset(seed=0)
        state_dim = _state_size(probe)
        probe.close()
        self.spec = EnvSpec(name=name, agents=len(self.team), obs_dim=max(sizes), actions=max(counts),
                            episode_limit=int(limit), state_dim=state_dim, team_reward=team_reward)

    # -- batched API ---------------------------------------------------------------------------
    def reset(self, seeds):
        while len(self.copies) < len(seeds):
            self.copies.append(self.factory())
        self.active = list(range(len(seeds)))
        self.batch = len(seeds)
        self.done = np.zeros(self.batch, bool)
        self.raw = [None] * self.batch
        for b, seed in enumerate(seeds):
            observations, _ = self.copies[b].reset(seed=int(seed))
            self.raw[b] = observations
        return self._gather(np.zeros(self.batch, np.float32), finished=self.done.copy())

    def step(self, actions):
        finished = self.done.copy()
        reward = np.zeros(self.batch, np.float32)
        for b in range(self.batch):
            if self.done[b]:
                continue
            env = self.copies[b]
            joint = {agent: self.encode_action(agent, int(actions[b, i])) for i, agent in enumerate(self.team)}
            if self.scripted is not None:
                joint.update(self.scripted(env, self.raw[b]))
            observations, rewards, terminations, truncations, _ = env.step(joint)
            reward[b] = self.team_reward(env, rewards)
            ended = any(terminations.get(a, True) or truncations.get(a, True) for a in self.team)
            self.raw[b] = observations
            self.done[b] = ended or not env.agents
        return self._gather(reward, finished)

    def team_reward(self, env, rewards: dict) -> float:
        """The step's team reward by the ``team_reward`` rule: the sum, or the shared reward once."""
        return float(team_reward_of(self.team_reward_rule, [float(rewards.get(a, 0.0)) for a in self.team]))

    def expert_policy(self) -> Policy:
        if self.expert is None:
            raise CodiKitError(f"env '{self.name}': no expert policy; the imbalanced and balanced protocols and R_hi "
                               "need one: pass expert=<Policy> to ParallelEnvAdapter (or override expert_policy())")
        return self.expert

    def close(self):
        for env in self.copies:
            env.close()
        self.copies = []

    # -- helpers -------------------------------------------------------------------------------
    def _gather(self, reward, finished) -> Transition:
        """Stack the raw per-agent observations; copies ``finished`` before this call give zeros."""
        spec = self.spec
        obs = np.zeros((self.batch, spec.agents, spec.obs_dim), np.float32)
        avail = np.zeros((self.batch, spec.agents, spec.actions), bool)
        state = np.zeros((self.batch, spec.state_dim), np.float32) if spec.state_dim else None
        for b in range(self.batch):
            if finished[b]:
                avail[b, :, 0] = True
                continue
            for i, agent in enumerate(self.team):
                value = self.raw[b].get(agent)
                mask = None
                if isinstance(value, dict):
                    mask = value.get("action_mask")
                    value = value.get("observation")
                if value is not None:
                    flat = np.asarray(value, np.float32).ravel()
                    obs[b, i, : flat.size] = flat
                avail[b, i, : self.own_actions[i]] = True if mask is None else np.asarray(mask, bool)
            if state is not None:
                state[b] = self.copies[b].state()
        return Transition(obs=obs, avail=avail, state=state, reward=reward, done=self.done.copy())


def _observation_space(env, agent):
    space = env.observation_space(agent)
    return space["observation"] if hasattr(space, "spaces") and "observation" in space.spaces else space


def _state_size(env) -> int:
    try:
        return int(np.asarray(env.state()).size)
    except (NotImplementedError, AttributeError):
        return 0
