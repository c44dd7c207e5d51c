"""The printed grid, measured: a darkness image in which grid lines of any colour show (trace and print set to
the background level), the page's two grid-line families from its 2-D power spectrum (`find_global_grid`:
comb scores over the harmonics of the 5-mm period), each tile's local period, direction and line phase
(`measure_tiles`, `comb_phase`), and the tiles' phases unwrapped onto the 1-mm lattice (`unwrap_tiles`,
`grow_from`). `frame.py` fits the page frame to these measurements.

Points are (x, y) = (col, row) pixel coordinates with pixel centres at integers.
"""
from __future__ import annotations

import heapq
import logging
import math
from dataclasses import dataclass

import cv2
import numpy as np
import scipy.fft
from scipy.ndimage import maximum_filter1d

LOG = logging.getLogger(__name__)

MIN_GLOBAL_CONFIDENCE = 4.0  # comb peak over median comb score for a grid to be there
TILE_SCALE_RANGE = (0.86, 1.16)  # a tile's 5-mm period is searched within these factors of the page's (wider
# ranges lock onto the 4/5 and 5/4 confusions of a 1-mm grid: docs/tuning.md)
TILE_SCALE_STEPS = 7
PREDICTED_SCALE_RANGE = (0.92, 1.087)  # the second pass: a tile's period within these factors of its
# prediction by the first fit (narrow: the 4/5 and 5/4 confusions of the 1-mm grid stay out of reach)
SUBMULTIPLE_RATIO = 0.2  # power between the best comb's teeth (share of its own) that means a longer period
FAMILY_PERIOD_SPREAD = 1.15  # the two families' 5-mm periods may differ by this factor (perspective)
SUPERMULTIPLE_RATIO = 0.05  # below this (in a family, above the short comb's fundamental): a shorter one
MAX_HARMONICS = 12  # of the 5-mm period in a comb score (the 1-mm lines are the 5th and 10th)
GLOBAL_CAP_PERCENTILE = 92.0
DARK_PAPER_LEVEL = 90  # median brightness below this: bright lines on a dark page
MAX_UNWRAP_MISMATCH = 0.3  # lattice steps between a tile's position and its neighbour's prediction
LATTICE_PER_PERIOD = 5  # 1-mm lines per 5-mm period: tiles are placed on the 1-mm lattice
TRACE_LEVEL_FACTOR = 4.0  # darker than this times the page's 90th percentile: trace or print, not grid
NUM_PHASE_HARMONICS = 5  # harmonics of the 5-mm period that locate a tile's lines (the 5th: 1-mm lines)

# The coarse-scan rule, one for the frame and the extractor. A whole page scanned coarser than this (about
# 64 dpi) shows its 1-mm grid lines less than 2.5 px apart, aliased: a comb over the page's spectrum then fits
# 5/4 of the true scale (or 1.4-1.7x: ECG-Image-Kit's 51-53-dpi scans) as well as the true one, while every
# 66-106-dpi page of that set read its grid to 0.1 % of the page size. Such a scan is of a whole page (nobody
# scans a close-up at 60 dpi), so the page size checks the grid reading there: the frame takes the page size
# when they disagree (frame._checked_low_res_scale), and the extractor searches the grid's period near it
# (extract/scale.page_geometry). (The frame's check was at 2.6 px/mm, the extractor's at 2.5: one value now,
# bit-identical on every eik-dev page, the only two between them being lowdpi 00748 at 2.52 and 00515 at 2.598.)
UNRESOLVED_GRID_PX_PER_MM = 2.5


def grid_unresolved(px_per_mm: float) -> bool:
    """Whether a whole page at this scale (px per mm; NaN: unknown) is too coarse to resolve its 1-mm lines."""
    return 0 < px_per_mm < UNRESOLVED_GRID_PX_PER_MM


