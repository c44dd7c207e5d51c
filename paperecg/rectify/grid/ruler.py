"""A row's time ruler on a rectified page: where the vertical grid lines printed beside a row really stand
(`row_ruler`, a `RowRuler`), read in strips above and below its baseline on the page's `line_darkness`.

A crumpled or folded photographed page keeps creases the page frame's smooth surface cannot follow: a row's
printed beats then sit up to 0.7 mm (28 ms) off where the frame puts them, beat by beat. The vertical grid
lines printed around the row carry the same crease, so their positions measured next to the row tell where
each millimetre of the row really is.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...geometry import MAJOR_MM

# Strips above and below a row's baseline (mm) in which its vertical lines are measured: clear of the
# baseline stretch of the trace, inside the row's own band of paper.
RULER_STRIPS_MM = ((-10.0, -3.0), (2.5, 8.0))
# A line is not measured where the trace (or print) covers more than this share of its strip around it: a
# steep QRS stroke crossing the strip is a vertical dark line too, and the erased trace pixels bias a
# grid line's peak (on clean rows the shifts fell exactly on the QRS complexes).
RULER_MAX_COVER_SHARE = 0.2
RULER_SMOOTH_MM = 2.5  # Gaussian smoothing of the line shifts along the row (as residual.SMOOTH_MM)
RULER_MAX_SCATTER_PX = 1.0  # lines scattering more than this about their smoothed shift: no ruler for the row
# A line further than this share of the period from the median of its five neighbours is misread (print, a
# trace's edge; ECG-Image-Kit photo 00823: one 5-mm line 1.3 mm off): a crease moves neighbouring lines
# together, so a step or a ramp keeps its median and a lone line does not.
RULER_OUTLIER_SHARE = 0.2
# A row whose shifts all stay within this is left on its nominal axis: that is the ruler's own noise, not a
# crease, and at 100 Hz a sample is 2 px, so 0.4 px moves a QRS stroke's samples by 0.2 mV. A crease a phone
# shows moves the lines by 2-8 px.
RULER_MIN_CREASE_PX = 1.0
RULER_MIN_LINE_SHARE = 0.5  # at least this share of the row's lines measured, and at least RULER_MIN_LINES
RULER_MIN_LINES = 6
# The 5-mm lines are the ruler where they are told apart: their comb level at least this share of the 1-mm
# lattice's. Below it the lines are drawn alike, a line's shift is known only modulo 1 mm, and a crease of
# over half a millimetre would be read a whole millimetre wrong beyond it (figures: docs/tuning.md).
MAJOR_GUIDE_SHARE = 0.5
# The 1-mm lines are read too where their level is at least this share of the 5-mm lines' (each line's
# period multiple taken from the 5-mm ruler).
MINOR_LATTICE_SHARE = 0.3


@dataclass
class RowRuler:
    """Where a row's millimetres really are: the printed line nominally at x_px[i] (a perfect comb of the
    page's period) stands at x_px[i] + shift_px[i]; shifts have zero median (the row's placement keeps its
    own anchor)."""

    x_px: np.ndarray
    shift_px: np.ndarray
    period_mm: float

    def shift_at(self, x: np.ndarray) -> np.ndarray:
        return np.interp(np.asarray(x, dtype=np.float64), self.x_px, self.shift_px)


@dataclass(frozen=True)
class CombPeaks:
    """Each line of a comb along a 1-D profile: where a perfect comb puts it, and where it stands."""

    nominal_px: np.ndarray
    found_px: np.ndarray  # NaN: not found


def comb_coefficient(profile: np.ndarray, period_px: float) -> complex:
    """The DFT coefficient of a 1-D darkness profile (its mean removed) at one period: its angle is the comb's
    phase, its size the comb's strength."""
    x = np.arange(profile.size, dtype=np.float64)
    return np.sum((profile - profile.mean()) * np.exp(-2j * np.pi * x / period_px))


def comb_peaks(profile: np.ndarray, period_px: float, phase: float | None = None) -> CombPeaks:
    """Each line of a comb along a 1-D darkness profile: nominal places follow the given phase at the period
    (default: the profile's own, the angle of its `comb_coefficient`); each line is the sub-pixel peak
    (parabola) within half a period of its place (NaN where the peak is at the window's edge or not a
    maximum)."""
    if phase is None:
        phase = float(np.angle(comb_coefficient(profile, period_px)))
    first = (-phase / (2.0 * np.pi)) * period_px % period_px
    nominal = np.arange(first, profile.size, period_px)
    found = np.full(nominal.size, np.nan)
    half = int(round(0.5 * period_px))
    for n, c in enumerate(nominal):
        lo, hi = int(round(c)) - half, int(round(c)) + half + 1
        if lo < 1 or hi >= profile.size - 1:
            continue
        i = lo + int(np.argmax(profile[lo:hi]))
        if i in (lo, hi - 1):
            continue
        a, b, c2 = profile[i - 1], profile[i], profile[i + 1]
        curv = a - 2.0 * b + c2
        if curv < 0:
            found[n] = i + 0.5 * (a - c2) / curv
    return CombPeaks(nominal, found)


