"""Benchmark of signal extraction from perfect (oracle) trace masks.

ECG-Image-Kit pages (--eik DIR): the trace mask is drawn from each page's JSON plotted pixels
(`paperecg.render.eik.load_eik_page`), the lead-name boxes come from the JSON unless --no-boxes; scale,
layout and baselines are found from the image and mask by `extract_signal`, never read from the JSON
(the JSON's x_grid / y_grid only measure the scale error). A turned page is first put upright, with its mask
and boxes, by the pipeline's tilt estimate (`rectify_page`, no detector), as run_model does. The outputs are written as WFDB records and
scored with the project's evaluator (the organizers' metric) against the references in DIR.

Own renders (--own-per-rate N): N PTB-XL records per sampling rate (100, 250, 500 Hz; 250/500 Hz by
resampling the 100 Hz signals), cycling through every layout, drawn with random styles by
`paperecg.render.page.render_page`, extracted from the binary trace mask with the page's lead-name boxes.

Last line: one JSON object: snr_db (mean over the scored leads of the pages run), snr_db_folder (the
evaluator's figure for the whole folder), snr_db_worst_record, px_per_mm_rel_err (median over pages of the
worse of x and y) and its max, records, seconds_per_page (median extraction time), no_boxes, soft and,
with --own-per-rate, own_renders {fs: {snr_db, records, per_layout}}. Each part takes a few minutes on a
shared 2-core CPU; run them separately (--own-per-rate 0 / --eik "") to stay within 5 minutes a job.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from paperecg.extract import extract_signal  # noqa: E402
from paperecg.layouts import LAYOUTS, lead_index  # noqa: E402
from paperecg.records.io import find_records, load_header, load_header_info, load_signal, save_outputs  # noqa: E402


def _json_beside(image_path: str) -> str | None:
    path = os.path.splitext(image_path)[0] + ".json"
    return path if os.path.isfile(path) else None


def eik_pages(folder: str, desc: str, skip: int = 0, limit: int | None = None):
    """(record path relative to folder, header info, page, JSON path) of every record in `folder` whose first
    image has the generator's JSON beside it, with a progress bar on stderr."""
    from tqdm import tqdm

    from paperecg.records.io import image_paths
    from paperecg.render.eik import load_eik_page

    records = find_records(folder)[skip:]
    for rel in tqdm(records[:limit or None], desc=desc, unit="page", file=sys.stderr):
        record = os.path.join(folder, rel)
        info = load_header_info(record)
        images = [p for p in image_paths(record, info) if _json_beside(p)]
        if images:
            json_path = _json_beside(images[0])
            yield rel, info, load_eik_page(images[0], json_path, fit_baselines=False), json_path


def upright(image: np.ndarray, trace_map: np.ndarray, boxes):
    """Page, oracle map and boxes turned upright by the pipeline's own tilt estimate (as run_model does before
    segmenting), so turned pages (ECG-Image-Kit's `rotate`) measure the extractor, not the tilt."""
    from paperecg.rectify.rectify import rectify_page, rotate_boxes, rotate_image

    rect = rectify_page(image, None)
    if rect.angle_deg == 0.0:
        return image, trace_map, boxes
    grey = np.clip(trace_map * 255.0, 0, 255).astype(np.uint8)
    turned = rotate_image(np.repeat(grey[:, :, None], 3, axis=2), -rect.angle_deg, fill_rgb=(0, 0, 0))[:, :, 0]
    return (rect.image, turned.astype(np.float32) / 255.0,
            rotate_boxes(boxes, -rect.angle_deg, image.shape) if boxes else boxes)


def run_eik(folder: str, out_dir: str, use_boxes: bool, soft: bool, limit: int | None, skip: int = 0) -> dict:
    """Extract every ECG-Image-Kit page in `folder`, write outputs to out_dir, score them."""
    from paperecg.score.evaluate import evaluate_folders

    scale_err, seconds = [], []
    done = []
    for rel, info, page, json_path in eik_pages(folder, "eik pages", skip, limit):
        record = os.path.join(folder, rel)
        trace_map = (page.trace_alpha.astype(np.float32) / 255.0) if soft else page.trace_mask.astype(np.float32)
        t0 = time.perf_counter()
        image, trace_map, boxes = upright(page.image, trace_map, page.lead_name_boxes() if use_boxes else None)
        ex = extract_signal(trace_map, image, info.fs_hz, info.num_samples, info.lead_names, boxes)
        seconds.append(time.perf_counter() - t0)
        with open(json_path) as f:
            meta = json.load(f)
        truth_x, truth_y = float(meta["x_grid"]) / 5.0, float(meta["y_grid"]) / 5.0
        scale_err.append(max(abs(ex.geometry.px_per_mm_x / truth_x - 1), abs(ex.geometry.px_per_mm_y / truth_y - 1)))
        out_record = os.path.join(out_dir, rel)
        save_outputs(out_record, load_header(record), ex.signal, None)
        done.append(rel)
    result = evaluate_folders(folder, out_dir)
    per_lead = [s for s in result["per_lead"] if s.record in set(done) or os.path.normpath(s.record) in set(done)]
    snr_values = [s.snr_db for s in per_lead if np.isfinite(s.snr_db)]
    by_record: dict[str, list[float]] = {}
    for s in per_lead:
        if np.isfinite(s.snr_db):
            by_record.setdefault(s.record, []).append(s.snr_db)
    return {
        # the evaluator's figure over the whole folder; equal to the mean below when nothing was skipped
        "snr_db_folder": float(result["snr"]),
        "snr_db": float(np.mean(snr_values)) if snr_values else float("nan"),
        "snr_db_worst_record": float(min(np.mean(v) for v in by_record.values())) if by_record else float("nan"),
        "px_per_mm_rel_err": float(np.median(scale_err)) if scale_err else float("nan"),
        "px_per_mm_rel_err_max": float(np.max(scale_err)) if scale_err else float("nan"),
        "records": len(done),
        "seconds_per_page": float(np.median(seconds)) if seconds else float("nan"),
    }


