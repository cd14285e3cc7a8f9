"""The staged pipeline collect -> label -> train -> generate -> learn -> evaluate -> report over a run directory."""
from __future__ import annotations

import copy
import hashlib
import time
from pathlib import Path
from typing import Callable

import attrs
import numpy as np
import torch

from codi_kit.data import collect as collection
from codi_kit import plugins
from codi_kit.run.artifacts import Artifact, RunDirectory, stage_key
from codi_kit.run.atomic import write_json
from codi_kit.augment import FitRequest, GenerateRequest
from codi_kit.data.collect import References, normalization_of
from codi_kit.run.config import plugin_settings
from codi_kit.context import StageContext
from codi_kit.data.dataset import Dataset, check_action_indices, check_import
from codi_kit.data.parts import DatasetParts
from codi_kit.errors import CodiKitError, DatasetError
from codi_kit.envs.evaluate import evaluate
from codi_kit.report.generated_check import compare_with_dataset, verdict
from codi_kit.labeling import QualityLabels, label_dataset, label_options
from codi_kit.labels.student import StudentConfig
from codi_kit.learn import LearnRequest
from codi_kit.progress import say, warn
from codi_kit.torch_utils import resolve_device, seed_everything


class Pipeline:
    """One run: its configuration, its run directory ``root`` (config.json, results.json, report.md)
    and the stage ``store`` its artifacts live in (the run directory unless shared, as a bench does)."""

    def __init__(self, config: dict, root: str | Path, force: bool = False, store: str | Path | None = None):
        self.config = config
        self.root = Path(root)
        self.store = Path(store) if store is not None else self.root
        self.directory = RunDirectory(self.store, force)
        self._inputs: dict[str, dict | None] = {}
        self.seed = int(config["seed"])
        self.device = resolve_device(str(config["device"]))
        self.artifacts: dict[str, Artifact] = {}
        self._env = None
        self._augmenter = None
        self._datasets: dict[str, Dataset] = {}
        self._references: References | None = None

    # -- components ----------------------------------------------------------------------------
    def component(self, section: str):
        """(registration, full settings) of the plugin named in ``[section]``."""
        registration = plugins.lookup(section, self.config[section]["name"])  # sections are named by kind
        settings = plugin_settings(self.config, section, registration)
        return registration, plugins.config_of(registration, settings), settings

    def build(self, section: str):
        registration, _, settings = self.component(section)
        return plugins.configure(registration, settings)

    @property
    def env(self):
        if self._env is None:
            self._env = self.build("env")
        return self._env

    @property
    def augmenter(self):
        """The configured augmenter: the one authority on whether labels and a train stage are needed."""
        if self._augmenter is None:
            self._augmenter = self.build("augmenter")
        return self._augmenter

    def context(self, artifact: Artifact | None = None) -> StageContext:
        workdir = artifact.workdir if artifact is not None else None
        return StageContext(self.seed, self.device, workdir or self.root, self.env, self.config.get("profile", "quick"),
                            artifact.checkpoints if artifact is not None else None)

    def identity(self, section: str) -> dict:
        """What keys a stage for its plugin: name, plugin module, the distribution that provides it
        and its version (a re-versioned plugin recomputes), and its full settings."""
        registration, full, _ = self.component(section)
        return {"name": registration.name, "plugin": registration.plugin, "distribution": registration.distribution,
                "version": registration.version, "settings": full}

    # -- stages --------------------------------------------------------------------------------
    def stage(self, name: str, wanted: bool = False) -> Artifact | None:
        """``name``'s artifact (its ``Stage`` in ``STAGE_TABLE`` says what it reads, what keys it and
        what computes it): reused from the store when its key matches, else computed after the
        stages it reads. None when this run skips it: labels that no augmenter reads (unless
        ``wanted``, as ``codi-kit label`` wants them), training for an augmenter that fits nothing."""
        if self.artifacts.get(name) is not None or (name in self.artifacts and not wanted):
            return self.artifacts[name]
        spec = _described(name)
        inputs = None if spec.skipped(self) and not wanted else self.inputs(name)
        if inputs is None:
            self.artifacts[name] = None
            return None
        for upstream in spec.reads:
            self.stage(upstream)
        with self.directory.stage(name, inputs, self.seed) as artifact:
            if not artifact.reused:
                seed_everything(self.seed)
                spec.compute(self, artifact)
        self.artifacts[name] = artifact
        return artifact

    def collect(self) -> Artifact:
        return self.stage("collect")

    def label(self, wanted: bool = False) -> Artifact | None:
        return self.stage("label", wanted)

    def train(self) -> Artifact | None:
        return self.stage("train")

    def generate(self) -> Artifact:
        return self.stage("generate")

    def learn(self) -> Artifact:
        return self.stage("learn")

    def evaluate(self) -> Artifact:
        return self.stage("evaluate")

    def inputs(self, stage: str) -> dict | None:
        """What keys ``stage``: its settings and the keys of the stages it reads (worked out once per
        run). None when the run skips the stage (training for an augmenter that fits nothing)."""
        if stage not in self._inputs:
            self._inputs[stage] = _described(stage).inputs(self)
        return self._inputs[stage]

    def key(self, stage: str) -> str | None:
        """The content key of ``stage``'s artifact (its folder is ``<stage>-<key>`` in the store),
        computed without running anything; None when this run skips the stage. Labels count only
        when the augmenter reads them."""
        inputs = None if _described(stage).skipped(self) else self.inputs(stage)
        return None if inputs is None else stage_key(stage, inputs, self.seed)

    # collect: the env's imbalanced dataset (or an imported file) and the reference rollouts
    def _collect_inputs(self) -> dict:
        settings = self.config["collect"]
        source = settings.get("dataset")
        return {"env": self.identity("env"), "collect": settings, "references": References.FILES,
                "dataset_sha256": _file_digest(source) if source else None}

    def _collect(self, artifact: Artifact) -> None:
        settings = self.config["collect"]
        source = settings.get("dataset")
        dataset = self._import(source) if source else collection.collect(
            self.env, settings["protocol"], int(settings["episodes"]), self.seed)
        collection.collect_references(self.env, dataset, self.seed).save(artifact.workdir)
        dataset.save(artifact.workdir / "dataset.npz")
        artifact.record.update({"summary": dataset.summary(), "normalization": dataset.meta["normalization"]})

    def _import(self, source: str) -> Dataset:
        """An existing dataset file, checked against the env (R_hi is measured later if it lacks one)."""
        dataset = Dataset.load(source)
        check_import(dataset, source)
        spec = self.env.spec
        if dataset.agents != spec.agents or dataset.obs.shape[3] != spec.obs_dim:
            raise DatasetError(source, "obs", f"shape {dataset.obs.shape} does not fit env '{spec.name}' "
                                              f"({spec.agents} agents, observation size {spec.obs_dim})")
        check_action_indices(dataset, source, spec.actions, f"env '{spec.name}'")
        return dataset

    def dataset(self, stage: str = "collect") -> Dataset:
        if stage not in self._datasets:
            file = {"collect": "dataset.npz", "generate": "generated.npz"}[stage]
            self._datasets[stage] = Dataset.load(self.artifacts[stage].folder / file)
        return self._datasets[stage]

    def references(self) -> References:
        if self._references is None:
            self._references = References.load(self.collect().folder)
        return self._references

    # label: the teacher's answers, the student and every segment's z
    def _label_inputs(self) -> dict:
        horizon = int(self.config["label"]["horizon"])
        if self.augmenter.needs_labels:  # before any labelling is paid for
            self.augmenter.check_label_horizon(horizon)
        settings = {**self.config["label"], **label_options(self.config["label"])}  # a changed default is a new key
        labeler_class = self.component("labeler")[0].factory
        student = None if labeler_class.ground_truth else attrs.asdict(self.student_config())
        return {"collect": self.key("collect"), "label": settings, "labeler": self.identity("labeler"),
                "student": student, "text_converter": self.config.get("text_converter", {})}

    def _label(self, artifact: Artifact) -> None:
        settings = self.config["label"]
        labels, stats, student = label_dataset(
            self.build("labeler"), self.dataset(), int(settings["horizon"]), float(settings["teacher_fraction"]),
            self.context(artifact), self._text_converter(), self.student_config(), **label_options(settings))
        labels.save(artifact.workdir / "labels.npz")
        if student is not None:
            torch.save(student.state_dict(), artifact.workdir / "student.pt")
        artifact.record["stats"] = stats

    def student_config(self) -> StudentConfig:
        try:
            return StudentConfig(**self.config.get("student", {}))
        except TypeError as error:
            raise CodiKitError(f"[student] settings: {error}") from None

    def _text_converter(self):
        name = self.config["env"]["name"]
        if not any(r.name == name for r in plugins.registrations("text_converter")):
            return None
        registration = plugins.lookup("text_converter", name)
        return plugins.configure(registration, dict(self.config.get("text_converter", {})))

    def labels(self) -> QualityLabels | None:
        labelled = self.label()
        return QualityLabels.load(labelled.folder / "labels.npz") if labelled else None

    # train: the augmenter's models, fitted once (None: it fits nothing)
    def _train_inputs(self) -> dict | None:
        settings = self.augmenter.training_settings()
        if settings is None:
            return None
        registration = self.component("augmenter")[0]
        return {"collect": self.key("collect"), "label": self.key("label"),
                "augmenter": {"name": registration.name, "plugin": registration.plugin, "settings": settings},
                "device": self.device.type}

    def _train(self, artifact: Artifact) -> None:
        request = FitRequest(self.dataset(), self.labels(), self.references(), self.context(artifact))
        artifact.record["diagnostics"] = self.augmenter.fit(request)

    # generate: the augmenter's episodes (only them), checked against the dataset
    def _generate_inputs(self) -> dict:
        return {"collect": self.key("collect"), "label": self.key("label"), "train": self.key("train"),
                "augmenter": self.identity("augmenter"), "device": self.device.type}

    def _generate(self, artifact: Artifact) -> None:
        trained = self.artifacts["train"]
        request = GenerateRequest(self.dataset(), self.labels(), self.references(), self.context(artifact),
                                  trained.folder if trained else None)
        outcome = self.augmenter.generate(request)
        generated = outcome.dataset
        shortfall = self._shortfall(outcome)
        if shortfall:
            artifact.record["shortfall"] = shortfall
        generated.provenance = np.full(generated.episodes, f"generated:{self.config['augmenter']['name']}", "<U32")
        generated.save(artifact.workdir / "generated.npz")
        if outcome.examples is not None and outcome.examples.episodes:
            outcome.examples.save(artifact.workdir / "examples.npz")  # drawn in the report, never learnt from
        artifact.record["generated_episodes"] = generated.episodes
        artifact.record["generated_transitions"] = int(generated.transition_mask().sum())
        # episodes cut before their end: branches off real steps, not whole episodes
        artifact.record["generated_branches"] = int(generated.truncated.sum()) if generated.truncated is not None else 0
        artifact.record["diagnostics"] = outcome.diagnostics
        artifact.record["versus_dataset"] = compare_with_dataset(self.env, generated, request.dataset)
        warning = verdict(artifact.record["versus_dataset"])
        if warning:
            warn(f"augmenter '{self.config['augmenter']['name']}': {warning}")
        if generated.episodes:
            artifact.record["summary"] = generated.summary()

    def _shortfall(self, outcome) -> dict | None:
        """None when the augmenter made what it set out to; else an error, or (allowed) a record."""
        settings = self.config["generate"]
        made, asked = outcome.dataset.episodes, outcome.requested
        if not asked or made >= float(settings["minimum_share"]) * asked:
            return None
        name = self.config["augmenter"]["name"]
        why = f": {outcome.reason}" if outcome.reason else ""
        if not settings["allow_shortfall"]:
            raise CodiKitError(f"augmenter '{name}' generated {made} of the {asked} episodes it set out to{why}; learners "
                               "would see the original data under its name (set generate.allow_shortfall=true to go on)")
        say(f"[yellow]augmenter '{name}' generated {made} of {asked} episodes{why}; going on (generate.allow_shortfall)[/yellow]")
        return {"generated": made, "requested": asked, "reason": outcome.reason}

    def training_data(self) -> DatasetParts:
        """Original and generated episodes, unmerged (merging would pad short branches)."""
        self.generate()
        original, generated = self.dataset("collect"), self.dataset("generate")
        return DatasetParts((original, generated) if generated.episodes else (original,))

    # learn: the learner's policy on original + generated data
    def _learn_inputs(self) -> dict:
        return {"generate": self.key("generate"), "learner": self.identity("learner"), "device": self.device.type}

    def _learn(self, artifact: Artifact) -> None:
        learner = self.build("learner")
        data = self.training_data()
        policy = learner.fit(LearnRequest(data, self.context(artifact), normalization_of(self.dataset())))
        learner.save(policy, artifact.workdir)
        artifact.record["training_episodes"] = data.episodes

    # evaluate: the learned policy's rollouts, normalised by the dataset's R_lo and R_hi
    def _evaluate_inputs(self) -> dict:
        return {"learn": self.key("learn"), "evaluate": self.config["evaluate"]}

    def _evaluate(self, artifact: Artifact) -> None:
        policy = self.build("learner").load(self.artifacts["learn"].folder, self.context())
        settings = self.config["evaluate"]
        outcome = evaluate(self.env, policy, int(settings["episodes"]), self.seed,
                           normalization_of(self.dataset()), greedy=bool(settings.get("greedy", True)))
        write_json(artifact.workdir / "evaluation.json", outcome)
        artifact.record["evaluation"] = outcome

    def report(self) -> dict:
        from codi_kit.report.run_report import write_run_report

        self.evaluate()
        original = self.original_data_baseline()
        started = time.perf_counter()
        results = self.results()
        if original is not None:
            results["baseline"] = original
            results["gain"] = results["normalized_return"] - original["normalized_return"]
        write_run_report(self.root, results, self.artifacts, self.env)
        results["timings"]["report"] = time.perf_counter() - started
        write_json(self.root / "results.json", results)
        return results

    def original_data_baseline(self) -> dict | None:
        """The same learner trained on the original data alone (augmenter ``none``), so a run shows
        what its augmentation buys. It shares this run's collect stage: one extra learn + evaluate
        (and an empty generate). Off with ``report.baseline=false`` or for augmenter ``none``."""
        if not self.config["report"]["baseline"] or self.config["augmenter"]["name"] == "none":
            return None
        config = copy.deepcopy(self.config)
        config["augmenter"] = {"name": "none"}
        original = Pipeline(config, self.root, self.directory.force, self.store)
        original._env = self._env
        original.artifacts["collect"] = self.artifacts["collect"]
        evaluation = original.evaluate().meta()["evaluation"]
        return {"augmenter": "none", **{k: evaluation[k] for k in ("normalized_return", "normalized_return_std",
                                                                  "return_mean", "return_std")},
                "artifacts": {stage: original.artifacts[stage].folder.name for stage in ("generate", "learn", "evaluate")},
                "timings": {stage: round(original.artifacts[stage].seconds, 3) for stage in ("generate", "learn", "evaluate")},
                "reused": [stage for stage in ("generate", "learn", "evaluate") if original.artifacts[stage].reused]}

    def run_until(self, stage: str):
        """Every stage up to ``stage`` (``report``: all of them, and the run's report)."""
        if stage not in STAGES:
            raise CodiKitError(f"unknown stage '{stage}'; stages: {', '.join(STAGES)}")
        write_json(self.root / "config.json", self.config)
        return self.report() if stage == "report" else self.stage(stage, wanted=stage == "label")

    # -- results -------------------------------------------------------------------------------
    def results(self) -> dict:
        evaluation = self.artifacts["evaluate"].meta()["evaluation"]
        collected = self.artifacts["collect"].meta()
        generated = self.artifacts["generate"].meta()
        trained = self.artifacts.get("train")
        labelled = self.artifacts.get("label")
        from codi_kit.run.versions import versions

        return {
            "env": self.config["env"]["name"],
            "labeler": self.config["labeler"]["name"] if labelled else None,
            "augmenter": self.config["augmenter"]["name"],
            "learner": self.config["learner"]["name"],
            "seed": self.seed,
            "profile": self.config.get("profile"),
            "device": self.device.type,
            **{k: evaluation[k] for k in ("return_mean", "return_std", "normalized_return", "normalized_return_std",
                                          "return_per_agent_mean", "quality_score", "greedy", "R_lo", "R_hi")},
            "win_rate": evaluation.get("win_rate"),
            "evaluation_episodes": evaluation["episodes"],
            "episode_returns": evaluation.get("returns"),
            "env_settings": self.identity("env")["settings"],
            "learner_steps": self.identity("learner")["settings"].get("steps"),
            "learner_settings": self.identity("learner")["settings"],
            "dataset_episodes": collected["summary"]["episodes"],
            "generated_episodes": generated["generated_episodes"],
            "generated_transitions": generated.get("generated_transitions"),
            "generated_branches": generated.get("generated_branches"),
            "generation_shortfall": generated.get("shortfall"),
            "generated_versus_dataset": generated.get("versus_dataset"),
            "dataset_summary": collected["summary"],
            "label_stats": labelled.meta()["stats"] if labelled else None,
            "train_diagnostics": trained.meta()["diagnostics"] if trained else None,
            "augment_diagnostics": generated.get("diagnostics", {}),
            "artifacts": {stage: a.folder.name for stage, a in self.artifacts.items() if a is not None},
            "reused": [stage for stage, a in self.artifacts.items() if a is not None and a.reused],
            "timings": {stage: round(a.seconds, 3) for stage, a in self.artifacts.items() if a is not None},
            "versions": versions(),
        }

    def close(self):
        if self._env is not None:
            self._env.close()


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as error:
        raise DatasetError(path, "(file)", f"cannot read: {error.strerror}") from None
    return digest.hexdigest()


