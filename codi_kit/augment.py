"""The augmenter contract: fit models once (the train stage), generate episodes many times (the
generate stage) from the original dataset and, where the augmenter asks for them, quality labels.

An augmenter that learns nothing (``none``) implements ``generate`` alone. One that learns models
says which of its settings training reads (``training_settings``): those key the train stage, so
a change to a sampling-only setting (guidance, composition, sampling steps) reuses the trained
models, and ``fit`` writes them into the train artifact's folder for ``generate`` to load.
"""
from __future__ import annotations

import abc
from pathlib import Path

import attrs

from codi_kit.data.collect import References
from codi_kit.context import NoSettings, StageContext
from codi_kit.data.dataset import Dataset
from codi_kit.labeling import QualityLabels


@attrs.frozen
class FitRequest:
    dataset: Dataset
    labels: QualityLabels | None  # None when the augmenter needs no labels
    references: References  # the collect stage's reference rollouts (balanced expert, imbalanced)
    context: StageContext  # context.workdir: the train artifact's folder; context.checkpoints: resumable state


@attrs.frozen
class GenerateRequest:
    dataset: Dataset
    labels: QualityLabels | None
    references: References
    context: StageContext
    trained: Path | None  # the train artifact's folder (what ``fit`` wrote); None for augmenters that fit nothing


@attrs.frozen
class Generated:
    dataset: Dataset  # generated episodes only, same schema as the original
    diagnostics: dict = attrs.field(factory=dict)  # recorded in the artifact's meta, results.json and the report
    requested: int = 0  # episodes the augmenter set out to generate (0: it generates none, e.g. ``none``)
    reason: str = ""  # why fewer came out, when the augmenter knows
    # a few whole episodes to draw in the report when ``dataset`` holds short branches, not episodes
    examples: Dataset | None = None


class Augmenter(abc.ABC):
    Config = NoSettings  # subclasses with settings define their own frozen attrs Config

    def __init__(self, config):
        self.config = config

    @property
    def needs_labels(self) -> bool:
        """Whether this configured augmenter reads quality labels; False skips the label stage."""
        return False

    def check_label_horizon(self, horizon: int) -> None:
        """Raise ``CodiKitError`` (naming both settings) if labels of segments of ``horizon`` steps
        (``label.horizon``) cannot serve this augmenter; called before any labelling is paid for."""

    def training_settings(self) -> dict | None:
        """The settings ``fit`` reads (they key the train stage), or None: it fits nothing and the
        train stage is skipped."""
        return None

    def fit(self, request: FitRequest) -> dict:
        """Train once and save what ``generate`` needs into ``request.context.workdir``; return
        diagnostics of training (recorded in the train artifact's meta). Called only when
        ``training_settings()`` is not None."""
        raise NotImplementedError(f"{type(self).__name__} declares training settings but has no fit")

    @abc.abstractmethod
    def generate(self, request: GenerateRequest) -> Generated:
        """The generated episodes (only them; the pipeline merges them with the original)."""
