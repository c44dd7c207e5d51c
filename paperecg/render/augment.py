"""Seeded augmentations of a rendered page; the image and every label move together.

Geometry (rotation, small perspective, scale, crop/pad) is one homography applied to the image, every
plotted pixel and every box corner; the masks are then redrawn through the moved pixels. Photometric
effects (shading, crumpled-paper wrinkles, creases, stains, pen scribbles, colour temperature, contrast,
blur, noise, JPEG, scan/photo looks) touch the image only, because they do not move the ink.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np

from ..geometry import Box
from .labels import LeadTrace, RenderedPage, box_corners
from .page import draw_label_masks


@dataclass
class AugParams:
    angle_deg: float = 0.0  # counter-clockwise positive (geometry.rotate_points convention)
    scale: float = 1.0
    shift_frac: tuple[float, float] = (0.0, 0.0)  # (x, y) translation as a fraction of (width, height)
    perspective_frac: float = 0.0  # max corner displacement, fraction of the page diagonal
    corner_jitter: tuple[float, ...] = (0.0,) * 8  # unit-range jitter of the four corners (x, y)
    border_rgb: tuple[int, int, int] = (255, 255, 255)  # what shows where the page left the frame
    look: str = "clean"  # 'clean', 'scan' or 'photo'
    shading: float = 0.0  # strength of low-frequency illumination change (0..1)
    wrinkles: float = 0.0  # strength of wrinkle texture (0..1)
    creases: int = 0  # number of straight fold lines
    stains: int = 0  # tinted blobs
    scribbles: int = 0  # pen strokes / handwritten words (not traces)
    temperature: float = 0.0  # -3 (strong blue cast) .. 3 (strong orange cast)
    contrast: float = 1.0
    brightness: float = 0.0  # added to 0..255 levels
    gamma: float = 1.0
    black_level: float = 0.0  # grey level black ink comes out at (a phone photo's ink is dark grey, 0..255)
    blur_sigma_px: float = 0.0
    motion_px: float = 0.0  # camera shake: blur along one direction, length in px
    motion_deg: float = 0.0  # its direction (0: along the rows)
    noise_sigma: float = 0.0  # sensor noise, 0..255 levels
    jpeg_quality: int = 0  # 0 = no JPEG round trip
    seed: int = 0  # for the texture fields


def sample_aug_params(rng: np.random.Generator, strength: float = 1.0, rotate_max_deg: float = 10.0) -> AugParams:
    """Random augmentation settings; strength 0 gives the identity, 1 the full training range."""
    s = float(np.clip(strength, 0.0, 2.0))
    look = ["clean", "scan", "photo"][int(rng.choice(3, p=[0.3, 0.4, 0.3]))]
    photo = look == "photo"
    angle = float(rng.uniform(-rotate_max_deg, rotate_max_deg)) * min(1.0, s) if rng.random() < 0.8 else 0.0
    border = (255, 255, 255)
    if photo:
        border = tuple(int(v) for v in rng.integers(20, 200, size=3))
    # shrink turned pages most of the way to the size that keeps their corners in the frame
    a = math.radians(abs(angle))
    fit = 1.0 / (math.cos(a) + math.sin(a) * 0.78)
    return AugParams(
        angle_deg=angle,
        scale=float(np.exp(rng.uniform(-0.08, 0.05) * s) * fit ** 0.7),
        shift_frac=(float(rng.uniform(-0.03, 0.03) * s), float(rng.uniform(-0.03, 0.03) * s)),
        perspective_frac=float(rng.uniform(0.0, 0.02) * s) if photo else 0.0,
        corner_jitter=tuple(float(v) for v in rng.uniform(-1.0, 1.0, size=8)),
        border_rgb=border,
        look=look,
        shading=float(rng.uniform(0.0, 0.5 if photo else 0.2) * s),
        # ECG-Image-Kit's distorted pages: deep crumple shadows and up to ~10 crease lines
        wrinkles=float(rng.uniform(0.0, 1.0) * s) if rng.random() < 0.45 else 0.0,
        creases=int(rng.integers(1, 12)) if rng.random() < 0.35 * min(1.0, s) else 0,
        stains=int(rng.integers(1, 3)) if rng.random() < 0.15 * min(1.0, s) else 0,
        scribbles=int(rng.integers(1, 5)) if rng.random() < 0.25 * min(1.0, s) else 0,
        # |t| > 1 reaches ECG-Image-Kit's strong blue and orange casts
        temperature=float(rng.uniform(-3.0, 3.0) * s) if rng.random() < 0.5 else 0.0,
        contrast=float(np.exp(rng.uniform(-0.25, 0.15) * s)),
        brightness=float(rng.uniform(-25.0, 15.0) * s),
        gamma=float(np.exp(rng.uniform(-0.3, 0.3) * s)),
        blur_sigma_px=float(rng.uniform(0.0, 1.3 if photo else 0.8) * s) if rng.random() < 0.6 else 0.0,
        noise_sigma=float(rng.uniform(0.0, 8.0 if photo else 4.0) * s),
        jpeg_quality=int(rng.integers(35, 96)) if rng.random() < 0.6 * min(1.0, s) else 0,
        seed=int(rng.integers(0, 2**31 - 1)),
    )


# --- geometry -------------------------------------------------------------------------------------------

def homography(params: AugParams, width: int, height: int) -> np.ndarray:
    """3x3 matrix mapping source (x, y) to output (x, y); pixel centres at integers."""
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    a = math.radians(params.angle_deg)
    cos, sin = math.cos(a) * params.scale, math.sin(a) * params.scale
    # counter-clockwise on screen with y down: x' = x cos + y sin, y' = -x sin + y cos (rotate_points)
    rot = np.array([[cos, sin, 0.0], [-sin, cos, 0.0], [0.0, 0.0, 1.0]])
    to_origin = np.array([[1.0, 0.0, -cx], [0.0, 1.0, -cy], [0.0, 0.0, 1.0]])
    back = np.array([[1.0, 0.0, cx + params.shift_frac[0] * width], [0.0, 1.0, cy + params.shift_frac[1] * height],
                     [0.0, 0.0, 1.0]])
    m = back @ rot @ to_origin
    if params.perspective_frac > 0:
        diag = math.hypot(width, height)
        src = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], np.float32)
        dst = src + np.asarray(params.corner_jitter, np.float32).reshape(4, 2) * params.perspective_frac * diag
        m = m @ cv2.getPerspectiveTransform(src, dst).astype(np.float64)
    return m


def transform_rows_cols(rows_cols: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Apply homography `m` to [row, col] points (NaN rows stay NaN)."""
    pts = np.asarray(rows_cols, dtype=np.float64).reshape(-1, 2)
    xyw = np.stack([pts[:, 1], pts[:, 0], np.ones(len(pts))], axis=0)
    out = m @ xyw
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.stack([out[1] / out[2], out[0] / out[2]], axis=1)


