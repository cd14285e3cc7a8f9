"""Roll policies out in batched environments, recording episodes as a ``Dataset``."""
from __future__ import annotations

import numpy as np

from codi_kit.data.dataset import Dataset
from codi_kit.env import EnvAdapter
from codi_kit.policy import Policy
from codi_kit.progress import progress_bar


def episode_seeds(seed: int, count: int, stream: int = 0) -> np.ndarray:
    """Distinct, reproducible environment seeds per (run seed, stream); streams keep collection,
    the expert reference and evaluation on different episodes."""
    return np.random.SeedSequence([seed, stream]).generate_state(count, np.uint32).astype(np.int64)


def rollout(
    env: EnvAdapter,
    make_policy,
    episodes: int,
    seed: int,
    stream: int = 0,
    batch_size: int = 100,
    greedy: bool = True,
    description: str = "rollout",
) -> Dataset:
    """Run ``episodes`` episodes; ``make_policy(first, count)`` gives the policy for each batch
    (so per-episode choices like the expert index can be drawn per batch)."""
    spec = env.spec
    rng = np.random.default_rng([seed, stream])
    seeds = episode_seeds(seed, episodes, stream)
    limit = spec.episode_limit
    batch_size = min(batch_size, env.max_copies or batch_size)
    obs = np.zeros((episodes, limit, spec.agents, spec.obs_dim), np.float32)
    actions = np.zeros((episodes, limit, spec.agents), np.int64)
    rewards = np.zeros((episodes, limit), np.float32)
    avail = np.zeros((episodes, limit, spec.agents, spec.actions), bool)
    state = np.zeros((episodes, limit, spec.state_dim), np.float32) if spec.state_dim else None
    lengths = np.zeros(episodes, np.int64)
    with progress_bar(episodes, description) as bar:
        for first in range(0, episodes, batch_size):
            count = min(batch_size, episodes - first)
            rows = slice(first, first + count)
            policy: Policy = make_policy(first, count)
            policy.reset(count)
            step = env.reset(seeds[rows])
            for t in range(limit):
                running = ~step.done
                if not running.any():
                    break
                joint = policy.act(step.obs, step.avail, rng, greedy)
                obs[rows, t], avail[rows, t], actions[rows, t] = step.obs, step.avail, joint
                if state is not None:
                    state[rows, t] = step.state
                step = env.step(joint)
                rewards[rows, t] = np.where(running, step.reward, 0.0)
                lengths[rows] += running
            bar.advance(count)
    return Dataset(obs=obs, actions=actions, rewards=rewards, lengths=lengths, avail_actions=avail,
                   state=state, meta={"env": spec.name}).clear_padding()
