"""Agent-quality labels (paper section 3.1): a teacher names the best agent of segments, and
every segment gets a soft label vector z over agents."""
from __future__ import annotations

import abc
from pathlib import Path

import attrs
import numpy as np

from codi_kit.run.atomic import write_json
from codi_kit.context import NoSettings, StageContext
from codi_kit.data.dataset import Dataset
from codi_kit.errors import CodiKitError
from codi_kit.progress import warn
from codi_kit.labels.student import QualityStudent, StudentConfig, distill, soft_labels


@attrs.frozen
class LabelRequest:
    dataset: Dataset
    segments: np.ndarray  # [M,2] (episode, start) of the segments to answer
    horizon: int
    context: StageContext
    text_converter: object | None = None  # the env's converter, for teachers that read text

    def prompts(self, style: str = "timeline") -> list[str]:
        """One prompt per asked segment, from the environment's text converter: its ``prompt``
        (the paper's per-step timelines) or, for ``style="compact"``, its ``compact_prompt``
        when it has one (a short per-agent summary for small local models)."""
        if self.text_converter is None:
            raise CodiKitError(f"env '{self.context.env.spec.name}' has no text converter; a plugin must register "
                               "one under the env's name with register_text_converters")
        write = self.text_converter.prompt
        if style == "compact":
            write = getattr(self.text_converter, "compact_prompt", None)
            if write is None:
                warn(f"the text converter of '{self.context.env.spec.name}' has no compact_prompt; the teacher "
                     "reads its full prompt")
                write = self.text_converter.prompt
        obs = self.dataset.segments("obs", self.segments, self.horizon)
        actions = self.dataset.segments("actions", self.segments, self.horizon)
        return [write(o, a) for o, a in zip(obs, actions)]


@attrs.frozen
class Answers:
    best_agent: np.ndarray  # [M] int64, -1 where the teacher named no agent
    confidence: np.ndarray | None = None  # [M] float32 in [0,1], when the teacher has one
    stats: dict = attrs.field(factory=dict)  # calls, tokens, cache hits, failures, ...
    # [M] bool: where best_agent is -1 because the teacher judged the segment and no agent stands
    # out, as opposed to no judgement at all (a failed call, a reply naming no agent). None: every
    # -1 is a judgement (the rule judges, the privileged labeler).
    judged_none: np.ndarray | None = None

    def cannot_tell(self) -> np.ndarray:
        """[M] bool: the segments the teacher judged and found no agent standing out."""
        unnamed = self.best_agent < 0
        return unnamed if self.judged_none is None else unnamed & self.judged_none


class Labeler(abc.ABC):
    """A teacher. ``ground_truth = True`` marks one that reads privileged data: it is asked
    about every segment and its answers are the labels (the paper's CODI w Pri.)."""

    ground_truth = False

    Config = NoSettings  # subclasses with settings define their own frozen attrs Config

    def __init__(self, config):
        self.config = config

    @abc.abstractmethod
    def answer(self, request: LabelRequest) -> Answers:
        """The best agent of each segment in ``request.segments``."""


@attrs.frozen
class QualityLabels:
    """z for every segment of horizon H, plus what the teacher answered where it was asked."""

    segments: np.ndarray  # [M,2]
    z: np.ndarray  # [M,N] float32, rows sum to 1
    teacher_answers: np.ndarray  # [M] int64, -1 where not asked or not answered
    horizon: int

    def save(self, path) -> None:
        from codi_kit.run.atomic import atomic_path

        with atomic_path(path) as temporary:
            with open(temporary, "wb") as handle:
                np.savez(handle, segments=self.segments, z=self.z, teacher_answers=self.teacher_answers,
                         horizon=np.int64(self.horizon))

    @staticmethod
    def load(path) -> QualityLabels:
        try:
            with np.load(path, allow_pickle=False) as archive:
                return QualityLabels(archive["segments"], archive["z"], archive["teacher_answers"], int(archive["horizon"]))
        except (OSError, KeyError, ValueError) as error:
            raise CodiKitError(f"{path}: not a readable labels file: {error}") from None


def ground_truth_accuracy(dataset: Dataset, segments: np.ndarray, best_agent: np.ndarray) -> float | None:
    """Share of answered segments whose answer is the episode's expert (imbalanced data only)."""
    if dataset.expert_mask is None or not len(segments):
        return None
    answered = best_agent >= 0
    if not answered.any():
        return None
    truth = dataset.expert_mask[segments[answered, 0]]
    single = truth.sum(axis=1) == 1
    if not single.any():
        return None
    return float(truth[single].argmax(axis=1).__eq__(best_agent[answered][single]).mean())


LABEL_OPTIONS = {"pool": ("segment", "episode"), "cannot_tell": ("uniform", "drop")}  # the first is the default


def label_options(settings: dict) -> dict:
    """The ``label`` table's optional choices, each checked and defaulted (the first of its choices)."""
    chosen = {name: settings.get(name, choices[0]) for name, choices in LABEL_OPTIONS.items()}
    for name, value in chosen.items():
        if value not in LABEL_OPTIONS[name]:
            raise CodiKitError(f"label.{name}={value!r}: choose one of {', '.join(LABEL_OPTIONS[name])}")
    return chosen


