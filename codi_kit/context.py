"""What every stage hands a plugin besides its own data: seed, device, a work folder, a metrics log."""
from __future__ import annotations

import json
from pathlib import Path

import attrs
import torch

from codi_kit.run import tensorboard_log
from codi_kit.env import EnvAdapter


@attrs.frozen
class NoSettings:
    """The ``Config`` of a component without settings (the base classes' default)."""


@attrs.frozen
class StageContext:
    seed: int
    device: torch.device
    workdir: Path  # the artifact folder being written (temporary until the stage succeeds)
    env: EnvAdapter  # for periodic evaluation, judges and quality scores
    profile: str = "quick"
    checkpoints: Path | None = None  # a folder for resumable state that survives a crash (long stages)

    def log_metrics(self, record: dict, name: str = "metrics.jsonl") -> None:
        """Append one JSON line (loss, evaluation return, ...) to the artifact's metrics log, and its
        numbers to TensorBoard when it is installed."""
        with open(self.workdir / name, "a") as handle:
            handle.write(json.dumps(record, default=float) + "\n")
        tensorboard_log.add_scalars(self.workdir, record, "" if name == "metrics.jsonl" else f"{Path(name).stem}/")
