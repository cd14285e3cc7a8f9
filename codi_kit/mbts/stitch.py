"""One MBTS pass (Hepburn & Montana 2022, Algorithm 1, multi-agent on the joint state), over every
current trajectory at once. Walking a trajectory from its first state s, at each step:

  candidates   = next states of the dataset transitions nearest to s (by state) and to s' (by next
                 state), as the authors' two KD-trees give them (exact k nearest neighbours here:
                 in the joint state's 30+ dimensions a KD-tree answers no faster than brute force,
                 measured 10x slower than torch.cdist on CN), so a jump only lands on a state the data has
  plausible    = the worst ensemble member explains s -> candidate at least as well as the
                 members explain the trajectory's own s -> s' on average (the authors'
                 min-over-models density above the mean one)
  jump         to the plausible candidate of highest V when V(candidate) > V(s'), with the joint
                 action f_inv proposes and the reward r_fwd imputes; then continue along the
                 trajectory the candidate belongs to; otherwise take the trajectory's own step
  keep         the stitched trajectory when its return beats the one it replaces (over as many
                 steps) by the margin (the authors: 1% of its magnitude)

A trajectory is a row of flat indices into the original data's steps (``source``), so the
observations of every stitched step are real ones, never generated.
"""
from __future__ import annotations

import attrs
import numpy as np
import torch

from codi_kit.dataset import Dataset
from codi_kit.mbts.value import fit_value
from codi_kit.progress import progress_bar


@attrs.define
class Trajectories:
    """Trajectories over the original data's steps: step t of trajectory e shows the observation of
    flat original step ``source[e, t]`` (episode x padded length + step), with the joint action and
    team reward it was given (the data's, or imputed at a jump)."""

    source: np.ndarray  # [E,T] int64, -1 on padding
    actions: np.ndarray  # [E,T,N] int64
    rewards: np.ndarray  # [E,T] float32
    lengths: np.ndarray  # [E] int64
    stitched: np.ndarray  # [E] bool: differs from the original episode

    @staticmethod
    def of(dataset: Dataset) -> Trajectories:
        flat = np.arange(dataset.episodes * dataset.padded_length).reshape(dataset.episodes, -1)
        return Trajectories(np.where(dataset.step_mask(), flat, -1), dataset.actions.copy(), dataset.rewards.copy(),
                            dataset.lengths.copy(), np.zeros(dataset.episodes, bool))

    def returns(self, steps: np.ndarray | None = None) -> np.ndarray:
        """[E] return over each trajectory's first ``steps`` [E] steps (default: all of them)."""
        steps = self.lengths if steps is None else np.minimum(steps, self.lengths)
        return (self.rewards * (np.arange(self.rewards.shape[1])[None] < steps[:, None])).sum(1)

    def to_dataset(self, original: Dataset, rows: np.ndarray) -> Dataset:
        """The chosen trajectories as episodes, observations (and availabilities) gathered from ``original``."""
        source = np.maximum(self.source[rows], 0)
        mask = self.source[rows] >= 0
        obs = original.obs.reshape(-1, *original.obs.shape[2:])[source] * mask[..., None, None]
        avail = None if original.avail_actions is None else \
            original.avail_actions.reshape(-1, *original.avail_actions.shape[2:])[source] & mask[..., None, None]
        return Dataset(obs=obs.astype(np.float32), actions=self.actions[rows] * mask[..., None],
                       rewards=(self.rewards[rows] * mask).astype(np.float32), lengths=self.lengths[rows].copy(),
                       avail_actions=avail, meta=dict(original.meta, source="generated"))


@attrs.define
class PassStats:
    jumps: int = 0
    steps: int = 0
    improved: int = 0
    mean_gain: float = 0.0  # mean return gain of the kept trajectories over what they replaced


