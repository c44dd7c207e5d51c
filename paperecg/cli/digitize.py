"""`paperecg digitize`: image files, folders or challenge records in; per input a WFDB record, a CSV, a JSON
report and an overlay picture out.

What counts as one input (a "job"):
- an image file given by name: digitized alone, with no header (the 12 standard leads at --fs for
  --seconds), or with `--header FILE`'s rate, length and leads;
- a `.hea` file given by name: a challenge record; its `# Image:` pages are digitized together, as run_model.py
  does, at its rate and length and in its lead order;
- a folder: every image inside, recursively; a header in the folder that names images (`# Image:`) makes
  those images one record job (unless --ignore-headers), so a challenge folder's outputs can be scored
  against its references.
"""
from __future__ import annotations

import os
import re
import sys
import threading
import time
from dataclasses import dataclass

import numpy as np

from paperecg.layouts import STANDARD_LEADS
from paperecg.pipeline.archive import (MANIFEST_CSV, MANIFEST_NAME, ArchiveItem, Executor, JobResult, Manifest,
                                       model_identity, run_archive, this_worker)
from paperecg.records.header import HeaderInfo
from paperecg.records.images import IMAGE_EXTENSIONS

from .report import ADC_GAIN, csv_text, record_report

OVERLAY_SUFFIX = ".overlay.png"


class UsageError(Exception):
    """Bad command line (exit code 2)."""


@dataclass
class Job:
    """One output record: its name (relative to the output folder, no extension) and where it comes from."""

    name: str
    images: list[str]
    header_file: str | None = None  # a record's header (rate, length, leads); None: standard leads
    record: str | None = None  # a challenge record (path without .hea) whose '# Image:' pages are read


@dataclass
class Options:
    out: str
    model: str
    fs_hz: float = 500.0
    seconds: float = 10.0
    overlay: bool = True


# --- inputs ---------------------------------------------------------------------------------------------

def is_image_file(path: str) -> bool:
    low = path.lower()
    return low.endswith(IMAGE_EXTENSIONS) and not low.endswith(OVERLAY_SUFFIX)


def safe_record_name(name: str) -> str:
    """WFDB record names allow letters, digits, '_' and '-' only."""
    return re.sub(r"[^-\w]", "_", name) or "record"


def _header_images(hea_path: str) -> list[str]:
    """Images a header names that exist beside it ([] for an unreadable header)."""
    from paperecg.records.header import get_image_files_from_header
    from paperecg.records.io import load_text

    try:
        names = get_image_files_from_header(load_text(hea_path))
    except (OSError, UnicodeDecodeError):
        return []
    folder = os.path.dirname(hea_path)
    return [os.path.join(folder, n) for n in names if os.path.isfile(os.path.join(folder, n))]


def _walk(folder: str, out: str | None) -> list[str]:
    """Every file under `folder` (sorted, recursively), not descending into the output folder."""
    skip = os.path.realpath(out) if out else None
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if os.path.realpath(os.path.join(root, d)) != skip)
        files += [os.path.join(root, n) for n in sorted(names)]
    return files


def folder_jobs(folder: str, use_headers: bool, header_file: str | None, out: str | None = None) -> list[Job]:
    """Every image under `folder` (recursively, sorted); images a header names form that record's job."""
    jobs: list[Job] = []
    claimed: set[str] = set()
    files = _walk(folder, out)
    if use_headers:
        for path in files:
            if path.endswith(".hea"):
                images = _header_images(path)
                if images:
                    rel = os.path.relpath(path[:-4], folder)
                    jobs.append(Job(rel, images, path, record=path[:-4]))
                    claimed.update(os.path.abspath(i) for i in images)
    for path in files:
        if is_image_file(path) and os.path.abspath(path) not in claimed:
            jobs.append(Job(os.path.splitext(os.path.relpath(path, folder))[0], [path], header_file))
    return jobs


RECORD_EXTENSIONS = (".hea", ".dat", ".mat")  # a record's own files: read through its header, not inputs


