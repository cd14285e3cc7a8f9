"""A bench as tasks over one stage store: each shared stage once, then each cell to its report.

Cells that agree on a stage's inputs agree on its key (``Pipeline.key``), so one task computes it:
one collect per (env, seed), one label stage per labeler, one trained model per (training settings,
seed), one generated dataset for all learners. A task runs only after the tasks it reads from, so no
two workers ever compute the same stage.
"""
from __future__ import annotations

import json
import time
import traceback
from pathlib import Path

import attrs

from codi_kit.bench.grid import Cell, Grid

SHARED_STAGES = ("collect", "label", "train", "generate")


@attrs.define
class Task:
    id: str  # a shared stage's folder name in the store, or "cell <name>"
    stage: str  # the stage the cell's pipeline runs up to; "report" for a cell's own task
    cell: Cell  # the (first) cell whose pipeline computes it
    needs: tuple[str, ...]  # tasks that must have succeeded first
    done: bool  # already computed by an earlier bench


def cell_folder(bench: Path, cell: Cell) -> Path:
    return bench / "cells" / cell.name


def plan(grid: Grid, bench: Path) -> tuple[list[Task], dict[Cell, dict]]:
    """The tasks of a grid in dependency order, and each cell's configuration. Builds no env and
    computes nothing; a configuration error (unknown plugin or setting) is raised here, before any work."""
    from codi_kit.run.pipeline import Pipeline

    store = bench / "stages"
    tasks: dict[str, Task] = {}
    configs: dict[Cell, dict] = {}
    learners: dict[str, str] = {}  # learn key -> the cell task that computes it
    for cell in grid.cells():
        config = grid.config(cell)
        pipeline = Pipeline(config, cell_folder(bench, cell), store=store)
        try:
            upstream: list[str] = []
            for stage in SHARED_STAGES:
                key = pipeline.key(stage)
                if key is None:
                    continue
                task_id = f"{stage}-{key}"
                if task_id not in tasks:
                    tasks[task_id] = Task(task_id, stage, cell, tuple(upstream), (store / task_id / "meta.json").exists())
                upstream.append(task_id)
            learned, evaluated = pipeline.key("learn"), f"evaluate-{pipeline.key('evaluate')}"
        finally:
            pipeline.close()
        configs[cell] = config
        task_id = f"cell {cell.name}"
        if learned in learners:  # two columns that resolve to the same run: the second waits for the first
            upstream.append(learners[learned])
        learners.setdefault(learned, task_id)
        tasks[task_id] = Task(task_id, "report", cell, tuple(upstream), _reported(cell_folder(bench, cell), store, evaluated))
    return list(tasks.values()), configs


def _reported(folder: Path, store: Path, evaluated: str) -> bool:
    """The cell's results.json exists and reports the evaluation this grid asks for."""
    try:
        results = json.loads((folder / "results.json").read_text())
    except (OSError, json.JSONDecodeError):
        return False
    return results.get("artifacts", {}).get("evaluate") == evaluated and (store / evaluated / "meta.json").exists()


def execute(task_id: str, config: dict, folder: str, store: str, stage: str, threads: int, *upstream: dict) -> dict:
    """Run one task in this process (a pool worker or a Ray task), given the outcomes of the tasks it
    reads from. Never raises: a failure, its own or an upstream one, comes back as ``{"ok": False,
    "error": one line, ...}`` so the bench goes on with the other cells."""
    failed = next((u for u in upstream if not u["ok"]), None)
    if failed is not None:
        return {"task": task_id, "ok": False, "seconds": 0.0, "error": f"needs {failed['task']}, which failed: {failed['error']}"}
    import torch

    from codi_kit.run.pipeline import Pipeline
    from codi_kit.progress import set_quiet

    torch.set_num_threads(threads)
    set_quiet(True)
    started = time.perf_counter()
    pipeline = Pipeline(config, folder, store=store)
    try:
        computed = pipeline.run_until(stage)
        return {"task": task_id, "ok": True, "seconds": time.perf_counter() - started,
                "results": computed if stage == "report" else None}
    except Exception as error:  # noqa: BLE001 - reported per cell, the others go on
        lines = str(error).strip().splitlines()
        return {"task": task_id, "ok": False, "seconds": time.perf_counter() - started, "traceback": traceback.format_exc(),
                "error": f"{type(error).__name__}: {lines[0] if lines else ''}"}
    finally:
        pipeline.close()
