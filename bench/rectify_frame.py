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

--real DIR: pages with no known warp (real phone photos): the printed grid is the ruler
(`rectify/grid/residual.py`). Each page is rectified as run_model does (with the detector of --model when given);
on the canonical page the vertical grid lines are read along 10-mm bands: a 62.5-mm window's stretch (ms/s of
time-axis drift at 25 mm/s: median, p90, share of windows over 3 and over 10 ms/s) and each band's bending
(mm off a straight line: median, p90); per page and over all pages.
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


def real_pages(data: str, model: str | None, verbose: bool) -> dict:
    """Grid residual of the rectified pages of every record in a folder (see --real)."""
    from paperecg.records.images import load_page
    from paperecg.records.io import find_records, image_paths, load_header_info
    from paperecg.rectify.grid import time_axis_residual

    detector = None
    if model:
        from paperecg.pipeline.digitizer import Digitizer

        detector = Digitizer.load(model, log=lambda m: None).detector
    stretch, bend, page_p90, times = [], [], [], []
    for rec in find_records(data):
        path = os.path.join(data, rec)
        for image in image_paths(path, load_header_info(path)):
            if not os.path.isfile(image):
                continue
            t = time.perf_counter()
            rect = rectify_page(load_page(image).rgb, detector)
            times.append(time.perf_counter() - t)
            r = time_axis_residual(rect.image)
            if r.stretch_ms_per_s.size == 0:
                print(f"{rec}: no grid measured", flush=True)
                continue
            stretch.append(r.stretch_ms_per_s)
            bend.append(r.bend_mm)
            page_p90.append(float(np.percentile(r.stretch_ms_per_s, 90)))
            if verbose:
                m = rect.frame.method if rect.frame is not None else "none"
                print(f"{rec}: {m} stretch median {np.median(r.stretch_ms_per_s):.2f} p90 {page_p90[-1]:.2f} "
                      f"max {r.stretch_ms_per_s.max():.1f} ms/s, bend median {np.median(r.bend_mm):.2f} max "
                      f"{r.bend_mm.max():.2f} mm ({r.bands} bands)", flush=True)
    s_all, b_all = np.concatenate(stretch), np.concatenate(bend)
    return {
        "pages": len(stretch),
        "kind": "real",
        "stretch_median_ms_per_s": round(float(np.median(s_all)), 3),
        "stretch_p90_ms_per_s": round(float(np.percentile(s_all, 90)), 3),
        "stretch_over_3": round(float(np.mean(s_all > 3.0)), 4),
        "stretch_over_10": round(float(np.mean(s_all > 10.0)), 4),
        "page_p90_max_ms_per_s": round(float(np.max(page_p90)), 3),
        "bend_median_mm": round(float(np.median(b_all)), 3),
        "bend_p90_mm": round(float(np.percentile(b_all, 90)), 3),
        "s_per_page": round(float(np.mean(times)), 3),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pages", type=int, default=30)
    ap.add_argument("--ptbxl", default=os.path.join(REPO, "..", "shared", "data", "ptbxl"))
    ap.add_argument("--folds", default="9")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--flat", action="store_true", help="unwarped 200-dpi renders instead of photos")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--real", help="a folder of records whose pages have no known warp: the grid as the ruler")
    ap.add_argument("--model", help="with --real: the model folder whose detector turns the pages")
    a = ap.parse_args(argv)
    if a.real:
        print(json.dumps(real_pages(a.real, a.model, a.verbose)))
        return 0
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
