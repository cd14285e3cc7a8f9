"""The augmenter contract: original dataset (+ quality labels) -> generated episodes."""
from __future__ import annotations

import abc

import attrs

from codi_kit.context import NoSettings, StageContext
from codi_kit.dataset import Dataset
from codi_kit.labeling import QualityLabels


@attrs.frozen
class AugmentRequest:
    dataset: Dataset
    labels: QualityLabels | None  # None when the augmenter does not need labels
    context: StageContext


class Augmenter(abc.ABC):
    """``needs_labels = False`` lets the pipeline skip the label stage (e.g. MADiff, Original)."""

    needs_labels = True

    Config = NoSettings  # subclasses with settings define their own frozen attrs Config

    def __init__(self, config):
        self.config = config

    @abc.abstractmethod
    def generate(self, request: AugmentRequest) -> Dataset:
        """Generated episodes only, same schema as ``request.dataset``; ``diagnostics`` (a dict
        attribute, optional) is recorded in the artifact's meta and the report."""
