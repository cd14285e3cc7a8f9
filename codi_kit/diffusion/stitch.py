"""Trajectory generation (paper section 3.3): segments from a fixed o_0, the dynamics-consistency
check with resampling, restarts from a new o_0, and stitching until the episode length."""
from __future__ import annotations

import math

import attrs
import numpy as np
import torch

from codi_kit.diffusion.guidance import agent_conditions
from codi_kit.diffusion.sample import sample_segments
from codi_kit.progress import progress_bar


@attrs.define(eq=False)  # compared by identity
class Trajectory:
    obs: list  # normalised joint observations [N,D], tensors
    actions: list  # imputed joint actions [N]
    rewards: list  # imputed team rewards (dataset units)
    return_to_go: float  # normalised target RTG left
    restarts: int = 0


@attrs.define
class GenerationStats:
    segments_sampled: int = 0
    segments_accepted: int = 0
    resamples: int = 0
    restarts: int = 0
    abandoned: int = 0
    stopped_early: bool = False  # nothing passed the check in the first rounds: generation gave up

    def summary(self) -> dict:
        return {"acceptance_rate": self.segments_accepted / max(self.segments_sampled, 1),
                "resamples_per_segment": self.resamples / max(self.segments_accepted, 1),
                **attrs.asdict(self)}


def generate(model, dynamics, schedule, data, settings, starts: np.ndarray, episodes: int, length: int,
             target_return: float, threshold: float, seed: int, device) -> tuple[list[Trajectory], GenerationStats]:
    """``episodes`` trajectories of ``length`` steps (length + 1 observations, so every step has an
    imputed action and reward); ``starts`` [S,N,D] normalised initial observations to draw o_0 from."""
    rng = np.random.default_rng([seed, 23])
    generator = torch.Generator().manual_seed(seed)
    stats = GenerationStats()
    agents = starts.shape[1]
    done: list[Trajectory] = []
    need_segments = math.ceil(length / (settings.horizon - 1))

    def fresh(restarts=0):
        return Trajectory([torch.as_tensor(starts[rng.integers(len(starts))], device=device)], [], [], target_return, restarts)

    with progress_bar(episodes, "generate") as bar:
        while len(done) < episodes and stats.abandoned <= episodes:  # give up when almost nothing passes
            batch = [fresh() for _ in range(min(settings.generation_batch, episodes - len(done)))]
            while batch:
                batch = _extend(batch, model, dynamics, schedule, data, settings, agents, threshold, stats,
                                generator, fresh)
                if stats.segments_accepted == 0 and stats.segments_sampled >= 2 * (settings.max_resamples + 1) * settings.generation_batch:
                    # two full rounds of attempts without a single consistent segment: more sampling
                    # only burns time (measured: 49k samples, 11 minutes, nothing accepted)
                    stats.stopped_early = True
                    return done, stats
                finished = [t for t in batch if len(t.actions) >= need_segments * (settings.horizon - 1)]
                for trajectory in finished:
                    if len(done) < episodes:
                        done.append(trajectory)
                        bar.advance()
                batch = [t for t in batch if t not in finished]
    return done, stats


def _extend(batch, model, dynamics, schedule, data, settings, agents, threshold, stats, generator, fresh):
    """One more accepted segment for every trajectory in ``batch`` (resampling failures)."""
    pending = list(range(len(batch)))
    for attempt in range(settings.max_resamples + 1):
        first = torch.stack([batch[i].obs[-1] for i in pending])
        rtg = torch.tensor([batch[i].return_to_go for i in pending], device=first.device, dtype=torch.float32)
        conditions = agent_conditions(rtg, agents, settings.guidance_weight, settings.compose, settings.use_labels)
        segments = sample_segments(model, schedule, first, settings.horizon, conditions, settings.sampling_steps,
                                   settings.eta, generator, data.held, settings.sampling_spacing)
        stats.segments_sampled += len(pending)
        error, actions = dynamics.consistency_error(segments[:, :-1], segments[:, 1:])  # [B,H-1]
        accepted = (error.max(dim=1).values <= threshold).cpu().numpy()
        with torch.no_grad():
            rewards = dynamics.predict_reward(segments[:, :-1], actions, segments[:, 1:]) * data.reward_scale
        still = []
        for row, index in enumerate(pending):
            if not accepted[row]:
                still.append(index)
                continue
            trajectory = batch[index]
            trajectory.obs.extend(segments[row, 1:])
            trajectory.actions.extend(actions[row])
            trajectory.rewards.extend(rewards[row].tolist())
            trajectory.return_to_go -= float(rewards[row].sum()) / data.return_scale
            stats.segments_accepted += 1
        pending = still
        if not pending:
            return batch
        stats.resamples += len(pending) * (attempt < settings.max_resamples)
    for index in pending:  # abandon the segment: restart from a new o_0, or give the trajectory up
        restarts = batch[index].restarts + 1
        stats.restarts += 1
        if restarts > settings.max_restarts:
            stats.abandoned += 1
            batch[index] = None
        else:
            batch[index] = fresh(restarts)
    return [t for t in batch if t is not None]
