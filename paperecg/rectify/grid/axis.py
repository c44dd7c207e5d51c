"""The grid's period along each axis of a page read as it is (rows horizontal), by a comb over the spectrum of
band profiles (`estimate_axis_period`, `estimate_grid_scale`: a `GridScale`), the residual tilt from the lines'
phase band by band (`estimate_skew`), grid squares kept square (`square_grid`), and the coarse-scan rule
(`grid_unresolved`) that the page frame and the extractor share.

The grid is a sum of thin periodic lines: minor lines every 1 mm, major lines every 5 mm. Its column
profile (mean darkness of each column) therefore has a line spectrum at the harmonics of 1 / (5 mm in px).
We search the 5-mm fundamental whose harmonic comb holds the most power, then refine it continuously with
an exact DFT; using every harmonic up to Nyquist gives a relative precision far below 0.1 %.
Profiles are taken in horizontal (vertical) bands and their power spectra summed, so a small residual
rotation smears nothing coherently.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...geometry import MAJOR_MM, PageGeometry, page_size_px_per_mm
from .darkness import grey_darkness

# The coarse-scan rule, one for the frame and the extractor. A whole page scanned coarser than this (about
# 64 dpi) shows its 1-mm grid lines less than 2.5 px apart, aliased: a comb over the page's spectrum then fits
# 5/4 of the true scale (or 1.4-1.7x: ECG-Image-Kit's 51-53-dpi scans) as well as the true one, while every
# 66-106-dpi page of that set read its grid to 0.1 % of the page size. Such a scan is of a whole page (nobody
# scans a close-up at 60 dpi), so the page size checks the grid reading there: the frame takes the page size
# when they disagree (frame._checked_low_res_scale), and the extractor searches the grid's period near it
# (extract/scale.page_geometry).
UNRESOLVED_GRID_PX_PER_MM = 2.5


def grid_unresolved(px_per_mm: float) -> bool:
    """Whether a whole page at this scale (px per mm; NaN: unknown) is too coarse to resolve its 1-mm lines."""
    return 0 < px_per_mm < UNRESOLVED_GRID_PX_PER_MM


@dataclass
class AxisScale:
    px_per_mm: float
    confidence: float  # comb power at the peak over the median comb power (>~ 8 means a clear grid)
    found: bool


@dataclass
class GridScale:
    x: AxisScale
    y: AxisScale

    def geometry(self) -> PageGeometry:
        return PageGeometry(self.x.px_per_mm, self.y.px_per_mm)


def band_profiles(dark: np.ndarray, axis: int, num_bands: int = 4) -> np.ndarray:
    """Mean darkness along `axis` within `num_bands` strips across it -> (num_bands, length).

    axis=0 averages over rows: profiles along x (to measure the x period)."""
    arr = dark if axis == 0 else dark.T
    bands = np.array_split(arr, max(1, min(num_bands, arr.shape[0])), axis=0)
    prof = np.stack([b.mean(axis=0) for b in bands])
    prof = prof - prof.mean(axis=1, keepdims=True)
    return prof * np.hanning(prof.shape[1])[None, :]


def comb_power(profiles: np.ndarray, f0: float, max_harmonics: int = 40) -> float:
    """Mean power of the DFT at the harmonics k*f0 (cycles/px) below Nyquist, summed over bands."""
    n = profiles.shape[1]
    k = np.arange(1, max_harmonics + 1)
    k = k[k * f0 < 0.48]
    if k.size == 0:
        return 0.0
    x = np.arange(n)
    phase = np.exp(-2j * np.pi * np.outer(k * f0, x)).astype(np.complex64)  # (K, n)
    spec = profiles.astype(np.float32) @ phase.T  # (bands, K)
    return float((np.abs(spec) ** 2).sum(axis=0).mean())


def _power_spectrum(profiles: np.ndarray, pad: int = 8) -> tuple[np.ndarray, np.ndarray]:
    n = profiles.shape[1]
    nfft = int(2 ** np.ceil(np.log2(n * pad)))
    spec = (np.abs(np.fft.rfft(profiles, nfft, axis=1)) ** 2).sum(axis=0)
    return np.fft.rfftfreq(nfft), spec


def estimate_axis_period(profiles: np.ndarray, px_per_mm_lo: float, px_per_mm_hi: float) -> AxisScale:
    """Grid px per mm along one axis from band profiles, searched within [lo, hi]."""
    freqs, spec = _power_spectrum(profiles)
    df = freqs[1]
    # coarse search of the 1-mm period: mean power over its harmonics (the mean, not the sum, so a
    # sub-harmonic collecting the same lines plus empty bins scores lower)
    periods = np.geomspace(px_per_mm_lo, px_per_mm_hi, 800)

    def comb_scores(fundamentals: np.ndarray) -> np.ndarray:
        """Mean power over each candidate's harmonics below 0.48 cycles/px, normalised to the best."""
        f0 = 1.0 / fundamentals
        k_max = max(int(0.48 / f0.min()), 1)
        k = np.arange(1, k_max + 1)[None, :]
        valid = k * f0[:, None] < 0.48
        idx = np.clip(np.rint(k * f0[:, None] / df).astype(np.int64), 1, spec.size - 2)
        # neighbourhood max tolerates the coarse step between candidate periods
        power = np.maximum(np.maximum(spec[idx - 1], spec[idx]), spec[idx + 1])
        out = np.where(valid, power, 0.0).sum(axis=1) / np.maximum(valid.sum(axis=1), 1)
        return out / (out.max() + 1e-12)

    # Mean (not summed) power over the harmonics of the 1-mm period and of the 5-mm period, added: the
    # 1-mm comb alone confuses 4/5 of the period when major lines are faint, the 5-mm comb alone 5/4 of
    # it when the minor lines are missing; each one rules out the other's confusion.
    scores = comb_scores(periods) + comb_scores(MAJOR_MM * periods)
    best = int(np.argmax(scores))
    median = float(np.median(scores)) + 1e-12
    confidence = float(scores[best] / median)
    # continuous refinement on the 5-mm fundamental (major and minor lines both are its harmonics)
    # with the exact DFT, golden-section search on a bracket of +-2 coarse steps
    lo = MAJOR_MM * periods[max(best - 2, 0)]
    hi = MAJOR_MM * periods[min(best + 2, periods.size - 1)]
    sub = profiles
    g = (np.sqrt(5) - 1) / 2
    a, b = lo, hi
    c, d = b - g * (b - a), a + g * (b - a)
    fc, fd = comb_power(sub, 1 / c), comb_power(sub, 1 / d)
    for _ in range(16):
        if fc > fd:
            b, d, fd = d, c, fc
            c = b - g * (b - a)
            fc = comb_power(sub, 1 / c)
        else:
            a, c, fc = c, d, fd
            d = a + g * (b - a)
            fd = comb_power(sub, 1 / d)
    period = 0.5 * (a + b)
    return AxisScale(px_per_mm=period / MAJOR_MM, confidence=confidence, found=confidence > 6.0)


