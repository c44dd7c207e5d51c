"""End-to-end benchmark: hidden view -> run_model.py -> evaluate_model's scoring.

    python bench/end2end.py --data DIR --model MODEL_DIR [--limit N] [--jobs J] [--turn 90] [--tilt-deg 10]

--turn and --tilt-deg turn every page of the hidden view (copies in the temporary folder, never the data):
first by a quarter turn (counter-clockwise on screen), then by the tilt (counter-clockwise positive, bicubic) on a
canvas grown to hold the whole turned page, its corners filled with the page's border colour.

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
    data = os.path.abspath(data)  # the links must not be relative to the temporary folder
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


def turn_page_file(path: str, turn_deg: int, tilt_deg: float) -> None:
    """Turn one page image in place (it is a copy in the benchmark's temporary folder)."""
    import numpy as np
    from PIL import Image

    from paperecg.rectify.rectify import paper_color

    with Image.open(path) as im:
        img = np.asarray(im.convert("RGB"))
    img = np.ascontiguousarray(np.rot90(img, (turn_deg // 90) % 4))
    out = Image.fromarray(img)
    if tilt_deg:
        # bicubic: a tilted scan is not blurred by the tilt; bilinear resampling alone costs ~1.7 dB here
        out = out.rotate(tilt_deg, resample=Image.BICUBIC, expand=True, fillcolor=paper_color(img))
    if path.lower().endswith((".jpg", ".jpeg")):
        out.save(path, quality=95)
    else:
        out.save(path)


def turn_pages(hidden: str, turn_deg: int, tilt_deg: float) -> int:
    """Turn every page image named by the hidden view's headers; returns how many."""
    from paperecg.records.header import get_image_files_from_header
    from paperecg.records.io import load_header

    n = 0
    for rel in find_records(hidden):
        folder = os.path.dirname(os.path.join(hidden, rel))
        for image in get_image_files_from_header(load_header(os.path.join(hidden, rel))):
            path = os.path.join(folder, image)
            if os.path.isfile(path):
                turn_page_file(path, turn_deg, tilt_deg)
                n += 1
    return n


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--limit", type=int, default=0, help="first N records only")
    p.add_argument("--keep", help="keep the outputs in this folder")
    p.add_argument("--jobs", type=int, default=1, help="run_model.py worker processes (s_per_record is wall time)")
    p.add_argument("--turn", type=int, default=0, choices=(0, 90, 180, 270),
                   help="turn every page by this many degrees (counter-clockwise) before the run")
    p.add_argument("--tilt-deg", type=float, default=0.0, help="then tilt every page by this angle (deg, ccw +)")
    a = p.parse_args(argv)

    work = tempfile.mkdtemp(prefix="end2end-")
    try:
        data = subset(a.data, a.limit, os.path.join(work, "ref")) if a.limit else a.data
        hidden = os.path.join(work, "hidden")
        make_hidden_view(data, hidden)
        if a.turn or a.tilt_deg:
            turn_pages(hidden, a.turn, a.tilt_deg)
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
            "turn_deg": a.turn,
            "tilt_deg": a.tilt_deg,
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
