"""The real StarCraft II through SMACv2 (``smacv2.env.StarCraft2Env``): one game process per copy.

Needs the ``[smacv2]`` extra (from its repository) and the StarCraft II binary with ``SC2PATH``
set (the smacv2 README). Copies are held up to ``copies`` games at once, so rollouts batch at most
that many episodes; the game takes its seed when it launches, so episodes are not reproducible
from codi-kit's per-episode seeds (nor, SC2 being nondeterministic, at all)."""
from __future__ import annotations

import os
from pathlib import Path

import attrs
import numpy as np

from codi_kit.env import EnvSpec, Transition
from codi_kit.errors import CodiKitError
from codi_kit_plugins.envs.battle_adapter import BattleAdapter
from codi_kit_plugins.envs.combat import ActionLayout, Battle

# SMAC's actions: 0 no-op (dead units only), 1 stop, 2-5 move north, south, east, west, 6 + j attack enemy j
LAYOUT_MOVES, STOP, ATTACK = (2, 4, 3, 5), 1, 6  # moves in combat.ActionLayout's order: up, right, down, left
REWARD_SCALE_RATE = 20.0  # StarCraft2Env's default: a won episode's returns sum to this
SIGHT = 9.0  # StarCraft2Env.unit_sight_range without unit ranges; observed offsets are divided by it


def game_path() -> Path:
    """Where smacv2 (through pysc2) looks for the game: SC2PATH, else ~/StarCraftII."""
    return Path(os.environ.get("SC2PATH", Path.home() / "StarCraftII")).expanduser()


def import_smacv2(name: str):
    try:
        from smacv2.env import StarCraft2Env
        from smacv2.env.starcraft2.wrapper import StarCraftCapabilityEnvWrapper
    except ImportError:
        raise CodiKitError(f"env '{name}' needs smacv2: pip install \"codi-kit[smacv2]\" (from its repository) "
                           "and the StarCraft II binary; without the game use smax/" + name.split("/")[1]) from None
    if not game_path().is_dir():
        raise CodiKitError(f"env '{name}' needs the StarCraft II binary at {game_path()} (set SC2PATH; the smacv2 "
                           "README says how to install it); without the game use smax/" + name.split("/")[1])
    return StarCraft2Env, StarCraftCapabilityEnvWrapper