def _resample(signal: np.ndarray, fs_from: float, fs_to: float) -> np.ndarray:
    from fractions import Fraction

    from scipy.signal import resample_poly

    frac = Fraction(fs_to / fs_from).limit_denominator(100)
    return resample_poly(signal, frac.numerator, frac.denominator, axis=0)


def run_own(ptbxl: str, per_rate: int, rates: list[float], seed: int, use_boxes: bool) -> dict:
    """Own renders: every layout in turn, random styles, binary trace mask, lead-name boxes from the page."""
    from tqdm import tqdm

    from paperecg.render.page import random_style, render_page
    from paperecg.score.evaluate import score_signals

    records = find_records(ptbxl)[: max(per_rate, 1)]
    layouts = sorted(LAYOUTS)
    out = {}
    rng = np.random.default_rng(seed)
    for fs in rates:
        per_layout: dict[str, list[float]] = {}
        all_snr = []
        for i in tqdm(range(per_rate), desc=f"own renders {fs:g} Hz", unit="page", file=sys.stderr):
            record = os.path.join(ptbxl, records[i % len(records)])
            sig, _ = load_signal(record)
            info = load_header_info(record)
            sig = _resample(sig, info.fs_hz, fs) if fs != info.fs_hz else sig
            layout = layouts[i % len(layouts)]
            style = random_style(rng, layout=layout)
            page = render_page(sig, fs, info.lead_names, style)
            # the reference as the challenge masks it: samples not drawn are NaN
            ref = np.full(sig.shape, np.nan)
            for t in page.leads:
                j = lead_index(info.lead_names, t.name)
                if j is not None:
                    ref[t.start_sample:t.end_sample, j] = sig[t.start_sample:t.end_sample, j]
            ex = extract_signal(page.trace_mask.astype(np.float32), page.image, fs, sig.shape[0], info.lead_names,
                                page.lead_name_boxes() if use_boxes else None)
            scores = [s.snr_db for s in score_signals(ref, ex.signal, fs, info.lead_names) if np.isfinite(s.snr_db)]
            per_layout.setdefault(layout, []).extend(scores)
            all_snr.extend(scores)
        out[f"{fs:g}"] = {"snr_db": float(np.mean(all_snr)) if all_snr else float("nan"), "records": per_rate,
                          "per_layout": {k: round(float(np.mean(v)), 2) for k, v in per_layout.items()}}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eik", default=os.path.join(ROOT, "..", "shared", "data", "eik-dev", "clean"),
                    help="folder of ECG-Image-Kit records (image + JSON + reference record)")
    ap.add_argument("--no-boxes", action="store_true", help="do not give the JSON's lead-name boxes")
    ap.add_argument("--soft", action="store_true", help="oracle as anti-aliased coverage (else binary mask)")
    ap.add_argument("--limit", type=int, default=None, help="only N ECG-Image-Kit records")
    ap.add_argument("--skip", type=int, default=0, help="skip the first N ECG-Image-Kit records (chunked runs)")
    ap.add_argument("--out", default=None, help="folder for the WFDB outputs (default: a temporary folder)")
    ap.add_argument("--ptbxl", default=os.path.join(ROOT, "..", "shared", "data", "ptbxl"),
                    help="PTB-XL records for the own-render part")
    ap.add_argument("--own-per-rate", type=int, default=20, help="own renders per sampling rate (0: skip)")
    ap.add_argument("--rates", default="100,250,500", help="sampling rates of the own renders (Hz)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    result: dict = {"no_boxes": bool(args.no_boxes), "soft": bool(args.soft)}
    if args.eik and os.path.isdir(args.eik):
        if args.out:
            os.makedirs(args.out, exist_ok=True)
            result.update(run_eik(args.eik, args.out, not args.no_boxes, args.soft, args.limit, args.skip))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                result.update(run_eik(args.eik, tmp, not args.no_boxes, args.soft, args.limit, args.skip))
    if args.own_per_rate > 0 and os.path.isdir(args.ptbxl):
        rates = [float(r) for r in args.rates.split(",") if r.strip()]
        result["own_renders"] = run_own(args.ptbxl, args.own_per_rate, rates, args.seed, not args.no_boxes)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
