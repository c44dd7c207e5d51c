"""Lead-assignment accuracy: the share of drawn leads whose digitized stretch is the right lead in the right time
window, on ECG-Image-Kit pages (the JSON says which lead is drawn where, over which samples) or own renders.

    python bench/layouts.py --eik DIR [--names json|none|detector] [--limit N]
    python bench/layouts.py --own N [--layouts 6x2-eik 12x1-eik ...]

Each page's oracle trace mask (drawn from the JSON's plotted pixels) is read by `extract_signal`, so this measures
the layout logic (rows, names, windows), not the segmenter. Names: `json` gives the JSON's name boxes (as a perfect
detector would), `none` gives none (the row-count fallback), `detector` runs the lead-name detector of --model
(layout-decoded, as rectify_page does).

ECG-Image-Kit pages are read in the frame the pipeline reads them in: `rectify_page` (with the detector for
`--names detector`) turns, straightens and resizes the page to the canonical 200 dpi, and the oracle mask, the
JSON's name boxes and the drawn leads' pixels are drawn or mapped into that frame (`original_to_rectified`). A
page scanned at 50-190 dpi is thus read as run_model reads it, with the names the detector finds there.

A drawn lead counts as right when one extracted cell lies on its printed row (the row whose centre is nearest the
trace's median height, within half a row spacing), covers the middle of its printed stretch on the page, names the
same lead, and has the same time window to within 0.5 s (the lag the scorer forgives) at both ends.
Last line: one JSON object: accuracy, leads, pages, per_layout {layout: accuracy}, wrong (a few examples).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from paperecg.extract import extract_signal  # noqa: E402
from paperecg.layouts import canonical_lead_name  # noqa: E402


def lead_assignment(page, ex, fs_hz: float) -> list[tuple[str, bool, str]]:
    """(lead, right, what was found) for every drawn lead of `page` (a RenderedPage) read as `ex`."""
    tol = int(round(0.5 * fs_hz))
    pps = ex.geometry.px_per_s / fs_hz
    centres = np.array([rt.centre_y for rt in ex.rows])
    spacing = float(np.median(np.diff(centres))) if centres.size > 1 else np.inf
    out = []
    for t in page.leads:
        pix = t.pixels[np.all(np.isfinite(t.pixels), axis=1)]
        if not len(pix) or centres.size == 0:
            out.append((t.name, False, "no trace"))
            continue
        y_mid, x_mid = float(np.median(pix[:, 0])), 0.5 * float(pix[:, 1].min() + pix[:, 1].max())
        r = int(np.argmin(np.abs(centres - y_mid)))
        if abs(centres[r] - y_mid) > 0.5 * spacing:
            out.append((t.name, False, "no row"))
            continue
        rt = ex.rows[r]
        found = "no cell"
        ok = False
        for c in ex.cells:
            if c.row != r or not np.isfinite(rt.x_first):
                continue
            p0 = c.start if c.page_start is None else c.page_start
            xa, xb = rt.x_first + p0 * pps, rt.x_first + (p0 + c.end - c.start) * pps
            if not xa <= x_mid <= xb:
                continue
            found = f"{'-' if c.sign < 0 else ''}{c.lead} {c.start}-{c.end}"
            ok = (canonical_lead_name(c.lead) == canonical_lead_name(t.name) and c.sign == getattr(t, "sign", 1)
                  and abs(c.start - t.start_sample) <= tol and abs(c.end - t.end_sample) <= tol)
            break
        out.append((t.name, ok, found))
    return out


def _detector(model: str):
    from paperecg.rectify.detector import LeadNameDetector

    if not hasattr(_detector, "det"):
        _detector.det = LeadNameDetector.load(os.path.join(model, "detector"))
    return _detector.det


def page_in_frame(page, rect):
    """`page` (a RenderedPage of the image rect was made from) in the rectified page's frame: its leads' pixels
    and name boxes mapped by the rectifier's chain, and its oracle mask drawn again there with the line widened
    by the frame's scale (a 60-dpi page's one-pixel line is over three canonical pixels wide)."""
    from dataclasses import replace

    from paperecg.geometry import Box, LeadNameBox
    from paperecg.pipeline.overlay import original_to_rectified
    from paperecg.render.page import draw_label_masks

    shape_hw = page.image.shape[:2]

    def to_frame_rc(rc: np.ndarray) -> np.ndarray:
        xy = original_to_rectified(np.asarray(rc, dtype=np.float64)[:, ::-1], rect, shape_hw)
        return xy[:, ::-1]

    leads = [replace(t, pixels=to_frame_rc(t.pixels)) for t in page.leads]
    scale = 1.0 / rect.frame.source_scale() if rect.frame is not None else 1.0
    width_px = max(1, int(round(float(page.meta.get("line_width_px", 1)) * scale)))
    h, w = rect.image.shape[:2]
    mask = draw_label_masks([t.pixels for t in leads], h, w, width_px)[0]
    boxes = []
    for b in page.lead_name_boxes():
        corners = np.array([[b.box.y0, b.box.x0], [b.box.y0, b.box.x1], [b.box.y1, b.box.x1], [b.box.y1, b.box.x0]])
        m = to_frame_rc(corners)
        boxes.append(LeadNameBox(b.name, Box(m[:, 1].min(), m[:, 0].min(), m[:, 1].max(), m[:, 0].max()), b.score))
    return replace(page, image=rect.image, trace_mask=mask, leads=leads), boxes


def run_eik(folder: str, names: str, limit: int | None, model: str) -> tuple[list, dict]:
    from bench.extract import eik_pages

    from paperecg.rectify.rectify import rectify_page

    results, per_layout = [], {}
    for rel, info, page, _json in eik_pages(folder, "pages", limit=limit):
        rect = rectify_page(page.image, _detector(model) if names == "detector" else None)
        page, json_boxes = page_in_frame(page, rect)
        boxes = {"json": json_boxes, "detector": rect.lead_name_boxes, "none": None}[names]
        source_ppm = rect.frame.source_px_per_mm if rect.frame is not None else None
        ex = extract_signal(page.trace_mask.astype(np.float32), page.image, info.fs_hz, info.num_samples,
                            info.lead_names, boxes or None, source_px_per_mm=source_ppm)
        res = lead_assignment(page, ex, info.fs_hz)
        results.append((rel, res))
        per_layout.setdefault(page.layout, []).extend(ok for _, ok, _ in res)
    return results, per_layout


def run_own(count: int, layouts: list[str], names: str, ptbxl: str, seed: int) -> tuple[list, dict]:
    from paperecg.records.io import find_records, load_header_info, load_signal
    from paperecg.render.page import random_style, render_page

    rng = np.random.default_rng(seed)
    recs = find_records(ptbxl)
    results, per_layout = [], {}
    for i in range(count):
        record = os.path.join(ptbxl, recs[i % len(recs)])
        sig, _ = load_signal(record)
        info = load_header_info(record)
        layout = layouts[i % len(layouts)]
        page = render_page(sig, info.fs_hz, info.lead_names, random_style(rng, layout=layout))
        boxes = page.lead_name_boxes() if names == "json" else None
        ex = extract_signal(page.trace_mask.astype(np.float32), page.image, info.fs_hz, sig.shape[0],
                            info.lead_names, boxes)
        res = lead_assignment(page, ex, info.fs_hz)
        results.append((f"{layout}:{i}", res))
        per_layout.setdefault(layout, []).extend(ok for _, ok, _ in res)
    return results, per_layout


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eik", default="", help="folder of ECG-Image-Kit records (image + JSON + reference)")
    ap.add_argument("--names", choices=["json", "none", "detector"], default="json")
    ap.add_argument("--model", default=os.path.join(ROOT, "model"), help="model folder (for --names detector)")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--own", type=int, default=0, help="own renders (oracle masks), cycling through --layouts")
    ap.add_argument("--layouts", nargs="*", default=None)
    ap.add_argument("--ptbxl", default=os.path.join(ROOT, "..", "shared", "data", "ptbxl"))
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    if a.eik:
        results, per_layout = run_eik(a.eik, a.names, a.limit, a.model)
    else:
        from paperecg.layouts import LAYOUTS

        results, per_layout = run_own(a.own, a.layouts or sorted(LAYOUTS), a.names, a.ptbxl, a.seed)
    flat = [ok for _, res in results for _, ok, _ in res]
    wrong = [f"{rel}: {lead} -> {found}" for rel, res in results for lead, ok, found in res if not ok]
    print(json.dumps({"accuracy": round(float(np.mean(flat)), 4) if flat else float("nan"), "leads": len(flat),
                      "pages": len(results), "names": a.names,
                      "per_layout": {k: round(float(np.mean(v)), 4) for k, v in per_layout.items()},
                      "wrong": wrong[:12]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
