"""The page's darkness as the grid's readers see it, and which way round the page is (ink on paper, or bright lines
on a dark screen).

The darkness images differ in what they compute; each reader takes the one it was built on:
- `channel_darkness`: 255 - the darkest colour channel, so a red, green, blue or black grid shows alike (on a
  dark page, the brightest channel): the page frame's spectrum and tiles read it;
- `grey_darkness`: 255 - the grey level: the axis comb reader (`axis.py`) reads it;
- `line_darkness`: `channel_darkness` less its 20-mm background, with trace and print set to the background
  level (`without_traces`): the grid lines alone, which the residual (`residual.py`) and the row rulers
  (`ruler.py`) read;
- `tile_darkness`: `channel_darkness` less its background over two 5-mm periods, capped, trace and print
  removed: what the page frame's tiles (`tiles.py`) read.
"""
from __future__ import annotations

import cv2
import numpy as np

DARK_PAPER_LEVEL = 90  # median brightness below this: bright lines on a dark page
TRACE_LEVEL_FACTOR = 4.0  # darker than this times the page's 90th percentile: trace or print, not grid
TRACE_CAP_PERCENTILE = 99.5  # `tile_darkness` is capped at this percentile of itself


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


def channel_darkness(image_rgb: np.ndarray) -> np.ndarray:
    """float32 darkness in which grid lines of any colour show: a coloured line is darkest in the channel
    it absorbs, so 255 - (min over channels) keeps red, green, blue and black grids alike on light paper."""
    lo, hi = _channel_range(np.asarray(image_rgb))
    if _dark_ground(hi):
        return hi.astype(np.float32)  # a monitor-like page: bright lines on dark ground
    return 255.0 - lo.astype(np.float32)


def grey_darkness(image_rgb: np.ndarray) -> np.ndarray:
    """255 - grey level, float32 (H, W): grid lines and ink are positive on light paper."""
    grey = cv2.cvtColor(np.ascontiguousarray(image_rgb), cv2.COLOR_RGB2GRAY)
    return 255.0 - grey.astype(np.float32)


def without_traces(dark: np.ndarray) -> np.ndarray:
    """The analysis darkness (background removed) with the trace and print set to the background level: any
    pixel TRACE_LEVEL_FACTOR times darker than the page's 90th percentile (a level grid lines reach, traces
    on light paper and bright traces on a monitor page stand far above it), and its 8 neighbours (the
    anti-aliased edge). Capping alone left such traces as lines as strong as the grid's: a row's baseline
    crossing a tile read as its major line."""
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


def line_darkness(image_rgb: np.ndarray, px_per_mm: float) -> np.ndarray:
    """The grid lines' darkness: `channel_darkness` less its background (area means over 20 mm), negatives
    clipped, trace and print removed (`without_traces`)."""
    dark = channel_darkness(image_rgb)
    return without_traces(np.clip(dark - local_mean(dark, max(4, int(20.0 * px_per_mm))), 0, None))


def tile_darkness(image_rgb: np.ndarray, period_px: float) -> np.ndarray:
    """The darkness the tiles read, on an image whose 5-mm period is period_px: `channel_darkness` less its
    background (area means over two periods), capped at TRACE_CAP_PERCENTILE (the trace and print are darker
    than grid lines: capped, they no longer outweigh the grid in the tiles they cross), trace and print
    removed (`without_traces`)."""
    dark = channel_darkness(image_rgb)
    dark = dark - local_mean(dark, int(2 * period_px))
    dark = np.minimum(dark, np.percentile(dark, TRACE_CAP_PERCENTILE))
    return without_traces(dark)
