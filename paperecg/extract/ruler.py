"""A row's time axis read on the printed grid (photographed pages).

A sample k of a row is nominally at x = x_first + k * px_per_sample. On a crumpled or folded photograph the
page frame's smooth surface leaves creases in: there the row's millimetres are not where the nominal x says,
and its beats come up to ~30 ms early or late, one beat at a time. The vertical grid lines beside the row
carry the same crease; `rectify.grid.row_ruler` measures them (a `RowRuler`), and every reading of the
row (the centre path, the polyline fit, the overlay) then looks for sample k at x + shift(x).

Near a curled corner the lines also lean, and a tall QRS stroke with them: its tip is read early or late by as
much as the lines lean between the tip's height and the baseline. `rectify.grid.grid_warp` measures the lines
at every height, and `upright` moves each read sample by that difference (`measure_row_leans`).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..rectify.grid import GridWarp, RowRuler, grid_warp, line_darkness, row_ruler

# Trace pixels are widened by this much on each side before the grid's readers leave them out (their blurred
# edge still darkens the grid's strips).
COVER_MARGIN_MM = 0.5
# x ranges whose lines a ruler leaves out: the calibration pulse before a row's first sample, and the lead
# separators and names at each cell boundary and at the row's end (print, not grid).
PULSE_MM = 8.0
SEPARATOR_MM = 3.0


def ruled_x(nominal_x: np.ndarray, ruler: RowRuler | None) -> np.ndarray:
    """Where the ink of nominal x positions of a row is: moved by the row's ruler when it has one (kept
    increasing: a fitted polyline needs sorted samples)."""
    x = np.asarray(nominal_x, dtype=np.float64)
    if ruler is None:
        return x
    return np.maximum.accumulate(x + ruler.shift_at(x))


def sample_x(x_first: float, px_per_sample: float, num_samples: int, ruler: RowRuler | None) -> np.ndarray:
    """x (px) where each sample of a row is read (see ruled_x)."""
    return ruled_x(x_first + np.arange(num_samples) * px_per_sample, ruler)


def ruler_exclusions(x_first: float, x_last: float, cell_starts: list[int], px_per_sample: float,
                     px_per_mm: float) -> list[tuple[float, float]]:
    """The x ranges of print beside a row (see PULSE_MM and SEPARATOR_MM)."""
    sep = SEPARATOR_MM * px_per_mm
    out = [(x_first - PULSE_MM * px_per_mm, x_first + sep), (x_last - sep, x_last + sep)]
    for s in cell_starts:
        x = x_first + s * px_per_sample
        out.append((x - sep, x + sep))
    return out


def row_level_y(rt) -> float:
    """The row's baseline before the readout sets it: the calibration pulse's foot, else the median centre of
    the row's ink (a trace spends most of its time on the baseline)."""
    if rt.pulse is not None and np.isfinite(rt.pulse.baseline_y):
        return float(rt.pulse.baseline_y)
    centre = 0.5 * (rt.top + rt.bot)
    return float(np.nanmedian(centre)) if np.isfinite(centre).any() else float("nan")


@dataclass
class GridView:
    """What the grid's readers read on a page, computed once for the rulers and the lean: the grid lines'
    darkness (`line_darkness`), the trace's pixels (the map at its threshold) and those widened by
    COVER_MARGIN_MM, which the readers leave out (their blurred edge still darkens the grid's strips)."""

    dark: np.ndarray
    trace_mask: np.ndarray
    cover: np.ndarray


def grid_view(image_rgb: np.ndarray, trace_mask: np.ndarray, px_per_mm: float) -> GridView:
    k = 2 * max(1, int(round(COVER_MARGIN_MM * px_per_mm))) + 1
    cover = cv2.dilate(trace_mask.astype(np.uint8), np.ones((k, k), np.uint8)) > 0
    return GridView(line_darkness(image_rgb, px_per_mm), trace_mask, cover)


def placed_rows(rows: list) -> list[tuple]:
    """(row, its baseline y) of the rows whose extent and baseline are known."""
    out = []
    for rt in rows:
        baseline_y = row_level_y(rt)
        if np.isfinite(rt.x_first) and np.isfinite(rt.x_last) and np.isfinite(baseline_y):
            out.append((rt, baseline_y))
    return out


def measure_row_rulers(rows: list, view: GridView, px_per_mm: float, px_per_sample: float) -> int:
    """Set each row's `ruler` (None where its grid gives none); returns how many rows got one.
    rows: the extractor's RowTrace list (x_first, x_last, baseline_y, cell_starts)."""
    for rt in rows:
        rt.ruler = None
    count = 0
    for rt, baseline_y in placed_rows(rows):
        exclude = ruler_exclusions(rt.x_first, rt.x_last, rt.cell_starts, px_per_sample, px_per_mm)
        rt.ruler = row_ruler(view.dark, view.cover, rt.x_first, rt.x_last, baseline_y, px_per_mm, exclude)
        count += rt.ruler is not None
    return count


