"""Where the vertical grid lines of a rectified page stand, at every height (`grid_warp`, a `GridWarp`).

The page frame's smooth surface leaves in what a crumpled or curled photograph does locally. A crease shifts
the lines beyond it (the row ruler, ruler.py, follows that along a row), and near a curled corner the lines
also lean: measured on real phone photos, the lines 10 mm above a row's baseline stand up to 7 px (0.9 mm)
left of those 5 mm below it. A tall QRS stroke leans with them, so its tip is read up to 30 ms early or late
while the P and T waves beside it sit right; a shift per row cannot undo that. Here the lines' shift is
measured in overlapping horizontal bands over the page, against one comb for the whole page (the printed grid
is one lattice), so that shifts at different heights can be compared (extract/ruler.py `upright`).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ...geometry import MAJOR_MM
from .ruler import (MAJOR_GUIDE_SHARE, MINOR_LATTICE_SHARE, RULER_SMOOTH_MM, comb_coefficient, gaussian_smoothed,
                    line_shifts, minor_guided, uncovered_profile, unwrap_shifts, without_outliers)

WARP_BAND_MM = 6.0  # height of each band whose vertical lines are measured
WARP_BAND_STEP_MM = 3.0  # bands overlap by half
WARP_STEP_MM = 1.0  # the field is kept at this spacing along x, and interpolated between
# Lines measured in less than this share of a band's width: the band is left out (filled from its neighbours)
WARP_MIN_LINE_SHARE = 0.3
# Shifts further than this from the median of the three bands around (at one x) are misreads of one band
WARP_BAND_OUTLIER_PX = 2.0
# A band's shift beyond this is a misread (a 5-mm line taken for its neighbour where print or a fold hides the
# lines); the largest crease shifts measured on real photos are 0.7-1.0 mm
WARP_MAX_MM = 1.5


@dataclass
class GridWarp:
    """Where the page's vertical lines stand: the line that one comb puts at x stands at x + shift_px[b, i] in
    the band centred at y_px[b] (x = x_px[i]); linear in between, constant beyond the first and last band."""

    y_px: np.ndarray
    x_px: np.ndarray
    shift_px: np.ndarray

    def at(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The shift (px) at points (x, y) of the page."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        b = np.clip(np.searchsorted(self.y_px, y) - 1, 0, max(0, self.y_px.size - 2))
        b1 = np.minimum(b + 1, self.y_px.size - 1)
        span = np.where(b1 > b, self.y_px[b1] - self.y_px[b], 1.0)
        t = np.clip((y - self.y_px[b]) / span, 0.0, 1.0)
        fx = np.clip(np.interp(x, self.x_px, np.arange(self.x_px.size, dtype=np.float64)), 0, self.x_px.size - 1)
        i = np.minimum(np.floor(fx).astype(np.int64), self.x_px.size - 2) if self.x_px.size > 1 else np.zeros_like(b)
        u = fx - i
        i1 = np.minimum(i + 1, self.x_px.size - 1)
        s = self.shift_px
        lo = (1.0 - u) * s[b, i] + u * s[b, i1]
        hi = (1.0 - u) * s[b1, i] + u * s[b1, i1]
        return (1.0 - t) * lo + t * hi


def _band_shift(profile: np.ndarray, share: np.ndarray, px_per_mm: float, phase5: float, phase1: float | None,
                x_out: np.ndarray) -> np.ndarray:
    """One band's line shifts against the page's comb, smoothed along x and read at x_out (NaN where the band
    has too few lines or none near)."""
    major_px = MAJOR_MM * px_per_mm
    xs5, raw5 = line_shifts(profile, share, major_px, 0, phase5)
    need = WARP_MIN_LINE_SHARE * profile.size / major_px
    if xs5.size < max(4, need):
        return np.full(x_out.size, np.nan)
    # against one comb the shifts start near zero: unwrapped along the band from there
    shift5 = unwrap_shifts(xs5, raw5, major_px)
    xs, shift, period = xs5, shift5, major_px
    if phase1 is not None:
        xs1, raw = line_shifts(profile, share, px_per_mm, 0, phase1)
        if xs1.size >= xs5.size:
            shift1 = minor_guided(xs5, shift5, xs1, raw, px_per_mm)
            if shift1 is not None:
                xs, shift, period = xs1, shift1, px_per_mm
    xs, shift = without_outliers(xs, shift, period)
    if xs.size < max(4, need):
        return np.full(x_out.size, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):  # no weight at all: NaN, as below
        out, weight = gaussian_smoothed(xs, shift, x_out, RULER_SMOOTH_MM * px_per_mm)
    # no line within two smoothing widths: unknown here
    out[weight < np.exp(-2.0)] = np.nan
    out[np.abs(out) > WARP_MAX_MM * px_per_mm] = np.nan
    return out


def grid_warp(dark: np.ndarray, cover: np.ndarray, px_per_mm: float, y_range: tuple[float, float] | None = None
              ) -> GridWarp | None:
    """Where the page's vertical grid lines stand (see the module's doc), or None where the grid gives too
    little to read (fewer than three bands, or lines drawn alike).
    dark: `line_darkness` of the page; cover: bool mask of trace and print (left out); y_range: the rows of
    the page to measure (default: all)."""
    h, w = dark.shape
    major_px = MAJOR_MM * px_per_mm
    free = np.where(cover, 0.0, dark)
    whole = free.sum(axis=0) / np.maximum((~cover).sum(axis=0), 1)
    major = comb_coefficient(whole, major_px)
    major_level, minor_level = abs(major), abs(comb_coefficient(whole, px_per_mm))
    if major_level < MAJOR_GUIDE_SHARE * minor_level:
        return None  # lines drawn alike: a shift is known only modulo 1 mm (as in ruler.row_ruler)
    phase5 = float(np.angle(major))
    # the 1-mm comb through the 5-mm comb's lines (phases found apart differ by a fraction of a pixel, and bands
    # read on one comb or the other would then disagree by that much)
    first5 = (-phase5 / (2.0 * np.pi)) * major_px % major_px
    phase1 = -2.0 * np.pi * first5 / px_per_mm if minor_level >= MINOR_LATTICE_SHARE * major_level else None
    ya, yb = (0.0, float(h)) if y_range is None else (max(0.0, y_range[0]), min(float(h), y_range[1]))
    band_px = WARP_BAND_MM * px_per_mm
    step_px = WARP_BAND_STEP_MM * px_per_mm
    x_out = np.arange(0.0, w, WARP_STEP_MM * px_per_mm)
    ys, shifts = [], []
    y0 = ya
    while y0 + band_px <= yb:
        read = uncovered_profile(dark, cover, int(y0), int(y0 + band_px), 0, w)
        ys.append(y0 + 0.5 * band_px)
        shifts.append(np.full(x_out.size, np.nan) if read is None else
                      _band_shift(*read, px_per_mm, phase5, phase1, x_out))
        y0 += step_px
    if len(ys) < 3:
        return None
    y_px = np.asarray(ys)
    shift = np.asarray(shifts)
    # a band's misread (print, a lead name) differs from both neighbours: the median of three at each x
    padded = np.concatenate([shift[:1], shift, shift[-1:]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a column no band measured: NaN, filled below
        med = np.nanmedian(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
    shift = np.where(np.abs(shift - med) > WARP_BAND_OUTLIER_PX, np.nan, shift)
    # fill each column's missing bands from the measured ones (linear in y, flat beyond)
    for i in range(x_out.size):
        col = shift[:, i]
        ok = np.isfinite(col)
        if ok.sum() == 0:
            shift[:, i] = np.nan
        elif not ok.all():
            shift[:, i] = np.interp(y_px, y_px[ok], col[ok])
    cols_ok = np.isfinite(shift).all(axis=0)
    if cols_ok.sum() < 4:
        return None
    for b in range(shift.shape[0]):
        shift[b, ~cols_ok] = np.interp(x_out[~cols_ok], x_out[cols_ok], shift[b, cols_ok])
    # the lines lean smoothly between creases: one band step of smoothing along y halves the bands' scatter
    shift = gaussian_filter1d(shift, sigma=1.0, axis=0, mode="nearest")
    shift -= float(np.median(shift))
    return GridWarp(y_px, x_out, shift)