def not_an_input(path: str) -> str | None:
    """Why a file found in an archive folder is not read (None: it is an image, a record's file, an output of
    this command or a hidden file, which need no line)."""
    name = os.path.basename(path)
    low = name.lower()
    stem = os.path.splitext(path)[0]
    if (name.startswith(".") or is_image_file(path) or low.endswith(RECORD_EXTENSIONS + (OVERLAY_SUFFIX,))
            or name in (MANIFEST_NAME, MANIFEST_CSV) or os.path.isfile(stem + ".hea")):
        return None
    ext = os.path.splitext(low)[1] or "no extension"
    reason = f"not an image file ({ext}): digitize reads {', '.join(IMAGE_EXTENSIONS)}"
    if ext == ".pdf":
        reason += "; convert the PDF's pages to PNG first (e.g. pdftoppm -r 200 -png)"
    return reason


def other_files(paths: list[str], out: str | None = None) -> list[tuple[str, str, str]]:
    """(name, path, reason) for every file in the folders among `paths` that is not read (a PDF, a text):
    the manifest gives each one line and the run goes on."""
    found = []
    for folder in paths:
        if os.path.isdir(folder):
            for path in _walk(folder, out):
                reason = not_an_input(path)
                if reason is not None:
                    found.append((os.path.relpath(path, folder), path, reason))
    return found


def find_jobs(paths: list[str], use_headers: bool = True, header_file: str | None = None,
              out: str | None = None) -> list[Job]:
    """Jobs for the command line's paths, with output names made unique and WFDB-safe. Raises UsageError
    for a path that does not exist or a folder with no image."""
    jobs: list[Job] = []
    for path in paths:
        if os.path.isdir(path):
            found = folder_jobs(path, use_headers, header_file, out)
            if not found:
                raise UsageError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) under {path}")
            jobs += found
        elif os.path.isfile(path):
            stem = os.path.splitext(os.path.basename(path))[0]
            if path.endswith(".hea"):
                jobs.append(Job(stem, _header_images(path), path, record=path[:-4]))
            else:
                jobs.append(Job(stem, [path], header_file))
        else:
            raise UsageError(f"no such file or folder: {path}")
    seen: set[str] = set()
    for job in jobs:
        folder, base = os.path.split(job.name)
        name = os.path.join(folder, safe_record_name(base))
        unique, k = name, 2
        while unique in seen:
            unique, k = f"{name}-{k}", k + 1
        seen.add(unique)
        job.name = unique
    return jobs


def absolute_job(job: Job) -> Job:
    """The same job with absolute paths, for workers that run in another folder or on another machine."""
    def absolute(path: str | None) -> str | None:
        return None if path is None else os.path.abspath(path)

    return Job(job.name, [os.path.abspath(i) for i in job.images], absolute(job.header_file), absolute(job.record))


OUTPUT_MARK = "paperecg digitize"  # in the comment line of every header this command writes


def check_overwrites(jobs: list[Job], out: str) -> None:
    """Refuse to write over a record this command did not write (a reference beside its page, when the
    output folder is the input folder): UsageError naming the first one."""
    for job in jobs:
        hea = os.path.join(out, job.name + ".hea")
        if os.path.isfile(hea):
            try:
                with open(hea, errors="replace") as f:
                    ours = OUTPUT_MARK in f.read()
            except OSError:
                ours = False
            if not ours:
                raise UsageError(f"{hea} exists and was not written by paperecg: writing {job.name} would "
                                 "overwrite it; choose another output folder (-o)")


def standard_header(name: str, fs_hz: float, seconds: float, image_files: list[str]) -> HeaderInfo:
    """A header for a page that came without one: the 12 standard leads, fs_hz, `seconds` long, mV."""
    n = len(STANDARD_LEADS)
    return HeaderInfo(record_name=name, fs_hz=float(fs_hz), num_samples=int(round(fs_hz * seconds)),
                      lead_names=list(STANDARD_LEADS), adc_gains=[ADC_GAIN] * n, baselines=[0] * n,
                      units=["mV"] * n, formats=["16"] * n, image_files=list(image_files))


