"""Worker processes on one machine through joblib (loky); an archive can also run on a Dask cluster
(`pipeline/cluster.py`, the optional extra), whose workers `setup_worker` sets up the same way.

`map_in_workers(fn, tasks, jobs)` runs fn over the tasks in `jobs` worker processes (in this process when
jobs == 1), each worker set up by `setup_worker` first: an even share of the CPU threads, or one GPU each in
turn. Two users:

- `paperecg digitize --jobs N`: one task per image (paperecg/cli/digitize.py);
- run_model.py's `--jobs N` (or the environment variable `PAPERECG_JOBS`): one task per shard, every N-th
  record (`shard_records`), each shard run by run_model.py's own loop in a worker.

Records are independent and each is digitized and classified by the same deterministic code whichever
worker takes it, so the outputs are the same as a single process's (given the same torch thread count:
floating-point sums can round differently with another count).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ..hardware import cuda_device_count

JOBS_ENV = "PAPERECG_JOBS"


def parse_shard(text: str) -> tuple[int, int]:
    """'i/N' -> (i, N) with 0 <= i < N."""
    try:
        index, count = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"shard {text!r}: expected INDEX/COUNT, e.g. 0/4") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"shard {text!r}: need 0 <= INDEX < COUNT")
    return index, count


def shard_records(records: list[str], index: int, count: int) -> list[str]:
    """Every `count`-th record from `index` (interleaved, so slow and fast folders spread evenly)."""
    return records[index::count]


def jobs_requested(flag: int | None) -> int:
    """The --jobs flag, else PAPERECG_JOBS, else 1."""
    if flag is not None:
        return max(1, int(flag))
    return max(1, int(os.environ.get(JOBS_ENV, "1") or 1))


def worker_env(index: int, jobs: int, gpus: int, base: dict[str, str] | None = None) -> dict[str, str]:
    """Environment of worker `index`: one GPU each in turn, or an even share of the CPU threads."""
    env = dict(os.environ if base is None else base)
    if gpus > 0:
        env["CUDA_VISIBLE_DEVICES"] = str(index % gpus)
    elif not env.get("PAPERECG_THREADS"):
        env["PAPERECG_THREADS"] = str(max(1, (os.cpu_count() or 1) // jobs))
    return env


def setup_worker(index: int, jobs: int, gpus: int) -> None:
    """Apply `worker_env` to this (worker) process. Called before the task touches torch's CUDA runtime,
    which reads CUDA_VISIBLE_DEVICES when it starts."""
    os.environ.update(worker_env(index, jobs, gpus))
    from ..hardware import set_threads

    set_threads()


def _run_task(fn: Callable[[Any], Any], task: Any, index: int, jobs: int, gpus: int) -> Any:
    setup_worker(index, jobs, gpus)
    return fn(task)


def map_in_workers(fn: Callable[[Any], Any], tasks: Iterable[Any], jobs: int, ordered: bool = False
                   ) -> Iterator[Any]:
    """fn(task) for every task: in this process when jobs == 1, else in `jobs` joblib (loky) worker
    processes. Results come as they finish (ordered=False) or in task order. fn must be importable by
    the workers (a module-level function) and its exceptions reach the caller."""
    tasks = list(tasks)
    if jobs <= 1 or len(tasks) <= 1:
        for task in tasks:
            yield fn(task)
        return
    from joblib import Parallel, delayed

    gpus = cuda_device_count()
    jobs = min(jobs, len(tasks))
    parallel = Parallel(n_jobs=jobs, backend="loky", return_as="generator" if ordered else "generator_unordered")
    yield from parallel(delayed(_run_task)(fn, task, i % jobs, jobs, gpus) for i, task in enumerate(tasks))


def run_sharded(run_shard: Callable[[str], Any], jobs: int) -> list[Any]:
    """run_shard('i/jobs') for every shard i, each in its own worker (run_model.py's --jobs)."""
    return list(map_in_workers(run_shard, [f"{i}/{jobs}" for i in range(jobs)], jobs, ordered=True))
