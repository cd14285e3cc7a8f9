"""Discrete steering for MPE particles, shared by the scripted experts and the scripted prey."""
from __future__ import annotations

import numpy as np

# MPE discrete moves: no-op, -x, +x, -y, +y
MOVES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], np.float32)
DT, DAMPING = 0.1, 0.25  # mpe2 World defaults
# after one push the particle coasts: total displacement = v' * dt / damping
COAST = DT / DAMPING


def steer_to(velocity: np.ndarray, target: np.ndarray, acceleration: float) -> np.ndarray:
    """The move whose resulting stopping point lies closest to ``target`` (relative position).

    ``velocity`` and ``target`` are [..., 2]; returns [...] action indices. Aiming at the stopping
    point rather than the target itself brakes in time instead of overshooting.
    """
    next_velocity = velocity[..., None, :] * (1 - DAMPING) + MOVES * acceleration * DT  # [..., 5, 2]
    stop = next_velocity * COAST
    return np.linalg.norm(stop - target[..., None, :], axis=-1).argmin(axis=-1)


def flee_from(velocity: np.ndarray, position: np.ndarray, threats: np.ndarray, acceleration: float) -> np.ndarray:
    """The move that best heads away from ``threats`` (relative positions [..., M, 2]; exact zeros
    are hidden threats and ignored) while keeping inside the arena."""
    distance = np.linalg.norm(threats, axis=-1, keepdims=True)
    visible = distance > 1e-6
    push = np.where(visible, -threats / np.maximum(distance, 1e-6) ** 3, 0.0).sum(axis=-2)
    push = push - np.clip(np.abs(position) - 0.7, 0, None) * np.sign(position) * 40.0  # walls
    return steer_to(velocity, push / (np.linalg.norm(push, axis=-1, keepdims=True) + 1e-6), acceleration)
