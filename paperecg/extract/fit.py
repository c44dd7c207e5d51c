"""Sample values by fitting a drawn polyline to the observed column edges (inverse rendering).

Forward model: the printed trace is the polyline through the samples (x_k, y_k), drawn with a round pen of
radius rho. A pixel centre (c, r) is inked when it lies within rho of the polyline, so column c's top edge is
    T_c = min over |u| <= rho of  y(c + u) - sqrt(rho^2 - u^2)
and its bottom edge B_c the max of y(c + u) + sqrt(...). This explains both the widening of steep strokes
and the rounding of sharp peaks; a column mean or midpoint gets both wrong. We solve for the y_k that
reproduce the observed edges: Gauss-Newton on the piecewise-linear model (the min/max picks one point of
the polyline, linear in two neighbouring samples), Huber-weighted, with a tiny second-difference penalty
that only matters where samples are denser than columns.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import solveh_banded

FINE_STEP_PX = 0.125


def _interp_weights(sample_x: np.ndarray, xf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each fine x: index k of the sample to its left and weight a of that sample (y = a y_k +
    (1 - a) y_{k+1}); outside the samples the end sample is repeated."""
    n = sample_x.size
    k = np.clip(np.searchsorted(sample_x, xf, side="right") - 1, 0, max(n - 2, 0))
    if n < 2:
        return np.zeros(xf.size, dtype=np.int64), np.ones(xf.size)
    dx = sample_x[k + 1] - sample_x[k]
    a = np.clip((sample_x[k + 1] - xf) / dx, 0.0, 1.0)
    return k, a


def _second_difference_bands(n: int, weight: float, breaks: np.ndarray | None = None) -> np.ndarray:
    """weight * D2^T D2 (+ a tiny ridge) in solveh_banded's upper form (3, n); no smoothing across breaks."""
    ab = np.zeros((3, n))
    if n >= 3:
        m = n - 2
        coef = (1.0, -2.0, 1.0)
        wrow = np.full(m, weight)
        if breaks is not None:
            wrow[breaks[:-1] | breaks[1:]] = 0.0  # triple i, i+1, i+2 straddles a break
        for p in range(3):
            for q in range(p, 3):
                band = q - p
                vals = np.zeros(n)
                np.add.at(vals, np.arange(m) + p, wrow * coef[p] * coef[q])
                # entry (i+p, i+q) sits in row 2 - band at column i+q
                ab[2 - band, band:] += vals[: n - band] if band else vals
    ab[2] += 1e-4
    return ab


def _apply_bands(ab: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Symmetric banded matrix (upper form) times x."""
    out = ab[2] * x
    for band in (1, 2):
        d = ab[2 - band, band:]
        out[:-band] += d * x[band:]
        out[band:] += d * x[:-band]
    return out


def fit_samples(top: np.ndarray, bot: np.ndarray, w_top: np.ndarray, w_bot: np.ndarray, col0: int,
                sample_x: np.ndarray, y_init: np.ndarray, rho: float, iters: int = 8,
                smooth: float = 0.02, huber_px: float = 1.5,
                breaks: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Refined y (image rows) of the samples at sample_x (sorted), given column edges from col0.

    w_top / w_bot: weight of each column's top / bottom edge (0 where it is not the trace's own edge, e.g.
    where two rows' traces touch). y_init: starting values (finite).
    breaks: bool (n - 1,), True where samples k and k + 1 are not joined (separate polylines: each lead of a
    row is drawn on its own, so the trace jumps at a cell boundary); the pen then draws only the pieces.
    Returns (y, cost): cost = Huber cost of the edge residuals at the last iteration (NaN: nothing fitted).
    """
    n = sample_x.size
    y = y_init.astype(np.float64).copy()
    cost = float("nan")
    if n < 3:
        return y, cost
    sample_x = sample_x.astype(np.float64)
    ncol = top.size
    cols = col0 + np.arange(ncol)
    xf0 = np.floor(min(sample_x[0], cols[0]) - rho - 1)
    xf1 = np.ceil(max(sample_x[-1], cols[-1]) + rho + 1)
    steps_per_px = int(round(1.0 / FINE_STEP_PX))
    xf = xf0 + np.arange(int((xf1 - xf0) * steps_per_px) + 1) * FINE_STEP_PX
    kf, af = _interp_weights(sample_x, xf)
    # pen offsets around a column centre; the pen only reaches where the polyline exists
    j_max = int(np.floor(rho / FINE_STEP_PX))
    offs = np.arange(-j_max, j_max + 1)
    g = np.sqrt(np.maximum(rho ** 2 - (offs * FINE_STEP_PX) ** 2, 0.0))
    ic = np.rint((cols - xf0) * steps_per_px).astype(np.int64)
    win = ic[:, None] + offs[None, :]  # (ncol, J) fine indices
    inside = (xf[win] >= sample_x[0] - 1e-9) & (xf[win] <= sample_x[-1] + 1e-9)
    if breaks is not None and breaks.any():
        # no line between the last sample of one piece and the first of the next
        inside &= ~breaks[kf][win] | (af[win] >= 1.0 - 1e-9)
    reach = inside.any(axis=1)
    rows_t = np.nonzero((w_top > 0) & np.isfinite(top) & reach)[0]
    rows_b = np.nonzero((w_bot > 0) & np.isfinite(bot) & reach)[0]
    if rows_t.size + rows_b.size == 0:
        return y, cost
    big = 1e9
    ar = np.arange(ncol)
    k1f = np.minimum(kf + 1, n - 1)
    reg_bands = _second_difference_bands(n, smooth, breaks)
    for _ in range(iters):
        yf = af * y[kf] + (1 - af) * y[k1f]
        vals = yf[win]
        lo_vals = np.where(inside, vals - g[None, :], big)
        hi_vals = np.where(inside, vals + g[None, :], -big)
        jt = np.argmin(lo_vals, axis=1)
        jb = np.argmax(hi_vals, axis=1)
        fidx = np.concatenate([win[ar, jt][rows_t], win[ar, jb][rows_b]])
        res = np.concatenate([(top - lo_vals[ar, jt])[rows_t], (bot - hi_vals[ar, jb])[rows_b]])
        wts = np.concatenate([w_top[rows_t], w_bot[rows_b]])
        absr = np.abs(res)
        cost = float(np.sum(wts * np.where(absr <= huber_px, 0.5 * res * res, huber_px * (absr - 0.5 * huber_px))))
        wts = wts * np.where(absr <= huber_px, 1.0, huber_px / np.maximum(absr, 1e-9))
        k = kf[fidx]
        k1 = k1f[fidx]
        a = af[fidx]
        b = 1.0 - a
        # normal equations, banded: every residual touches two neighbouring samples
        diag = np.bincount(k, wts * a * a, n) + np.bincount(k1, wts * b * b, n)
        off1 = np.bincount(k, np.where(k1 > k, wts * a * b, 0.0), n)[:-1]
        rhs = np.bincount(k, wts * a * res, n) + np.bincount(k1, wts * b * res, n)
        ab = reg_bands.copy()  # upper form for solveh_banded: rows = super-diagonal 2, 1, main
        ab[2] += diag
        ab[1, 1:] += off1
        rhs -= _apply_bands(reg_bands, y)
        try:
            u = solveh_banded(ab, rhs, check_finite=False)
        except np.linalg.LinAlgError:
            break
        if not np.all(np.isfinite(u)):
            break
        y += u
        if np.max(np.abs(u)) < 0.02:
            break
    return y, cost
