"""The page frame: the map between an input image and the canonical page (upright, flat, one fixed scale).

The canonical page is what every later stage reads: paper at CANONICAL_PX_PER_MM (200 dpi, the scale the
segmenter and the extractor were built for), rows horizontal, 1-mm grid squares square. `find_page_frame`
measures the map from the page's own printed grid (the measurements and the fitted surface are `grid/`'s):

1. a coarse look at the whole page (2-D power spectrum of its darkness) finds the two grid-line families:
   the direction and period of the 5-mm (major) lines, whose harmonics include the 1-mm lines;
2. the image is resampled so that 5 mm span ANALYSIS_PERIOD_PX pixels and cut into overlapping tiles; in
   each tile the local grid frequency of both families is searched near the global one (mean power over the
   harmonics of the candidate) and the phase of its fundamental gives where the tile's centre sits between
   two major lines;
3. phases are unwrapped by growing a region from the most confident tile (neighbour's grid coordinate =
   this one's + local frequency x distance, rounded so that its own phase holds), which gives every tile
   centre's position on the paper in mm (up to one common shift, which is free);
4. a RANSAC homography paper mm -> image px, then a thin-plate-spline residual (page curl, folds) sampled
   on a 5-mm mesh; tiles whose unwrapping slipped by whole periods are put back on the fitted surface;
5. a second pass for the paper the first fit only extrapolated (a near page edge seen larger than the tile
   search reaches, tiles a trace pulled): tiles are measured again around the frequency the fit predicts
   for each, placed by growing outwards from the fit's own tiles, and the surface is refitted.

Fallbacks, one of which is logged per page (`PageFrame.method`):
- 'flat': the map is a similarity at the canonical scale (a flat 200-dpi scan, possibly tilted): the
  identity frame, and today's tilt correction does the rest (nothing is resampled, nothing is lost);
- 'scale': a flat page at another resolution (50-400 dpi): resized to the canonical scale (bicubic up,
  area-averaging down), tilt left to the tilt stage;
- 'grid' / 'grid+warp': perspective (and curl): the page is resampled through the fitted map;
- 'none': no grid found (blank paper, no printed grid): the identity, as before this stage existed.

Points are (x, y) = (col, row) pixel coordinates with pixel centres at integers.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..geometry import CANONICAL_PX_PER_MM, MAJOR_MM, Box, LeadNameBox, page_size_px_per_mm
from ..warp import MeshWarp, apply_homography, similarity_fit
from .grid import (LATTICE_PER_PERIOD, GlobalGrid, SurfaceFit, channel_darkness, find_global_grid, fit_lattice,
                   grid_unresolved, measure_tiles, refit_from_surface, resize_by, tile_darkness)
from .grid.surface import MIN_TILES
from .grid.tiles import ANALYSIS_PERIOD_PX, TILE_PERIODS

LOG = logging.getLogger(__name__)

LETTER_MM = (279.4, 215.9)  # landscape letter page: the canonical page is at least this big (padded)
MAX_PAGE_MM = (290.0, 224.0)  # a grid region larger than this is cut to it (around its centre)
COARSE_LONG_PX = 1600  # long side of the first (global) look
MIN_TILE_SNR = 6.0  # fundamental power over the tile's median spectral power
# Pages printed without a grid show a periodic pattern too (trace rows, beats, text), weaker and over fewer
# tiles than a printed grid's. Below both limits together: no grid.
WEAK_GRID_CONFIDENCE = 30.0
WEAK_GRID_MAX_TILES = 200
FLAT_MAX_DEV_MM = 1.5  # p95 departure of the map from a similarity below this: a flat page (a lower limit
# let dense flat scans read spurious curl off their traces and be resampled)
# A perspective (the homography's p95 departure from a similarity) of this much is straightened even when the
# warp as a whole is under FLAT_MAX_DEV_MM: the homography is fitted to every tile, so unlike the curl it is not
# read off the traces (flat scans stay far below it; a photographed page's perspective reaches it, enough to
# leave a row's time axis tens of ms off from one end to the other)
PERSPECTIVE_MIN_MM = 0.4
SCALE_TOLERANCE = 0.03  # |scale - 1| below this on a flat page: no resampling at all
MESH_STEP_MM = 5.0
RELATIVE_TILE_SNR = 0.0  # a grid tile's strength, as a share of the page's 75th percentile tile
# on a page too coarse to resolve its 1-mm lines (grid.grid_unresolved) the grid reading is checked against
LOW_RES_SCALE_AGREEMENT = 0.1  # the page size, which replaces it when they differ by more than this
LOW_RES_PX_PER_MM = 4.0  # below this (about 100 dpi) a page is only resized, never warped
MIN_INLIER_SHARE = 0.4  # fewer grid tiles than this share on the fitted surface: scale only
EXTENT_MARGIN_MM = 8.0  # paper kept beyond the outermost grid tiles' centres
MIN_MAJOR_CONTRAST = 0.15  # median major-line contrast above which tiles are unwrapped in 5-mm periods
REFIT_MAX_PASSES = 3
REFIT_MIN_GAIN = 0.05  # share of tiles a pass must add for another to run


@dataclass
class PageFrame:
    """Map original image <-> canonical page. `warp` maps canonical px -> original px (None: identity)."""

    shape_hw: tuple[int, int]  # canonical page size (rows, cols)
    method: str  # 'none', 'flat', 'scale', 'grid', 'grid+warp'
    warp: MeshWarp | None = None
    px_per_mm: float = CANONICAL_PX_PER_MM
    source_px_per_mm: float = float("nan")  # measured scale of the original near the page centre
    perspective_mm: float = 0.0  # p95 departure of the homography from a similarity (mm of paper)
    curl_mm: float = 0.0  # p95 size of the smooth residual warp (mm of paper)
    num_tiles: int = 0  # grid tiles that agreed with the fitted map
    fill_rgb: tuple[int, int, int] = (255, 255, 255)  # paper colour: what fills canonical pixels off the image
    notes: list[str] = field(default_factory=list)

    @property
    def is_identity(self) -> bool:
        return self.warp is None

    @property
    def straightens(self) -> bool:
        """True when the frame already removed rotation (a tilt correction after it would be redundant)."""
        return self.method in ("grid", "grid+warp")

    def to_original(self, points_xy: np.ndarray) -> np.ndarray:
        pts = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
        return pts.copy() if self.warp is None else self.warp.forward(pts)

    def to_canonical(self, points_xy: np.ndarray) -> np.ndarray:
        pts = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
        return pts.copy() if self.warp is None else self.warp.inverse(pts)

    def source_scale(self) -> float:
        """Original px per canonical px near the page centre (1 for the identity)."""
        if self.warp is None:
            return 1.0
        h, w = self.shape_hw
        c = np.array([[w / 2, h / 2], [w / 2 + 1, h / 2], [w / 2, h / 2 + 1]])
        q = self.warp.forward(c)
        return float(math.sqrt(abs(_det2(q[1] - q[0], q[2] - q[0]))))

    def warp_image(self, image: np.ndarray) -> np.ndarray:
        """The canonical page from the original image. A source much finer than the canonical page is
        first reduced by area averaging (remap alone would alias it, and a 12-MP photo costs time)."""
        if self.warp is None:
            return image
        img = np.ascontiguousarray(image)
        if self.method == "scale":  # a pure resize: area averaging down, bicubic up
            h, w = self.shape_hw
            shrink = h * w < img.shape[0] * img.shape[1]
            return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)
        warp = self.warp
        scale = self.source_scale()
        if scale > 1.5:
            f = 1.25 / scale
            small = cv2.resize(img, (max(1, round(img.shape[1] * f)), max(1, round(img.shape[0] * f))),
                               interpolation=cv2.INTER_AREA)
            fx, fy = small.shape[1] / img.shape[1], small.shape[0] / img.shape[0]
            warp = _scaled_source(warp, fx, fy)
            img = small
        interp = cv2.INTER_CUBIC if scale < 0.8 else cv2.INTER_LINEAR
        fill = self.fill_rgb if img.ndim == 3 else int(np.mean(self.fill_rgb))
        return warp.resample(img, self.shape_hw, fill=fill, interpolation=interp)

    def boxes_to_canonical(self, boxes: list[LeadNameBox]) -> list[LeadNameBox]:
        """Lead-name boxes of the original image -> boxes of the canonical page (bounding box of the
        mapped corners)."""
        if self.warp is None or not boxes:
            return list(boxes)
        out = []
        for b in boxes:
            c = np.array([[b.box.x0, b.box.y0], [b.box.x1, b.box.y0], [b.box.x1, b.box.y1], [b.box.x0, b.box.y1]])
            m = self.to_canonical(c)
            out.append(LeadNameBox(b.name, Box(*m.min(axis=0), *m.max(axis=0)), b.score))
        return out

    def describe(self) -> str:
        if self.method == "none":
            # the fallback chain's evidence (rectify_page adds the tilt's: see no_grid_note)
            return "page frame: no printed grid found, page used at its own scale" + "".join(
                f"; {n}" for n in self.notes)
        if self.method == "flat":
            return (f"page frame: flat page at {self.source_px_per_mm:.3f} px/mm, used as given "
                    f"({self.num_tiles} grid tiles)")
        if self.method == "scale":
            return (f"page frame: flat page at {self.source_px_per_mm:.3f} px/mm resized to "
                    f"{self.px_per_mm:.3f} px/mm ({self.num_tiles} grid tiles)")
        return (f"page frame: {self.method} from {self.num_tiles} grid tiles, perspective {self.perspective_mm:.1f} mm,"
                f" curl {self.curl_mm:.2f} mm, {self.source_px_per_mm:.2f} -> {self.px_per_mm:.3f} px/mm")


def no_grid_note(tilt_method: str, angle_deg: float, num_name_pairs: int = 0) -> str:
    """What a page without a usable grid was straightened by (the fallback chain: no grid -> lead names and
    trace rows -> trace lines -> nothing), for the log. tilt_method: TiltEstimate.method; angle_deg: the tilt
    removed (0: none was)."""
    if tilt_method in ("names", "names+lines"):
        src = f"lead names ({num_name_pairs} pairs)" + (" and trace lines" if tilt_method == "names+lines" else "")
    elif tilt_method == "lines":
        src = "trace/text lines (no lead names)"
    else:
        return "no names or lines to straighten by either: page used as given"
    if angle_deg == 0.0:
        return f"no tilt to correct by {src}: page used as given; scale left to the extractor (lead-name columns, else page size)"
    return f"tilt {angle_deg:.2f} deg from {src}; scale left to the extractor (lead-name columns, else page size)"


def identity_frame(shape_hw: tuple[int, int], method: str = "none", note: str | None = None) -> PageFrame:
    return PageFrame((int(shape_hw[0]), int(shape_hw[1])), method, notes=[note] if note else [])


def _scaled_source(warp: MeshWarp, fx: float, fy: float) -> MeshWarp:
    """The same map into a source image resized by (fx, fy) with cv2's pixel-area alignment:
    x' = (x + 0.5) fx - 0.5."""
    a = np.array([[fx, 0.0, 0.5 * fx - 0.5], [0.0, fy, 0.5 * fy - 0.5], [0.0, 0.0, 1.0]])
    mesh = None if warp.mesh is None else warp.mesh * np.array([fx, fy])
    return MeshWarp(a @ warp.homography, mesh, warp.mesh_origin, warp.mesh_step)


