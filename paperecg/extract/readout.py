"""From one row's per-column trace interval to a continuous centre-line path and to sample values.

A trace of width w crossing column c (x in [c - 1/2, c + 1/2]) covers the rows swept by its centre line in
that column, widened by its half-thickness. The centre line is continuous, so where it crosses from column
c to c + 1 it lies in both columns' centre-line ranges: the midpoint of their intersection is its value at
x = c + 1/2 (symmetric widening cancels, even on steep strokes). Inside a column the path is a straight
line between the two boundary values, unless the column reaches beyond both: then it holds a local
extremum (a QRS peak), kept at the column's edge minus the half-thickness, where the slope-aware widening
is measured with the local slope. A plotted polyline has its extrema at samples, so when samples are
sparser than pixels the extremum moves to the nearest sample inside the column.

A row is read out (`row_samples`) by fitting the drawn polyline to its column edges (fit.py), started from
that path, with the pen width the fit's own cost picks (`choose_pen_width`); its zero line is the
calibration pulse's or, without one, the path's most common level (`isoelectric_row`).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from ..geometry import PageGeometry
from .fit import fit_samples
from .ruler import sample_x as ruled_sample_x
from .ruler import upright
from .types import RowTrace

# Gauss-Newton iterations of the polyline fit (fit.fit_samples stops earlier once it has converged): a readout
# runs to convergence; the pen-width and sample-phase searches compare the costs of many fits of one probe row,
# for which a few iterations rank the candidates alike
READ_FIT_ITERS = 8
PEN_SEARCH_FIT_ITERS = 4
PHASE_SEARCH_FIT_ITERS = 3


def boundary_values(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Centre-line value at each column boundary c + 1/2 (length n - 1); NaN where a side is missing."""
    a_lo, a_hi, b_lo, b_hi = lo[:-1], hi[:-1], lo[1:], hi[1:]
    # overlapping ranges: the middle of the overlap; disjoint ones: the middle of the gap between them
    # (the same expression: max of the lows and min of the highs swap roles when the ranges part)
    return 0.5 * (np.maximum(a_lo, b_lo) + np.minimum(a_hi, b_hi))


