"""Page <-> working-size conversions and trace labels, shared by training, inference and the benchmark.

The working frame: the page scaled uniformly (aspect kept) so that it holds as many pixels as the
configured working size (2200x1700 -> exactly 1100x850), then padded at the bottom/right to a multiple of
the network's stride. Labels are the plotted trace polylines drawn at a fixed width in that frame, so a
synthetic page and an ECG-Image-Kit page get the same kind of label whatever their resolution.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

# Sub-pixel supersampling when drawing labels (polyline drawn at this multiple, then area-averaged).
_LABEL_SUPERSAMPLE = 4


def work_scale(page_hw: tuple[int, int], work_hw: tuple[int, int]) -> float:
    """Uniform factor page px -> working px that gives the page the working size's pixel count."""
    return math.sqrt((work_hw[0] * work_hw[1]) / float(page_hw[0] * page_hw[1]))


def scaled_shape(page_hw: tuple[int, int], scale: float) -> tuple[int, int]:
    return max(1, int(round(page_hw[0] * scale))), max(1, int(round(page_hw[1] * scale)))


def to_gray_ink(image: np.ndarray) -> np.ndarray:
    """uint8 RGB/gray page -> uint8 gray with ink bright (255 - luminance), so blank paper is ~0."""
    if image.ndim == 3:
        gray = cv2.cvtColor(np.ascontiguousarray(image[:, :, :3]), cv2.COLOR_RGB2GRAY)
    else:
        gray = image
    return 255 - gray.astype(np.uint8)


def resize_gray(gray: np.ndarray, shape_hw: tuple[int, int]) -> np.ndarray:
    """Area-averaging when shrinking (keeps thin traces), linear when enlarging."""
    h, w = shape_hw
    if (h, w) == gray.shape[:2]:
        return gray
    shrinking = h * w < gray.shape[0] * gray.shape[1]
    return cv2.resize(gray, (w, h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def flatten_illumination(ink: np.ndarray, kernel_px: int = 11) -> np.ndarray:
    """Ink-bright gray -> ink relative to the local paper brightness (shading, stains and photo lighting
    change the paper level; the trace is darker than its own surroundings). The paper level is the local
    maximum brightness over a window wider than any trace or grid line, smoothed."""
    paper = 255 - ink
    k = cv2.getStructuringElement(cv2.MORPH_RECT, (kernel_px, kernel_px))
    level = cv2.blur(cv2.dilate(paper, k), (2 * kernel_px + 1, 2 * kernel_px + 1)).astype(np.float32)
    rel = (level - paper.astype(np.float32)) / np.maximum(level, 48.0)
    return np.clip(rel * 255.0 + 0.5, 0, 255).astype(np.uint8)


def page_to_work(image: np.ndarray, work_hw: tuple[int, int], flatten: bool = False,
                 chroma: bool = False) -> tuple[np.ndarray, float]:
    """Page image -> (uint8 planes (P, h, w) in the working frame, unpadded; scale page px -> working px).

    Plane 0: ink-bright gray, divided by the local paper level when `flatten`; plane 1 (`chroma`):
    max - min of R, G, B (0 for gray images)."""
    scale = work_scale(image.shape[:2], work_hw)
    shape = scaled_shape(image.shape[:2], scale)
    gray = resize_gray(to_gray_ink(image), shape)
    planes = [flatten_illumination(gray) if flatten else gray]
    if chroma:
        if image.ndim == 3 and image.shape[2] >= 3:
            r, g, b = image[:, :, 0], image[:, :, 1], image[:, :, 2]
            # channel-wise (numpy's max/min over a last axis of 3 are slow on a page: a fifth of a second)
            c = (np.maximum(np.maximum(r, g), b) - np.minimum(np.minimum(r, g), b)).astype(np.uint8)
            planes.append(resize_gray(c, shape))
        else:
            planes.append(np.zeros(shape, np.uint8))
    return np.stack(planes), scale


def work_input(image: np.ndarray, config) -> tuple[np.ndarray, float]:
    """page_to_work with a SegmenterConfig's working size and input options."""
    return page_to_work(image, (config.work_height_px, config.work_width_px), config.flatten, config.chroma)


def pad_to_multiple(array: np.ndarray, multiple: int) -> np.ndarray:
    """Zero-pad the last two axes at the bottom/right up to multiples of `multiple`."""
    h, w = array.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return array
    pad = [(0, 0)] * (array.ndim - 2) + [(0, ph), (0, pw)]
    return np.pad(array, pad)


def map_to_page(prob_work: np.ndarray, page_hw: tuple[int, int]) -> np.ndarray:
    """Working-frame probability map (unpadded) -> float32 map in page pixels (linear interpolation)."""
    h, w = page_hw
    if prob_work.shape == (h, w):
        return prob_work.astype(np.float32, copy=False)
    return cv2.resize(prob_work.astype(np.float32, copy=False), (w, h), interpolation=cv2.INTER_LINEAR)


def draw_trace_label(polylines_rc: list[np.ndarray], shape_hw: tuple[int, int], scale: float,
                     width_px: float) -> np.ndarray:
    """bool (H, W) label: each polyline ([row, col] page points, NaN rows = breaks) scaled by `scale` and
    drawn `width_px` wide (in the output frame); a pixel is trace when at least half of it is covered."""
    s = _LABEL_SUPERSAMPLE
    h, w = shape_hw
    canvas = np.zeros((h * s, w * s), dtype=np.uint8)
    thickness = max(1, int(round(width_px * s)))
    # cv2 draws with integer coordinates in 1/2**shift units: keeps sub-pixel positions.
    shift = 4
    for pts in polylines_rc:
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        if len(pts) == 0:
            continue
        # pixel centres: page px (r, c) covers [r, r+1); supersampled centre = (r + 0.5) * scale * s - 0.5
        xy = np.stack([(pts[:, 1] + 0.5) * scale * s - 0.5, (pts[:, 0] + 0.5) * scale * s - 0.5], axis=1)
        finite = np.all(np.isfinite(xy), axis=1)
        for run in _finite_runs(finite):
            seg = np.round(xy[run] * (1 << shift)).astype(np.int64)
            seg = np.clip(seg, -(1 << 28), 1 << 28).astype(np.int32).reshape(-1, 1, 2)
            if len(seg) == 1:
                seg = np.concatenate([seg, seg])
            cv2.polylines(canvas, [seg], False, 255, thickness=thickness, lineType=cv2.LINE_8, shift=shift)
    cover = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA)  # exact s x s block mean
    return cover >= 128


def _finite_runs(finite: np.ndarray) -> list[slice]:
    runs, start = [], None
    for i, ok in enumerate(finite):
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            runs.append(slice(start, i))
            start = None
    if start is not None:
        runs.append(slice(start, len(finite)))
    return runs
