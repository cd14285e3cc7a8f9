"""A dataset flattened to transitions on the device, with an episode-wise train/validation split."""
from __future__ import annotations

import attrs
import numpy as np
import torch

from codi_kit.data.dataset import Dataset
from codi_kit.data.parts import DatasetParts


@attrs.frozen
class Transitions:
    obs: torch.Tensor  # [M,N,O]
    actions: torch.Tensor  # [M,N]
    avail: torch.Tensor  # [M,N,K] bool
    rewards: torch.Tensor  # [M]
    next_obs: torch.Tensor  # [M,N,O]
    next_avail: torch.Tensor  # [M,N,K]
    done: torch.Tensor  # [M] float, 1 on an episode's last step
    state: torch.Tensor | None  # [M,S], else concatenated observations
    next_state: torch.Tensor | None
    episode: torch.Tensor  # [M] episode index

    def __len__(self) -> int:
        return int(self.obs.shape[0])

    def sample(self, batch: int, generator: torch.Generator, fields: tuple[str, ...] | None = None) -> dict:
        rows = torch.randint(0, len(self), (batch,), generator=generator, device="cpu").to(self.obs.device)
        return self.take(rows, fields)

    def take(self, rows: torch.Tensor, fields: tuple[str, ...] | None = None) -> dict:
        """The transitions ``rows``: every field, or only ``fields`` (a learner that reads three of
        the ten gathers three)."""
        names = fields or [f.name for f in attrs.fields(Transitions)]
        return {name: (None if getattr(self, name) is None else getattr(self, name)[rows]) for name in names}


def transitions(dataset: Dataset | DatasetParts, device: torch.device, episodes: np.ndarray | None = None,
                actions: int | None = None) -> Transitions:
    """Every transition of the chosen episodes. The next step of an episode's last is itself
    (masked by ``done``); a truncated episode's last stored step is only the next observation
    of the step before it, which bootstraps (``done`` 0). ``actions``: the action count where the
    data has no availability masks (default: one more than the largest action seen)."""
    if episodes is not None:
        dataset = dataset.select(episodes)
    parts = DatasetParts.of(dataset)
    actions = actions or int(max(part.actions.max(initial=0) for part in parts)) + 1
    joint_state = any(part.state is None for part in parts)  # one state definition for every part
    flat = [_flatten(part, actions, joint_state) for part in parts]
    offsets = np.cumsum([0] + [part.episodes for part in parts])[:-1]  # episode numbers across the parts kept
    fields = {name: np.concatenate([f[name] for f in flat]) for name in flat[0] if name != "episode"}
    fields["episode"] = np.concatenate([f["episode"] + offset for f, offset in zip(flat, offsets)])
    return Transitions(**{name: torch.as_tensor(np.ascontiguousarray(array), device=device)
                          for name, array in fields.items()})


def _flatten(dataset: Dataset, actions: int, joint_state: bool) -> dict:
    """One part's transitions as numpy arrays."""
    valid = dataset.transition_mask()
    truncated = dataset.truncated if dataset.truncated is not None else np.zeros(dataset.episodes, bool)
    following = np.minimum(np.arange(dataset.padded_length)[None, :] + 1, dataset.lengths[:, None] - 1)
    following = np.broadcast_to(following, valid.shape)
    e_index, t_index = np.nonzero(valid)
    t_next = following[e_index, t_index]
    avail = dataset.availability(actions)
    state = dataset.obs.reshape(*dataset.obs.shape[:2], -1) if joint_state else dataset.state
    done = (t_index == dataset.lengths[e_index] - 1) & ~truncated[e_index]
    return {"obs": dataset.obs[e_index, t_index], "actions": dataset.actions[e_index, t_index],
            "avail": avail[e_index, t_index], "rewards": dataset.rewards[e_index, t_index],
            "next_obs": dataset.obs[e_index, t_next], "next_avail": avail[e_index, t_next],
            "done": done.astype(np.float32), "state": state[e_index, t_index],
            "next_state": state[e_index, t_next], "episode": e_index}


def split_episodes(dataset: Dataset | DatasetParts, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Episode indices for training and held-out validation (for early stopping)."""
    order = np.random.default_rng([seed, 5]).permutation(dataset.episodes)
    held = int(round(validation_fraction * dataset.episodes)) if dataset.episodes > 1 else 0
    return np.sort(order[held:]), np.sort(order[:held])
