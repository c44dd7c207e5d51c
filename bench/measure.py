"""Accuracy of the clinical measurements (paperecg/classify/measure.py) on what a printout shows.

For each record: the measurements of the full 10-s, 12-lead signal (the reference we can derive) against the
same measurements of its 3x4+1 page view (each lead over its 2.5-s column, lead II over 10 s), optionally
with digitization-like noise. Reports per measurement the median absolute difference, the share within a
clinical tolerance, and agreement of the rate classes (<60, 60-100, >100 bpm) and of QRS >= 120 ms.

    python bench/measure.py --data ../shared/data/ptbxl --folds 9 [--limit N]
Last line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from paperecg.classify.measure import FEATURE_NAMES, measure_leads  # noqa: E402
from paperecg.classify.signal_data import INTERNAL_FS_HZ, apply_layout_mask, to_internal  # noqa: E402
from paperecg.records.io import load_header_info, load_signal  # noqa: E402
from paperecg.records.ptbxl import select_records  # noqa: E402

# measurement: tolerance (same unit) for "agrees"
TOLERANCE = {"hr_bpm": 3.0, "qrs_ms": 20.0, "axis_deg": 20.0, "sokolow_mv": 0.3, "cornell_mv": 0.3,
             "st_min_lat_mv": 0.05, "t_min_lat_mv": 0.1, "rr_cv": 0.05, "p_corr": 0.15}


def _axis(m: np.ndarray) -> float:
    return float(np.degrees(np.arctan2(m[FEATURE_NAMES.index("axis_sin")], m[FEATURE_NAMES.index("axis_cos")])))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--folds", default="9")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--noise-mv", type=float, default=0.0, help="Gaussian noise added to the page view")
    a = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    full, page, t_cpu = [], [], 0.0
    for rec in select_records(a.data, a.folds)[: a.limit]:
        info = load_header_info(rec)
        sig, _ = load_signal(rec)
        x = to_internal(sig, info.fs_hz, info.lead_names).astype(np.float64)
        v = apply_layout_mask(x, "3x4+1").astype(np.float64)
        if a.noise_mv > 0:
            v = v + rng.normal(0.0, a.noise_mv, v.shape)
        t0 = time.process_time()
        full.append(measure_leads(x, INTERNAL_FS_HZ))
        page.append(measure_leads(v, INTERNAL_FS_HZ))
        t_cpu += time.process_time() - t0
    full, page = np.array(full), np.array(page)
    res: dict = {"bench": "measure", "records": len(full), "cpu_s_per_measurement": round(t_cpu / (2 * len(full)), 4)}
    for name, tol in TOLERANCE.items():
        if name == "axis_deg":
            f = np.array([_axis(m) for m in full])
            p = np.array([_axis(m) for m in page])
            d = np.abs((p - f + 180.0) % 360.0 - 180.0)
        else:
            k = FEATURE_NAMES.index(name)
            f, p = full[:, k], page[:, k]
            d = np.abs(p - f)
        ok = np.isfinite(d)
        res[name] = {"median_abs_diff": round(float(np.median(d[ok])), 3) if ok.any() else None,
                     "within_tol": round(float(np.mean(d[ok] <= tol)), 3) if ok.any() else None, "tol": tol,
                     "missing_page": round(float(np.mean(~np.isfinite(p))), 3)}
    hr_f, hr_p = full[:, FEATURE_NAMES.index("hr_bpm")], page[:, FEATURE_NAMES.index("hr_bpm")]
    res["rate_class_agreement"] = round(float(np.mean(np.digitize(hr_f, [60, 100]) == np.digitize(hr_p, [60, 100]))), 3)
    q_f, q_p = full[:, FEATURE_NAMES.index("qrs_ms")], page[:, FEATURE_NAMES.index("qrs_ms")]
    res["wide_qrs_agreement"] = round(float(np.mean((q_f >= 120) == (q_p >= 120))), 3)
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
