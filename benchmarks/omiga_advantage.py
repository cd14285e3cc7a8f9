"""Does OMIGA's advantage point at good actions? Imbalanced CN, where the expert is known.

    python benchmarks/omiga_advantage.py --dataset DATA.npz [--updates 10000] [--set alpha=1 ...]

Trains OMIGA's critics and actor (the learner's own update) on a dataset collected by
``codi-kit collect`` (it keeps the expert mask), then, on held-back transitions of the agents
that acted at random, compares the advantage z_i = w_i (Q_i - V_i) / alpha where the random
action happens to be the expert's against where it is not, and measures how often the critic's
greedy action argmax_a Q_i(o_i, a) is the expert's (chance 0.2; the data's behaviour 0.47).
A critic that helps the actor ranks expert actions higher; one that does not explains an OMIGA
no better than cloning. Writes benchmarks/results/NAME.json.
"""
from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import save  # noqa: E402

from codi_kit.run.config import build_config, parse_value  # noqa: E402
from codi_kit.data.dataset import Dataset  # noqa: E402
from codi_kit.run.pipeline import Pipeline  # noqa: E402
from codi_kit.progress import progress_bar, set_quiet  # noqa: E402
from codi_kit.data.replay import transitions  # noqa: E402
from codi_kit_plugins.learners.omiga import OMIGA, OmigaNetworks  # noqa: E402


def critic_report(nets, config, probe, expert_actions, expert_agent) -> dict:
    """Advantage and greedy-Q agreement on the probe transitions, split by who acted."""
    with torch.no_grad():
        z, _, _ = nets.advantage(probe, config)
        greedy_q = nets.q(probe["obs"]).argmax(-1)
        greedy_actor = nets.actor(probe["obs"]).masked_fill(~probe["avail"], -1e9).argmax(-1)
    taken_is_expert = probe["actions"] == expert_actions
    random_agent = ~expert_agent
    z = z.numpy()
    hit, miss = (taken_is_expert & random_agent).numpy(), (~taken_is_expert & random_agent).numpy()
    return {"z_random_agent_expert_action": float(z[hit].mean()), "z_random_agent_other_action": float(z[miss].mean()),
            "z_gap": float(z[hit].mean() - z[miss].mean()),
            "z_expert_agent": float(z[expert_agent.numpy()].mean()), "z_random_agent": float(z[random_agent.numpy()].mean()),
            "greedy_q_agreement": float((greedy_q == expert_actions).float().mean()),
            "greedy_actor_agreement": float((greedy_actor == expert_actions).float().mean()),
            "behaviour_agreement": float(taken_is_expert.float().mean())}


@click.command()
@click.option("--dataset", "path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--updates", default=10000, show_default=True)
@click.option("--every", default=2500, show_default=True, help="Updates between reports.")
@click.option("--seed", default=0, show_default=True)
@click.option("--set", "overrides", multiple=True, help="OMIGA settings, e.g. alpha=1.")
@click.option("--name", default="omiga-advantage", show_default=True)
def main(path, updates, every, seed, overrides, name):
    set_quiet(True)
    torch.manual_seed(seed)
    dataset = Dataset.load(path)
    env_settings = {f"env.{key}": value for key, value in dataset.meta.get("env_settings", {}).items()}
    pipeline = Pipeline(build_config("quick", **{"env.name": dataset.meta["env"], "device": "cpu", **env_settings}),
                        Path("/tmp"))
    env = pipeline.env  # the env the dataset was collected in
    config = OMIGA.Config(**{k: parse_value(v) for k, v in (item.split("=", 1) for item in overrides)})
    order = np.random.default_rng(seed).permutation(dataset.episodes)
    probe_episodes, train_episodes = np.sort(order[:200]), np.sort(order[200:])
    data = transitions(dataset, torch.device("cpu"), train_episodes, actions=env.spec.actions)
    probe_data = transitions(dataset, torch.device("cpu"), probe_episodes, actions=env.spec.actions)
    probe = probe_data.take(torch.arange(len(probe_data)))
    expert_agent = torch.as_tensor(dataset.expert_mask[probe_episodes][probe_data.episode.numpy()])
    expert = env.expert_policy()
    expert.reset(len(probe_data))
    expert_actions = torch.as_tensor(expert.act(probe["obs"].numpy(), probe["avail"].numpy(),
                                                np.random.default_rng(seed), greedy=True))
    nets = OmigaNetworks(env.spec, data.state.shape[-1], config)
    generator = torch.Generator().manual_seed(seed)
    curve = []
    with progress_bar(updates, "omiga critics") as bar:
        for step in range(1, updates + 1):
            losses = nets.update(data.sample(config.batch_size, generator), config)
            bar.advance()
            if step % every == 0:
                curve.append({"step": step, **{k: float(v) for k, v in losses.items()},
                              **critic_report(nets, config, probe, expert_actions, expert_agent)})
                print(curve[-1])
    save(name, {"dataset": str(path), "episodes": dataset.episodes, "seed": seed, "updates": updates,
                "settings": {k: getattr(config, k) for k in ("alpha", "batch_size", "learning_rate", "gamma", "hidden")},
                "curve": curve})


if __name__ == "__main__":
    main()
