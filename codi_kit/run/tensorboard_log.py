"""Training curves as TensorBoard event files, beside each stage's metrics.jsonl, when TensorBoard
is installed (``pip install codi-kit[tensorboard]``; then ``tensorboard --logdir RUN``). One writer
per stage folder, opened at its first logged record and closed when the stage ends."""
from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

_writers: dict[Path, object] = {}


@functools.cache
def available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def add_scalars(folder: Path, record: dict, prefix: str = "") -> None:
    """Every number of ``record`` at its ``step`` (records without one, e.g. a summary, are skipped)."""
    step = record.get("step")
    if not isinstance(step, int) or not available():
        return
    writer = _writers.get(folder)
    if writer is None:
        from torch.utils.tensorboard import SummaryWriter

        writer = _writers[folder] = SummaryWriter(str(folder / "tensorboard"))
    for key, value in record.items():
        if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
            writer.add_scalar(f"{prefix}{key}", value, step)


def close(folder: Path) -> None:
    """Flush and close the stage folder's writer, if it has one."""
    writer = _writers.pop(folder, None)
    if writer is not None:
        writer.close()
