"""Drawing MPE episodes for the run report (the paper's Figure 3(a)): each agent's path from its
start (circle) to its end (triangle), the dataset's expert drawn solid and the others dashed."""
from __future__ import annotations

import numpy as np


def draw_paths(axis, positions: np.ndarray, expert: np.ndarray | None, name: str = "agent") -> None:
    """``positions`` [T, N, 2] absolute; ``expert`` [N] bool or None (generated: all drawn solid)."""
    for agent in range(positions.shape[1]):
        path = positions[:, agent]
        is_expert = expert is not None and bool(expert[agent])
        style = "-" if expert is None or is_expert else "--"
        label = f"{name} {agent}" + (" (expert)" if is_expert else "")
        colour = f"C{agent}"  # matplotlib's colour cycle: agent i has the same colour in every panel
        axis.plot(path[:, 0], path[:, 1], style, linewidth=2.2 if is_expert else 1.4, label=label, color=colour)
        axis.plot(*path[0], "o", color=colour, markersize=5)
        axis.plot(*path[-1], "^", color=colour, markersize=7)


def finish(axis) -> None:
    axis.set_aspect("equal", adjustable="datalim")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="best")
