"""Page tilt: a robust fit over the detected lead names, and a classical estimate from grid and trace lines.

Angles follow paperecg.geometry: degrees, positive = the page content is turned counter-clockwise on screen.
Under that turn a horizontal line rises to the right (dy/dx = -tan a) and a vertical line leans its top to the
left (dx/dy = tan a), which is what the pair formulas below measure.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..geometry import LeadNameBox


@dataclass
class TiltEstimate:
    angle_deg: float
    confidence: float  # 0..1: how much to trust angle_deg
    method: str  # "names", "lines", "names+lines" or "none"
    num_pairs: int = 0  # name pairs (names) or 0 (lines)
    spread_deg: float = float("nan")  # robust spread of the individual estimates


NO_TILT = TiltEstimate(0.0, 0.0, "none")


# --- from lead names -------------------------------------------------------------------------------------

def _anchor_points(boxes: list[LeadNameBox]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per box: centre (x, y), left edge x, and height. Names in a row share the centre height; names in a
    column are left-aligned, so the box's left edge (its leftmost rotated corner) is the column anchor."""
    cx = np.array([b.box.cx for b in boxes])
    cy = np.array([b.box.cy for b in boxes])
    x0 = np.array([b.box.x0 for b in boxes])
    h = np.array([max(b.box.height, 1.0) for b in boxes])
    return np.stack([cx, cy], 1), x0, h


