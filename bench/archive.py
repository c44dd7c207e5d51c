"""Throughput of `paperecg digitize` over an archive: 1 local process, 2 local processes (joblib) and a
2-worker Dask LocalCluster on the same pages, and what 100,000 pages would take.

    PAPERECG_THREADS=1 OMP_NUM_THREADS=1 python bench/archive.py --pages DIR [--n 40] [--model model] [--repeat 1]

DIR gets `--n` printed pages from the project's renderer (3x4+1 at 200 dpi, synthetic 10-s ECGs, 500 Hz) unless
it has them already. Each mode runs the command as a user does (`python -m paperecg.cli digitize DIR -o OUT`,
with `--jobs 1`, `--jobs 2`, `--cluster local:2`), into a fresh OUT, one torch thread per worker process.
Figures per mode:
- pages_per_s: pages / wall time of the whole command (start-up, model loads, cluster start included);
- steady_pages_per_s: pages per second once every worker has finished its first page (from the manifest's
  finish times), i.e. without the start-up;
- startup_s: wall time beyond the steady rate (wall - pages / steady rate);
- projected_h_100k: startup_s + 100,000 / steady_pages_per_s, in hours;
- cpu_s_per_page: CPU seconds of the command and all its processes (workers, nannies, scheduler), per page:
  what the machine spent, whatever else ran on it.
cluster_overhead is 1 - cluster / local for 2 workers, on pages_per_s and the steady rate, and
cluster / local - 1 on cpu_s_per_page. With
--repeat R the 2-worker pair runs R times in alternating order and the medians are reported. Every mode's
CSVs are compared byte for byte (identical_outputs). The 1-minute load average before and after each run is
given: other processes on the machine slow every mode, so compare modes of one invocation only.
Last line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

PROJECT_PAGES = 100_000
MODES = {"local_1": ["--jobs", "1"], "local_2": ["--jobs", "2"], "cluster_2": ["--cluster", "local:2"]}
WORKERS = {"local_1": 1, "local_2": 2, "cluster_2": 2}


def make_pages(folder: str, n: int) -> list[str]:
    """n printed pages (PNG) in folder, made once: page000.png ..."""
    from PIL import Image

    from paperecg.layouts import STANDARD_LEADS
    from paperecg.records.synthetic import synthetic_ecg
    from paperecg.render.page import RenderStyle, render_page

    os.makedirs(folder, exist_ok=True)
    paths = []
    for i in range(n):
        path = os.path.join(folder, f"page{i:03d}.png")
        if not os.path.isfile(path):
            signal = synthetic_ecg(500.0, 10.0, "NORM", i)
            page = render_page(signal, 500.0, list(STANDARD_LEADS), RenderStyle(layout="3x4+1"))
            Image.fromarray(page.image).save(path + ".tmp.png")
            os.replace(path + ".tmp.png", path)  # a page cut short by a kill is never taken for a page
        paths.append(path)
    return paths


def finish_times_s(manifest: str) -> list[float]:
    """Each done page's finish time (s since the epoch), sorted."""
    db = sqlite3.connect(manifest)
    rows = db.execute("SELECT finished_utc FROM inputs WHERE status = 'done'").fetchall()
    db.close()
    return sorted(datetime.strptime(r[0], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() for r in rows)


def steady_rate(times_s: list[float], workers: int) -> float | None:
    """Pages per second after every worker has finished one page (its model load and warm-up)."""
    if len(times_s) <= workers + 1:
        return None
    span = times_s[-1] - times_s[workers - 1]
    return (len(times_s) - workers) / span if span > 0 else None


def run_mode(mode: str, pages_dir: str, out: str, model: str, n: int) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, PYTHONPATH=ROOT, PAPERECG_THREADS=os.environ.get("PAPERECG_THREADS", "1"),
               OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    cmd = [sys.executable, "-m", "paperecg.cli", "digitize", pages_dir, "-o", out, "--model", model, "-q",
           *MODES[mode]]
    load_before = os.getloadavg()[0]
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall_s = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    if r.returncode != 0:
        raise SystemExit(f"{mode} failed ({r.returncode}): {r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    times = finish_times_s(os.path.join(out, "manifest.sqlite"))
    if len(times) != n:
        raise SystemExit(f"{mode}: {len(times)} of {n} pages done")
    steady = steady_rate(times, WORKERS[mode])
    startup_s = wall_s - n / steady if steady else None
    result = {"mode": mode, "workers": WORKERS[mode], "wall_s": round(wall_s, 2), "pages_per_s": round(n / wall_s, 4),
              "cpu_s_per_page": round(cpu_s / n, 3),
              "steady_pages_per_s": round(steady, 4) if steady else None,
              "startup_s": round(startup_s, 1) if startup_s is not None else None,
              "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)}
    if steady:
        result["projected_h_100k"] = round((max(startup_s, 0.0) + PROJECT_PAGES / steady) / 3600, 2)
    print(json.dumps(result), flush=True)
    return result


def csv_bytes(out: str) -> dict[str, bytes]:
    found = {}
    for name in sorted(os.listdir(out)):
        if name.endswith(".csv") and name != "manifest.csv":
            with open(os.path.join(out, name), "rb") as f:
                found[name] = f.read()
    return found


def median_of(runs: list[dict], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return round(statistics.median(values), 4) if values else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", required=True, help="folder of the generated pages (made if missing)")
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--model", default=os.path.join(ROOT, "model"))
    ap.add_argument("--repeat", type=int, default=1, help="runs of the 2-worker pair (alternating order)")
    ap.add_argument("--keep", default=None, help="keep each mode's outputs here (default: a temporary folder)")
    a = ap.parse_args(argv)
    make_pages(a.pages, a.n)
    work = a.keep or tempfile.mkdtemp(prefix="bench-archive-")
    runs: dict[str, list[dict]] = {m: [] for m in MODES}
    outputs: dict[str, dict[str, bytes]] = {}
    order = ["local_1"] + [m for k in range(a.repeat)
                           for m in (("local_2", "cluster_2") if k % 2 == 0 else ("cluster_2", "local_2"))]
    for k, mode in enumerate(order):
        out = os.path.join(work, f"{mode}-{k}")
        runs[mode].append(run_mode(mode, a.pages, out, a.model, a.n))
        outputs.setdefault(mode, csv_bytes(out))
    if not a.keep:
        shutil.rmtree(work, ignore_errors=True)
    summary = {m: {"pages_per_s": median_of(rs, "pages_per_s"), "cpu_s_per_page": median_of(rs, "cpu_s_per_page"), "steady_pages_per_s": median_of(rs, "steady_pages_per_s"),
                   "startup_s": median_of(rs, "startup_s"), "projected_h_100k": median_of(rs, "projected_h_100k"),
                   "runs": len(rs)} for m, rs in runs.items()}
    local, cluster = summary["local_2"], summary["cluster_2"]
    overhead = {key: round(1.0 - cluster[key] / local[key], 4) for key in ("pages_per_s", "steady_pages_per_s")
                if local[key] and cluster[key]}
    if local["cpu_s_per_page"] and cluster["cpu_s_per_page"]:  # CPU spent per page, all processes together
        overhead["cpu_s_per_page"] = round(cluster["cpu_s_per_page"] / local["cpu_s_per_page"] - 1.0, 4)
    reference = outputs["local_1"]
    print(json.dumps({"pages": a.n, "threads_per_worker": int(os.environ.get("PAPERECG_THREADS", "1")),
                      "cpu_count": os.cpu_count(), **summary,
                      "cluster_overhead": overhead, "cluster_overhead_ok": all(v <= 0.10 for v in overhead.values()),
                      "identical_outputs": all(o == reference for o in outputs.values()) and len(reference) == a.n}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
