"""Spread run_model.py over several processes (and GPUs): each process takes every N-th record.

Records are independent and each is digitized and classified by the same deterministic code whichever
process takes it, so the outputs are the same as a single process's (given the same torch thread count:
floating-point sums can round differently with another count). Set the jobs with run_model.py's `--jobs N`
or the environment variable `PAPERECG_JOBS`; workers get `--shard i/N` and, on a GPU machine,
`CUDA_VISIBLE_DEVICES` set to one GPU each in turn.
"""
from __future__ import annotations

import os
import subprocess
import sys

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


def run_sharded(script: str, argv: list[str], jobs: int) -> int:
    """Run `script argv --shard i/jobs` for every i at once; returns 0 if every worker succeeded."""
    gpus = cuda_device_count()
    procs = [subprocess.Popen([sys.executable, script, *argv, "--shard", f"{i}/{jobs}"],
                              env=worker_env(i, jobs, gpus)) for i in range(jobs)]
    codes = [p.wait() for p in procs]
    failed = [i for i, c in enumerate(codes) if c != 0]
    if failed:
        print(f"run_model: worker(s) {failed} of {jobs} failed (exit codes {[codes[i] for i in failed]})",
              file=sys.stderr)
        return 1
    return 0
