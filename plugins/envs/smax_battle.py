"""SMAX battles (JaxMARL's SMAC re-implementation in JAX): B copies reset and stepped at once by
``jax.vmap``, against SMAX's heuristic enemy. Needs the optional extra: ``pip install ".[smax]"``.

``smax/3m``: 3 marines against 3 marines (SMAC's 3m). ``smax/zerg_3v4``: 3 allied zerg units
against 4, each team drawn from zerglings and hydralisks, started surrounded or reflected (in the
spirit of SMACv2's 10gen_zerg; see the README for how it differs)."""
from __future__ import annotations

import contextlib
import os
import sys

import attrs
import numpy as np

from codi_kit.env import EnvSpec, Transition
from codi_kit.errors import CodiKitError
from codi_kit_plugins.envs.battle_adapter import BattleAdapter
from codi_kit_plugins.envs.combat import ActionLayout, Battle

MOVES = (0, 1, 2, 3)  # SMAX's discrete moves: up, right, down, left (after its 45-degree rotation)
STOP, ATTACK = 4, 5  # then "attack enemy j" = 5 + j
UNIT_FEATURES = 7  # health, relative x, y (/ sight range), last move x, y, last target, cooldown; then type bits
OWN_FEATURES = 4  # health, x / width, y / height, cooldown; then type bits
ZERG_TYPES = (4, 5)  # SMAX's zergling and hydralisk


@contextlib.contextmanager
def silent_stdout():
    """Silence file descriptor 1: jaxmarl prints on import, past ``contextlib.redirect_stdout``."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(os.devnull, "w") as null:
        os.dup2(null.fileno(), 1)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)


def import_smax(name: str):
    """JaxMARL's SMAX module; one line naming the extra when it is not installed."""
    try:
        with silent_stdout():
            import jax
            from jaxmarl.environments import smax
    except ImportError:
        raise CodiKitError(f"env '{name}' needs JaxMARL's SMAX: pip install \"codi-kit[smax]\" "
                           "(or pip install jaxmarl)") from None
    return jax, smax


