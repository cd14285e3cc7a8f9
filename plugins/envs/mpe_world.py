"""MPE World (mpe2 simple_world_comm_v3) as the paper's predator-prey task.

Three cooperating predators (mpe2's leader adversary and two adversaries) are the team; one
prey (mpe2's good agent) follows a scripted escape policy inside the environment. One obstacle,
two foods and two forests (which hide whoever is inside) as in mpe2's defaults. The leader's
"say" channel is fixed to word 0, so every predator has the same five moves.

How close to OMAR's "world": same simulator, rewards and forest/food mechanics; OMAR's task has
four predators and two prey driven by pre-trained policies, ours has three predators (the
paper's count) and one prey driven by a fixed script, so datasets are reproducible without
shipping a prey model. Team reward: sum of the predators' rewards (each is -0.1 x its own
distance to the prey, plus +5 for every predator-prey collision, which all predators share).
"""
from __future__ import annotations

import attrs
import numpy as np

from codi_kit.parallel_env import ParallelEnvAdapter
from codi_kit.policy import Policy
from codi_kit_plugins.envs.mpe_control import MOVES, flee_from, steer_to
from codi_kit_plugins.envs.mpe_drawing import draw_paths, finish
from codi_kit_plugins.envs.mpe_parallel import LeanParallel

PREDATOR_ACCELERATION, PREY_ACCELERATION = 3.0, 4.0  # mpe2 simple_world_comm values
PREDATORS = ["leadadversary_0", "adversary_0", "adversary_1"]


class Layout:
    """Offsets into the predator's and the prey's observations for a given world size."""

    def __init__(self, obstacles: int, food: int, forests: int):
        landmarks_end = 4 + 2 * (obstacles + food + forests)
        self.forests = slice(landmarks_end - 2 * forests, landmarks_end)
        # predator: [vel, pos, landmarks, 2 other predators, prey, prey velocity, in_forest, comm]
        self.prey = slice(landmarks_end + 4, landmarks_end + 6)
        self.prey_velocity = slice(landmarks_end + 6, landmarks_end + 8)
        # prey: [vel, pos, landmarks, 3 predators, in_forest]
        self.threats = slice(landmarks_end, landmarks_end + 6)


def intercept_heading(layout: Layout, obs: np.ndarray, flank: np.ndarray | float = 0.0) -> np.ndarray:
    """[..., N, 2] where an intercepting predator heads, relative to itself: the prey's predicted
    position (position + 0.3 x velocity), shifted by ``flank`` [N, 2] while still far, or the
    nearest forest while the prey is hidden from it."""
    prey = obs[..., layout.prey]
    distance = np.linalg.norm(prey, axis=-1, keepdims=True)
    target = prey + 0.3 * obs[..., layout.prey_velocity] + flank * np.clip(distance - 0.1, 0, 1)
    forests = obs[..., layout.forests].reshape(*obs.shape[:-1], -1, 2)
    nearest_forest = np.take_along_axis(
        forests, np.linalg.norm(forests, axis=-1).argmin(-1)[..., None, None], axis=-2)[..., 0, :]
    hidden = (np.abs(prey) < 1e-9).all(axis=-1, keepdims=True)
    return np.where(hidden, nearest_forest, target)