def stitch_pass(current: Trajectories, states: torch.Tensor, avail: torch.Tensor, ensemble, settings,
                generator: torch.Generator) -> tuple[Trajectories, PassStats]:
    """One pass: V trained on the current trajectories, every trajectory walked once. ``states``
    [S,N,D]: the normalised joint state of every flat original step; ``avail`` [S,N,A]."""
    episodes, length = current.source.shape
    has_next = (current.source >= 0) & (np.arange(length)[None] < current.lengths[:, None] - 1)
    e_index, t_index = np.nonzero(has_next)  # the current data's transitions with a next state
    here, after = current.source[e_index, t_index], current.source[e_index, t_index + 1]
    flat = states.flatten(1)
    scale = ensemble.normaliser.reward_scale
    done = torch.as_tensor(t_index + 1 == current.lengths[e_index] - 1, dtype=torch.float32, device=states.device)
    value = fit_value(flat[here], torch.as_tensor(current.rewards[e_index, t_index] / scale, device=states.device),
                      flat[after], done, settings, generator)
    by_state, by_next = flat[here], flat[after]
    transition = np.full((episodes, length), -1)
    transition[e_index, t_index] = np.arange(len(e_index))

    out = Trajectories(np.full_like(current.source, -1), np.zeros_like(current.actions), np.zeros_like(current.rewards),
                       np.zeros_like(current.lengths), current.stitched.copy())
    position = np.stack([np.arange(episodes), np.zeros(episodes, np.int64)], 1)  # (trajectory, step) being followed
    active = current.lengths > 0
    stats = PassStats()
    k = min(settings.neighbours, len(e_index))
    for step in range(length):
        rows = np.nonzero(active)[0]
        if not len(rows):
            break
        e, t = position[rows, 0], position[rows, 1]
        out.source[rows, step] = current.source[e, t]
        out.actions[rows, step] = current.actions[e, t]
        out.rewards[rows, step] = current.rewards[e, t]
        out.lengths[rows] = step + 1
        moving = transition[e, t] >= 0  # the followed trajectory goes on from here
        position[rows, 1] += 1
        ends = rows[~moving]
        active[ends] = False
        rows, e, t = rows[moving], e[moving], t[moving]
        if not len(rows):
            continue
        now, own_next = current.source[e, t], current.source[e, t + 1]
        s, s_next = states[now], states[own_next]
        # candidates: transitions near s by state and near s' by next state (the authors' two KD-trees)
        near = np.concatenate([nearest(by_state, flat[now], k), nearest(by_next, flat[own_next], k)], 1)
        candidate = states[after[near]]  # [B,2k,N,D]
        with torch.no_grad():  # only a candidate of higher value than s' can be jumped to: test those alone
            scores = value(candidate.flatten(2))
            promising = (scores > value(s_next.flatten(1))[:, None]) & \
                torch.as_tensor(near != transition[e, t][:, None], device=states.device)
        b, c = torch.nonzero(promising, as_tuple=True)
        plausible = torch.zeros_like(promising)
        if len(b):
            worst = ensemble.errors(s[b], candidate[b, c]).max(0).values
            some = torch.unique(b)
            own = torch.zeros(len(rows), device=states.device)
            own[some] = ensemble.errors(s[some], s_next[some],
                                        torch.as_tensor(current.actions[e, t], device=states.device)[some]).mean(0)
            plausible[b, c] = worst <= own[b]
        scores = scores.masked_fill(~plausible, -torch.inf)
        best, jump = scores.argmax(1), plausible.any(1).cpu().numpy()
        stats.steps += len(rows)
        if jump.any():
            j = np.nonzero(jump)[0]
            target = near[j, best.cpu().numpy()[j]]
            landed = states[after[target]]
            action = ensemble.action(s[j], landed, avail[now[j]])
            out.actions[rows[j], step] = action.cpu().numpy()
            out.rewards[rows[j], step] = ensemble.reward(s[j], action, landed).cpu().numpy()
            position[rows[j]] = np.stack([e_index[target], t_index[target] + 1], 1)
            stats.jumps += len(j)
        active[rows[out.lengths[rows] >= length]] = False

    # keep a stitched trajectory when it beats the one it replaces over as many steps
    new, old = out.returns(), current.returns(out.lengths)
    better = (new > old + settings.improvement_margin * np.abs(old)) & (out.source != current.source).any(1)
    stats.improved = int(better.sum())
    stats.mean_gain = float((new - old)[better].mean()) if better.any() else 0.0
    row = better[:, None]
    kept = Trajectories(np.where(row, out.source, current.source), np.where(row[..., None], out.actions, current.actions),
                        np.where(row, out.rewards, current.rewards), np.where(better, out.lengths, current.lengths),
                        current.stitched | better)
    return kept, stats


def nearest(points: torch.Tensor, queries: torch.Tensor, k: int, chunk: int = 512) -> np.ndarray:
    """[Q,k] indices of the ``k`` ``points`` [P,F] nearest to each query [Q,F] (Euclidean, exact)."""
    found = [torch.cdist(queries[i: i + chunk], points).topk(k, largest=False).indices
             for i in range(0, len(queries), chunk)]
    return torch.cat(found).cpu().numpy() if found else np.zeros((0, k), np.int64)


def stitch(dataset: Dataset, states: torch.Tensor, ensemble, settings, seed: int) -> tuple[Trajectories, list[dict]]:
    """``settings.iterations`` passes, each over the trajectories the last one left (the growing
    dataset: improved trajectories replace theirs and become jump targets)."""
    avail = dataset.availability(ensemble.shape["actions"])
    avail = torch.as_tensor(avail.reshape(-1, *avail.shape[2:]), device=states.device)
    generator = torch.Generator().manual_seed(seed)
    current, history = Trajectories.of(dataset), []
    with progress_bar(settings.iterations, "MBTS stitching passes") as bar:
        for _ in range(settings.iterations):
            current, stats = stitch_pass(current, states, avail, ensemble, settings, generator)
            history.append(attrs.asdict(stats))
            bar.advance()
    return current, history