def _transform_trace(t: LeadTrace, m: np.ndarray) -> LeadTrace:
    pix = transform_rows_cols(t.pixels, m)
    lead_c = transform_rows_cols(t.lead_corners if t.lead_corners is not None else box_corners(t.lead_box), m)
    text_c = None
    if t.text_box is not None:
        text_c = transform_rows_cols(t.text_corners if t.text_corners is not None else box_corners(t.text_box), m)
    # baseline at the segment's first column, carried through the warp
    first = t.pixels[np.all(np.isfinite(t.pixels), axis=1)]
    x_start = float(first[0, 1]) if len(first) else t.lead_box.x0
    base = float(transform_rows_cols(np.array([[t.baseline_row, x_start]]), m)[0, 0])
    return replace(t, pixels=pix, lead_box=Box.from_points(lead_c), lead_corners=lead_c,
                   text_box=Box.from_points(text_c) if text_c is not None else None, text_corners=text_c,
                   baseline_row=base)


def warp_page(page: RenderedPage, m: np.ndarray, border_rgb=(255, 255, 255)) -> RenderedPage:
    """Apply homography `m` to the page image and all labels (output frame = input frame size).

    Only the image is resampled; the masks are redrawn through the warped plotted pixels (a homography
    keeps straight segments straight), which is exact and cheaper than warping three more layers.
    """
    h, w = page.height, page.width
    border = tuple(int(v) for v in border_rgb)
    if np.allclose(m[2], [0.0, 0.0, 1.0]):  # affine: the cheaper warp
        image = cv2.warpAffine(page.image, m[:2], (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=border)
    else:
        image = cv2.warpPerspective(page.image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                    borderValue=border)
    leads = [_transform_trace(t, m) for t in page.leads]
    # line width grows with the local scale of the warp (its Jacobian determinant at the centre)
    centre = np.array([[(h - 1) / 2.0, (w - 1) / 2.0]])
    d = transform_rows_cols(np.vstack([centre, centre + [[0, 1]], centre + [[1, 0]]]), m)
    (r1, c1), (r2, c2) = d[1] - d[0], d[2] - d[0]
    scale = math.sqrt(abs(r1 * c2 - c1 * r2))
    thick = max(1, int(round(float(page.meta.get("line_width_px", 1)) * scale)))
    mask, ids, alpha = draw_label_masks([t.pixels for t in leads], h, w, thick)
    # the page's scale changes with the warp (rotation keeps it): px per mm measured at the centre
    geom = replace(page.geometry, px_per_mm_x=page.geometry.px_per_mm_x * scale,
                   px_per_mm_y=page.geometry.px_per_mm_y * scale)
    meta = dict(page.meta)
    meta["line_width_px"] = thick
    return replace(page, image=image, trace_mask=mask, lead_mask=ids, trace_alpha=alpha, leads=leads,
                   geometry=geom, meta=meta)


# --- photometric ----------------------------------------------------------------------------------------

def _smooth_field(rng: np.random.Generator, h: int, w: int, cells: int, faceted: bool = False) -> np.ndarray:
    """Random field in [-1, 1] from a coarse grid: bicubic (smooth) or bilinear (flat facets with sharp
    edges between them, like crumpled paper)."""
    gh, gw = max(2, cells), max(2, int(round(cells * w / h)))
    coarse = rng.uniform(-1.0, 1.0, size=(gh, gw)).astype(np.float32)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR if faceted else cv2.INTER_CUBIC)


