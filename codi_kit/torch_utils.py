"""Seeding and device choice, one place for every torch component."""
from __future__ import annotations

import random

import numpy as np
import torch

from codi_kit.errors import CodiKitError


def seed_everything(seed: int) -> None:
    """One seed for random, NumPy and torch (CleanRL's habit)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CodiKitError(f"--device {device}: CUDA is not available on this machine; use --device cpu or auto")
    try:
        return torch.device(device)
    except RuntimeError as error:
        raise CodiKitError(f"--device {device}: {error}") from None


def adam(parameters, learning_rate: float) -> torch.optim.Adam:
    """Adam with the fused kernel where the parameters' device has one (CPU and CUDA): one pass
    over every parameter instead of a loop of small kernels per parameter, the same update."""
    parameters = list(parameters)
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in parameters)
    return torch.optim.Adam(parameters, lr=learning_rate, fused=fused or None)
