"""Formats that store one stream of transitions (MADiff, OG-MARL) cut into padded episodes."""
from __future__ import annotations

import numpy as np

from codi_kit.data.dataset import Dataset


def episodes_from_stream(ends: np.ndarray, **streams: np.ndarray) -> Dataset:
    """``streams`` (each ``[steps, ...]``) cut at ``ends`` (each episode's end, exclusive, sorted;
    the last is ``steps``) into a Dataset padded to the longest episode; ``None`` streams are left out."""
    ends = np.asarray(ends, np.int64)
    starts = np.concatenate([[0], ends[:-1]])
    lengths = ends - starts
    width = int(lengths.max())
    index = np.minimum(starts[:, None] + np.arange(width)[None], (ends - 1)[:, None])  # [E, width]
    fields = {name: stream[index] for name, stream in streams.items() if stream is not None}
    return Dataset(lengths=lengths, **fields).clear_padding()  # past each end: zeros, not the repeated last step
