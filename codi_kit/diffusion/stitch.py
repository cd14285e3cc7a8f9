"""Trajectory generation (paper section 3.3): segments from a fixed o_0, the dynamics-consistency
check with resampling, restarts from a new o_0, and stitching until the episode length."""
from __future__ import annotations

import math

import attrs
import numpy as np
import torch

from codi_kit.data.dataset import Dataset
from codi_kit.diffusion.guidance import sampling_conditions
from codi_kit.diffusion.regenerate import repair_segments, repairs
from codi_kit.progress import progress_bar


@attrs.define(eq=False)  # compared by identity
class Trajectory:
    obs: list  # normalised joint states [N,D] (observations or the codec's), tensors
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
    consistency_error_sum: float = 0.0  # of each sampled segment's worst transition
    repaired: int = 0  # accepted segments whose bad agents were re-denoised (MADiTS)
    repairs_failed: int = 0  # of those, repairs that failed the consistency check (the segment is resampled)
    bad_agents: list = attrs.field(factory=list)  # per agent: how often it was found bad

    def summary(self) -> dict:
        return {"acceptance_rate": self.segments_accepted / max(self.segments_sampled, 1),
                "resamples_per_segment": self.resamples / max(self.segments_accepted, 1),
                "consistency_error_mean": self.consistency_error_sum / max(self.segments_sampled, 1),
                "repair_acceptance": 1 - self.repairs_failed / max(self.repaired, 1), **attrs.asdict(self)}


