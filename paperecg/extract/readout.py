"""From one row's per-column trace interval to a continuous centre-line path and to sample values.

A trace of width w crossing column c (x in [c - 1/2, c + 1/2]) covers the rows swept by its centre line in
that column, widened by its half-thickness. The centre line is continuous, so where it crosses from column
c to c + 1 it lies in both columns' centre-line ranges: the midpoint of their intersection is its value at
x = c + 1/2 (symmetric widening cancels, even on steep strokes). Inside a column the path is a straight
line between the two boundary values, unless the column reaches beyond both: then it holds a local
extremum (a QRS peak), kept at the column's edge minus the half-thickness, where the slope-aware widening
is measured with the local slope. A plotted polyline has its extrema at samples, so when samples are
sparser than pixels the extremum moves to the nearest sample inside the column.
"""
from __future__ import annotations

import numpy as np


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