def job_header(job: Job, opts: Options) -> tuple[str, HeaderInfo, str]:
    """(record path the digitizer reads the images through, header, where the header came from)."""
    from paperecg.records.io import load_header_info

    if job.record is not None:
        header = load_header_info(job.record)
        if header.num_leads == 0:
            raise ValueError(f"header {job.record}.hea names no leads")
        return job.record, header, f"record {job.record}.hea"
    image = job.images[0]
    record = os.path.splitext(image)[0]
    if job.header_file is not None:
        header = load_header_info(job.header_file)
        if header.num_leads == 0:
            raise ValueError(f"header {job.header_file} names no leads")
        header.image_files = [os.path.basename(image)]
        return record, header, f"--header {job.header_file}"
    header = standard_header(os.path.basename(record), opts.fs_hz, opts.seconds, [os.path.basename(image)])
    return record, header, f"none: the 12 standard leads at {opts.fs_hz:g} Hz for {opts.seconds:g} s"


# --- the work -------------------------------------------------------------------------------------------

_MODELS: dict[str, tuple[object, list[str]]] = {}
_MODELS_LOCK = threading.Lock()  # a Dask worker with several threads loads the model once all the same


def load_digitizer(model: str):
    """The Digitizer of `model`, loaded once per process; the load's remarks are kept for the reports."""
    with _MODELS_LOCK:
        if model not in _MODELS:
            from paperecg.hardware import select_profile, set_threads
            from paperecg.pipeline.digitizer import Digitizer

            set_threads()
            notes: list[str] = []
            digitizer = Digitizer.load(model, device=select_profile().device,
                                       log=lambda m: notes.append(f"model: {m}"))
            _MODELS[model] = (digitizer, notes)
    return _MODELS[model]


def warm_worker(model: str) -> str:
    """Load the model into this (worker) process's cache; its identity (what `check_workers` compares)."""
    load_digitizer(model)
    return model_identity(model)


def read_job(job: Job, opts: Options):
    """Digitize one job: (header, header source, signal (num_samples, num_leads) mV, pages, messages).
    Raises ValueError with a one-line reason when nothing could be read."""
    digitizer, model_notes = load_digitizer(opts.model)
    if not job.images:
        raise ValueError("the header names no image file that exists ('# Image:' line)")
    record, header, source = job_header(job, opts)
    messages: list[str] = []
    prefix = f"{record}: "

    def note(m: str) -> None:
        messages.append(m[len(prefix):] if m.startswith(prefix) else m)

    try:
        result = digitizer.digitize_record(record, header, log=note)
    except Exception as e:  # noqa: BLE001 - a page's own failure is kept in its result: this is the image file
        names = ", ".join(os.path.basename(i) for i in job.images)
        raise ValueError(f"not a readable image ({names}): {type(e).__name__}: {e}") from e
    signal, pages = result.signal, result.pages
    if not pages:
        raise ValueError("; ".join(messages) or "no page could be read")
    if all(p.error is not None for p in pages):
        raise ValueError("; ".join(f"{os.path.basename(p.page.path)}: {p.error}" for p in pages))
    if not np.isfinite(signal).any():
        raise ValueError("no ECG trace found: every lead was left empty")
    return header, source, signal, pages, model_notes + messages


