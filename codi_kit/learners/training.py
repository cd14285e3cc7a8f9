"""The update loop every learner shares: progress bar, loss logging, periodic evaluation, targets."""
from __future__ import annotations

from typing import Callable

import attrs
import torch
from torch import nn

from codi_kit.envs.evaluate import TRAINING_EVALUATION_STREAM, evaluate
from codi_kit.learn import LearnRequest
from codi_kit.policy import Policy
from codi_kit.progress import progress_bar


@attrs.frozen
class LoopSettings:
    """Settings every learner's ``Config`` inherits."""

    steps: int = 10000
    log_every: int = 250
    evaluate_every: int = 0  # rollouts during training (0: only the final evaluation)
    evaluate_episodes: int = 20


def train_loop(
    request: LearnRequest,
    settings: LoopSettings,
    update: Callable[[int], dict],
    policy: Callable[[], Policy],
    description: str,
    on_log: Callable[[int, dict], None] | None = None,
) -> None:
    """Run ``update(step)`` (returns a dict of scalar tensors) ``steps`` times. Every ``log_every``
    steps the losses (plus what ``on_log`` adds, e.g. a validation loss) go to ``metrics.jsonl``;
    every ``evaluate_every`` steps (0: never) the current policy is rolled out on episodes that the
    final evaluation never uses, and its normalised return is logged too."""
    context = request.context
    steps, log_every, evaluate_every = settings.steps, settings.log_every, settings.evaluate_every
    with progress_bar(steps, description) as bar:
        for step in range(1, steps + 1):
            losses = update(step)
            bar.advance()
            if step % log_every and step != steps:
                continue
            record = {"step": step, **{k: float(v) for k, v in losses.items()}}
            if on_log is not None:
                on_log(step, record)
            if evaluate_every and request.normalization is not None and (step % evaluate_every == 0 or step == steps):
                outcome = evaluate(context.env, policy(), settings.evaluate_episodes, context.seed, request.normalization,
                                   stream=TRAINING_EVALUATION_STREAM)
                record["eval_return"] = outcome["return_mean"]
                record["eval_normalized_return"] = outcome["normalized_return"]
            context.log_metrics(record)
            bar.update(**{k: v for k, v in record.items() if k != "step"})


def soft_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    """target <- (1 - tau) target + tau source (Polyak averaging)."""
    with torch.no_grad():
        for target_parameter, parameter in zip(target.parameters(), source.parameters()):
            target_parameter.lerp_(parameter, tau)


def clipped_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor, parameters, max_norm: float) -> None:
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters, max_norm, foreach=True)
    optimizer.step()
