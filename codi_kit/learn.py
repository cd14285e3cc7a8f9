"""The learner contract: dataset -> decentralised policy, saved into the learn artifact."""
from __future__ import annotations

import abc
from pathlib import Path

import attrs

from codi_kit.data.collect import Normalization
from codi_kit.context import NoSettings, StageContext
from codi_kit.data.parts import DatasetParts
from codi_kit.policy import Policy
from codi_kit.learners.torch_policy import load_policy


@attrs.frozen
class LearnRequest:
    dataset: DatasetParts  # original + generated, unmerged (``.merged()`` pads them into one Dataset)
    context: StageContext
    normalization: Normalization | None = None  # for periodic evaluation while training


class Learner(abc.ABC):
    Config = NoSettings  # subclasses with settings define their own frozen attrs Config

    def __init__(self, config):
        self.config = config

    @abc.abstractmethod
    def fit(self, request: LearnRequest) -> Policy:
        """Train and return the policy; log losses with ``request.context.log_metrics``."""

    def save(self, policy: Policy, folder: Path) -> None:
        """Write the policy into ``folder`` (the learn artifact); the default asks the policy to."""
        policy.save(folder)

    def load(self, folder: Path, context: StageContext) -> Policy:
        """Read back what ``save`` wrote."""
        return load_policy(folder, context.device)