class SmaxBattle(BattleAdapter):
    NAME = "smax/3m"

    @attrs.frozen
    class Config:
        episode_limit: int = 60  # the authors' max_path_length for 3m (lilh76/CODI exp_specs/smac/3m), SMAC's limit
        enemy_attack: str = attrs.field(default="closest", validator=attrs.validators.in_(("closest", "random")))

    def __init__(self, config: Config):
        self.config = config
        jax, smax = import_smax(self.NAME)
        self.jax = jax
        self.env = smax.HeuristicEnemySMAX(scenario=self.scenario(smax), max_steps=config.episode_limit,
                                           attack_mode=config.enemy_attack)
        self.allies, self.enemies = self.env.num_allies, self.env.num_enemies
        self.layout = ActionLayout(moves=MOVES, stop=STOP, attack=ATTACK, enemies=self.enemies)
        self.bits = self.env.unit_type_bits
        self.sight = np.asarray(self.env.unit_type_sight_ranges, np.float32)
        self.reach = np.asarray(self.env.unit_type_attack_ranges, np.float32)
        self._reset = jax.jit(jax.vmap(self._reset_one))
        self._step = jax.jit(jax.vmap(self._step_one))
        self.spec = EnvSpec(name=self.NAME, agents=self.allies, obs_dim=int(self.env.obs_size),
                            actions=self.env.num_ally_actions, episode_limit=config.episode_limit,
                            state_dim=int(self.env.state_size), team_reward="shared", idle_action=STOP)

    def scenario(self, smax):
        return smax.map_name_to_scenario("3m")

    def compose(self, key, state):
        """Unit types of a new episode (3m: fixed)."""
        return state

    # -- one copy, in JAX ------------------------------------------------------------------------
    def _observe(self, state):
        jnp = self.jax.numpy
        obs = self.env.get_obs(state)
        avail = self.env.get_avail_actions(state)
        agents = self.env.agents
        return (jnp.stack([obs[a] for a in agents]), jnp.stack([avail[a] for a in agents]).astype(bool),
                self.env.get_world_state(state))

    def _reset_one(self, key):
        key, reset_key, compose_key = self.jax.random.split(key, 3)
        _, state = self.env.reset(reset_key)
        state = self.compose(compose_key, state)
        return key, state, self._observe(state)

    def _step_one(self, key, state, actions):
        key, step_key = self.jax.random.split(key)
        joint = {agent: actions[i] for i, agent in enumerate(self.env.agents)}
        _, state, rewards, dones, _ = self.env.step_env(step_key, state, joint)
        return key, state, self._observe(state), rewards[self.env.agents[0]], dones["__all__"]

    # -- batched API -----------------------------------------------------------------------------
    def reset(self, seeds):
        keys = self.jax.numpy.stack([self.jax.random.PRNGKey(int(s) % 2**32) for s in seeds])
        self.keys, self.state, observed = self._reset(keys)
        self.done = np.zeros(len(seeds), bool)
        return self._transition(observed, np.zeros(len(seeds), np.float32), self.done.copy())

    def step(self, actions):
        finished = self.done.copy()
        joint = self.jax.numpy.asarray(np.asarray(actions, np.int32))
        self.keys, self.state, observed, reward, done = self._step(self.keys, self.state, joint)
        reward = np.where(finished, 0.0, np.asarray(reward, np.float32)).astype(np.float32)
        self.done = finished | np.asarray(done)
        return self._transition(observed, reward, finished)

    def _transition(self, observed, reward, finished) -> Transition:
        obs, avail, state = (np.array(x) for x in observed)
        obs = obs.astype(np.float32)
        obs[finished] = 0.0
        avail[finished] = False
        avail[finished, :, 0] = True
        state = state.astype(np.float32)
        state[finished] = 0.0
        return Transition(obs=obs, avail=avail, state=state, reward=reward, done=self.done.copy())

    # -- what the expert, the judge and the text converter read ------------------------------
    def parse(self, obs: np.ndarray) -> Battle:
        """SMAX's unit-list observation: the other allies, then the enemies (each UNIT_FEATURES +
        type bits), then the agent's own features + type bits."""
        width = UNIT_FEATURES + self.bits
        first_enemy = (self.allies - 1) * width
        own = obs[..., first_enemy + self.enemies * width:]
        enemies = obs[..., first_enemy: first_enemy + self.enemies * width].reshape(*obs.shape[:-1], self.enemies, width)
        unit_type = own[..., OWN_FEATURES:].argmax(-1)
        offset = enemies[..., 1:3] * self.sight[unit_type][..., None, None]
        health = enemies[..., 0]
        in_range = (health > 0) & (np.linalg.norm(offset, axis=-1) < self.reach[unit_type][..., None])
        return Battle(health=own[..., 0], enemy_health=health, enemy_offset=offset, enemy_in_range=in_range,
                      position=own[..., 1:3])

    def win_rate(self, returns):
        """SMAX's team return is the share of the enemies' health destroyed (at most 1) plus 1 for a
        won battle, so a return above 1 is a win (a draw, both teams dead, gets no bonus)."""
        return float((np.asarray(returns) > 1.0 + 1e-4).mean())

    def close(self):
        self.state = None


class SmaxZerg3v4(SmaxBattle):
    """3 allied zerg units against 4. Each ally is a zergling or a hydralisk with equal chance
    (SMACv2's 10gen_zerg draws zergling 0.45 / hydralisk 0.45 / baneling 0.1; SMAX has no
    baneling); the enemy team mirrors the allies' types and adds one drawn the same way (SMACv2's
    weighted teams); start positions are SMAX's surrounded-or-reflected (SMACv2's)."""

    NAME = "smax/zerg_3v4"

    @attrs.frozen
    class Config(SmaxBattle.Config):
        episode_limit: int = 80  # the authors' max_path_length for zerg 3v4 (exp_specs/smacv2/10gen_zerg)

    def scenario(self, smax):
        jnp = self.jax.numpy
        return smax.Scenario(jnp.full((7,), ZERG_TYPES[0], jnp.uint8), 3, 4, True, False)

    def compose(self, key, state):
        jax, jnp = self.jax, self.jax.numpy
        ally_key, extra_key = jax.random.split(key)
        allies = jax.random.choice(ally_key, jnp.array(ZERG_TYPES, jnp.uint8), (3,))
        extra = jax.random.choice(extra_key, jnp.array(ZERG_TYPES, jnp.uint8), (1,))
        types = jnp.concatenate([allies, allies, extra])
        battle = state.state.replace(unit_types=types, unit_health=self.env.unit_type_health[types])
        return state.replace(state=self.env._env._push_units_away(battle))
