"""BC's two networks at the standard budget: the MLP on the current observation against the
authors' recurrent agent (GRU over the episode, last action and agent id), on one dataset.

    python benchmarks/learner_network.py --dataset DATA.npz [--root DIR] [--steps 20000]

Each is an ordinary ``codi-kit run --augmenter none --learner bc`` into ``--root/<network>``
(rerunning reuses what is there), evaluated every 5000 updates on 100 training-evaluation
episodes and at the end on the profile's 200. Writes benchmarks/results/NAME.json.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).parent))
from common import save  # noqa: E402


@click.command()
@click.option("--dataset", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--root", default="benchmarks/runs/learner-network", show_default=True, type=click.Path(file_okay=False))
@click.option("--steps", default=20000, show_default=True)
@click.option("--name", default="learner-network", show_default=True)
def main(dataset, root, steps, name):
    rows = []
    for network in ("mlp", "gru"):
        out = Path(root) / network
        subprocess.run(["codi-kit", "run", "--dataset", dataset, "--augmenter", "none", "--learner", "bc", "--quiet",
                        "--set", f'learner.network="{network}"', "--set", f"learner.steps={steps}",
                        "--set", "learner.log_every=1000", "--set", "learner.evaluate_every=5000",
                        "--set", "learner.evaluate_episodes=100", "--out", str(out)], check=True)
        results = json.loads((out / "results.json").read_text())
        metrics = out / results["artifacts"]["learn"] / "metrics.jsonl"
        records = [json.loads(line) for line in metrics.read_text().splitlines()]
        rows.append({"network": network, "normalized_return": results["normalized_return"],
                     "learn_seconds": results["timings"]["learn"] or json.loads(
                         (out / results["artifacts"]["learn"] / "meta.json").read_text())["seconds"],
                     "settings": results["learner_settings"],
                     "curve": [{k: r[k] for k in ("step", "validation_loss", "eval_normalized_return") if k in r}
                               for r in records if "step" in r],
                     "best": next((r for r in records if "best_step" in r), None)})
    save(name, {"dataset": dataset, "steps": steps, "rows": rows})


if __name__ == "__main__":
    main()