def label_dataset(labeler: Labeler, dataset: Dataset, horizon: int, teacher_fraction: float,
                  context: StageContext, text_converter=None, student_config: StudentConfig | None = None,
                  pool: str = "segment", cannot_tell: str = "uniform") -> tuple[QualityLabels, dict, QualityStudent | None]:
    """Section 3.1: the teacher names the best agent of a seeded random subset of segments, a
    student is distilled from its answers and labels every segment with a soft z. A ground-truth
    teacher (CODI w Pri.) is asked about every segment and its one-hot answers are the labels.
    ``pool="episode"`` (not the paper's): every segment takes its episode's pooled z, the product
    of the student's z over the episode's segments, for data whose agents keep one quality for a
    whole episode (each agent one policy per episode, as in the imbalanced protocol).
    ``cannot_tell="uniform"`` (the default; not the paper's, which drops them, ``"drop"``): the
    asked segments the teacher judged and found no agent standing out (``Answers.cannot_tell``)
    are distilled towards the uniform z, so the student learns to say "nobody stands out" there
    instead of guessing. Segments the teacher gave no judgement on (an LLM call that failed or a
    reply naming no agent) are dropped under either choice."""
    label_options({"pool": pool, "cannot_tell": cannot_tell})
    segments = dataset.segment_index(horizon)
    if not len(segments):
        raise CodiKitError(f"label.horizon={horizon} is longer than every episode; choose a shorter horizon")
    asked = segments_to_ask(labeler, len(segments), teacher_fraction, context.seed)
    answers = labeler.answer(LabelRequest(dataset, segments[asked], horizon, context, text_converter))
    teacher = np.full(len(segments), -1, np.int64)  # the teacher's best agent, -1 where not asked or not answered
    teacher[asked] = answers.best_agent
    stats = teacher_stats(dataset, segments, asked, answers, horizon)
    if labeler.ground_truth:
        return QualityLabels(segments, one_hot(teacher, dataset.agents), teacher, horizon), stats, None

    check_enough_answers(stats, context)
    unanswered = np.zeros(len(segments), bool)  # asked, and the teacher judged that no agent stands out
    unanswered[asked[answers.cannot_tell()]] = cannot_tell == "uniform"
    student, student_stats = distill(dataset, segments, teacher, horizon, student_config or StudentConfig(),
                                     context.seed, context.device, unanswered)  # GRU+MLP, cross-entropy on the answers
    z = soft_labels(student, dataset, segments, horizon, context.device)  # softmax over agents, every segment
    unasked = np.setdiff1d(np.arange(len(segments)), asked)
    stats.update(student_stats, student_mean_max_z=float(z.max(1).mean()))
    if pool == "episode":
        stats["student_accuracy_per_segment"] = ground_truth_accuracy(dataset, segments, z.argmax(1))
        z = pooled_by_episode(z, segments[:, 0])
    stats["student_accuracy"] = ground_truth_accuracy(dataset, segments, z.argmax(1))
    stats["student_accuracy_unasked"] = ground_truth_accuracy(dataset, segments[unasked], z.argmax(1)[unasked])
    return QualityLabels(segments, z, teacher, horizon), stats, student


def pooled_by_episode(z: np.ndarray, episode: np.ndarray) -> np.ndarray:
    """Each segment's z replaced by its episode's: the normalised product of the z of every segment
    of the episode (a sum of log-probabilities, so a confident segment outweighs unsure ones)."""
    logs = np.zeros((int(episode.max()) + 1, z.shape[1]))
    np.add.at(logs, episode, np.log(np.clip(z, 1e-6, 1.0)))
    pooled = np.exp(logs - logs.max(1, keepdims=True))[episode]
    return (pooled / pooled.sum(1, keepdims=True)).astype(np.float32)


def segments_to_ask(labeler: Labeler, count: int, teacher_fraction: float, seed: int) -> np.ndarray:
    """The sorted indices of the segments the teacher answers: a seeded ``teacher_fraction`` of
    them (the paper: under 10%), or every one for a ground-truth teacher."""
    if labeler.ground_truth:
        return np.arange(count)
    if not 0 < teacher_fraction <= 1:
        raise CodiKitError(f"label.teacher_fraction={teacher_fraction}: must lie in (0, 1]")
    asked = max(1, int(round(teacher_fraction * count)))
    return np.sort(np.random.default_rng([seed, 11]).choice(count, asked, replace=False))


def teacher_stats(dataset: Dataset, segments: np.ndarray, asked: np.ndarray, answers: Answers, horizon: int) -> dict:
    """How much the teacher was asked and answered, and how often it named the dataset's expert."""
    return {
        "segments": int(len(segments)),
        "horizon": horizon,
        "teacher_asked": int(len(asked)),
        "teacher_fraction": float(len(asked) / len(segments)),
        "teacher_answered": int((answers.best_agent >= 0).sum()),
        "teacher_unanswered": int((answers.best_agent < 0).sum()),
        "teacher_cannot_tell": int(answers.cannot_tell().sum()),  # of the unanswered, those it judged
        "teacher_accuracy": ground_truth_accuracy(dataset, segments[asked], answers.best_agent),
        **{f"teacher_{k}": v for k, v in answers.stats.items()},
    }


def one_hot(teacher: np.ndarray, agents: int) -> np.ndarray:
    """Ground-truth labels: the named agent's one-hot z, the uninformative uniform z where the
    teacher could not judge."""
    return np.where((teacher >= 0)[:, None], np.eye(agents, dtype=np.float32)[np.maximum(teacher, 0)],
                    np.float32(1.0 / agents))


def check_enough_answers(stats: dict, context: StageContext) -> None:
    """A student needs at least two answers; otherwise the teacher's record is kept beside the
    run's stages and the error names it."""
    if stats["teacher_answered"] < 2:
        report = Path(context.workdir).parent / "label-failure.json"
        write_json(report, stats)
        raise CodiKitError(f"labeler answered {stats['teacher_answered']} of {stats['teacher_asked']} segments: too "
                           f"few to distil a student; its calls, retries and failures are in {report}")