class Stitcher:
    """Generates trajectories from one trained model under one set of sampling settings."""

    def __init__(self, model, settings, starts: np.ndarray, target_return, seed: int,
                 good: list[int] | None = None):
        """``starts`` [S,N,D]: normalised real steps to draw o_0 from; ``target_return``: the normalised
        return-to-go a trajectory starts with (one number, or [S], one per start); ``good``: the
        agents conditioned as good (default every agent; a probe conditions on one)."""
        self.model, self.settings, self.starts = model, settings, starts
        self.target_return = np.broadcast_to(np.asarray(target_return, np.float64), (len(starts),))
        self.good = good
        self.threshold = settings.consistency_threshold or model.consistency_threshold
        self.device = model.normaliser.mean.device
        self.rng = np.random.default_rng([seed, 23])
        self.generator = torch.Generator().manual_seed(seed)
        self.stats = GenerationStats()

    def run(self, episodes: int, length: int) -> list[Trajectory]:
        """``episodes`` trajectories of ``length`` steps (length + 1 observations, so every step has
        an imputed action and reward)."""
        settings, stats = self.settings, self.stats
        steps_per_segment = self.model.architecture.horizon - 1
        need_steps = math.ceil(length / steps_per_segment) * steps_per_segment
        done: list[Trajectory] = []
        with progress_bar(episodes, "generate") as bar:
            while len(done) < episodes and stats.abandoned <= episodes:  # give up when almost nothing passes
                batch = [self._fresh() for _ in range(min(settings.generation_batch, episodes - len(done)))]
                while batch:
                    batch = self._extend(batch)
                    if stats.segments_accepted == 0 and stats.segments_sampled >= 2 * (settings.max_resamples + 1) * settings.generation_batch:
                        # two full rounds of attempts without a single consistent segment: more sampling
                        # only burns time (measured: 49k samples, 11 minutes, nothing accepted)
                        stats.stopped_early = True
                        return done
                    finished = [t for t in batch if len(t.actions) >= need_steps]
                    for trajectory in finished:
                        if len(done) < episodes:
                            done.append(trajectory)
                            bar.advance()
                    batch = [t for t in batch if t not in finished]
        return done

    def generate(self, episodes: int, original: Dataset, length: int = 0) -> Dataset:
        """``episodes`` generated episodes of ``length`` steps (0: as long as ``original``'s), in its
        schema (observations). A branch shorter than the original's episodes is stored at its own
        length plus the state its last action leads to, marked ``truncated`` so that learners
        bootstrap from it instead of reading the branch's end as the episode's."""
        branch = bool(length) and length < original.padded_length
        length = length or original.padded_length
        stored = length + branch  # a branch keeps the observation after its last step
        trajectories = self.run(episodes, length)
        count, agents = len(trajectories), original.agents
        obs = np.zeros((count, stored, agents, original.obs.shape[-1]), np.float32)
        actions = np.zeros((count, stored, agents), np.int64)
        rewards = np.zeros((count, stored), np.float32)
        # the availability model's masks at every generated state (every action where the data had no masks)
        avail = np.ones((count, stored, agents, self.model.architecture.actions), bool)
        if trajectories:  # every trajectory has at least ``length`` steps: decode them all at once
            states = torch.stack([torch.stack(trajectory.obs[:stored]) for trajectory in trajectories])
            obs[:] = self.model.normaliser.observations(states)
            actions[:, :length] = torch.stack([torch.stack(trajectory.actions[:length]) for trajectory in trajectories]).cpu().numpy()
            rewards[:, :length] = np.asarray([trajectory.rewards[:length] for trajectory in trajectories], np.float32)
            if self.model.dynamics.availability is not None:
                avail[:] = self.model.dynamics.available(states).cpu().numpy()
            actions[:, length:] = avail[:, length:].argmax(-1)  # the bootstrap step's padding action, an available one
        return Dataset(obs=obs, actions=actions, rewards=rewards, lengths=np.full(count, stored, np.int64),
                       avail_actions=avail, truncated=np.full(count, branch) if branch else None,
                       meta=dict(original.meta, source="generated"))

    def _fresh(self, restarts: int = 0) -> Trajectory:
        start = self.rng.integers(len(self.starts))
        first = torch.as_tensor(self.starts[start], device=self.device)
        return Trajectory([first], [], [], float(self.target_return[start]), restarts)

    def _repair(self, segments, states, actions, accepted, rtg):
        """MADiTS: re-denoise the bad agents of the accepted segments; a repair that fails the
        consistency check turns its segment down (it is resampled, within the same limits)."""
        settings, model = self.settings, self.model
        rows = torch.nonzero(accepted).squeeze(1)
        conditions = sampling_conditions(settings, rtg[rows], model.architecture.agents, self.good)
        repair = repair_segments(model, settings, segments[rows], states[rows], actions[rows], conditions,
                                 self.threshold, self.generator)
        touched = repair.bad.any(1)
        self.stats.repaired += int(touched.sum())
        self.stats.repairs_failed += int((touched & ~repair.passed).sum())
        counts = repair.bad.sum(0).tolist()
        self.stats.bad_agents = [a + b for a, b in zip(self.stats.bad_agents or [0] * len(counts), counts)]
        states, actions, accepted = states.clone(), actions.clone(), accepted.clone()
        states[rows], actions[rows] = repair.states, repair.actions
        accepted[rows] = repair.passed | ~touched
        return states, actions, accepted

    def _extend(self, batch: list[Trajectory]) -> list[Trajectory]:
        """One more accepted segment for every trajectory in ``batch`` (section 3.3): a segment that
        fails the consistency check is resampled up to ``max_resamples`` times, then its trajectory
        restarts from a new o_0."""
        pending = list(range(len(batch)))
        for attempt in range(self.settings.max_resamples + 1):
            trajectories = [batch[i] for i in pending]
            segments, rtg = self._sample(trajectories)  # Eq. 7-8, from each trajectory's last state
            states, actions, accepted = self._check(segments, rtg)  # f_inv's actions, consistency error <= delta
            rewards = self.model.rewards(states, actions)  # f_rew's rewards
            for row in np.flatnonzero(accepted):
                self._stitch(trajectories[row], states[row], actions[row], rewards[row])
            pending = [index for index, passed in zip(pending, accepted) if not passed]
            if not pending:
                return batch
            self.stats.resamples += len(pending) * (attempt < self.settings.max_resamples)
        return self._restart(batch, pending)

    def _sample(self, trajectories: list[Trajectory]) -> tuple[torch.Tensor, torch.Tensor]:
        """Segments [B,H,N,C] from the trajectories' last states under the conditions "R-hat left
        and agent i is good" (Eq. 7) with composed guidance (Eq. 8), and the return-to-go [B] each
        was conditioned on."""
        settings, model = self.settings, self.model
        first = torch.stack([trajectory.obs[-1] for trajectory in trajectories])
        rtg = torch.tensor([trajectory.return_to_go for trajectory in trajectories], device=self.device,
                           dtype=torch.float32)
        conditions = sampling_conditions(settings, rtg, model.architecture.agents, self.good)
        segments = model.sample(first, conditions, sampling_steps=settings.sampling_steps, eta=settings.eta,
                                spacing=settings.sampling_spacing, generator=self.generator)
        self.stats.segments_sampled += len(trajectories)
        return segments, rtg

    def _check(self, segments: torch.Tensor, rtg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """What the segments say happened (states, imputed actions) and which pass the consistency
        check: the worst transition's error under f_fwd at most delta (MADiTS: after repairing the
        bad agents of those that pass)."""
        states, actions, error = self.model.transitions(segments, self.settings.resimulate)  # error [B,H-1]
        worst = error.max(dim=1).values
        self.stats.consistency_error_sum += float(worst.sum())
        accepted = worst <= self.threshold
        if repairs(self.settings) and bool(accepted.any()):
            states, actions, accepted = self._repair(segments, states, actions, accepted, rtg)
        return states, actions, accepted.cpu().numpy()

    def _stitch(self, trajectory: Trajectory, states: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor) -> None:
        """Append an accepted segment: its states after the first, actions and rewards; the
        return-to-go left shrinks by the imputed rewards."""
        trajectory.obs.extend(states[1:])
        trajectory.actions.extend(actions)
        trajectory.rewards.extend(rewards.tolist())
        trajectory.return_to_go -= float(rewards.sum()) / self.model.normaliser.return_scale
        self.stats.segments_accepted += 1

    def _restart(self, batch: list[Trajectory], failed: list[int]) -> list[Trajectory]:
        """The trajectories whose segment failed every resample restart from a new o_0, or are given
        up after ``max_restarts``; the batch without the given-up ones."""
        for index in failed:
            restarts = batch[index].restarts + 1
            self.stats.restarts += 1
            if restarts > self.settings.max_restarts:
                self.stats.abandoned += 1
                batch[index] = None
            else:
                batch[index] = self._fresh(restarts)
        return [t for t in batch if t is not None]
