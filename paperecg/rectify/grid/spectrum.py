"""The page's two grid-line families from its 2-D power spectrum (`find_global_grid`): each family's direction
and 5-mm period, chosen by comb scores over the harmonics of the period (`comb_scores`, which the tiles
(`tiles.py`) use too), with the checks against combs at a multiple or a fraction of the true period.

Frequencies are in cycles per pixel of the image looked at; points are (x, y) = (col, row).
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import scipy.fft
from scipy.ndimage import maximum_filter1d

from .darkness import local_mean

LOG = logging.getLogger(__name__)

MIN_GLOBAL_CONFIDENCE = 4.0  # comb peak over median comb score for a grid to be there
SUBMULTIPLE_RATIO = 0.2  # power between the best comb's teeth (share of its own) that means a longer period
FAMILY_PERIOD_SPREAD = 1.15  # the two families' 5-mm periods may differ by this factor (perspective)
SUPERMULTIPLE_RATIO = 0.05  # below this (in a family, above the short comb's fundamental): a shorter one
MAX_HARMONICS = 12  # of the 5-mm period in a comb score (the 1-mm lines are the 5th and 10th)
GLOBAL_CAP_PERCENTILE = 92.0


def spectrum_lookup(power: np.ndarray, fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
    """Bilinear lookup of an unshifted (..., N, N) power spectrum at frequencies (cycles/px), broadcasting
    over leading tile axes: power (T, N, N), fx/fy (T, ...)."""
    n = power.shape[-1]
    gx = np.mod(fx * n, n)
    gy = np.mod(fy * n, n)
    x0 = np.floor(gx).astype(np.int64)
    y0 = np.floor(gy).astype(np.int64)
    ax, ay = gx - x0, gy - y0
    x0, y0 = x0 % n, y0 % n  # np.mod can round a tiny negative up to n
    x1, y1 = (x0 + 1) % n, (y0 + 1) % n
    # flat indices into the stacked spectra: one gather per corner
    t = np.arange(power.shape[0]).reshape((-1,) + (1,) * (fx.ndim - 1)) * (n * n)
    flat = power.reshape(-1)
    r0, r1 = t + y0 * n, t + y1 * n
    return ((flat[r0 + x0] * (1 - ax) + flat[r0 + x1] * ax) * (1 - ay)
            + (flat[r1 + x0] * (1 - ax) + flat[r1 + x1] * ax) * ay)


def comb_scores(power: np.ndarray, kx: np.ndarray, ky: np.ndarray, max_freq: float = 0.45,
                 contrast: bool = False) -> np.ndarray:
    """Mean power over the harmonics m*k below max_freq (cycles/px) for candidate fundamentals k; with
    `contrast`, minus the power half-way between harmonics (a smooth 1/f background of traces and text,
    which otherwise favours long periods, cancels; a comb of lines does not)."""
    kmag = np.hypot(kx, ky)
    m_max = int(max_freq / max(float(kmag.min()), 1e-6))
    m_max = max(1, min(m_max, MAX_HARMONICS))
    total = np.zeros(kx.shape)
    count = np.zeros(kx.shape)
    for m in range(1, m_max + 1):
        ok = m * kmag < max_freq
        if not ok.any():
            break
        v = spectrum_lookup(power, m * kx, m * ky)
        if contrast:
            v = v - 0.5 * (spectrum_lookup(power, (m - 0.5) * kx, (m - 0.5) * ky)
                           + spectrum_lookup(power, (m + 0.5) * kx, (m + 0.5) * ky))
        total += np.where(ok, v, 0.0)
        count += ok
    return total / np.maximum(count, 1)


def _between_teeth(power: np.ndarray, f0: float, angle: float, n: int, max_freq: float = 0.45) -> float:
    """Power at the teeth of the comb of period n / f0 that the comb of f0 lacks (k f0 / n, k not a
    multiple of n, above f0 where the spectrum has such teeth), over the power at the f0 comb's own teeth,
    both less the level half-way between."""
    c, s = math.cos(angle), math.sin(angle)
    step = f0 / n
    ks = np.arange(1, int(max_freq / step) + 1)
    if ks.size == 0:
        return 0.0

    def at(f: np.ndarray) -> np.ndarray:
        return spectrum_lookup(power, (f * c)[None], (f * s)[None])[0]

    on = at(ks * step) - 0.5 * (at((ks - 0.5) * step) + at((ks + 0.5) * step))
    # only the teeth above f0 count where there are any: a page's trace rows (about 3 periods apart) and
    # heart beats fill the teeth below f0 without any longer grid period, but their wiggly, irregular lines
    # carry little power at the higher ones, where the teeth of a true longer period (its 1-mm lines among
    # them) stay (measured: rendered photos read at 3x the 5-mm period without this); both sets are taken
    # from the same band, so a blurred grid's falling harmonics do not tip the ratio
    band = ks > n if np.any((ks > n) & (ks % n != 0)) and np.any((ks > n) & (ks % n == 0)) else ks > 0
    own = on[band & (ks % n == 0)]
    other = on[band & (ks % n != 0)]
    if own.size == 0 or other.size == 0:
        return 0.0
    return float(np.mean(np.maximum(other, 0.0)) / (np.mean(np.maximum(own, 0.0)) + 1e-12))


def _shorter_period(power: np.ndarray, periods: np.ndarray, best: int, peaks: list[int], angles: list[float]
                    ) -> int:
    """Index of the true period when the comb of periods[best] is one at n times it (n = 3, 2): trace rows
    about 15 mm apart and the beats fill the long comb's extra teeth at low frequencies, so it can outscore
    the grid's own comb; but then, above the short period's fundamental, the long comb's extra teeth are
    empty in at least one family (a real grid of the long period has its 1-mm lines there). peaks: each
    family's own period index, angles: its direction."""
    for n in (3, 2):
        if periods[best] / n < periods[0] * 0.97:
            continue
        ratio = min(_between_teeth(power, n / periods[i], a, n) for i, a in zip(peaks, angles))
        LOG.debug("global grid: period %.1f px over %d: between-teeth ratio %.3f", periods[best], n, ratio)
        if ratio < SUPERMULTIPLE_RATIO:
            return int(np.argmin(np.abs(np.log(periods / (periods[best] / n)))))
    return best


