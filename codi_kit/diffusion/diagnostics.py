"""Does the conditioning work, before anything downstream runs?

- denoising loss with the correct labels against the same batch with labels shuffled;
- the best agent's goal progress in the denoiser's one-shot estimate of noised real segments, with
  and without labels, against the real progress;
- a probe: from real initial observations, condition on "agent i is good" and measure how much
  closer agent i gets to its goal than the other agents, against a real expert over the horizon;
- behaviour of generated data next to the dataset's and an expert's (env quality score, speed,
  no-op share of actions).
"""
from __future__ import annotations

import numpy as np
import torch

from codi_kit.diffusion.guidance import Conditions
from codi_kit.diffusion.sample import inpaint, sample_segments
from codi_kit.diffusion.trainer import denoising_loss


@torch.no_grad()
def label_sensitivity(model, schedule, data, count: int, seed: int) -> dict | None:
    """Mean denoising loss with correct labels vs the same noise with labels shuffled across the batch."""
    if data.labels is None:
        return None
    rows = torch.as_tensor(np.random.default_rng([seed, 29]).choice(len(data.x), min(count, len(data.x)), replace=False),
                           device=data.x.device)
    agents = data.x.shape[2]
    ones = torch.ones(len(rows), device=data.x.device)
    losses = {}
    for name, labels in (("correct", data.labels[rows]), ("shuffled", data.labels[rows][torch.randperm(len(rows))])):
        generator = torch.Generator().manual_seed(seed)  # same noise and steps for both
        conditions = (data.return_to_go[rows], ones, labels, torch.ones(len(rows), agents, device=data.x.device))
        losses[name] = float(np.mean([denoising_loss(model, schedule, data.x[rows], conditions, generator, data.held).item()
                                      for _ in range(4)]))
    return {"loss_correct_labels": losses["correct"], "loss_shuffled_labels": losses["shuffled"],
            "loss_gap": losses["shuffled"] - losses["correct"]}


@torch.no_grad()
def goal_probe(model, schedule, data, settings, env, starts: np.ndarray, expert_segments: np.ndarray | None,
               count: int, seed: int) -> dict | None:
    """Agent i's goal progress when conditioned "agent i is good", minus the other agents' progress."""
    if not settings.use_labels or env.goal_distance(data.observations(torch.as_tensor(starts[:1]))) is None:
        return None
    goal = env.goal_distance
    rng = np.random.default_rng([seed, 31])
    first = torch.as_tensor(starts[rng.choice(len(starts), count)], device=data.x.device)
    agents = first.shape[1]
    generator = torch.Generator().manual_seed(seed)
    differences = []
    for agent in range(agents):
        mask = torch.zeros(1, count, agents, device=first.device)
        mask[..., agent] = 1
        conditions = Conditions(data.return_to_go.quantile(settings.target_return_quantile).expand(1, count),
                                torch.ones(1, count, device=first.device), mask.clone(), mask,
                                torch.full((1,), settings.guidance_weight, device=first.device))
        segments = data.observations(sample_segments(model, schedule, first, settings.horizon, conditions,
                                                     settings.sampling_steps, settings.eta, generator, data.held,
                                                     settings.sampling_spacing))
        distances = goal(segments)  # [B,H,N]
        progress = distances[:, 0] - distances[:, -1]  # [B,N]
        others = np.delete(progress, agent, axis=1).mean(1)
        differences.append(progress[:, agent] - others)
    every = np.concatenate(differences)
    result = {"probe_conditioned_margin": float(every.mean()),
              "probe_margin_per_agent": [float(d.mean()) for d in differences],
              "probe_margin_stderr": float(every.std() / np.sqrt(len(every)))}
    if expert_segments is not None:
        distances = goal(expert_segments[0])
        progress = distances[:, 0] - distances[:, -1]
        mask = expert_segments[1]
        result["probe_expert_margin"] = float(progress[mask].mean() - progress[~mask].mean())
    return result


@torch.no_grad()
def denoised_progress(model, schedule, data, env, count: int, seed: int, steps=(30, 70, 90)) -> dict | None:
    """Does the denoiser know where the labelled-best agent goes? Real segments are noised to step k
    and denoised in one shot (the model's x_0 estimate) with their labels and with labels masked;
    the best agent's (argmax z) goal progress over the segment is compared with the real one. An
    estimate that stays short of the real progress at high k, labels or not, is a conditional mean
    the model has not learned."""
    if data.labels is None or env.goal_distance(data.observations(data.x[:1, 0])) is None:
        return None
    rows = torch.as_tensor(np.random.default_rng([seed, 37]).choice(len(data.x), min(count, len(data.x)), replace=False),
                           device=data.x.device)
    x0, labels = data.x[rows], data.labels[rows]
    best = labels.argmax(1).cpu().numpy()

    def progress(x):
        distances = env.goal_distance(data.observations(x))
        moved = distances[:, 0] - distances[:, -1]
        return float(moved[np.arange(len(best)), best].mean())

    generator = torch.Generator().manual_seed(seed)
    ones, result = torch.ones(len(rows), device=x0.device), {"real": progress(x0)}
    for k in steps:
        k = min(k, schedule.steps)
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        steps = torch.full((len(rows),), k, device=x0.device)
        noisy = inpaint(schedule.noise(x0, steps, noise), x0[:, 0], data.held)
        for name, mask in (("labels", torch.ones_like(labels)), ("masked", torch.zeros_like(labels))):
            output = model(noisy, steps, data.return_to_go[rows], ones, labels, mask)
            estimate = schedule.clean_estimate(noisy, k, schedule.noise_from(model.prediction, noisy, k, output))
            result[f"k{k}_{name}"] = progress(inpaint(estimate, x0[:, 0], data.held))
    return result


def behaviour(env, obs: np.ndarray, actions: np.ndarray, lengths: np.ndarray) -> dict:
    """Quality score of final observations, mean speed and no-op share, for any set of episodes."""
    final = obs[np.arange(len(lengths)), lengths - 1]
    valid = np.arange(obs.shape[1])[None, :] < lengths[:, None]
    speeds = env.speed(obs[valid]) if valid.any() else None
    return {"quality_score": env.quality_score(final) if len(final) else None,
            "mean_speed": float(speeds.mean()) if speeds is not None else None,
            "noop_share": float((actions[valid] == 0).mean()) if valid.any() else None}
