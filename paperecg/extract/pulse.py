"""Calibration pulse at the start of a row: gain (mm per mV), zero level and where the signal begins.

The pulse is a rectangle drawn in trace ink before a row's signal: a rise of exactly 1 mV, a flat top
(typically 0.2 s), a fall back to the zero line. It is looked for in the page image (ink = pixels close to
the trace's colour; the trace map may not contain the pulse) and, without an image, in the trace map itself.
Accepted only with two vertical strokes, an inked flat top between them and a height that matches a
standard gain (5/10/20 mm/mV) within tolerance.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import binary_dilation, binary_opening

from ..geometry import PageGeometry
from .runs import find_runs

STANDARD_MM_PER_MV = (5.0, 10.0, 20.0)


@dataclass
class PulseInfo:
    baseline_y: float  # row of 0 mV (centre of the pulse's foot)
    top_y: float  # row of the pulse top (centre of the line)
    height_px: float
    mm_per_mv: float  # the standard gain the height matches
    x0: float  # first column of the pulse
    x1: float  # last column of the pulse
    fall_x: float  # centre of the falling stroke: where the signal itself begins


def ink_mask(image_rgb: np.ndarray, trace_rgb: np.ndarray, paper_rgb: np.ndarray, rel_tol: float = 0.45) -> np.ndarray:
    """Pixels whose colour is nearer the trace's than `rel_tol` of the paper-to-trace distance."""
    d_ref = float(np.linalg.norm(paper_rgb.astype(np.float64) - trace_rgb)) + 1e-6
    d = np.linalg.norm(image_rgb.astype(np.float32) - trace_rgb.astype(np.float32)[None, None, :], axis=2)
    return d < rel_tol * d_ref


def without_grid_lines(ink: np.ndarray, px_per_mm: float, span: float = 0.9, stroke_mm: float = 1.5) -> np.ndarray:
    """The ink less the grid lines printed as dark as the trace (thick major lines): straight lines across
    `span` of the patch's width or height, which no pulse or trace draws. Where such a line crosses a stroke
    of the other direction (a pulse's side or top) the stroke keeps its pixels. (A major line through a pulse
    read as ink inside the rectangle, and the pulse was refused: a demo page, no pulse found on 4 rows.)"""
    ink = np.asarray(ink, dtype=bool)
    h, w = ink.shape
    if h < 3 or w < 3:
        return ink
    k = max(2, int(round(stroke_mm * px_per_mm)))
    horizontal = binary_opening(ink, structure=np.ones((1, max(3, int(span * w))), dtype=bool))
    vertical = binary_opening(ink, structure=np.ones((max(3, int(span * h)), 1), dtype=bool))
    vertical_strokes = binary_opening(ink, structure=np.ones((k, 1), dtype=bool))
    horizontal_strokes = binary_opening(ink, structure=np.ones((1, k), dtype=bool))
    lines = (horizontal & ~vertical_strokes) | (vertical & ~horizontal_strokes)
    return ink & ~lines