def estimate_grid_scale(image_rgb: np.ndarray, exclude: np.ndarray | None = None,
                        prior_px_per_mm: float | None = None, prior_factor: float = 1.6) -> GridScale:
    """px per mm in x and y from the grid; an axis without a clear grid falls back to the page size.

    exclude: bool (H, W) pixels to ignore (e.g. the trace), replaced by the page's median darkness.
    prior_px_per_mm: expected scale (default: from the page size); the search spans prior / factor ..
    prior * factor, which rules out the 5x minor/major and 2x octave confusions.
    """
    h, w = image_rgb.shape[:2]
    dark = grey_darkness(image_rgb)
    if exclude is not None and exclude.any():
        dark = dark.copy()
        dark[exclude] = float(np.median(dark))
    prior = prior_px_per_mm or page_size_px_per_mm(h, w)
    lo, hi = prior / prior_factor, prior * prior_factor
    axes = []
    for axis in (0, 1):
        length = dark.shape[1 - axis]
        if length < 8 * MAJOR_MM * lo:
            axes.append(AxisScale(prior, 0.0, False))
            continue
        est = estimate_axis_period(band_profiles(dark, axis), lo, hi)
        axes.append(est if est.found else AxisScale(prior, est.confidence, False))
    x, y = axes
    # one axis found, the other not: paper grids are square
    if x.found and not y.found:
        y = AxisScale(x.px_per_mm, y.confidence, False)
    elif y.found and not x.found:
        x = AxisScale(y.px_per_mm, x.confidence, False)
    return GridScale(x, y)


