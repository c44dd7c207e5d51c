"""Photo-like pages with a known warp: a rendered page laid on a table and photographed.

`photograph_page(page, rng)` moves the page through a known map (perspective from a random camera pose,
page curl and folds as a smooth displacement, cut edges) onto a textured table, then lights and degrades
it (uneven light and shadow, crease shading, colour cast, blur, sensor noise, JPEG: the photometric part of
render/augment.py). What a phone does to the printed trace is there too, checked against real phone photos
with bench/photo_realism.py: black ink comes out dark grey, steep strokes (QRS) may come out thinner and
fainter than the baseline, a fold is a crease across the paper with a step in the light between its two
faces and a local shift of the paper, a cast shadow darkens part of the sheet, a shaking hand blurs along
one direction. Every label moves with it: the plotted pixels, lead and name boxes (as corners), the trace
masks (redrawn through the moved pixels), and the returned `warp` (a MeshWarp: photo px -> flat page px)
tells where any point of the paper (a grid crossing, say) went. Ranges are deliberately wider than any
one generator's recipe (e.g. ECG-Image-Kit's photo set moves corners by up to 7 %; here up to 12 %).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from ..geometry import Box
from ..warp import MeshWarp, apply_homography
from .augment import AugParams, photometric
from .labels import LeadTrace, RenderedPage, box_corners
from .page import draw_label_masks


@dataclass
class PhotoParams:
    out_scale: float = 1.0  # photo size / page size (both sides)
    page_frac: float = 0.85  # page's long side / photo's long side
    angle_deg: float = 0.0  # in-plane rotation of the page (counter-clockwise positive)
    corner_jitter: tuple[float, ...] = (0.0,) * 8  # unit jitter of the 4 corners (x, y), times perspective_frac
    perspective_frac: float = 0.0  # max corner displacement as a fraction of the page's long side
    shift_frac: tuple[float, float] = (0.0, 0.0)  # page centre offset from the photo centre (fraction of size)
    curl_mm: float = 0.0  # amplitude of the smooth displacement (mm of paper)
    curl_cells: int = 2  # coarseness of the random curl field (nodes across the page)
    roll_mm: float = 0.0  # bow of the rows (a page rolled about a vertical axis, mm at the page edges)
    folds: int = 0  # straight folds: a kink in the paper plus a shaded line
    fold_step_mm: float = 0.0  # local shift of the paper across each fold's crease (mm, along its normal)
    fold_shade: float = 0.0  # light step between a fold's two faces and the crease line's contrast (0..1)
    steep_fade: float = 0.0  # share of a steep stroke's darkness lost (0 .. 1; flat strokes keep theirs)
    ink_thin: float = 0.0  # up to a pixel off every stroke's width (0..1): a printer's thin line
    shadow: float = 0.0  # darkness of a soft-edged cast shadow (phone, hand) over part of the photo (0..1)
    # folds placed by the caller: (angle of the fold's normal in rad (0: a vertical fold line, across the rows),
    # offset of the line from the page's left/top as a page fraction, kink as a share of the page's long side)
    fold_lines: tuple[tuple[float, float, float], ...] = ()
    table_rgb: tuple[int, int, int] = (90, 70, 50)
    table_texture: float = 0.3  # 0..1
    aug: AugParams | None = None  # photometric part (shading, creases, colour, blur, noise, JPEG)
    seed: int = 0


def sample_photo_params(rng: np.random.Generator, strength: float = 1.0) -> PhotoParams:
    s = float(np.clip(strength, 0.0, 1.5))
    aug = AugParams(
        look="photo",
        shading=float(rng.uniform(0.0, 0.5) * s),
        # crumpled paper: faceted light (augment.illumination)
        wrinkles=float(rng.uniform(0.1, 0.5) * s) if rng.random() < 0.25 * s else 0.0,
        creases=int(rng.integers(0, 4)) if rng.random() < 0.4 * s else 0,
        temperature=float(rng.uniform(-3.0, 3.0) * s) if rng.random() < 0.6 else 0.0,
        contrast=float(np.exp(rng.uniform(-0.3, 0.1) * s)),
        brightness=float(rng.uniform(-30.0, 15.0) * s),
        gamma=float(np.exp(rng.uniform(-0.3, 0.3) * s)),
        # black ink photographs as dark grey (real photos: the trace's darkness is 0.55-0.72 of the paper's)
        black_level=float(rng.uniform(10.0, 70.0)),
        blur_sigma_px=float(rng.uniform(0.0, 0.7) * s),
        motion_px=float(rng.uniform(1.0, 2.5) * s) if rng.random() < 0.25 * s else 0.0,
        motion_deg=float(rng.uniform(0.0, 180.0)),
        noise_sigma=float(rng.uniform(0.0, 8.0) * s),
        jpeg_quality=int(rng.integers(45, 95)),
        scribbles=int(rng.integers(1, 4)) if rng.random() < 0.2 * s else 0,
        seed=int(rng.integers(0, 2**31 - 1)),
    )
    folds = int(rng.integers(1, 4)) if rng.random() < 0.5 * s else 0
    return PhotoParams(
        out_scale=float(rng.uniform(0.8, 1.25)),
        page_frac=float(rng.uniform(0.75, 1.05)),
        angle_deg=float(rng.uniform(-12.0, 12.0) * s),
        corner_jitter=tuple(float(v) for v in rng.uniform(-1.0, 1.0, size=8)),
        perspective_frac=float(rng.uniform(0.0, 0.12) * s),
        shift_frac=(float(rng.uniform(-0.05, 0.05)), float(rng.uniform(-0.05, 0.05))),
        curl_mm=float(rng.uniform(0.0, 3.0) * s),
        curl_cells=int(rng.integers(2, 6)),
        roll_mm=float(rng.uniform(-4.0, 4.0) * s) if rng.random() < 0.5 else 0.0,
        folds=folds,
        fold_step_mm=float(rng.uniform(0.0, 1.0) * s) if folds else 0.0,
        fold_shade=float(rng.uniform(0.03, 0.2) * s) if folds else 0.0,
        # real photos' steep strokes are about as dark as the flat ones (bench/photo_realism.py: median
        # ratio 0.98, 0.92-1.03; our pages without fading 0.96-0.97, with 0.3 of fading 0.67-0.79): a mild
        # fading on half the pages covers that spread
        steep_fade=float(rng.uniform(0.0, 0.12)) if rng.random() < 0.5 else 0.0,
        # real photos' flat strokes are 0.36-0.45 mm wide at half darkness, blur included: thinner than most
        # of our styles' 0.5-1.4 pt lines once blurred
        ink_thin=float(rng.uniform(0.3, 1.0)) if rng.random() < 0.8 else 0.0,
        shadow=float(rng.uniform(0.1, 0.35) * s) if rng.random() < 0.25 * s else 0.0,
        table_rgb=tuple(int(v) for v in rng.integers(20, 200, size=3)),
        table_texture=float(rng.uniform(0.0, 0.6)),
        aug=aug,
        seed=int(rng.integers(0, 2**31 - 1)),
    )


@dataclass
class Fold:
    """A straight fold of the paper, in flat-page px: the points at signed distance `dist_px` (positive past
    the crease) are bent away (shift `slope` * dist along the normal) and shifted by `step_px` across a
    crease `width_px` wide."""
    normal: np.ndarray  # unit (x, y)
    offset_px: float  # the crease is where (p - page centre) . normal == offset_px
    slope: float
    step_px: float
    width_px: float
    shade: float  # light step between the faces (signed: which face is darker)
    line: float  # crease line contrast (positive dark, negative bright)

    def dist_px(self, x: np.ndarray, y: np.ndarray, page_hw: tuple[int, int]) -> np.ndarray:
        ph, pw = page_hw
        return (x - pw / 2.0) * self.normal[0] + (y - ph / 2.0) * self.normal[1] - self.offset_px

    def shift_px(self, dist: np.ndarray) -> np.ndarray:
        return np.maximum(dist, 0.0) * self.slope + self.step_px * 0.5 * (1.0 + np.tanh(dist / self.width_px))


def draw_folds(params: PhotoParams, page_hw: tuple[int, int], px_per_mm: float, rng: np.random.Generator
               ) -> list[Fold]:
    ph, pw = page_hw
    folds = []
    for _ in range(params.folds):
        theta = rng.uniform(0, math.pi)
        n = np.array([math.cos(theta), math.sin(theta)])
        offset = rng.uniform(0.3, 0.7)
        slope = rng.uniform(0.002, 0.012)
        extent = abs(n[0]) * pw + abs(n[1]) * ph
        step = params.fold_step_mm * px_per_mm * rng.uniform(0.3, 1.0) * rng.choice([-1.0, 1.0])
        shade = params.fold_shade * rng.uniform(0.2, 1.0) * rng.choice([-1.0, 1.0])
        line = params.fold_shade * rng.uniform(0.1, 0.5) * (1.0 if rng.random() < 0.6 else -0.7)
        folds.append(Fold(n, (offset - 0.5) * extent, slope, step, rng.uniform(0.5, 2.0) * px_per_mm, shade, line))
    for theta, offset, kink_share in params.fold_lines:  # placed by the caller: a bend alone, no crease or shade
        n = np.array([math.cos(theta), math.sin(theta)])
        extent = abs(n[0]) * pw + abs(n[1]) * ph
        folds.append(Fold(n, (offset - 0.5) * extent, kink_share * max(pw, ph) / extent, 0.0, px_per_mm, 0.0, 0.0))
    return folds


def photo_warp(params: PhotoParams, page_hw: tuple[int, int], px_per_mm: float
               ) -> tuple[MeshWarp, tuple[int, int]]:
    """(map photo px -> page px, photo size (rows, cols))."""
    warp, shape, _ = _photo_geometry(params, page_hw, px_per_mm)
    return warp, shape


def _photo_geometry(params: PhotoParams, page_hw: tuple[int, int], px_per_mm: float
                    ) -> tuple[MeshWarp, tuple[int, int], list[Fold]]:
    ph, pw = page_hw
    oh, ow = max(16, round(ph * params.out_scale)), max(16, round(pw * params.out_scale))
    rng = np.random.default_rng(params.seed)
    # where the page's corners land in the photo: a turned, scaled, shifted rectangle, corners jittered
    k = params.page_frac * max(ow, oh) / max(pw, ph)
    a = math.radians(params.angle_deg)
    c, s = math.cos(a), math.sin(a)
    corners = np.array([[0, 0], [pw - 1, 0], [pw - 1, ph - 1], [0, ph - 1]], np.float64)
    centred = (corners - [(pw - 1) / 2, (ph - 1) / 2]) * k
    rot = np.array([[c, s], [-s, c]])  # counter-clockwise on screen with y down (geometry.rotate_points)
    dst = centred @ rot.T + [(ow - 1) / 2 + params.shift_frac[0] * ow, (oh - 1) / 2 + params.shift_frac[1] * oh]
    dst += np.asarray(params.corner_jitter).reshape(4, 2) * params.perspective_frac * max(pw, ph) * k
    hom = cv2.getPerspectiveTransform(dst.astype(np.float32), corners.astype(np.float32)).astype(np.float64)
    # smooth displacement of the paper (page px), defined on a mesh over the photo; a crease needs a finer one
    step = max(8.0, min(oh, ow) / (96.0 if params.folds and params.fold_step_mm > 0 else 48.0))
    nx, ny = int(math.ceil((ow - 1) / step)) + 1, int(math.ceil((oh - 1) / step)) + 1
    gx, gy = np.meshgrid(np.arange(nx) * step, np.arange(ny) * step)
    q = apply_homography(hom, np.stack([gx.ravel(), gy.ravel()], axis=1))
    u, v = q[:, 0] / pw, q[:, 1] / ph  # page fractions
    disp = np.zeros_like(q)
    if params.curl_mm > 0:
        cells = max(2, params.curl_cells)
        for d in range(2):
            coarse = rng.uniform(-1.0, 1.0, size=(cells + 1, cells + 1))
            # bicubic-like smooth field: separable cosine interpolation of the coarse values
            disp[:, d] = params.curl_mm * px_per_mm * _smooth_eval(coarse, u, v)
    if params.roll_mm != 0:
        disp[:, 1] += params.roll_mm * px_per_mm * (2 * u - 1) ** 2
        disp[:, 0] += 0.3 * params.roll_mm * px_per_mm * (2 * u - 1) ** 3
    folds = draw_folds(params, page_hw, px_per_mm, rng)
    for f in folds:
        # the paper past the crease is bent (foreshortened) and shifted across it
        disp += np.outer(f.shift_px(f.dist_px(q[:, 0], q[:, 1], page_hw)), f.normal)
    mesh = disp.reshape(ny, nx, 2)
    return MeshWarp(hom, mesh, (0.0, 0.0), step), (oh, ow), folds


def _smooth_eval(coarse: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Smooth interpolation of coarse node values at page fractions (u, v) (clamped to [0, 1])."""
    n = coarse.shape[0] - 1
    gx = np.clip(u, 0, 1) * n
    gy = np.clip(v, 0, 1) * n
    x0 = np.minimum(np.floor(gx).astype(int), n - 1)
    y0 = np.minimum(np.floor(gy).astype(int), n - 1)
    fx = 0.5 - 0.5 * np.cos(np.pi * (gx - x0))
    fy = 0.5 - 0.5 * np.cos(np.pi * (gy - y0))
    top = coarse[y0, x0] * (1 - fx) + coarse[y0, x0 + 1] * fx
    bot = coarse[y0 + 1, x0] * (1 - fx) + coarse[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bot * fy


def _table(params: PhotoParams, h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(params.seed + 7)
    base = np.array(params.table_rgb, np.float32)
    img = np.empty((h, w, 3), np.float32)
    img[:] = base
    if params.table_texture > 0:
        grain = cv2.resize(rng.normal(0, 1, size=(max(2, h // 24), max(2, w // 6))).astype(np.float32), (w, h),
                           interpolation=cv2.INTER_CUBIC)
        img += (params.table_texture * 40.0 * grain)[:, :, None]
    return np.clip(img, 0, 255).astype(np.uint8)


def _move_points(warp: MeshWarp, rows_cols: np.ndarray) -> np.ndarray:
    """[row, col] page points -> [row, col] photo points (NaN rows stay NaN)."""
    pts = np.asarray(rows_cols, np.float64).reshape(-1, 2)
    out = np.full_like(pts, np.nan)
    ok = np.all(np.isfinite(pts), axis=1)
    if ok.any():
        xy = warp.inverse(pts[ok][:, ::-1])
        out[ok] = xy[:, ::-1]
    return out


def _move_trace(t: LeadTrace, warp: MeshWarp) -> LeadTrace:
    pix = _move_points(warp, t.pixels)
    lead_c = _move_points(warp, t.lead_corners if t.lead_corners is not None else box_corners(t.lead_box))
    text_c = None
    if t.text_box is not None:
        text_c = _move_points(warp, t.text_corners if t.text_corners is not None else box_corners(t.text_box))
    first = t.pixels[np.all(np.isfinite(t.pixels), axis=1)]
    x_start = float(first[0, 1]) if len(first) else t.lead_box.x0
    base = float(_move_points(warp, np.array([[t.baseline_row, x_start]]))[0, 0])
    return replace(t, pixels=pix, lead_box=Box.from_points(lead_c), lead_corners=lead_c,
                   text_box=Box.from_points(text_c) if text_c is not None else None, text_corners=text_c,
                   baseline_row=base)


def thin_strokes(image: np.ndarray, trace_alpha: np.ndarray | None, steep_amount: float, thin_all: float = 0.0
                 ) -> np.ndarray:
    """The printed trace thinner and, where steep, fainter: what a phone sees of a thin printed line.

    `thin_all` (0..1) takes up to a pixel off every stroke's width (a printer's thin line, where our styles
    draw up to 1.4 pt); `steep_amount` (0..1) takes up to a pixel more off a vertical stroke and that share
    of its darkness (a 45-degree stroke half as much, a flat one nothing). The trace's direction comes from
    its anti-aliased label. Thinning blends with the lighter neighbours on both sides, so a stroke keeps its
    centre, and the labels do not change: the faint stroke is still trace."""
    if (steep_amount <= 0 and thin_all <= 0) or trace_alpha is None or not np.any(trace_alpha):
        return image
    h, w = image.shape[:2]
    a = trace_alpha.astype(np.float32) / 255.0
    near = cv2.dilate(a, np.ones((3, 3), np.uint8))[:, :, None]
    img = image.astype(np.float32)
    if thin_all > 0:
        lighter = cv2.dilate(image, np.ones((3, 3), np.uint8)).astype(np.float32)  # 2 px thinner
        img = img + 0.5 * float(thin_all) * near * (lighter - img)
    if steep_amount <= 0:
        return np.clip(np.round(img), 0, 255).astype(np.uint8)
    # structure tensor at half resolution (the direction field is smooth)
    small = cv2.resize(a, (max(2, w // 2), max(2, h // 2)), interpolation=cv2.INTER_AREA)
    gx = cv2.Sobel(small, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(small, cv2.CV_32F, 0, 1, ksize=3)
    jxx = cv2.GaussianBlur(gx * gx, (0, 0), 1.5)
    jyy = cv2.GaussianBlur(gy * gy, (0, 0), 1.5)
    steep = np.clip((jxx - jyy) / np.maximum(jxx + jyy, 1e-6), 0.0, 1.0)  # cos of twice the normal's angle
    steep = (cv2.resize(steep, (w, h), interpolation=cv2.INTER_LINEAR) * float(steep_amount))[:, :, None]
    src = np.clip(np.round(img), 0, 255).astype(np.uint8)
    sideways = cv2.dilate(src, np.ones((1, 3), np.uint8)).astype(np.float32)  # 2 px thinner across a steep one
    paper = cv2.dilate(src, np.ones((7, 7), np.uint8)).astype(np.float32)  # paper (or grid) beside the stroke
    img = img + 0.5 * np.minimum(1.0, 2.0 * steep * near) * (sideways - img)
    img = img + steep * near * (paper - img)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def fold_light(folds: list[Fold], page_x: np.ndarray, page_y: np.ndarray, page_hw: tuple[int, int],
               px_per_mm: float) -> np.ndarray:
    """Multiplicative light of the paper (photo px) from its folds: the two faces of a fold face the light
    differently (a step across the crease) and the crease itself is a thin dark or bright line."""
    light = np.ones(page_x.shape, np.float32)
    for f in folds:
        d = f.dist_px(page_x, page_y, page_hw).astype(np.float32)
        edge = 0.5 * (1.0 + np.tanh(np.sign(f.shade) * d / (0.7 * px_per_mm)))
        light *= 1.0 - abs(f.shade) * edge
        light *= 1.0 - f.line * np.exp(-0.5 * (d / (0.4 * px_per_mm)) ** 2)
    return light


def cast_shadow(params: PhotoParams, h: int, w: int) -> np.ndarray:
    """Multiplicative light (photo px) of a soft-edged shadow (a phone or hand between the lamp and the
    sheet): a half-plane or an ellipse, its edge blurred over 1-6 % of the photo."""
    light = np.ones((h, w), np.float32)
    if params.shadow <= 0:
        return light
    rng = np.random.default_rng(params.seed + 11)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    size = float(max(h, w))
    if rng.random() < 0.5:
        theta = rng.uniform(0, 2 * math.pi)
        d = (xx - w / 2) * math.cos(theta) + (yy - h / 2) * math.sin(theta) - rng.uniform(0.0, 0.35) * size
    else:
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        rx, ry = rng.uniform(0.2, 0.6) * size, rng.uniform(0.2, 0.6) * size
        d = (1.0 - np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)) * min(rx, ry)
    soft = rng.uniform(0.01, 0.06) * size
    return light - params.shadow * 0.5 * (1.0 + np.tanh(d / soft))


@dataclass
class PhotoPage:
    page: RenderedPage  # image and labels in the photo's pixels
    warp: MeshWarp  # photo px (x, y) -> flat page px (x, y)
    params: PhotoParams
    flat_px_per_mm: float  # scale of the flat page the photo was taken of


def photograph_page(page: RenderedPage, rng: np.random.Generator | int | None = None,
                    params: PhotoParams | None = None, strength: float = 1.0) -> PhotoPage:
    """The page photographed on a table (see the module docstring); labels move exactly with the paper."""
    if params is None:
        params = sample_photo_params(np.random.default_rng(rng), strength)
    ppm = float(page.geometry.px_per_mm_x)
    warp, (oh, ow), folds = _photo_geometry(params, (page.height, page.width), ppm)
    mx, my = warp.source_maps((oh, ow))
    flat = thin_strokes(page.image, page.trace_alpha, params.steep_fade, params.ink_thin)
    paper = cv2.remap(flat, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    inside = cv2.remap(np.full(page.image.shape[:2], 255, np.uint8), mx, my, cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    alpha = (inside.astype(np.float32) / 255.0)[:, :, None]
    # a soft shadow of the page on the table
    shadow = cv2.GaussianBlur(inside, (0, 0), max(2.0, 0.01 * max(oh, ow))).astype(np.float32)[:, :, None] / 255.0
    table = _table(params, oh, ow).astype(np.float32) * (1.0 - 0.35 * shadow)
    sheet = paper.astype(np.float32)
    if folds and params.fold_shade > 0:
        sheet *= fold_light(folds, mx, my, (page.height, page.width), ppm)[:, :, None]
    composite = sheet * alpha + table * (1.0 - alpha)
    if params.shadow > 0:
        composite *= cast_shadow(params, oh, ow)[:, :, None]
    image = np.clip(composite, 0, 255).astype(np.uint8)
    if params.aug is not None:
        image = photometric(image, params.aug)
    leads = [_move_trace(t, warp) for t in page.leads]
    # trace thickness follows the local scale at the photo centre
    c = np.array([[ow / 2, oh / 2], [ow / 2 + 1, oh / 2], [ow / 2, oh / 2 + 1]])
    q = warp.forward(c)
    scale = 1.0 / math.sqrt(abs(_det2(q[1] - q[0], q[2] - q[0])))
    thick = max(1, int(round(float(page.meta.get("line_width_px", 1)) * scale)))
    mask, ids, soft = draw_label_masks([t.pixels for t in leads], oh, ow, thick)
    geom = replace(page.geometry, px_per_mm_x=ppm * scale, px_per_mm_y=float(page.geometry.px_per_mm_y) * scale)
    meta = dict(page.meta)
    meta.update(line_width_px=thick, look="photo", augment=True)
    out = replace(page, image=image, trace_mask=mask, lead_mask=ids, trace_alpha=soft, leads=leads, geometry=geom,
                  angle_deg=page.angle_deg + params.angle_deg, meta=meta)
    return PhotoPage(out, warp, params, ppm)


def grid_crossings_mm(page_hw: tuple[int, int], px_per_mm: float, origin_mm: tuple[float, float],
                      step_mm: float = 5.0, margin_mm: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """Major grid crossings of a flat rendered page: (N, 2) page px (x, y) and their (N, 2) paper mm."""
    h, w = page_hw
    # draw_grid puts line k at (origin + k) mm, majors where k % 5 == 0
    xs_mm = np.arange(origin_mm[0] % step_mm, w / px_per_mm - margin_mm, step_mm)
    ys_mm = np.arange(origin_mm[1] % step_mm, h / px_per_mm - margin_mm, step_mm)
    xs_mm, ys_mm = xs_mm[xs_mm > margin_mm], ys_mm[ys_mm > margin_mm]
    gx, gy = np.meshgrid(xs_mm, ys_mm)
    mm = np.stack([gx.ravel(), gy.ravel()], axis=1)
    return mm * px_per_mm, mm


def _det2(a: np.ndarray, b: np.ndarray) -> float:
    """Area of the parallelogram of two 2-D vectors (the local scale of a map squared)."""
    return float(a[0] * b[1] - a[1] * b[0])