def find_page_frame(image_rgb: np.ndarray, log=None) -> PageFrame:
    """Measure the map from the image to the canonical page (see the module docstring)."""
    img = np.asarray(image_rgb)
    frame = _checked_low_res_scale(_find(img), img.shape[:2])
    (log or LOG.info)(frame.describe())
    return frame


def _checked_low_res_scale(frame: PageFrame, shape_hw: tuple[int, int]) -> PageFrame:
    """On a scan too coarse to resolve the 1-mm lines (grid.UNRESOLVED_GRID_PX_PER_MM by the page size, if it is
    a whole page) the grid reading can lock onto an alias (ECG-Image-Kit 51-53 dpi scans read 1.43-1.74x
    their true scale, while all 20 of their 66-106 dpi pages agreed with the page size to 0.1 %): there a
    resize that disagrees with the page size by more than LOW_RES_SCALE_AGREEMENT takes the page size instead.
    A reading at LOW_RES_PX_PER_MM or finer stands (a small image read that fine is a crop of a page, not a
    coarse whole page)."""
    if frame.method != "scale" or frame.source_px_per_mm >= LOW_RES_PX_PER_MM:
        return frame
    page_ppm = page_size_px_per_mm(*shape_hw)
    if not grid_unresolved(page_ppm) or abs(frame.source_px_per_mm / page_ppm - 1.0) <= LOW_RES_SCALE_AGREEMENT:
        return frame
    return _scale_frame(shape_hw, page_ppm, frame,
                        f"grid read {frame.source_px_per_mm:.2f} px/mm on a coarse scan: page size used instead")


