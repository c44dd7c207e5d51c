"""Where the paper is: dark regions that reach the image border (the wedges a turned scan leaves, a photo's
table) are not paper, and trace probability there is not trace."""
from __future__ import annotations

import cv2
import numpy as np

DARK_LEVEL = 60  # grey level (0..255) below which a pixel can be background rather than paper
MIN_BLOB_MM = 0.6  # dark strokes thinner than this are ink (traces, text), kept out of the background
MIN_BACKGROUND_MM = 2.0  # a border region counts as background only if it is this thick somewhere


def off_paper_mask(image_rgb: np.ndarray, px_per_mm: float, margin_mm: float = 1.0) -> np.ndarray:
    """bool (H, W): True on dark regions touching the image border (widened by margin_mm)."""
    img = np.asarray(image_rgb)
    grey = cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2GRAY) if img.ndim == 3 else img
    dark = (grey < DARK_LEVEL).astype(np.uint8)
    k = max(3, int(round(MIN_BLOB_MM * px_per_mm)) | 1)
    # opening removes thin dark strokes (ink) so that a trace touching the border is not taken for background
    dark = cv2.morphologyEx(dark, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    if not dark.any():
        return np.zeros(grey.shape, bool)
    n, labels = cv2.connectedComponents(dark, connectivity=4)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    edge = edge[edge > 0]
    if edge.size:
        # background is thick somewhere (a wedge widens, a table fills a corner); a thick pen stroke that
        # happens to touch the border is not. (The labels holding a thick pixel, in one pass: a per-label
        # maximum sorts every pixel and cost a third of a second on a page.)
        depth = cv2.distanceTransform(dark, cv2.DIST_L2, 3)
        thick_labels = np.unique(labels[depth >= 0.5 * MIN_BACKGROUND_MM * px_per_mm])
        edge = edge[np.isin(edge, thick_labels)]
    out = np.isin(labels, edge).astype(np.uint8)
    m = max(1, int(round(margin_mm * px_per_mm)))
    out = cv2.dilate(out, cv2.getStructuringElement(cv2.MORPH_RECT, (2 * m + 1, 2 * m + 1)))
    return out.astype(bool)
