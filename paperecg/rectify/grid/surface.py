"""The paper's surface fitted to the measured tiles: paper mm -> image px as a RANSAC homography plus a smooth
thin-plate residual (`fit_surface`, a `SurfaceFit`); both line families unwrapped and fitted, slipped tiles put
back on the fit (`fit_lattice`, a `TileFit`); and the second pass for the paper the first fit only
extrapolated (`refit_from_surface`, a `RefitPass`). `rectify/frame.py` builds the page frame from the fit.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import cv2
import numpy as np

from ...geometry import MAJOR_MM
from ...warp import apply_homography, invert_homography_plus
from .spectrum import GlobalGrid
from .tiles import ANALYSIS_PERIOD_PX, TILE_PERIODS, TileGrid, grow_from, measure_tiles, unwrap_tiles

MIN_TILES = 12  # fewer grid tiles: no surface, no frame
SEED_MM = 0.25  # a first-fit tile this near a lattice position on the fitted surface seeds the second pass
REFIT_REACH_MM = 80.0  # the second pass measures tiles predicted this far beyond the seeds (a page edge)
OUTLIER_MM = 1.0  # a tile farther than this from the fitted surface is not used
SPLINE_SMOOTHING = 5.0  # thin-plate smoothing per tile (px^2 of the original image; less follows the pull of
# traces on single tiles)


@dataclass(frozen=True)
class SurfaceFit:
    """The paper's surface fitted to grid tiles: paper mm -> original px as a homography plus a smooth
    thin-plate residual."""

    hmat: np.ndarray  # (3, 3) homography, paper mm -> original px
    spline: Any  # scipy RBFInterpolator: the residual (px) over paper mm; None: the homography alone
    inliers: np.ndarray  # bool per tile it was fitted to: on the surface

    def forward(self, uv_mm: np.ndarray) -> np.ndarray:
        """Paper mm -> original px."""
        xy = apply_homography(self.hmat, uv_mm)
        return xy if self.spline is None else xy + self.spline(uv_mm)

    def inverse(self, xy: np.ndarray, iterations: int = 6) -> np.ndarray:
        """Original px -> paper mm (fixed-point iteration on the residual)."""
        return invert_homography_plus(self.hmat, self.spline, xy, iterations)

    def homography_only(self) -> SurfaceFit:
        return replace(self, spline=None)


@dataclass(frozen=True)
class TileFit:
    """A surface with the tiles it was fitted to (`surface.inliers` marks those on it)."""

    surface: SurfaceFit
    uv_mm: np.ndarray  # (N, 2) each tile's place on the paper
    xy_px: np.ndarray  # (N, 2) its centre in original px


@dataclass(frozen=True)
class RefitPass:
    """One second pass (refit_from_surface): its fit, the tile grid with the tiles measured again, and the
    tiles it placed (the `fit`, `tiles` and `ok` of a next pass)."""

    fit: TileFit
    tiles: TileGrid
    placed: np.ndarray  # bool (ny, nx)


def fit_surface(uv_mm: np.ndarray, xy: np.ndarray, px_per_mm: float, gate_mm: float = 2.5) -> SurfaceFit | None:
    """RANSAC homography mm -> px, then a smoothing thin-plate spline of the residual: it starts from the
    tiles within gate_mm of the homography and keeps those within max(0.25 mm, 5 x the median distance)
    (at most OUTLIER_MM) of itself. None: no homography."""
    from scipy.interpolate import RBFInterpolator

    cv2.setRNGSeed(0)  # RANSAC draws from OpenCV's global generator: the same page gives the same frame
    hmat, mask = cv2.findHomography(uv_mm.astype(np.float64), xy.astype(np.float64), cv2.RANSAC,
                                    2.0 * px_per_mm, maxIters=4000, confidence=0.999)
    if hmat is None:
        return None
    inl = mask.ravel().astype(bool)
    # wide first cut (curl moves points away from any one homography); then the spline is refitted
    # without the tiles it leaves far off (a trace or letter that pulled a tile's phase, a slip of 1 mm)
    res = xy - apply_homography(hmat, uv_mm)
    keep = np.hypot(*res.T) < gate_mm * px_per_mm
    spline = None
    for _ in range(3):
        if keep.sum() < 30:
            break
        spline = RBFInterpolator(uv_mm[keep], res[keep], kernel="thin_plate_spline",
                                 smoothing=float(keep.sum()) * SPLINE_SMOOTHING, degree=1)
        dist = np.hypot(*(res - spline(uv_mm)).T) / px_per_mm
        spread = float(np.median(dist[keep]))
        keep = dist < min(OUTLIER_MM, max(0.25, 5.0 * spread))
    inl = keep if spline is not None else inl
    return SurfaceFit(hmat, spline, inl)


def fit_lattice(tiles: TileGrid, ok: np.ndarray, lattice: int, f2xy: tuple[float, float], src_ppm: float
                 ) -> TileFit | None:
    """Unwrap both families on `lattice`, fit the surface, put every grid tile on it and refit."""
    u = unwrap_tiles(tiles, 0, ok, lattice)
    v = unwrap_tiles(tiles, 1, ok, lattice)
    sel = np.isfinite(u) & np.isfinite(v)
    if sel.sum() < MIN_TILES:
        return None

    def original_xy(mask: np.ndarray) -> np.ndarray:
        return analysis_to_original(tiles.centres[mask], f2xy)

    uv = np.stack([u[sel], v[sel]], axis=1) * MAJOR_MM
    first = fit_surface(uv, original_xy(sel), src_ppm)
    if first is None or first.inliers.sum() < MIN_TILES:
        return None
    # tiles whose unwrapping slipped by whole steps, and tiles of other grid patches: their grid
    # coordinate from their own phase and the fitted surface's whole step, then refit
    xy_all = original_xy(ok)
    uv_pred = first.inverse(xy_all)
    frac = np.mod(np.stack([tiles.phase[0][ok], tiles.phase[1][ok]], axis=1) / (2 * np.pi), 1.0 / lattice)
    uv_all = (frac + np.round((uv_pred / MAJOR_MM - frac) * lattice) / lattice) * MAJOR_MM
    surface = fit_surface(uv_all, xy_all, src_ppm)
    if surface is None or surface.inliers.sum() < MIN_TILES:
        return None
    return TileFit(surface, uv_all, xy_all)


def analysis_to_original(points_xy: np.ndarray, f2xy: tuple[float, float]) -> np.ndarray:
    """Analysis-image px -> original px (pixel-area alignment of the analysis resize by f2xy = (fx, fy))."""
    f = np.asarray(f2xy, dtype=np.float64)
    return (np.asarray(points_xy, dtype=np.float64) + 0.5) / f - 0.5


@dataclass(frozen=True)
class PredictedTiles:
    """What a fitted surface predicts for tile centres."""

    uv_mm: np.ndarray  # (N, 2) each centre's place on the paper
    k: np.ndarray  # (2, N, 2) both families' local frequency there, periods per analysis px


def predicted_tiles(surface: SurfaceFit, centres: np.ndarray, f2xy: tuple[float, float]) -> PredictedTiles:
    """Where a fitted surface puts tile centres on the paper and the local frequency of both families there
    (the gradient of u / MAJOR_MM and v / MAJOR_MM: the same vectors measure_tiles finds)."""
    uv = surface.inverse(analysis_to_original(centres, f2xy))
    step_mm = 0.5
    base = surface.forward(uv)
    du = (surface.forward(uv + [step_mm, 0.0]) - base) / step_mm  # original px per mm
    dv = (surface.forward(uv + [0.0, step_mm]) - base) / step_mm
    jac = np.stack([du, dv], axis=2) * np.asarray(f2xy)[None, :, None]  # d(analysis x, y) / d(u, v)
    with np.errstate(all="ignore"):
        grad = np.linalg.inv(jac) / MAJOR_MM  # rows: d(u, v) / d(analysis x, y), in periods
    return PredictedTiles(uv, np.transpose(grad, (1, 0, 2)))


def refit_from_surface(dark: np.ndarray, glob: GlobalGrid, tiles: TileGrid, ok: np.ndarray, fit: TileFit,
                        f2xy: tuple[float, float], src_ppm: float, strong: list[float], lattice: int
                        ) -> RefitPass | None:
    """The second pass, for the paper the first fit only extrapolated: there (a near page edge seen larger
    than TILE_SCALE_RANGE allows, tiles a trace pulled) the first fit can be millimetres off. The first
    fit's tiles that lie within SEED_MM of a lattice position on it seed; every other tile near the paper is
    measured again around the frequency the fit predicts for it (narrow: no 4/5 or 5/4 confusions), and all
    are placed on the first fit's lattice by growing outwards from the seeds with each link's local
    frequencies (10 mm per link: far more accurate than the fit's extrapolation); then the surface is
    refitted. (Placing every tile on the 1-mm lattice also took the tiles whose major line was misread, but
    let whole regions slip by 1 mm across trace rows.) None when the second pass holds fewer tiles than the
    first."""
    inl = fit.surface.inliers
    ny, nx = ok.shape
    centres = tiles.centres.reshape(-1, 2)
    predicted = predicted_tiles(fit.surface, centres, f2xy)
    uv_pred, k_pred = predicted.uv_mm, predicted.k
    lat = 1.0 / lattice
    frac = np.mod(tiles.phase.reshape(2, -1).T / (2 * np.pi), lat)  # (N, 2) periods
    pred = uv_pred / MAJOR_MM
    snapped = frac + np.round((pred - frac) / lat) * lat
    mismatch_mm = np.max(np.abs(snapped - pred), axis=1) * MAJOR_MM
    seed = np.zeros(ny * nx, bool)
    seed[np.flatnonzero(ok.ravel())[inl]] = True
    seed &= mismatch_mm < SEED_MM
    if seed.sum() < MIN_TILES:
        return None
    kmag = np.linalg.norm(k_pred, axis=2)  # (2, N)
    kglob = np.array([np.hypot(*glob.kx), np.hypot(*glob.ky)])[:, None]
    lo = uv_pred[seed].min(axis=0) - REFIT_REACH_MM
    hi = uv_pred[seed].max(axis=0) + REFIT_REACH_MM
    with np.errstate(invalid="ignore"):
        near = (~seed & np.all(np.isfinite(uv_pred), axis=1) & np.all((uv_pred > lo) & (uv_pred < hi), axis=1)
                & np.all((kmag > 0.6 * kglob) & (kmag < 1.7 * kglob), axis=0))
    near_grid = near.reshape(ny, nx)
    k_grid = np.where(near_grid[None, :, :, None], k_pred.reshape(2, ny, nx, 2), 0.0)
    again = measure_tiles(dark, glob, int(TILE_PERIODS * ANALYSIS_PERIOD_PX),
                          int(TILE_PERIODS * ANALYSIS_PERIOD_PX) // 2, predicted_k=k_grid, only=near_grid)
    pick = near_grid[None]
    merged = TileGrid(tiles.centres, np.where(pick[..., None], again.k, tiles.k),
                      np.where(pick, again.phase, tiles.phase), np.where(pick, again.snr, tiles.snr),
                      np.where(pick, again.major_contrast, tiles.major_contrast))
    usable = seed.reshape(ny, nx) | (near_grid & (again.snr[0] > strong[0]) & (again.snr[1] > strong[1]))
    coords = []
    for fam in (0, 1):
        start = np.where(seed, snapped[:, fam], np.nan).reshape(ny, nx)
        coords.append(grow_from(merged, fam, usable, start, lattice))
    placed = np.isfinite(coords[0]) & np.isfinite(coords[1])
    uv = np.stack([coords[0][placed], coords[1][placed]], axis=1) * MAJOR_MM
    xy = analysis_to_original(tiles.centres[placed], f2xy)
    # every placed tile starts in the spline: the homography's 2.5-mm gate cut off the curled edges the
    # second pass is for
    surface = fit_surface(uv, xy, src_ppm, gate_mm=math.inf)
    if surface is None or surface.inliers.sum() < inl.sum():
        return None
    return RefitPass(TileFit(surface, uv, xy), merged, placed)
