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
        """The agent that most often fires at the weakest enemy in its range (``combat_scores``)."""
        return int(combat_scores(self.parse(obs), actions, self.layout).argmax())