def _find(img: np.ndarray) -> PageFrame:
    h0, w0 = img.shape[:2]
    none = identity_frame((h0, w0))
    # 1. coarse look (area-averaged: reduces a 12-MP photo at once)
    f1 = min(1.0, COARSE_LONG_PX / max(h0, w0))
    small = resize_by(img, f1) if f1 < 1 else img
    dark1 = channel_darkness(small)
    if min(dark1.shape) < 64:
        return none
    glob = find_global_grid(dark1)
    if glob is None:
        return none
    # 2. analysis image: 5 mm = ANALYSIS_PERIOD_PX
    period1 = 1.0 / float(np.mean([np.hypot(*glob.kx), np.hypot(*glob.ky)]))
    f2 = f1 * ANALYSIS_PERIOD_PX / period1
    f2 = min(f2, 3.0)
    src = img if f2 > f1 else small
    dark2 = tile_darkness(resize_by(src, f2 / (1.0 if src is img else f1)), ANALYSIS_PERIOD_PX)
    g2 = GlobalGrid(glob.kx * f1 / f2, glob.ky * f1 / f2, glob.confidence)
    tile_px = int(TILE_PERIODS * ANALYSIS_PERIOD_PX)
    tiles = measure_tiles(dark2, g2, tile_px, tile_px // 2)
    # grid tiles stand far above anything else (a table's grain, a blank margin): a tile counts when both
    # families reach a share of the typical grid tile's strength
    strong = [max(MIN_TILE_SNR, RELATIVE_TILE_SNR * float(np.percentile(tiles.snr[f], 75))) for f in (0, 1)]
    ok = (tiles.snr[0] > strong[0]) & (tiles.snr[1] > strong[1])
    if ok.sum() < MIN_TILES:
        return identity_frame((h0, w0), "none", f"{int(ok.sum())} grid tiles")
    # majors told apart from minors (most pages): unwrap in 5-mm periods, which tolerates far larger
    # prediction errors; otherwise (ECG-Image-Kit draws some minor grids as dark as the major one) on the
    # 1-mm lattice, which fits any tile to within 0.5 mm and so is used only when it must be
    src_ppm = ANALYSIS_PERIOD_PX / MAJOR_MM / f2
    lattice = 1 if float(np.median(tiles.major_contrast[:, ok])) > MIN_MAJOR_CONTRAST else LATTICE_PER_PERIOD
    f2xy = (dark2.shape[1] / w0, dark2.shape[0] / h0)
    fit = fit_lattice(tiles, ok, lattice, f2xy, src_ppm)
    if fit is None:
        return identity_frame((h0, w0), "none", "no consistent grid surface")
    inl = fit.surface.inliers
    if glob.confidence < WEAK_GRID_CONFIDENCE and inl.sum() < WEAK_GRID_MAX_TILES:
        # a faint periodic pattern over a small area: trace rows, beats and text of a page printed without
        # a grid (warping by it bent such pages and resized them 1.1-2.3x)
        return identity_frame((h0, w0), "none", f"weak periodic pattern (confidence {glob.confidence:.0f}, "
                              f"{int(inl.sum())} tiles), not a printed grid")
    # each pass reaches further out from its predecessor's tiles; another one runs while the last one still
    # added REFIT_MIN_GAIN of the tiles
    cur_tiles, cur_ok, cur_fit = tiles, ok, fit
    for _ in range(REFIT_MAX_PASSES):
        refit = refit_from_surface(dark2, g2, cur_tiles, cur_ok, cur_fit, f2xy, src_ppm, strong, lattice)
        if refit is None:
            break
        gain = refit.fit.surface.inliers.sum() / max(1, cur_fit.surface.inliers.sum()) - 1.0
        cur_fit, cur_tiles, cur_ok = refit.fit, refit.tiles, refit.placed
        if gain < REFIT_MIN_GAIN:
            break
    surface, inl = cur_fit.surface, cur_fit.surface.inliers
    uv_in, xy_in = cur_fit.uv_mm[inl], cur_fit.xy_px[inl]
    if inl.sum() < MIN_INLIER_SHARE * len(cur_fit.uv_mm):
        # most grid tiles disagree with any smooth surface: trust only the grid's scale (a resize)
        frame = _frame_from_surface(img, surface.homography_only(), uv_in, xy_in, src_ppm)
        if frame.method in ("grid", "grid+warp"):
            return _scale_frame(img.shape[:2], frame.source_px_per_mm, frame, "grid surface unreliable: scale only")
        return frame
    return _frame_from_surface(img, surface, uv_in, xy_in, src_ppm)


def _scale_frame(shape_hw: tuple[int, int], src_ppm: float, base: PageFrame | None = None,
                 note: str | None = None) -> PageFrame:
    """A pure resize from src_ppm to the canonical scale (area alignment, as cv2.resize does); the
    identity ('flat') when the scale is already canonical."""
    h0, w0 = shape_hw
    scale = src_ppm / CANONICAL_PX_PER_MM
    extra = dict(source_px_per_mm=src_ppm, num_tiles=base.num_tiles if base else 0,
                 fill_rgb=base.fill_rgb if base else (255, 255, 255), notes=[note] if note else [])
    if abs(scale - 1.0) < SCALE_TOLERANCE:
        return PageFrame((h0, w0), "flat", None, **extra)
    return PageFrame(*_resized(h0, w0, scale), **extra)


def _resized(h0: int, w0: int, scale: float) -> tuple[tuple[int, int], str, MeshWarp]:
    """(canonical shape, 'scale', warp) of a pure resize by 1 / scale: canonical px -> original px with pixel
    areas aligned, as cv2.resize does."""
    hc, wc = max(1, round(h0 / scale)), max(1, round(w0 / scale))
    sx, sy = w0 / wc, h0 / hc
    a = np.array([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, 0.5 * sy - 0.5], [0.0, 0.0, 1.0]])
    return (hc, wc), "scale", MeshWarp(a)


