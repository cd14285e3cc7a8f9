"""Collection protocols (paper section 4.1) and the normalisation references R_lo and R_hi."""
from __future__ import annotations

import attrs
import numpy as np

from codi_kit.dataset import Dataset
from codi_kit.env import EnvAdapter
from codi_kit.errors import CodiKitError
from codi_kit.policy import PerAgentMixture, RandomPolicy
from codi_kit.rollout import rollout

PROTOCOLS = ("imbalanced", "balanced", "random")
COLLECT_STREAM, EXPERT_STREAM = 0, 1


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
    expert, random = env.expert_policy(), RandomPolicy()
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
    episodes with other seeds) in the dataset's metadata."""
    if dataset.meta.get("protocol") == "balanced":
        high = float(dataset.returns().mean())
    else:
        high = float(collect(env, "balanced", dataset.episodes, seed, stream=EXPERT_STREAM,
                             description="expert reference (R_hi)").returns().mean())
    dataset.meta["normalization"] = attrs.asdict(Normalization(float(dataset.returns().mean()), high, dataset.episodes))
    return dataset


def collect_with_references(env: EnvAdapter, protocol: str, episodes: int, seed: int) -> Dataset:
    """Collect the dataset and record its normalisation references."""
    return add_references(env, collect(env, protocol, episodes, seed), seed)


def normalization_of(dataset: Dataset) -> Normalization:
    values = dataset.meta.get("normalization")
    if not values:
        raise CodiKitError("dataset metadata has no 'normalization' (R_lo, R_hi): collect it with codi-kit collect")
    return Normalization(**values)
