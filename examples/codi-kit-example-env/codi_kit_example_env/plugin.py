"""Registers ``example/tag``: three predators of mpe2's simple_tag chase one prey that moves at
random. The generic ``ParallelEnvAdapter`` does the work; the plugin adds a chase expert."""
import attrs
import numpy as np

import codi_kit
from codi_kit.parallel_env import ParallelEnvAdapter
from codi_kit.policy import Policy

MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], np.float32)


class Chase(Policy):
    """Each predator takes the move that points most directly at the prey."""

    def act(self, obs, avail, rng, greedy=True):
        prey = obs[..., -4:-2]  # simple_tag adversary obs end with [prey position, prey velocity]
        return (prey[..., None, :] * MOVES).sum(-1).argmax(-1).astype(np.int64)


class Tag(ParallelEnvAdapter):
    @attrs.frozen
    class Config:
        episode_limit: int = 25

    def __init__(self, config):
        from mpe2 import simple_tag_v3

        rng = np.random.default_rng(0)
        super().__init__(
            "example/tag",
            lambda: simple_tag_v3.parallel_env(num_good=1, num_adversaries=3, num_obstacles=2,
                                               max_cycles=config.episode_limit),
            team=["adversary_0", "adversary_1", "adversary_2"],
            scripted=lambda env, observations: {"agent_0": int(rng.integers(5))},
            episode_limit=config.episode_limit,
            expert=Chase(),  # what the imbalanced and balanced protocols and R_hi need
            team_reward="shared",  # simple_tag gives every adversary the same reward: count it once
        )


@codi_kit.hookimpl
def register_envs(register):
    register("example/tag", Tag)
