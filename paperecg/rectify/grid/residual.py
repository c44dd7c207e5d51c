"""The printed grid as a ruler on a rectified page: how far its lines are from straight and 5 mm apart.

Every ECG page we read is printed on a grid, so a rectified page can be checked without any label: on a
perfect canonical page the vertical lines sit every 5 mm (CANONICAL_PX_PER_MM * 5 px) at the same x in every
row, and the horizontal lines likewise. In bands across the page (rows of the paper for the vertical lines),
the grid's darkness profile is demodulated at the grid's period (5 mm where the major lines stand out, else
1 mm: ECG-Image-Kit draws both kinds alike): its phase, unwrapped along the band, is the lines' displacement
from a perfect comb, d(x), in px. Then
- a window's stretch: the slope of d over the window (a lead's 2.5 s = 62.5 mm at 25 mm/s). A page
  stretched by s in x reads a lead's time axis stretched by s: 1000 * s ms of drift per second;
- the bending: d's departure from a straight line across the whole band (mm): a curl or fold left in.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ...geometry import CANONICAL_PX_PER_MM
from .darkness import line_darkness, resize_by

PERIODS_MM = (5.0, 1.0)  # the one with the stronger demodulated amplitude on the page is used
BAND_MM = 10.0  # height of a band whose column profile is one measurement of the vertical lines
SMOOTH_MM = 2.5  # Gaussian low-pass of the demodulated profile (a few periods)
MIN_AMPLITUDE_SHARE = 0.3  # demodulated amplitude below this share of the page's median: no grid there
WINDOW_MM = 62.5  # a 3x4 page's column: the window a lead's drift is read over


@dataclass
class GridResidual:
    stretch_ms_per_s: np.ndarray  # |stretch| of every measured window, both families (ms/s at 25 mm/s)
    bend_mm: np.ndarray  # per band: departure of its line displacement from a straight line (max - min, mm)
    bands: int  # bands with a measurement


@dataclass(frozen=True)
class BandDisplacement:
    """Along a 1-D darkness profile: how far the comb's lines are from a perfect comb, and how strong it is."""

    shift_px: np.ndarray  # displacement from a perfect comb at x = k * period, per profile px
    amplitude: np.ndarray  # the demodulated amplitude there (low: no grid)


def band_displacement(profile: np.ndarray, period_px: float, smooth_px: float) -> BandDisplacement:
    """The comb's lines' displacement along a 1-D darkness profile: the phase of the profile demodulated at
    the period, low-passed and unwrapped."""
    x = np.arange(profile.size, dtype=np.float64)
    omega = 2.0 * np.pi / period_px
    p = profile - gaussian_filter1d(profile, 2.0 * period_px)
    z = p * np.exp(-1j * omega * x)
    z = gaussian_filter1d(z.real, smooth_px) + 1j * gaussian_filter1d(z.imag, smooth_px)
    # p = cos(omega (x - d)) demodulates to exp(-i omega d) / 2
    d = -np.unwrap(np.angle(z)) / omega
    return BandDisplacement(d, np.abs(z))


def _band_profiles(dark: np.ndarray, px_per_mm: float) -> list[np.ndarray]:
    band = max(2, int(round(BAND_MM * px_per_mm)))
    return [dark[y:y + band].mean(axis=0).astype(np.float64) for y in range(0, dark.shape[0] - band + 1, band)]


def _family(dark: np.ndarray, px_per_mm: float, window_mm: float) -> tuple[list[float], list[float], int]:
    """Stretches (ms/s) and bends (mm) of the lines crossing the rows of `dark` (vertical lines: columns)."""
    win = int(round(window_mm * px_per_mm))
    smooth = SMOOTH_MM * px_per_mm
    profiles = _band_profiles(dark, px_per_mm)
    if not profiles:
        return [], [], 0
    best = None
    for period_mm in PERIODS_MM:
        results = [band_displacement(p, period_mm * px_per_mm, smooth) for p in profiles]
        amps = np.concatenate([r.amplitude for r in results])
        level = float(np.median(amps)) if amps.size else 0.0
        if best is None or level > best[0]:
            best = (level, results)
    level, results = best
    if level <= 0:
        return [], [], 0
    floor = MIN_AMPLITUDE_SHARE * level
    edge = int(round(2.0 * smooth))  # the low-pass is biased within its reach of a segment's ends
    stretches, bends, used = [], [], 0
    for r in results:
        d, a = r.shift_px, r.amplitude
        idx = np.nonzero(a > floor)[0]
        if idx.size < win + 2 * edge:
            continue
        # the longest stretch of grid in the band (table and margins left out)
        parts = np.split(idx, np.nonzero(np.diff(idx) > 1)[0] + 1)
        seg = max(parts, key=len)[edge:-edge]
        if seg.size < win:
            continue
        used += 1
        xs, ds = seg.astype(np.float64), d[seg]
        line = np.polyval(np.polyfit(xs, ds, 1), xs)
        bends.append(float((ds - line).max() - (ds - line).min()) / px_per_mm)
        step = max(1, int(round(10.0 * px_per_mm)))
        for a0 in range(0, seg.size - win + 1, step):
            slope = np.polyfit(xs[a0:a0 + win], ds[a0:a0 + win], 1)[0]  # px of displacement per px
            stretches.append(abs(float(slope)) * 1000.0)
    return stretches, bends, used


def grid_residual(image_rgb: np.ndarray, px_per_mm: float = CANONICAL_PX_PER_MM,
                  window_mm: float = WINDOW_MM) -> GridResidual:
    """The grid's residual stretch and bending on a rectified page (see the module docstring)."""
    dark = line_darkness(image_rgb, px_per_mm)
    s_v, b_v, n_v = _family(dark, px_per_mm, window_mm)  # vertical lines, read along the rows: time axis
    s_h, b_h, n_h = _family(np.ascontiguousarray(dark.T), px_per_mm, window_mm)
    return GridResidual(np.asarray(s_v + s_h), np.asarray(b_v + b_h), n_v + n_h)


def time_axis_residual(image_rgb: np.ndarray, px_per_mm: float = CANONICAL_PX_PER_MM,
                       window_mm: float = WINDOW_MM) -> GridResidual:
    """Only the vertical lines (read along the rows): what stretches a lead's time axis."""
    dark = line_darkness(image_rgb, px_per_mm)
    s, b, n = _family(dark, px_per_mm, window_mm)
    return GridResidual(np.asarray(s), np.asarray(b), n)


def resize_to_canonical(image_rgb: np.ndarray, px_per_mm: float) -> np.ndarray:
    """A page at px_per_mm brought to the canonical scale (for pages the frame left at another scale)."""
    f = CANONICAL_PX_PER_MM / px_per_mm
    return image_rgb if abs(f - 1.0) < 1e-3 else resize_by(image_rgb, f)