def write_outputs(job: Job, opts: Options, header: HeaderInfo, source: str, signal: np.ndarray, pages,
                  messages: list[str]) -> list[str]:
    """NAME.hea/.dat (WFDB, mV), NAME.csv, NAME.json and the overlay picture(s); returns the paths. Written
    into a staging folder and moved into place file by file, the header last (pipeline/archive.py), so a
    killed worker leaves no half-written file under its final name."""
    import json
    import shutil

    from PIL import Image

    from paperecg.pipeline.archive import publish, staging_folder
    from paperecg.pipeline.overlay import overlay_on_original
    from paperecg.records.io import sanitize_signal, write_record

    base = os.path.basename(job.name)
    stage = staging_folder(opts.out)
    try:
        safe = sanitize_signal(signal, header.num_samples, header.num_leads, [ADC_GAIN] * header.num_leads)
        comments = [f"{OUTPUT_MARK}: from {', '.join(os.path.basename(i) for i in job.images)}"]
        record = write_record(stage, base, safe, header.fs_hz, header.lead_names, comments, adc_gain=ADC_GAIN)
        written = [record + ".hea", record + ".dat"]
        with open(record + ".csv", "w") as f:
            f.write(csv_text(safe, header.fs_hz, header.lead_names))
        report = record_report(job.name, job.images, source, header.fs_hz, signal, header.lead_names, pages,
                               messages)
        overlays = []
        if opts.overlay:
            usable = [p for p in pages if p.extraction is not None and p.rectified is not None]
            for i, p in enumerate(usable):
                path = record + (OVERLAY_SUFFIX if len(usable) == 1 else f".p{i}{OVERLAY_SUFFIX}")
                try:  # a picture that cannot be drawn must not cost the signals already written
                    canvas = overlay_on_original(p.page.rgb, p.rectified, p.extraction, p.extraction.signal,
                                                 header.fs_hz, header.lead_names)
                    Image.fromarray(canvas).save(path)
                    overlays.append(path)
                except Exception as e:  # noqa: BLE001
                    report["warnings"].append(f"overlay of page {i} not drawn: {type(e).__name__}: {e}")
        report["overlays"] = [os.path.basename(p) for p in overlays]
        with open(record + ".json", "w") as f:
            json.dump(report, f, indent=1)
        staged = written + [record + ".csv", record + ".json", *overlays]
        return publish(staged, os.path.join(opts.out, os.path.dirname(job.name)))
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def digitize_job(job: Job, opts: Options) -> JobResult:
    """One job start to end; never raises (a bad image is one line in the summary, not a traceback)."""
    t0 = time.time()
    where = this_worker()
    try:
        header, source, signal, pages, messages = read_job(job, opts)
        outputs = write_outputs(job, opts, header, source, signal, pages, messages)
        model_id = model_identity(opts.model)
    except Exception as e:  # noqa: BLE001 - any failure on one input is reported and the run goes on
        reason = str(e) if isinstance(e, (ValueError, OSError)) else f"{type(e).__name__}: {e}"
        return JobResult(job.name, False, reason.replace("\n", " "), seconds=time.time() - t0, worker=where)
    read = np.isfinite(signal).any(axis=0)
    return JobResult(job.name, True, "", int(read.sum()), header.num_leads, time.time() - t0, outputs,
                     [lead for lead, r in zip(header.lead_names, read) if r], where, model_id)


def _task(args: tuple[Job, Options]) -> JobResult:
    return digitize_job(*args)


def job_inputs(job: Job) -> list[str]:
    """The files a job reads: its images and its header."""
    header = job.record + ".hea" if job.record is not None else job.header_file
    return list(job.images) + ([header] if header else [])


def run_digitize(jobs: list[Job], opts: Options, num_workers: int = 1, progress: bool = True, *,
                 manifest: Manifest | None = None, execute: Executor | None = None, executor_name: str = "",
                 retry_failed: bool = False, skipped: list[tuple[str, str, str]] = ()):
    """Every job the manifest (default: one in memory) does not count as finished, through `execute`
    (default: `num_workers` local processes, paperecg.pipeline.parallel); bad inputs are printed as they
    come, one line each. Returns (this run's results in job order, the plan: what was done before)."""
    from paperecg.pipeline.archive import local_executor

    items = [ArchiveItem(j.name, job_inputs(j), (j, opts)) for j in jobs]
    return run_archive(items, _task, manifest or Manifest(None), execute or local_executor(num_workers),
                       retry_failed=retry_failed, model_id=model_identity(opts.model),
                       executor_name=executor_name or f"local: {num_workers} processes", skipped=list(skipped),
                       out=opts.out, progress=progress)


def summary_line(results: list[JobResult], seconds: float) -> str:
    if not results:
        return f"nothing left to digitize ({seconds:.1f} s)"
    ok = [r for r in results if r.ok]
    failed = [r for r in results if not r.ok]
    line = (f"digitized {len(ok)} of {len(results)} inputs: {sum(r.leads_found for r in ok)} of "
            f"{sum(r.num_leads for r in ok)} leads found; {len(failed)} failed; {seconds:.1f} s")
    return line + (f" ({seconds / len(results):.2f} s per input)" if results else "")
