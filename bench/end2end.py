"""End-to-end benchmark: hidden view -> run_model.py -> evaluate_model's scoring.

    python bench/end2end.py --data DIR --model MODEL_DIR [--limit N] [--jobs J]

DIR is a challenge-format folder with references (masked signals, labels, images). Last line: one JSON
object with snr_db, macro_f, s_per_record (wall time of run_model.py per record, CPU threads as set by
PAPERECG_THREADS, default 2, shared by the --jobs workers), peak_rss_mb (largest resident set of one process
of the run), failures (records whose digitization or classification raised and fell back), records, and the
shares of scored leads the output leaves empty (0 dB each) or only partly covers (leads_empty, leads_partial).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from paperecg.records.io import find_records  # noqa: E402
from paperecg.score.evaluate import evaluate_folders  # noqa: E402
from paperecg.tools.hidden_view import make_hidden_view  # noqa: E402


def subset(data: str, limit: int, dst: str) -> str:
    """A folder holding the first `limit` records of data (symlinks, nothing copied)."""
    for rel in find_records(data)[:limit]:
        src_dir = os.path.dirname(os.path.join(data, rel))
        stem = os.path.basename(rel)
        out_dir = os.path.join(dst, os.path.dirname(rel))
        os.makedirs(out_dir, exist_ok=True)
        for f in os.listdir(src_dir):
            if f == stem + ".hea" or f.startswith(stem + ".") or f.startswith(stem + "-"):
                target = os.path.join(out_dir, f)
                if not os.path.exists(target):
                    os.symlink(os.path.join(src_dir, f), target)
    return dst


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--limit", type=int, default=0, help="first N records only")
    p.add_argument("--keep", help="keep the outputs in this folder")
    p.add_argument("--jobs", type=int, default=1, help="run_model.py worker processes (s_per_record is wall time)")
    a = p.parse_args(argv)

    work = tempfile.mkdtemp(prefix="end2end-")
    try:
        data = subset(a.data, a.limit, os.path.join(work, "ref")) if a.limit else a.data
        hidden = os.path.join(work, "hidden")
        make_hidden_view(data, hidden)
        out = a.keep or os.path.join(work, "out")
        n = len(find_records(hidden))
        threads = int(os.environ.get("PAPERECG_THREADS", "2"))
        env = {**os.environ, "PYTHONPATH": ROOT, "PAPERECG_THREADS": str(max(1, threads // max(1, a.jobs)))}
        t0 = time.time()
        proc = subprocess.run([sys.executable, os.path.join(ROOT, "run_model.py"), "-d", hidden, "-m", a.model,
                               "-o", out, "--jobs", str(a.jobs)], cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.time() - t0
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"run_model.py failed with exit code {proc.returncode}")
        failures = sum(1 for line in proc.stderr.splitlines() if " failed" in line and line.startswith("[paperecg]"))
        scores = evaluate_folders(data, out)
        # abstention under the scorer: a lead left empty scores 0 dB, a partly covered one is scaled down
        coverage = [s.coverage for s in scores["per_lead"] if np.isfinite(s.coverage)]
        result = {
            "snr_db": round(float(scores["snr"]), 3),
            "macro_f": round(float(scores["f_measure"]), 3),
            "s_per_record": round(wall / max(n, 1), 3),
            "peak_rss_mb": round(peak_mb, 1),
            "failures": failures,
            "leads_empty": round(float(np.mean([c == 0 for c in coverage])), 4) if coverage else None,
            "leads_partial": round(float(np.mean([0 < c < 1 for c in coverage])), 4) if coverage else None,
            "records": n,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
