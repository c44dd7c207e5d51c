"""Photo-like pages with a known warp: a rendered page laid on a table and photographed.

`photograph_page(page, rng)` moves the page through a known map (perspective from a random camera pose,
page curl and folds as a smooth displacement, cut edges) onto a textured table, then lights and degrades
it (uneven light and shadow, crease shading, colour cast, blur, sensor noise, JPEG: the photometric part of
render/augment.py). Every label moves with it: the plotted pixels, lead and name boxes (as corners), the
trace masks (redrawn through the moved pixels), and the returned `warp` (a MeshWarp: photo px -> flat page
px) tells where any point of the paper (a grid crossing, say) went. Ranges are deliberately wider than any
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
        shading=float(rng.uniform(0.0, 0.7) * s),
        creases=int(rng.integers(0, 4)) if rng.random() < 0.4 * s else 0,
        temperature=float(rng.uniform(-3.0, 3.0) * s) if rng.random() < 0.6 else 0.0,
        contrast=float(np.exp(rng.uniform(-0.3, 0.1) * s)),
        brightness=float(rng.uniform(-30.0, 15.0) * s),
        gamma=float(np.exp(rng.uniform(-0.3, 0.3) * s)),
        blur_sigma_px=float(rng.uniform(0.0, 1.5) * s),
        noise_sigma=float(rng.uniform(0.0, 8.0) * s),
        jpeg_quality=int(rng.integers(45, 95)),
        scribbles=int(rng.integers(1, 4)) if rng.random() < 0.2 * s else 0,
        seed=int(rng.integers(0, 2**31 - 1)),
    )
    return PhotoParams(
        out_scale=float(rng.uniform(0.8, 1.25)),
        page_frac=float(rng.uniform(0.75, 1.05)),
        angle_deg=float(rng.uniform(-12.0, 12.0) * s),
        corner_jitter=tuple(float(v) for v in rng.uniform(-1.0, 1.0, size=8)),
        perspective_frac=float(rng.uniform(0.0, 0.12) * s),
        shift_frac=(float(rng.uniform(-0.05, 0.05)), float(rng.uniform(-0.05, 0.05))),
        curl_mm=float(rng.uniform(0.0, 3.0) * s),
        curl_cells=int(rng.integers(2, 5)),
        roll_mm=float(rng.uniform(-4.0, 4.0) * s) if rng.random() < 0.5 else 0.0,
        folds=int(rng.integers(1, 3)) if rng.random() < 0.3 * s else 0,
        table_rgb=tuple(int(v) for v in rng.integers(20, 200, size=3)),
        table_texture=float(rng.uniform(0.0, 0.6)),
        aug=aug,
        seed=int(rng.integers(0, 2**31 - 1)),
    )


def photo_warp(params: PhotoParams, page_hw: tuple[int, int], px_per_mm: float
               ) -> tuple[MeshWarp, tuple[int, int]]:
    """(map photo px -> page px, photo size (rows, cols))."""
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
    # smooth displacement of the paper (page px), defined on a mesh over the photo
    step = max(8.0, min(oh, ow) / 48.0)
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
    folds = [(rng.uniform(0, math.pi), rng.uniform(0.3, 0.7), rng.uniform(0.002, 0.01)) for _ in range(params.folds)]
    for theta, offset, kink_share in folds + list(params.fold_lines):
        # a fold: the paper on one side of a line is bent, shifting it slightly along the line's normal
        n = np.array([math.cos(theta), math.sin(theta)])
        dist = (u - 0.5) * n[0] + (v - 0.5) * n[1] - (offset - 0.5)
        disp += np.outer(np.maximum(dist, 0.0) * kink_share * max(pw, ph), n)
    mesh = disp.reshape(ny, nx, 2)
    return MeshWarp(hom, mesh, (0.0, 0.0), step), (oh, ow)


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
    warp, (oh, ow) = photo_warp(params, (page.height, page.width), ppm)
    mx, my = warp.source_maps((oh, ow))
    paper = cv2.remap(page.image, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    inside = cv2.remap(np.full(page.image.shape[:2], 255, np.uint8), mx, my, cv2.INTER_LINEAR,
                       borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    alpha = (inside.astype(np.float32) / 255.0)[:, :, None]
    # a soft shadow of the page on the table
    shadow = cv2.GaussianBlur(inside, (0, 0), max(2.0, 0.01 * max(oh, ow))).astype(np.float32)[:, :, None] / 255.0
    table = _table(params, oh, ow).astype(np.float32) * (1.0 - 0.35 * shadow)
    image = np.clip(paper.astype(np.float32) * alpha + table * (1.0 - alpha), 0, 255).astype(np.uint8)
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
