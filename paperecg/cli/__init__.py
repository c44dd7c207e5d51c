"""`paperecg`: digitize your own ECG printouts, classify them, render training pages, score outputs.

    paperecg digitize scan.jpg -o out            # out/scan.hea/.dat (WFDB, mV), .csv, .json, .overlay.png
    paperecg digitize photos/ -o out --jobs 2    # every image under photos/, two worker processes
    paperecg digitize archive/ -o out --cluster local:4   # resumable (out/manifest.sqlite), on Dask
    paperecg classify scan.jpg [--json]          # diagnostic classes with their probabilities
    paperecg render --records DIR --out OUT      # synthetic training pages (paperecg.tools.render_folder)
    paperecg evaluate -d REFERENCES -o OUTPUTS   # the challenge scores (SNR, macro F)

The model folder is found in this order: --model DIR, the environment variable PAPERECG_MODEL, the copy
installed with the package (`pip install .`), the checkout's model/ (running from a clone), ./model.
Exit codes: 0 every input was read, 1 some failed (listed), 2 bad usage.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

MODEL_ENV = "PAPERECG_MODEL"
SCHEDULER_ENV = "PAPERECG_SCHEDULER"  # the Dask scheduler's address, as --scheduler
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../paperecg

DIGITIZE_EXAMPLES = """examples:
  paperecg digitize scan.jpg                      # writes scan.hea/.dat, scan.csv, scan.json, scan.overlay.png here
  paperecg digitize photos/ -o out --jobs 2       # every image under photos/ (recursively), 2 processes
  paperecg digitize strip.png --fs 250 --seconds 10 --no-overlay
  paperecg digitize page.png --header 00001.hea   # a record's rate, length and leads instead of the standard 12
  paperecg digitize archive/ -o out --retry-failed          # a second run: skip what is done, retry failures
  paperecg digitize archive/ -o out --cluster local:4       # a Dask LocalCluster of 4 worker processes
  paperecg digitize archive/ -o out --scheduler tcp://10.0.0.5:8786   # an existing Dask cluster

Outputs per input NAME (folder inputs keep their sub-folders under OUT):
  NAME.hea/.dat     WFDB record, leads in mV (16-bit, 0.001 mV steps); empty (NaN) where a lead was not read
  NAME.csv          time_s, then one column per lead in mV; empty cells where not read
  NAME.json         layout, lead order and where each name came from, scale (px per mm), rotation applied,
                    per-lead confidence and coverage, warnings
  NAME.overlay.png  the digitized trace drawn thin and see-through over your image, one colour per lead:
                    where it does not sit on the printed trace, the reading is wrong there
A header (.hea) that names images with '# Image:' (a challenge record) is read with its rate, length and
leads, its pages together; --ignore-headers reads every image alone.

