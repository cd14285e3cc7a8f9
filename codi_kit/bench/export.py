"""Bench results in marl-eval's raw-data layout (instadeepai/marl-eval, README "Data Structure for
Raw Experiment data"): environment -> task -> algorithm -> run -> step_k / absolute_metrics, each
metric a list over evaluation episodes. An offline learner is evaluated once, after training, so
every run has one step (``step_count``: the learner's update steps) and the same absolute metrics."""
from __future__ import annotations

from pathlib import Path

from codi_kit.run.atomic import write_json


def marl_eval(records: list[dict]) -> dict:
    data: dict = {}
    for record in records:
        if record["status"] != "ok":
            continue
        results = record["results"]
        environment, _, task = record["env"].partition("/")
        task = (task or environment) + (f"_n{record['agents']}" if record["agents"] is not None else "")
        algorithm = f"{record['learner']}+{record['augmenter']}"  # a learner on one augmenter's data
        returns = results.get("episode_returns") or [results["return_mean"]]  # runs from before per-episode returns
        span = results["R_hi"] - results["R_lo"]
        metrics = {"episode_return": returns, "normalized_return": [(r - results["R_lo"]) / span for r in returns]}
        run = {"step_0": {"step_count": int(results.get("learner_steps") or 0), **metrics}, "absolute_metrics": metrics}
        data.setdefault(environment, {}).setdefault(task, {}).setdefault(algorithm, {})[f"seed_{record['seed']}"] = run
    return data


def write_marl_eval(records: list[dict], path: Path) -> None:
    write_json(path, marl_eval(records))
