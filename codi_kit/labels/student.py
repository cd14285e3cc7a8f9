"""The distilled quality labeler f_label (paper section 3.1, Eq. 5): a GRU over each agent's
(observation, action) sequence, then an MLP scoring every agent against the team context; a
softmax over agents gives z. Trained by cross-entropy on the teacher's answers."""
from __future__ import annotations

import copy

import attrs
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from codi_kit.data.dataset import Dataset
from codi_kit.learners.nets import mlp
from codi_kit.progress import progress_bar
from codi_kit.torch_utils import adam


@attrs.frozen
class StudentConfig:
    hidden: int = 64
    learning_rate: float = 1e-3
    batch_size: int = 256
    steps: int = 1500
    holdout_fraction: float = 0.2  # of the teacher's answers, for accuracy and early stopping
    evaluate_every: int = 100
    patience: int = 5  # stop after this many evaluations without a better holdout accuracy (0: run every step)


class QualityStudent(nn.Module):
    """[B,H,N,O] observations and [B,H,N] actions -> [B,N] logits over agents. The same GRU and
    head serve every agent (no agent id), so relabelling agents permutes the logits."""

    def __init__(self, obs_dim: int, actions: int, hidden: int = 64):
        super().__init__()
        self.actions = actions
        self.gru = nn.GRU(obs_dim + actions, hidden, batch_first=True)
        self.head = mlp(2 * hidden, hidden, 1, 1)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        batch, horizon, agents, _ = obs.shape
        steps = torch.cat([obs, F.one_hot(actions, self.actions).to(obs.dtype)], dim=-1)
        sequences = steps.permute(0, 2, 1, 3).reshape(batch * agents, horizon, -1)
        _, last = self.gru(sequences)
        agent_summary = last[-1].reshape(batch, agents, -1)
        team = agent_summary.mean(dim=1, keepdim=True).expand_as(agent_summary)
        return self.head(torch.cat([agent_summary, team], dim=-1)).squeeze(-1)


def _segments(dataset: Dataset, index: np.ndarray, horizon: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    return (torch.as_tensor(dataset.segments("obs", index, horizon), device=device),
            torch.as_tensor(dataset.segments("actions", index, horizon), device=device))


def distill(dataset: Dataset, segments: np.ndarray, teacher: np.ndarray, horizon: int, config: StudentConfig,
            seed: int, device: torch.device, cannot_tell: np.ndarray | None = None) -> tuple[QualityStudent, dict]:
    """Fit the student on segments with a teacher answer (>= 0); early-stopped on a held-out part
    of them. ``cannot_tell`` (a mask, optional): segments the teacher judged and could not tell
    apart, fitted towards the uniform z (soft-target cross-entropy) beside the named ones."""
    answered = np.flatnonzero(teacher >= 0)
    order = np.random.default_rng([seed, 17]).permutation(answered)
    held = int(round(config.holdout_fraction * len(order))) if len(order) >= 10 else 0
    holdout, train = order[:held], order[held:]
    uniform = np.flatnonzero(cannot_tell) if cannot_tell is not None else np.zeros(0, np.int64)
    train = np.concatenate([train, uniform])
    torch.manual_seed(seed)
    student = QualityStudent(dataset.obs.shape[-1], int(dataset.actions.max()) + 1 if dataset.avail_actions is None
                             else dataset.avail_actions.shape[-1], config.hidden).to(device)
    optimizer = adam(student.parameters(), config.learning_rate)
    generator = np.random.default_rng([seed, 19])
    named_agent = torch.as_tensor(teacher, device=device)
    targets = soft_targets(named_agent, dataset.agents) if len(uniform) else named_agent
    holdout_obs, holdout_actions = _segments(dataset, segments[holdout], horizon, device)
    best = (-1.0, copy.deepcopy(student.state_dict()), 0)
    stalled, step = 0, 0  # evaluations since the best one, updates done
    with progress_bar(config.steps, "distil student") as bar:
        for step in range(1, config.steps + 1):
            rows = generator.choice(train, min(config.batch_size, len(train)), replace=False)
            obs, actions = _segments(dataset, segments[rows], horizon, device)
            loss = F.cross_entropy(student(obs, actions), targets[rows])  # Eq. 5 (soft targets: same for one-hot)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            bar.advance()
            if held and (step % config.evaluate_every == 0 or step == config.steps):
                with torch.no_grad():
                    accuracy = float((student(holdout_obs, holdout_actions).argmax(-1) == named_agent[holdout]).float().mean())
                if accuracy > best[0]:
                    best, stalled = (accuracy, copy.deepcopy(student.state_dict()), step), 0
                else:
                    stalled += 1
                bar.update(loss=loss.item(), holdout_accuracy=accuracy)
                if config.patience and stalled >= config.patience:
                    break
    if held:
        student.load_state_dict(best[1])
    stats = {"student_trained_on": int(len(train)),
             "student_trained_on_cannot_tell": int(len(uniform)), "student_holdout": int(held),
             "student_holdout_accuracy": best[0] if held else None, "student_best_step": best[2], "student_steps": step}
    return student, stats


def soft_targets(named_agent: torch.Tensor, agents: int) -> torch.Tensor:
    """[M, N]: the named agent's one-hot, the uniform z where the teacher could not tell (-1)."""
    targets = torch.full((len(named_agent), agents), 1.0 / agents, device=named_agent.device)
    named = named_agent >= 0
    targets[named] = F.one_hot(named_agent[named], agents).float()
    return targets


@torch.no_grad()
def soft_labels(student: QualityStudent, dataset: Dataset, segments: np.ndarray, horizon: int,
                device: torch.device, batch: int = 4096) -> np.ndarray:
    """z = softmax over agents of the student's logits, for every segment [M,N]."""
    student.eval()
    parts = []
    for first in range(0, len(segments), batch):
        obs, actions = _segments(dataset, segments[first:first + batch], horizon, device)
        parts.append(torch.softmax(student(obs, actions), dim=-1).cpu().numpy())
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, dataset.agents), np.float32)
