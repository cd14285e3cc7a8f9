"""The MBTS augmenter: ``fit`` (the train stage) trains the dynamics ensemble once; ``generate``
iterates the stitching passes (each trains its own value function on the trajectories so far)
and returns the trajectories that stitching improved, beside the original data."""
from __future__ import annotations

import time

import attrs
import numpy as np
import torch

from codi_kit.augment import Augmenter, FitRequest, GenerateRequest, Generated
from codi_kit.envs.codec import training_codec
from codi_kit.diffusion import diagnostics
from codi_kit.diffusion.model import Normaliser
from codi_kit.diffusion.settings import sampling, training_settings
from codi_kit.mbts.ensemble import Ensemble
from codi_kit.mbts.stitch import stitch
from codi_kit.data.replay import transitions
from codi_kit.progress import say


@attrs.frozen
class MBTSSettings:
    # -- the ensemble (train: these key the trained models) ----------------------------------------
    diffused: str = attrs.field(default="state", validator=attrs.validators.in_(("state", "observations")))  # as the diffusion augmenters
    members: int = 5  # forward models kept (the authors: 5 of 7, MBTS/TrajectoryStitching.py)
    hidden: int = 256  # as the diffusion augmenters' dynamics models (the authors' forward models: 200)
    train_steps: int = 4000  # updates per member
    batch_size: int = 256  # also the value function's (the authors' batch_size)
    learning_rate: float = 1e-3  # as the diffusion augmenters' dynamics_learning_rate
    # -- stitching (generate only) ----------------------------------------------------------------
    iterations: int = sampling(6)  # passes over the growing dataset (the authors' k = -1..4)
    neighbours: int = sampling(10)  # per nearest-neighbour query (ours: the authors' ball radius r* exists only for MuJoCo tasks)
    improvement_margin: float = sampling(0.01)  # keep a stitched trajectory above the old return + 1% of its magnitude (the authors)
    value_steps: int = sampling(1000)  # per pass (the authors: 10 epochs x 100 iterations)
    value_hidden: int = sampling(256)  # the authors' hidden_dim_val
    value_learning_rate: float = sampling(3e-4)  # the authors' Value_net lr
    gamma: float = sampling(0.99)  # the authors' Value_net
    tau: float = sampling(0.005)  # the authors' Value_net target update


class MBTSAugmenter(Augmenter):
    Config = MBTSSettings
    PROFILES = {"smoke": {"members": 2, "hidden": 32, "train_steps": 40, "batch_size": 64, "iterations": 2,
                          "value_steps": 40, "value_hidden": 32}}

    def training_settings(self) -> dict:
        return training_settings(self.config, MBTSSettings)

    def fit(self, request: FitRequest) -> dict:
        settings, dataset, context = self.config, request.dataset, request.context
        codec = training_codec(context.env, settings.diffused, dataset.obs[: min(64, dataset.episodes)])
        normaliser = Normaliser.fit(dataset, codec, context.device)
        states = attrs.evolve(dataset, obs=codec.encode(dataset.obs))
        torch.manual_seed(context.seed)
        ensemble = Ensemble({"features": states.obs.shape[-1], "agents": dataset.agents,
                             "actions": context.env.spec.actions, "hidden": settings.hidden, "members": settings.members},
                            normaliser)
        curve = ensemble.fit(transitions(states, context.device), settings.train_steps, settings.batch_size,
                             settings.learning_rate, context.seed, context.log_metrics)
        ensemble.eval().save(context.workdir)
        return {"diffused": codec.name, "members": settings.members, "final_losses": curve}

    def generate(self, request: GenerateRequest) -> Generated:
        settings, dataset, context = self.config, request.dataset, request.context
        ensemble = Ensemble.load(request.trained, context.env, context.device)
        started = time.perf_counter()
        encoded = ensemble.normaliser.codec.encode(dataset.obs)
        states = ensemble.normaliser.normalise(torch.as_tensor(encoded.reshape(-1, *encoded.shape[2:]), device=context.device))
        trajectories, passes = stitch(dataset, states, ensemble, settings, context.seed)
        rows = np.nonzero(trajectories.stitched)[0]
        generated = trajectories.to_dataset(dataset, rows)
        gains = trajectories.returns()[rows] - dataset.returns()[rows]
        say(f"MBTS: {len(rows)} of {dataset.episodes} trajectories stitched to a higher return")
        report = {
            "passes": passes, "stitched_episodes": int(len(rows)),
            "imputed_return_mean": float(generated.returns().mean()) if len(rows) else None,
            "return_gain_mean": float(gains.mean()) if len(rows) else None,
            "behaviour_generated": diagnostics.behaviour(context.env, generated),
            "behaviour_dataset": diagnostics.behaviour(context.env, dataset),
            "behaviour_expert": diagnostics.behaviour(context.env, request.references.expert),
            "seconds": {"generate": time.perf_counter() - started},
        }
        return Generated(generated, report)