def derotate(x: np.ndarray, y: np.ndarray, angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates in the frame the page had before it was turned by angle_deg (about the origin)."""
    a = math.radians(angle_deg)
    return x * math.cos(a) - y * math.sin(a), x * math.sin(a) + y * math.cos(a)


def _aligned_pairs(pts: np.ndarray, x0: np.ndarray, h_px: float, angle_deg: float, tol: float,
                   min_sep: float) -> tuple[np.ndarray, np.ndarray]:
    """Boolean (n, n) masks (i<j) of row-mates and column-mates once the page is turned back by angle_deg."""
    xr, yr = derotate(pts[:, 0], pts[:, 1], angle_deg)
    x0r, _ = derotate(x0, pts[:, 1], angle_deg)
    dx = np.abs(xr[:, None] - xr[None, :])
    dy = np.abs(yr[:, None] - yr[None, :])
    dx0 = np.abs(x0r[:, None] - x0r[None, :])
    upper = np.triu(np.ones_like(dx, dtype=bool), 1)
    rows = upper & (dy < tol * h_px) & (dx > min_sep * h_px)
    cols = upper & (dx0 < tol * h_px) & (dy > min_sep * h_px)
    return rows, cols


def _pair_angles(pts: np.ndarray, x0: np.ndarray, rows: np.ndarray, cols: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Angle (deg) and length (px) of every row pair and column pair."""
    i, j = np.nonzero(rows)
    dx = pts[j, 0] - pts[i, 0]
    dy = pts[j, 1] - pts[i, 1]
    sgn = np.where(dx < 0, -1.0, 1.0)  # orient each row pair left to right
    a_rows = np.degrees(np.arctan2(-dy * sgn, dx * sgn))
    l_rows = np.hypot(dx, dy)
    i, j = np.nonzero(cols)
    dxc = x0[j] - x0[i]
    dyc = pts[j, 1] - pts[i, 1]
    sgn = np.where(dyc < 0, -1.0, 1.0)  # orient each column pair top to bottom
    a_cols = np.degrees(np.arctan2(dxc * sgn, dyc * sgn))
    l_cols = np.hypot(dxc, dyc)
    return np.concatenate([a_rows, a_cols]), np.concatenate([l_rows, l_cols])


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    v, w = values[order], weights[order]
    c = np.cumsum(w)
    return float(v[np.searchsorted(c, 0.5 * c[-1])])


def fit_tilt_from_boxes(boxes: list[LeadNameBox], max_angle_deg: float = 15.0, min_score: float = 0.0,
                        coarse_step_deg: float = 0.25) -> TiltEstimate:
    """Tilt from every pair of names sharing a row (centres) or a column (left edges).

    A coarse search picks the angle under which most names line up (this is what groups names into rows
    and columns when the tilt is large); the answer is the length-weighted median of the individual pair
    angles, so a few false or misplaced detections do not move it. Returns NO_TILT-like estimates
    (confidence 0) when fewer than one usable pair exists.
    """
    boxes = [b for b in boxes if b.score >= min_score]
    if len(boxes) < 2:
        return TiltEstimate(0.0, 0.0, "names", 0)
    pts, x0, h = _anchor_points(boxes)
    h_px = float(np.median(h))
    best_angle, best_score = 0.0, -1.0
    for angle in np.arange(-max_angle_deg, max_angle_deg + 1e-9, coarse_step_deg):
        rows, cols = _aligned_pairs(pts, x0, h_px, angle, tol=0.4, min_sep=1.5)
        score = rows.sum() + cols.sum() - 1e-3 * abs(angle)  # prefer the smaller angle on ties
        if score > best_score:
            best_angle, best_score = float(angle), float(score)
    angle = best_angle
    angles = lengths = np.zeros(0)
    for tol in (0.4, 0.25):  # refine: regroup under the improved angle with a tighter tolerance
        rows, cols = _aligned_pairs(pts, x0, h_px, angle, tol=tol, min_sep=1.5)
        a, l = _pair_angles(pts, x0, rows, cols)
        if len(a) == 0:
            break
        angles, lengths = a, l
        angle = weighted_median(angles, lengths)
    if len(angles) == 0:
        return TiltEstimate(0.0, 0.0, "names", 0)
    # spread: weighted median absolute deviation; long pairs dominate both the answer and the spread
    spread = weighted_median(np.abs(angles - angle), lengths)
    n = len(angles)
    confidence = (n / (n + 2.0)) * math.exp(-spread / 0.5)
    return TiltEstimate(float(angle), float(confidence), "names", n, float(spread))


# --- from grid and trace lines ---------------------------------------------------------------------------

def _gray_small(image_rgb: np.ndarray, long_side_px: int) -> tuple[np.ndarray, float]:
    import cv2

    img = np.asarray(image_rgb)
    if img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8:
        # the channel mean, bit for bit as float32 mean(axis=2) gives it (integer sums are exact), without a
        # float copy of every channel (numpy's reductions over a last axis of 3 are slow on a large photo)
        total = cv2.add(cv2.add(img[..., 0], img[..., 1], dtype=cv2.CV_16U), img[..., 2], dtype=cv2.CV_16U)
        gray = total.astype(np.float32) / np.float32(3.0)
    else:
        gray = img.astype(np.float32).mean(axis=2) if img.ndim == 3 else img.astype(np.float32)
    scale = min(1.0, long_side_px / max(gray.shape))
    if scale < 1.0:
        gray = cv2.resize(gray, (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale))),
                          interpolation=cv2.INTER_AREA)
    return gray, scale


