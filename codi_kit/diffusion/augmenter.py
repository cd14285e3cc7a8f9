"""The diffusion augmenter every diffusion plugin configures: train, check the conditioning,
generate and stitch, impute actions and rewards, report diagnostics."""
from __future__ import annotations

import math
import time

import attrs
import numpy as np
import torch

from codi_kit.augment import Augmenter
from codi_kit.codec import StateCodec, identity_codec
from codi_kit.collect import collect
from codi_kit.dataset import Dataset
from codi_kit.diffusion import diagnostics
from codi_kit.diffusion.settings import DiffusionSettings
from codi_kit.diffusion.stitch import generate
from codi_kit.diffusion.trainer import segment_data, train_models
from codi_kit.errors import CodiKitError
from codi_kit.progress import say


class DiffusionAugmenter(Augmenter):
    """Subclasses set ``Config`` (a ``DiffusionSettings`` subclass with their defaults) and
    ``needs_labels``; nothing else."""

    Config = DiffusionSettings

    def generate(self, request):
        settings: DiffusionSettings = self.config
        dataset, context = request.dataset, request.context
        timings, started = {}, time.perf_counter()
        horizon, index, labels = settings.horizon, None, None
        if settings.use_labels:
            if request.labels is None:
                raise CodiKitError("this augmenter conditions on quality labels but the label stage gave none")
            horizon, index, labels = request.labels.horizon, request.labels.segments, request.labels.z
            settings = attrs.evolve(settings, horizon=horizon)
        else:
            index = dataset.segment_index(horizon)
        if horizon < 2 or not len(index):
            raise CodiKitError(f"augmenter horizon {horizon}: needs at least 2 steps and episodes that long")
        codec = self._codec(context.env, settings, dataset)
        diffused = attrs.evolve(dataset, obs=codec.encode(dataset.obs))  # what the models see
        data = segment_data(diffused, horizon, index, labels, context.device, codec)
        model, dynamics, schedule = train_models(diffused, data, settings, context, f"train {type(self).__name__}")
        timings["train"] = time.perf_counter() - started

        # delta: a high quantile of the consistency error on real transitions (section 3.3)
        real = data.x[torch.randperm(len(data.x), generator=torch.Generator().manual_seed(context.seed))[:4096]]
        error, _ = dynamics.consistency_error(real[:, :-1], real[:, 1:])
        threshold = settings.consistency_threshold or float(error.max(dim=1).values.quantile(settings.consistency_quantile))
        starts = data.normalise(torch.as_tensor(diffused.obs[:, 0], device=context.device)).cpu().numpy()
        target = float(np.quantile(dataset.return_to_go()[:, 0], settings.target_return_quantile)) / data.return_scale

        started = time.perf_counter()
        expert = collect(context.env, "imbalanced", 64, context.seed, stream=5, description="probe reference")
        expert_index = expert.segment_index(horizon)
        reference = (expert.segments("obs", expert_index, horizon),
                     expert.expert_mask[expert_index[:, 0]])
        self.diagnostics = {
            "target": codec.name, "consistency_threshold": threshold, "target_return": target * data.return_scale,
            "label_sensitivity": diagnostics.label_sensitivity(model, schedule, data, settings.diagnostics_segments, context.seed),
            "denoised_progress": diagnostics.denoised_progress(model, schedule, data, context.env,
                                                               settings.diagnostics_segments, context.seed),
            "probe": diagnostics.goal_probe(model, schedule, data, settings, context.env, starts, reference,
                                            min(settings.diagnostics_segments, 128), context.seed),
        }
        timings["diagnostics"] = time.perf_counter() - started
        say(f"diagnostics: {self.diagnostics['label_sensitivity']} {self.diagnostics['probe']}")

        started = time.perf_counter()
        episodes = settings.generated_episodes or dataset.episodes
        length = dataset.horizon
        sampled = math.ceil(episodes / settings.keep_fraction)
        trajectories, stats = generate(model, dynamics, schedule, data, settings, starts, sampled, length, target,
                                       threshold, context.seed, context.device)
        timings["generate"] = time.perf_counter() - started
        if stats.stopped_early:
            say(f"[yellow]generation stopped early: no sampled segment passed the consistency check "
                f"(delta {threshold:.3g}); the denoiser needs more training (augmenter.train_steps)[/yellow]")
        every = self._as_dataset(trajectories, data, length, dataset, context.env.spec.actions)
        # keep the episodes with the highest imputed return (the reward model's, not the env's)
        generated = every.select(np.sort(np.argsort(-every.returns(), kind="stable")[:episodes]))
        expert_balanced = collect(context.env, "balanced", 64, context.seed, stream=6, description="expert reference")
        self.diagnostics.update({
            "generation": stats.summary(), "generated_episodes": generated.episodes,
            "episodes_per_second": generated.episodes / max(timings["generate"], 1e-9),
            "imputed_return_mean": float(generated.returns().mean()) if generated.episodes else None,
            "behaviour_generated": diagnostics.behaviour(context.env, generated.obs, generated.actions, generated.lengths),
            "behaviour_sampled": diagnostics.behaviour(context.env, every.obs, every.actions, every.lengths),
            "behaviour_dataset": diagnostics.behaviour(context.env, dataset.obs, dataset.actions, dataset.lengths),
            "behaviour_expert": diagnostics.behaviour(context.env, expert_balanced.obs, expert_balanced.actions,
                                                      expert_balanced.lengths),
            "seconds": timings,
        })
        return generated

    @staticmethod
    def _codec(env, settings: DiffusionSettings, dataset: Dataset) -> StateCodec:
        codec = env.state_codec() if settings.target == "state" else None
        if codec is None:
            return identity_codec()
        try:
            codec.check(dataset.obs[: min(64, dataset.episodes)])
        except ValueError as error:
            raise CodiKitError(f"env {env.spec.name!r}: {error}; set augmenter.target=observations") from None
        return codec

    @staticmethod
    def _as_dataset(trajectories, data, length, original: Dataset, actions_count: int) -> Dataset:
        episodes = len(trajectories)
        agents, features = original.agents, original.obs.shape[-1]
        obs = np.zeros((episodes, length, agents, features), np.float32)
        actions = np.zeros((episodes, length, agents), np.int64)
        rewards = np.zeros((episodes, length), np.float32)
        for e, trajectory in enumerate(trajectories):
            obs[e] = data.observations(torch.stack(trajectory.obs[:length]))
            actions[e] = torch.stack(trajectory.actions[:length]).cpu().numpy()
            rewards[e] = np.asarray(trajectory.rewards[:length], np.float32)
        # every move is available in the generated data (the MPE case); an env with action masks
        # would need an availability model here
        avail = np.ones((episodes, length, agents, actions_count), bool)
        return Dataset(obs=obs, actions=actions, rewards=rewards, lengths=np.full(episodes, length, np.int64),
                       avail_actions=avail, meta=dict(original.meta, source="generated"))
