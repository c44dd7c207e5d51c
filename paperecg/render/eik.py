"""Read an ECG-Image-Kit page (image + JSON) -- or one of our own renders -- into a `RenderedPage`.

The trace mask is drawn from the JSON's plotted pixels (ECG-Image-Kit gives no mask); lead-name boxes come
from `text_bounding_box`. ECG-Image-Kit stores no baseline: when the record (`.hea/.dat`) sits beside the
JSON, each lead's baseline row is fitted from its plotted pixels and the signal, else it is NaN.
"""
from __future__ import annotations

import json
import math
import os
import re

import numpy as np

from ..geometry import MM_PER_INCH, Box, PageGeometry
from ..layouts import LAYOUTS, canonical_lead_name, lead_index
from ..records.images import load_page
from .labels import LeadTrace, RenderedPage, corners_from_json
from .page import draw_label_masks

# Polyline thickness whose anti-aliased mask best matches ECG-Image-Kit ink at 200 dpi (95 % of mask
# pixels dark on its clean pages; thickness 2 gives 52 %).
EIK_LINE_WIDTH_PX_AT_200DPI = 1


def _pixels(raw, num: int) -> np.ndarray:
    if not raw:
        return np.full((num, 2), np.nan)
    rows = [[np.nan, np.nan] if (p is None or p[0] is None or p[1] is None) else p for p in raw]
    return np.asarray(rows, dtype=np.float64).reshape(-1, 2)


def corners_angle_deg(corners_rc: np.ndarray) -> float:
    """Rotation (counter-clockwise positive) of a box from its top edge (corner 0 -> corner 1)."""
    (r0, c0), (r1, c1) = corners_rc[0], corners_rc[1]
    if abs(c1 - c0) < 1e-9 and abs(r1 - r0) < 1e-9:
        return 0.0
    return math.degrees(math.atan2(-(r1 - r0), c1 - c0))


def infer_layout(cells: list[tuple[str, int, int]], num_samples: int) -> str:
    """Name of the standard layout whose (lead, start, end) cells equal the page's, else 'unknown'."""
    have = sorted((canonical_lead_name(n), s, e) for n, s, e in cells)
    for name, layout in LAYOUTS.items():
        want = sorted((c.lead, *c.sample_window(num_samples)) for c in layout.cells())
        if want == have:
            return name
    return "unknown"


def fit_baseline_row(pixels_rc: np.ndarray, signal_mv: np.ndarray, px_per_mv: float) -> float:
    """Row of 0 mV that best explains row = baseline - v * px_per_mv (median over finite samples)."""
    n = min(len(pixels_rc), len(signal_mv))
    est = pixels_rc[:n, 0] + signal_mv[:n] * px_per_mv
    est = est[np.isfinite(est)]
    return float(np.median(est)) if len(est) else float("nan")


def _record_beside(json_path: str) -> str | None:
    """'DIR/00008_lr-0.json' -> 'DIR/00008_lr' when that record's header and signal exist."""
    stem = os.path.splitext(json_path)[0]
    candidates = [re.sub(r"-\d+$", "", stem), stem]
    for rec in candidates:
        if os.path.isfile(rec + ".hea") and os.path.isfile(rec + ".dat"):
            return rec
    return None


