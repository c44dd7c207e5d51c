"""Resumable runs over an archive of inputs: the manifest, atomic outputs and the run loop.

A run over tens of thousands of scans takes days; a crash, a reboot or one bad file partway through must not
mean starting over. So:

- the manifest (`OUT/manifest.sqlite`, one row per input; `manifest.csv` is a copy written at the end of each
  run, for a spreadsheet) records each input's status (`done`, `failed`, `pending`, `skipped`: a file that is
  not an image), the reason of a failure, the leads found, the seconds it took, when, on which worker, and
  the identity of the model that read it (a hash of the model folder's configs and weights). A second run
  skips what is done (while its inputs are unchanged and its outputs still there) and what failed, unless
  asked to retry the failures; what a killed run left `pending` is done again.
- outputs are written into a staging folder inside OUT and moved into place file by file (`os.replace`, atomic
  on one file system), the WFDB header last: a record whose header exists has its whole signal file. Only the
  process that runs the loop writes the manifest, after the worker's result came back, so a page is `done`
  only when every one of its outputs is in place.
- where the work runs is the caller's: an executor is any callable (fn, payloads, names) -> iterator of
  JobResult (this process or joblib workers: `local_executor`; a Dask cluster: `pipeline/cluster.py`).

The loop depends on no model: the caller passes the function that reads one input (`cli/digitize.py`'s
`digitize_job`), which never raises.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

MANIFEST_NAME = "manifest.sqlite"
MANIFEST_CSV = "manifest.csv"
STAGING_DIR = ".paperecg-partial"  # inside OUT: same file system as the outputs, so a move is atomic
MODEL_FILE_SUFFIXES = (".json", ".safetensors", ".pt", ".pth", ".yaml")  # what decides the model's outputs


@dataclass
class JobResult:
    """What reading one input gave (sent back from the worker that read it)."""

    name: str
    ok: bool
    message: str = ""
    leads_found: int = 0
    num_leads: int = 0
    seconds: float = 0.0
    outputs: list[str] = field(default_factory=list)
    leads: list[str] = field(default_factory=list)  # names of the leads read
    worker: str = ""  # host:pid of the process that read it
    model_id: str = ""


@dataclass
class ArchiveItem:
    """One input of the archive: its name (the manifest's key and the outputs' name), the files it reads
    (their sizes and times tell whether it changed) and what the work function receives."""

    name: str
    inputs: list[str]
    payload: Any = None


@dataclass
class Plan:
    todo: list[ArchiveItem]
    done_before: int = 0
    failed_kept: int = 0
    other_model: int = 0  # done earlier with a model other than this run's (kept)


# --- identities -----------------------------------------------------------------------------------------

def utc_now() -> str:
    """UTC with milliseconds: the finish times of a run's pages give its rate."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def this_worker() -> str:
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def input_signature(paths: Iterable[str]) -> str:
    """Bytes and latest modification time of the input files: an input whose signature changed is read again."""
    size_bytes, mtime_ns = 0, 0
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            return "missing"
        size_bytes += st.st_size
        mtime_ns = max(mtime_ns, st.st_mtime_ns)
    return f"{size_bytes}:{mtime_ns}"


_MODEL_IDS: dict[str, str] = {}


