"""The staged pipeline collect -> label -> train -> generate -> learn -> evaluate -> report over a run directory."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import attrs
import numpy as np
import torch

from codi_kit import collect as collection
from codi_kit import plugins
from codi_kit.artifacts import Artifact, RunDirectory
from codi_kit.atomic import write_json
from codi_kit.augment import FitRequest, GenerateRequest
from codi_kit.collect import References, normalization_of
from codi_kit.config import plugin_settings
from codi_kit.context import StageContext
from codi_kit.dataset import Dataset, check_action_indices, check_import
from codi_kit.errors import CodiKitError, DatasetError
from codi_kit.evaluate import evaluate
from codi_kit.labeling import QualityLabels, label_dataset
from codi_kit.student import StudentConfig
from codi_kit.learn import LearnRequest
from codi_kit.progress import say
from codi_kit.torch_utils import resolve_device, seed_everything

STAGES = ("collect", "label", "train", "generate", "learn", "evaluate", "report")


class Pipeline:
    def __init__(self, config: dict, root: str | Path, force: bool = False):
        self.config = config
        self.root = Path(root)
        self.run = RunDirectory(self.root, force)
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
    def collect(self) -> Artifact:
        if "collect" in self.artifacts:
            return self.artifacts["collect"]
        settings = self.config["collect"]
        source = settings.get("dataset")
        inputs = {"env": self.identity("env"), "collect": settings, "references": References.FILES,
                  "dataset_sha256": _file_digest(source) if source else None}
        with self.run.stage("collect", inputs, self.seed) as artifact:
            if not artifact.reused:
                seed_everything(self.seed)
                dataset = self._import(source) if source else collection.collect(
                    self.env, settings["protocol"], int(settings["episodes"]), self.seed)
                collection.collect_references(self.env, dataset, self.seed).save(artifact.workdir)
                dataset.save(artifact.workdir / "dataset.npz")
                artifact.record.update({"summary": dataset.summary(), "normalization": dataset.meta["normalization"]})
        self.artifacts["collect"] = artifact
        return artifact

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

    def label(self, wanted: bool = False) -> Artifact | None:
        """Labels for the augmenter; skipped when it needs none, unless ``wanted`` (``codi-kit label``)."""
        if self.artifacts.get("label") is not None or ("label" in self.artifacts and not wanted):
            return self.artifacts["label"]
        if not wanted and not self.augmenter.needs_labels:
            self.artifacts["label"] = None
            return None
        horizon = int(self.config["label"]["horizon"])
        if self.augmenter.needs_labels:
            self.augmenter.check_label_horizon(horizon)
        collected = self.collect()
        labeler_class = self.component("labeler")[0].factory
        student = None if labeler_class.ground_truth else attrs.asdict(self.student_config())
        inputs = {"collect": collected.key, "label": self.config["label"], "labeler": self.identity("labeler"),
                  "student": student, "text_converter": self.config.get("text_converter", {})}
        with self.run.stage("label", inputs, self.seed) as artifact:
            if not artifact.reused:
                seed_everything(self.seed)
                labeler = self.build("labeler")
                converter = self._text_converter()
                labels, stats, student = label_dataset(
                    labeler, self.dataset(), horizon,
                    float(self.config["label"]["teacher_fraction"]), self.context(artifact), converter,
                    self.student_config())
                labels.save(artifact.workdir / "labels.npz")
                if student is not None:
                    torch.save(student.state_dict(), artifact.workdir / "student.pt")
                artifact.record["stats"] = stats
        self.artifacts["label"] = artifact
        return artifact

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

    def train(self) -> Artifact | None:
        """The augmenter's trained models; None (no stage) for an augmenter that fits nothing."""
        if "train" in self.artifacts:
            return self.artifacts["train"]
        settings = self.augmenter.training_settings()
        if settings is None:
            self.artifacts["train"] = None
            return None
        collected, labelled = self.collect(), self.label()
        registration = self.component("augmenter")[0]
        inputs = {"collect": collected.key, "label": labelled.key if labelled else None,
                  "augmenter": {"name": registration.name, "plugin": registration.plugin, "settings": settings},
                  "device": self.device.type}
        with self.run.stage("train", inputs, self.seed) as artifact:
            if not artifact.reused:
                seed_everything(self.seed)
                request = FitRequest(self.dataset(), self.labels(), self.references(), self.context(artifact))
                artifact.record["diagnostics"] = self.augmenter.fit(request)
        self.artifacts["train"] = artifact
        return artifact

    def generate(self) -> Artifact:
        if "generate" in self.artifacts:
            return self.artifacts["generate"]
        collected, labelled, trained = self.collect(), self.label(), self.train()
        inputs = {"collect": collected.key, "label": labelled.key if labelled else None,
                  "train": trained.key if trained else None, "augmenter": self.identity("augmenter"),
                  "device": self.device.type}
        with self.run.stage("generate", inputs, self.seed) as artifact:
            if not artifact.reused:
                seed_everything(self.seed)
                request = GenerateRequest(self.dataset(), self.labels(), self.references(), self.context(artifact),
                                          trained.folder if trained else None)
                outcome = self.augmenter.generate(request)
                generated = outcome.dataset
                shortfall = self._shortfall(outcome)
                if shortfall:
                    artifact.record["shortfall"] = shortfall
                generated.provenance = np.full(generated.episodes, f"generated:{self.config['augmenter']['name']}", "<U32")
                generated.save(artifact.workdir / "generated.npz")
                artifact.record["generated_episodes"] = generated.episodes
                artifact.record["diagnostics"] = outcome.diagnostics
                if generated.episodes:
                    artifact.record["summary"] = generated.summary()
        self.artifacts["generate"] = artifact
        return artifact

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

    def training_data(self) -> Dataset:
        self.generate()
        original, generated = self.dataset("collect"), self.dataset("generate")
        return Dataset.merge(original, generated) if generated.episodes else original

    def learn(self) -> Artifact:
        if "learn" in self.artifacts:
            return self.artifacts["learn"]
        generated = self.generate()
        inputs = {"generate": generated.key, "learner": self.identity("learner"), "device": self.device.type}
        with self.run.stage("learn", inputs, self.seed) as artifact:
            if not artifact.reused:
                seed_everything(self.seed)
                learner = self.build("learner")
                data = self.training_data()
                policy = learner.fit(LearnRequest(data, self.context(artifact), normalization_of(self.dataset())))
                learner.save(policy, artifact.workdir)
                artifact.record["training_episodes"] = data.episodes
        self.artifacts["learn"] = artifact
        return artifact

    def evaluate(self) -> Artifact:
        if "evaluate" in self.artifacts:
            return self.artifacts["evaluate"]
        learned = self.learn()
        inputs = {"learn": learned.key, "evaluate": self.config["evaluate"]}
        with self.run.stage("evaluate", inputs, self.seed) as artifact:
            if not artifact.reused:
                seed_everything(self.seed)
                policy = self.build("learner").load(learned.folder, self.context())
                settings = self.config["evaluate"]
                outcome = evaluate(self.env, policy, int(settings["episodes"]), self.seed,
                                   normalization_of(self.dataset()), greedy=bool(settings.get("greedy", True)))
                write_json(artifact.workdir / "evaluation.json", outcome)
                artifact.record["evaluation"] = outcome
        self.artifacts["evaluate"] = artifact
        return artifact

    def report(self) -> dict:
        from codi_kit.report import write_run_report

        self.evaluate()
        started = time.perf_counter()
        results = self.results()
        write_run_report(self.root, results, self.artifacts)
        results["timings"]["report"] = time.perf_counter() - started
        write_json(self.root / "results.json", results)
        return results

    def run_until(self, stage: str):
        if stage not in STAGES:
            raise CodiKitError(f"unknown stage '{stage}'; stages: {', '.join(STAGES)}")
        write_json(self.root / "config.json", self.config)
        return self.label(wanted=True) if stage == "label" else getattr(self, stage)()

    # -- results -------------------------------------------------------------------------------
    def results(self) -> dict:
        evaluation = self.artifacts["evaluate"].meta()["evaluation"]
        collected = self.artifacts["collect"].meta()
        generated = self.artifacts["generate"].meta()
        trained = self.artifacts.get("train")
        labelled = self.artifacts.get("label")
        from codi_kit.versions import versions

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
            "evaluation_episodes": evaluation["episodes"],
            "dataset_episodes": collected["summary"]["episodes"],
            "generated_episodes": generated["generated_episodes"],
            "generation_shortfall": generated.get("shortfall"),
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
