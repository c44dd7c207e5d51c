"""Put a page upright: quarter turns (90/180/270 deg) from the lead-name detector, then the small tilt.

`rectify_page` returns the corrected image and the lead-name boxes mapped into its frame, ready for the
extractor. Angles follow paperecg.geometry (counter-clockwise positive); the corrected image is the input
turned by -angle_deg about its centre, same size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..geometry import Box, LeadNameBox, rotate_points
from .frame import PageFrame, find_page_frame
from .tilt import TiltEstimate, estimate_tilt

# Orientation: the upright page is trusted without trying other turns when its names add up to this much
# evidence (summed best score per distinct name; measured with the layout-decoded detector on 12
# ECG-Image-Kit pages: 4.3-6.1 upright, at most 2.9 turned by 90 or 180 degrees); otherwise every quarter
# turn is read and the one with most evidence wins.
MIN_UPRIGHT_EVIDENCE = 3.5
# A turn is confident when it shows this many distinct names with at least this score.
MIN_CONFIDENT_NAMES = 3
MIN_CONFIDENT_SCORE = 0.5
# A quarter turn is taken only when its reading has this many times the evidence of the page as given.
TURN_EVIDENCE_RATIO = 1.5
# Tilts smaller than this are left alone (resampling blurs the trace more than the tilt hurts).
MIN_CORRECTION_DEG = 0.05


@dataclass
class RectifiedPage:
    image: np.ndarray  # uint8 (H, W, 3) upright page
    lead_name_boxes: list[LeadNameBox]  # in the corrected image's pixels
    angle_deg: float  # tilt that was removed (of the page after the quarter turns)
    quarter_turns: int  # np.rot90 turns (counter-clockwise) applied before the tilt correction
    tilt: TiltEstimate | None = None
    orientation_confident: bool = False  # False: no detector, or no turn showed enough names
    # map of the quarter-turned input <-> the canonical page (before the tilt correction, which a frame
    # that straightens the page makes redundant): input -> quarter turns -> frame -> tilt = image
    frame: PageFrame | None = None


def paper_color(image_rgb: np.ndarray) -> tuple[int, int, int]:
    """Median colour of the page's border pixels (what to fill uncovered corners with)."""
    img = np.asarray(image_rgb)
    border = np.concatenate([img[0], img[-1], img[:, 0], img[:, -1]]).reshape(-1, img.shape[-1])
    return tuple(int(v) for v in np.median(border, axis=0)[:3])


def rotate_image(image_rgb: np.ndarray, angle_deg: float, fill_rgb: tuple[int, int, int] | None = None
                 ) -> np.ndarray:
    """Turn the image by angle_deg (counter-clockwise on screen) about its centre, same size."""
    import cv2

    img = np.ascontiguousarray(image_rgb)
    h, w = img.shape[:2]
    # pixel centres at integers: the geometric centre is ((w-1)/2, (h-1)/2), as in rotate_points below
    m = cv2.getRotationMatrix2D(((w - 1) / 2.0, (h - 1) / 2.0), angle_deg, 1.0)
    fill = fill_rgb if fill_rgb is not None else paper_color(img)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=tuple(int(c) for c in fill))


def upright_box_size(width_px: float, height_px: float, angle_deg: float) -> tuple[float, float]:
    """Size of the upright box whose turn by angle_deg has the given axis-aligned bounding box."""
    a = math.radians(abs(angle_deg))
    c, s = math.cos(a), math.sin(a)
    det = c * c - s * s
    if det < 0.2:  # near 45 deg the inversion is ill-posed: keep the box as it is
        return width_px, height_px
    w = (width_px * c - height_px * s) / det
    h = (height_px * c - width_px * s) / det
    return max(w, 1.0), max(h, 1.0)


