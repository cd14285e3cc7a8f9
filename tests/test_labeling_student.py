"""Rule teacher on 10% of segments, GRU student distilled from it, z for every segment."""
import numpy as np
import pytest
import torch

from codi_kit import plugins
from codi_kit.data.collect import collect
from codi_kit.context import StageContext
from codi_kit.errors import CodiKitError
from codi_kit.labeling import Answers, LabelRequest, Labeler, label_dataset, pooled_by_episode
from codi_kit.labels.student import QualityStudent, StudentConfig


@pytest.fixture(scope="module")
def imbalanced_300(cn_env):
    return collect(cn_env, "imbalanced", 300, seed=4)


def test_student_from_rule_teacher_beats_085_against_ground_truth(imbalanced_300, cn_env, tmp_path):
    teacher = plugins.configure(plugins.lookup("labeler", "rule"), {})
    context = StageContext(0, torch.device("cpu"), tmp_path, cn_env)
    labels, stats, student = label_dataset(teacher, imbalanced_300, 8, 0.1, context,
                                           student_config=StudentConfig(steps=400, evaluate_every=50))
    assert stats["teacher_asked"] == round(0.1 * stats["segments"])  # never more than asked
    assert (labels.teacher_answers >= 0).sum() == stats["teacher_asked"]
    assert stats["teacher_accuracy"] > 0.8
    assert stats["student_accuracy"] >= 0.85, stats
    assert stats["student_holdout_accuracy"] is not None
    np.testing.assert_allclose(labels.z.sum(1), 1.0, rtol=1e-5)
    assert labels.z.shape == (stats["segments"], 3) and isinstance(student, QualityStudent)


def test_student_is_permutation_equivariant_over_agents():
    torch.manual_seed(0)
    student = QualityStudent(obs_dim=6, actions=5, hidden=8)
    obs, actions = torch.randn(4, 5, 3, 6), torch.randint(0, 5, (4, 5, 3))
    order = torch.tensor([2, 0, 1])
    torch.testing.assert_close(student(obs[:, :, order], actions[:, :, order]), student(obs, actions)[:, order])


def test_teacher_subset_is_seeded_and_bounded(imbalanced_300, cn_env, tmp_path):
    teacher = plugins.configure(plugins.lookup("labeler", "rule"), {})
    asked = []
    for _ in range(2):
        context = StageContext(3, torch.device("cpu"), tmp_path, cn_env)
        labels, stats, _ = label_dataset(teacher, imbalanced_300, 8, 0.05, context,
                                         student_config=StudentConfig(steps=5))
        asked.append(np.flatnonzero(labels.teacher_answers >= 0))
    np.testing.assert_array_equal(asked[0], asked[1])
    assert len(asked[0]) == round(0.05 * stats["segments"])


def test_student_stops_once_its_holdout_accuracy_stalls(imbalanced_300, cn_env, tmp_path):
    """Early stopping: ``patience`` evaluations without a better holdout accuracy end distillation,
    and the labels come from the best evaluation's weights."""
    teacher = plugins.configure(plugins.lookup("labeler", "rule"), {})
    context = StageContext(0, torch.device("cpu"), tmp_path, cn_env)
    config = StudentConfig(steps=3000, evaluate_every=20, patience=3)
    _, stats, _ = label_dataset(teacher, imbalanced_300, 8, 0.1, context, student_config=config)
    assert stats["student_steps"] == stats["student_best_step"] + 3 * 20 < 3000, stats


def test_episode_pooling_gives_each_episode_the_product_of_its_segments_z():
    z = np.array([[0.6, 0.4], [0.9, 0.1], [0.3, 0.7], [0.2, 0.8]], np.float32)
    episode = np.array([0, 0, 0, 1])
    pooled = pooled_by_episode(z, episode)
    product = z[:3].prod(0)
    np.testing.assert_allclose(pooled[:3], np.broadcast_to(product / product.sum(), (3, 2)), rtol=1e-5)
    np.testing.assert_allclose(pooled[3], z[3], rtol=1e-5)  # one segment: its own z


def test_episode_pooled_labels_are_one_z_per_episode_and_report_both_accuracies(imbalanced_300, cn_env, tmp_path):
    teacher = plugins.configure(plugins.lookup("labeler", "rule"), {})
    context = StageContext(0, torch.device("cpu"), tmp_path, cn_env)
    labels, stats, _ = label_dataset(teacher, imbalanced_300, 8, 0.1, context,
                                     student_config=StudentConfig(steps=200, evaluate_every=50), pool="episode")
    for episode in np.unique(labels.segments[:, 0])[:20]:
        rows = labels.z[labels.segments[:, 0] == episode]
        np.testing.assert_allclose(rows, np.broadcast_to(rows[0], rows.shape), rtol=1e-6)
    assert stats["student_accuracy_per_segment"] is not None and stats["student_accuracy"] is not None
    with pytest.raises(CodiKitError, match="label.pool='steps'"):
        label_dataset(teacher, imbalanced_300, 8, 0.1, context, pool="steps")


class _SometimesSure(Labeler):
    """Names the expert on one asked segment in five; "cannot tell" (-1) on the others."""

    def answer(self, request: LabelRequest) -> Answers:
        expert = request.dataset.expert_mask[request.segments[:, 0]].argmax(1)
        return Answers(np.where(np.arange(len(expert)) % 5 == 0, expert, -1))


def test_cannot_tell_uniform_distils_the_unanswered_segments_towards_the_uniform_z(imbalanced_300, cn_env, tmp_path):
    context = StageContext(0, torch.device("cpu"), tmp_path, cn_env)
    config = StudentConfig(steps=300, evaluate_every=50, patience=0)
    runs = {form: label_dataset(_SometimesSure(None), imbalanced_300, 8, 0.5, context, student_config=config,
                                cannot_tell=form)[1] for form in ("drop", "uniform")}
    unanswered = runs["uniform"]["teacher_unanswered"]
    assert runs["drop"]["student_trained_on_cannot_tell"] == 0 < unanswered
    assert runs["uniform"]["student_trained_on_cannot_tell"] == unanswered
    # four in five targets are uniform: the student's z gets far less sure than one fitted on the names alone
    assert runs["uniform"]["student_mean_max_z"] < runs["drop"]["student_mean_max_z"] - 0.15, runs
    with pytest.raises(CodiKitError, match="label.cannot_tell='skip'"):
        label_dataset(_SometimesSure(None), imbalanced_300, 8, 0.5, context, cannot_tell="skip")


class _SometimesSilent(_SometimesSure):
    """As _SometimesSure, but half its -1s are no judgement at all (a failed call, say)."""

    def answer(self, request: LabelRequest) -> Answers:
        named = super().answer(request).best_agent
        return Answers(named, judged_none=np.arange(len(named)) % 2 == 0)


def test_only_the_segments_the_teacher_judged_are_distilled_towards_uniform(imbalanced_300, cn_env, tmp_path):
    context = StageContext(0, torch.device("cpu"), tmp_path, cn_env)
    config = StudentConfig(steps=20, evaluate_every=10, patience=0)
    stats = label_dataset(_SometimesSilent(None), imbalanced_300, 8, 0.5, context, student_config=config)[1]  # default: uniform
    judged = stats["teacher_cannot_tell"]
    assert 0 < judged < stats["teacher_unanswered"]
    assert stats["student_trained_on_cannot_tell"] == judged