def _facets(rng: np.random.Generator, h: int, w: int, count: int) -> np.ndarray:
    """Piecewise-constant field: each Voronoi cell of `count` random points has a random value in [-1, 1].
    (OpenCV's labelled distance transform gives every pixel its nearest seed.)"""
    seeds = np.full((h, w), 255, np.uint8)
    rows = rng.integers(0, h, size=count)
    cols = rng.integers(0, w, size=count)
    seeds[rows, cols] = 0
    _, labels = cv2.distanceTransformWithLabels(seeds, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    values = rng.uniform(-1.0, 1.0, size=int(labels.max()) + 1).astype(np.float32)
    return values[labels]


def illumination(params: AugParams, h: int, w: int) -> np.ndarray:
    """Multiplicative light field, uint8 (H, W, 3) in units of 1/128, with shading, wrinkles, creases, stains
    and photo vignetting; computed at quarter resolution (it is smooth) and upsampled."""
    rng = np.random.default_rng(params.seed)
    sh, sw = max(8, h // 4), max(8, w // 4)
    light = np.ones((sh, sw), np.float32)
    if params.shading > 0:
        yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
        angle = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(angle) * (xx / sw - 0.5) + np.sin(angle) * (yy / sh - 0.5))
        light *= 1.0 + params.shading * (0.6 * ramp + 0.25 * _smooth_field(rng, sh, sw, 3))
        if params.look == "photo":
            r2 = ((xx / sw - 0.5) ** 2 + (yy / sh - 0.5) ** 2) / 0.5
            light *= 1.0 - params.shading * 0.5 * r2
    if params.wrinkles > 0:
        # crumpled paper: flat facets (Voronoi cells of random points) with random tilts, lit from one
        # side, so each facet gets its own brightness and the folds between them are sharp
        relief = np.zeros((sh, sw), np.float32)
        for count, weight in ((int(rng.integers(20, 60)), 1.0), (int(rng.integers(80, 200)), 0.5)):
            # facets are large: find them at half this resolution
            relief += weight * cv2.resize(_facets(rng, sh // 2, sw // 2, count), (sw, sh),
                                          interpolation=cv2.INTER_LINEAR)
        relief = cv2.GaussianBlur(relief, (0, 0), 1.0)
        relief /= max(1e-6, float(np.percentile(np.abs(relief), 99)))
        light *= 1.0 + 0.4 * params.wrinkles * np.clip(relief, -1.5, 1.5)
    for _ in range(params.creases):
        horizontal = rng.random() < 0.5
        pos = rng.uniform(0.15, 0.85)
        width = rng.uniform(1.0, 4.0)
        # folds print dark or, lit from the side, bright (negative depth)
        depth = rng.uniform(0.05, 0.2) * (1.0 if rng.random() < 0.5 else -1.5)
        coord = (np.arange(sh, dtype=np.float32)[:, None] / sh if horizontal
                 else np.arange(sw, dtype=np.float32)[None, :] / sw)
        extent = sh if horizontal else sw
        dist = (coord - pos) * extent
        # a dark fold line with a bright flank
        light = light * (1.0 - depth * np.exp(-0.5 * (dist / width) ** 2)
                         + 0.5 * depth * np.exp(-0.5 * ((dist - 2.5 * width) / (2 * width)) ** 2))
    light3 = np.repeat(light[:, :, None], 3, axis=2)
    for _ in range(params.stains):
        # a tinted blob with a darker rim (dried liquid), multiplicative
        cy, cx = rng.uniform(0, sh), rng.uniform(0, sw)
        radius = rng.uniform(0.04, 0.15) * min(sh, sw)
        yy, xx = np.ogrid[0:sh, 0:sw]
        wobble = 1.0 + 0.25 * _smooth_field(rng, sh, sw, 6)
        d = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) / (radius * wobble)
        tint = np.array([rng.uniform(0.75, 0.95), rng.uniform(0.6, 0.85), rng.uniform(0.4, 0.7)], np.float32)
        strength = rng.uniform(0.3, 0.9)
        inside = np.clip(1.0 - d, 0.0, 1.0) ** 0.3 * 0.5 + np.exp(-((d - 1.0) / 0.06) ** 2)
        light3 *= 1.0 - strength * np.clip(inside, 0.0, 1.0)[:, :, None] * (1.0 - tint)[None, None, :]
    # fixed point (x128) so cv2.multiply can scale uint8 pixels with saturation
    light_u8 = np.clip(light3 * 128.0, 0, 255).astype(np.uint8)
    return cv2.resize(light_u8, (w, h), interpolation=cv2.INTER_LINEAR)


_SCRIBBLE_WORDS = ("Confirmed", "Dr.", "reviewed", "sinus rhythm", "no change", "OK", "rpt", "urgent", "cf. prior",
                   "?MI", "see notes", "ward 4", "x", "12/03")


def draw_distractors(image: np.ndarray, params: AugParams) -> None:
    """Pen strokes and handwriting-like words that are not traces (the segmenter must ignore them)."""
    if params.scribbles <= 0:
        return
    rng = np.random.default_rng(params.seed + 1)
    h, w = image.shape[:2]
    inks = [(20, 40, 160), (10, 10, 10), (150, 20, 20), (30, 30, 90)]
    for _ in range(params.scribbles):
        ink = inks[int(rng.integers(len(inks)))]
        if rng.random() < 0.5:
            # a wobbly pen stroke: a random walk smoothed into a curve
            n = int(rng.integers(4, 12))
            start = np.array([rng.uniform(0, h), rng.uniform(0, w)])
            steps = rng.normal(0, 0.04 * min(h, w), size=(n, 2)).cumsum(axis=0)
            pts = start + steps
            t = np.linspace(0, n - 1, n * 8)
            curve = np.stack([np.interp(t, np.arange(n), pts[:, 0]), np.interp(t, np.arange(n), pts[:, 1])], 1)
            curve = cv2.GaussianBlur(curve.astype(np.float32).reshape(-1, 1, 2), (1, 9), 0).reshape(-1, 2)
            xy = np.round(curve[:, ::-1] * 16).astype(np.int32)
            cv2.polylines(image, [xy], False, ink, int(rng.integers(1, 4)), cv2.LINE_AA, 4)
        else:
            word = _SCRIBBLE_WORDS[int(rng.integers(len(_SCRIBBLE_WORDS)))]
            font = cv2.FONT_HERSHEY_SCRIPT_SIMPLEX if rng.random() < 0.7 else cv2.FONT_HERSHEY_SCRIPT_COMPLEX
            scale = rng.uniform(0.8, 2.2) * h / 1700
            org = (int(rng.uniform(0, 0.85 * w)), int(rng.uniform(0.05 * h, h)))
            cv2.putText(image, word, org, font, scale, ink, max(1, int(round(2 * h / 1700))), cv2.LINE_AA)


def tone_lut(params: AugParams) -> np.ndarray:
    """Per-channel 256-entry table (256, 1, 3) uint8: colour temperature, contrast, brightness, gamma."""
    gains = np.array([1.0 + 0.08 * params.temperature, 1.0 + 0.01 * params.temperature,
                      1.0 - 0.10 * params.temperature])
    if params.look == "scan":
        gains = gains * 1.02  # scanners wash the paper out a little
    v = np.arange(256, dtype=np.float64)[:, None] * gains[None, :]
    v = (v - 128.0) * params.contrast + 128.0 + params.brightness
    v = params.black_level + v * (1.0 - params.black_level / 255.0)
    v = 255.0 * (np.clip(v, 0.0, 255.0) / 255.0) ** params.gamma
    return np.clip(np.round(v), 0, 255).astype(np.uint8).reshape(256, 1, 3)


def motion_kernel(length_px: float, angle_deg: float) -> np.ndarray:
    """Normalised kernel of a straight motion of `length_px` at `angle_deg`, centred (points along the
    segment splatted bilinearly, so the blurred image does not move against its labels)."""
    half = 0.5 * length_px
    r = int(math.ceil(half)) + 1
    k = np.zeros((2 * r + 1, 2 * r + 1), np.float64)
    t = np.linspace(-half, half, max(2, int(8 * length_px)))
    x = r + t * math.cos(math.radians(angle_deg))
    y = r + t * math.sin(math.radians(angle_deg))
    x0, y0 = np.floor(x).astype(int), np.floor(y).astype(int)
    fx, fy = x - x0, y - y0
    for dy, dx, wgt in ((0, 0, (1 - fx) * (1 - fy)), (0, 1, fx * (1 - fy)), (1, 0, (1 - fx) * fy), (1, 1, fx * fy)):
        np.add.at(k, (y0 + dy, x0 + dx), wgt)
    return (k / k.sum()).astype(np.float32)


def photometric(image: np.ndarray, params: AugParams) -> np.ndarray:
    """Light, colour, contrast, blur, noise and JPEG; uint8 RGB in, uint8 RGB out.

    Kept in uint8 OpenCV calls (saturating, vectorised): float numpy passes over a 2200x1700x3 page
    cost ~0.1 s each.
    """
    h, w = image.shape[:2]
    out = image.copy()
    draw_distractors(out, params)
    out = cv2.multiply(out, illumination(params, h, w), scale=1.0 / 128.0, dtype=cv2.CV_8U)
    out = cv2.LUT(out, tone_lut(params))
    if params.blur_sigma_px > 0.05:
        out = cv2.GaussianBlur(out, (0, 0), params.blur_sigma_px)
    if params.motion_px >= 1.0:
        out = cv2.filter2D(out, -1, motion_kernel(params.motion_px, params.motion_deg))
    if params.noise_sigma > 0.1:
        cv2.setRNGSeed(params.seed % (2**31 - 1))
        noise = np.empty((h, w), np.int16)
        cv2.randn(noise, 0, params.noise_sigma)
        out = cv2.add(out, cv2.merge([noise] * 3), dtype=cv2.CV_8U)
    if params.jpeg_quality > 0:
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(out, cv2.COLOR_RGB2BGR),
                               [cv2.IMWRITE_JPEG_QUALITY, int(params.jpeg_quality)])
        if ok:
            out = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return out


def apply_augmentation(page: RenderedPage, params: AugParams) -> RenderedPage:
    """Warp (if any geometry) then photometric effects; angle_deg accumulates."""
    h, w = page.height, page.width
    geometric = (params.angle_deg != 0.0 or params.scale != 1.0 or params.shift_frac != (0.0, 0.0)
                 or params.perspective_frac > 0)
    out = warp_page(page, homography(params, w, h), params.border_rgb) if geometric else replace(page)
    image = photometric(out.image, params)
    meta = dict(page.meta)
    meta["augment"] = True
    meta["look"] = params.look
    return replace(out, image=image, angle_deg=page.angle_deg + params.angle_deg, meta=meta)


def augment_page(page: RenderedPage, rng: np.random.Generator | int | None, strength: float = 1.0,
                 rotate_max_deg: float = 10.0) -> RenderedPage:
    """Random, seeded augmentation of `page` (image and labels transformed consistently)."""
    rng = np.random.default_rng(rng)
    return apply_augmentation(page, sample_aug_params(rng, strength, rotate_max_deg))
