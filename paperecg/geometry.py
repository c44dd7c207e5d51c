"""Plain geometry shared by every stage: page scale, boxes and rotations in page pixels.

Conventions: images are arrays indexed [row, col]; x = col, y = row; angles in degrees, positive =
counter-clockwise as seen on screen (the convention of scipy.ndimage.rotate and PIL.Image.rotate).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MM_PER_INCH = 25.4
CANONICAL_DPI = 200.0  # the canonical page (rectify/frame.py): the scale the segmenter and the extractor read
CANONICAL_PX_PER_MM = CANONICAL_DPI / MM_PER_INCH  # 7.874
PAPER_SPEED_MM_PER_S = 25.0
GAIN_MM_PER_MV = 10.0
MAJOR_MM = 5.0  # the printed grid's major lines: every 5 mm (minor lines every 1 mm)
LETTER_LONG_MM = 11.0 * MM_PER_INCH  # 279.4 mm: the long side of a US-letter printout


@dataclass
class PageGeometry:
    """Scale of a page: pixels per millimetre along x (time) and y (amplitude)."""

    px_per_mm_x: float
    px_per_mm_y: float
    mm_per_s: float = PAPER_SPEED_MM_PER_S
    mm_per_mv: float = GAIN_MM_PER_MV

    @classmethod
    def from_dpi(cls, dpi: float) -> "PageGeometry":
        return cls(dpi / MM_PER_INCH, dpi / MM_PER_INCH)

    @property
    def px_per_mv(self) -> float:
        return self.px_per_mm_y * self.mm_per_mv

    @property
    def px_per_s(self) -> float:
        return self.px_per_mm_x * self.mm_per_s


@dataclass
class Box:
    """Axis-aligned box in page pixels: x0 <= x1 (columns), y0 <= y1 (rows)."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def cx(self) -> float:
        return 0.5 * (self.x0 + self.x1)

    @property
    def cy(self) -> float:
        return 0.5 * (self.y0 + self.y1)

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @classmethod
    def from_points(cls, rows_cols) -> "Box":
        """Bounding box of [row, col] points (e.g. ECG-Image-Kit's four rotated corners)."""
        pts = np.asarray(rows_cols, dtype=np.float64).reshape(-1, 2)
        return cls(pts[:, 1].min(), pts[:, 0].min(), pts[:, 1].max(), pts[:, 0].max())

    def iou(self, other: "Box") -> float:
        ix = max(0.0, min(self.x1, other.x1) - max(self.x0, other.x0))
        iy = max(0.0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = ix * iy
        union = self.width * self.height + other.width * other.height - inter
        return inter / union if union > 0 else 0.0


@dataclass
class LeadNameBox:
    """A printed lead name on the page (ground truth or a detection)."""

    name: str
    box: Box
    score: float = 1.0



def page_size_px_per_mm(height_px: int, width_px: int) -> float:
    """Fallback scale of a scan that is a whole page: its long side is a letter page's 11 inches."""
    return max(height_px, width_px) / LETTER_LONG_MM


def rotate_points(rows_cols: np.ndarray, angle_deg: float, center_rc: tuple[float, float],
                  new_center_rc: tuple[float, float] | None = None) -> np.ndarray:
    """Where [row, col] points land when the image is rotated by angle_deg (counter-clockwise on screen)
    about center_rc; `new_center_rc` is the centre in the output frame if the canvas grew."""
    pts = np.asarray(rows_cols, dtype=np.float64).reshape(-1, 2)
    a = math.radians(angle_deg)
    cos, sin = math.cos(a), math.sin(a)
    dy = pts[:, 0] - center_rc[0]
    dx = pts[:, 1] - center_rc[1]
    # y grows downwards, so a counter-clockwise turn on screen is x' = x cos + y sin, y' = -x sin + y cos.
    x_new = dx * cos + dy * sin
    y_new = -dx * sin + dy * cos
    oc = new_center_rc or center_rc
    return np.stack([y_new + oc[0], x_new + oc[1]], axis=1)
