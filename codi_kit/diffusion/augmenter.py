"""CODI on one page (paper section 3): what the train and generate stages do, in the paper's order.

Train (``fit``, section 3.2), once per trained model:
  1. the joint segments x_0 of H steps (every agent's state and, where diffused, its action), each
     with its return-to-go R and the quality labels z of the label stage (section 3.1);
  2. the conditional denoiser trained on them with label dropout (Eq. 5-6), and beside it the
     inverse dynamics, forward and reward models (Eq. 9);
  3. the consistency threshold delta: a quantile of the forward model's error on real segments.

Generate (``generate``, section 3.3), many times per trained model:
  1. where trajectories start: real first states o_0 (or, for branches, every real step) and the
     return R-hat each is conditioned on;
  2. segment after segment (``stitch.Stitcher``): the conditions "R-hat and agent i is good" for
     every agent (Eq. 7), sampled with their composed guidance (Eq. 8); actions and rewards imputed
     by f_inv and f_rew; the consistency check against delta; resampling, then restarts;
  3. the accepted segments stitched to full trajectories, and the best kept by imputed return.

The baselines are this page with other settings (``settings.DiffusionSettings``):
  - MADiff: ``use_labels=False``: the denoiser reads R alone and step 2 has one condition, R-hat.
  - CODI w/o Com.: ``compose=False``: one condition, z = 1_n (plain classifier-free guidance).
  - MADiTS: ``regenerate_bad_agents``: in step 2 the agents integrated gradients find worst in an
    accepted segment are re-denoised (``regenerate.repair_segments``) before it is stitched.

Diagnostics (``diagnostics.py``) run beside the method, never inside it: they read the model and
the generated data, and write only the stage's report.
"""
from __future__ import annotations

import math
import time

import attrs
import numpy as np
import torch

from codi_kit.augment import Augmenter, FitRequest, GenerateRequest, Generated
from codi_kit.envs.codec import training_codec
from codi_kit.data.dataset import Dataset
from codi_kit.diffusion import diagnostics
from codi_kit.diffusion.model import Architecture, DiffusionModel, Normaliser
from codi_kit.diffusion.settings import PROFILES, DiffusionSettings, training_settings
from codi_kit.diffusion.stitch import Stitcher
from codi_kit.diffusion.trainer import SegmentData, segment_data, train
from codi_kit.errors import CodiKitError

DRAWN_EPISODES = 3  # whole episodes generated for the report's picture when the data are branches
CALIBRATION_SEGMENTS = 4096  # real segments on which the consistency threshold delta is chosen


