"""Where bench tasks run: a local process pool sized to the cores, or a Ray cluster.

Both run ``tasks.execute`` on each task with the outcomes of the tasks it reads from, and call
``started(task)`` and ``finished(task, outcome)`` as each one starts and ends. Ray resolves those dependencies itself (a task's
upstream results are its arguments); the pool gets a task once its upstream outcomes exist.
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from typing import Callable

from codi_kit.bench.tasks import Task, execute
from codi_kit.errors import CodiKitError

Arguments = Callable[[Task], tuple]  # (task id, config, folder, store, stage) of a task
Started = Callable[[Task], None]
Finished = Callable[[Task, dict], None]


class LocalBackend:
    """A pool of ``workers`` processes (spawned: no torch state is forked), each given an equal share
    of the cores as torch threads, so that two workers never fight over the same core."""

    name = "local"

    def __init__(self, workers: int | None = None):
        cores = os.cpu_count() or 1
        self.workers = max(1, workers or cores)
        self.threads = max(1, cores // self.workers)

    def run(self, tasks: list[Task], arguments: Arguments, started: Started, finished: Finished) -> None:
        outcome = {t.id: {"task": t.id, "ok": True} for t in tasks if t.done}
        pending = [t for t in tasks if not t.done]
        running: dict = {}
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(self.workers, mp_context=context) as pool:
            while pending or running:
                ready = [t for t in pending if all(n in outcome for n in t.needs)]
                for task in ready[:self.workers - len(running)]:  # no queue: what is submitted is running
                    pending.remove(task)
                    started(task)
                    upstream = [outcome[n] for n in task.needs]
                    try:
                        running[pool.submit(execute, *arguments(task), self.threads, *upstream)] = task
                    except concurrent.futures.process.BrokenProcessPool as error:
                        outcome[task.id] = {"task": task.id, "ok": False, "error": f"worker pool broken: {error}"}
                        finished(task, outcome[task.id])
                if not running:
                    if not ready:  # cannot happen for a plan's tasks: every need is a task of the plan
                        raise RuntimeError(f"bench tasks wait on tasks outside the plan: {[t.id for t in pending]}")
                    continue
                done, _ = concurrent.futures.wait(list(running), return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    task = running.pop(future)
                    try:
                        outcome[task.id] = future.result()
                    except concurrent.futures.process.BrokenProcessPool as error:  # a worker was killed (memory?)
                        outcome[task.id] = {"task": task.id, "ok": False, "error": f"worker process died: {error}"}
                    finished(task, outcome[task.id])

    def describe(self) -> dict:
        return {"backend": self.name, "workers": self.workers, "torch_threads_per_task": self.threads}

    def close(self) -> None:
        pass


class RayBackend:
    """Each task a Ray task with its CPU/GPU request, its upstream tasks' results as arguments, so
    Ray starts it when they are done. Every node must have codi-kit installed and see the bench
    folder at the same path (a shared filesystem), since stages read each other's artifacts."""

    name = "ray"

    def __init__(self, address: str | None = None, cpus_per_task: float = 1, gpus_per_task: float = 0):
        try:
            import ray
        except ImportError:
            raise CodiKitError("--backend ray needs Ray: pip install 'codi-kit[ray]' (or pip install \".[ray]\" "
                               "in a checkout)") from None
        self._ray = ray
        self._started = not ray.is_initialized()
        if self._started:
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            except ConnectionError as error:
                raise CodiKitError(f"--ray-address {address}: cannot reach a Ray cluster ({error})") from None
        self.cpus, self.gpus = cpus_per_task, gpus_per_task
        self._remote = ray.remote(num_cpus=cpus_per_task, num_gpus=gpus_per_task, max_retries=0)(execute)

    def run(self, tasks: list[Task], arguments: Arguments, started: Started, finished: Finished) -> None:
        """Ray starts a task when its arguments are ready; ``started`` here means handed to Ray."""
        references = {}
        for task in tasks:  # in dependency order: every upstream reference exists before it is passed on
            if not task.done:
                upstream = [references[n] for n in task.needs if n in references]
                started(task)
                references[task.id] = self._remote.remote(*arguments(task), max(1, int(self.cpus)), *upstream)
        by_reference = {reference: task for task in tasks if (reference := references.get(task.id)) is not None}
        while by_reference:
            (reference,), _ = self._ray.wait(list(by_reference), num_returns=1)
            task = by_reference.pop(reference)
            try:
                outcome = self._ray.get(reference)
            except self._ray.exceptions.RayError as error:  # the worker or its node was lost
                outcome = {"task": task.id, "ok": False, "error": f"Ray task failed: {str(error).strip().splitlines()[0]}"}
            finished(task, outcome)

    def describe(self) -> dict:
        resources = self._ray.cluster_resources()
        return {"backend": self.name, "cpus_per_task": self.cpus, "gpus_per_task": self.gpus,
                "cluster_cpus": resources.get("CPU"), "cluster_gpus": resources.get("GPU")}

    def close(self) -> None:
        """Stops a Ray instance this backend started; leaves one the caller started running."""
        if self._started:
            self._ray.shutdown()
