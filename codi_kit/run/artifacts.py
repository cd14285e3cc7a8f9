"""Stage artifacts in a run directory: one folder per stage, named by a hash of its inputs.

A folder exists only once complete (written in a temporary folder, then renamed), so a crashed
run leaves no half artifact and a rerun resumes from the last finished stage. A long stage may
also keep resumable state (training checkpoints) in a hidden sibling folder that outlives a crash
and is removed when the stage succeeds, so a rerun resumes inside the stage too.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
from pathlib import Path

import attrs

from codi_kit.run import tensorboard_log
from codi_kit.run.atomic import atomic_directory, write_json
from codi_kit.progress import say
from codi_kit.run.versions import versions


def content_key(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


def stage_key(stage: str, inputs: dict, seed: int) -> str:
    """A stage artifact's key: its name, its inputs and the run's seed (two seeds never share an
    artifact, even in one stage store)."""
    return content_key({"stage": stage, "seed": seed, **inputs})


@attrs.define
class Artifact:
    stage: str
    key: str
    folder: Path
    reused: bool
    seconds: float = 0.0  # spent now (0 when reused)
    workdir: Path | None = None  # where to write while computing; None when reused
    checkpoints: Path | None = None  # resumable state that outlives a crash; removed once the stage succeeds
    record: dict = attrs.field(factory=dict)  # extra fields for meta.json (stats, diagnostics)

    def meta(self) -> dict:
        return json.loads((self.folder / "meta.json").read_text())


@attrs.define
class RunDirectory:
    root: Path
    force: bool = False

    @contextlib.contextmanager
    def stage(self, stage: str, inputs: dict, seed: int):
        """Yield the ``Artifact``: reused when a matching one exists, else one whose ``workdir``
        the stage fills. On success ``meta.json`` (inputs, seed, versions, seconds, record) is written."""
        key = stage_key(stage, inputs, seed)
        folder = self.root / f"{stage}-{key}"
        for stale in self.root.glob(f".{folder.name}.*.tmp"):  # left by a killed run of this stage
            shutil.rmtree(stale, ignore_errors=True)
        if (folder / "meta.json").exists() and not self.force:
            say(f"[dim]{stage}: reusing {folder.name}[/dim]")
            yield Artifact(stage, key, folder, True)
            return
        checkpoints = self.root / f".{folder.name}.checkpoints"
        if self.force:
            shutil.rmtree(checkpoints, ignore_errors=True)
        started = time.perf_counter()
        with atomic_directory(folder) as workdir:
            artifact = Artifact(stage, key, folder, False, workdir=workdir, checkpoints=checkpoints)
            try:
                yield artifact
            finally:
                tensorboard_log.close(workdir)  # its event file is complete before the folder is committed
            artifact.seconds = time.perf_counter() - started
            write_json(workdir / "meta.json", {"stage": stage, "key": key, "seed": seed, "inputs": inputs,
                                               "seconds": artifact.seconds, "versions": versions(),
                                               **artifact.record})
        artifact.workdir = artifact.checkpoints = None
        shutil.rmtree(checkpoints, ignore_errors=True)
        say(f"{stage}: wrote {folder.name} in {artifact.seconds:.1f}s")
