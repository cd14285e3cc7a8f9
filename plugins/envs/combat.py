"""What the StarCraft-style battles (SMAX, SMACv2) have in common, read from one agent's observation:
its health, the enemies it sees (health, where they are) and what its discrete actions mean.

Each backend writes a ``parse(obs) -> Battle`` for its own observation layout and an
``ActionLayout`` for its action numbering; the focus-fire expert, the combat text converter and
the rule judge only use these.
"""
from __future__ import annotations

import attrs
import numpy as np


@attrs.frozen
class ActionLayout:
    """``moves``: the action index of each unit direction in ``directions`` (up, right, down,
    left); ``stop``; ``attack``: the index of "attack enemy 0" (enemy j is ``attack + j``).
    Any other action (SMACv2's no-op of a dead unit) is described as a no-op."""

    moves: tuple
    stop: int
    attack: int
    enemies: int
    directions = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, -1.0], [-1.0, 0.0]], np.float32)
    names = ("move up", "move right", "move down", "move left")

    def attack_target(self, actions: np.ndarray) -> np.ndarray:
        """The enemy each action attacks, or -1 where it does not attack; [...] from [...]."""
        target = np.asarray(actions) - self.attack
        return np.where((target >= 0) & (target < self.enemies), target, -1)

    def describe(self, action: int) -> str:
        target = int(self.attack_target(action))
        if target >= 0:
            return f"attack enemy {target + 1}"
        if action in self.moves:
            return self.names[self.moves.index(action)]
        return "stop" if action == self.stop else "no-op"


@attrs.frozen
class Battle:
    """One agent's view, every field batched as ``[...]`` (the observation's leading axes).

    ``health``: own health fraction (0 when dead); ``enemy_health [..., M]``: each enemy's health
    fraction, 0 when unseen or dead; ``enemy_offset [..., M, 2]``: its position relative to the
    agent in map units (zeros when unseen); ``enemy_in_range [..., M]``: within the agent's
    weapon range; ``position [..., 2]``: the agent's position as a fraction of the map (for
    heading to the centre when no enemy is in sight)."""

    health: np.ndarray
    enemy_health: np.ndarray
    enemy_offset: np.ndarray
    enemy_in_range: np.ndarray
    position: np.ndarray

    @property
    def enemy_seen(self) -> np.ndarray:
        return self.enemy_health > 0

    @property
    def enemy_distance(self) -> np.ndarray:
        """[..., M] distance to each enemy in map units, inf where unseen."""
        return np.where(self.enemy_seen, np.linalg.norm(self.enemy_offset, axis=-1), np.inf)

    def nearest_enemy(self) -> np.ndarray:
        """[...] distance to the nearest enemy seen (inf when none)."""
        return self.enemy_distance.min(axis=-1)

    def enemies_alive_seen(self) -> np.ndarray:
        return self.enemy_seen.sum(axis=-1)


def chances(battle: Battle) -> np.ndarray:
    """[H, N] the steps each agent is alive with an enemy in its weapon range: a chance to focus fire."""
    return (battle.health > 0) & battle.enemy_in_range.any(-1)


DISCIPLINE = 2 / 3  # the share of its chances a judged-good agent fires at the weakest enemy in range


def combat_scores(battle: Battle, actions: np.ndarray, layout: ActionLayout) -> np.ndarray:
    """The rule judge's score per agent of one segment (``battle`` fields [H, N, ...], ``actions
    [H, N]``): the steps it fires at the weakest enemy in its range, counted only for an agent that
    did so on at least ``DISCIPLINE`` of its chances (0 otherwise, and 0 everywhere is "cannot tell").

    A random agent lands an occasional focused shot, and one that stays in range longer collects
    more of them than an expert that dies early, so a count alone names it; the share of chances
    taken does not (the focus-fire expert takes all of them). Measured on 4000 H = 8 segments of
    each of 3 smax/zerg_3v4 quick datasets (2000 imbalanced episodes), agreement with the expert's
    index on the segments answered: the count alone 0.73-0.75 on 69-71% of them; the share >= 2/3
    0.969-0.974 on 55-56%; naming the highest share instead, >= 1/2 0.93 on 57-59% and >= 1/4
    0.84-0.85 on 63-65%. In segments where the expert is dead or out of range nobody can tell, and
    the judge says so. Survival points the other way: SMAX's enemies shoot the closest unit, which
    is the expert charging in."""
    focused, _ = shots(battle, actions, layout)
    taken = focused.sum(0) / np.maximum(chances(battle).sum(0), 1)
    return np.where(taken >= DISCIPLINE, focused.sum(0), 0)


def shots(battle: Battle, actions: np.ndarray, layout: ActionLayout) -> tuple[np.ndarray, np.ndarray]:
    """([H, N] fired at the weakest enemy in range, [H, N] fired at any enemy in range)."""
    target = layout.attack_target(actions)  # [H, N]
    chosen = np.maximum(target, 0)[..., None]
    hits = np.take_along_axis(battle.enemy_in_range, chosen, -1)[..., 0] & (target >= 0)
    weakest = np.where(battle.enemy_in_range, battle.enemy_health, np.inf).min(-1)
    focused = hits & (np.take_along_axis(battle.enemy_health, chosen, -1)[..., 0] <= weakest)
    return focused, hits
