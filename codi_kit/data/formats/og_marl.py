"""OG-MARL's datasets: Flashbax vaults, read with ``flashbax``.

A vault lives at ``<rel_dir>/<vault_name>/<uid>`` (OG-MARL: ``vaults/smac_v1/3m.vlt/Good``), and
``Vault(vault_name, rel_dir=..., vault_uid=...).read().experience`` is one stream of transitions,
batch dimension 1, as OG-MARL's systems unpack it:

    observations [1, T, N, O]   actions [1, T, N]   rewards [1, T, N]   terminals [1, T, N]
    truncations [1, T, N]   infos: legals [1, T, N, A], state [1, T, S]

An episode ends at the first step where every agent is terminal or truncated (OG-MARL's
``analyse_vault`` counts episodes by ``terminals.all(-1)``). Actions are discrete indices. The team
reward is the agents' rewards summed or, for an env whose reward is shared (SMAC), counted once
(``EnvSpec.team_reward``). ``PATH`` is the uid folder, or a ``.vlt`` folder holding a single uid.
"""
from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np

from codi_kit.data.dataset import Dataset
from codi_kit.env import EnvSpec, team_reward_of
from codi_kit.errors import CodiKitError, DatasetError
from codi_kit.data.formats.stream import episodes_from_stream

NEEDED = ("observations", "actions", "rewards", "terminals")


def _vault_class():
    try:
        from flashbax.vault import Vault
    except ImportError:
        raise CodiKitError("the og-marl format needs flashbax: pip install \"codi-kit[og-marl]\" (or pip install flashbax)") from None
    return Vault


def locate(path: Path) -> Path:
    """The uid folder: ``path`` itself, or the only uid inside a ``.vlt`` folder."""
    if not path.is_dir():
        raise CodiKitError(f"{path}: no such vault folder (give <vault>.vlt/<uid>, e.g. vaults/smac_v1/3m.vlt/Good)")
    if (path / "metadata.json").exists():
        return path
    uids = sorted(p.name for p in path.iterdir() if (p / "metadata.json").exists())
    if len(uids) == 1:
        return path / uids[0]
    if not uids:
        raise CodiKitError(f"{path}: not a Flashbax vault (no metadata.json here nor in a folder below it)")
    raise CodiKitError(f"{path}: holds {len(uids)} datasets ({', '.join(uids)}); give one, e.g. {path / uids[0]}")


def read_experience(uid_folder: Path) -> dict:
    Vault = _vault_class()
    with contextlib.redirect_stdout(io.StringIO()):  # flashbax prints where it found the vault
        try:
            vault = Vault(vault_name=uid_folder.parent.name, rel_dir=str(uid_folder.parent.parent.resolve()),
                          vault_uid=uid_folder.name)
            experience = vault.read().experience
        except (OSError, ValueError, KeyError) as error:
            raise CodiKitError(f"{uid_folder}: cannot read this Flashbax vault: {error}") from None
    flat = {key: np.asarray(value) for key, value in experience.items() if key != "infos"}
    for key, value in (experience.get("infos") or {}).items():
        flat[f"infos.{key}"] = np.asarray(value)
    for key in NEEDED:
        if key not in flat:
            raise DatasetError(uid_folder, key, f"missing (an OG-MARL vault has {', '.join(NEEDED)}; found {sorted(flat)})")
    return {key: value[0] for key, value in flat.items()}  # drop the batch dimension of 1


def read(path: str | Path, spec: EnvSpec) -> Dataset:
    uid_folder = locate(Path(path))
    stream = read_experience(uid_folder)
    steps, agents = stream["observations"].shape[:2]
    actions = stream["actions"]
    if actions.shape != (steps, agents) or not np.issubdtype(actions.dtype, np.integer):
        raise DatasetError(uid_folder, "actions", f"shape {actions.shape} {actions.dtype}: codi-kit reads discrete "
                                                  "actions, [T, agents] integers")
    done = stream["terminals"].reshape(steps, agents) > 0
    if "truncations" in stream:
        done |= stream["truncations"].reshape(steps, agents) > 0
    ends = np.flatnonzero(done.all(1)) + 1
    if not len(ends) or ends[-1] != steps:
        ends = np.append(ends, steps)  # a last episode the vault cut short
    legals, state = stream.get("infos.legals"), stream.get("infos.state")
    dataset = episodes_from_stream(
        ends, obs=stream["observations"].astype(np.float32), actions=actions.astype(np.int64),
        rewards=team_reward_of(spec.team_reward, stream["rewards"].reshape(steps, agents)),
        avail_actions=None if legals is None else legals > 0,
        state=None if state is None else state.reshape(steps, -1).astype(np.float32))
    dataset.meta = {"imported_from": {"format": "og-marl", "path": str(path), "vault": str(uid_folder)}}
    return dataset