def dense_extent_mm(u: np.ndarray, reach_mm: float = 15.0, min_share: float = 0.25) -> tuple[float, float]:
    """(lo, hi) of the tile centres u (mm along one axis) that lie in dense columns: at least min_share of the
    typical tile's count of tiles within reach_mm. The page's body is a dense lattice (a tile every 10 mm);
    tiles off the page (a table's grain, a fold's shadow) lie scattered."""
    u = np.sort(np.asarray(u, dtype=np.float64))
    near = np.searchsorted(u, u + reach_mm, side="right") - np.searchsorted(u, u - reach_mm, side="left")
    dense = u[near >= min_share * float(np.median(near))]
    return float(dense.min()), float(dense.max())


def cut_start(lo: float, hi: float, size: float, dense_lo: float, dense_hi: float) -> float:
    """Start of the page's window of `size` within a grid region [lo, hi] that is larger: the overflow is cut
    from each side in proportion to how far that side reaches beyond the dense grid (dense_lo, dense_hi, with
    the same margin). Cut around the centre, scattered tiles off the page on one side cost the other side
    15-25 mm of traces (real photos 03515, 03919: V4-V6 lost their last third)."""
    over = (hi - lo) - size
    if over <= 0:
        return lo
    ex_lo, ex_hi = max(0.0, dense_lo - lo), max(0.0, hi - dense_hi)
    share = 0.5 if ex_lo + ex_hi <= 0 else ex_lo / (ex_lo + ex_hi)
    return lo + over * share


