"""Benchmark of the page frame (rectify/frame.py): how well a photographed page comes back to paper mm.

    python bench/rectify_frame.py [--pages 30] [--ptbxl ../shared/data/ptbxl] [--folds 9] [--seed 0]

Our renders of PTB-XL records (random styles, grid always printed) are photographed with known warps
(`render/photo.py`: perspective up to 12 % of the page per corner, rotation up to 12 deg, curl, roll, folds,
table, light, blur, noise, JPEG). Each photo goes through `rectify_page` (no detector); every 5-mm grid
crossing that lies on the photo is carried to the rectified page by the rectifier's own chain
(`pipeline.overlay.original_to_rectified`: reduce -> quarter turns -> tilt -> trim -> frame) and compared with
where a perfect rectification puts it: paper mm x CANONICAL_PX_PER_MM plus one shift per page (the canonical
origin is free). Residuals in mm of paper: median and p95 over all crossings, p95 of the per-page medians,
methods used, s/page. --flat also scores unwarped 200-dpi renders (should be 'flat', residual ~0).
Last line: one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from paperecg.pipeline.overlay import original_to_rectified  # noqa: E402
from paperecg.rectify.frame import CANONICAL_PX_PER_MM  # noqa: E402
from paperecg.rectify.rectify import rectify_page  # noqa: E402
from paperecg.render.photo import grid_crossings_mm, photograph_page  # noqa: E402


def residual_mm(rect, photo_xy: np.ndarray, paper_mm: np.ndarray, input_hw) -> np.ndarray:
    got = original_to_rectified(photo_xy, rect, input_hw)
    want = paper_mm * CANONICAL_PX_PER_MM
    shift = np.median(got - want, axis=0)
    return np.hypot(*(got - want - shift).T) / CANONICAL_PX_PER_MM


def samples(data_dir: str, folds: str, count: int, seed: int, flat: bool):
    from dataclasses import replace

    from paperecg.records.io import load_header_info, load_signal
    from paperecg.records.ptbxl import select_records
    from paperecg.render.page import random_style, render_page

    records = select_records(data_dir, folds)
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(records), size=min(count, len(records)), replace=False)
    for i in picks:
        signal, _ = load_signal(records[i])
        info = load_header_info(records[i])
        style = replace(random_style(rng), show_grid=True, dpi=200.0)
        page = render_page(signal, info.fs_hz, info.lead_names, style)
        ppm = page.geometry.px_per_mm_x
        flat_xy, mm = grid_crossings_mm((page.height, page.width), ppm, tuple(style.grid_origin_mm))
        if flat:
            yield page.image, flat_xy, mm, "flat"
            continue
        photo = photograph_page(page, rng)
        xy = photo.warp.inverse(flat_xy)
        h, w = photo.page.image.shape[:2]
        on = (xy[:, 0] >= 0) & (xy[:, 0] <= w - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= h - 1)
        yield photo.page.image, xy[on], mm[on], "photo"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=30)
    ap.add_argument("--ptbxl", default=os.path.join(REPO, "..", "shared", "data", "ptbxl"))
    ap.add_argument("--folds", default="9")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--flat", action="store_true", help="unwarped 200-dpi renders instead of photos")
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args(argv)
    all_res, page_medians, methods, times = [], [], {}, []
    for k, (image, xy, mm, kind) in enumerate(samples(a.ptbxl, a.folds, a.pages, a.seed, a.flat)):
        t = time.perf_counter()
        rect = rectify_page(image)
        times.append(time.perf_counter() - t)
        res = residual_mm(rect, xy, mm, image.shape[:2])
        # crossings that the canonical page holds (a cut-off part of the paper is not there to read)
        all_res.append(res)
        page_medians.append(float(np.median(res)))
        m = rect.frame.method if rect.frame is not None else "none"
        methods[m] = methods.get(m, 0) + 1
        if a.verbose:
            print(f"page {k}: {rect.frame.describe()} median {np.median(res):.3f} p95 "
                  f"{np.percentile(res, 95):.3f} mm, {times[-1]:.2f} s", flush=True)
    res = np.concatenate(all_res)
    out = {
        "pages": len(page_medians),
        "kind": "flat" if a.flat else "photo",
        "residual_median_mm": round(float(np.median(res)), 4),
        "residual_p95_mm": round(float(np.percentile(res, 95)), 4),
        "page_median_p95_mm": round(float(np.percentile(page_medians, 95)), 4),
        "pages_median_over_1mm": int(sum(m > 1.0 for m in page_medians)),
        "methods": methods,
        "s_per_page": round(float(np.mean(times)), 3),
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