def line_shifts(profile: np.ndarray, share: np.ndarray, period_px: float, x_offset: int,
                phase: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(nominal x, shift modulo the period) of the comb's lines found clear of the trace (page x); the nominal
    comb's phase is the profile's own unless given (the phase at x_offset = 0)."""
    peaks = comb_peaks(profile, period_px, phase)
    nominal, pos = peaks.nominal_px, peaks.found_px
    half = int(round(0.5 * period_px))
    for n, c in enumerate(nominal):
        lo, hi = max(0, int(c) - half), min(profile.size, int(c) + half + 1)
        if hi > lo and share[lo:hi].mean() > RULER_MAX_COVER_SHARE:
            pos[n] = np.nan
    ok = np.isfinite(pos)
    return nominal[ok] + x_offset, pos[ok] - nominal[ok]


def unwrap_shifts(xs: np.ndarray, raw: np.ndarray, period_px: float, history: int = 8,
                  max_slope: float = 0.02) -> np.ndarray:
    """Line shifts (each known only modulo the period) made continuous along the row: each is taken at the
    period multiple nearest the shift the previous lines predict (their last value plus their local slope
    times the distance). A crease may move the lines beyond it by more than half a 1-mm period, a little at
    each line; a page whose scale was misread adds a slope, which matters across a gap of unmeasured lines
    (a cell boundary, a QRS covering the strips)."""
    out = np.asarray(raw, dtype=np.float64).copy()
    for i in range(1, out.size):
        lo = max(0, i - history)
        slope = 0.0
        if i - lo >= 3:
            slope = float(np.clip(np.polyfit(xs[lo:i], out[lo:i], 1)[0], -max_slope, max_slope))
        predicted = out[i - 1] + slope * (xs[i] - xs[i - 1])
        out[i] += period_px * np.round((predicted - out[i]) / period_px)
    return out


def uncovered_profile(dark: np.ndarray, cover: np.ndarray, ya: int, yb: int, xa: int, xb: int
                      ) -> tuple[np.ndarray, np.ndarray] | None:
    """(column darkness over the uncovered pixels of dark[ya:yb, xa:xb], covered share per column; a column
    with no uncovered pixel takes its neighbours' level), or None when every pixel is covered."""
    sub = dark[ya:yb, xa:xb].astype(np.float64)
    covered = cover[ya:yb, xa:xb]
    free = (~covered).sum(axis=0)
    share = covered.mean(axis=0)
    ok = free > 0
    if not ok.any():
        return None
    prof = np.zeros(sub.shape[1])
    prof[ok] = (sub * ~covered).sum(axis=0)[ok] / free[ok]
    prof[~ok] = np.interp(np.nonzero(~ok)[0], np.nonzero(ok)[0], prof[ok])
    return prof, share


def _strip_profiles(dark: np.ndarray, cover: np.ndarray | None, xa: int, xb: int, baseline_y: float,
                    px_per_mm: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """(column darkness profile over the uncovered pixels, covered share per column) of each ruler strip."""
    out = []
    for top_mm, bot_mm in RULER_STRIPS_MM:
        ya = max(0, int(baseline_y + top_mm * px_per_mm))
        yb = min(dark.shape[0], int(baseline_y + bot_mm * px_per_mm))
        if yb - ya < 5:
            continue
        if cover is None:
            sub = dark[ya:yb, xa:xb].astype(np.float64)
            out.append((sub.mean(axis=0), np.zeros(sub.shape[1])))
            continue
        read = uncovered_profile(dark, cover, ya, yb, xa, xb)
        if read is not None:
            out.append(read)
    return out


def minor_guided(xs5: np.ndarray, shift5: np.ndarray, xs1: np.ndarray, raw1: np.ndarray, px_per_mm: float
                 ) -> np.ndarray | None:
    """The 1-mm lines' shifts (raw1: each known modulo 1 mm) at the period multiple the 5-mm lines' shifts
    give there; None where neighbouring lines end up about a period apart (a wrong multiple somewhere: a crease
    moves the lines beyond it by up to ~0.7 mm)."""
    shift1 = raw1 + px_per_mm * np.round((np.interp(xs1, xs5, shift5) - raw1) / px_per_mm)
    return None if np.any(np.abs(np.diff(shift1)) > 0.75 * px_per_mm) else shift1


def without_outliers(xs: np.ndarray, shift: np.ndarray, period_px: float) -> tuple[np.ndarray, np.ndarray]:
    """The lines within RULER_OUTLIER_SHARE of a period of the median of their five neighbours (a crease moves
    neighbouring lines together; a misread line stands alone)."""
    local = np.array([np.median(shift[max(0, i - 2):i + 3]) for i in range(shift.size)])
    good = np.abs(shift - local) < RULER_OUTLIER_SHARE * period_px
    return xs[good], shift[good]


def gaussian_smoothed(xs: np.ndarray, values: np.ndarray, at: np.ndarray, sigma_px: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    """(values smoothed along x by a Gaussian of sigma_px and read at `at`, the weight behind each)."""
    w = np.exp(-0.5 * ((at[:, None] - xs[None, :]) / sigma_px) ** 2)
    weight = w.sum(axis=1)
    return (w @ values) / weight, weight


def _comb_level(profiles: list[tuple[np.ndarray, np.ndarray]], period_px: float) -> float:
    """The comb's strength at the period: the median over the strips of its DFT coefficient's size per px."""
    levels = [abs(comb_coefficient(prof, period_px)) / max(prof.size, 1) for prof, _ in profiles]
    return float(np.median(levels)) if levels else 0.0


def row_ruler(dark: np.ndarray, cover: np.ndarray | None, x0_px: float, x1_px: float, baseline_y: float,
              px_per_mm: float, exclude_px: list[tuple[float, float]] = ()) -> RowRuler | None:
    """The time ruler of a row drawn over [x0_px, x1_px] with its baseline at baseline_y, read on the vertical
    lines in strips above and below it (see RULER_STRIPS_MM); None where the grid there is too sparse or too
    scattered to trust. dark: `line_darkness` of the page; cover: bool mask of trace and print (its pixels
    are left out); exclude_px: x ranges whose lines are not used (the calibration pulse, the cell
    separators and the lead names printed beside them)."""
    pad = int(round(5.0 * px_per_mm))
    xa, xb = max(0, int(x0_px) - pad), min(dark.shape[1], int(x1_px) + pad)
    if xb - xa < 4 * pad:
        return None
    profiles = _strip_profiles(dark, cover, xa, xb, baseline_y, px_per_mm)
    if not profiles:
        return None
    profile = np.mean([p for p, _ in profiles], axis=0)
    share = np.mean([c for _, c in profiles], axis=0)
    major_px = MAJOR_MM * px_per_mm
    major = _comb_level(profiles, major_px)
    minor = _comb_level(profiles, px_per_mm)
    if major < MAJOR_GUIDE_SHARE * minor:
        # a lattice of alike lines (a rendered page): a line's shift is known only modulo 1 mm, and a crease of
        # over half a millimetre would be read a millimetre wrong beyond it; no ruler
        return None
    def kept(xs: np.ndarray, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keep = (xs >= x0_px - pad) & (xs <= x1_px + pad)
        for a, b in exclude_px:
            keep &= ~((xs >= a) & (xs <= b))
        return xs[keep], shift[keep]

    xs5, shift5 = kept(*line_shifts(profile, share, major_px, xa))
    if xs5.size < RULER_MIN_LINES:
        return None
    shift5 = unwrap_shifts(xs5, shift5, major_px)
    period_mm, xs, shift = MAJOR_MM, xs5, shift5
    if minor >= MINOR_LATTICE_SHARE * major:
        # the 1-mm lines are read too: five times the ruler's marks (a sharp crease is followed), each line's
        # period multiple taken from the 5-mm lines
        xs1, raw = kept(*line_shifts(profile, share, px_per_mm, xa))
        shift1 = minor_guided(xs5, shift5, xs1, raw, px_per_mm)
        # a wrong multiple somewhere: the 5-mm lines alone then
        if xs1.size >= RULER_MIN_LINES and shift1 is not None:
            period_mm, xs, shift = 1.0, xs1, shift1
    period = period_mm * px_per_mm
    need = max(RULER_MIN_LINES, RULER_MIN_LINE_SHARE * (x1_px - x0_px) / period)
    if xs.size < need:
        return None
    xs, shift = without_outliers(xs, shift, period)
    if xs.size < need:
        return None
    smooth, _ = gaussian_smoothed(xs, shift, xs, RULER_SMOOTH_MM * px_per_mm)
    if float(np.sqrt(np.mean((shift - smooth) ** 2))) > RULER_MAX_SCATTER_PX:
        return None
    smooth -= float(np.median(smooth))
    if float(np.max(np.abs(smooth))) < RULER_MIN_CREASE_PX:
        return None
    return RowRuler(xs, smooth, period_mm)
