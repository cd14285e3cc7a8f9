"""A fake of the part of SMACv2's API that codi-kit's adapters use, written from smacv2's
``StarCraft2Env`` (github.com/oxwhirl/smacv2, smacv2/env/starcraft2/starcraft2.py and wrapper.py):
``StarCraft2Env(map_name=..., seed=..., **kwargs)`` and ``StarCraftCapabilityEnvWrapper(
capability_config=..., **kwargs)``; ``reset() -> (obs, state)``; ``step(actions) -> (reward,
terminated, info)``; ``get_obs()``, ``get_state()``, ``get_avail_actions()``, ``get_env_info()``,
``get_obs_feature_names()``, ``n_enemies``, ``close()``. Actions: 0 no-op (dead only), 1 stop,
2-5 north, south, east, west, 6 + j attack enemy j. Observations: move features, then per enemy
(shootable, distance, relative x, y, health), per other ally (visible, distance, relative x, y,
health), then own health and position; relative values divided by the sight range, as smacv2's.

The battle is a toy (enemies stand and shoot the nearest ally in range), enough for a scripted
expert to beat random play. ``install(monkeypatch, folder)`` puts it in ``sys.modules`` as
``smacv2`` and points SC2PATH at ``folder``."""
from __future__ import annotations

import sys
import types

import numpy as np

SIGHT, RANGE, MOVE, LIMIT = 9.0, 6.0, 2.0, 60
DIRECTIONS = {2: (0, 1), 3: (0, -1), 4: (1, 0), 5: (-1, 0)}


class StarCraft2Env:
    launched = []  # every game made, for tests to inspect

    def __init__(self, map_name="8m", seed=None, obs_own_pos=False, capability_config=None, **kwargs):
        sizes = {"3m": (3, 3)}
        if capability_config:
            self.n_agents, self.n_enemies = capability_config["n_units"], capability_config["n_enemies"]
        else:
            self.n_agents, self.n_enemies = sizes[map_name]
        self.kwargs = dict(map_name=map_name, seed=seed, obs_own_pos=obs_own_pos, **kwargs)
        self.rng = np.random.default_rng(seed)
        self.n_actions = 6 + self.n_enemies
        self.closed = False
        StarCraft2Env.launched.append(self)

    def get_env_info(self):
        return {"state_shape": 3 * (self.n_agents + self.n_enemies), "obs_shape": len(self.get_obs_feature_names()),
                "cap_shape": 0, "n_actions": self.n_actions, "n_agents": self.n_agents, "episode_limit": LIMIT}

    def get_obs_feature_names(self):
        names = ["move_action_north", "move_action_south", "move_action_east", "move_action_west"]
        for e in range(self.n_enemies):
            names += [f"enemy_shootable_{e}", f"enemy_distance_{e}", f"enemy_relative_x_{e}",
                      f"enemy_relative_y_{e}", f"enemy_health_{e}"]
        for a in range(1, self.n_agents):
            names += [f"ally_visible_{a}", f"ally_distance_{a}", f"ally_relative_x_{a}", f"ally_relative_y_{a}",
                      f"ally_health_{a}"]
        return names + ["own_health", "own_pos_x", "own_pos_y"]

    def reset(self, episode_config=None):
        self.steps = 0
        self.ally = np.column_stack([self.rng.uniform(6, 10, self.n_agents), self.rng.uniform(14, 18, self.n_agents)])
        self.enemy = np.column_stack([self.rng.uniform(17, 20, self.n_enemies), self.rng.uniform(14, 18, self.n_enemies)])
        self.ally_health = np.ones(self.n_agents)
        self.enemy_health = np.ones(self.n_enemies)
        return self.get_obs(), self.get_state()

    def step(self, actions):
        avail = np.array(self.get_avail_actions())
        damage = 0.0
        for i, action in enumerate(int(a) for a in actions):
            assert avail[i, action], f"agent {i} took unavailable action {action}"
            if action in DIRECTIONS:
                self.ally[i] += MOVE * np.array(DIRECTIONS[action])
            elif action >= 6:
                hit = min(0.25, self.enemy_health[action - 6])
                self.enemy_health[action - 6] -= hit
                damage += hit
        for e in np.flatnonzero(self.enemy_health > 0):
            reach = np.where(self.ally_health > 0, np.linalg.norm(self.ally - self.enemy[e], axis=1), np.inf)
            if reach.min() < RANGE:
                self.ally_health[reach.argmin()] = max(0.0, self.ally_health[reach.argmin()] - 0.1)
        self.steps += 1
        won = not (self.enemy_health > 0).any()
        terminated = won or not (self.ally_health > 0).any() or self.steps >= LIMIT
        # scaled as smac's reward_scale_rate 20: the damage is a third of a won battle's 20
        return 20.0 * (damage / self.n_enemies + 2.0 * won) / 3.0, terminated, {"battle_won": won}

    def get_obs(self):
        return [self.get_obs_agent(i) for i in range(self.n_agents)]

    def get_obs_agent(self, i):
        features = np.zeros(len(self.get_obs_feature_names()), np.float32)
        if self.ally_health[i] <= 0:
            return features
        features[:4] = 1.0
        cursor = 4
        for others, health, shootable in ((self.enemy, self.enemy_health, True), (np.delete(self.ally, i, 0),
                                                                                  np.delete(self.ally_health, i), False)):
            for position, alive in zip(others, health):
                offset = position - self.ally[i]
                distance = np.linalg.norm(offset)
                if alive > 0 and distance < SIGHT:
                    features[cursor: cursor + 5] = (distance < RANGE if shootable else 1.0, distance / SIGHT,
                                                    *(offset / SIGHT), alive)
                cursor += 5
        features[cursor:] = self.ally_health[i], self.ally[i, 0] / 32, self.ally[i, 1] / 32
        return features

    def get_state(self):
        units = np.concatenate([np.column_stack([self.ally_health, self.ally / 32]),
                                np.column_stack([self.enemy_health, self.enemy / 32])])
        return units.ravel().astype(np.float32)

    def get_avail_actions(self):
        rows = []
        for i in range(self.n_agents):
            mask = [0] * self.n_actions
            if self.ally_health[i] <= 0:
                mask[0] = 1
            else:
                mask[1:6] = [1] * 5
                for e in range(self.n_enemies):
                    in_range = np.linalg.norm(self.enemy[e] - self.ally[i]) < RANGE
                    mask[6 + e] = int(self.enemy_health[e] > 0 and in_range)
            rows.append(mask)
        return rows

    def close(self):
        self.closed = True


class StarCraftCapabilityEnvWrapper:
    def __init__(self, **kwargs):
        self.env = StarCraft2Env(**kwargs)

    def __getattr__(self, name):
        return getattr(self.env, name)


def install(monkeypatch, folder) -> None:
    """Make ``import smacv2...`` find this fake and SC2PATH point at an existing folder."""
    package, env, starcraft2, wrapper = (types.ModuleType(n) for n in
                                         ("smacv2", "smacv2.env", "smacv2.env.starcraft2", "smacv2.env.starcraft2.wrapper"))
    env.StarCraft2Env = StarCraft2Env
    wrapper.StarCraftCapabilityEnvWrapper = StarCraftCapabilityEnvWrapper
    package.env, env.starcraft2, starcraft2.wrapper = env, starcraft2, wrapper
    for module in (package, env, starcraft2, wrapper):
        monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setenv("SC2PATH", str(folder))
