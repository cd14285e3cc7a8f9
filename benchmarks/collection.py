"""Collection speed and protocol returns per bundled environment.

    python benchmarks/collection.py [--episodes 200]

Writes benchmarks/results/collection.json: episodes per second and the mean team return (and per
agent, and the win rate where the env has one) of the balanced, imbalanced and random protocols, for
mpe/cn at 3, 4, 5 agents, mpe/world, smax/3m and smax/zerg_3v4 (``--env`` picks some).
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
from codi_kit.data.collect import PROTOCOLS, collect  # noqa: E402
from codi_kit.envs.probes import WinRate, probe  # noqa: E402
from codi_kit.progress import set_quiet  # noqa: E402

CASES = [("mpe/cn", {"agents": 3}), ("mpe/cn", {"agents": 4}), ("mpe/cn", {"agents": 5}), ("mpe/world", {}),
         ("smax/3m", {}), ("smax/zerg_3v4", {})]


@click.command()
@click.option("--episodes", default=200, show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--env", "only", multiple=True, help="only these envs (repeatable); default all")
@click.option("--name", default="collection", show_default=True, help="results file name")
def main(episodes, seed, only, name):
    set_quiet(True)
    rows = []
    table = Table(title=f"collection, {episodes} episodes per protocol")
    for column in ("env", "settings", "protocol", "team return", "per agent", "win rate", "episodes/s"):
        table.add_column(column)
    for env_name, settings in [c for c in CASES if not only or c[0] in only]:
        env = plugins.configure(plugins.lookup("env", env_name), settings)
        wins = probe(env, WinRate)
        collect(env, "random", min(episodes, 100), seed)  # warm up outside the timing: JAX envs compile per batch shape
        for protocol in PROTOCOLS:
            started = time.perf_counter()
            returns = collect(env, protocol, episodes, seed).returns()
            seconds = time.perf_counter() - started
            row = {"env": env_name, "settings": settings, "protocol": protocol, "episodes": episodes,
                   "return_mean": float(returns.mean()), "return_std": float(returns.std()),
                   "return_per_agent": float(returns.mean() / env.spec.agents),
                   "win_rate": wins(returns) if wins else None, "episodes_per_second": episodes / seconds}
            rows.append(row)
            table.add_row(env_name, str(settings), protocol, f"{row['return_mean']:.2f} ± {row['return_std']:.2f}",
                          f"{row['return_per_agent']:.2f}", "-" if wins is None else f"{row['win_rate']:.2f}",
                          f"{row['episodes_per_second']:.1f}")
        env.close()
    Console().print(table)
    save(name, {"episodes": episodes, "seed": seed, "rows": rows})


if __name__ == "__main__":
    main()