@attrs.frozen
class Stage:
    """One stage: the stages it reads (computed before it), what keys its artifact (``inputs``, None
    when the run skips it) and what fills a fresh artifact (``compute``); ``skipped``: whether this
    run leaves it out unless it is asked for by name (labels no augmenter reads)."""

    reads: tuple
    inputs: Callable
    compute: Callable
    skipped: Callable = lambda pipeline: False


# The pipeline, in order (DESIGN.md): each stage reads the artifacts of the stages before it.
STAGE_TABLE = {
    "collect": Stage((), Pipeline._collect_inputs, Pipeline._collect),
    "label": Stage(("collect",), Pipeline._label_inputs, Pipeline._label,
                   skipped=lambda pipeline: not pipeline.augmenter.needs_labels),
    "train": Stage(("collect", "label"), Pipeline._train_inputs, Pipeline._train),
    "generate": Stage(("collect", "label", "train"), Pipeline._generate_inputs, Pipeline._generate),
    "learn": Stage(("generate",), Pipeline._learn_inputs, Pipeline._learn),
    "evaluate": Stage(("learn",), Pipeline._evaluate_inputs, Pipeline._evaluate),
}
STAGES = (*STAGE_TABLE, "report")


def _described(stage: str) -> Stage:
    if stage not in STAGE_TABLE:
        raise CodiKitError(f"stage '{stage}' has no artifact; stages: {', '.join(STAGE_TABLE)}")
    return STAGE_TABLE[stage]