def page_from_json(meta: dict, image: np.ndarray, signal_mv: np.ndarray | None = None,
                   signal_lead_names: list[str] | None = None, pixel_offset_rc: tuple[float, float] | None = None,
                   line_width_px: int | None = None) -> RenderedPage:
    """Build a RenderedPage from a parsed page JSON and its RGB image (see `load_eik_page`)."""
    h, w = image.shape[:2]
    dpi = float(meta.get("resolution", 200.0))
    x_grid = float(meta.get("x_grid", dpi / MM_PER_INCH * 5.0))
    y_grid = float(meta.get("y_grid", x_grid))
    geom = PageGeometry(x_grid / 5.0, y_grid / 5.0, mm_per_s=float(meta.get("mm_per_s", 25.0)),
                        mm_per_mv=float(meta.get("mm_per_mv", 10.0)))
    fs_hz = float(meta.get("sampling_frequency", 500.0))
    raw_leads = meta.get("leads", [])
    if pixel_offset_rc is None:
        # ECG-Image-Kit (matplotlib) puts pixel centres at +0.5; ours at integers (measured: best overlap)
        pixel_offset_rc = (0.0, 0.0) if meta.get("pixel_origin") == "center" else (-0.5, -0.5)
    off = np.asarray(pixel_offset_rc, dtype=np.float64)
    num_samples = int(meta.get("num_samples") or max([int(d.get("end_sample", 0)) for d in raw_leads] + [0]))
    leads: list[LeadTrace] = []
    angles = []
    for d in raw_leads:
        s0, s1 = int(d.get("start_sample", 0)), int(d.get("end_sample", 0))
        pix = _pixels(d.get("plotted_pixels"), s1 - s0) + off
        lead_c = corners_from_json(d["lead_bounding_box"]) + off if d.get("lead_bounding_box") else None
        text_c = corners_from_json(d["text_bounding_box"]) + off if d.get("text_bounding_box") else None
        if lead_c is not None:
            angles.append(corners_angle_deg(lead_c))
        finite = pix[np.all(np.isfinite(pix), axis=1)]
        if lead_c is not None:
            lead_box = Box.from_points(lead_c)
        elif len(finite):
            lead_box = Box.from_points(finite)
        else:
            lead_box = Box(0.0, 0.0, 0.0, 0.0)
        name = canonical_lead_name(str(d.get("lead_name", "")))
        base = d.get("baseline_row")
        base = float(base) if base is not None else float("nan")
        if not math.isfinite(base) and signal_mv is not None and signal_lead_names is not None:
            j = lead_index(signal_lead_names, name)
            if j is not None:
                base = fit_baseline_row(pix, signal_mv[s0:s1, j], geom.px_per_mv)
        leads.append(LeadTrace(name, lead_box, Box.from_points(text_c) if text_c is not None else None, s0, s1,
                               base, pix, row_index=int(d.get("row_index", -1)), col_index=int(d.get("col_index", -1)),
                               lead_corners=lead_c, text_corners=text_c, sign=int(d.get("sign", 1))))
    if line_width_px is None:
        line_width_px = int(meta.get("line_width_px") or max(1, round(EIK_LINE_WIDTH_PX_AT_200DPI * dpi / 200.0)))
    trace_mask, lead_mask, alpha = draw_label_masks([t.pixels for t in leads], h, w, line_width_px)
    layout = meta.get("layout") or infer_layout([(t.name, t.start_sample, t.end_sample) for t in leads], num_samples)
    angle = meta.get("angle_deg")
    if angle is None:
        angle = float(np.median(angles)) if angles else 0.0
    keep = {k: v for k, v in meta.items() if k not in ("leads",)}
    keep["line_width_px"] = int(line_width_px)
    return RenderedPage(image=image, trace_mask=trace_mask, lead_mask=lead_mask, leads=leads, geometry=geom,
                        dpi=dpi, fs_hz=fs_hz, num_samples=num_samples, layout=layout, angle_deg=float(angle),
                        trace_alpha=alpha, meta=keep)


def load_eik_page(image_path: str, json_path: str, signal_mv: np.ndarray | None = None,
                  signal_lead_names: list[str] | None = None, fit_baselines: bool = True) -> RenderedPage:
    """ECG-Image-Kit image + JSON -> RenderedPage with trace mask, lead mask, lead-name boxes.

    Baselines: from the JSON when it has them (our renders); else fitted from `signal_mv` or, with
    `fit_baselines`, from the record found beside the JSON ('NNNNN_lr-0.json' -> 'NNNNN_lr').
    """
    with open(json_path) as f:
        meta = json.load(f)
    image = load_page(image_path).rgb
    if signal_mv is None and fit_baselines and any(d.get("baseline_row") is None for d in meta.get("leads", [])):
        rec = _record_beside(json_path)
        if rec is not None:
            from ..records.io import load_header_info, load_signal

            signal_mv, _ = load_signal(rec)
            signal_lead_names = load_header_info(rec).lead_names
    return page_from_json(meta, image, signal_mv, signal_lead_names)