def _line_pixels(gray: np.ndarray, max_points: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of pixels on horizontal-ish lines (strong d/dy) and vertical-ish lines (strong d/dx),
    with weights; thin dark lines on a light page give the strongest, sharpest responses."""
    import cv2

    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, ksize=3)
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)
    out = []
    for g, other in ((np.abs(gy), np.abs(gx)), (np.abs(gx), np.abs(gy))):
        mask = (g > 2.0 * other) & (g > np.percentile(g, 90))
        ys, xs = np.nonzero(mask)
        w = g[ys, xs]
        keep = rng.permutation(len(ys))[:max_points]  # random order: any prefix is a fair subsample
        ys, xs, w = ys[keep], xs[keep], w[keep]
        out.append((xs.astype(np.float64), ys.astype(np.float64), w.astype(np.float64)))
    return np.stack(out[0]), np.stack(out[1])  # each (3, n): x, y, weight


def _profile_sharpness(coord_a: np.ndarray, coord_b: np.ndarray, w: np.ndarray, angle_deg: float,
                       bin_px: float, horizontal: bool) -> float:
    """Sum of squared projection histogram: high when lines, turned back by angle_deg, fall in few bins."""
    if len(w) == 0:
        return 0.0
    x, y = derotate(coord_a, coord_b, angle_deg)
    v = y if horizontal else x
    idx = np.floor((v - v.min()) / bin_px).astype(np.int64)
    hist = np.bincount(idx, weights=w)
    return float(np.dot(hist, hist)) / float(w.sum()) ** 2 * bin_px


def estimate_tilt_from_lines(image_rgb: np.ndarray, max_angle_deg: float = 15.0, long_side_px: int = 800,
                             max_points: int = 60000, seed: int = 0) -> TiltEstimate:
    """Classical tilt from projection profiles of line pixels (grid lines, traces, page edges).

    Coarse-to-fine search of the angle that makes horizontal-line pixels fall into the fewest rows and
    vertical-line pixels into the fewest columns. Confidence from how much the best angle stands out.
    """
    gray, _ = _gray_small(image_rgb, long_side_px)
    rng = np.random.default_rng(seed)
    hor, ver = _line_pixels(gray, max_points, rng)
    if hor.shape[1] + ver.shape[1] < 50:
        return TiltEstimate(0.0, 0.0, "lines")
    cx, cy = gray.shape[1] / 2.0, gray.shape[0] / 2.0
    hor[0] -= cx
    hor[1] -= cy
    ver[0] -= cx
    ver[1] -= cy

    def score(angle: float, bin_px: float, n: int) -> float:
        return (_profile_sharpness(hor[0, :n], hor[1, :n], hor[2, :n], angle, bin_px, True)
                + _profile_sharpness(ver[0, :n], ver[1, :n], ver[2, :n], angle, bin_px, False))

    center, half, step = 0.0, max_angle_deg, 0.5
    curve = None
    # the wide coarse search needs only a share of the points; the fine steps use them all
    for bin_px, next_step, n in ((6.0, 0.1, max_points // 4), (2.0, 0.02, max_points), (1.0, None, max_points)):
        grid = np.arange(center - half, center + half + 1e-9, step)
        values = np.array([score(a, bin_px, n) for a in grid])
        k = int(np.argmax(values))
        if curve is None:
            curve = values
        center = float(grid[k])
        if 0 < k < len(grid) - 1:  # parabolic peak between the grid points
            y0, y1, y2 = values[k - 1], values[k], values[k + 1]
            denom = y0 - 2 * y1 + y2
            if denom < 0:
                center += 0.5 * step * (y0 - y2) / denom
        if next_step is None:
            break
        half, step = 2 * step, next_step
    # confidence: peak of the coarse curve against its typical level
    base = float(np.median(curve))
    contrast = (float(curve.max()) - base) / max(base, 1e-12)
    confidence = float(1.0 - math.exp(-contrast / 0.5))
    return TiltEstimate(float(center), confidence, "lines")


# --- combined ----------------------------------------------------------------------------------------------

def estimate_tilt(boxes: list[LeadNameBox] | None, image_rgb: np.ndarray | None,
                  max_angle_deg: float = 15.0, min_pairs: int = 3, agree_deg: float = 0.5) -> TiltEstimate:
    """Tilt from the lead names when they give enough pairs, cross-checked with the line estimate.

    Names and lines agreeing raises the confidence and takes the finer line angle; disagreeing, the more confident one wins with its
    confidence lowered. Too few names: the line estimate alone (the fallback).
    """
    names = fit_tilt_from_boxes(boxes or [], max_angle_deg) if boxes else TiltEstimate(0.0, 0.0, "names")
    lines = estimate_tilt_from_lines(image_rgb, max_angle_deg) if image_rgb is not None else None
    if names.num_pairs < min_pairs or names.confidence <= 0:
        return lines if lines is not None else names
    if lines is None:
        return names
    if abs(names.angle_deg - lines.angle_deg) <= agree_deg:
        # agreement: the page-long lines measure the angle more precisely (hundredths of a degree) than
        # name pairs (tenths); the names have confirmed which line peak is the page's
        conf = 1.0 - (1.0 - names.confidence) * (1.0 - lines.confidence)
        return TiltEstimate(lines.angle_deg, conf, "names+lines", names.num_pairs, names.spread_deg)
    best = names if names.confidence >= lines.confidence else lines
    return TiltEstimate(best.angle_deg, 0.5 * best.confidence, best.method, best.num_pairs, best.spread_deg)
