"""MADiff's MPE datasets (the OMAR data MADiff trains on), read.

MADiff's ``diffuser/datasets/mpe.py`` (``sequence_dataset``) reads, per seed folder
``<scenario>/<split>/seed_<k>_data/``, one ``.npy`` stream per agent ``i``:

    obs_<i>.npy [steps, obs]   acs_<i>.npy [steps, 5]   rews_<i>.npy [steps]   dones_<i>.npy [steps]

Episodes follow each other in the streams; one ends at the first step where every agent is done, or
after the environment's episode limit (MPE: 25 steps). ``PATH`` is one seed folder, or a split folder
whose ``seed_*_data`` folders are read in sorted order (MADiff lists them all when no seed is given).

Actions are the original MPE's 5-vectors, whose force is ``(a[1] - a[2], a[3] - a[4])`` (x, y): a
one-hot vector names a move, a continuous one (OMAR's policies) a force. Each becomes our discrete
action with the nearest force (0 no-op, 1 left, 2 right, 3 down, 4 up: PettingZoo's MPE order, which
differs from the vector order); integer actions are taken as our indices. The team reward is the
agents' rewards summed or, for an env whose reward is shared, counted once (``EnvSpec.team_reward``).
MADiff's MPE data has no global state, no availability masks and no expert masks.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from codi_kit.data.dataset import Dataset
from codi_kit.env import EnvSpec, team_reward_of
from codi_kit.errors import CodiKitError, DatasetError
from codi_kit.data.formats.stream import episodes_from_stream

STREAMS = {"obs": "obs_{}.npy", "actions": "acs_{}.npy", "rewards": "rews_{}.npy", "dones": "dones_{}.npy"}
# our discrete MPE actions as forces (x, y): no-op, left, right, down, up
FORCES = np.array([[0, 0], [-1, 0], [1, 0], [0, -1], [0, 1]], np.float32)


def seed_folders(path: Path) -> list[Path]:
    if not path.is_dir():
        raise CodiKitError(f"{path}: not a folder (a MADiff dataset is a seed_<k>_data folder of obs_0.npy, ...)")
    if (path / "obs_0.npy").exists():
        return [path]
    folders = sorted(p for p in path.iterdir() if p.is_dir() and (p / "obs_0.npy").exists())
    if not folders:
        raise CodiKitError(f"{path}: no obs_0.npy here nor in any seed_<k>_data folder below it")
    return folders


def load_streams(folder: Path, agents: int) -> dict[str, np.ndarray]:
    """Each stream stacked over agents: [steps, agents, ...]."""
    streams = {}
    for field, pattern in STREAMS.items():
        per_agent = []
        for agent in range(agents):
            file = folder / pattern.format(agent)
            try:
                per_agent.append(np.load(file, allow_pickle=False))
            except FileNotFoundError:
                raise CodiKitError(f"{file}: missing (the env has {agents} agents)") from None
            except ValueError as error:
                raise DatasetError(file, field, f"not a readable .npy array ({error})") from None
        lengths = {len(a) for a in per_agent}
        if len(lengths) > 1:
            raise DatasetError(folder / pattern.format(0), field, f"agents' streams differ in length: {sorted(lengths)}")
        if field == "obs":  # agents may observe different sizes: zero-padded to one, as our envs do
            if any(a.ndim != 2 for a in per_agent):
                raise DatasetError(folder / pattern.format(0), field, "expected [steps, features] per agent")
            width = max(a.shape[1] for a in per_agent)
            per_agent = [np.pad(a, ((0, 0), (0, width - a.shape[1]))) for a in per_agent]
        streams[field] = np.stack(per_agent, axis=1)
    steps = len(streams["obs"])
    for field, stream in streams.items():
        if len(stream) != steps:
            raise DatasetError(folder / STREAMS[field].format(0), field, f"{len(stream)} steps, obs_0.npy has {steps}")
    return streams


def discrete_actions(actions: np.ndarray, spec: EnvSpec, file: Path) -> np.ndarray:
    """[steps, agents] action indices of the env (module docstring)."""
    if actions.ndim == 3 and actions.shape[-1] == 1:
        actions = actions[..., 0]
    if actions.ndim == 2:
        if not np.issubdtype(actions.dtype, np.integer) and not np.all(actions == np.round(actions)):
            raise DatasetError(file, "actions", "one number per step that is not an integer action")
        indices = actions.astype(np.int64)
    elif actions.ndim == 3 and actions.shape[-1] == 5 and spec.actions == 5:
        force = np.stack([actions[..., 1] - actions[..., 2], actions[..., 3] - actions[..., 4]], -1)
        indices = np.linalg.norm(force[..., None, :] - FORCES, axis=-1).argmin(-1)
    else:
        raise DatasetError(file, "actions", f"shape {actions.shape}: expected [steps] indices or MPE's [steps, 5] "
                                            f"vectors (env has {spec.actions} actions)")
    if indices.min() < 0 or indices.max() >= spec.actions:
        raise DatasetError(file, "actions", f"values {indices.min()}..{indices.max()} outside 0..{spec.actions - 1}")
    return indices


def episode_ends(dones: np.ndarray, limit: int) -> list[int]:
    """Where each episode of the stream ends (exclusive): where all agents are done or at ``limit``."""
    ends, start = [], 0
    for step in range(len(dones)):
        if dones[step].all() or step + 1 - start == limit:
            ends.append(step + 1)
            start = step + 1
    if start < len(dones):
        ends.append(len(dones))  # a last episode cut short by the end of the file
    return ends


def read(path: str | Path, spec: EnvSpec) -> Dataset:
    path = Path(path)
    folders = seed_folders(path)
    obs, actions, rewards, ends, offset = [], [], [], [], 0
    for folder in folders:  # one stream: each folder's episodes after the previous folder's
        streams = load_streams(folder, spec.agents)
        steps = len(streams["obs"])
        obs.append(streams["obs"])
        actions.append(discrete_actions(streams["actions"], spec, folder / "acs_0.npy"))
        rewards.append(team_reward_of(spec.team_reward, streams["rewards"].reshape(steps, spec.agents)))
        ends += [offset + end for end in episode_ends(streams["dones"].reshape(steps, spec.agents) > 0,
                                                      spec.episode_limit)]
        offset += steps
    if not ends:
        raise CodiKitError(f"{path}: the streams hold no steps")
    dataset = episodes_from_stream(ends, obs=np.concatenate(obs).astype(np.float32), actions=np.concatenate(actions),
                                   rewards=np.concatenate(rewards))
    dataset.meta = {"imported_from": {"format": "madiff", "path": str(path), "folders": [f.name for f in folders]}}
    return dataset
