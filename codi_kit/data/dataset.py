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

from codi_kit.run.atomic import atomic_path
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
    "truncated": (np.bool_, "E"),
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
    # [E] bool: the episode was cut before its end (a generated branch), so its last stored step
    # holds only the observation, state and availability to bootstrap from; that step's action
    # and reward are padding and it is no transition of its own
    truncated: np.ndarray | None = None
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

    def availability(self, actions: int) -> np.ndarray:
        """[E,T,N,K] ``avail_actions``, or every one of ``actions`` available where there are none."""
        if self.avail_actions is not None:
            return self.avail_actions
        return np.ones(self.actions.shape + (actions,), bool)

    def transition_mask(self) -> np.ndarray:
        """[E,T] bool, True on steps that are transitions: real steps except a truncated episode's
        last, which is only the observation its previous step leads to."""
        if self.truncated is None or not self.truncated.any():
            return self.step_mask()
        return np.arange(self.padded_length)[None, :] < (self.lengths - self.truncated)[:, None]

    def clear_padding(self) -> Dataset:
        """The padding convention, in place: every per-step field zero past each episode's length,
        and action 0 the only available action there (so masks stay consistent)."""
        padding = ~self.step_mask()
        for name in ("obs", "actions", "rewards", "state"):
            array = getattr(self, name)
            if array is not None:
                array[padding] = 0
        if self.avail_actions is not None:
            self.avail_actions[padding] = False
            self.avail_actions[padding, :, 0] = True
        return self

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
            if name == "truncated" and any(a is not None for a in arrays):
                arrays = [a if a is not None else np.zeros(p.episodes, bool) for a, p in zip(arrays, parts)]
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
            "steps": int(self.transition_mask().sum()),
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
        valid = self.transition_mask()
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
        meta = read_metadata(path)
        arrays = {}
        try:
            with np.load(path, allow_pickle=False) as archive:
                check_declared_sizes(path, archive)  # before anything is allocated
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


def read_metadata(path: Path) -> dict:
    """``NAME.json`` beside ``NAME.npz`` (empty when there is none); it must be a JSON object."""
    meta_path = Path(path).with_suffix(".json")
    if not meta_path.exists():
        return {}
    try:
        meta = json.loads(meta_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DatasetError(meta_path, "(metadata)", f"not valid JSON: {error}") from error
    if not isinstance(meta, dict):
        raise DatasetError(meta_path, "(metadata)", f"must be a JSON object, not a {type(meta).__name__}")
    return meta


def check_declared_sizes(path: Path, archive) -> None:
    """Each member's .npy header declares a shape; refuse one that declares more bytes than the
    archive holds for it (a corrupt or hostile header would otherwise allocate that much)."""
    for name in FIELDS:
        member = f"{name}.npy"
        if member not in archive.zip.namelist():
            continue
        info = archive.zip.getinfo(member)
        with archive.zip.open(info) as handle:
            try:
                version = np.lib.format.read_magic(handle)
                read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                if read is None:
                    continue
                shape, _, dtype = read(handle)
            except ValueError as error:
                raise DatasetError(path, name, f"unreadable array header: {error}") from error
            declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
            held = info.file_size - handle.tell()
        if declared > held:
            raise DatasetError(path, name, f"declares shape {tuple(shape)} ({declared:,} bytes) but the archive holds "
                                           f"{held:,} bytes for it (corrupt or truncated file)")


def check_import(dataset: Dataset, path: str | os.PathLike) -> None:
    """What a dataset file brought from elsewhere must also satisfy: episodes that exist, and
    metadata that agrees with its arrays (``spec``, ``normalization``)."""
    path = Path(path)
    meta_path = path.with_suffix(".json")
    if dataset.episodes == 0:
        raise DatasetError(path, "obs", "0 episodes")
    if (dataset.lengths == 0).any():
        empty = np.flatnonzero(dataset.lengths == 0)
        raise DatasetError(path, "lengths", f"{len(empty)} episodes have length 0 (first: episode {int(empty[0])})")
    spec = dataset.meta.get("spec")
    if isinstance(spec, dict):
        for key, actual in (("agents", dataset.agents), ("obs_dim", dataset.obs.shape[3])):
            if key in spec and spec[key] != actual:
                raise DatasetError(meta_path, f"spec.{key}", f"{spec[key]}, but obs has {actual}")
        if "actions" in spec:
            check_action_indices(dataset, path, spec["actions"], "the metadata's spec.actions")
    normalization = dataset.meta.get("normalization")
    if isinstance(normalization, dict) and {"R_lo", "R_hi"} <= normalization.keys():
        low, high = normalization["R_lo"], normalization["R_hi"]
        if not isinstance(low, (int, float)) or not isinstance(high, (int, float)):
            raise DatasetError(meta_path, "normalization", "R_lo and R_hi must be numbers")
        if high <= low:
            raise DatasetError(meta_path, "normalization.R_hi", f"{high} is not above R_lo {low}: normalised returns "
                                                                "would be undefined")
        mean = float(dataset.returns().mean())
        if not np.isclose(low, mean, rtol=1e-3, atol=1e-3):
            raise DatasetError(meta_path, "normalization.R_lo", f"{low} is not the data's mean return {mean:.6g} (R_lo is "
                                                                "the dataset's own mean; drop 'normalization' to have "
                                                                "R_lo and R_hi measured)")


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
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise DatasetError(source, name, f"{int((~np.isfinite(array)).sum())} non-finite values (NaN or inf)")
    _check_dims_agree(dataset, source)
    if (dataset.lengths < 0).any() or (dataset.lengths > dataset.padded_length).any():
        raise DatasetError(source, "lengths", f"values must lie in [0, {dataset.padded_length}]")
    if dataset.actions.size and dataset.actions.min() < 0:
        raise DatasetError(source, "actions", "negative action index")
    if dataset.avail_actions is not None:
        check_action_indices(dataset, source, dataset.avail_actions.shape[-1], "avail_actions")
        valid = dataset.transition_mask()
        chosen = np.take_along_axis(dataset.avail_actions, dataset.actions[..., None], axis=-1)[..., 0]
        if not chosen[valid].all():
            raise DatasetError(source, "actions", "some actions are not available per avail_actions")


def check_action_indices(dataset: Dataset, source, count: int, whose: str) -> None:
    """Every action index below ``count``, the number of actions ``whose`` says there are."""
    if dataset.actions.size and dataset.actions.max() >= count:
        raise DatasetError(source, "actions", f"index {int(dataset.actions.max())} >= the {count} actions of {whose}")


def _check_dims_agree(dataset: Dataset, source) -> None:
    """Every named dim (E, T, N, ...) has one size across fields; the field named is the one that
    disagrees with the most common size (obs with 45 episodes where the others have 50: obs)."""
    seen: dict[str, list[tuple[str, int]]] = {}
    for name, (_, dims) in FIELDS.items():
        array = getattr(dataset, name)
        if array is not None:
            for axis, dim in enumerate(dims):
                seen.setdefault(dim, []).append((name, array.shape[axis]))
    for dim, pairs in seen.items():
        sizes = [size for _, size in pairs]
        common = max(sizes, key=sizes.count)  # the most common; on a tie, the first field's
        for name, size in pairs:
            if size != common:
                raise DatasetError(source, name, f"shape {getattr(dataset, name).shape}: dim {dim} is {size}, "
                                                 f"other fields say {common}")
