"""Renderer benchmark: speed, label read-back accuracy and mask fit on N pages of real records.

python bench/render.py --records ../shared/data/ptbxl/records100/00000 --n 20
Last line: one JSON object with s_per_page_clean, s_per_page_aug (one process, full 2200x1700 page with all
labels), readback_snr_db (signals read back from the JSON plotted pixels with the stored geometry vs the
record; official SNR formula; mean over leads), mask_recall (fraction of dark trace pixels the trace mask
covers on clean pages) and mask_extra (fraction of mask pixels that are not trace). Dark trace pixels are
measured from the images alone: the page minus the same page rendered without signal.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import cv2
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from paperecg.layouts import lead_index  # noqa: E402
from paperecg.records.io import load_header_info, load_signal  # noqa: E402
from paperecg.render.augment import augment_page  # noqa: E402
from paperecg.render.dataset import find_eik_pages, find_record_paths  # noqa: E402
from paperecg.render.eik import load_eik_page  # noqa: E402
from paperecg.render.page import RenderStyle, random_style, render_page  # noqa: E402
from paperecg.score.evaluate import snr_db  # noqa: E402


def readback_from_json(meta: dict, num_samples: int, lead_names: list[str]) -> np.ndarray:
    """mV per lead from the JSON alone: (baseline_row - row) / px_per_mv at each plotted sample."""
    out = np.full((num_samples, len(lead_names)), np.nan)
    px_per_mv = float(meta["px_per_mv"])
    for lead in meta["leads"]:
        j = lead_index(lead_names, lead["lead_name"])
        if j is None or lead.get("baseline_row") is None:
            continue
        rows = np.array([np.nan if p[0] is None else p[0] for p in lead["plotted_pixels"]], dtype=np.float64)
        s0 = int(lead["start_sample"])
        out[s0:s0 + len(rows), j] = (float(lead["baseline_row"]) - rows) / px_per_mv
    return out


def ink_fraction(page_rgb: np.ndarray, blank_rgb: np.ndarray, trace_level: float) -> np.ndarray:
    """Share of the local paper-to-ink contrast that the traces took, per pixel."""
    a = blank_rgb.astype(np.float32).mean(axis=2)
    b = page_rgb.astype(np.float32).mean(axis=2)
    contrast = a - trace_level  # negative for bright traces on a dark (monitor) background
    safe = np.where(np.abs(contrast) < 1.0, np.inf, contrast)
    return (a - b) / safe


def mask_fit(page, blank, trace_rgb) -> tuple[float, float]:
    ink = ink_fraction(page.image, blank.image, float(np.mean(trace_rgb)))
    dark = ink > 0.5
    recall = float(page.trace_mask[dark].mean()) if dark.any() else float("nan")
    extra = float((ink[page.trace_mask] < 0.1).mean()) if page.trace_mask.any() else float("nan")
    return recall, extra


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", required=True, help="folder of WFDB records")
    p.add_argument("--n", type=int, default=20, help="pages (one per record, first N records)")
    p.add_argument("--threads", type=int, default=1, help="OpenCV threads")
    p.add_argument("--eik", default=None, help="optional folder of ECG-Image-Kit pages to time the loader on")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    cv2.setNumThreads(args.threads)

    records = find_record_paths(args.records)[: args.n]
    if not records:
        print(f"no records under {args.records}", file=sys.stderr)
        return 1
    data = []
    for rec in records:
        sig, _ = load_signal(rec)
        info = load_header_info(rec)
        data.append((sig, info.fs_hz, info.lead_names))

    # warm-up (imports, caches of the first style)
    render_page(data[0][0], data[0][1], data[0][2])

    c_clean, c_aug = [], []  # CPU seconds (this process): robust to other jobs sharing the cores
    t_clean, t_aug, t_json, snrs, recalls, extras, r_recalls, r_extras = [], [], [], [], [], [], [], []
    for i, (sig, fs, names) in enumerate(data):
        t0, c0 = time.perf_counter(), time.process_time()
        page = render_page(sig, fs, names, RenderStyle())
        t_clean.append(time.perf_counter() - t0)
        c_clean.append(time.process_time() - c0)
        t0 = time.perf_counter()
        meta = json.loads(json.dumps(page.to_json()))
        t_json.append(time.perf_counter() - t0)
        est = readback_from_json(meta, len(sig), names)
        # the reference as the challenge masks it: only the samples the page draws
        ref = np.where(np.isfinite(est), sig, np.nan)
        for j in range(len(names)):
            v = snr_db(ref[:, j], est[:, j], fs, align=False)
            if np.isfinite(v):
                snrs.append(v)
        blank = render_page(np.full_like(sig, np.nan), fs, names, RenderStyle())
        r, e = mask_fit(page, blank, RenderStyle().trace_rgb)
        recalls.append(r)
        extras.append(e)
        # the same check on a random (un-augmented) style
        style = random_style(np.random.default_rng([args.seed, i]))
        rp = render_page(sig, fs, names, style)
        rb = render_page(np.full_like(sig, np.nan), fs, names, style)
        r, e = mask_fit(rp, rb, style.trace_rgb)
        r_recalls.append(r)
        r_extras.append(e)
        rng = np.random.default_rng([args.seed, i, 1])
        t0, c0 = time.perf_counter(), time.process_time()
        aug = augment_page(render_page(sig, fs, names, random_style(rng)), rng)
        t_aug.append(time.perf_counter() - t0)
        c_aug.append(time.process_time() - c0)
        assert aug.image.shape == page.image.shape

    result = {
        "pages": len(data),
        "image_size": [int(page.width), int(page.height)],
        "s_per_page_clean": round(float(np.mean(t_clean)), 4),
        "s_per_page_clean_median": round(float(np.median(t_clean)), 4),
        "s_per_page_aug": round(float(np.mean(t_aug)), 4),
        "s_per_page_aug_median": round(float(np.median(t_aug)), 4),
        "cpu_s_per_page_clean": round(float(np.mean(c_clean)), 4),
        "cpu_s_per_page_aug": round(float(np.mean(c_aug)), 4),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "s_per_page_json": round(float(np.mean(t_json)), 4),
        "readback_snr_db": round(float(np.mean(snrs)), 2),
        "readback_snr_db_min": round(float(np.min(snrs)), 2),
        "mask_recall": round(float(np.nanmean(recalls)), 5),
        "mask_extra": round(float(np.nanmean(extras)), 5),
        "mask_recall_random_styles": round(float(np.nanmean(r_recalls)), 5),
        "mask_extra_random_styles": round(float(np.nanmean(r_extras)), 5),
        "cv2_threads": args.threads,
    }
    if args.eik:
        pairs = find_eik_pages(args.eik)[: args.n]
        t_eik = []
        for img, js in pairs:
            t0 = time.perf_counter()
            load_eik_page(img, js)
            t_eik.append(time.perf_counter() - t0)
        result["s_per_eik_page_load"] = round(float(np.mean(t_eik)), 4) if t_eik else None
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
