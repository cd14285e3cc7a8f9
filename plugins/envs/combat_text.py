"""Segment -> prompt for StarCraft-style battles: per agent per step its health, the distance to the
nearest enemy it sees, what it did (which enemy it attacked) and how many enemies it sees."""
from __future__ import annotations

from typing import Callable

import numpy as np

from codi_kit.labels.prompts import TemplateConfig, agent_timelines, answer_text, load_template, render
from codi_kit_plugins.envs.combat import ActionLayout, Battle, chances, shots

COMBAT_TEMPLATE = """You are judging a cooperative multi-agent battle. {agents} allied units fight a team \
of enemy units; the team wins by destroying every enemy. A good unit closes in on the enemy, \
fires whenever an enemy is in range and focuses its fire on the weakest enemy it can reach, so \
that enemies die quickly; a poor unit wanders, stops, or fires at random.

Below is a segment of {horizon} steps: for each agent, at every step, its health, the distance to \
the nearest enemy it sees, its action, and how many enemies it sees.

{timelines}

Which agent performs best in this segment? Choose one of {agent_list}. \
End your answer with a line of the form "Best agent: Agent <number>"."""

# For small local models (the hf teacher's default): one line per agent with what the rule judge
# counts (shots at the weakest enemy in range out of its steps with one in range, shots in range) and
# its health at both ends.
COMBAT_COMPACT_TEMPLATE = """Battle: {agents} allied units fight enemy units. A good unit fires at the weakest enemy \
in its range at every step it can; a poor unit wanders or fires at random.

What each agent did over {horizon} steps:
{timelines}

Which agent performs best? Answer with one of {agent_list}."""


class CombatText:
    """Built for one battle env: ``parse`` reads its observations, ``layout`` names its actions."""

    Config = TemplateConfig

    def __init__(self, config: TemplateConfig, parse: Callable[[np.ndarray], Battle], layout: ActionLayout):
        self.template = load_template(config.template, COMBAT_TEMPLATE)
        self.compact_template = load_template(config.compact_template, COMBAT_COMPACT_TEMPLATE)
        self.parse, self.layout = parse, layout

    def prompt(self, obs: np.ndarray, actions: np.ndarray) -> str:
        horizon, agents = actions.shape
        battle = self.parse(obs)  # fields [H, N, ...]
        nearest = battle.nearest_enemy()
        seen = battle.enemies_alive_seen()

        def line(t, i):
            if battle.health[t, i] <= 0:
                return "dead"
            distance = f"{nearest[t, i]:.1f}" if np.isfinite(nearest[t, i]) else "none in sight"
            return (f"health={battle.health[t, i]:.2f}; nearest enemy distance={distance}; "
                    f"action={self.layout.describe(int(actions[t, i]))}; enemies seen={seen[t, i]}")

        return render(self.template, agents, horizon, agent_timelines(agents, horizon, line))

    def compact_prompt(self, obs: np.ndarray, actions: np.ndarray) -> str:
        horizon, agents = actions.shape
        battle = self.parse(obs)
        focused, hits = shots(battle, actions, self.layout)
        chance = chances(battle)
        lines = [f"{answer_text(i)}: shots at the weakest enemy in range {focused[:, i].sum()} of "
                 f"{chance[:, i].sum()} steps with an enemy in range, shots in range {hits[:, i].sum()}; "
                 f"health {battle.health[0, i]:.2f} -> {battle.health[-1, i]:.2f}"
                 for i in range(agents)]
        return render(self.compact_template, agents, horizon, "\n".join(lines))
