"""An archive's work on a Dask cluster (`pip install paperecg[cluster]`): an existing scheduler
(`--scheduler tcp://HOST:PORT` or PAPERECG_SCHEDULER) or a LocalCluster started here (`--cluster local:N`).

Dask's scheduler hands each input to a free worker and, when a worker process dies (crash, out of memory,
a machine that goes away), hands the inputs it held to another worker; an input that has killed
`distributed.scheduler.allowed-failures` + 1 workers (default 4) comes back as a failure with that reason, so a
poison file cannot stop the run. Each worker process loads the model once: `WarmWorker` (a WorkerPlugin) loads
it when the worker starts or joins, and the task finds it in the process's cache (cli/digitize.py's
`load_digitizer`). Only this module imports distributed; the CLI imports it only when a cluster is asked for.
"""
from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from typing import Any

from distributed import Client, LocalCluster, WorkerPlugin, as_completed
from distributed.scheduler import KilledWorker

from .archive import Executor, JobResult
from .parallel import setup_worker, worker_env



class WarmWorker(WorkerPlugin):
    """Sets up each worker process when it starts or joins (threads; on a LocalCluster one GPU per worker in
    turn) and runs `warm` (e.g. the model's load) there once, so no task pays for it."""

    name = "paperecg-worker"

    def __init__(self, warm: Callable[[], Any] | None, local_workers: int = 0, gpus: int = 0):
        self.warm = warm
        self.local_workers = local_workers
        self.gpus = gpus

    def setup(self, worker) -> None:
        if self.local_workers and isinstance(worker.name, int):  # LocalCluster names its workers 0..N-1
            setup_worker(worker.name, self.local_workers, self.gpus)
        else:
            from ..hardware import set_threads

            set_threads()
        if self.warm is not None:
            try:
                self.warm()
            except Exception as e:  # noqa: BLE001 - the tasks report it per input, with the same reason
                logging.getLogger("distributed.worker").error("paperecg: warming the worker failed: %s", e)


# A LocalCluster's event loops wake every 20 ms (the blocked-loop tick), its memory monitors every 100 ms and
# its workers sample their stacks every 10 ms (the dashboard's profile): with 2 idle workers that is 0.085 CPU s
# per second, 0.021 with these, which on a loaded 2-core machine halved the CPU per page (bench/archive.py).
QUIET_LOCAL_CONFIG = {"distributed.admin.tick.interval": "1s", "distributed.worker.memory.monitor-interval": "1s",
                      "distributed.worker.profile.enabled": False}


PRE_SPAWN_ENV = "distributed.nanny.pre-spawn-environ"
DASK_TRIM_THRESHOLD = "65536"  # distributed.yaml's value, which a nanny also writes into its own process's environment


def worker_process_env(pre_spawn: dict) -> dict:
    """The environment a LocalCluster's nannies set before starting a worker, less MALLOC_TRIM_THRESHOLD_:
    naming any of glibc's malloc thresholds turns off its dynamic mmap threshold, so every large array of a
    page is mapped and zeroed anew (a page took 2.8 CPU s in a Dask worker, 1.6 s in a plain process)."""
    return {k: v for k, v in pre_spawn.items() if k != "MALLOC_TRIM_THRESHOLD_"}


def start_client(scheduler: str | None, local_workers: int = 0, gpus: int = 0,
                 dashboard_address: str | None = ":8787") -> tuple[Client, LocalCluster | None, str]:
    """(client, the LocalCluster started here or None, a description). `scheduler`: an address; else a
    LocalCluster of `local_workers` processes on loopback, one thread each, the CPU's cores shared out."""
    if scheduler:
        return Client(scheduler, timeout="60s"), None, f"dask {scheduler}"
    env = {k: v for k, v in worker_env(0, local_workers, gpus).items()
           if k == "PAPERECG_THREADS" and not os.environ.get(k)}
    import dask

    dask.config.set(QUIET_LOCAL_CONFIG)  # the nannies hand this process's config to the workers they start
    dask.config.set({PRE_SPAWN_ENV: worker_process_env(dask.config.get(PRE_SPAWN_ENV, {}))})
    if os.environ.get("MALLOC_TRIM_THRESHOLD_") == DASK_TRIM_THRESHOLD:  # left here by an earlier cluster's nanny
        del os.environ["MALLOC_TRIM_THRESHOLD_"]
    cluster = LocalCluster(n_workers=local_workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=dashboard_address, silence_logs=logging.ERROR, env=env)
    return Client(cluster), cluster, f"dask LocalCluster of {local_workers} workers"


def dashboard_line(client: Client) -> str:
    try:
        import bokeh  # noqa: F401 - the dashboard's one extra requirement
    except ImportError:
        return "Dask dashboard: not served (needs bokeh: pip install paperecg[cluster])"
    return f"Dask dashboard: {client.dashboard_link}"


def check_workers(client: Client, probe: Callable[[], str], expected: str) -> list[str]:
    """probe() (e.g. the model identity) on every current worker; one line per worker that answers
    otherwise than `expected` or fails (a model folder missing there, another package version)."""
    answers = client.run(probe, on_error="return")
    problems = []
    for address, answer in sorted(answers.items()):
        if isinstance(answer, BaseException):
            problems.append(f"{address}: {type(answer).__name__}: {answer}")
        elif answer != expected:
            problems.append(f"{address}: {answer} (this machine: {expected})")
    return problems


def failure_reason(error: BaseException) -> str:
    if isinstance(error, KilledWorker):
        import dask

        tries = int(dask.config.get("distributed.scheduler.allowed-failures")) + 1
        return (f"the worker reading it died {tries} times (a crash or out of memory on this input?): "
                "see the workers' logs")
    return f"{type(error).__name__}: {error}".replace("\n", " ")


def dask_executor(client: Client) -> Executor:
    """Submit every input to the cluster and yield the results as they finish (Dask retries an input whose
    worker died on another worker)."""
    def execute(fn, payloads, names):
        if not payloads:
            return
        token = uuid.uuid4().hex[:8]
        futures = client.map(fn, payloads, key=[f"paperecg-{token}-{i}" for i in range(len(payloads))])
        name_of = {f.key: n for f, n in zip(futures, names)}
        done = as_completed(futures)
        del futures  # as_completed holds each future until it is yielded; then it can be released
        for future in done:
            name = name_of.pop(future.key)
            if future.status == "finished":
                yield future.result()
            elif future.status == "error":
                yield JobResult(name, False, failure_reason(future.exception()))
            else:  # cancelled: the scheduler went away; what is done is in the manifest
                raise RuntimeError(f"Dask cancelled {name} ({future.status}): is the scheduler still running?")
            future.release()

    return execute
