"""Evaluate a joint policy by rollouts: raw and normalised team return, mean and std."""
from __future__ import annotations

import numpy as np

from codi_kit.data.collect import Normalization
from codi_kit.env import EnvAdapter
from codi_kit.policy import Policy
from codi_kit.envs.probes import QualityScore, WinRate, probe
from codi_kit.envs.rollout import rollout

EVALUATION_STREAM = 2
TRAINING_EVALUATION_STREAM = 3  # periodic evaluation during training never sees the final test episodes


def evaluate(env: EnvAdapter, policy: Policy, episodes: int, seed: int, normalization: Normalization,
             greedy: bool = True, stream: int = EVALUATION_STREAM) -> dict:
    """Greedy (argmax over available actions) by default; ``greedy=False`` samples."""
    episodes_data = rollout(env, lambda first, count: policy, episodes, seed, stream=stream,
                            greedy=greedy, description="evaluate")
    returns = episodes_data.returns()
    normalized = normalization(returns)
    final = episodes_data.obs[np.arange(episodes), episodes_data.lengths - 1]
    score, wins = probe(env, QualityScore), probe(env, WinRate)
    return {
        "episodes": episodes,
        "greedy": greedy,
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "return_per_agent_mean": float(returns.mean() / env.spec.agents),
        "normalized_return": float(normalized.mean()),
        "normalized_return_std": float(normalized.std()),
        "quality_score": score(final) if score else None,
        "win_rate": wins(returns) if wins else None,
        "R_lo": normalization.R_lo,
        "R_hi": normalization.R_hi,
        "returns": returns.tolist(),  # per episode, for tools that want the distribution (marl-eval)
    }