class Smacv2Battle(BattleAdapter):
    NAME = "smacv2/3m"

    @attrs.frozen
    class Config:
        copies: int = attrs.field(default=8, validator=attrs.validators.ge(1))  # games run at once
        episode_limit: int = 60  # the authors' max_path_length for 3m (lilh76/CODI exp_specs/smac/3m)

    def __init__(self, config: Config):
        self.config = config
        self.classes = import_smacv2(self.NAME)
        self.max_copies = config.copies
        self.games: list = []
        probe = self.game(0)
        info = probe.get_env_info()
        self.names = list(probe.get_obs_feature_names())
        self.agents, self.enemies = int(info["n_agents"]), int(probe.n_enemies)
        self.layout = ActionLayout(moves=LAYOUT_MOVES, stop=STOP, attack=ATTACK, enemies=self.enemies)
        self.columns = self._columns()
        self.spec = EnvSpec(name=self.NAME, agents=self.agents, obs_dim=int(info["obs_shape"]),
                            actions=int(info["n_actions"]), episode_limit=min(int(info["episode_limit"]), config.episode_limit),
                            state_dim=int(info["state_shape"]), team_reward="shared", idle_action=STOP)
        self.games.append(probe)

    def game(self, seed: int):
        """A new game (launched by its first reset)."""
        StarCraft2Env, _ = self.classes
        return StarCraft2Env(map_name="3m", seed=seed, obs_own_pos=True)

    def _columns(self):
        """Where each feature the combat view reads sits in the observation (by SMACv2's names)."""
        where = {name: i for i, name in enumerate(self.names)}
        pick = lambda pattern: np.array([where[pattern.format(e)] for e in range(self.enemies)])  # noqa: E731
        return {"shootable": pick("enemy_shootable_{}"), "x": pick("enemy_relative_x_{}"),
                "y": pick("enemy_relative_y_{}"), "health": pick("enemy_health_{}"), "own_health": where["own_health"],
                "position": np.array([where["own_pos_x"], where["own_pos_y"]])}

    # -- batched API -----------------------------------------------------------------------------
    def reset(self, seeds):
        if len(seeds) > self.max_copies:
            raise CodiKitError(f"env '{self.NAME}': {len(seeds)} episodes at once, but copies={self.max_copies} games")
        while len(self.games) < len(seeds):
            self.games.append(self.game(int(seeds[len(self.games)]) % 2**31))
        self.batch = len(seeds)
        self.done = np.zeros(self.batch, bool)
        self.steps = np.zeros(self.batch, np.int64)
        for game in self.games[: self.batch]:
            game.reset()
        return self._gather(np.zeros(self.batch, np.float32), self.done.copy())

    def step(self, actions):
        finished = self.done.copy()
        reward = np.zeros(self.batch, np.float32)
        for b in np.flatnonzero(~finished):
            value, terminated, _ = self.games[b].step([int(a) for a in actions[b]])
            reward[b] = value
            self.done[b] = bool(terminated)
            self.steps[b] += 1
        self.done |= self.steps >= self.spec.episode_limit
        return self._gather(reward, finished)

    def _gather(self, reward, finished) -> Transition:
        spec = self.spec
        obs = np.zeros((self.batch, spec.agents, spec.obs_dim), np.float32)
        avail = np.zeros((self.batch, spec.agents, spec.actions), bool)
        state = np.zeros((self.batch, spec.state_dim), np.float32)
        for b in range(self.batch):
            if finished[b]:
                avail[b, :, 0] = True
                continue
            game = self.games[b]
            obs[b] = np.asarray(game.get_obs(), np.float32)
            avail[b] = np.asarray(game.get_avail_actions(), bool)
            state[b] = np.asarray(game.get_state(), np.float32)
        return Transition(obs=obs, avail=avail, state=state, reward=reward, done=self.done.copy())

    # -- what the expert, the judge and the text converter read ------------------------------
    def parse(self, obs: np.ndarray) -> Battle:
        c = self.columns
        offset = np.stack([obs[..., c["x"]], obs[..., c["y"]]], -1) * SIGHT
        return Battle(health=obs[..., c["own_health"]], enemy_health=obs[..., c["health"]], enemy_offset=offset,
                      enemy_in_range=obs[..., c["shootable"]] > 0, position=obs[..., c["position"]])

    def win_rate(self, returns):
        """SMAC's scaled reward (reward_scale_rate 20, reward_only_positive) sums to 20 exactly over a
        won battle (all damage, all kills and the win bonus) and to less over any other."""
        return float((np.asarray(returns) > REWARD_SCALE_RATE * (1 - 1e-3)).mean())

    def close(self):
        for game in self.games:
            game.close()
        self.games = []


class Smacv2Zerg3v4(Smacv2Battle):
    """SMACv2's 10gen_zerg at 3 units against 4 (the paper's zerg 3v4), with SMACv2's own zerg
    configuration (smacv2/examples/configs/sc2_gen_zerg.yaml) otherwise."""

    NAME = "smacv2/zerg_3v4"

    @attrs.frozen
    class Config(Smacv2Battle.Config):
        episode_limit: int = 80  # the authors' max_path_length for zerg 3v4 (exp_specs/smacv2/10gen_zerg)

    def game(self, seed: int):
        _, Wrapper = self.classes
        capabilities = {
            "n_units": 3, "n_enemies": 4,
            "team_gen": {"dist_type": "weighted_teams", "unit_types": ["zergling", "baneling", "hydralisk"],
                         "weights": [0.45, 0.1, 0.45], "exception_unit_types": ["baneling"], "observe": True},
            "start_positions": {"dist_type": "surrounded_and_reflect", "p": 0.5, "map_x": 32, "map_y": 32},
        }
        return Wrapper(capability_config=capabilities, map_name="10gen_zerg", seed=seed, obs_own_pos=True,
                       use_unit_ranges=True, min_attack_range=2, conic_fov=False)