def rotate_boxes(boxes: list[LeadNameBox], angle_deg: float, image_shape: tuple[int, int]) -> list[LeadNameBox]:
    """Boxes of a page that is turned by angle_deg about its centre (as rotate_image): each box keeps its
    centre's new position and the size of the upright text once the page is turned back (so a tilted name's
    inflated bounding box shrinks to the name's own size as the tilt is removed)."""
    if not boxes:
        return []
    h, w = image_shape[:2]
    centre = ((h - 1) / 2.0, (w - 1) / 2.0)
    pts = np.array([[b.box.cy, b.box.cx] for b in boxes])
    new = rotate_points(pts, angle_deg, centre)
    out = []
    for b, (r, c) in zip(boxes, new):
        # the detected box is the bounding box of text tilted by -angle_deg relative to the new frame
        bw, bh = upright_box_size(b.box.width, b.box.height, angle_deg)
        out.append(LeadNameBox(b.name, Box(c - bw / 2, r - bh / 2, c + bw / 2, r + bh / 2), b.score))
    return out


def turn_quarters(image_rgb: np.ndarray, quarter_turns: int) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(image_rgb, quarter_turns % 4))


def _evidence(boxes: list[LeadNameBox]) -> float:
    """How much a set of detections looks like an upright page: total score over distinct names (the
    names I, II, III read the same upside down, so distinct names count, not repeats)."""
    best: dict[str, float] = {}
    for b in boxes:
        best[b.name] = max(best.get(b.name, 0.0), b.score)
    return float(sum(best.values()))


def find_orientation(image_rgb: np.ndarray, detector) -> tuple[int, list[LeadNameBox], bool]:
    """(quarter turns, detections on the turned page, confident). The upright reading is kept when its
    names add up to enough evidence; otherwise all four turns are read and the one with most evidence wins."""
    boxes = detector.detect(image_rgb)
    upright_evidence = _evidence(boxes)
    if upright_evidence >= MIN_UPRIGHT_EVIDENCE:
        return 0, boxes, True
    results = [(0, boxes, upright_evidence)]
    for k in (1, 2, 3):
        turned = detector.detect(turn_quarters(image_rgb, k))
        results.append((k, turned, _evidence(turned)))
    k, best, ev = max(results, key=lambda r: r[2])
    confident = len({b.name for b in best if b.score >= MIN_CONFIDENT_SCORE}) >= MIN_CONFIDENT_NAMES
    # turning a page wrongly ruins it: a turn must be clearly better read than the page as given
    if k != 0 and not (confident and ev >= TURN_EVIDENCE_RATIO * results[0][2]):
        return 0, boxes, False
    return k, best, confident


def rectify_page(image_rgb: np.ndarray, detector=None, max_angle_deg: float = 15.0) -> RectifiedPage:
    """Upright page and lead-name boxes in its frame.

    With a detector: orientation from the names, tilt from the names cross-checked with the grid/trace
    lines. Without one (or with no names found): tilt from the lines only; quarter turns are then not
    detected (quarter_turns = 0, orientation_confident False)."""
    img = np.asarray(image_rgb)[..., :3]
    quarter_turns, boxes, confident = 0, [], False
    if detector is not None:
        quarter_turns, boxes, confident = find_orientation(img, detector)
        img = turn_quarters(img, quarter_turns)
    frame = find_page_frame(img)  # canonical page: flat, one scale (rectify/frame.py)
    img, boxes = frame.warp_image(img), frame.boxes_to_canonical(boxes)
    tilt = estimate_tilt(boxes, img, max_angle_deg) if not frame.straightens else None
    angle = tilt.angle_deg if tilt is not None and tilt.confidence > 0 else 0.0
    if abs(angle) >= MIN_CORRECTION_DEG:
        upright = rotate_image(img, -angle)
        boxes = rotate_boxes(boxes, -angle, img.shape)
    else:
        upright, angle = img, 0.0
    return RectifiedPage(upright, boxes, float(angle), int(quarter_turns), tilt, confident, frame)
