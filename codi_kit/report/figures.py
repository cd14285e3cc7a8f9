"""A run's figures, drawn from its stage folders (so ``codi-kit plot RUN`` redraws them later):
the learner's learning curve, a real imbalanced episode beside generated ones (the paper's
Figure 3(a)), and the per-agent quality labels against the ground-truth expert."""
from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np

from codi_kit.data.dataset import Dataset
from codi_kit.labeling import QualityLabels
from codi_kit.envs.probes import DrawEpisode, probe
from codi_kit.report.run_report import plot_learning_curve, pyplot, save_figure

EXAMPLES = 3  # generated episodes drawn beside the real one


@attrs.frozen
class Figure:
    title: str
    file: str  # relative to the run directory
    reading: str  # what it shows, one line


def real_episode(dataset: Dataset) -> int:
    """The first episode with exactly one expert agent (the imbalanced case), else the first."""
    if dataset.expert_mask is not None:
        single = np.flatnonzero(dataset.expert_mask.sum(1) == 1)
        if len(single):
            return int(single[0])
    return 0


def episodes_figure(env, dataset: Dataset, examples: Dataset, path: Path) -> bool:
    """One real episode (its expert marked) beside up to EXAMPLES generated ones; False when the env
    cannot draw or nothing was generated."""
    draw = probe(env, DrawEpisode)
    if draw is None or not examples.episodes:
        return False
    plt = pyplot()
    shown = min(EXAMPLES, examples.episodes)
    figure, axes = plt.subplots(1, 1 + shown, figsize=(3.6 * (1 + shown), 3.8), squeeze=False)
    real = real_episode(dataset)
    expert = dataset.expert_mask[real] if dataset.expert_mask is not None else None
    draw(axes[0][0], dataset.obs[real, : dataset.lengths[real]], expert)
    axes[0][0].set_title(f"real episode {real} (dataset)", fontsize=9)
    for index in range(shown):
        axis = axes[0][1 + index]
        draw(axis, examples.obs[index, : examples.lengths[index]], None)
        axis.set_title(f"generated episode {index}", fontsize=9)
    save_figure(figure, path)
    return True


def labels_figure(labels: QualityLabels, dataset: Dataset, path: Path) -> bool:
    """Per agent, the distribution of its label z_i over segments where it is the episode's expert
    and where it is not; False without ground truth."""
    if dataset.expert_mask is None or not len(labels.z):
        return False
    plt = pyplot()
    agents = labels.z.shape[1]
    figure, axes = plt.subplots(1, agents, figsize=(3.0 * agents, 2.8), squeeze=False, sharey=True)
    expert = dataset.expert_mask[labels.segments[:, 0]]  # [M, N]
    bins = np.linspace(0, 1, 21)
    for agent, axis in enumerate(axes[0]):
        values = labels.z[:, agent]
        axis.hist(values[expert[:, agent]], bins, alpha=0.6, density=True, label="agent is the expert")
        axis.hist(values[~expert[:, agent]], bins, alpha=0.6, density=True, label="agent is not")
        axis.set_title(f"agent {agent}", fontsize=9)
        axis.set_xlabel(f"label z_{agent}")
    axes[0][0].set_ylabel("density over segments")
    axes[0][-1].legend(fontsize=7)
    save_figure(figure, path)
    return True


def examples_of(folder: Path) -> Dataset | None:
    """The generate stage's drawing examples: its examples.npz, or its first whole generated episodes."""
    if (folder / "examples.npz").exists():
        return Dataset.load(folder / "examples.npz")
    if (folder / "generated.npz").exists():
        generated = Dataset.load(folder / "generated.npz")
        if generated.truncated is None or not generated.truncated.any():
            return generated.select(np.arange(min(EXAMPLES, generated.episodes)))
    return None


def stage_folders(root: Path, results: dict) -> dict[str, Path]:
    """Where each stage of a finished run lies: in its run directory, or in the bench's shared
    ``stages/`` folder two levels up (a bench cell)."""
    found = {}
    for stage, name in (results.get("artifacts") or {}).items():
        for folder in (root / name, root.parent.parent / "stages" / name):
            if folder.is_dir():
                found[stage] = folder
                break
    return found


def draw_run_figures(root: Path, results: dict, env, folders: dict[str, Path]) -> list[Figure]:
    """Every figure the run's stages (``folders``: stage -> folder) allow, written into ``root``."""
    found = []
    learned = folders.get("learn")
    if learned is not None and plot_learning_curve(learned / "metrics.jsonl", root / "learning_curve.png",
                                                   f"{results.get('learner')} on {results.get('env')}, original + "
                                                   f"{results.get('augmenter')} data"):
        found.append(Figure("Learning curve", "learning_curve.png",
                            f"The {results.get('learner')} learner's losses per update step, on the original data and "
                            f"{results.get('augmenter')}'s."))
    collected = folders.get("collect")
    dataset = Dataset.load(collected / "dataset.npz") if collected is not None else None
    generated = folders.get("generate")
    examples = examples_of(generated) if generated is not None else None
    if dataset is not None and examples is not None and episodes_figure(env, dataset, examples, root / "episodes.png"):
        found.append(Figure("A real episode and generated ones (Figure 3(a))", "episodes.png",
                            "Left: a real episode of the imbalanced dataset, its expert solid and the others dashed; "
                            f"right: whole episodes {results.get('augmenter')} generates from real initial states with "
                            "every agent conditioned good (circle: start, triangle: end)."))
    labelled = folders.get("label")
    if dataset is not None and labelled is not None and (labelled / "labels.npz").exists() and labels_figure(
            QualityLabels.load(labelled / "labels.npz"), dataset, root / "labels.png"):
        found.append(Figure("Quality labels against the ground truth", "labels.png",
                            "Per agent, the labels z_i the diffusion model is conditioned on, over segments where that "
                            "agent is the episode's expert and where it is not: apart is good."))
    return found
