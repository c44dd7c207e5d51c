"""Per-lead fidelity benchmark: amplitude ratio, time drift and best lag of every digitized lead.

    python bench/fidelity.py --data DIR --est KEPT_OUTPUT_DIR        # score a kept output (no run)
    python bench/fidelity.py --data DIR --model MODEL [--limit N] [--keep DIR] [--jobs J]   # run, then score

DIR is a challenge-format folder with references. With --est, the records scored are those of DIR that
have an estimate header in KEPT_OUTPUT_DIR (a `bench/end2end.py --keep` folder, possibly of a --limit run).
With --model, `bench/end2end.py` runs first (its JSON's snr_db and macro_f are carried over).

Per lead, after the organizers' alignment (`paperecg/score/fidelity.py`):
- amplitude ratio: digitized 1-99 % range / the reference's, over the samples both have;
- drift: best lag of the window's second half minus that of its first half, in ms per second between the
  halves' centres;
- lag: the scorer's best lag of the whole lead (ms; positive = the estimate comes late);
- start / end gain: the SNR the lead would gain were the first / last 100 ms of its drawn window read
  exactly (where along a lead the error sits; an even spread puts about 0.2 dB in each end);
- re-timing gain: the SNR the lead would gain were every 0.3 s of it read at its own best shift within
  +-10 ms (an oracle: how much of the error is the local time axis, which a crease moves beat by beat).
Leads whose estimate covers under half of the reference's drawn samples are counted, not measured.
Prints one line per record, then the set's figures; last line one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from paperecg.records.io import find_records, header_path, load_signal  # noqa: E402
from paperecg.score.evaluate import match_leads  # noqa: E402
from paperecg.score.fidelity import LeadFidelity, lead_fidelity, summarize  # noqa: E402


def record_fidelity(ref_path: str, est_path: str) -> tuple[list[str], list[LeadFidelity]]:
    """(lead names, per-lead fidelity) of one record (an estimate without signal gives empty leads)."""
    ref, fields = load_signal(ref_path)
    if ref is None:
        return [], []
    names = list(fields["sig_name"])
    fs_hz = float(fields["fs"])
    est, est_fields = load_signal(est_path) if os.path.isfile(header_path(est_path)) else (None, None)
    est = np.full(ref.shape, np.nan) if est is None else match_leads(est, list(est_fields["sig_name"]), names)
    return names, [lead_fidelity(ref[:, j], est[:, j], fs_hz) for j in range(len(names))]


def _fmt(x: float, spec: str) -> str:
    return format(x, spec) if np.isfinite(x) else "nan"


def score_folder(data: str, est_dir: str, verbose: bool = True) -> dict:
    """Fidelity figures of every record of `data` that has an estimate header in est_dir."""
    rows: list[LeadFidelity] = []
    records = [r for r in find_records(data) if os.path.isfile(header_path(os.path.join(est_dir, r)))]
    if not records:
        raise SystemExit(f"no record of {data} has an estimate in {est_dir}")
    for rec in records:
        names, leads = record_fidelity(os.path.join(data, rec), os.path.join(est_dir, rec))
        rows += leads
        if verbose:
            ratio = np.array([f.amplitude_ratio for f in leads])
            drift = np.array([f.drift_ms_per_s for f in leads])
            lag = np.array([f.lag_ms for f in leads])
            with np.errstate(all="ignore"):
                per_lead = " ".join(f"{n}:{_fmt(f.amplitude_ratio, '.2f')}/{_fmt(f.drift_ms_per_s, '+.0f')}"
                                    f"/{_fmt(f.lag_ms, '+.0f')}" for n, f in zip(names, leads))
                print(f"{rec}: ratio med {_fmt(float(np.nanmedian(ratio)) if np.isfinite(ratio).any() else np.nan, '.3f')}"
                      f" |drift| med {_fmt(float(np.nanmedian(np.abs(drift))) if np.isfinite(drift).any() else np.nan, '.1f')}"
                      f" max {_fmt(float(np.nanmax(np.abs(drift))) if np.isfinite(drift).any() else np.nan, '.1f')} ms/s"
                      f" |lag| med {_fmt(float(np.nanmedian(np.abs(lag))) if np.isfinite(lag).any() else np.nan, '.0f')} ms"
                      f"  [lead:ratio/drift ms/s/lag ms] {per_lead}")
    out = summarize(rows)
    out["records"] = len(records)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="reference folder")
    p.add_argument("--est", help="a kept output folder to score (no run)")
    p.add_argument("--model", help="run bench/end2end.py with this model first")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--keep", help="with --model: keep the outputs here")
    p.add_argument("--quiet", action="store_true", help="no per-record lines")
    a = p.parse_args(argv)
    if bool(a.est) == bool(a.model):
        p.error("give exactly one of --est and --model")
    run = {}
    with tempfile.TemporaryDirectory(prefix="fidelity-") as tmp:
        est_dir = a.est
        if a.model:
            est_dir = a.keep or os.path.join(tmp, "out")
            cmd = [sys.executable, os.path.join(ROOT, "bench", "end2end.py"), "--data", a.data, "--model", a.model,
                   "--keep", est_dir, "--jobs", str(a.jobs)] + (["--limit", str(a.limit)] if a.limit else [])
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
            if proc.returncode != 0:
                print(proc.stderr[-3000:], file=sys.stderr)
                raise SystemExit(f"end2end.py failed with exit code {proc.returncode}")
            last = json.loads(proc.stdout.strip().splitlines()[-1])
            run = {k: last.get(k) for k in ("snr_db", "macro_f")}
        out = score_folder(a.data, est_dir, verbose=not a.quiet)
    out.update(run)
    print(f"amplitude ratio: median {out['ratio_median']}, within 0.85-1.15 {out['ratio_in_085_115']}, "
          f"below 0.8 {out['ratio_below_08']} ({out['leads_measured']} of {out['leads']} leads measured)")
    print(f"|drift| ms/s: median {out['drift_median']}, p90 {out['drift_p90']}, <=3 {out['drift_le3']}, "
          f">10 {out['drift_gt10']}")
    print(f"|lag| ms: median {out['lag_median_ms']}, p90 {out['lag_p90_ms']} (signed median "
          f"{out['lag_signed_median_ms']})")
    print(f"exact first / last 100 ms of every lead: +{out['start_gain_db']} / +{out['end_gain_db']} dB of the "
          f"mean lead SNR")
    print(f"every 0.3 s of every lead read at its own best shift within +-10 ms (an oracle of the local time "
          f"axis): +{out['retime_gain_db']} dB")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
