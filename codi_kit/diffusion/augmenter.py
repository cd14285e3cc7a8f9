"""The diffusion augmenter every diffusion plugin configures. ``fit`` (the train stage) trains the
denoiser and the dynamics models once and saves them; ``generate`` (the generate stage) loads
them, checks the conditioning, samples and stitches, imputes actions and rewards, and keeps the
best episodes."""
from __future__ import annotations

import math
import time

import attrs
import numpy as np
import torch

from codi_kit.augment import Augmenter, FitRequest, GenerateRequest, Generated
from codi_kit.codec import training_codec
from codi_kit.dataset import Dataset
from codi_kit.diffusion import diagnostics
from codi_kit.diffusion.model import Architecture, DiffusionModel, Normaliser
from codi_kit.diffusion.settings import PROFILES, DiffusionSettings, training_settings
from codi_kit.diffusion.stitch import Stitcher
from codi_kit.diffusion.trainer import SegmentData, segment_data, train
from codi_kit.errors import CodiKitError
from codi_kit.progress import say

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

    # -- the train stage ---------------------------------------------------------------------
    def fit(self, request: FitRequest) -> dict:
        model, data, diffused = self.untrained(request)
        train(model, data, diffused, self.config, request.context, f"train {type(self).__name__}")
        return self.finish(model, data, request.context)

    def finish(self, model: DiffusionModel, data: SegmentData, context) -> dict:
        """After training: choose the consistency threshold on real segments and save the model into
        ``context.workdir``; the train stage's diagnostics."""
        order = torch.randperm(len(data.x), generator=torch.Generator().manual_seed(context.seed))
        threshold = model.calibrate(data.x[order[:CALIBRATION_SEGMENTS]], self.config.consistency_quantile)
        model.save(context.workdir)
        return {"horizon": self.config.horizon, "target": model.normaliser.codec.name, "consistency_threshold": threshold,
                "updates": model.updates, "segments": int(len(data.x))}

    def untrained(self, request: FitRequest) -> tuple[DiffusionModel, SegmentData, Dataset]:
        """The model to train (seeded), its training segments and the dataset in what is diffused."""
        settings, dataset, context = self.config, request.dataset, request.context
        codec = training_codec(context.env, settings.target, dataset.obs[: min(64, dataset.episodes)])
        diffused = attrs.evolve(dataset, obs=codec.encode(dataset.obs))  # what the models see
        normaliser = Normaliser.fit(dataset, codec, context.device)
        restricted = dataset.avail_actions is not None and not dataset.avail_actions[dataset.step_mask()].all()
        architecture = Architecture.of(settings, diffused.obs.shape[-1], dataset.agents, context.env.spec.actions, codec,
                                       dataset.obs.shape[-1], availability=restricted)
        torch.manual_seed(context.seed)
        model = DiffusionModel(architecture, normaliser, context.device)
        return model, self._segments(diffused, request.labels, model), diffused

    def _segments(self, diffused: Dataset, labels, model: DiffusionModel) -> SegmentData:
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

    # -- the generate stage ------------------------------------------------------------------
    def generate(self, request: GenerateRequest) -> Generated:
        settings, dataset, context = self.config, request.dataset, request.context
        model = DiffusionModel.load(request.trained, context.env, context.device)
        normaliser = model.normaliser
        diffused = attrs.evolve(dataset, obs=normaliser.codec.encode(dataset.obs))
        data = self._segments(diffused, request.labels, model)
        initial, initial_targets = starting_points(model, dataset, settings.target_return_quantile)
        target = float(initial_targets[0])
        count = settings.diagnostics_segments
        started = time.perf_counter()
        report = {
            "target": normaliser.codec.name, "consistency_threshold": settings.consistency_threshold or model.consistency_threshold,
            "target_return": target * normaliser.return_scale, "updates": model.updates,
            "label_sensitivity": diagnostics.label_sensitivity(model, data, count, context.seed),
            "denoised_progress": diagnostics.denoised_progress(model, data, context.env, count, context.seed),
            "probe": diagnostics.goal_probe(model, settings, context.env, initial, target, request.references.imbalanced,
                                            min(count, 128), context.seed),
        }
        timings = {"diagnostics": time.perf_counter() - started}
        sensitivity, probe = report["label_sensitivity"], report["probe"]
        if sensitivity:
            say(f"denoising loss {sensitivity['loss_correct_labels']:.4f} with the segments' labels, "
                f"{sensitivity['loss_shuffled_labels']:.4f} with shuffled ones")
        if probe:
            say(f"goal probe: conditioned agents close on their goals by {probe['probe_conditioned_margin']:+.3f} "
                f"± {probe['probe_margin_stderr']:.3f} more than the others")

        started = time.perf_counter()
        # 0: as much data as the original: its episode count, or for branches of L steps as many
        # generated transitions as it has real ones (the paper adds as many episodes as it collected)
        episodes = settings.generated_episodes or (
            math.ceil(int(dataset.lengths.sum()) / settings.branch_length) if settings.branch_length else dataset.episodes)
        starts, targets = starting_points(model, dataset, settings.target_return_quantile, settings.branch_length > 0)
        stitcher = Stitcher(model, settings, starts, targets, context.seed)
        every = stitcher.generate(math.ceil(episodes / settings.keep_fraction), dataset, settings.branch_length)
        timings["generate"] = time.perf_counter() - started
        # keep the episodes with the highest imputed return (the reward model's, not the env's)
        generated = every.select(np.sort(np.argsort(-every.returns(), kind="stable")[:episodes]))
        report.update({
            "generation": stitcher.stats.summary(), "generated_episodes": generated.episodes,
            "generated_per_second": generated.episodes / max(timings["generate"], 1e-9),  # episodes or branches
            "imputed_return_mean": float(generated.returns().mean()) if generated.episodes else None,
            "behaviour_generated": diagnostics.behaviour(context.env, generated),
            "behaviour_sampled": diagnostics.behaviour(context.env, every),
            "behaviour_dataset": diagnostics.behaviour(context.env, dataset),
            "behaviour_expert": diagnostics.behaviour(context.env, request.references.expert),
            "seconds": timings,
        })
        stats = stitcher.stats
        reason = (f"{stats.segments_accepted} of {stats.segments_sampled} sampled segments passed the consistency check "
                  f"(delta {stitcher.threshold:.3g}) and {stats.abandoned} trajectories were given up; the denoiser may "
                  "need more training (augmenter.train_steps)") if generated.episodes < episodes else ""
        examples = None
        if settings.branch_length:  # branches are one or a few steps: draw what whole episodes look like
            drawn = Stitcher(model, settings, initial, initial_targets, context.seed + 1)
            examples = drawn.generate(DRAWN_EPISODES, dataset)
        return Generated(generated, report, requested=episodes, reason=reason, examples=examples)


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