def centre_path(top: np.ndarray, bot: np.ndarray, width_px: float, x0_col: int = 0,
                sample_x: np.ndarray | None = None, tol_px: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Path points (x, y) of the centre line.

    top, bot: edges of the row's run in columns x0_col .. x0_col + n - 1 (NaN where absent).
    width_px: trace thickness perpendicular to the stroke. sample_x: x of the samples (sorted), used to
    put extrema on samples when samples are at least a pixel apart.
    """
    n = top.size
    half = 0.5 * width_px
    lo = top + half
    hi = bot - half
    mid = 0.5 * (top + bot)
    inverted = lo > hi
    lo = np.where(inverted, mid, lo)
    hi = np.where(inverted, mid, hi)
    cols = np.arange(n, dtype=np.float64) + x0_col
    valid = np.isfinite(top) & np.isfinite(bot)

    xs_parts, ys_parts = [], []
    if n >= 2:
        bnd = boundary_values(lo, hi)
        bnd_ok = valid[:-1] & valid[1:]
        xs_parts.append(cols[:-1][bnd_ok] + 0.5)
        ys_parts.append(bnd[bnd_ok])
        left = np.concatenate([[np.nan], np.where(bnd_ok, bnd, np.nan)])
        right = np.concatenate([np.where(bnd_ok, bnd, np.nan), [np.nan]])
    else:
        left = right = np.full(n, np.nan)
    both = valid & np.isfinite(left) & np.isfinite(right)
    # columns at the end of a stretch (one boundary missing): their middle
    lonely = valid & ~both
    xs_parts.append(cols[lonely])
    ys_parts.append(0.5 * (lo[lonely] + hi[lonely]))
    # extrema: the column reaches beyond both boundary values after slope-aware shrinking
    slope = np.where(both, right - left, 0.0)
    shrink = half * np.sqrt(1.0 + slope ** 2) - half  # beyond the w/2 already removed
    top_c = lo + shrink
    bot_c = hi - shrink
    b_min = np.fmin(left, right)
    b_max = np.fmax(left, right)
    ext_top = both & (top_c < b_min - tol_px)
    ext_bot = both & (bot_c > b_max + tol_px)
    x_ext = cols.copy()
    if sample_x is not None and sample_x.size > 1 and np.median(np.diff(sample_x)) >= 1.0:
        k = np.clip(np.searchsorted(sample_x, cols), 1, sample_x.size - 1)
        near = np.where(np.abs(sample_x[k] - cols) < np.abs(sample_x[k - 1] - cols), sample_x[k], sample_x[k - 1])
        x_ext = np.where(np.abs(near - cols) <= 0.5, near, cols)
    both_ext = ext_top & ext_bot
    # a column with a peak and a trough: order them by which boundary each is nearer to
    top_first = np.abs(left - top_c) < np.abs(left - bot_c)
    dx_top = np.where(both_ext, np.where(top_first, -0.25, 0.25), 0.0)
    xs_parts += [x_ext[ext_top] + dx_top[ext_top], x_ext[ext_bot] - dx_top[ext_bot]]
    ys_parts += [top_c[ext_top], bot_c[ext_bot]]
    xs = np.concatenate(xs_parts)
    ys = np.concatenate(ys_parts)
    order = np.argsort(xs, kind="stable")
    return xs[order], ys[order]


def sample_path(xs: np.ndarray, ys: np.ndarray, sample_x: np.ndarray, valid_cols: np.ndarray,
                x0_col: int = 0) -> np.ndarray:
    """Path value at each sample x; NaN where the sample's column has no trace."""
    out = np.full(sample_x.size, np.nan)
    if xs.size == 0:
        return out
    c = np.rint(sample_x).astype(np.int64) - x0_col
    inside = (c >= 0) & (c < valid_cols.size)
    ok = np.zeros(sample_x.size, dtype=bool)
    ok[inside] = valid_cols[c[inside]]
    out[ok] = np.interp(sample_x[ok], xs, ys)
    return out


def isoelectric_row(ys: np.ndarray, bin_px: float = 0.25) -> float:
    """Most common vertical position of a row's path (the isoelectric line), sub-pixel."""
    ys = ys[np.isfinite(ys)]
    if ys.size == 0:
        return float("nan")
    lo, hi = np.floor(ys.min()) - 2, np.ceil(ys.max()) + 2
    bins = max(int((hi - lo) / bin_px), 1)
    hist, edges = np.histogram(ys, bins=bins, range=(lo, hi))
    from scipy.ndimage import gaussian_filter1d

    sm = gaussian_filter1d(hist.astype(np.float64), sigma=1.0 / bin_px)
    i = int(np.argmax(sm))
    return float(0.5 * (edges[i] + edges[i + 1]))


def smoothing_weight(px_per_sample: float) -> float:
    """Second-difference penalty of the polyline fit. Two edges per column constrain the samples; where
    several samples share a column (250/500 Hz at 200 dpi) the rest must come from smoothness, and the
    per-sample second differences of a smooth curve shrink with the spacing (tuned on own renders:
    0.02 at 2 px per sample, ~0.15 at 0.8, ~0.7 at 0.4)."""
    return 0.02 * (1.97 / max(px_per_sample, 0.05)) ** 2.2


def fit_row(rt: RowTrace, x_first: float, px_per_sample: float, num_samples: int, width_px: float,
             iters: int, pen_width_px: float | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Polyline fit of one row with its first sample at x_first: (sample indices on the row, y, cost).
    Each cell (lead) of the row is a polyline of its own: no line joins the last sample of one cell and
    the first of the next."""
    sample_x = ruled_sample_x(x_first, px_per_sample, num_samples, rt.ruler)
    on_row = (sample_x >= rt.col0 - 0.5) & (sample_x <= rt.col0 + rt.top.size - 0.5)
    idx = np.nonzero(on_row)[0]
    if idx.size < 3:
        return idx, np.zeros(0), float("nan")
    xs, ys = centre_path(rt.top, rt.bot, width_px, rt.col0, sample_x)
    if xs.size < 2:
        return idx, np.zeros(0), float("nan")
    y0 = np.interp(sample_x[idx], xs, ys)
    breaks = np.isin(idx[1:], np.asarray(rt.cell_starts, dtype=np.int64)) if rt.cell_starts else None
    pen = width_px if pen_width_px is None else pen_width_px
    y, cost = fit_samples(rt.top, rt.bot, rt.w_top, rt.w_bot, rt.col0, sample_x[idx], y0, 0.5 * pen,
                          iters=iters, breaks=breaks, smooth=smoothing_weight(px_per_sample))
    return idx, y, cost / max(idx.size, 1)


def probe_row(rows: list[RowTrace]) -> RowTrace | None:
    """The row with the most vertical stroke length: the most information for page-wide choices."""
    usable = [r for r in rows if np.isfinite(r.x_first) and r.top.size > 10]
    return max(usable, key=lambda r: float(np.nansum(r.bot - r.top))) if usable else None


def choose_pen_width(rows: list[RowTrace], px_per_sample: float, num_samples: int, width_px: float,
                     factors: tuple[float, ...] = (0.6, 0.7, 0.85, 1.0, 1.15)) -> float:
    """Pen width of the polyline model: the flat-run thickness for crisp binary masks, less for soft or
    blurred maps (a segmenter's), whose 0.5 contour hugs thin steep strokes and peak tips closer than
    it does flat stretches. The fit's own cost on the probe row picks it (it tracks the score)."""
    probe = probe_row(rows)
    if probe is None:
        return width_px
    costs = [fit_row(probe, probe.x_first, px_per_sample, num_samples, width_px, PEN_SEARCH_FIT_ITERS,
                     f * width_px)[2] for f in factors]
    if not np.all(np.isfinite(costs)):
        return width_px
    return float(factors[int(np.argmin(costs))] * width_px)


def quick_row_values(rt: RowTrace, px_per_sample: float, num_samples: int, width_px: float) -> np.ndarray:
    """Image rows of the centre-line path at every sample (no fit): enough to compare shapes."""
    sample_x = rt.x_first + np.arange(num_samples) * px_per_sample
    xs, ys = centre_path(rt.top, rt.bot, width_px, rt.col0, sample_x)
    return sample_path(xs, ys, sample_x, np.isfinite(rt.top), rt.col0)


def column_envelope(rt: RowTrace, x: np.ndarray, margin_px: float) -> tuple[np.ndarray, np.ndarray]:
    """(lowest top, highest bottom) of the row's ink in the two columns each x lies between, widened by
    margin_px; NaN where neither column holds ink."""
    n = rt.top.size
    c0 = np.clip(np.floor(np.asarray(x, dtype=np.float64)).astype(np.int64) - rt.col0, 0, n - 1)
    c1 = np.minimum(c0 + 1, n - 1)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pairs: NaN, as documented
        lo = np.nanmin(np.stack([rt.top[c0], rt.top[c1]]), axis=0) - margin_px
        hi = np.nanmax(np.stack([rt.bot[c0], rt.bot[c1]]), axis=0) + margin_px
    return lo, hi


def near_gap(rt: RowTrace, x: np.ndarray, reach_px: float) -> np.ndarray:
    """bool per x: a column of the row without ink lies within reach_px (inside the row's extent)."""
    gap = ~np.isfinite(rt.top)
    if not gap.any():
        return np.zeros(np.shape(x), dtype=bool)
    k = max(1, int(math.ceil(reach_px)))
    padded = np.concatenate([np.zeros(k, bool), gap, np.zeros(k, bool)])
    window = np.convolve(padded.astype(np.int64), np.ones(2 * k + 1, np.int64), mode="same")[k:k + gap.size] > 0
    c = np.clip(np.round(np.asarray(x, dtype=np.float64)).astype(np.int64) - rt.col0, 0, gap.size - 1)
    return window[c]


def row_samples(rt: RowTrace, px_per_sample: float, num_samples: int, width_px: float,
                 geometry: PageGeometry, refine: bool = True, pen_width_px: float | None = None) -> np.ndarray:
    """mV of every record sample on this row's time axis (NaN off the trace)."""
    if not np.isfinite(rt.x_first) or rt.top.size == 0:
        return np.full(num_samples, np.nan)
    sample_x = ruled_sample_x(rt.x_first, px_per_sample, num_samples, rt.ruler)
    xs, ys = centre_path(rt.top, rt.bot, width_px, rt.col0, sample_x)
    valid = np.isfinite(rt.top)
    y = sample_path(xs, ys, sample_x, valid, rt.col0)
    if refine:
        idx, yfit, _ = fit_row(rt, rt.x_first, px_per_sample, num_samples, width_px, READ_FIT_ITERS,
                               pen_width_px)
        if yfit.size:
            # the fit follows the trace's slope; at the edge of a gap it can run on along that slope far past
            # any ink (real photos: flat columns read up to 1 mV high beside a gap, drawn as spikes). Within
            # half a millimetre of a gap, a fitted sample more than half a millimetre outside the ink of the
            # columns it lies between keeps the plain centre path (elsewhere a QRS tip the map lost may rightly
            # be fitted beyond its ink)
            half_mm = 0.5 * geometry.px_per_mm_y
            lo, hi = column_envelope(rt, sample_x[idx], margin_px=half_mm)
            inside = (yfit >= lo) & (yfit <= hi) | ~near_gap(rt, sample_x[idx], half_mm)
            y[idx] = np.where(np.isfinite(y[idx]), np.where(inside, yfit, y[idx]), np.nan)
    if rt.pulse is not None and np.isfinite(rt.pulse.baseline_y):
        rt.baseline_y = rt.pulse.baseline_y
    else:
        rt.baseline_y = isoelectric_row(ys)
    if rt.lean is not None:
        nominal_x = rt.x_first + np.arange(num_samples) * px_per_sample
        y = upright(y, nominal_x, sample_x, rt.baseline_y, rt.lean)
    return (rt.baseline_y - y) / geometry.px_per_mv