def _channel_range(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(min, max) over the colour channels (channel-wise: numpy's reductions over a last axis of 3 are slow)."""
    if img.ndim == 2:
        return img, img
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    return np.minimum(np.minimum(r, g), b), np.maximum(np.maximum(r, g), b)


def _dark_ground(hi: np.ndarray) -> bool:
    return float(np.median(hi[::7, ::7])) < DARK_PAPER_LEVEL


def dark_page(image_rgb: np.ndarray) -> bool:
    """Whether the page is bright lines on a dark ground (a monitor or a screenshot of one): the median pixel of
    its central half, in its brightest channel, is darker than DARK_PAPER_LEVEL. (The centre: a light sheet
    photographed small on a dark table is light there.)"""
    img = np.asarray(image_rgb)
    h, w = img.shape[:2]
    return _dark_ground(_channel_range(img[h // 4:h - h // 4, w // 4:w - w // 4])[1])


def light_paper(image_rgb: np.ndarray) -> np.ndarray:
    """The page as dark ink on light paper, which is what the segmenter and the extractor read (ink, grid
    scale, calibration pulses, the off-paper mask): a dark page is inverted, any other returned as it is.
    (A monitor page read as given lost every trace to the off-paper mask, its whole screen being 'dark
    background reaching the border'.)"""
    img = np.asarray(image_rgb)
    return 255 - img if dark_page(img) else img


def grid_darkness(image_rgb: np.ndarray) -> np.ndarray:
    """float32 darkness in which grid lines of any colour show: a coloured line is darkest in the channel
    it absorbs, so 255 - (min over channels) keeps red, green, blue and black grids alike on light paper."""
    lo, hi = _channel_range(np.asarray(image_rgb))
    if _dark_ground(hi):
        return hi.astype(np.float32)  # a monitor-like page: bright lines on dark ground
    return 255.0 - lo.astype(np.float32)


def without_traces(dark: np.ndarray) -> np.ndarray:
    """The analysis darkness (background removed) with the trace and print set to the background level: any
    pixel TRACE_LEVEL_FACTOR times darker than the page's 90th percentile (a level grid lines reach, traces
    on light paper and bright traces on a monitor page stand far above it), and its 8 neighbours (the
    anti-aliased edge). Capping alone left such traces as lines as strong as the grid's: a row's baseline
    crossing a tile read as its major line (rendered-photo bench, a monitor page: median 2.66 -> 0.20 mm;
    30 pages: p95 0.851 -> 0.396 mm; a factor of 3: 0.346 mm, but it changed the frame of 4 of the first 20
    ECG-Image-Kit photos, end to end 15.633 -> 14.834 dB, where 4 changes none)."""
    level = max(float(np.percentile(dark[::3, ::3], 90)), 1.0)
    mask = (dark > TRACE_LEVEL_FACTOR * level).astype(np.uint8)
    if not mask.any():
        return dark
    mask = cv2.dilate(mask, np.ones((3, 3), np.uint8)) > 0
    return np.where(mask, np.float32(0.0), dark).astype(np.float32)


def local_mean(img: np.ndarray, cell_px: int) -> np.ndarray:
    """Smooth background level: area means over cells of cell_px, interpolated back (a wide blur for the
    price of two resizes)."""
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(1, w // cell_px), max(1, h // cell_px)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def resize_by(img: np.ndarray, factor: float) -> np.ndarray:
    h, w = img.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)


def _spectrum_lookup(power: np.ndarray, fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
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


def _comb_scores(power: np.ndarray, kx: np.ndarray, ky: np.ndarray, max_freq: float = 0.45,
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
        v = _spectrum_lookup(power, m * kx, m * ky)
        if contrast:
            v = v - 0.5 * (_spectrum_lookup(power, (m - 0.5) * kx, (m - 0.5) * ky)
                           + _spectrum_lookup(power, (m + 0.5) * kx, (m + 0.5) * ky))
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
        return _spectrum_lookup(power, (f * c)[None], (f * s)[None])[0]

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
        major = np.maximum(_comb_scores(power, kx[None], ky[None], contrast=True)[0], 0.0)
        minor = np.maximum(_comb_scores(power, 5 * kx[None], 5 * ky[None], contrast=True)[0], 0.0)
        # as in extract/scale.py: each comb rules out the other's 4/5 and 5/4 confusions
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


@dataclass
class TileGrid:
    centres: np.ndarray  # (ny, nx, 2) tile centres (x, y) in analysis px
    k: np.ndarray  # (2, ny, nx, 2) local frequency vector per family (0: crossing x, 1: crossing y)
    phase: np.ndarray  # (2, ny, nx) phase (radians) of each family's fundamental at the tile centre
    snr: np.ndarray  # (2, ny, nx) fundamental power over the tile's median spectral power
    major_contrast: np.ndarray  # (2, ny, nx) how clearly the major line stands out of the 1-mm lines (0..1)


def measure_tiles(dark: np.ndarray, glob: GlobalGrid, tile_px: int, stride_px: int, chunk: int = 64,
                  predicted_k: np.ndarray | None = None, only: np.ndarray | None = None) -> TileGrid:
    """Local grid frequency and phase of both families in overlapping tiles. The frequency is searched within
    TILE_SCALE_RANGE and +-6 deg of the page's (glob); with predicted_k ((2, ny, nx, 2), cycles/px of the
    analysis image: a fitted surface's local frequency), within PREDICTED_SCALE_RANGE and +-3 deg of each
    tile's own prediction instead. only: bool (ny, nx) tiles to measure (others are left at zero)."""
    h, w = dark.shape
    ys = np.arange(0, max(h - tile_px, 0) + 1, stride_px)
    xs = np.arange(0, max(w - tile_px, 0) + 1, stride_px)
    ny, nx = len(ys), len(xs)
    n = tile_px  # no padding: the Hann main lobe spans 4 bins, enough for the bilinear lookups
    win = np.outer(np.hanning(tile_px), np.hanning(tile_px)).astype(np.float32)
    rel = np.arange(tile_px, dtype=np.float64) - (tile_px - 1) / 2.0
    centres = np.stack(np.meshgrid(xs + (tile_px - 1) / 2.0, ys + (tile_px - 1) / 2.0), axis=-1)
    k_out = np.zeros((2, ny, nx, 2))
    ph_out = np.zeros((2, ny, nx))
    snr_out = np.zeros((2, ny, nx))
    major_out = np.zeros((2, ny, nx))
    # candidate fundamentals around the global (or predicted) ones: scale and angle offsets
    if predicted_k is None:
        scales = np.geomspace(TILE_SCALE_RANGE[0], TILE_SCALE_RANGE[1], int(TILE_SCALE_STEPS))
        dang = np.radians(np.linspace(-6.0, 6.0, 7))
        centre_k = np.broadcast_to(np.stack([glob.kx, glob.ky])[:, None, None, :], (2, ny, nx, 2))
    else:
        scales = np.geomspace(PREDICTED_SCALE_RANGE[0], PREDICTED_SCALE_RANGE[1], 5)
        dang = np.radians(np.linspace(-3.0, 3.0, 5))
        centre_k = predicted_k
    fine_s = np.geomspace(0.975, 1.025, 5)
    fine_a = np.radians(np.linspace(-0.75, 0.75, 5))
    idx = [(i, j) for i in range(ny) for j in range(nx) if only is None or only[i, j]]
    for start in range(0, len(idx), chunk):
        part = idx[start:start + chunk]
        tiles = np.stack([dark[ys[i]:ys[i] + tile_px, xs[j]:xs[j] + tile_px] for i, j in part]).astype(np.float32)
        tiles -= tiles.mean(axis=(1, 2), keepdims=True)
        tiles *= win
        spec = scipy.fft.fft2(tiles, (n, n), workers=1)  # float32 in, complex64 out
        power = spec.real ** 2 + spec.imag ** 2
        # the tile's typical spectral level (median of a sparse subset of bins: the full median is slow)
        level = np.median(power[:, 1::4, 1::4].reshape(len(part), -1), axis=1) + 1e-6
        t = len(part)
        rows_i = np.array([i for i, _ in part])
        cols_j = np.array([j for _, j in part])
        for fam in (0, 1):
            kg = centre_k[fam, rows_i, cols_j]  # (t, 2)
            mag, ang = np.hypot(kg[:, 0], kg[:, 1]), np.arctan2(kg[:, 1], kg[:, 0])
            cand_m = mag[:, None, None] * scales[None, :, None] * np.ones_like(dang)[None, None, :]
            cand_a = ang[:, None, None] + np.zeros_like(scales)[None, :, None] + dang[None, None, :]
            kx, ky = cand_m * np.cos(cand_a), cand_m * np.sin(cand_a)
            # as in find_global_grid: the 5-mm comb plus the 1-mm comb, each normalised per tile
            major = _comb_scores(power, kx, ky).reshape(t, -1)
            minor = _comb_scores(power, 5 * kx, 5 * ky).reshape(t, -1)
            score = (major / (major.max(axis=1, keepdims=True) + 1e-12)
                     + minor / (minor.max(axis=1, keepdims=True) + 1e-12))
            best = np.argmax(score, axis=1)
            bm = cand_m.reshape(t, -1)[np.arange(t), best]
            ba = cand_a.reshape(t, -1)[np.arange(t), best]
            # refine around each tile's best candidate
            fm = bm[:, None, None] * fine_s[None, :, None]
            fa = ba[:, None, None] + fine_a[None, None, :]
            fkx, fky = fm * np.cos(fa), fm * np.sin(fa)
            fscore = _comb_scores(power, fkx, fky).reshape(t, -1)
            fb = np.argmax(fscore, axis=1)
            kx1 = fkx.reshape(t, -1)[np.arange(t), fb]
            ky1 = fky.reshape(t, -1)[np.arange(t), fb]
            # exact DFT of the first harmonics about the tile centre (separable: columns, then rows)
            harm = np.arange(1, NUM_PHASE_HARMONICS + 1)
            ex = np.exp(-2j * np.pi * (kx1[:, None, None] * harm[None, None, :]) * rel[None, :, None])
            ey = np.exp(-2j * np.pi * (ky1[:, None, None] * harm[None, None, :]) * rel[None, :, None])
            # (batched real matmuls: einsum does not use BLAS for this)
            rows = (np.matmul(tiles, ex.real.astype(np.float32))
                    + 1j * np.matmul(tiles, ex.imag.astype(np.float32)))  # (t, tile, M)
            fm = np.sum(rows * ey, axis=1)
            frac, contrast = comb_phase(fm, harm)
            k_out[fam, rows_i, cols_j] = np.stack([kx1, ky1], axis=1)
            ph_out[fam, rows_i, cols_j] = 2 * np.pi * frac
            major_out[fam, rows_i, cols_j] = contrast
            snr_out[fam, rows_i, cols_j] = _spectrum_lookup(power, kx1, ky1) / level
    return TileGrid(centres, k_out, ph_out, snr_out, major_out)


def comb_phase(fm: np.ndarray, harmonics: np.ndarray, steps: int = 240) -> tuple[np.ndarray, np.ndarray]:
    """Where the tile centre sits between two major lines (fraction of a period in [0, 1)) from the DFT
    values fm (T, M) at the harmonics: the shift at which a comb of lines matches the tile best,
    argmax_u sum_m Re(F_m exp(-2 pi i m u)). All harmonics (the 1-mm lines are the 5th) vote, so a trace or
    a letter crossing the tile, which spreads its energy over all frequencies, moves the answer far less
    than it moves the fundamental's phase alone. Also returns how far the best shift stands out of the
    other four 1-mm positions (0: minor lines as dark as the major one), scaled by the correlation's range."""
    u = np.arange(steps) / steps
    theta = 2 * np.pi * np.outer(harmonics, u)  # (M, S)
    # Re(F exp(-i theta)) = Re F cos theta + Im F sin theta (real products: complex ones were slow here)
    corr = np.ascontiguousarray(fm.real, dtype=np.float64) @ np.cos(theta) \
        + np.ascontiguousarray(fm.imag, dtype=np.float64) @ np.sin(theta)  # (T, S)
    best = np.argmax(corr, axis=1)
    t = np.arange(len(fm))
    y0, y1, y2 = corr[t, best - 1], corr[t, best], corr[t, (best + 1) % steps]
    denom = y0 - 2 * y1 + y2
    shift = np.where(denom < 0, 0.5 * (y0 - y2) / np.where(denom < 0, denom, -1.0), 0.0)
    others = np.stack([corr[t, (best + k * steps // LATTICE_PER_PERIOD) % steps]
                       for k in range(1, LATTICE_PER_PERIOD)], axis=1).max(axis=1)
    contrast = (y1 - others) / (y1 - corr.min(axis=1) + 1e-12)
    return np.mod((best + shift) / steps, 1.0), contrast


def unwrap_tiles(tiles: TileGrid, fam: int, ok: np.ndarray, lattice: int = 1, max_seeds: int = 6) -> np.ndarray:
    """Grid coordinate (in periods) of every tile centre for one family, by region growing from a confident
    tile; NaN where not reached. A seed whose own frequency is off reaches few tiles: the next most
    confident seeds outside the regions grown so far are tried, and the largest region wins.
    ok: bool (ny, nx) tiles usable for this family; lattice: positions per period a tile may take (1: the
    major lines are told apart, 5: only the 1-mm lattice is trusted)."""
    best = np.full(ok.shape, np.nan)
    tried = np.zeros_like(ok)
    snr = np.where(ok, tiles.snr[fam], -np.inf)
    for _ in range(max_seeds):
        free = np.where(ok & ~tried, snr, -np.inf)
        if not np.isfinite(free).any():
            break
        seed = np.unravel_index(int(np.argmax(free)), free.shape)
        coord = _grow(tiles, fam, ok, seed, lattice)
        reached = np.isfinite(coord)
        tried |= reached
        tried[seed] = True
        if reached.sum() > np.isfinite(best).sum():
            best = coord
        if np.isfinite(best).sum() > 0.5 * ok.sum():
            break
    return best


def _grow(tiles: TileGrid, fam: int, ok: np.ndarray, seed: tuple[int, int], lattice: int) -> np.ndarray:
    """Grid coordinates of the tiles reached from seed. Quality-guided: of all links from a placed tile to an
    unplaced neighbour, the one whose prediction (the pair's mean local frequency times their distance)
    lands nearest a lattice position is taken first (a spanning tree of the most consistent links), so a
    region is reached through a bad link (a trace or letter that pulled a tile's frequency, the page's edge)
    only when no clean path leads there (growing in order of tile strength instead let one bad link slip a
    whole half page by 5 mm: measured on rendered photos)."""
    coord = np.full(ok.shape, np.nan)
    coord[seed] = np.mod(tiles.phase[fam][seed] / (2 * np.pi), 1.0 / lattice)
    return grow_from(tiles, fam, ok, coord, lattice)


def grow_from(tiles: TileGrid, fam: int, ok: np.ndarray, coord: np.ndarray, lattice: int) -> np.ndarray:
    """`_grow` from every placed tile of coord (grid coordinates in periods, NaN: not placed) at once."""
    ny, nx = ok.shape
    coord = coord.copy()
    frac = np.mod(tiles.phase[fam] / (2 * np.pi), 1.0 / lattice)
    max_mismatch = MAX_UNWRAP_MISMATCH / lattice
    heap: list[tuple[float, int, int, float]] = []

    def push_links(i: int, j: int) -> None:
        for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            a, b = i + di, j + dj
            if not (0 <= a < ny and 0 <= b < nx) or not ok[a, b] or not np.isnan(coord[a, b]):
                continue
            kmean = 0.5 * (tiles.k[fam, i, j] + tiles.k[fam, a, b])
            pred = coord[i, j] + float(kmean @ (tiles.centres[a, b] - tiles.centres[i, j]))
            value = frac[a, b] + round((pred - frac[a, b]) * lattice) / lattice
            mismatch = abs(value - pred)
            if mismatch <= max_mismatch:  # ambiguous otherwise: another neighbour may reach it more clearly
                heapq.heappush(heap, (mismatch, a, b, value))

    for i, j in zip(*np.nonzero(np.isfinite(coord))):
        push_links(int(i), int(j))
    while heap:
        _, a, b, value = heapq.heappop(heap)
        if not np.isnan(coord[a, b]):
            continue
        coord[a, b] = value
        push_links(a, b)
    return coord