# The lean is measured over the rows' part of the page and this far beyond (header print and margins left out)
LEAN_MARGIN_MM = 15.0
# How far above and below its baseline a row's lean is judged (a tall R wave's height)
LEAN_REACH_MM = 10.0
# A row whose lines lean less than this between its baseline and LEAN_REACH_MM above or below is left upright:
# the field's own scatter there is about 0.5 px (real photos), and a crease that leans moves a tall stroke's tip
# by 2-7 px
LEAN_MIN_PX = 1.5


# Print beside a row (pulse, lead names at the separators: ruler_exclusions) is left out this far above and
# below the row's baseline (a lead name stands up to ~8 mm above it)
PRINT_ABOVE_MM, PRINT_BELOW_MM = 12.0, 6.0


def measure_page_warp(view: GridView, px_per_mm: float, print_boxes: list[tuple[float, float, float, float]] = ()
                      ) -> GridWarp | None:
    """Where the page's vertical grid lines stand, everywhere (rectify.grid.grid_warp), over the part of the
    page that holds the trace; print_boxes (x0, y0, x1, y1) are left out with the trace (a lead name's
    strokes read as lines several px off)."""
    trace_mask = view.trace_mask
    rows = np.nonzero(trace_mask.any(axis=1))[0]
    if rows.size == 0:
        return None
    counts = trace_mask[rows].sum(axis=1).astype(np.float64)
    cum = np.cumsum(counts) / counts.sum()
    y0, y1 = rows[np.searchsorted(cum, 0.01)], rows[min(rows.size - 1, np.searchsorted(cum, 0.99))]
    margin = LEAN_MARGIN_MM * px_per_mm
    cover = view.cover.copy()
    h, w = cover.shape
    for x0, y0b, x1, y1b in print_boxes:
        cover[max(0, int(y0b)):min(h, int(np.ceil(y1b))), max(0, int(x0)):min(w, int(np.ceil(x1)))] = True
    return grid_warp(view.dark, cover, px_per_mm, (y0 - margin, y1 + margin))


def row_lean_px(warp: GridWarp, x0: float, x1: float, baseline_y: float, px_per_mm: float) -> float:
    """How far the lines lean over a row: the largest shift between its baseline and LEAN_REACH_MM above or
    below it (px)."""
    xs = np.arange(x0, x1, px_per_mm)
    base = warp.at(xs, np.full(xs.size, baseline_y))
    reach = LEAN_REACH_MM * px_per_mm
    up = warp.at(xs, np.full(xs.size, baseline_y - reach))
    down = warp.at(xs, np.full(xs.size, baseline_y + reach))
    return float(max(np.max(np.abs(up - base)), np.max(np.abs(down - base)))) if xs.size else 0.0


def measure_row_leans(rows: list, view: GridView, px_per_mm: float, px_per_sample: float) -> int:
    """Set each row's `lean` (None where its lines stand upright within LEAN_MIN_PX); returns how many rows got
    one."""
    for rt in rows:
        rt.lean = None
    placed = placed_rows(rows)
    boxes = [(a, baseline_y - PRINT_ABOVE_MM * px_per_mm, b, baseline_y + PRINT_BELOW_MM * px_per_mm)
             for rt, baseline_y in placed
             for a, b in ruler_exclusions(rt.x_first, rt.x_last, rt.cell_starts, px_per_sample, px_per_mm)]
    warp = measure_page_warp(view, px_per_mm, boxes)
    if warp is None:
        return 0
    count = 0
    for rt, baseline_y in placed:
        if row_lean_px(warp, rt.x_first, rt.x_last, baseline_y, px_per_mm) >= LEAN_MIN_PX:
            rt.lean = warp
            count += 1
    return count


def upright(y_px: np.ndarray, nominal_x: np.ndarray, image_x: np.ndarray, baseline_y: float,
            lean: GridWarp) -> np.ndarray:
    """A row's samples (y px, read at image_x for the nominal page x of each sample) moved to where their ink
    really is in time: the grid's lines lean by lean(x, y) - lean(x, baseline) at a sample's height, and so
    does the stroke through it; the moved samples are read back at the nominal x (linear between them)."""
    y = np.asarray(y_px, dtype=np.float64)
    ok = np.isfinite(y)
    if ok.sum() < 2:
        return y
    delta = lean.at(image_x[ok], y[ok]) - lean.at(image_x[ok], np.full(int(ok.sum()), baseline_y))
    page_x = nominal_x[ok] - delta
    order = np.argsort(page_x, kind="stable")
    out = np.full(y.size, np.nan)
    out[ok] = np.interp(nominal_x[ok], page_x[order], y[ok][order])
    return out