def intercept_cosines(layout: Layout, obs: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """[H,N] cosine between each predator's move and its ``intercept_heading`` (0 for no-op): what
    the rule judge sums and the World prompts describe."""
    heading = intercept_heading(layout, obs)
    moves = MOVES[np.asarray(actions, np.int64)]  # no-op is the zero move
    return (moves * heading).sum(-1) / (np.linalg.norm(heading, axis=-1) + 1e-9)


class InterceptExpert(Policy):
    """Predators steer to the prey's predicted position, each approaching from its own side so
    the three close in from different directions; a predator that cannot see the prey heads
    for the nearest forest, where it hides."""

    def __init__(self, layout: Layout):
        self.layout = layout

    def act(self, obs, avail, rng, greedy=True):
        angles = np.array([0.0, 2.1, -2.1])[: obs.shape[1]]
        flank = 0.15 * np.stack([np.cos(angles), np.sin(angles)], -1)  # [N,2]
        target = intercept_heading(self.layout, obs, flank)
        # overshooting is fine when chasing: aim past the target
        actions = steer_to(obs[..., 0:2], target * 3.0, PREDATOR_ACCELERATION)
        return np.where(np.take_along_axis(avail, actions[..., None], -1)[..., 0], actions, 0)


class World(ParallelEnvAdapter):
    @attrs.frozen
    class Config:
        episode_limit: int = 25  # mpe2 max_cycles
        obstacles: int = 1
        food: int = 2
        forests: int = 2

    def __init__(self, config: Config):
        from mpe2 import simple_world_comm_v3

        self.config = config
        self.layout = Layout(config.obstacles, config.food, config.forests)
        super().__init__(
            "mpe/world",
            lambda: LeanParallel(simple_world_comm_v3.raw_env(**self.scenario_settings())),
            team=PREDATORS,
            scripted=self._prey_actions,
            episode_limit=config.episode_limit,
            action_count=lambda env, agent: 5,  # the leader's say channel is fixed to word 0
        )

    def scenario_settings(self) -> dict:
        """mpe2 ``simple_world_comm_v3`` keyword arguments of this world."""
        config = self.config
        return dict(num_good=1, num_adversaries=3, num_obstacles=config.obstacles, num_food=config.food,
                    num_forests=config.forests, max_cycles=config.episode_limit)

    def _prey_actions(self, env, observations):
        prey = np.asarray(observations["agent_0"], np.float32)
        threats = prey[self.layout.threats].reshape(-1, 2)
        return {"agent_0": int(flee_from(prey[0:2], prey[2:4], threats, PREY_ACCELERATION))}

    def expert_policy(self):
        return InterceptExpert(self.layout)

    def rule_judge(self, obs, actions):
        """The predator whose moves head most for where an intercepting predator goes: the
        prey's predicted position (position + 0.3 x velocity) while it is visible, the nearest
        forest while it hides; no-op scores 0. Sum over the segment of the cosine between the
        chosen move and that heading. Measured on 600 imbalanced episodes (H = 8, 10800
        segments): 0.98 agreement with the expert index, against 0.46 for "distance to the prey
        shrank most" (random predators also close in when the prey runs towards them) and 0.79
        when hidden-prey steps are skipped."""
        return int(intercept_cosines(self.layout, obs, actions).sum(axis=0).argmax())

    def speed(self, obs):
        return np.linalg.norm(obs[..., 0:2], axis=-1)

    def draw_episode(self, axis, obs, expert):
        """The predators' paths, the prey's (red, where predator 0 sees it) and the forests (green
        squares) and other landmarks (grey), where predator 0 saw them at the start."""
        landmarks = obs[0, 0, 4: self.layout.forests.stop].reshape(-1, 2) + obs[0, 0, 2:4]
        forests = self.config.forests
        axis.plot(landmarks[:-forests, 0], landmarks[:-forests, 1], "o", color="grey", markersize=8, label="obstacle / food")
        axis.plot(landmarks[-forests:, 0], landmarks[-forests:, 1], "s", color="green", alpha=0.4, markersize=14, label="forest")
        prey = obs[:, 0, self.layout.prey] + obs[:, 0, 2:4]
        visible = np.abs(obs[:, 0, self.layout.prey]).sum(-1) > 1e-9
        axis.plot(np.where(visible, prey[:, 0], np.nan), np.where(visible, prey[:, 1], np.nan), "-", color="red",
                  linewidth=2, label="prey")
        draw_paths(axis, obs[..., 2:4], expert, name="predator")
        finish(axis)

    def quality_score(self, obs):
        """Minus the mean predator-prey distance at the final step (visible prey only)."""
        distance = np.linalg.norm(obs[..., self.layout.prey], axis=-1)
        visible = distance > 1e-9
        return float(-distance[visible].mean()) if visible.any() else None
