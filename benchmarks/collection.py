"""Collection speed and protocol returns per bundled environment.

    python benchmarks/collection.py [--episodes 200]

Writes benchmarks/results/collection.json: episodes per second and the mean team return (and per
agent) of the balanced, imbalanced and random protocols, for mpe/cn at 3, 4, 5 agents and mpe/world.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from common import save  # noqa: E402

from codi_kit import plugins  # noqa: E402
from codi_kit.collect import PROTOCOLS, collect  # noqa: E402
from codi_kit.progress import set_quiet  # noqa: E402

CASES = [("mpe/cn", {"agents": 3}), ("mpe/cn", {"agents": 4}), ("mpe/cn", {"agents": 5}), ("mpe/world", {})]


@click.command()
@click.option("--episodes", default=200, show_default=True)
@click.option("--seed", default=0, show_default=True)
def main(episodes, seed):
    set_quiet(True)
    rows = []
    table = Table(title=f"collection, {episodes} episodes per protocol")
    for column in ("env", "settings", "protocol", "team return", "per agent", "episodes/s"):
        table.add_column(column)
    for name, settings in CASES:
        env = plugins.configure(plugins.lookup("env", name), settings)
        for protocol in PROTOCOLS:
            started = time.perf_counter()
            returns = collect(env, protocol, episodes, seed).returns()
            seconds = time.perf_counter() - started
            row = {"env": name, "settings": settings, "protocol": protocol, "episodes": episodes,
                   "return_mean": float(returns.mean()), "return_std": float(returns.std()),
                   "return_per_agent": float(returns.mean() / env.spec.agents), "episodes_per_second": episodes / seconds}
            rows.append(row)
            table.add_row(name, str(settings), protocol, f"{row['return_mean']:.2f} ± {row['return_std']:.2f}",
                          f"{row['return_per_agent']:.2f}", f"{row['episodes_per_second']:.1f}")
        env.close()
    Console().print(table)
    save("collection", {"episodes": episodes, "seed": seed, "rows": rows})


if __name__ == "__main__":
    main()
