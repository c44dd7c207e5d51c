"""The grid measured tile by tile: each overlapping tile's local period, direction and line phase for both
line families (`measure_tiles`, `comb_phase`), and the tiles' phases unwrapped onto the lattice of grid lines
(`unwrap_tiles`, `grow_from`): every tile centre's place on the paper, in periods, up to one common shift.

The tiles are read on an analysis image in which 5 mm span ANALYSIS_PERIOD_PX pixels. Points are
(x, y) = (col, row) pixel coordinates with pixel centres at integers.
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
import scipy.fft

from .spectrum import GlobalGrid, comb_scores, spectrum_lookup

ANALYSIS_PERIOD_PX = 24.0  # 5 mm in the analysis image
TILE_PERIODS = 4  # tile side in major periods (20 mm)
TILE_SCALE_RANGE = (0.86, 1.16)  # a tile's 5-mm period is searched within these factors of the page's (wider
# ranges lock onto the 4/5 and 5/4 confusions of a 1-mm grid: docs/tuning.md)
TILE_SCALE_STEPS = 7
PREDICTED_SCALE_RANGE = (0.92, 1.087)  # the second pass: a tile's period within these factors of its
# prediction by the first fit (narrow: the 4/5 and 5/4 confusions of the 1-mm grid stay out of reach)
MAX_UNWRAP_MISMATCH = 0.3  # lattice steps between a tile's position and its neighbour's prediction
LATTICE_PER_PERIOD = 5  # 1-mm lines per 5-mm period: tiles are placed on the 1-mm lattice
NUM_PHASE_HARMONICS = 5  # harmonics of the 5-mm period that locate a tile's lines (the 5th: 1-mm lines)


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
            major = comb_scores(power, kx, ky).reshape(t, -1)
            minor = comb_scores(power, 5 * kx, 5 * ky).reshape(t, -1)
            score = (major / (major.max(axis=1, keepdims=True) + 1e-12)
                     + minor / (minor.max(axis=1, keepdims=True) + 1e-12))
            best = np.argmax(score, axis=1)
            bm = cand_m.reshape(t, -1)[np.arange(t), best]
            ba = cand_a.reshape(t, -1)[np.arange(t), best]
            # refine around each tile's best candidate
            fm = bm[:, None, None] * fine_s[None, :, None]
            fa = ba[:, None, None] + fine_a[None, None, :]
            fkx, fky = fm * np.cos(fa), fm * np.sin(fa)
            fscore = comb_scores(power, fkx, fky).reshape(t, -1)
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
            line = comb_phase(fm, harm)
            k_out[fam, rows_i, cols_j] = np.stack([kx1, ky1], axis=1)
            ph_out[fam, rows_i, cols_j] = 2 * np.pi * line.frac
            major_out[fam, rows_i, cols_j] = line.major_contrast
            snr_out[fam, rows_i, cols_j] = spectrum_lookup(power, kx1, ky1) / level
    return TileGrid(centres, k_out, ph_out, snr_out, major_out)


@dataclass(frozen=True)
class LinePhase:
    """Where each tile's centre sits between two major lines, and how clearly its major line is told apart."""

    frac: np.ndarray  # (T,) fraction of a period in [0, 1)
    major_contrast: np.ndarray  # (T,) the best shift over the other four 1-mm positions (0: minor lines as dark)


def comb_phase(fm: np.ndarray, harmonics: np.ndarray, steps: int = 240) -> LinePhase:
    """Where the tile centre sits between two major lines (fraction of a period in [0, 1)) from the DFT
    values fm (T, M) at the harmonics: the shift at which a comb of lines matches the tile best,
    argmax_u sum_m Re(F_m exp(-2 pi i m u)). All harmonics (the 1-mm lines are the 5th) vote, so a trace or
    a letter crossing the tile, which spreads its energy over all frequencies, moves the answer far less
    than it moves the fundamental's phase alone. Also how far the best shift stands out of the other four
    1-mm positions (0: minor lines as dark as the major one), scaled by the correlation's range."""
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
    return LinePhase(np.mod((best + shift) / steps, 1.0), contrast)


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
