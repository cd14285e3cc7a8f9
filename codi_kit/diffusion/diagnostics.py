"""Does the conditioning work, before anything downstream runs?

- denoising loss with the correct labels against the same batch with labels shuffled;
- the best agent's goal progress in the denoiser's one-shot estimate of noised real segments, with
  and without labels, against the real progress;
- a probe: from real initial observations, condition on "agent i is good" and measure how much
  closer agent i gets to its goal than the other agents, against a real expert over the horizon;
- behaviour of generated data next to the dataset's and an expert's (env quality score, speed,
  no-op share of actions, agreement of the actions with the env's expert in the same states).

The generate stage records the first three as ``conditioning_report`` (before it samples) and the
last as ``generation_report`` (after): beside the method on ``augmenter.py``'s page, not inside it.
"""
from __future__ import annotations

import numpy as np
import torch

from codi_kit.data.dataset import Dataset
from codi_kit.diffusion.guidance import sampling_conditions
from codi_kit.diffusion.model import DiffusionModel
from codi_kit.diffusion.sample import inpaint
from codi_kit.diffusion.trainer import SegmentData, denoising_loss, loss_weights
from codi_kit.envs.probes import GoalDistance, QualityScore, Speed, probe
from codi_kit.progress import say


@torch.no_grad()
def label_sensitivity(model: DiffusionModel, data: SegmentData, count: int, seed: int) -> dict | None:
    """Mean denoising loss with correct labels vs the same noise with labels shuffled across the batch."""
    if data.labels is None:
        return None
    rows = torch.as_tensor(np.random.default_rng([seed, 29]).choice(len(data.x), min(count, len(data.x)), replace=False),
                           device=data.x.device)
    agents = data.x.shape[2]
    ones = torch.ones(len(rows), device=data.x.device)
    weights = loss_weights(model)
    losses = {}
    for name, labels in (("correct", data.labels[rows]), ("shuffled", data.labels[rows][torch.randperm(len(rows))])):
        generator = torch.Generator().manual_seed(seed)  # same noise and steps for both
        conditions = data.conditions(rows, ones, labels, torch.ones(len(rows), agents, device=data.x.device))
        losses[name] = float(np.mean([denoising_loss(model, model.sampler, data.x[rows], conditions, generator, weights).item()
                                      for _ in range(4)]))
    return {"loss_correct_labels": losses["correct"], "loss_shuffled_labels": losses["shuffled"],
            "loss_gap": losses["shuffled"] - losses["correct"]}


@torch.no_grad()
def goal_probe(model: DiffusionModel, settings, env, starts: np.ndarray, target_return: float, reference: Dataset | None,
               count: int, seed: int) -> dict | None:
    """Agent i's goal progress when conditioned "agent i is good", minus the other agents' progress,
    from real initial steps ``starts`` and the return-to-go that generation conditions on."""
    goal = probe(env, GoalDistance)
    if not settings.use_labels or goal is None:
        return None
    rng = np.random.default_rng([seed, 31])
    device = model.normaliser.mean.device
    first = torch.as_tensor(starts[rng.choice(len(starts), count)], device=device)
    agents = first.shape[1]
    generator = torch.Generator().manual_seed(seed)
    differences = []
    for agent in range(agents):
        conditions = sampling_conditions(settings, torch.full((count,), target_return, device=device), agents, [agent],
                                         compose=True, use_labels=True)
        segments = model.normaliser.observations(model.states(model.sample(
            first, conditions, sampling_steps=settings.sampling_steps, eta=settings.eta,
            spacing=settings.sampling_spacing, generator=generator)))
        distances = goal(segments)  # [B,H,N]
        progress = distances[:, 0] - distances[:, -1]  # [B,N]
        others = np.delete(progress, agent, axis=1).mean(1)
        differences.append(progress[:, agent] - others)
    every = np.concatenate(differences)
    result = {"probe_conditioned_margin": float(every.mean()),
              "probe_margin_per_agent": [float(d.mean()) for d in differences],
              "probe_margin_stderr": float(every.std() / np.sqrt(len(every)))}
    if reference is not None and reference.expert_mask is not None:
        index = reference.segment_index(model.architecture.horizon)
        distances = goal(reference.segments("obs", index, model.architecture.horizon))
        progress = distances[:, 0] - distances[:, -1]
        mask = reference.expert_mask[index[:, 0]]
        result["probe_expert_margin"] = float(progress[mask].mean() - progress[~mask].mean())
    return result


@torch.no_grad()
def denoised_progress(model: DiffusionModel, data: SegmentData, env, count: int, seed: int, steps=(30, 70, 90)) -> dict | None:
    """Does the denoiser know where the labelled-best agent goes? Real segments are noised to step k
    and denoised in one shot (the model's x_0 estimate) with their labels and with labels masked;
    the best agent's (argmax z) goal progress over the segment is compared with the real one. An
    estimate that stays short of the real progress at high k, labels or not, is a conditional mean
    the model has not learned."""
    goal = probe(env, GoalDistance)
    if data.labels is None or goal is None:
        return None
    rows = torch.as_tensor(np.random.default_rng([seed, 37]).choice(len(data.x), min(count, len(data.x)), replace=False),
                           device=data.x.device)
    x0, labels = data.x[rows], data.labels[rows]
    best = labels.argmax(1).cpu().numpy()
    denoiser, schedule, known, first = model.sampler, model.schedule, model.known, model.states(x0[:, 0])

    def progress(x):
        distances = goal(model.normaliser.observations(model.states(x)))
        moved = distances[:, 0] - distances[:, -1]
        return float(moved[np.arange(len(best)), best].mean())

    generator = torch.Generator().manual_seed(seed)
    ones, result = torch.ones(len(rows), device=x0.device), {"real": progress(x0)}
    for k in steps:
        k = min(k, schedule.steps)
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        steps = torch.full((len(rows),), k, device=x0.device)
        noisy = inpaint(schedule.noise(x0, steps, noise), first, known)
        for name, mask in (("labels", torch.ones_like(labels)), ("masked", torch.zeros_like(labels))):
            output = denoiser(noisy, steps, *data.conditions(rows, ones, labels, mask))
            estimate = schedule.clean_estimate(noisy, k, schedule.noise_from(denoiser.prediction, noisy, k, output))
            result[f"k{k}_{name}"] = progress(inpaint(estimate, first, known))
    return result


