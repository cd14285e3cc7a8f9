"""BC on all-expert (balanced) CN data, normalised against the imbalanced dataset's R_lo and the
expert's R_hi: the learners issue's check that bc can reach the expert (target >= 0.7).

    python benchmarks/balanced_bc.py [--episodes 2000] [--steps 20000] [--seeds 0]

Writes benchmarks/results/balanced_bc.json.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import save  # noqa: E402

from codi_kit import plugins  # noqa: E402
from codi_kit.data.collect import collect, collect_with_references  # noqa: E402
from codi_kit.run.config import build_config  # noqa: E402
from codi_kit.data.dataset import Dataset  # noqa: E402
from codi_kit.run.pipeline import Pipeline  # noqa: E402
from codi_kit.progress import set_quiet  # noqa: E402


@click.command()
@click.option("--episodes", default=2000, show_default=True)
@click.option("--steps", default=20000, show_default=True)
@click.option("--seeds", default="0", show_default=True)
@click.option("--root", default="benchmarks/runs", show_default=True)
def main(episodes, steps, seeds, root):
    set_quiet(True)
    root = Path(root)
    reference_file = root / f"cn3-imbalanced-e{episodes}.npz"
    balanced_file = root / f"cn3-balanced-e{episodes}.npz"
    if not balanced_file.exists():
        env = plugins.configure(plugins.lookup("env", "mpe/cn"), {})
        reference = Dataset.load(reference_file) if reference_file.exists() else collect_with_references(env, "imbalanced", episodes, 0)
        balanced = collect(env, "balanced", episodes, 0, stream=4)
        balanced.meta["normalization"] = reference.meta["normalization"]  # R_lo of the imbalanced data
        balanced.save(balanced_file)
    runs = []
    for seed in map(int, seeds.split(",")):
        config = build_config("quick", overrides=[f"collect.dataset={json.dumps(str(balanced_file))}", f"learner.steps={steps}"],
                              **{"learner.name": "bc", "seed": seed, "device": "cpu"})
        pipeline = Pipeline(config, root / f"balanced-bc-s{seed}")
        try:
            results = pipeline.report()
        finally:
            pipeline.close()
        runs.append({"seed": seed, "normalized_return": results["normalized_return"], "return_mean": results["return_mean"],
                     "R_lo": results["R_lo"], "R_hi": results["R_hi"]})
    values = [r["normalized_return"] for r in runs]
    save("balanced_bc", {"episodes": episodes, "steps": steps, "runs": runs,
                         "normalized_return_mean": float(np.mean(values)), "normalized_return_std": float(np.std(values))})


if __name__ == "__main__":
    main()
