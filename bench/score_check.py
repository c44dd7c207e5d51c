#!/usr/bin/env python
"""Time the challenge scorer on a reference/estimate folder pair and, optionally, check it against an
external copy of the organizers' evaluate_model.py (kept outside this repository).

    python bench/score_check.py [--ref DIR --est DIR] [--oracle DIR_WITH_THEIR_evaluate_model.py]

Default folders: ../shared/fixtures/evaluator/{ref,est}. With --oracle, both scorers run as subprocesses with
the flag sets '', '-n' (and '-x' unless --no-extra) and their printed text must be identical; a scorer that
crashes (theirs stops when an estimate header is missing, or on -x with an all-NaN lead) is reported as such.
Last line: one JSON object.
"""
import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
DEFAULT_FIXTURE = os.path.join(ROOT, "..", "shared", "fixtures", "evaluator")


def run_cli(folder: str, ref: str, est: str, flags: list[str]) -> tuple[str, float]:
    """(printed text or 'CRASH: last error line', seconds) of `folder`/evaluate_model.py."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PAPERECG_THREADS="1", PYTHONWARNINGS="ignore")
    start = time.time()
    proc = subprocess.run([sys.executable, "evaluate_model.py", "-d", ref, "-o", est, *flags], cwd=folder,
                          env=env, capture_output=True, text=True)
    seconds = time.time() - start
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return "CRASH: " + (lines[-1] if lines else f"exit {proc.returncode}"), seconds
    return proc.stdout, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ref", default=os.path.join(DEFAULT_FIXTURE, "ref"), help="reference folder")
    parser.add_argument("--est", default=os.path.join(DEFAULT_FIXTURE, "est"), help="estimate folder")
    parser.add_argument("--oracle", default=None, help="folder holding the organizers' evaluate_model.py")
    parser.add_argument("--no-extra", action="store_true", help="skip the -x comparison")
    args = parser.parse_args()

    from paperecg.score.evaluate import evaluate_folders

    start = time.process_time()
    wall = time.time()
    result = evaluate_folders(args.ref, args.est)
    cpu_s, wall_s = time.process_time() - start, time.time() - wall
    num_leads = len(result["per_lead"])
    summary = {"ref": os.path.abspath(args.ref), "est": os.path.abspath(args.est), "snr": result["snr"],
               "f_measure": result["f_measure"], "records": result["num_records"], "leads": num_leads,
               "cpu_s": round(cpu_s, 2), "wall_s": round(wall_s, 2),
               "ms_per_lead": round(1000 * cpu_s / max(num_leads, 1), 1)}
    print(f"ours: SNR {result['snr']:.3f}  F {result['f_measure']:.3f}  {num_leads} leads  "
          f"{cpu_s:.1f} s CPU ({wall_s:.1f} s wall)")

    if args.oracle:
        flag_sets = [[], ["-n"]] + ([] if args.no_extra else [["-x"]])
        agree = True
        for flags in flag_sets:
            theirs, t_theirs = run_cli(args.oracle, args.ref, args.est, flags)
            ours, t_ours = run_cli(ROOT, args.ref, args.est, flags)
            same = theirs == ours
            agree &= same or theirs.startswith("CRASH")
            print(f"[{' '.join(flags) or 'default'}] {'same' if same else 'DIFFERENT'}  "
                  f"theirs {t_theirs:.0f} s: {theirs.strip()!r}  ours {t_ours:.0f} s: {ours.strip()!r}")
        summary["oracle_agrees"] = agree
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