def _line_offsets(dark: np.ndarray, axis: int, period_px: float, num_bands: int) -> tuple[np.ndarray, np.ndarray]:
    """Where the grid's lines sit (px, modulo `period_px`, unwrapped) in each band across `axis`.

    axis=0: bands of rows, positions of the vertical lines along x; axis=1: the transpose."""
    arr = dark if axis == 0 else dark.T
    bands = np.array_split(np.arange(arr.shape[0]), num_bands)
    f0 = 1.0 / period_px
    phase = np.exp(-2j * np.pi * f0 * np.arange(arr.shape[1]))
    centres, phases = [], []
    for idx in bands:
        prof = arr[idx].mean(axis=0)
        phases.append(np.angle(np.sum((prof - prof.mean()) * phase)))
        centres.append(idx.mean())
    offsets = np.unwrap(np.asarray(phases)) / (2 * np.pi * f0)
    return np.asarray(centres), offsets


def _robust_slope(t: np.ndarray, v: np.ndarray, max_rms_px: float) -> float | None:
    """Theil-Sen slope of v(t), or None when the points do not lie on a line (a band disturbed by
    traces or text, a phase slip)."""
    from scipy.stats import theilslopes

    slope, intercept, _, _ = theilslopes(v, t)
    resid = v - (intercept + slope * t)
    return float(slope) if float(np.median(np.abs(resid))) <= max_rms_px else None


def estimate_skew(image_rgb: np.ndarray, grid: GridScale, num_bands: int = 16) -> float:
    """Residual tilt of the printout as the slope dy/dx of its rows (y down; 0 when there is no grid).

    A page rotated by a small angle shifts the vertical grid lines along x in proportion to y, and the
    horizontal lines along y in proportion to x. The phase of the 1-mm grid frequency, band by band, gives
    both shifts (adjacent bands differ by far less than a millimetre below ~1 degree, so the phase unwraps
    safely); robust slopes of the two, opposite in sign, must agree, else no tilt is claimed."""
    dark = grey_darkness(image_rgb)
    slopes = []
    # the fitted offsets are phase positions, which move opposite to the lines: hence the signs
    if grid.x.found:
        yc, x_off = _line_offsets(dark, 0, grid.x.px_per_mm, num_bands)
        sl = _robust_slope(yc, x_off, 0.15 * grid.x.px_per_mm)
        if sl is not None:
            slopes.append(sl)  # vertical lines lean by dx/dy = -dy/dx of the rows
    if grid.y.found:
        xc, y_off = _line_offsets(dark, 1, grid.y.px_per_mm, num_bands)
        sl = _robust_slope(xc, y_off, 0.15 * grid.y.px_per_mm)
        if sl is not None:
            slopes.append(-sl)
    if not slopes:
        return 0.0
    if len(slopes) == 2 and abs(slopes[0] - slopes[1]) > 1e-3 + 0.2 * max(abs(slopes[0]), abs(slopes[1])):
        return 0.0  # the two directions disagree: trust neither
    return float(np.mean(slopes))


def square_grid(grid: GridScale, page_px_per_mm: float, max_ratio: float = 1.15) -> GridScale:
    """Grid squares are square: when the two axes' scales differ by more than max_ratio (scanners differ by
    a few %), one axis misread its comb (an aliased 1-mm grid, a 5/4 confusion); the axis nearer the
    page-size scale stands for both. (A 53-dpi ECG-Image-Kit page read 7.75 px/mm across and 5.06 down on a
    page whose size says 5.05.)"""
    x, y = grid.x, grid.y
    if not (x.found and y.found) or max(x.px_per_mm, y.px_per_mm) <= max_ratio * min(x.px_per_mm, y.px_per_mm):
        return grid
    keep = x if abs(np.log(x.px_per_mm / page_px_per_mm)) <= abs(np.log(y.px_per_mm / page_px_per_mm)) else y
    return GridScale(keep, keep)
