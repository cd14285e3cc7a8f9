"""How good is a trained generator, before any learner runs? CN N=3, imbalanced data.

    python benchmarks/generator.py [--profile quick] [--seed 0] [--labeler privileged] [--set augmenter.k=v ...]

Trains (or reuses, through the stage cache) the augmenter's model on the benchmark dataset, then
generates ``--episodes`` episodes through the real generation path (from real initial states, or
branching off every real step when ``augmenter.branch_length`` > 0, then also whole episodes from
initial states as the compounding reference) and reports, against the env's scripted expert in
the generated states: agreement overall, per step and per agent; no-op share, speed, goal
progress per agent, consistency error and acceptance; the same under "only agent 0 is good" (the
probe). As a reference, a z-conditioned classifier p(a_i | o_i, z_i) on each agent's own
observation, trained on the same data and labels (cross-entropy, ~30 s), is measured at real states and rolled out through the same model's f_fwd
for as many steps, so compounding error has a reference too. Writes
benchmarks/results/NAME.json and prints a table.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click
import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).parent))
from common import save  # noqa: E402

from codi_kit.run.config import build_config  # noqa: E402
from codi_kit.data.dataset import Dataset  # noqa: E402
from codi_kit.diffusion import diagnostics  # noqa: E402
from codi_kit.diffusion.augmenter import starting_points  # noqa: E402
from codi_kit.diffusion.model import DiffusionModel  # noqa: E402
from codi_kit.diffusion.stitch import Stitcher  # noqa: E402
from codi_kit.learners.nets import mlp  # noqa: E402
from codi_kit.run.pipeline import Pipeline  # noqa: E402
from codi_kit.envs.probes import GoalDistance, probe  # noqa: E402
from codi_kit.progress import set_quiet  # noqa: E402


def measure(env, episodes: Dataset) -> dict:
    """Agreement with the expert (overall, per step, per agent), no-op share, speed, goal progress."""
    agreement = diagnostics.expert_agreement(env, episodes)
    result = {"agreement": agreement["overall"], "agreement_first_step": agreement["per_step"][0],
              "agreement_per_step": agreement["per_step"], "agreement_per_agent": agreement["per_agent"],
              **{k: v for k, v in diagnostics.behaviour(env, episodes).items() if k != "expert_agreement"}}
    goal = probe(env, GoalDistance)
    if goal is not None:
        final = episodes.obs[np.arange(episodes.episodes), episodes.lengths - 1]
        result["goal_progress_per_agent"] = (goal(episodes.obs[:, 0]) - goal(final)).mean(0).tolist()
    return result


class LabelConditionedClassifier(nn.Module):
    """The reference: p(a_i | o_i, agent i, z_i, mask_i) from each agent's own observation, one
    network shared by the agents (measured stronger than the same network on the joint state)."""

    def __init__(self, observation: int, agents: int, actions: int, hidden: int = 256):
        super().__init__()
        self.agents = agents
        self.body = mlp(observation + agents + 2, hidden, 3, actions)

    def forward(self, observations, labels, mask):  # [B,N,O] normalised, [B,N], [B,N] -> logits [B,N,K]
        ids = torch.eye(self.agents, device=observations.device).expand(observations.shape[0], -1, -1)
        return self.body(torch.cat([observations, ids, (labels * mask)[..., None], mask[..., None]], -1))


def normalised_observations(model: DiffusionModel, obs: np.ndarray) -> torch.Tensor:
    normaliser = model.normaliser
    return (torch.as_tensor(obs) - normaliser.observation_mean) / normaliser.observation_std


def train_classifier(model: DiffusionModel, dataset: Dataset, labels, seed: int, steps: int, label_dropout: float):
    """Cross-entropy on every real step, each labelled with the z of the labelled segment starting there
    (or the episode's last one), label dimensions dropped with the diffusion model's rate."""
    valid = dataset.step_mask()
    episode, step = np.nonzero(valid)
    row = np.full(valid.shape, -1)
    row[labels.segments[:, 0], labels.segments[:, 1]] = np.arange(len(labels.segments))
    rows = row[episode, np.minimum(step, np.maximum(dataset.lengths[episode] - labels.horizon, 0))]
    keep = rows >= 0
    observations = normalised_observations(model, dataset.obs[episode[keep], step[keep]])
    actions = torch.as_tensor(dataset.actions[episode[keep], step[keep]])
    z = torch.as_tensor(labels.z[rows[keep]])
    torch.manual_seed(seed)
    classifier = LabelConditionedClassifier(observations.shape[-1], dataset.agents, model.architecture.actions)
    optimizer = torch.optim.Adam(classifier.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        picked = torch.randint(0, len(observations), (512,), generator=generator)
        mask = (torch.rand(512, dataset.agents, generator=generator) >= label_dropout).float()
        logits = classifier(observations[picked], z[picked], mask)
        loss = F.cross_entropy(logits.flatten(0, 1), actions[picked].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return classifier.eval()


@torch.no_grad()
def classifier_reference(env, model: DiffusionModel, classifier, dataset: Dataset, starts, count: int, seed: int) -> dict:
    """The classifier's greedy actions at real states ("all good" and labels masked), and rolled out
    from real initial states through the diffusion model's f_fwd for the episode length."""
    agents = dataset.agents
    valid = dataset.step_mask()
    observations = normalised_observations(model, dataset.obs[valid])
    good, none = torch.ones(len(observations), agents), torch.zeros(len(observations), agents)
    result = {}
    for name, mask in (("real_states_all_good", good), ("real_states_masked", none)):
        acted = dataset.select(slice(None))
        acted.actions = acted.actions.copy()
        acted.actions[valid] = classifier(observations, good, mask).argmax(-1).numpy()
        result[name] = diagnostics.expert_agreement(env, acted)["overall"]
    rng = np.random.default_rng([seed, 43])
    state = torch.as_tensor(starts[rng.integers(len(starts), size=count)])
    ones = torch.ones(count, agents)
    states, actions = [state], []
    for _ in range(dataset.padded_length):
        actions.append(classifier(model.normaliser.observation_input(states[-1]), ones, ones).argmax(-1))
        states.append(model.dynamics.predict_next(states[-1], actions[-1]))
    obs = model.normaliser.observations(torch.stack(states[:-1], 1))
    rolled = Dataset(obs=obs, actions=torch.stack(actions, 1).numpy(), rewards=np.zeros(obs.shape[:2], np.float32),
                     lengths=np.full(count, dataset.padded_length, np.int64))
    result["rolled_out_through_f_fwd"] = measure(env, rolled)
    return result


@click.command()
@click.option("--profile", default="quick", show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--augmenter", default="codi", show_default=True)
@click.option("--labeler", default="privileged", show_default=True)
@click.option("--episodes", default=512, show_default=True)
@click.option("--classifier-steps", default=3000, show_default=True)
@click.option("--set", "overrides", multiple=True)
@click.option("--root", default="benchmarks/runs", show_default=True, type=click.Path(file_okay=False))
@click.option("--name", default="generator", show_default=True)
def main(profile, seed, augmenter, labeler, episodes, classifier_steps, overrides, root, name):
    set_quiet(True)
    root = Path(root)
    dataset_file = root / f"cn3-imbalanced-{profile}.npz"
    if not dataset_file.exists():
        from codi_kit.cli import main as cli

        cli(["collect", "--profile", profile, "--seed", "0", "--out", str(dataset_file), "--quiet"], standalone_mode=False)
    config = build_config(profile, overrides=[f"collect.dataset={json.dumps(str(dataset_file))}", *overrides],
                          **{"augmenter.name": augmenter, "labeler.name": labeler, "seed": seed, "device": "cpu"})
    pipeline = Pipeline(config, root / f"generator-s{seed}")
    try:
        trained = pipeline.train()
        env, settings, dataset = pipeline.env, pipeline.augmenter.config, pipeline.dataset()
        model = DiffusionModel.load(trained.folder, env, torch.device("cpu"))
        starts, targets = starting_points(model, dataset, settings.target_return_quantile, settings.branch_length > 0)
        rows = {"dataset": measure(env, dataset), "expert": measure(env, pipeline.references().expert)}
        seconds = {"train": trained.meta()["seconds"]}
        initial, initial_targets = starting_points(model, dataset, settings.target_return_quantile)
        variants = [("all_good", None, settings.branch_length), ("agent_0_good", [0], settings.branch_length)]
        if settings.branch_length:  # the compounding reference: whole episodes from initial states
            variants.append(("all_good_whole_episodes", None, 0))
        for probe_name, good, branch in variants:
            started = time.perf_counter()
            stitcher = Stitcher(model, settings, starts if branch else initial, targets if branch else initial_targets,
                                seed, good)
            generated = stitcher.generate(episodes, dataset, branch)
            seconds[probe_name] = time.perf_counter() - started
            rows[probe_name] = {**measure(env, generated), "generation": stitcher.stats.summary()}
        started = time.perf_counter()
        labels = pipeline.labels()
        if labels is not None:
            classifier = train_classifier(model, dataset, labels, seed, classifier_steps, settings.label_dropout)
            rows["classifier"] = classifier_reference(env, model, classifier, dataset, initial, episodes, seed)
        seconds["classifier"] = time.perf_counter() - started
    finally:
        pipeline.close()

    table = Table(title=f"generator on imbalanced mpe/cn (N=3), {augmenter}, {labeler} labels, profile {profile}, seed {seed}")
    for column in ("episodes", "agreement", "first step", "last step", "per agent", "no-op", "speed", "accept"):
        table.add_column(column)
    shown = {k: v for k, v in rows.items() if k != "classifier"}
    if "classifier" in rows:
        shown["classifier rolled through f_fwd"] = rows["classifier"]["rolled_out_through_f_fwd"]
    for label, row in shown.items():
        table.add_row(label, f"{row['agreement']:.3f}", f"{row['agreement_first_step']:.3f}",
                      f"{row['agreement_per_step'][-1]:.3f}", " ".join(f"{a:.2f}" for a in row["agreement_per_agent"]),
                      f"{row['noop_share']:.2f}", f"{row['mean_speed']:.2f}",
                      f"{row['generation']['acceptance_rate']:.2f}" if "generation" in row else "")
    Console().print(table)
    if "classifier" in rows:
        Console().print(f"classifier at real states: all good {rows['classifier']['real_states_all_good']:.3f}, "
                        f"labels masked {rows['classifier']['real_states_masked']:.3f}")
    save(name, {"profile": profile, "seed": seed, "augmenter": augmenter, "labeler": labeler, "episodes": episodes,
                "overrides": list(overrides), "train_diagnostics": trained.meta()["diagnostics"], "rows": rows,
                "seconds": seconds})


if __name__ == "__main__":
    main()
