"""Segment -> prompt for the MPE environments: per-agent timelines as in the paper's case study."""
from __future__ import annotations

import numpy as np

from codi_kit.labels.prompts import TemplateConfig, agent_timelines, answer_text, load_template, render
from codi_kit_plugins.envs.mpe_cn import geometry
from codi_kit_plugins.envs.mpe_world import Layout, World, intercept_cosines

ACTIONS = ["no-op", "move left", "move right", "move down", "move up"]

CN_TEMPLATE = """You are judging a cooperative multi-agent task. In Cooperative Navigation, {agents} agents \
move on a plane and must together cover {agents} landmarks: each landmark should have one agent on it, \
and agents should not collide. A good agent heads steadily to a landmark that no other agent is \
taking and stays there; a poor agent wanders.

Below is a segment of {horizon} steps: for each agent, at every step, its action, its nearest landmark \
and its distance to that landmark.

{timelines}

Which agent performs best in this segment? Choose one of {agent_list}. \
End your answer with a line of the form "Best agent: Agent <number>"."""

WORLD_TEMPLATE = """You are judging a cooperative predator-prey task. {agents} predators chase one prey \
around obstacles and forests (inside a forest an agent can be hidden). A good predator closes in on \
the prey steadily, aiming where the prey is going, and catches it; while the prey is hidden it heads \
for the nearest forest; a poor predator wanders.

Below is a segment of {horizon} steps: for each predator, at every step, its action, whether that move \
heads towards the prey (or, with the prey hidden, the nearest forest), and its distance to the prey \
(or that the prey is hidden from it).

{timelines}

Which predator performs best in this segment? Choose one of {agent_list}. \
End your answer with a line of the form "Best agent: Agent <number>"."""

# Compact variants for small local models (the hf teacher's default): one line per agent, the
# quantity the task rewards at the segment's first and last step and its change; the paper's
# per-step timelines are 4.5x as many tokens (CN: 825 against 184) and, measured with
# SmolLM2-135M, label no better (README).
CN_COMPACT_TEMPLATE = """Cooperative Navigation: {agents} agents must cover {agents} landmarks, one agent on each. \
A good agent moves straight to a landmark and ends on it; a poor agent wanders and stays far away.

Distance of each agent to its nearest landmark over {horizon} steps (first -> last, change):
{timelines}

Which agent performs best? Answer with one of {agent_list}."""

WORLD_COMPACT_TEMPLATE = """Predator-prey: {agents} predators chase one prey. A good predator closes in on the \
prey, aiming where it is going (the nearest forest while the prey is hidden), and catches it; a poor \
predator wanders and stays far away.

Distance of each predator to the prey over {horizon} steps (first -> last, change; hidden = in a forest) \
and how many of its moves headed for the prey:
{timelines}

Which predator performs best? Answer with one of {agent_list}."""


def summary_lines(first: np.ndarray, last: np.ndarray) -> str:
    """``Agent i: first -> last (change)`` per agent; ``hidden`` where a distance is NaN."""
    def shown(value):
        return "hidden" if np.isnan(value) else f"{value:.2f}"

    lines = []
    for i, (a, b) in enumerate(zip(first, last)):
        change = "" if np.isnan(a) or np.isnan(b) else f" ({b - a:+.2f})"
        lines.append(f"{answer_text(i)}: {shown(a)} -> {shown(b)}{change}")
    return "\n".join(lines)


class CooperativeNavigationText:
    Config = TemplateConfig

    def __init__(self, config: TemplateConfig):
        self.template = load_template(config.template, CN_TEMPLATE)
        self.compact_template = load_template(config.compact_template, CN_COMPACT_TEMPLATE)

    @staticmethod
    def _distances(obs: np.ndarray, agents: int) -> np.ndarray:
        _, _, landmarks = geometry(obs, agents)  # [H,N,L,2]
        return np.linalg.norm(landmarks, axis=-1)

    def prompt(self, obs: np.ndarray, actions: np.ndarray) -> str:
        horizon, agents = actions.shape
        distances = self._distances(obs, agents)
        nearest = distances.argmin(-1)
        timelines = agent_timelines(agents, horizon, lambda t, i: (
            f"action={ACTIONS[actions[t, i]]}; nearest landmark id={nearest[t, i] + 1}; "
            f"distance to nearest landmark={distances[t, i, nearest[t, i]]:.3f}"))
        return render(self.template, agents, horizon, timelines)

    def compact_prompt(self, obs: np.ndarray, actions: np.ndarray) -> str:
        horizon, agents = actions.shape
        nearest = self._distances(obs, agents).min(-1)  # [H, N]
        return render(self.compact_template, agents, horizon, summary_lines(nearest[0], nearest[-1]))


class WorldText:
    Config = TemplateConfig

    def __init__(self, config: TemplateConfig):
        defaults = World.Config()
        self.layout = Layout(defaults.obstacles, defaults.food, defaults.forests)
        self.template = load_template(config.template, WORLD_TEMPLATE)
        self.compact_template = load_template(config.compact_template, WORLD_COMPACT_TEMPLATE)

    def prompt(self, obs: np.ndarray, actions: np.ndarray) -> str:
        horizon, agents = actions.shape
        distances = np.linalg.norm(obs[..., self.layout.prey], axis=-1)

        cosines = intercept_cosines(self.layout, obs, actions)

        def line(t, i):
            seen = "prey hidden" if distances[t, i] < 1e-9 else f"distance to prey={distances[t, i]:.3f}"
            target = "the prey" if distances[t, i] >= 1e-9 else "the nearest forest"
            heading = f"towards {target}" if cosines[t, i] > 0.5 else f"not towards {target}"
            return f"action={ACTIONS[actions[t, i]]} ({heading}); {seen}"

        return render(self.template, agents, horizon, agent_timelines(agents, horizon, line))

    def compact_prompt(self, obs: np.ndarray, actions: np.ndarray) -> str:
        horizon, agents = actions.shape
        distances = np.linalg.norm(obs[..., self.layout.prey], axis=-1)  # 0 where the prey is hidden
        distances = np.where(distances < 1e-9, np.nan, distances)
        towards = (intercept_cosines(self.layout, obs, actions) > 0.5).sum(axis=0)
        lines = [f"{line}; {count} of {horizon} moves towards the prey"
                 for line, count in zip(summary_lines(distances[0], distances[-1]).split("\n"), towards)]
        return render(self.compact_template, agents, horizon, "\n".join(lines))