def expert_agreement(env, episodes: Dataset, seed: int = 0) -> dict:
    """How expert-like the actions are: the share of (step, agent) pairs whose action equals what the
    env's expert does in that state (uniform random play on CN: 0.2; the imbalanced dataset: ~0.47),
    overall, where the expert does not idle (an idling generator agrees wherever the expert idles),
    per agent and per step of the episode."""
    valid = episodes.transition_mask()
    obs = episodes.obs[valid]
    avail = episodes.avail_actions[valid] if episodes.avail_actions is not None else np.ones(
        (*obs.shape[:2], env.spec.actions), bool)
    expert = env.expert_policy()
    expert.reset(len(obs))
    expert_actions = expert.act(obs, avail, np.random.default_rng([seed, 41]), greedy=True)
    match = expert_actions == episodes.actions[valid]  # [S,N]
    moves = expert_actions != env.spec.idle_action
    longest = int(episodes.lengths.max()) if episodes.episodes else 0
    by_step = np.bincount(np.nonzero(valid)[1], weights=match.mean(1), minlength=longest)
    counts = np.bincount(np.nonzero(valid)[1], minlength=longest)
    return {"overall": float(match.mean()) if len(match) else None,
            "where_expert_moves": float(match[moves].mean()) if moves.any() else None,
            "per_agent": match.mean(0).tolist() if len(match) else None,
            "per_step": (by_step / np.maximum(counts, 1)).tolist(),
            "steps": int(len(match))}


def behaviour(env, episodes: Dataset) -> dict:
    """Quality score of final observations, mean speed, no-op share (the env's ``idle_action``) and
    agreement with the env's expert, for any set of episodes; what the env does not measure (see
    ``codi_kit.envs.probes``) is None."""
    obs, lengths = episodes.obs, episodes.lengths
    final = obs[np.arange(len(lengths)), lengths - 1]
    valid = episodes.transition_mask()
    score, speed = probe(env, QualityScore), probe(env, Speed)
    return {"quality_score": score(final) if score and len(final) else None,
            "mean_speed": float(speed(obs[valid]).mean()) if speed and valid.any() else None,
            "noop_share": float((episodes.actions[valid] == env.spec.idle_action).mean()) if valid.any() else None,
            "expert_agreement": expert_agreement(env, episodes)["overall"] if valid.any() else None}


def conditioning_report(model: DiffusionModel, settings, data: SegmentData, env, starts: np.ndarray, target_return: float,
                        reference: Dataset | None, seed: int) -> dict:
    """What the generate stage records of the trained model before it samples: the consistency
    threshold and return it will use, and the three checks of the conditioning above, on
    ``settings.diagnostics_segments`` segments; the two readings a person needs are said."""
    count = settings.diagnostics_segments
    report = {
        "diffused": model.normaliser.codec.name,
        "consistency_threshold": settings.consistency_threshold or model.consistency_threshold,
        "target_return": target_return * model.normaliser.return_scale, "updates": model.updates,
        "label_sensitivity": label_sensitivity(model, data, count, seed),
        "denoised_progress": denoised_progress(model, data, env, count, seed),
        "probe": goal_probe(model, settings, env, starts, target_return, reference, min(count, 128), seed),
    }
    sensitivity, found = report["label_sensitivity"], report["probe"]
    if sensitivity:
        say(f"denoising loss {sensitivity['loss_correct_labels']:.4f} with the segments' labels, "
            f"{sensitivity['loss_shuffled_labels']:.4f} with shuffled ones")
    if found:
        say(f"goal probe: conditioned agents close on their goals by {found['probe_conditioned_margin']:+.3f} "
            f"± {found['probe_margin_stderr']:.3f} more than the others")
    return report


def generation_report(env, stats, sampled: Dataset, generated: Dataset, dataset: Dataset, expert: Dataset,
                      seconds: dict) -> dict:
    """What generation did (the stitcher's ``stats``), how fast, and how the kept episodes behave
    beside everything sampled, the dataset and the balanced expert."""
    return {
        "generation": stats.summary(), "generated_episodes": generated.episodes,
        "generated_per_second": generated.episodes / max(seconds["generate"], 1e-9),  # episodes or branches
        "imputed_return_mean": float(generated.returns().mean()) if generated.episodes else None,
        "behaviour_generated": behaviour(env, generated),
        "behaviour_sampled": behaviour(env, sampled),
        "behaviour_dataset": behaviour(env, dataset),
        "behaviour_expert": behaviour(env, expert),
        "seconds": seconds,
    }


def shortfall(stitcher) -> str:
    """Why fewer episodes came out than were asked for."""
    stats = stitcher.stats
    return (f"{stats.segments_accepted} of {stats.segments_sampled} sampled segments passed the consistency check "
            f"(delta {stitcher.threshold:.3g}) and {stats.abandoned} trajectories were given up; the denoiser may "
            "need more training (augmenter.train_steps)")
