"""Is the generated data better than the dataset it augments? A run that would lower the learner
says so.

Augmentation helps a learner when the generated episodes act more like the expert than the data
does (CN, quick: generated 0.63 against the dataset's 0.47, and BC gains); a generator that learned
nothing from its labels makes a blurred copy of the dataset and pulls the learner down (World
before its rule judge was fixed: 0.47 against 0.47, BC 0.72 -> 0.52). The measure is the share of
actions equal to what the env's expert does in the same states or, for an env without an expert,
the env's quality score of final observations.
"""
from __future__ import annotations

from codi_kit.data.dataset import Dataset
from codi_kit.diffusion import diagnostics
from codi_kit.errors import CodiKitError
from codi_kit.envs.probes import QualityScore, probe

MARGIN = 0.01  # below this, "better" is within what two samples of the same data differ by


def compare_with_dataset(env, generated: Dataset, dataset: Dataset) -> dict | None:
    """{measure, generated, dataset, better} or None when the env measures neither."""
    if not generated.episodes:
        return None
    try:
        measure = "expert_agreement"
        values = [diagnostics.expert_agreement(env, part)["overall"] for part in (generated, dataset)]
    except CodiKitError:  # no expert policy: the env's quality score, if it has one
        score = probe(env, QualityScore)
        if score is None:
            return None
        measure = "quality_score"
        values = [score(part.obs[range(part.episodes), part.lengths - 1]) for part in (generated, dataset)]
    if None in values:
        return None
    return {"measure": measure, "generated": float(values[0]), "dataset": float(values[1]),
            "better": bool(values[0] > values[1] + MARGIN)}


def verdict(check: dict | None) -> str | None:
    """One line for the report and the terminal when the generated data is no better; else None."""
    if not check or check["better"]:
        return None
    what = "agreement with the expert" if check["measure"] == "expert_agreement" else "quality score"
    return (f"the generated data is no better than the dataset ({what} {check['generated']:.3f} against "
            f"{check['dataset']:.3f}): training on it is likely to lower the learner")