@dataclass
class GlobalGrid:
    kx: np.ndarray  # (2,) frequency vector (cycles/px of the look) of the family crossing x: vertical lines
    ky: np.ndarray  # (2,) of the family crossing y: horizontal lines
    confidence: float


def find_global_grid(dark: np.ndarray, max_angle_deg: float = 20.0) -> GlobalGrid | None:
    """Directions and 5-mm period of the two grid-line families on a whole-page look (central part)."""
    h, w = dark.shape
    crop = dark[int(0.15 * h):int(0.85 * h), int(0.15 * w):int(0.85 * w)]
    n = 1024
    crop = crop[:n, :n]
    crop = crop - local_mean(crop, 32)
    # thick dark traces and text can outweigh a faint grid in the whole-page spectrum; capped at a level
    # that grid lines reach, they no longer do (the grid's comb survives the cap)
    crop = np.minimum(crop, np.percentile(crop, GLOBAL_CAP_PERCENTILE))
    crop = crop - crop.mean()
    win = np.outer(np.hanning(crop.shape[0]), np.hanning(crop.shape[1])).astype(np.float32)
    f = scipy.fft.fft2((crop * win).astype(np.float32), (n, n))
    power = f.real ** 2 + f.imag ** 2
    # whitened: each bin over its neighbourhood's mean, so the comb measures peaks, not the 1/f slope of
    # traces and text (which otherwise favours long periods)
    power = power[None]
    # candidate 5-mm periods: the image spans 110 mm (a close-up) to 550 mm (a page far off); the range
    # also rules out the 5x confusions (a grid of major lines only read as a 25-mm grid, and the reverse)
    long_px = max(h, w)
    periods = np.geomspace(max(6.0, long_px / 110.0), long_px / 22.0, 120)
    fr = 1.0 / periods
    scores, ks = [], []
    for base_deg in (0.0, 90.0):
        angles = np.radians(base_deg + np.arange(-max_angle_deg, max_angle_deg + 1e-9, 1.0))
        kx = fr[:, None] * np.cos(angles)[None, :]
        ky = fr[:, None] * np.sin(angles)[None, :]
        major = np.maximum(comb_scores(power, kx[None], ky[None], contrast=True)[0], 0.0)
        minor = np.maximum(comb_scores(power, 5 * kx[None], 5 * ky[None], contrast=True)[0], 0.0)
        # as in axis.py: each comb rules out the other's 4/5 and 5/4 confusions
        scores.append(major / (major.max() + 1e-12) + minor / (minor.max() + 1e-12))
        ks.append((kx, ky))
    # the grid is square: the period is chosen by both families together (the clearer one leads), then
    # each family takes its best period within 15 % of it (perspective makes them differ a little). Each
    # family's score is first spread over FAMILY_PERIOD_SPREAD (a strong perspective tilts the page away by
    # 10-15 % more in one direction: summed at one period, the two true peaks missed each other and a trace
    # period that both families showed weakly won)
    steps = int(round(math.log(FAMILY_PERIOD_SPREAD) / math.log(periods[1] / periods[0])))
    fam_best = [sc.max(axis=1) / sc.max() for sc in scores]
    joint = sum(maximum_filter1d(fb, 2 * steps + 1, mode="nearest") for fb in fam_best)
    best = int(np.argmax(joint))
    # each family's own peak near the joint choice: its period and direction
    window = np.abs(np.arange(len(periods)) - best) <= steps
    peaks = [int(np.argmax(np.where(window, fb, -np.inf))) for fb in fam_best]
    best = max(peaks, key=lambda i: joint[i])
    f0s = [1.0 / periods[i] for i in peaks]
    ang = [np.arctan2(ks[f][1][i, int(np.argmax(scores[f][i]))], ks[f][0][i, int(np.argmax(scores[f][i]))])
           for f, i in enumerate(peaks)]
    # a comb at a third or half of the true period sits on a subset of its teeth and can score as high:
    # when the spectrum also shows the teeth in between (k / (n p), k not a multiple of n), the true
    # period is n p (a major-only grid shows none there: its period stays)
    for n in (5, 4, 3, 2):
        if n * periods[best] > periods[-1] * 1.03:
            continue
        ratio = min(_between_teeth(power, f0, a, n) for f0, a in zip(f0s, ang))
        if ratio > SUBMULTIPLE_RATIO:
            best = int(np.argmin(np.abs(np.log(periods / (n * periods[best])))))
            break
    else:
        best = _shorter_period(power, periods, best, peaks, ang)
    p_best = periods[best]
    near = np.abs(np.log(periods / p_best)) < 0.15
    out = []
    for score, (kx, ky) in zip(scores, ks):
        masked = np.where(near[:, None], score, -np.inf)
        i, j = np.unravel_index(int(np.argmax(masked)), score.shape)
        conf = float(score[i, j] / (np.mean(np.maximum(score, 0.0)) + 1e-12))
        out.append((np.array([kx[i, j], ky[i, j]]), conf))
    (kvx, cx), (kvy, cy) = out
    if kvy[1] < 0:
        kvy = -kvy
    if kvx[0] < 0:
        kvx = -kvx
    ratio = np.linalg.norm(kvx) / np.linalg.norm(kvy)
    LOG.debug("global grid: periods %.1f / %.1f px, confidence %.1f / %.1f", 1 / np.linalg.norm(kvx),
              1 / np.linalg.norm(kvy), cx, cy)
    if min(cx, cy) < MIN_GLOBAL_CONFIDENCE or not (0.7 < ratio < 1.43):
        return None
    return GlobalGrid(kvx, kvy, min(cx, cy))