class DiffusionAugmenter(Augmenter):
    """Subclasses set ``Config`` (a ``DiffusionSettings`` subclass with their defaults); nothing else."""

    Config = DiffusionSettings
    PROFILES = PROFILES

    @property
    def needs_labels(self) -> bool:
        return self.config.use_labels

    def check_label_horizon(self, horizon: int) -> None:
        if self.config.horizon > horizon:
            raise CodiKitError(f"augmenter.horizon={self.config.horizon} is longer than the labelled segments "
                               f"(label.horizon={horizon}): labels cannot describe it; set augmenter.horizon <= label.horizon")

    def training_settings(self) -> dict:
        return training_settings(self.config)

    # -- the train stage (section 3.2) --------------------------------------------------------
    def fit(self, request: FitRequest) -> dict:
        settings, context = self.config, request.context
        model, diffused = self.untrained(request)
        segments = self.segments(diffused, request.labels, model)  # 1. x_0 with its R and z
        train(model, segments, diffused, settings, context, f"train {type(self).__name__}")  # 2. Eq. 5-6, Eq. 9
        delta = consistency_threshold(model, segments, settings.consistency_quantile, context.seed)  # 3. delta
        model.save(context.workdir)
        return {"horizon": settings.horizon, "diffused": model.normaliser.codec.name, "consistency_threshold": delta,
                "updates": model.updates, "segments": int(len(segments.x))}

    def untrained(self, request: FitRequest) -> tuple[DiffusionModel, Dataset]:
        """The model to train (seeded) and the dataset in what is diffused (its ``obs`` are the env's
        compact states when ``diffused="state"`` and the env has a codec, else the observations)."""
        settings, dataset, context = self.config, request.dataset, request.context
        codec = training_codec(context.env, settings.diffused, dataset.obs[: min(64, dataset.episodes)])
        diffused = attrs.evolve(dataset, obs=codec.encode(dataset.obs))
        normaliser = Normaliser.fit(dataset, codec, context.device)
        restricted = dataset.avail_actions is not None and not dataset.avail_actions[dataset.step_mask()].all()
        architecture = Architecture.of(settings, diffused.obs.shape[-1], dataset.agents, context.env.spec.actions, codec,
                                       dataset.obs.shape[-1], availability=restricted)
        torch.manual_seed(context.seed)
        return DiffusionModel(architecture, normaliser, context.device), diffused

    def segments(self, diffused: Dataset, labels, model: DiffusionModel) -> SegmentData:
        """Every horizon-H segment of the data, with its labels when the augmenter uses them. Labels
        describe segments of label.horizon steps; a shorter H takes the label of the labelled
        segment that starts where it starts (or, near an episode's end, the last one)."""
        horizon = self.config.horizon
        if horizon < 2:
            raise CodiKitError(f"augmenter.horizon={horizon}: needs at least 2 steps")
        index, z = diffused.segment_index(horizon), None
        if self.config.use_labels:
            if labels is None:
                raise CodiKitError("this augmenter conditions on quality labels but the label stage gave none")
            self.check_label_horizon(labels.horizon)
            row = np.full((diffused.episodes, diffused.padded_length), -1)
            row[labels.segments[:, 0], labels.segments[:, 1]] = np.arange(len(labels.segments))
            last_start = np.maximum(diffused.lengths[index[:, 0]] - labels.horizon, 0)
            rows = row[index[:, 0], np.minimum(index[:, 1], last_start)]
            index, z = index[rows >= 0], labels.z[rows[rows >= 0]]
        if not len(index):
            raise CodiKitError(f"augmenter.horizon={horizon}: no episode is long enough")
        return segment_data(diffused, horizon, index, z, model)

    # -- the generate stage (section 3.3) -----------------------------------------------------
    def generate(self, request: GenerateRequest) -> Generated:
        settings, dataset, context = self.config, request.dataset, request.context
        model = DiffusionModel.load(request.trained, context.env, context.device)
        started = time.perf_counter()
        report = self.check_conditioning(model, request)  # beside the method: does the conditioning work?
        seconds = {"diagnostics": time.perf_counter() - started}

        started = time.perf_counter()
        count = self.episodes_to_generate(dataset)
        starts, targets = starting_points(model, dataset, settings.target_return_quantile,
                                          branch=settings.branch_length > 0)  # 1. o_0 and R-hat
        stitcher = Stitcher(model, settings, starts, targets, context.seed)  # 2. Eq. 7-8, check, resample, restart
        sampled = stitcher.generate(math.ceil(count / settings.keep_fraction), dataset, settings.branch_length)  # 3.
        generated = best_by_imputed_return(sampled, count)  # 3. the best, by the reward model's return
        seconds["generate"] = time.perf_counter() - started

        report.update(diagnostics.generation_report(context.env, stitcher.stats, sampled, generated, dataset,
                                                    request.references.expert, seconds))
        reason = "" if generated.episodes >= count else diagnostics.shortfall(stitcher)
        examples = self.whole_episodes(model, dataset, context.seed) if settings.branch_length else None
        return Generated(generated, report, requested=count, reason=reason, examples=examples)

    def episodes_to_generate(self, dataset: Dataset) -> int:
        """``generated_episodes``, or 0: as much data as the original: its episode count, or for
        branches of L steps as many generated transitions as it has real ones (the paper adds as
        many episodes as it collected)."""
        settings = self.config
        if settings.generated_episodes:
            return settings.generated_episodes
        if settings.branch_length:
            return math.ceil(int(dataset.lengths.sum()) / settings.branch_length)
        return dataset.episodes

    def check_conditioning(self, model: DiffusionModel, request: GenerateRequest) -> dict:
        """The diagnostics of the trained model before it generates (``diagnostics.conditioning_report``)."""
        settings, dataset, context = self.config, request.dataset, request.context
        diffused = attrs.evolve(dataset, obs=model.normaliser.codec.encode(dataset.obs))
        initial, targets = starting_points(model, dataset, settings.target_return_quantile)
        return diagnostics.conditioning_report(model, settings, self.segments(diffused, request.labels, model),
                                               context.env, initial, float(targets[0]), request.references.imbalanced,
                                               context.seed)

    def whole_episodes(self, model: DiffusionModel, dataset: Dataset, seed: int) -> Dataset:
        """A few whole episodes from real initial states, for the report's picture when the data
        are short branches (never learnt from)."""
        initial, targets = starting_points(model, dataset, self.config.target_return_quantile)
        return Stitcher(model, self.config, initial, targets, seed + 1).generate(DRAWN_EPISODES, dataset)


def consistency_threshold(model: DiffusionModel, segments: SegmentData, quantile: float, seed: int) -> float:
    """delta (section 3.3): the ``quantile`` of the worst transition's consistency error on up to
    ``CALIBRATION_SEGMENTS`` real segments drawn with ``seed``; the model keeps it."""
    order = torch.randperm(len(segments.x), generator=torch.Generator().manual_seed(seed))
    return model.calibrate(segments.x[order[:CALIBRATION_SEGMENTS]], quantile)


def best_by_imputed_return(episodes: Dataset, count: int) -> Dataset:
    """The ``count`` episodes with the highest imputed return (the reward model's, not the env's), in
    their generated order."""
    return episodes.select(np.sort(np.argsort(-episodes.returns(), kind="stable")[:count]))


def starting_points(model: DiffusionModel, dataset: Dataset, target_return_quantile: float,
                    branch: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Where generation starts: normalised real states [S,N,D] in the model's representation, and the
    normalised return-to-go to condition each on, the ``target_return_quantile`` of the dataset's
    return-to-go at that step. The initial states of every episode or, with ``branch``, every real
    step of every episode (short rollouts branch off the data, MBPO-style)."""
    valid = dataset.step_mask() if branch else np.arange(dataset.padded_length)[None] == 0
    episode, step = np.nonzero(valid & dataset.step_mask())
    states = model.normaliser.codec.encode(dataset.obs[episode, step])
    starts = model.normaliser.normalise(torch.as_tensor(states, device=model.normaliser.mean.device)).cpu().numpy()
    reached = dataset.step_mask().any(0)  # steps some episode reaches (the others have no return-to-go)
    return_to_go = np.where(dataset.step_mask(), dataset.return_to_go(), np.nan)[:, reached]
    per_step = np.zeros(dataset.padded_length)
    per_step[reached] = np.nanquantile(return_to_go, target_return_quantile, axis=0)
    targets = per_step[step] / model.normaliser.return_scale
    return starts, targets
