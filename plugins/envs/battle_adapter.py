"""What every StarCraft-style adapter offers once it can read a ``Battle`` from an observation
(``parse``) and name its actions (``layout``): the focus-fire expert and the rule judge."""
from __future__ import annotations

import numpy as np

from codi_kit.env import EnvAdapter
from codi_kit_plugins.envs.combat import ActionLayout, Battle, combat_scores
from codi_kit_plugins.envs.combat_expert import FocusFire


class BattleAdapter(EnvAdapter):
    layout: ActionLayout

    def parse(self, obs: np.ndarray) -> Battle:
        raise NotImplementedError

    def expert_policy(self):
        return FocusFire(self.parse, self.layout)

    def rule_judge(self, obs, actions):
        """The agent with the most focused shots among those that fired at the weakest enemy in range
        on most of their chances (``combat_scores``, measured there); -1 (cannot tell) where no
        agent did, e.g. once the expert is dead."""
        scores = combat_scores(self.parse(obs), actions, self.layout)
        return int(scores.argmax()) if scores.max() > 0 else -1

    def draw_episode(self, axis, obs, expert):
        """Every ally's health over the episode (the expert solid, the others dashed) and each
        enemy's, as the allies see it (red; the highest of their views, 0 once dead or out of sight)."""
        battle = self.parse(obs)  # fields [T, N, ...]
        steps = np.arange(len(obs))
        for agent in range(obs.shape[1]):
            is_expert = expert is not None and bool(expert[agent])
            axis.plot(steps, battle.health[:, agent], "-" if expert is None or is_expert else "--", color=f"C{agent}",
                      linewidth=2.2 if is_expert else 1.4, label=f"ally {agent}" + (" (expert)" if is_expert else ""))
        enemies = battle.enemy_health.max(axis=1)  # [T, M]
        for enemy in range(enemies.shape[1]):
            axis.plot(steps, enemies[:, enemy], color="red", alpha=0.5, linewidth=1, label="enemies" if enemy == 0 else None)
        axis.set_xlabel("step")
        axis.set_ylabel("health fraction")
        axis.set_ylim(-0.05, 1.05)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7, loc="best")

