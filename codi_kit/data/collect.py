"""Collection protocols (paper section 4.1) and the normalisation references R_lo and R_hi."""
from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np

from codi_kit.data.dataset import Dataset
from codi_kit.env import EnvAdapter
from codi_kit.errors import CodiKitError
from codi_kit.policy import PerAgentMixture, RandomPolicy
from codi_kit.progress import warn
from codi_kit.envs.rollout import rollout

PROTOCOLS = ("imbalanced", "balanced", "random")
COLLECT_STREAM, EXPERT_STREAM, REFERENCE_STREAM = 0, 1, 5  # 2, 3: evaluation (evaluate.py)


def expert_masks(protocol: str, episodes: int, agents: int, rng: np.random.Generator) -> np.ndarray:
    """[E,N] which agent follows the expert in each episode."""
    if protocol == "imbalanced":  # exactly one uniformly chosen expert per episode
        return np.eye(agents, dtype=bool)[rng.integers(0, agents, episodes)]
    if protocol == "balanced":
        return np.ones((episodes, agents), bool)
    if protocol == "random":
        return np.zeros((episodes, agents), bool)
    raise CodiKitError(f"unknown protocol '{protocol}'; protocols: {', '.join(PROTOCOLS)}")


def collect(env: EnvAdapter, protocol: str, episodes: int, seed: int, stream: int = COLLECT_STREAM,
            description: str | None = None) -> Dataset:
    """Roll out the protocol's behaviour policy; the expert's index is kept as ``expert_mask``."""
    masks = expert_masks(protocol, episodes, env.spec.agents, np.random.default_rng([seed, stream, 7]))
    random = RandomPolicy()
    expert = env.expert_policy() if masks.any() else random  # the random protocol needs no expert
    dataset = rollout(
        env, lambda first, count: PerAgentMixture(expert, random, masks[first:first + count]),
        episodes, seed, stream=stream, description=description or f"collect {protocol}",
    )
    dataset.expert_mask = masks
    dataset.meta.update({"protocol": protocol, "seed": seed, "spec": attrs.asdict(env.spec)})
    return dataset


@attrs.frozen
class Normalization:
    """(R - R_lo) / (R_hi - R_lo): R_lo the dataset's mean return, R_hi the balanced expert's."""

    R_lo: float
    R_hi: float
    episodes: int

    def __call__(self, returns):
        return (np.asarray(returns) - self.R_lo) / (self.R_hi - self.R_lo)


def add_references(env: EnvAdapter, dataset: Dataset, seed: int) -> Dataset:
    """Record R_lo (the dataset's mean return) and R_hi (the balanced expert's, measured on as many
    episodes with other seeds) in the dataset's metadata; return the balanced-expert episodes."""
    if dataset.meta.get("protocol") == "balanced":
        expert = dataset
    else:
        expert = collect(env, "balanced", dataset.episodes, seed, stream=EXPERT_STREAM, description="expert reference (R_hi)")
    normalization = Normalization(float(dataset.returns().mean()), float(expert.returns().mean()), dataset.episodes)
    dataset.meta["normalization"] = attrs.asdict(normalization)
    if expert is not dataset:
        low, high = dataset.returns(), expert.returns()
        noise = 2 * np.sqrt(low.var() / len(low) + high.var() / len(high))  # two standard errors of the difference
        if normalization.R_hi - normalization.R_lo <= noise:
            warn(f"env '{env.spec.name}': the expert's return R_hi {normalization.R_hi:.4g} is within noise of the "
                 f"dataset's R_lo {normalization.R_lo:.4g} (two standard errors {noise:.3g}): is its expert_policy() "
                 "an expert? Normalised returns will mean little")
    return expert


def collect_with_references(env: EnvAdapter, protocol: str, episodes: int, seed: int) -> Dataset:
    """Collect the dataset and record its normalisation references."""
    dataset = collect(env, protocol, episodes, seed)
    add_references(env, dataset, seed)
    return dataset


@attrs.frozen
class References:
    """Rollouts that later stages compare generated data with, made once in collect so that no
    later stage rolls the environment out again: the balanced expert (the episodes that measured
    R_hi) and a small imbalanced set with its expert masks (the probe's reference margin)."""

    expert: Dataset
    imbalanced: Dataset

    FILES = ("reference-expert.npz", "reference-imbalanced.npz")

    def save(self, folder: Path) -> None:
        for name, dataset in zip(self.FILES, (self.expert, self.imbalanced)):
            dataset.save(folder / name)

    @staticmethod
    def load(folder: Path) -> References:
        return References(*(Dataset.load(folder / name) for name in References.FILES))


def collect_references(env: EnvAdapter, dataset: Dataset, seed: int, imbalanced_episodes: int = 64,
                       expert_episodes: int = 256) -> References:
    """R_lo and R_hi into ``dataset``'s metadata where it has none, and the reference rollouts. A
    dataset that already has R_hi (an imported file) gets ``expert_episodes`` expert rollouts."""
    if dataset.meta.get("normalization"):
        expert = collect(env, "balanced", expert_episodes, seed, stream=EXPERT_STREAM, description="expert reference")
    else:
        expert = add_references(env, dataset, seed)
    imbalanced = collect(env, "imbalanced", imbalanced_episodes, seed, stream=REFERENCE_STREAM,
                         description="imbalanced reference")
    return References(expert, imbalanced)


def normalization_of(dataset: Dataset) -> Normalization:
    values = dataset.meta.get("normalization")
    if not values:
        raise CodiKitError("dataset metadata has no 'normalization' (R_lo, R_hi): collect it with codi-kit collect")
    return Normalization(**values)
