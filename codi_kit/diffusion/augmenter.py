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

CALIBRATION_SEGMENTS = 4096  # real segments on which the consistency threshold delta is chosen


class DiffusionAugmenter(Augmenter):
    """Subclasses set ``Config`` (a ``DiffusionSettings`` subclass with their defaults); nothing else."""

    Config = DiffusionSettings
    PROFILES = PROFILES

    @property
    def needs_labels(self) -> bool:
        return self.config.use_labels

    @property
    def label_horizon(self) -> int | None:
        return self.config.horizon if self.config.use_labels else None

    def training_settings(self) -> dict:
        return training_settings(self.config)

    # -- the train stage ---------------------------------------------------------------------
    def fit(self, request: FitRequest) -> dict:
        settings, dataset, context = self.config, request.dataset, request.context
        codec = training_codec(context.env, settings.target, dataset.obs[: min(64, dataset.episodes)])
        diffused = attrs.evolve(dataset, obs=codec.encode(dataset.obs))  # what the models see
        normaliser = Normaliser.fit(diffused, codec, context.device)
        data = self._segments(diffused, request.labels, normaliser)
        architecture = Architecture.of(settings, data.x.shape[3], dataset.agents, context.env.spec.actions, codec)
        torch.manual_seed(context.seed)
        model = DiffusionModel(architecture, normaliser, context.device)
        train(model, data, diffused, settings, context, f"train {type(self).__name__}")
        order = torch.randperm(len(data.x), generator=torch.Generator().manual_seed(context.seed))
        threshold = model.calibrate(data.x[order[:CALIBRATION_SEGMENTS]], settings.consistency_quantile)
        model.save(context.workdir)
        return {"horizon": settings.horizon, "target": codec.name, "consistency_threshold": threshold,
                "updates": model.updates, "segments": int(len(data.x))}

    def _segments(self, diffused: Dataset, labels, normaliser: Normaliser) -> SegmentData:
        """Every horizon-H segment of the data, with its labels when the augmenter uses them."""
        horizon = self.config.horizon
        if self.config.use_labels:
            if labels is None:
                raise CodiKitError("this augmenter conditions on quality labels but the label stage gave none")
            if labels.horizon != horizon:
                raise CodiKitError(f"augmenter.horizon={horizon} disagrees with the labels' horizon {labels.horizon} "
                                   f"(label.horizon): set both to the same segment length")
            index, z = labels.segments, labels.z
        else:
            index, z = diffused.segment_index(horizon), None
        if horizon < 2 or not len(index):
            raise CodiKitError(f"augmenter.horizon={horizon}: needs at least 2 steps and episodes that long")
        return segment_data(diffused, horizon, index, z, normaliser)

    # -- the generate stage ------------------------------------------------------------------
    def generate(self, request: GenerateRequest) -> Generated:
        settings, dataset, context = self.config, request.dataset, request.context
        model = DiffusionModel.load(request.trained, context.env, context.device)
        normaliser = model.normaliser
        diffused = attrs.evolve(dataset, obs=normaliser.codec.encode(dataset.obs))
        data = self._segments(diffused, request.labels, normaliser)
        starts = normaliser.normalise(torch.as_tensor(diffused.obs[:, 0], device=context.device)).cpu().numpy()
        target = float(np.quantile(dataset.return_to_go()[:, 0], settings.target_return_quantile)) / normaliser.return_scale
        count = settings.diagnostics_segments
        started = time.perf_counter()
        report = {
            "target": normaliser.codec.name, "consistency_threshold": settings.consistency_threshold or model.consistency_threshold,
            "target_return": target * normaliser.return_scale, "updates": model.updates,
            "label_sensitivity": diagnostics.label_sensitivity(model, data, count, context.seed),
            "denoised_progress": diagnostics.denoised_progress(model, data, context.env, count, context.seed),
            "probe": diagnostics.goal_probe(model, settings, context.env, starts, target, request.references.imbalanced,
                                            min(count, 128), context.seed),
        }
        timings = {"diagnostics": time.perf_counter() - started}
        say(f"diagnostics: {report['label_sensitivity']} {report['probe']}")

        started = time.perf_counter()
        episodes = settings.generated_episodes or dataset.episodes
        stitcher = Stitcher(model, settings, starts, target, context.seed)
        trajectories = stitcher.run(math.ceil(episodes / settings.keep_fraction), dataset.padded_length)
        timings["generate"] = time.perf_counter() - started
        if stitcher.stats.stopped_early:
            say(f"[yellow]generation stopped early: no sampled segment passed the consistency check "
                f"(delta {stitcher.threshold:.3g}); the denoiser needs more training (augmenter.train_steps)[/yellow]")
        every = _as_dataset(trajectories, normaliser, dataset, context.env.spec.actions)
        # keep the episodes with the highest imputed return (the reward model's, not the env's)
        generated = every.select(np.sort(np.argsort(-every.returns(), kind="stable")[:episodes]))
        report.update({
            "generation": stitcher.stats.summary(), "generated_episodes": generated.episodes,
            "episodes_per_second": generated.episodes / max(timings["generate"], 1e-9),
            "imputed_return_mean": float(generated.returns().mean()) if generated.episodes else None,
            "behaviour_generated": diagnostics.behaviour(context.env, generated),
            "behaviour_sampled": diagnostics.behaviour(context.env, every),
            "behaviour_dataset": diagnostics.behaviour(context.env, dataset),
            "behaviour_expert": diagnostics.behaviour(context.env, request.references.expert),
            "seconds": timings,
        })
        return Generated(generated, report)


def _as_dataset(trajectories, normaliser: Normaliser, original: Dataset, actions_count: int) -> Dataset:
    episodes, length = len(trajectories), original.padded_length
    agents, features = original.agents, original.obs.shape[-1]
    obs = np.zeros((episodes, length, agents, features), np.float32)
    actions = np.zeros((episodes, length, agents), np.int64)
    rewards = np.zeros((episodes, length), np.float32)
    for e, trajectory in enumerate(trajectories):
        obs[e] = normaliser.observations(torch.stack(trajectory.obs[:length]))
        actions[e] = torch.stack(trajectory.actions[:length]).cpu().numpy()
        rewards[e] = np.asarray(trajectory.rewards[:length], np.float32)
    # every move is available in the generated data (the MPE case); an env with action masks
    # would need an availability model here
    avail = np.ones((episodes, length, agents, actions_count), bool)
    return Dataset(obs=obs, actions=actions, rewards=rewards, lengths=np.full(episodes, length, np.int64),
                   avail_actions=avail, meta=dict(original.meta, source="generated"))
