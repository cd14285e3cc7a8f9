"""Augmentation on imbalanced CN (N=3 by default): Original, MBTS, MADiff, MADiTS, CODI w/o Com., CODI w Pri., CODI.

    python benchmarks/augment.py [--profile quick] [--seeds 0,1,2] [--learners bc,omiga] [--variants ...] [--agents 3]

Uses one collected dataset (seed 0) for every variant and seed, trains each augmenter per seed
through the real pipeline, then each learner on original + generated data. Reports normalised
return (greedy), the generated data's CN score against the dataset's and the expert's, speed and
no-op share, acceptance rate, the conditioning diagnostics, and wall time per stage; plus the
speed of composed guidance in one batched pass against n+1 sequential passes.
Writes benchmarks/results/augment.json and prints a table.
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

sys.path.insert(0, str(Path(__file__).parent))
from common import save  # noqa: E402

from codi_kit.run.config import build_config  # noqa: E402
from codi_kit.diffusion.denoiser import AgentUnet  # noqa: E402
from codi_kit.diffusion.guidance import agent_conditions, guided_output  # noqa: E402
from codi_kit.run.pipeline import Pipeline  # noqa: E402
from codi_kit.progress import set_quiet  # noqa: E402

VARIANTS = {
    "original": {"augmenter.name": "none"},
    "mbts": {"augmenter.name": "mbts"},
    "madiff": {"augmenter.name": "madiff"},
    "madits": {"augmenter.name": "madits"},
    "codi_without_composition": {"augmenter.name": "codi", "labeler.name": "rule", "set": ["augmenter.compose=false"]},
    "codi_privileged": {"augmenter.name": "codi", "labeler.name": "privileged"},
    "codi": {"augmenter.name": "codi", "labeler.name": "rule"},
}


def guidance_speed(agents=3, batch=256, width=128, repeats=5) -> dict:
    """Seconds per composed prediction: one batched pass vs n+1 separate passes."""
    model = AgentUnet(6 * agents, agents, width).eval()
    x, k = torch.randn(batch, 8, agents, 6 * agents), torch.full((batch,), 10)
    conditions = agent_conditions(torch.rand(batch), agents, weight=1.0, compose=True, use_labels=True)
    zeros = torch.zeros(batch, agents)
    with torch.no_grad():
        guided_output(model, x, k, conditions)
        started = time.perf_counter()
        for _ in range(repeats):
            guided_output(model, x, k, conditions)
        batched = (time.perf_counter() - started) / repeats
        started = time.perf_counter()
        for _ in range(repeats):
            model(x, k, torch.zeros(batch), torch.zeros(batch), zeros, zeros)
            for agent in range(agents):
                mask = torch.zeros(batch, agents)
                mask[:, agent] = 1
                model(x, k, conditions.return_to_go[agent], torch.ones(batch), mask, mask)
        sequential = (time.perf_counter() - started) / repeats
    return {"batched_seconds": batched, "sequential_seconds": sequential, "sequential_over_batched": sequential / batched}


@click.command()
@click.option("--profile", default="quick", show_default=True)
@click.option("--seeds", default="0,1,2", show_default=True)
@click.option("--learners", default="bc,omiga", show_default=True)
@click.option("--variants", default=",".join(VARIANTS), show_default=True)
@click.option("--set", "overrides", multiple=True)
@click.option("--root", default="benchmarks/runs", show_default=True, type=click.Path(file_okay=False))
@click.option("--agents", default=3, show_default=True, help="CN agents (the paper's Figure 4: 3 to 5).")
@click.option("--name", default="augment", show_default=True)
def main(profile, seeds, learners, variants, overrides, agents, root, name):
    set_quiet(True)
    root = Path(root)
    dataset = root / f"cn{agents}-imbalanced-{profile}.npz"
    if not dataset.exists():
        from codi_kit.cli import main as cli

        cli(["collect", "--profile", profile, "--seed", "0", "--out", str(dataset), "--quiet", "--set", f"env.agents={agents}"],
            standalone_mode=False)
    overrides = (f"env.agents={agents}", *overrides)
    rows = []
    table = Table(title=f"augmentation on imbalanced mpe/cn (N={agents}), profile {profile}")
    for column in ("variant", *[f"{l} (norm.)" for l in learners.split(",")], "CN score gen / data / expert",
                   "speed gen / data", "no-op gen", "agreement gen / data", "accept", "label loss gap", "probe margin",
                   "train+generate s"):
        table.add_column(column)
    for variant in variants.split(","):
        spec = dict(VARIANTS[variant])
        extra = spec.pop("set", [])
        per_learner, diagnostics, stage_seconds = {}, [], []
        for learner in learners.split(","):
            values = []
            for seed in map(int, seeds.split(",")):
                config = build_config(profile, overrides=[f"collect.dataset={json.dumps(str(dataset))}", *extra, *overrides],
                                      **spec, **{"learner.name": learner, "seed": seed, "device": "cpu"})
                # one run directory per seed: variants share collect, labels and trained models where
                # they agree (CODI and CODI w/o Com. train one model), learners share generated data
                pipeline = Pipeline(config, root / (f"augment-s{seed}" if agents == 3 else f"augment-n{agents}-s{seed}"))
                try:
                    results = pipeline.report()
                finally:
                    pipeline.close()
                values.append(results["normalized_return"])
                if learner == learners.split(",")[0]:
                    diagnostics.append(results["augment_diagnostics"])
                    stage_seconds.append(sum(pipeline.artifacts[stage].meta()["seconds"] for stage in ("train", "generate")
                                             if pipeline.artifacts.get(stage) is not None))
            per_learner[learner] = {"mean": float(np.mean(values)), "std": float(np.std(values)), "runs": values}
        row = {"variant": variant, "learners": per_learner, "augment_seconds": float(np.mean(stage_seconds)),
               "diagnostics": diagnostics}
        rows.append(row)

        def mean_of(path):
            found = [d for d in diagnostics if d]
            for key in path:
                found = [f.get(key) if isinstance(f, dict) else None for f in found]
            found = [f for f in found if f is not None]
            return float(np.mean(found)) if found else float("nan")

        table.add_row(variant, *[f"{per_learner[l]['mean']:.3f} ± {per_learner[l]['std']:.3f}" for l in learners.split(",")],
                      f"{mean_of(['behaviour_generated', 'quality_score']):.3f} / {mean_of(['behaviour_dataset', 'quality_score']):.3f}"
                      f" / {mean_of(['behaviour_expert', 'quality_score']):.3f}",
                      f"{mean_of(['behaviour_generated', 'mean_speed']):.2f} / {mean_of(['behaviour_dataset', 'mean_speed']):.2f}",
                      f"{mean_of(['behaviour_generated', 'noop_share']):.2f}",
                      f"{mean_of(['behaviour_generated', 'expert_agreement']):.2f} / {mean_of(['behaviour_dataset', 'expert_agreement']):.2f}",
                      f"{mean_of(['generation', 'acceptance_rate']):.2f}",
                      f"{mean_of(['label_sensitivity', 'loss_gap']):.4f}", f"{mean_of(['probe', 'probe_conditioned_margin']):.3f}",
                      f"{row['augment_seconds']:.0f}")
    Console().print(table)
    save(name, {"profile": profile, "agents": agents, "seeds": seeds, "overrides": list(overrides), "rows": rows,
                "guidance_speed": guidance_speed()})


if __name__ == "__main__":
    main()