def model_identity(folder: str) -> str:
    """'sha256:' + 16 hex digits over the model folder's configs and weights (names and contents), computed
    once per process: two workers with the same identity give the same outputs."""
    key = os.path.abspath(folder)
    if key not in _MODEL_IDS:
        if not os.path.isdir(key):
            raise FileNotFoundError(f"no model folder {key} on {this_worker()}")
        h = hashlib.sha256()
        for root, dirs, names in os.walk(key):
            dirs.sort()
            for name in sorted(names):
                if not name.endswith(MODEL_FILE_SUFFIXES):
                    continue
                path = os.path.join(root, name)
                h.update(os.path.relpath(path, key).encode() + b"\0")
                with open(path, "rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
        _MODEL_IDS[key] = "sha256:" + h.hexdigest()[:16]
    return _MODEL_IDS[key]


# --- atomic outputs -------------------------------------------------------------------------------------

def staging_folder(out: str) -> str:
    """A fresh folder under OUT/.paperecg-partial/ to write one record's files into before `publish`."""
    path = os.path.join(out, STAGING_DIR, uuid.uuid4().hex)
    os.makedirs(path)
    return path


def publish(staged: list[str], dest_folder: str) -> list[str]:
    """Move the staged files into dest_folder (each move atomic), WFDB headers last: a reader that finds a
    header finds its whole signal file. Returns the final paths in the order given."""
    os.makedirs(dest_folder, exist_ok=True)
    final = {path: os.path.join(dest_folder, os.path.basename(path)) for path in staged}
    for path in sorted(staged, key=lambda p: p.endswith(".hea")):
        os.replace(path, final[path])
    return [final[p] for p in staged]


def clear_staging(out: str) -> None:
    """Remove what killed workers left half-written (none of it was ever in place)."""
    shutil.rmtree(os.path.join(out, STAGING_DIR), ignore_errors=True)


# --- the manifest ---------------------------------------------------------------------------------------

COLUMNS = ("name", "status", "reason", "leads_found", "num_leads", "leads", "seconds", "finished_utc", "worker",
           "model_id", "attempts", "run", "inputs", "input_signature", "outputs")
STATUSES = ("done", "failed", "pending", "skipped")


class Manifest:
    """One row per input in a SQLite file (or in memory: path None). Written by one process, the one that
    runs the loop; every result is committed as it arrives, so a killed run keeps all it finished."""

    def __init__(self, path: str | None):
        self.path = path
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.db = sqlite3.connect(path or ":memory:", timeout=60)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS inputs (name TEXT PRIMARY KEY, status TEXT NOT NULL, reason TEXT, "
            "leads_found INTEGER, num_leads INTEGER, leads TEXT, seconds REAL, finished_utc TEXT, worker TEXT, "
            "model_id TEXT, attempts INTEGER NOT NULL DEFAULT 0, run INTEGER, inputs TEXT, input_signature TEXT, "
            "outputs TEXT)")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS runs (run INTEGER PRIMARY KEY, started_utc TEXT, finished_utc TEXT, "
            "executor TEXT, model_id TEXT, package_version TEXT, todo INTEGER, done INTEGER, failed INTEGER, "
            "seconds REAL, inputs_per_s REAL)")
        self.db.commit()
        self.run_id: int | None = None
        self.base = os.path.dirname(os.path.abspath(path)) if path else None  # outputs are kept relative to it

    def _relative(self, path: str) -> str:
        return os.path.relpath(path, self.base) if self.base else path

    def _absolute(self, path: str) -> str:
        return os.path.join(self.base, path) if self.base else path

    def close(self) -> None:
        self.db.close()

    def rows(self) -> dict[str, dict]:
        cur = self.db.execute(f"SELECT {', '.join(COLUMNS)} FROM inputs ORDER BY name")
        return {r[0]: dict(zip(COLUMNS, r)) for r in cur.fetchall()}

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(STATUSES, 0)
        for status, n in self.db.execute("SELECT status, COUNT(*) FROM inputs GROUP BY status"):
            counts[status] = n
        return counts

    def plan(self, items: list[ArchiveItem], retry_failed: bool, model_id: str = "") -> Plan:
        """What this run has to do; marks it `pending` (a run killed before reaching it leaves it so)."""
        rows = self.rows()
        plan = Plan(todo=[])
        for item in items:
            row = rows.get(item.name)
            same = row is not None and row["input_signature"] == input_signature(item.inputs)
            if same and row["status"] == "done" and all(os.path.isfile(self._absolute(p)) for p in json.loads(row["outputs"] or "[]")):
                plan.done_before += 1
                plan.other_model += bool(model_id and row["model_id"] and row["model_id"] != model_id)
            elif same and row["status"] == "failed" and not retry_failed:
                plan.failed_kept += 1
            else:
                plan.todo.append(item)
        with self.db:
            self.db.executemany(
                "INSERT INTO inputs (name, status, inputs, input_signature) VALUES (?, 'pending', ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET status='pending', inputs=excluded.inputs, "
                "input_signature=excluded.input_signature",
                [(it.name, json.dumps(it.inputs), input_signature(it.inputs)) for it in plan.todo])
        return plan

    def record(self, result: JobResult) -> None:
        """The result of one input, committed at once."""
        with self.db:
            self.db.execute(
                "UPDATE inputs SET status=?, reason=?, leads_found=?, num_leads=?, leads=?, seconds=?, "
                "finished_utc=?, worker=?, model_id=?, attempts=attempts+1, run=?, outputs=? WHERE name=?",
                ("done" if result.ok else "failed", result.message or None, result.leads_found, result.num_leads,
                 " ".join(result.leads), round(result.seconds, 3), utc_now(), result.worker, result.model_id,
                 self.run_id, json.dumps([self._relative(p) for p in result.outputs]), result.name))

    def record_skipped(self, skipped: list[tuple[str, str, str]]) -> None:
        """Files that are not inputs (name, path, reason): one `skipped` row each, the run goes on."""
        with self.db:
            self.db.executemany(
                "INSERT INTO inputs (name, status, reason, inputs, input_signature, finished_utc, run) "
                "VALUES (?, 'skipped', ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET status='skipped', "
                "reason=excluded.reason, inputs=excluded.inputs, finished_utc=excluded.finished_utc, run=excluded.run",
                [(name, reason, json.dumps([path]), input_signature([path]), utc_now(), self.run_id)
                 for name, path, reason in skipped])

    def start_run(self, executor: str, model_id: str, todo: int) -> int:
        from importlib.metadata import PackageNotFoundError, version

        try:
            package_version = version("paperecg")
        except PackageNotFoundError:
            package_version = "checkout"
        with self.db:
            cur = self.db.execute("INSERT INTO runs (started_utc, executor, model_id, package_version, todo) "
                                  "VALUES (?, ?, ?, ?, ?)", (utc_now(), executor, model_id, package_version, todo))
        self.run_id = int(cur.lastrowid)
        return self.run_id

    def end_run(self, done: int, failed: int, seconds: float) -> None:
        with self.db:
            self.db.execute("UPDATE runs SET finished_utc=?, done=?, failed=?, seconds=?, inputs_per_s=? WHERE run=?",
                            (utc_now(), done, failed, round(seconds, 3),
                             round((done + failed) / seconds, 4) if seconds > 0 else None, self.run_id))

    def export_csv(self, path: str) -> None:
        """The rows as CSV, written to a temporary name and moved into place."""
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(COLUMNS)
        for row in self.rows().values():
            w.writerow(["" if row[c] is None else row[c] for c in COLUMNS])
        tmp = f"{path}.{uuid.uuid4().hex}.tmp"
        with open(tmp, "w", newline="") as f:
            f.write(buf.getvalue())
        os.replace(tmp, path)


# --- the run loop ---------------------------------------------------------------------------------------

Executor = Callable[[Callable[[Any], JobResult], list[Any], list[str]], Iterator[JobResult]]


def local_executor(jobs: int) -> Executor:
    """This process (jobs 1) or `jobs` joblib worker processes (pipeline/parallel.py)."""
    def execute(fn, payloads, names):
        from .parallel import map_in_workers

        return map_in_workers(fn, payloads, jobs)

    return execute


def run_archive(items: list[ArchiveItem], fn: Callable[[Any], JobResult], manifest: Manifest, execute: Executor,
                *, retry_failed: bool = False, model_id: str = "", executor_name: str = "local",
                skipped: list[tuple[str, str, str]] = (), out: str | None = None, progress: bool = True,
                on_result: Callable[[JobResult], None] | None = None, log=None) -> tuple[list[JobResult], Plan]:
    """Every input the manifest does not count as finished, through `execute`; each result is committed to
    the manifest as it comes. Returns this run's results (input order) and the plan."""
    from tqdm import tqdm

    log = log or (lambda m: print(m, file=sys.stderr))
    if out is not None:
        clear_staging(out)
    plan = manifest.plan(items, retry_failed, model_id)
    manifest.start_run(executor_name, model_id, len(plan.todo))
    manifest.record_skipped(list(skipped))
    if plan.other_model:
        log(f"manifest: {plan.other_model} inputs done before were read by another model than this run's "
            "(model_id column); they are kept: a new output folder reads them again")
    results: list[JobResult] = []
    t0 = time.time()
    bar = tqdm(total=len(plan.todo), desc="digitize", unit="page", disable=not progress or len(plan.todo) < 2,
               file=sys.stderr, smoothing=0.05)
    try:
        names = [it.name for it in plan.todo]
        for res in execute(fn, [it.payload for it in plan.todo], names) if plan.todo else ():
            manifest.record(res)
            results.append(res)
            if not res.ok:
                bar.write(f"{res.name}: failed: {res.message}", file=sys.stderr)
            bar.update(1)
            if on_result is not None:
                on_result(res)
    finally:
        bar.close()
        manifest.end_run(sum(r.ok for r in results), sum(not r.ok for r in results), time.time() - t0)
        if manifest.path:
            manifest.export_csv(os.path.join(os.path.dirname(manifest.path), MANIFEST_CSV))
        if out is not None and len(results) == len(plan.todo):  # every task has ended: nothing is writing
            clear_staging(out)
    order = {it.name: i for i, it in enumerate(items)}
    return sorted(results, key=lambda r: order.get(r.name, 0)), plan
