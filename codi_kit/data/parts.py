"""Original and generated episodes side by side, unmerged: what a learner trains on.

``Dataset.merge`` pads every episode to the longest, so 500000 one-step generated branches beside
25-step episodes would take 25 times their size (about 6 GB on CN N = 3); the parts keep their own
lengths, and ``codi_kit.data.replay.transitions`` flattens each part on its own.
"""
from __future__ import annotations

import attrs
import numpy as np

from codi_kit.data.dataset import Dataset


@attrs.frozen
class DatasetParts:
    """Episodes numbered across the parts in order (the original's first)."""

    parts: tuple[Dataset, ...] = attrs.field(converter=tuple)

    @property
    def episodes(self) -> int:
        return sum(part.episodes for part in self.parts)

    @property
    def agents(self) -> int:
        return self.parts[0].agents

    @property
    def meta(self) -> dict:
        return self.parts[0].meta

    def returns(self) -> np.ndarray:
        return np.concatenate([part.returns() for part in self.parts])

    def select(self, episodes: np.ndarray) -> DatasetParts:
        """The chosen episodes (indices across the parts, or a bool mask), each part keeping its own."""
        chosen = np.zeros(self.episodes, bool)
        chosen[episodes] = True
        bounds = np.cumsum([0] + [part.episodes for part in self.parts])
        return DatasetParts(part.select(chosen[start:end]) for part, start, end in zip(self.parts, bounds[:-1], bounds[1:]))

    @staticmethod
    def of(data: Dataset | DatasetParts) -> list[Dataset]:
        """The parts that hold episodes (at least one part, possibly empty) of either kind of data."""
        parts = data.parts if isinstance(data, DatasetParts) else (data,)
        return [part for part in parts if part.episodes] or list(parts[:1])

    def merged(self) -> Dataset:
        """One padded ``Dataset`` (for a learner that wants one; costs the padding)."""
        return Dataset.merge(*self.parts)
