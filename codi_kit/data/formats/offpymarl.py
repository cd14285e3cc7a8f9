"""OffPyMARL's H5 episode files (the CODI authors' data pipeline), read and written.

The layout is PyMARL's ``EpisodeBatch`` saved key by key (OffPyMARL ``OfflineBufferH5`` reads every
``.h5`` of a folder, sorted, and concatenates each key over files): every array is
``[episodes, T + 1, ...]`` with

    obs [E, T+1, N, O]   state [E, T+1, S]   avail_actions [E, T+1, N, K]   filled [E, T+1, 1]
    actions [E, T+1, N, 1]   actions_onehot [E, T+1, N, K]   reward [E, T+1, 1]   terminated [E, T+1, 1]

``filled`` marks the steps that hold data (step 0 up to the one after the last action, which holds
the final observation); ``terminated`` is 1 on the last transition of an episode that ended by
itself (not on the time limit). Our ``lengths`` are the transitions: the first terminated step + 1,
else (an episode cut by the time limit) the filled steps that have a next step (``filled`` - 1).

Written files also carry no key of ours (OffPyMARL slices every key by time); what OffPyMARL has
no field for (provenance, expert masks, metadata) goes to ``codi-kit.json`` beside them.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from codi_kit.data.dataset import Dataset
from codi_kit.errors import CodiKitError, DatasetError

SIDECAR = "codi-kit.json"
NEEDED = ("obs", "actions", "reward")


def _h5py():
    try:
        import h5py
    except ImportError:
        raise CodiKitError("the offpymarl format needs h5py: pip install \"codi-kit[offpymarl]\" (or pip install h5py)") from None
    return h5py


def files_of(path: Path) -> list[Path]:
    """One ``.h5`` file, or every ``.h5`` in a folder (sorted, as OfflineBufferH5 reads them)."""
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix == ".h5")
        if not files:
            raise CodiKitError(f"{path}: no .h5 files in this folder")
        return files
    if not path.exists():
        raise CodiKitError(f"{path}: no such file or folder")
    return [path]


def read_file(file: Path) -> dict:
    h5py = _h5py()
    try:
        with h5py.File(file, "r") as handle:
            arrays = {key: handle[key][()] for key in handle.keys()}
    except OSError as error:
        raise CodiKitError(f"{file}: not an HDF5 file ({error})") from None
    for key in NEEDED:
        if key not in arrays:
            raise DatasetError(file, key, f"missing (an OffPyMARL file has {', '.join(NEEDED)}; found {sorted(arrays)})")
    episodes, steps = arrays["obs"].shape[:2]
    for key, value in arrays.items():
        if value.shape[:2] != (episodes, steps):
            raise DatasetError(file, key, f"shape {value.shape}, but obs starts with {(episodes, steps)}")
    if arrays["obs"].ndim != 4:
        raise DatasetError(file, "obs", f"shape {arrays['obs'].shape}; expected [episodes, T+1, agents, obs]")
    return arrays


def lengths_of(arrays: dict, file: Path) -> np.ndarray:
    """Transitions per episode, from ``terminated`` and ``filled`` (module docstring)."""
    episodes, steps = arrays["obs"].shape[:2]
    terminated = arrays.get("terminated", np.zeros((episodes, steps, 1)))[..., 0] > 0
    filled = arrays.get("filled", np.ones((episodes, steps, 1)))[..., 0] > 0
    ended = terminated.any(1)
    lengths = np.where(ended, terminated.argmax(1) + 1, filled.sum(1) - 1).astype(np.int64)
    if (lengths <= 0).any():
        raise DatasetError(file, "filled", f"episode {int(np.flatnonzero(lengths <= 0)[0])} has no transition")
    return np.minimum(lengths, steps)


def read(path: str | Path, spec=None) -> Dataset:
    """An OffPyMARL file or folder as a Dataset (padded to the longest episode); the files carry
    their own sizes, so ``spec`` is not needed."""
    path = Path(path)
    files = files_of(path)
    parts = []
    for file in files:
        arrays = read_file(file)
        lengths = lengths_of(arrays, file)
        length = max(arrays["obs"].shape[1] - 1, int(lengths.max()))  # T: the last slot holds final observations
        actions = arrays["actions"]
        actions = actions[..., 0] if actions.ndim == 4 else actions
        fields = {"obs": arrays["obs"][:, :length].astype(np.float32),
                  "actions": actions[:, :length].astype(np.int64),
                  "rewards": arrays["reward"].reshape(arrays["reward"].shape[:2])[:, :length].astype(np.float32),
                  "lengths": lengths}
        if "avail_actions" in arrays:
            fields["avail_actions"] = arrays["avail_actions"][:, :length] > 0
        if "state" in arrays:
            fields["state"] = arrays["state"][:, :length].reshape(len(lengths), length, -1).astype(np.float32)
        parts.append(Dataset(**fields).clear_padding())
    dataset = Dataset.merge(*parts) if len(parts) > 1 else parts[0]
    sidecar = (path if path.is_dir() else path.parent) / SIDECAR
    extra = json.loads(sidecar.read_text()) if sidecar.exists() else {}
    if "provenance" in extra:
        dataset.provenance = np.array(extra["provenance"], dtype="<U32")
    if extra.get("expert_mask") is not None:
        dataset.expert_mask = np.array(extra["expert_mask"], bool)
    dataset.meta = {**extra.get("meta", {}), "imported_from": {"format": "offpymarl", "path": str(path),
                                                              "files": [f.name for f in files]}}
    return dataset


def write(dataset: Dataset, folder: str | Path, actions: int | None = None) -> Path:
    """``dataset`` as ``folder/part_0.h5`` in OffPyMARL's layout, plus ``codi-kit.json``."""
    h5py = _h5py()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    episodes, steps, agents, _ = dataset.obs.shape
    count = actions or (dataset.avail_actions.shape[-1] if dataset.avail_actions is not None
                        else int(dataset.actions.max()) + 1)
    valid = dataset.step_mask()
    filled = np.zeros((episodes, steps + 1, 1), np.int64)
    filled[:, :steps, 0] = valid
    filled[np.arange(episodes), dataset.lengths, 0] = 1  # the step that holds the final observation
    terminated = np.zeros((episodes, steps + 1, 1), np.uint8)
    terminated[np.arange(episodes), dataset.lengths - 1, 0] = 1  # our datasets do not tell a time limit apart

    def extend(array):
        return np.concatenate([array, np.zeros_like(array[:, :1])], axis=1)

    avail = dataset.availability(count)
    arrays = {"obs": extend(dataset.obs), "actions": extend(dataset.actions[..., None]),
              "actions_onehot": extend(np.eye(count, dtype=np.float32)[dataset.actions] * valid[..., None, None]),
              "avail_actions": extend(avail.astype(np.int32)), "reward": extend(dataset.rewards[..., None]),
              "terminated": terminated, "filled": filled}
    if dataset.state is not None:
        arrays["state"] = extend(dataset.state)
    file = folder / "part_0.h5"
    partial = file.with_suffix(".h5.partial")
    with h5py.File(partial, "w") as handle:
        for key, value in arrays.items():
            handle.create_dataset(key, data=value, compression="gzip")
    partial.replace(file)
    sidecar = {"provenance": dataset.provenance.tolist(),
               "expert_mask": None if dataset.expert_mask is None else dataset.expert_mask.tolist(),
               "meta": dataset.meta}
    (folder / SIDECAR).write_text(json.dumps(sidecar, default=str))
    return file
