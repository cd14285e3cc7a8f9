"""Where bench tasks run: a local process pool sized to the cores, or a Ray cluster.

Both run ``tasks.execute`` with the same arguments and give back its result dict; the scheduler in
``runner`` only submits a task once the tasks it reads from have finished.
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing
import os

from codi_kit.bench.tasks import execute
from codi_kit.errors import CodiKitError


class LocalBackend:
    """A pool of ``workers`` processes (spawned: no torch state is forked), each given an equal share
    of the cores as torch threads, so that two workers never fight over the same core."""

    name = "local"

    def __init__(self, workers: int | None = None):
        cores = os.cpu_count() or 1
        self.workers = max(1, workers or cores)
        self.threads = max(1, cores // self.workers)
        self._pool = self._new_pool()

    def _new_pool(self):
        return concurrent.futures.ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"))

    def submit(self, config: dict, folder: str, store: str, stage: str):
        return self._pool.submit(execute, config, folder, store, stage, self.threads)

    def wait(self, futures: list) -> list:
        done, _ = concurrent.futures.wait(futures, return_when=concurrent.futures.FIRST_COMPLETED)
        return list(done)

    def result(self, future) -> dict:
        try:
            return future.result()
        except concurrent.futures.process.BrokenProcessPool as error:  # a worker was killed (out of memory?)
            self._pool.shutdown(cancel_futures=True)
            self._pool = self._new_pool()
            return {"ok": False, "error": f"worker process died: {error}", "seconds": 0.0}

    def describe(self) -> dict:
        return {"backend": self.name, "workers": self.workers, "torch_threads_per_task": self.threads}

    def close(self) -> None:
        self._pool.shutdown()


class RayBackend:
    """Each task a Ray task with its CPU/GPU request. Every node must have codi-kit installed and see
    the bench folder at the same path (a shared filesystem), since stages read each other's artifacts."""

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
        self._remote = ray.remote(num_cpus=cpus_per_task, num_gpus=gpus_per_task)(execute)

    def submit(self, config: dict, folder: str, store: str, stage: str):
        return self._remote.remote(config, folder, store, stage, max(1, int(self.cpus)))

    def wait(self, futures: list) -> list:
        done, _ = self._ray.wait(futures, num_returns=1)
        return done

    def result(self, future) -> dict:
        try:
            return self._ray.get(future)
        except self._ray.exceptions.RayError as error:  # the worker or node was lost
            return {"ok": False, "error": f"Ray task failed: {str(error).strip().splitlines()[0]}", "seconds": 0.0}

    def describe(self) -> dict:
        resources = self._ray.cluster_resources()
        return {"backend": self.name, "cpus_per_task": self.cpus, "gpus_per_task": self.gpus,
                "cluster_cpus": resources.get("CPU"), "cluster_gpus": resources.get("GPU")}

    def close(self) -> None:
        """Stops a Ray instance this backend started; leaves one the caller started running."""
        if self._started:
            self._ray.shutdown()
