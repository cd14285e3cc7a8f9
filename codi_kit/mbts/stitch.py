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

from codi_kit.data.dataset import Dataset
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


@attrs.frozen
class Moves:
    """The current trajectories' transitions that have a next state: trajectory ``row`` [M] at step
    ``step`` [M], from flat original step ``here`` [M] to ``after`` [M]; ``index`` [E,T] gives the
    transition leaving each (trajectory, step), -1 where none does."""

    row: np.ndarray
    step: np.ndarray
    here: np.ndarray
    after: np.ndarray
    index: np.ndarray

    @staticmethod
    def of(current: Trajectories) -> Moves:
        episodes, length = current.source.shape
        has_next = (current.source >= 0) & (np.arange(length)[None] < current.lengths[:, None] - 1)
        row, step = np.nonzero(has_next)
        index = np.full((episodes, length), -1)
        index[row, step] = np.arange(len(row))
        return Moves(row, step, current.source[row, step], current.source[row, step + 1], index)


def stitch_pass(current: Trajectories, states: torch.Tensor, avail: torch.Tensor, ensemble, settings,
                generator: torch.Generator) -> tuple[Trajectories, PassStats]:
    """One pass: V trained on the current trajectories, every trajectory walked once, jumping where
    a plausible candidate is worth more, and the walked trajectories kept where they return more.
    ``states`` [S,N,D]: the normalised joint state of every flat original step; ``avail`` [S,N,A]."""
    moves = Moves.of(current)
    value = fit_current_value(current, moves, states, ensemble, settings, generator)
    walked, stats = walk(current, moves, states, avail, value, ensemble, settings.neighbours)
    return keep_better(current, walked, settings.improvement_margin, stats), stats


def fit_current_value(current: Trajectories, moves: Moves, states: torch.Tensor, ensemble, settings,
                      generator: torch.Generator):
    """V fitted on the current trajectories' transitions (rewards normalised as the ensemble's)."""
    flat = states.flatten(1)
    rewards = torch.as_tensor(current.rewards[moves.row, moves.step] / ensemble.normaliser.reward_scale,
                              device=states.device)
    done = torch.as_tensor(moves.step + 1 == current.lengths[moves.row] - 1, dtype=torch.float32, device=states.device)
    return fit_value(flat[moves.here], rewards, flat[moves.after], done, settings, generator)


def walk(current: Trajectories, moves: Moves, states: torch.Tensor, avail: torch.Tensor, value, ensemble,
         neighbours: int) -> tuple[Trajectories, PassStats]:
    """Every trajectory walked from its first step: each step copies the followed trajectory's step,
    or, where ``jumps`` finds a candidate, the joint action f_inv proposes towards it and the reward
    r_fwd imputes, and the walk goes on along the candidate's trajectory."""
    episodes, length = current.source.shape
    out = Trajectories(np.full_like(current.source, -1), np.zeros_like(current.actions), np.zeros_like(current.rewards),
                       np.zeros_like(current.lengths), current.stitched.copy())
    position = np.stack([np.arange(episodes), np.zeros(episodes, np.int64)], 1)  # (trajectory, step) being followed
    active = current.lengths > 0
    stats = PassStats()
    flat = states.flatten(1)
    by_state, by_next = flat[moves.here], flat[moves.after]  # what candidates are searched by (both KD-trees)
    for step in range(length):
        rows = np.nonzero(active)[0]
        if not len(rows):
            break
        followed, at = position[rows, 0], position[rows, 1]
        out.source[rows, step] = current.source[followed, at]
        out.actions[rows, step] = current.actions[followed, at]
        out.rewards[rows, step] = current.rewards[followed, at]
        out.lengths[rows] = step + 1
        goes_on = moves.index[followed, at] >= 0
        position[rows, 1] += 1
        active[rows[~goes_on]] = False
        rows, followed, at = rows[goes_on], followed[goes_on], at[goes_on]
        if not len(rows):
            continue
        stats.steps += len(rows)
        jumping, target = jumps(current, moves, states, (by_state, by_next), value, ensemble, followed, at, neighbours)
        if len(jumping):
            now = current.source[followed[jumping], at[jumping]]
            landed = states[moves.after[target]]
            action = ensemble.action(states[now], landed, avail[now])
            out.actions[rows[jumping], step] = action.cpu().numpy()
            out.rewards[rows[jumping], step] = ensemble.reward(states[now], action, landed).cpu().numpy()
            position[rows[jumping]] = np.stack([moves.row[target], moves.step[target] + 1], 1)
            stats.jumps += len(jumping)
        active[rows[out.lengths[rows] >= length]] = False
    return out, stats


def jumps(current: Trajectories, moves: Moves, states: torch.Tensor, searched: tuple, value, ensemble,
          followed: np.ndarray, at: np.ndarray, neighbours: int) -> tuple[np.ndarray, np.ndarray]:
    """Which of the walks at (``followed``, ``at``) jump, and the transition each jumps to.
    Candidates: the next states of the transitions nearest to s by state and to s' by next state
    (the authors' two KD-trees); one is plausible when the ensemble's worst member explains s ->
    candidate at least as well as the members explain the trajectory's own s -> s' on average;
    the walk jumps to the plausible candidate of highest V when V(candidate) > V(s'). ``searched``:
    the flat states and next states of ``moves``, which the nearest ones are searched among."""
    flat, (by_state, by_next) = states.flatten(1), searched
    now, own_next = current.source[followed, at], current.source[followed, at + 1]
    state, next_state = states[now], states[own_next]
    count = min(neighbours, len(moves.row))
    near = np.concatenate([nearest(by_state, flat[now], count), nearest(by_next, flat[own_next], count)], 1)
    candidate = states[moves.after[near]]  # [B,2k,N,D]
    with torch.no_grad():  # only a candidate of higher value than s' can be jumped to: test those alone
        scores = value(candidate.flatten(2))
        promising = (scores > value(next_state.flatten(1))[:, None]) & \
            torch.as_tensor(near != moves.index[followed, at][:, None], device=states.device)
    walk_of, option = torch.nonzero(promising, as_tuple=True)
    plausible = torch.zeros_like(promising)
    if len(walk_of):
        worst = ensemble.errors(state[walk_of], candidate[walk_of, option]).max(0).values
        tested = torch.unique(walk_of)
        own = torch.zeros(len(now), device=states.device)
        own_actions = torch.as_tensor(current.actions[followed, at], device=states.device)
        own[tested] = ensemble.errors(state[tested], next_state[tested], own_actions[tested]).mean(0)
        plausible[walk_of, option] = worst <= own[walk_of]
    best = scores.masked_fill(~plausible, -torch.inf).argmax(1).cpu().numpy()
    jumping = np.nonzero(plausible.any(1).cpu().numpy())[0]
    return jumping, near[jumping, best[jumping]]


def keep_better(current: Trajectories, walked: Trajectories, margin: float, stats: PassStats) -> Trajectories:
    """A walked trajectory replaces its original when it returns more over as many steps, by
    ``margin`` of the original's magnitude (the authors: 1%); ``stats`` records how many did."""
    new, old = walked.returns(), current.returns(walked.lengths)
    better = (new > old + margin * np.abs(old)) & (walked.source != current.source).any(1)
    stats.improved = int(better.sum())
    stats.mean_gain = float((new - old)[better].mean()) if better.any() else 0.0
    row = better[:, None]
    return Trajectories(np.where(row, walked.source, current.source),
                        np.where(row[..., None], walked.actions, current.actions),
                        np.where(row, walked.rewards, current.rewards), np.where(better, walked.lengths, current.lengths),
                        current.stitched | better)


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