def _runs_1d(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.diff(np.concatenate([[0], v.astype(np.int8), [0]]))
    return np.nonzero(d == 1)[0], np.nonzero(d == -1)[0] - 1


def detect_pulse_in_patch(ink: np.ndarray, px_per_mm: float, baseline_hint: float,
                          search_from_col: int = 0) -> dict | None:
    """Find a pulse in a binary patch (rows x cols, patch coordinates). Returns patch-frame numbers."""
    h, w = ink.shape
    min_stroke = 0.4 * 5.0 * px_per_mm  # a 5 mm/mV pulse is 5 mm tall; accept from 2 mm
    longest = np.zeros(w)
    top_of = np.full(w, np.nan)
    bot_of = np.full(w, np.nan)
    # a thin stroke drawn (or rotated) across a column boundary splits between two columns: measure the
    # vertical strokes on the ink widened by a pixel each side
    runs = find_runs(binary_dilation(ink, structure=np.ones((1, 3), dtype=bool)).astype(np.float32))
    if len(runs):
        # the longest run of each column (runs are sorted by column)
        order = np.lexsort((-runs.length, runs.col))
        first = np.concatenate([[True], runs.col[order][1:] != runs.col[order][:-1]])
        best = order[first]
        cols = runs.col[best]
        longest[cols] = runs.length[best]
        top_of[cols] = runs.top[best] + 0.5  # pixel rows of the first and last inked pixel
        bot_of[cols] = runs.bot[best] - 0.5
    stroke = longest >= min_stroke
    stroke[:search_from_col] = False
    gs, ge = _runs_1d(stroke)
    for i in range(len(gs) - 1):
        left = (gs[i], ge[i])
        for j in range(i + 1, len(gs)):
            right = (gs[j], ge[j])
            gap = right[0] - left[1] - 1
            if gap < 1.5 * px_per_mm:
                continue
            if gap > 12.0 * px_per_mm:
                break
            inner = np.arange(left[1] + 1, right[0])
            cols = np.concatenate([np.arange(left[0], left[1] + 1), np.arange(right[0], right[1] + 1)])
            stroke_top = float(np.median(top_of[cols]))
            stroke_bot = float(np.median(bot_of[cols]))
            # the flat top: ink at the strokes' top row across the inner columns
            near_top = [np.any(ink[max(0, int(stroke_top) - 2):int(stroke_top) + 4, c]) for c in inner]
            if np.mean(near_top) < 0.8:
                continue
            # the top line's thickness: ink rows around the stroke top in the inner columns
            thick = []
            for c in inner:
                s, e = _runs_1d(ink[:, c])
                k = np.nonzero((s <= stroke_top + 3) & (e >= stroke_top - 3))[0]
                if k.size:
                    thick.append(e[k[0]] - s[k[0]] + 1)
            line_w = float(np.median(thick)) if thick else 2.0
            if thick and np.percentile(thick, 80) > 3.0 * line_w + 2:
                continue  # not a thin straight top line
            # nothing inside the rectangle: a trace wandering between two strokes is not a pulse
            a = int(np.ceil(stroke_top + line_w + 1))
            z = int(np.floor(stroke_bot - line_w - 1))
            if z > a and inner.size and np.mean(ink[a:z, inner].any(axis=0)) > 0.1:
                continue
            top_y = stroke_top - 0.5 + 0.5 * line_w
            base_y = stroke_bot + 0.5 - 0.5 * line_w
            if abs(base_y - baseline_hint) > 6.0 * px_per_mm:
                continue
            return {"top_y": top_y, "base_y": base_y, "x0": float(left[0]), "x1": float(right[1]),
                    "fall_x": 0.5 * (right[0] + right[1]), "line_w": line_w}
    return None


def snap_gain(height_px: float, px_per_mm: float, tol: float = 0.12) -> float | None:
    """The standard mm/mV a pulse of this height matches, or None."""
    mm = height_px / px_per_mm
    for g in STANDARD_MM_PER_MV:
        if abs(mm / g - 1.0) <= tol:
            return g
    return None


def find_pulse(top: np.ndarray, bot: np.ndarray, col0: int, image_rgb: np.ndarray | None, centre_y: float,
               geometry: PageGeometry) -> PulseInfo | None:
    """Pulse at the start of one tracked row (top/bot: its run edges from column col0)."""
    px_mm = geometry.px_per_mm_y
    px_s = geometry.px_per_s
    if image_rgb is not None:
        h_img, w_img = image_rgb.shape[:2]
    c_lo = int(max(0, col0 - 0.6 * px_s))
    c_hi = int(col0 + 0.4 * px_s)
    r_lo = int(max(0, centre_y - 25.0 * px_mm))
    r_hi = int(centre_y + 8.0 * px_mm)
    if image_rgb is not None:
        c_hi = min(c_hi, w_img)
        r_hi = min(r_hi, h_img)
        patch = image_rgb[r_lo:r_hi, c_lo:c_hi]
        if patch.size == 0:
            return None
        # trace colour: the image under the row's first traced columns
        fin = np.isfinite(top) & np.isfinite(bot)
        cs = np.nonzero(fin)[0][:200]
        if cs.size == 0:
            return None
        rr = np.clip(np.rint(0.5 * (top[cs] + bot[cs])).astype(np.int64), 0, h_img - 1)
        cc = np.clip(cs + col0, 0, w_img - 1)
        trace_rgb = np.median(image_rgb[rr, cc].astype(np.float64), axis=0)
        paper_rgb = np.median(patch.reshape(-1, 3).astype(np.float64), axis=0)
        raw = ink_mask(patch, trace_rgb, paper_rgb)
        # thin grid lines can be as dark as the ink: an opening keeps only strokes >= 2 px thick; a
        # page printed with 1-px lines loses its pulse too, so then the raw ink gets a second look; thick major
        # lines as dark as the trace survive both, and are taken out for a last look
        clean = without_grid_lines(raw, px_mm)
        inks = [binary_opening(ink, structure=np.ones((2, 2), dtype=bool)) if opened else ink
                for ink in (raw, clean) for opened in (True, False)]
    else:
        # trace map only: rebuild the row's runs as a patch
        r_hi = int(max(r_hi, np.nanmax(bot) + 2 if np.isfinite(bot).any() else r_hi))
        ink = np.zeros((r_hi - r_lo, c_hi - c_lo), dtype=bool)
        for k in range(min(top.size, c_hi - col0)):
            if np.isfinite(top[k]):
                a = int(np.ceil(top[k])) - r_lo
                b = int(np.floor(bot[k])) - r_lo
                ink[max(a, 0):max(b + 1, 0), k + col0 - c_lo] = True
        inks = [ink]
    for ink in inks:  # the first reading that passes every check
        found = detect_pulse_in_patch(ink, px_mm, centre_y - r_lo)
        if found is None:
            continue
        # the signal follows the pulse directly (or the trace map holds the pulse): not a shape far away
        fall = found["fall_x"] + c_lo
        if not (col0 - 0.3 * px_s <= fall <= col0 + 0.4 * px_s):
            continue
        height = found["base_y"] - found["top_y"]
        gain = snap_gain(height, px_mm)
        if gain is None:
            continue
        return PulseInfo(baseline_y=found["base_y"] + r_lo, top_y=found["top_y"] + r_lo, height_px=height,
                         mm_per_mv=gain, x0=found["x0"] + c_lo, x1=found["x1"] + c_lo,
                         fall_x=found["fall_x"] + c_lo)
    return None
