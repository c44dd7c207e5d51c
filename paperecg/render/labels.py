"""Label types of a rendered (or ECG-Image-Kit) page and their JSON / YOLO forms.

Pixel convention: [row, col] floats with pixel centres at integer coordinates (array indexing, the
convention of OpenCV drawing). Boxes are `geometry.Box` (x = col, y = row). The JSON uses ECG-Image-Kit's
key names where the same fact is meant, so `eik.load_eik_page` reads both kinds of page.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..geometry import Box, LeadNameBox, PageGeometry
from ..layouts import STANDARD_LEADS, printed_lead


def box_corners(box: Box) -> np.ndarray:
    """Four corners as ECG-Image-Kit orders them: top-left, top-right, bottom-right, bottom-left; [row, col]."""
    return np.array([[box.y0, box.x0], [box.y0, box.x1], [box.y1, box.x1], [box.y1, box.x0]], dtype=np.float64)


def corners_to_json(corners_rc: np.ndarray) -> dict:
    return {str(i): [round(float(r), 2), round(float(c), 2)] for i, (r, c) in enumerate(corners_rc)}


def corners_from_json(obj) -> np.ndarray:
    """{'0': [row, col], ...} (or a list of 4 pairs) -> (4, 2) float array."""
    if isinstance(obj, dict):
        return np.array([obj[str(i)] for i in range(4)], dtype=np.float64)
    return np.asarray(obj, dtype=np.float64).reshape(4, 2)


@dataclass
class LeadTrace:
    """One drawn segment of one lead."""

    name: str  # canonical lead name ('aVR')
    lead_box: Box  # extent of the drawn trace
    text_box: Box | None  # printed lead name, None when not printed
    start_sample: int
    end_sample: int  # exclusive
    baseline_row: float  # row of 0 mV at the segment's start column (NaN when unknown)
    pixels: np.ndarray  # float (K, 2) [row, col] of samples start..end-1; NaN rows where not drawn
    row_index: int = -1  # layout row (-1 unknown)
    col_index: int = -1  # layout column (-1 unknown)
    # rotated corners (4, 2) [row, col] after augmentation; None = the axis-aligned box's corners
    lead_corners: np.ndarray | None = None
    text_corners: np.ndarray | None = None
    sign: int = 1  # -1: the inverted lead is drawn (Cabrera's -aVR); the name box reads '-aVR'


@dataclass
class RenderedPage:
    image: np.ndarray  # uint8 (H, W, 3) RGB
    trace_mask: np.ndarray  # bool (H, W): signal trace pixels only (no grid, text, pulses)
    lead_mask: np.ndarray  # uint8 (H, W): 0 background, k + 1 = leads[k]
    leads: list[LeadTrace]
    geometry: PageGeometry
    dpi: float
    fs_hz: float
    num_samples: int
    layout: str
    angle_deg: float = 0.0  # rotation applied by augmentation (counter-clockwise positive)
    trace_alpha: np.ndarray | None = None  # uint8 (H, W) anti-aliased trace coverage 0..255 (soft label)
    meta: dict = field(default_factory=dict)  # page facts for the JSON (colours, flags, header text)

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    def lead_name_boxes(self) -> list[LeadNameBox]:
        return [LeadNameBox(("-" if t.sign < 0 else "") + t.name, t.text_box) for t in self.leads
                if t.text_box is not None]

    def yolo_lines(self, class_names: tuple[str, ...] = STANDARD_LEADS) -> list[str]:
        """Lead-name boxes in YOLO text format: 'class cx cy w h' normalised to the image size."""
        lines = []
        for b in self.lead_name_boxes():
            name = printed_lead(b.name)[0]
            if name not in class_names:
                continue
            x0, x1 = max(0.0, b.box.x0), min(float(self.width), b.box.x1)
            y0, y1 = max(0.0, b.box.y0), min(float(self.height), b.box.y1)
            if x1 <= x0 or y1 <= y0:
                continue  # cropped off the page
            lines.append(f"{class_names.index(name)} {0.5 * (x0 + x1) / self.width:.6f} "
                         f"{0.5 * (y0 + y1) / self.height:.6f} {(x1 - x0) / self.width:.6f} "
                         f"{(y1 - y0) / self.height:.6f}")
        return lines

    def signal_readback(self, lead_names: list[str] | None = None) -> tuple[np.ndarray, list[str]]:
        """Signals recovered from the plotted pixels with the stored geometry: (num_samples, L) mV,
        NaN where not drawn. Only valid on un-augmented pages (rows measured from baseline_row)."""
        names = lead_names or list(STANDARD_LEADS)
        keys = [n.casefold() for n in names]
        out = np.full((self.num_samples, len(names)), np.nan)
        for t in self.leads:
            if t.name.casefold() not in keys:
                continue
            j = keys.index(t.name.casefold())
            mv = t.sign * (t.baseline_row - t.pixels[:, 0]) / self.geometry.px_per_mv
            out[t.start_sample:t.start_sample + len(mv), j] = mv
        return out, names

    def to_json(self) -> dict:
        """ECG-Image-Kit key names where the same fact is meant, plus px_per_mm, px_per_mv, baseline_row,
        layout and angle_deg."""
        g = self.geometry
        meta = dict(self.meta)
        leads = []
        for t in self.leads:
            rounded = np.round(t.pixels.astype(np.float64), 2)
            ok = np.all(np.isfinite(rounded), axis=1)
            pix = rounded.tolist()
            if not ok.all():  # JSON has no NaN: undrawn samples are [null, null]
                pix = [p if good else [None, None] for p, good in zip(pix, ok)]
            leads.append({
                "lead_name": t.name,
                "start_sample": int(t.start_sample),
                "end_sample": int(t.end_sample),
                "lead_bounding_box": corners_to_json(
                    t.lead_corners if t.lead_corners is not None else box_corners(t.lead_box)),
                "text_bounding_box": (corners_to_json(
                    t.text_corners if t.text_corners is not None else box_corners(t.text_box))
                    if t.text_box is not None else None),
                "plotted_pixels": pix,
                "baseline_row": None if not math.isfinite(t.baseline_row) else round(float(t.baseline_row), 3),
                "row_index": t.row_index,
                "col_index": t.col_index,
                "sign": int(t.sign),
            })
        num_cols = max([t.col_index for t in self.leads] + [0]) + 1
        full = [t.name for t in self.leads if t.start_sample == 0 and t.end_sample == self.num_samples]
        out = {
            "sampling_frequency": float(self.fs_hz),
            "width": self.width,
            "height": self.height,
            "resolution": float(self.dpi),
            "x_grid": round(g.px_per_mm_x * 5.0, 4),
            "y_grid": round(g.px_per_mm_y * 5.0, 4),
            "number_of_columns_in_image": int(num_cols),
            "full_mode_lead": full[0] if full and num_cols > 1 else "None",
            "leads": leads,
            # own keys
            "num_samples": int(self.num_samples),
            "px_per_mm": [g.px_per_mm_x, g.px_per_mm_y],
            "px_per_mv": g.px_per_mv,
            "mm_per_s": g.mm_per_s,
            "mm_per_mv": g.mm_per_mv,
            "layout": self.layout,
            "angle_deg": float(self.angle_deg),
            "pixel_origin": "center",  # pixel centres at integer [row, col] (ECG-Image-Kit: at +0.5)
        }
        for k, v in meta.items():
            out.setdefault(k, v)
        return out
