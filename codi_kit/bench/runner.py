"""Run a bench: plan its tasks, run each once its inputs exist, gather every cell into the bench folder.

The bench folder holds ``stages/`` (the shared stage store), ``cells/<cell>/`` (an ordinary run
directory: config.json, results.json, report.md), ``results.jsonl`` (one line per cell, failed
cells with their error), ``marl-eval.json``, ``report.md`` with its figures, ``bench.json`` and
``errors/`` (a traceback per failed task). A rerun computes only what is missing.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from codi_kit.run.atomic import write_json
from codi_kit.bench.grid import Cell, Grid
from codi_kit.bench.tasks import Task, cell_folder, plan
from codi_kit.progress import console, is_quiet
from codi_kit.report.run_report import write_text


class _Display:
    """Cells done / running / failed with an ETA, on stderr (silent with --quiet)."""

    def __init__(self, cells: int, stages: int):
        self.counts = {"cells": 0, "running": 0, "failed": 0, "stages": 0}
        self.stages = stages
        self.progress = None if is_quiet() else Progress(
            TextColumn("[bold]bench"), BarColumn(), MofNCompleteColumn(), TextColumn("cells"),
            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(), console=console)
        self.task = self.progress.add_task("bench", total=cells, info="") if self.progress else None

    def __enter__(self):
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.progress:
            self.progress.stop()

    def change(self, **delta):
        for key, value in delta.items():
            self.counts[key] += value
        if self.progress:
            c = self.counts
            self.progress.update(self.task, completed=c["cells"], info=f"running {c['running']} · failed tasks "
                                                                        f"{c['failed']} · shared stages {c['stages']}/{self.stages}")


def schedule(tasks: list[Task], configs: dict[Cell, dict], bench: Path, backend) -> dict[str, dict]:
    """Each task's outcome by id: the backend starts a task once the tasks it reads from have ended;
    one whose input failed fails with that reason, and the others go on."""
    outcome = {t.id: {"task": t.id, "ok": True, "reused": True} for t in tasks if t.done}
    cells = [t for t in tasks if t.stage == "report"]

    def arguments(task: Task) -> tuple:
        return task.id, configs[task.cell], str(cell_folder(bench, task.cell)), str(bench / "stages"), task.stage

    with _Display(len(cells), sum(t.stage != "report" for t in tasks)) as display:
        display.change(cells=sum(t.done for t in cells), stages=sum(t.done and t.stage != "report" for t in tasks))

        def finished(task: Task, result: dict) -> None:
            outcome[task.id] = result
            if not result["ok"] and result.get("traceback"):
                write_text(bench / "errors" / f"{task.id.replace(' ', '-')}.txt", result["traceback"])
            display.change(running=-1, failed=not result["ok"], cells=task.stage == "report",
                           stages=task.stage != "report" and result["ok"])

        backend.run(tasks, arguments, lambda task: display.change(running=1), finished)
    return outcome


def run_bench(grid: Grid, bench: str | Path, backend) -> list[dict]:
    """Run the grid into ``bench``; returns one record per cell (what ``results.jsonl`` holds)."""
    from codi_kit.bench.export import write_marl_eval
    from codi_kit.bench.report import write_bench_report

    bench = Path(bench)
    started = time.perf_counter()
    tasks, configs = plan(grid, bench)
    outcome = schedule(tasks, configs, bench, backend)
    records = [_record(cell, outcome[f"cell {cell.name}"], bench) for cell in grid.cells()]
    write_text(bench / "results.jsonl", "".join(json.dumps(r, default=str) + "\n" for r in records))
    write_marl_eval(records, bench / "marl-eval.json")
    computed = [t.id for t in tasks if not t.done and outcome.get(t.id, {}).get("ok")]
    summary = {"grid": grid.describe(), **backend.describe(), "wall_seconds": time.perf_counter() - started,
               "tasks": len(tasks), "computed": computed, "failed": [t.id for t in tasks if not outcome[t.id]["ok"]]}
    write_json(bench / "bench.json", summary)
    write_bench_report(bench, records, summary)
    return records


def _record(cell: Cell, result: dict, bench: Path) -> dict:
    record = {"cell": cell.name, "env": cell.env, "agents": cell.agents, "augmenter": cell.augmenter,
              "learner": cell.learner, "seed": cell.seed, "status": "ok" if result["ok"] else "failed"}
    if not result["ok"]:
        return {**record, "error": result["error"]}
    results = result.get("results") or json.loads((cell_folder(bench, cell) / "results.json").read_text())
    return {**record, "results": results}
