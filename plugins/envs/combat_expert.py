"""A scripted focus-fire expert for StarCraft-style battles, acting per agent from its own view.

Attack the enemy with the lowest health among those in range (ties to the lowest index, so agents
that see the same enemies pick the same one); with none in range, move toward the nearest enemy
in sight; with none in sight, toward the map's centre. SMAX's heuristic policy (JaxMARL
``heuristic_enemy.py``) attacks the closest enemy and sticks to it; focusing the weakest kills
units sooner, which is what separates an expert from it."""
from __future__ import annotations

from typing import Callable

import numpy as np

from codi_kit.policy import Policy, masked_argmax
from codi_kit_plugins.envs.combat import ActionLayout, Battle


class FocusFire(Policy):
    def __init__(self, parse: Callable[[np.ndarray], Battle], layout: ActionLayout):
        self.parse, self.layout = parse, layout

    def act(self, obs, avail, rng, greedy=True):
        layout = self.layout
        battle = self.parse(obs)  # fields [B, N, ...]
        can_attack = battle.enemy_in_range & avail[..., layout.attack: layout.attack + layout.enemies]
        weakest = np.where(can_attack, battle.enemy_health, np.inf).argmin(-1)
        heading = np.where(np.isfinite(battle.nearest_enemy())[..., None],
                           battle.enemy_offset[np.arange(obs.shape[0])[:, None], np.arange(obs.shape[1]),
                                               battle.enemy_distance.argmin(-1)],
                           0.5 - battle.position)
        move = np.asarray(layout.moves)[(heading @ layout.directions.T).argmax(-1)]
        actions = np.where(can_attack.any(-1), layout.attack + weakest, move)
        preference = np.zeros(avail.shape, np.float32)  # where the choice is unavailable (dead): stop, else any
        preference[..., layout.stop] = 1.0
        np.put_along_axis(preference, actions[..., None], 2.0, -1)
        return masked_argmax(preference, avail)
