"""A dataset flattened to transitions on the device, with an episode-wise train/validation split."""
from __future__ import annotations

import attrs
import numpy as np
import torch

from codi_kit.dataset import Dataset


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


def transitions(dataset: Dataset, device: torch.device, episodes: np.ndarray | None = None) -> Transitions:
    """Every real step of the chosen episodes; the next step of an episode's last is itself
    (masked by ``done``)."""
    if episodes is not None:
        dataset = dataset.select(episodes)
    valid = dataset.step_mask()
    following = np.minimum(np.arange(dataset.padded_length)[None, :] + 1, dataset.lengths[:, None] - 1)
    following = np.broadcast_to(following, valid.shape)
    e_index, t_index = np.nonzero(valid)
    t_next = following[e_index, t_index]
    avail = dataset.avail_actions
    if avail is None:
        avail = np.ones(dataset.actions.shape + (int(dataset.actions.max()) + 1,), bool)
    state = dataset.state if dataset.state is not None else dataset.obs.reshape(*dataset.obs.shape[:2], -1)

    def tensor(array):
        return torch.as_tensor(np.ascontiguousarray(array), device=device)

    return Transitions(
        obs=tensor(dataset.obs[e_index, t_index]), actions=tensor(dataset.actions[e_index, t_index]),
        avail=tensor(avail[e_index, t_index]), rewards=tensor(dataset.rewards[e_index, t_index]),
        next_obs=tensor(dataset.obs[e_index, t_next]), next_avail=tensor(avail[e_index, t_next]),
        done=tensor((t_index == dataset.lengths[e_index] - 1).astype(np.float32)),
        state=tensor(state[e_index, t_index]), next_state=tensor(state[e_index, t_next]),
        episode=tensor(e_index),
    )


def split_episodes(dataset: Dataset, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Episode indices for training and held-out validation (for early stopping)."""
    order = np.random.default_rng([seed, 5]).permutation(dataset.episodes)
    held = int(round(validation_fraction * dataset.episodes)) if dataset.episodes > 1 else 0
    return np.sort(order[held:]), np.sort(order[:held])