def _frame_from_surface(img: np.ndarray, surface: SurfaceFit, uv: np.ndarray, xy: np.ndarray,
                        src_ppm: float) -> PageFrame:
    h0, w0 = img.shape[:2]
    ppm = CANONICAL_PX_PER_MM
    # the grid region in mm (tile centres +- half a tile), cut to the largest page, then padded to a letter
    half = EXTENT_MARGIN_MM
    lo = np.percentile(uv, 1, axis=0) - half  # (percentiles: a stray tile off the page does not widen it)
    hi = np.percentile(uv, 99, axis=0) + half
    centre = 0.5 * (lo + hi)
    size = hi - lo
    landscape = size[0] >= size[1]
    min_mm = np.array(LETTER_MM if landscape else LETTER_MM[::-1])
    max_mm = np.array(MAX_PAGE_MM if landscape else MAX_PAGE_MM[::-1])
    cut = np.clip(size, min_mm, max_mm)
    # padded around the centre; cut on the side of the scattered tiles
    dense = [dense_extent_mm(uv[:, ax]) for ax in (0, 1)]
    lo = np.array([cut_start(lo[ax], hi[ax], cut[ax], dense[ax][0] - half, dense[ax][1] + half)
                   if size[ax] > cut[ax] else centre[ax] - cut[ax] / 2 for ax in (0, 1)])
    size = cut
    w_c, h_c = int(round(size[0] * ppm)), int(round(size[1] * ppm))
    # canonical px -> mm: U = p / ppm + lo
    to_mm = np.array([[1 / ppm, 0, lo[0]], [0, 1 / ppm, lo[1]], [0, 0, 1.0]])
    hom = surface.hmat @ to_mm
    step_px = MESH_STEP_MM * ppm
    mesh = None
    # the mesh spans the canonical page and every grid tile (paper cut off the canonical page keeps its
    # measured warp, for points mapped from the photo there)
    m_lo = np.minimum(0.0, (uv.min(axis=0) - EXTENT_MARGIN_MM - lo) * ppm)
    m_hi = np.maximum([w_c, h_c], (uv.max(axis=0) + EXTENT_MARGIN_MM - lo) * ppm)
    m_lo = np.floor(m_lo / step_px) * step_px
    nodes_x = np.arange(m_lo[0], m_hi[0] + step_px, step_px)
    nodes_y = np.arange(m_lo[1], m_hi[1] + step_px, step_px)
    gx, gy = np.meshgrid(nodes_x, nodes_y)
    nodes = np.stack([gx.ravel(), gy.ravel()], axis=1)
    nodes_mm = nodes / ppm + lo
    if surface.spline is not None:
        mesh = surface.spline(nodes_mm).reshape(len(nodes_y), len(nodes_x), 2)
    warp = MeshWarp(hom, mesh, (float(m_lo[0]), float(m_lo[1])), step_px)
    # how far from flat: the homography against a similarity, the mesh's size (over the grid region)
    inside = np.all((nodes_mm >= uv.min(axis=0) - half) & (nodes_mm <= uv.max(axis=0) + half), axis=1)
    q_h = apply_homography(hom, nodes[inside])
    m, scale, _ = similarity_fit(nodes[inside], q_h)
    dev = np.hypot(*(q_h - (nodes[inside] @ m[:, :2].T + m[:, 2])).T)
    persp_mm = float(np.percentile(dev, 95)) / src_ppm
    curl_mm = 0.0
    if mesh is not None:
        curl_mm = float(np.percentile(np.hypot(*mesh.reshape(-1, 2)[inside].T), 95)) / src_ppm
    fill = _paper_rgb(img, xy)
    measured_ppm = ppm * scale  # original px per mm at the canonical scale times original px per canonical px
    base = dict(source_px_per_mm=measured_ppm, perspective_mm=persp_mm, curl_mm=curl_mm, num_tiles=len(uv),
                fill_rgb=fill)
    angle_deg = math.degrees(math.atan2(m[1, 0], m[0, 0]))
    # below LOW_RES_PX_PER_MM (about 100 dpi) the 1-mm lines are gone and tile positions too noisy to tell
    # a warp from noise; such pages are scans in practice (a phone photo resolves far more): resize only
    small_warp = persp_mm + curl_mm < FLAT_MAX_DEV_MM
    if (small_warp and persp_mm < PERSPECTIVE_MIN_MM) or measured_ppm < LOW_RES_PX_PER_MM:
        if abs(scale - 1.0) < SCALE_TOLERANCE:
            return PageFrame((h0, w0), "flat", None, **base, notes=[f"rotation {angle_deg:.2f} deg left to tilt"])
        # a flat page at another resolution: a pure resize (area alignment, as cv2.resize does)
        return PageFrame(*_resized(h0, w0, scale), **base)
    if small_warp and mesh is not None:
        # a perspective the homography measures from every tile, with a curl too small to tell from the traces'
        # pull on the tiles: the homography alone
        warp, base["curl_mm"] = MeshWarp(hom), 0.0
    method = "grid+warp" if warp.mesh is not None else "grid"
    return PageFrame((h_c, w_c), method, warp, **base)


def _paper_rgb(img: np.ndarray, xy: np.ndarray) -> tuple[int, int, int]:
    """Paper colour: a bright percentile of the image around the grid tiles' centres."""
    h, w = img.shape[:2]
    pts = np.round(xy).astype(np.int64)
    pts[:, 0] = np.clip(pts[:, 0], 0, w - 1)
    pts[:, 1] = np.clip(pts[:, 1], 0, h - 1)
    if img.ndim == 2:
        v = int(np.percentile(img[pts[:, 1], pts[:, 0]], 75))
        return (v, v, v)
    vals = img[pts[:, 1], pts[:, 0], :3].astype(np.float64)
    bright = vals.sum(axis=1) >= np.percentile(vals.sum(axis=1), 50)
    return tuple(int(c) for c in np.median(vals[bright], axis=0))


def _det2(a: np.ndarray, b: np.ndarray) -> float:
    """Area of the parallelogram of two 2-D vectors (the local scale of a map squared)."""
    return float(a[0] * b[1] - a[1] * b[0])