A run with a folder among its inputs keeps OUT/manifest.sqlite (and its copy OUT/manifest.csv): one row per
input with its status (done, failed, pending, skipped: not an image), the reason of a failure, the leads
found, seconds, worker and model identity. Running the same command again skips what is done and what
failed (--retry-failed retries the failures); what a killed run left pending is read again. Outputs are
moved into place whole, so a killed run leaves no half-written record."""

CLASSIFY_EXAMPLES = """examples:
  paperecg classify scan.jpg                  # 'scan: NORM 0.83'
  paperecg classify photos/ --json > classes.json"""

EVALUATE_EXAMPLES = """examples:
  paperecg evaluate -d references/ -o out/          # 'SNR: ...' and 'F-measure: ...'
  paperecg evaluate -d references/ -o out/ -x --details scores/"""

RENDER_HELP = ("synthetic printed pages with exact labels from WFDB records (paperecg.tools.render_folder); "
               "example: paperecg render --records records100/ --out pages/ --pages-per-record 2")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def _is_model(folder: str) -> bool:
    return os.path.isdir(os.path.join(folder, "segmenter")) or os.path.isfile(os.path.join(folder, "prevalence.json"))


def model_candidates(flag: str | None) -> list[tuple[str, str]]:
    """(folder, why) in the documented search order."""
    out = []
    if flag:
        return [(flag, "--model")]
    if os.environ.get(MODEL_ENV):
        return [(os.environ[MODEL_ENV], MODEL_ENV)]
    out.append((os.path.join(PACKAGE_DIR, "model"), "installed with the package"))
    out.append((os.path.join(os.path.dirname(PACKAGE_DIR), "model"), "the checkout's model/"))
    out.append((os.path.join(os.getcwd(), "model"), "./model"))
    return out


def find_model(flag: str | None) -> str:
    """The model folder (see the module doc); raises UsageError naming every place looked at."""
    from .digitize import UsageError

    tried = []
    for folder, why in model_candidates(flag):
        if _is_model(folder):
            return folder
        tried.append(f"{folder} ({why})")
    raise UsageError("no trained model found; looked in " + ", ".join(tried) +
                     f". Name one with --model DIR or {MODEL_ENV}=DIR")


def build_parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="paperecg", description=__doc__, formatter_class=_Formatter)
    sub = top.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser("digitize", help="images or folders -> WFDB + CSV + JSON + overlay per image",
                       description="Digitize ECG printouts: no header needed.", epilog=DIGITIZE_EXAMPLES,
                       formatter_class=_Formatter)
    d.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders (searched recursively) or .hea records")
    d.add_argument("-o", "--out", default=".", help="output folder (default: the current folder)")
    d.add_argument("--model", default=None, help=f"model folder (default: ${MODEL_ENV}, the installed or checkout model/)")
    d.add_argument("--fs", type=float, default=500.0, help="sampling rate of the output in Hz (default 500)")
    d.add_argument("--seconds", type=float, default=10.0, help="length of the printed record in s (default 10)")
    d.add_argument("--header", default=None, metavar="FILE",
                   help="use this WFDB header's rate, length and leads for every image instead")
    d.add_argument("--ignore-headers", action="store_true",
                   help="read every image alone, even those a header in the folder names")
    d.add_argument("-j", "--jobs", type=int, default=1, help="worker processes (default 1)")
    d.add_argument("--retry-failed", action="store_true",
                   help="read again the inputs the manifest lists as failed (default: skip them)")
    d.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                   help="run on this Dask scheduler's workers (default: $PAPERECG_SCHEDULER; needs paperecg[cluster])")
    d.add_argument("--cluster", default=None, metavar="local:N",
                   help="start a Dask LocalCluster of N worker processes here (needs paperecg[cluster])")
    d.add_argument("--no-overlay", action="store_true", help="do not write NAME.overlay.png")
    d.add_argument("-q", "--quiet", action="store_true", help="no progress bar")

    c = sub.add_parser("classify", help="diagnostic classes with probabilities per image or record",
                       description="Digitize each input, then classify it.", epilog=CLASSIFY_EXAMPLES,
                       formatter_class=_Formatter)
    c.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders or .hea records")
    c.add_argument("--model", default=None, help="model folder (see `paperecg --help`)")
    c.add_argument("--fs", type=float, default=500.0, help="sampling rate for header-less images (Hz)")
    c.add_argument("--seconds", type=float, default=10.0, help="record length for header-less images (s)")
    c.add_argument("--json", action="store_true", help="one JSON document on stdout")

    sub.add_parser("render", help=RENDER_HELP, add_help=False)

    e = sub.add_parser("evaluate", help="score outputs against references (the challenge's SNR and macro F)",
                       description="Score outputs like the organizers' evaluate_model.py.", epilog=EVALUATE_EXAMPLES,
                       formatter_class=_Formatter)
    e.add_argument("-d", "--folder_ref", required=True, help="reference records (signals, labels)")
    e.add_argument("-o", "--folder_est", required=True, help="outputs to score (same record names)")
    e.add_argument("-n", "--no_shift", action="store_true", help="score without the alignment step")
    e.add_argument("-x", "--extra_scores", action="store_true", help="add the non-ranking metrics")
    e.add_argument("-s", "--score_file", default=None, help="write the scores here")
    e.add_argument("--details", default=None, help="folder for per_lead.tsv and per_class.tsv")
    return top


# --- commands ---------------------------------------------------------------------------------------------

def cmd_digitize(a: argparse.Namespace) -> int:
    from paperecg.pipeline.archive import MANIFEST_NAME, Manifest

    from .digitize import (Options, absolute_job, check_overwrites, find_jobs, other_files, run_digitize,
                           summary_line)

    if a.jobs < 1 or a.fs <= 0 or a.seconds <= 0:
        raise _usage("--jobs, --fs and --seconds must be positive")
    if a.header is not None and not os.path.isfile(a.header):
        raise _usage(f"--header {a.header}: no such file")
    scheduler = a.scheduler or os.environ.get(SCHEDULER_ENV) or None
    if a.cluster and scheduler:
        raise _usage(f"--cluster starts a cluster, --scheduler (or {SCHEDULER_ENV}) names one: give one of them")
    if (a.cluster or scheduler) and a.jobs > 1:
        raise _usage("--jobs is for local processes; on a Dask cluster the workers decide (--cluster local:N)")
    local_workers = parse_local_cluster(a.cluster) if a.cluster else 0
    opts = Options(out=a.out, model=find_model(a.model), fs_hz=a.fs, seconds=a.seconds, overlay=not a.no_overlay)
    jobs = find_jobs(a.paths, use_headers=not a.ignore_headers, header_file=a.header, out=a.out)
    check_overwrites(jobs, a.out)
    if a.cluster or scheduler:  # workers may run in another folder or on another machine: absolute paths
        opts = dataclasses.replace(opts, out=os.path.abspath(opts.out), model=os.path.abspath(opts.model))
        jobs = [absolute_job(j) for j in jobs]
    archive = any(os.path.isdir(p) for p in a.paths)
    if archive:
        os.makedirs(a.out, exist_ok=True)
    manifest = Manifest(os.path.join(a.out, MANIFEST_NAME) if archive else None)
    t0 = time.time()
    dask = {}  # the client and cluster, started only when there is work to hand out

    def on_dask(fn, payloads, names):
        dask["client"], dask["cluster"], execute = _dask_executor(local_workers, scheduler, opts.model)
        return execute(fn, payloads, names)

    try:
        results, plan = run_digitize(jobs, opts, a.jobs, progress=not a.quiet, manifest=manifest,
                                     execute=on_dask if (a.cluster or scheduler) else None,
                                     executor_name=(f"dask LocalCluster of {local_workers} workers" if a.cluster
                                                    else f"dask {scheduler}" if scheduler else ""),
                                     retry_failed=a.retry_failed, skipped=other_files(a.paths, a.out))
        rows = manifest.rows()
    except Exception as e:  # a local worker process died (joblib cannot go on without it)
        if type(e).__name__ not in ("TerminatedWorkerError", "BrokenProcessPool"):
            raise
        print(f"paperecg digitize: a worker process died ({type(e).__name__}); what was done is in the manifest: "
              "run the same command again to go on (or use --cluster local:N, which replaces dead workers)",
              file=sys.stderr)
        return 1
    finally:
        manifest.close()
        if dask.get("client") is not None:
            dask["client"].close()
        if dask.get("cluster") is not None:
            dask["cluster"].close()
    failed = [r for r in results if not r.ok]
    kept = [(name, row["reason"]) for name, row in rows.items()
            if row["status"] == "failed" and name not in {r.name for r in results}]
    skipped = sum(row["status"] == "skipped" for row in rows.values())
    print(summary_line(results, time.time() - t0))
    if archive:
        print(f"manifest {os.path.join(a.out, MANIFEST_NAME)}: {plan.done_before} done before this run, "
              f"{len(kept)} failed before (kept: --retry-failed reads them again), {skipped} files not images")
    if failed or kept:
        print("failed:\n" + "\n".join(f"  {name}: {msg}" for name, msg in [(r.name, r.message) for r in failed] + kept))
    return 1 if failed or kept else 0


def parse_local_cluster(spec: str) -> int:
    """'local:N' -> N (>= 1); UsageError otherwise."""
    kind, _, count = spec.partition(":")
    if kind != "local" or not count.isdigit() or int(count) < 1:
        raise _usage(f"--cluster {spec!r}: expected local:N, e.g. local:4 (N worker processes on this machine); "
                     "for a cluster elsewhere, --scheduler tcp://HOST:PORT")
    return int(count)


def _dask_executor(local_workers: int, scheduler: str | None, model: str):
    """(client, cluster, executor) for --cluster local:N or --scheduler ADDRESS."""
    import functools

    try:
        from paperecg.pipeline import cluster as dask_cluster
    except ImportError as e:
        raise _usage(f"Dask is not installed ({e}): pip install 'paperecg[cluster]'") from None
    from paperecg.hardware import cuda_device_count
    from paperecg.pipeline.archive import model_identity

    from .digitize import warm_worker

    gpus = cuda_device_count() if local_workers else 0
    client, cluster, name = dask_cluster.start_client(scheduler, local_workers, gpus)
    print(dask_cluster.dashboard_line(client), file=sys.stderr)
    warm = functools.partial(warm_worker, model)
    client.register_plugin(dask_cluster.WarmWorker(warm, local_workers, gpus))
    problems = [] if cluster is not None else (  # a LocalCluster's workers read this very folder
        dask_cluster.check_workers(client, functools.partial(model_identity, model), model_identity(model)))
    if problems:
        client.close()
        if cluster is not None:
            cluster.close()
        raise _usage("workers without this model (same package and model folder needed on every worker):\n  "
                     + "\n  ".join(problems))
    workers = client.nthreads()
    print(f"{name}: {len(workers)} workers, {sum(workers.values())} threads"
          + ("" if workers else " (none yet: the inputs wait for workers to join)"), file=sys.stderr)
    return client, cluster, dask_cluster.dask_executor(client)


def label_probabilities(model, p_signal, p_image):
    """(probabilities, labels) as the trained classifier decides them (classify.model.Classifier.decide_probs):
    the fused probabilities when both branches answer, else the branch that did."""
    labels = model.decide_probs(p_signal, p_image)
    if p_signal is not None and p_image is not None:
        w = model.cfg.fusion_weight_signal
        return w * p_signal + (1.0 - w) * p_image, labels
    return (p_signal if p_signal is not None else p_image), labels


def cmd_classify(a: argparse.Namespace) -> int:
    from paperecg.pipeline.entry import Labeller

    from .digitize import Options, find_jobs, read_job

    model = find_model(a.model)
    opts = Options(out="", model=model, fs_hz=a.fs, seconds=a.seconds, overlay=False)
    jobs = find_jobs(a.paths)
    classifier = Labeller.load(model)
    answers, failed = [], []
    for job in jobs:
        try:
            header, _source, signal, pages, _msgs = read_job(job, opts)
        except Exception as e:  # noqa: BLE001 - reported, the run goes on
            failed.append(f"{job.name}: {e}")
            print(f"{job.name}: failed: {e}", file=sys.stderr)
            continue
        images = [p.rectified.image if p.rectified is not None else p.page.rgb for p in pages]
        if classifier.model is None:
            labels, probs = classifier.prevalence.predict(), dict(classifier.prevalence.prevalence)
            how = "label prevalence (no trained classifier in the model)"
        else:
            m = classifier.model
            branches = m.branch_probs(images, signal, header)
            p, labels = label_probabilities(m, branches["signal"], branches["image"])
            probs = {} if p is None else {c: round(float(v), 4) for c, v in zip(m.cfg.classes, p)}
            how = "signal" if branches["image"] is None else ("image" if branches["signal"] is None else "fused")
        answers.append({"name": job.name, "labels": labels, "probabilities": probs, "from": how})
        if not a.json:
            print(f"{job.name}: " + (", ".join(f"{c} {probs.get(c, float('nan')):.2f}" for c in labels) or "-"))
    if a.json:
        print(json.dumps({"results": answers, "failed": failed}, indent=1))
    return 1 if failed else 0


def cmd_evaluate(a: argparse.Namespace) -> int:
    from paperecg.score.evaluate import evaluate_folders, format_scores, write_details

    for folder in (a.folder_ref, a.folder_est):
        if not os.path.isdir(folder):
            raise _usage(f"no such folder: {folder}")
    result = evaluate_folders(a.folder_ref, a.folder_est, align=not a.no_shift, extra=a.extra_scores)
    text = format_scores(result, a.extra_scores)
    if a.details:
        write_details(result, a.details)
    if a.score_file:
        with open(a.score_file, "w") as f:
            f.write(text)
    else:
        print(text)
    return 0


def _usage(message: str):
    from .digitize import UsageError

    return UsageError(message)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "render":  # the renderer keeps its own options and --help
        from paperecg.tools.render_folder import main as render_main

        sys.argv[0] = "paperecg render"
        return int(render_main(argv[1:]) or 0)
    parser = build_parser()
    a = parser.parse_args(argv)
    if a.command is None:
        parser.error("name a command: digitize, classify, render or evaluate (paperecg --help)")
    from .digitize import UsageError

    commands = {"digitize": cmd_digitize, "classify": cmd_classify, "evaluate": cmd_evaluate}
    try:
        return commands[a.command](a)
    except UsageError as e:
        print(f"paperecg {a.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def entry_point() -> None:
    """The console script."""
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
