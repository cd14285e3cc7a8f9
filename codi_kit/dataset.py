"""The offline dataset: episodes of joint observations, actions and team rewards over numpy arrays.

Stored as ``NAME.npz`` (``allow_pickle=False``) beside ``NAME.json`` (metadata). Loading
validates every field and names the file and the field at fault.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import attrs
import numpy as np

from codi_kit.atomic import atomic_path
from codi_kit.errors import DatasetError

# field -> (dtype kind it must have, dims spelled with E episodes, T steps, N agents, O obs, K actions, S state)
FIELDS = {
    "obs": (np.float32, "ETNO"),
    "actions": (np.int64, "ETN"),
    "rewards": (np.float32, "ET"),
    "lengths": (np.int64, "E"),
    "avail_actions": (np.bool_, "ETNK"),
    "state": (np.float32, "ETS"),
    "expert_mask": (np.bool_, "EN"),
    "provenance": (np.str_, "E"),
}
REQUIRED = ("obs", "actions", "rewards", "lengths")


@attrs.define(eq=False)
class Dataset:
    """Episodes padded to a common length T; steps at t >= lengths[e] are zero padding."""

    obs: np.ndarray  # [E,T,N,O] float32
    actions: np.ndarray  # [E,T,N] int64, discrete
    rewards: np.ndarray  # [E,T] float32, team reward
    lengths: np.ndarray  # [E] int64
    avail_actions: np.ndarray | None = None  # [E,T,N,K] bool
    state: np.ndarray | None = None  # [E,T,S] float32, global state where the env has one
    expert_mask: np.ndarray | None = None  # [E,N] bool, ground truth of the imbalance protocol
    provenance: np.ndarray | None = None  # [E] str, e.g. "original", "generated:codi"
    meta: dict = attrs.field(factory=dict)

    def __attrs_post_init__(self):
        if self.provenance is None:
            self.provenance = np.full(len(self.lengths), self.meta.get("source", "original"), dtype="<U32")

    # -- shape --------------------------------------------------------------------------------
    @property
    def episodes(self) -> int:
        return int(self.obs.shape[0])

    @property
    def padded_length(self) -> int:
        """T: the common length episodes are padded to (a segment's length is its horizon H)."""
        return int(self.obs.shape[1])

    @property
    def agents(self) -> int:
        return int(self.obs.shape[2])

    def step_mask(self) -> np.ndarray:
        """[E,T] bool, True on real (non-padding) steps."""
        return np.arange(self.padded_length)[None, :] < self.lengths[:, None]

    def returns(self) -> np.ndarray:
        """[E] undiscounted team return of each episode."""
        return (self.rewards * self.step_mask()).sum(axis=1)

    def return_to_go(self) -> np.ndarray:
        """[E,T] undiscounted team return from each step to the episode's end (paper's R-hat)."""
        masked = self.rewards * self.step_mask()
        return np.flip(np.cumsum(np.flip(masked, axis=1), axis=1), axis=1).copy()

    # -- segments -----------------------------------------------------------------------------
    def segment_index(self, horizon: int) -> np.ndarray:
        """[M,2] int64 (episode, start) of every full window of ``horizon`` steps."""
        starts = [np.stack([np.full(max(n - horizon + 1, 0), e), np.arange(max(n - horizon + 1, 0))], axis=1)
                  for e, n in enumerate(self.lengths)]
        return np.concatenate(starts).astype(np.int64) if starts else np.zeros((0, 2), np.int64)

    def segment_view(self, field: str, horizon: int) -> np.ndarray:
        """A strided view [E, T-H+1, H, ...] of a per-step field: indexing it by a segment index
        gathers only the segments asked for; nothing is copied before that."""
        array = getattr(self, field)
        windows = np.lib.stride_tricks.sliding_window_view(array, horizon, axis=1)
        return np.moveaxis(windows, -1, 2)

    def segments(self, field: str, index: np.ndarray, horizon: int) -> np.ndarray:
        """[len(index), H, ...] copies of the segments named by ``index``."""
        return self.segment_view(field, horizon)[index[:, 0], index[:, 1]]

    # -- combining ----------------------------------------------------------------------------
    def select(self, episodes: np.ndarray) -> Dataset:
        """A dataset of the chosen episodes (indices or bool mask)."""
        picked = {name: (None if getattr(self, name) is None else getattr(self, name)[episodes]) for name in FIELDS}
        return Dataset(**picked, meta=dict(self.meta))

    @staticmethod
    def merge(*parts: Dataset) -> Dataset:
        """Concatenate episodes, padding time to the longest; provenance is kept per episode.

        A field missing from some part is dropped unless it can be filled honestly: a missing
        ``expert_mask`` (generated data has no ground truth) becomes all-False.
        """
        parts = [p for p in parts if p.episodes > 0] or list(parts[:1])
        length = max(p.padded_length for p in parts)
        merged = {}
        for name in FIELDS:
            arrays = [getattr(p, name) for p in parts]
            if name == "expert_mask" and any(a is not None for a in arrays):
                arrays = [a if a is not None else np.zeros((p.episodes, p.agents), bool) for a, p in zip(arrays, parts)]
            if any(a is None for a in arrays):
                merged[name] = None
                continue
            if len(FIELDS[name][1]) >= 2 and FIELDS[name][1][1] == "T":
                arrays = [_pad_time(a, length) for a in arrays]
            merged[name] = np.concatenate(arrays)
        meta = dict(parts[0].meta)
        meta["sources"] = sorted({str(s) for p in parts for s in np.unique(p.provenance)})
        return Dataset(**merged, meta=meta)

    # -- statistics ---------------------------------------------------------------------------
    def summary(self) -> dict:
        """Summary statistics: counts, returns overall and per provenance, expert share per agent."""
        returns = self.returns()
        stats = {
            "episodes": self.episodes,
            "steps": int(self.lengths.sum()),
            "agents": self.agents,
            "obs_dim": int(self.obs.shape[3]),
            "return_mean": float(returns.mean()) if len(returns) else float("nan"),
            "return_std": float(returns.std()) if len(returns) else float("nan"),
            "return_min": float(returns.min()) if len(returns) else float("nan"),
            "return_max": float(returns.max()) if len(returns) else float("nan"),
            "by_provenance": {
                str(source): {"episodes": int((self.provenance == source).sum()),
                              "return_mean": float(returns[self.provenance == source].mean())}
                for source in np.unique(self.provenance)
            },
        }
        if self.expert_mask is not None:
            stats["expert_share_per_agent"] = self.expert_mask.mean(axis=0).round(4).tolist()
        valid = self.step_mask()
        counts = np.bincount(self.actions[valid].ravel(), minlength=1)
        stats["action_share"] = (counts / max(counts.sum(), 1)).round(4).tolist()
        return stats

    # -- files --------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write ``path`` (.npz) and its ``.json`` metadata, each atomically."""
        path = Path(path).with_suffix(".npz")
        arrays = {name: getattr(self, name) for name in FIELDS if getattr(self, name) is not None}
        with atomic_path(path) as temporary:
            with open(temporary, "wb") as handle:
                np.savez_compressed(handle, **arrays)
        with atomic_path(path.with_suffix(".json")) as temporary:
            Path(temporary).write_text(json.dumps(self.meta, indent=2, default=_jsonable))
        return path

    @staticmethod
    def load(path: str | os.PathLike) -> Dataset:
        """Read and validate; any problem raises ``DatasetError`` naming the file and field."""
        path = Path(path)
        if not path.exists():
            raise DatasetError(path, "(file)", "no such file")
        meta_path = path.with_suffix(".json")
        meta = {}
        if meta_path.exists():
            try:
                meta = json.loads(meta_path.read_text())
            except json.JSONDecodeError as error:
                raise DatasetError(meta_path, "(metadata)", f"not valid JSON: {error}") from error
        arrays = {}
        try:
            with np.load(path, allow_pickle=False) as archive:
                for name in FIELDS:
                    if name in archive.files:
                        try:
                            arrays[name] = archive[name]
                        except (zipfile.BadZipFile, EOFError, ValueError, OSError, KeyError) as error:
                            raise DatasetError(path, name, f"unreadable (truncated or corrupt file?): {error}") from error
        except DatasetError:
            raise
        except (zipfile.BadZipFile, EOFError, ValueError, OSError) as error:
            raise DatasetError(path, "(file)", f"not a readable .npz archive (truncated or corrupt?): {error}") from error
        dataset = Dataset(**{n: arrays.get(n) for n in FIELDS}, meta=meta)
        validate(dataset, path)
        return dataset


def _pad_time(array: np.ndarray, length: int) -> np.ndarray:
    missing = length - array.shape[1]
    if missing == 0:
        return array
    pad = [(0, 0)] * array.ndim
    pad[1] = (0, missing)
    return np.pad(array, pad)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def validate(dataset: Dataset, source: str | os.PathLike = "(in memory)") -> None:
    """Check presence, dtype, shape agreement, finiteness and value ranges of every field."""
    sizes: dict[str, int] = {}
    for name, (dtype, dims) in FIELDS.items():
        array = getattr(dataset, name)
        if array is None:
            if name in REQUIRED:
                raise DatasetError(source, name, "missing (required)")
            continue
        if dtype is np.str_:
            if array.dtype.kind != "U":
                raise DatasetError(source, name, f"dtype {array.dtype}, expected a string array")
        elif array.dtype != dtype:
            raise DatasetError(source, name, f"dtype {array.dtype}, expected {np.dtype(dtype)}")
        if array.ndim != len(dims):
            raise DatasetError(source, name, f"shape {array.shape}, expected {len(dims)} dims [{','.join(dims)}]")
        for axis, dim in enumerate(dims):
            if sizes.setdefault(dim, array.shape[axis]) != array.shape[axis]:
                raise DatasetError(source, name, f"shape {array.shape}: dim {dim} is {array.shape[axis]}, other fields say {sizes[dim]}")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise DatasetError(source, name, f"{int((~np.isfinite(array)).sum())} non-finite values (NaN or inf)")
    if (dataset.lengths < 0).any() or (dataset.lengths > dataset.padded_length).any():
        raise DatasetError(source, "lengths", f"values must lie in [0, {dataset.padded_length}]")
    if dataset.actions.size and dataset.actions.min() < 0:
        raise DatasetError(source, "actions", "negative action index")
    if dataset.avail_actions is not None:
        valid = dataset.step_mask()
        chosen = np.take_along_axis(dataset.avail_actions, dataset.actions[..., None], axis=-1)[..., 0]
        if not chosen[valid].all():
            raise DatasetError(source, "actions", "some actions are not available per avail_actions")
