"""Pictures of what the digitizer did: the digitized trace drawn back over the (rectified) page.

A sample k of a lead drawn in row r sits at x = x_first(r) + k * px_per_sample and
y = baseline_y(r) - mV * px_per_mv, the inverse of the extractor's readout; where the overlay leaves the
ink, the digitization is wrong, and the per-lead SNR printed beside each lead says by how much.
"""
from __future__ import annotations

import cv2
import numpy as np

from paperecg.extract import Extraction
from paperecg.layouts import lead_index

OVERLAY_RGB = (0, 160, 255)  # light blue reads well on red, green, gray and black-and-white grids
ABSTAIN_RGB = (255, 0, 160)


def trace_points(extraction: Extraction, signal_mv: np.ndarray, fs_hz: float,
                 lead_names: list[str]) -> dict[str, np.ndarray]:
    """lead name -> (K, 2) [x, y] page pixels of its digitized samples (NaN samples dropped)."""
    g = extraction.geometry
    px_per_sample = g.px_per_s / fs_hz
    points: dict[str, np.ndarray] = {}
    for cell in extraction.cells:
        j = lead_index(lead_names, cell.lead)
        if j is None or not 0 <= cell.row < len(extraction.rows):
            continue
        row = extraction.rows[cell.row]
        k = np.arange(cell.start, min(cell.end, signal_mv.shape[0]))
        v = signal_mv[k, j]
        ok = np.isfinite(v)
        if not ok.any() or not np.isfinite(row.x_first) or not np.isfinite(row.baseline_y):
            continue
        xs = row.x_first + k[ok] * px_per_sample
        ys = row.baseline_y - v[ok] * g.px_per_mv
        pts = np.stack([xs, ys], axis=1)
        points[cell.lead] = np.concatenate([points[cell.lead], pts]) if cell.lead in points else pts
    return points


def draw_overlay(image_rgb: np.ndarray, extraction: Extraction, signal_mv: np.ndarray, fs_hz: float,
                 lead_names: list[str], lead_snr_db: dict[str, float] | None = None,
                 thickness_px: int = 2) -> np.ndarray:
    """The page, lightened, with the digitized trace over it and each lead's name (+ SNR) at its start."""
    canvas = (0.55 * np.asarray(image_rgb, dtype=np.float32) + 0.45 * 255).astype(np.uint8)
    points = trace_points(extraction, signal_mv, fs_hz, lead_names)
    for lead, pts in points.items():
        cv2.polylines(canvas, [np.round(pts).astype(np.int32).reshape(-1, 1, 2)], False, OVERLAY_RGB,
                      thickness_px, cv2.LINE_AA)
        label = lead if lead_snr_db is None or lead not in lead_snr_db else f"{lead} {lead_snr_db[lead]:.1f} dB"
        x, y = pts[0]
        cv2.putText(canvas, label, (int(x), int(y) - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 90, 200), 2,
                    cv2.LINE_AA)
    missing = [n for n in lead_names if not any(n.casefold() == p.casefold() for p in points)]
    if missing:
        cv2.putText(canvas, "abstained: " + ", ".join(missing), (20, canvas.shape[0] - 20),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.9, ABSTAIN_RGB, 2, cv2.LINE_AA)
    return canvas
