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
from .frame import PageFrame, find_page_frame, no_grid_note
from .tilt import TiltEstimate, estimate_tilt, estimate_tilt_from_lines

# Orientation evidence: the names I, II and III read the same upside down (and a sideways page shows
# sideways text), so a turn is judged by the names that do not: aVR, aVL, aVF, V1-V6. The evidence of a reading
# is the sum over those names of the best raw score the detector gave each (before the layout decoding, which
# renames every box after the grid and so would lend an upside-down page the names of an upright one).
# Measured with the shipped detector on 56 ECG-Image-Kit pages (eik-dev clean, distorted, photo, lowdpi, 6x2,
# 12x1): upright 2.75-6.3 (all but 3 pages above 3.5), the same pages upside down at most 2.63, sideways at most
# 1.5; no single threshold separates upright from upside down everywhere, the comparison of turns does (upright
# over upside down: 1.75x at the least).
SYMMETRIC_NAMES = frozenset({"I", "II", "III"})
# The page as given is trusted after one detector pass when its evidence reaches this (1.3x the most any
# upside-down page showed); otherwise all four turns are read and compared.
MIN_UPRIGHT_EVIDENCE = 3.5
# A reading of the four turns is confident when its evidence reaches MIN_TURN_EVIDENCE and is this many times
# that of the next best turn.
MIN_TURN_EVIDENCE = 1.5
TURN_EVIDENCE_RATIO = 1.5
# A page tilted by more than the detector learned (+-10 deg) shows it few names in any turn: when no turn is
# confident and the page's grid/trace lines say it is tilted by at least this much, the four turns are read
# again with that tilt removed (figures: docs/tuning.md).
MIN_PRETILT_DEG = 3.0
# A photo whose long side exceeds this is area-reduced before anything else (a 12-MP photo would make the
# detector passes, the rotation and the grid fit several times slower); 3000 px across a letter page's 279 mm
# is still 10.8 px/mm, above the canonical 7.874, so the frame loses nothing.
MAX_INPUT_SIDE_PX = 3000
# Tilts smaller than this are left alone (resampling blurs the trace more than the tilt hurts).
MIN_CORRECTION_DEG = 0.05
# After a correction of at least this much, the uniform border the turn leaves around the page is trimmed (a page
# tilted on a larger canvas would reach the segmenter's fixed working size at a smaller scale) and the names are
# read again on the corrected page (boxes turned with the page only approximate the upright names' boxes;
# figures: docs/tuning.md).
MIN_REREAD_DEG = 1.0
FILL_TOLERANCE = 24  # a border row or column is fill when no pixel differs from the fill colour by more
# A photo of a sheet on a table shows the detector, which sees the whole image at a 1024-px long side, names
# smaller than it learned; it reads the sheet cropped out of the photo instead (figures: docs/tuning.md).
# A sheet covering more than PAPER_MAX_SHARE of the image is read whole (a scan); one covering less
# than PAPER_MIN_SHARE is not believed (a dark page, a monitor, a busy background).
PAPER_MAX_SHARE = 0.85
PAPER_MIN_SHARE = 0.2


@dataclass
class RectifiedPage:
    image: np.ndarray  # uint8 (H, W, 3) upright page
    lead_name_boxes: list[LeadNameBox]  # in the corrected image's pixels
    angle_deg: float  # tilt that was removed (of the page after the quarter turns)
    quarter_turns: int  # np.rot90 turns (counter-clockwise) applied before the tilt correction
    tilt: TiltEstimate | None = None
    trim_offset_px: tuple[int, int] = (0, 0)  # (x, y) of the image's origin in the turned-back page (trimmed border)
    orientation_confident: bool = False  # False: no detector, or no turn showed enough names
    orientation_note: str = ""  # one line for the log when a detector was used and the orientation is uncertain
    # map of the turned-back, trimmed page <-> the canonical page: input -> quarter turns -> tilt -> trim ->
    # frame = image
    frame: PageFrame | None = None
    # canonical px per input px of an early reduction of a very large photo (1.0: the input as given); the
    # chain starts from the reduced image: input -> reduce -> quarter turns -> tilt -> trim -> frame = image
    input_scale: float = 1.0


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
    # cubic: a 2-3 px trace keeps its profile better than under linear interpolation
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT,
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


def trim_fill_border(image_rgb: np.ndarray, fill_rgb: tuple[int, int, int], tolerance: int = FILL_TOLERANCE
                     ) -> tuple[np.ndarray, tuple[int, int]]:
    """The image without the rows and columns at its edges that are all fill colour; (image, (x0, y0) of the
    kept part). An image that is all fill comes back whole."""
    far = _far_from_colour(image_rgb, fill_rgb, tolerance)
    rows, cols = np.nonzero(far.any(axis=1))[0], np.nonzero(far.any(axis=0))[0]
    if len(rows) == 0 or len(cols) == 0:
        return image_rgb, (0, 0)
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return np.ascontiguousarray(image_rgb[y0:y1, x0:x1]), (x0, y0)


def _far_from_colour(image_rgb: np.ndarray, rgb: tuple[int, int, int], tolerance: int) -> np.ndarray:
    """bool (H, W): some channel differs from `rgb` by more than tolerance. Channel by channel in uint8 (an
    int16 copy of a large photo and a reduction over its last axis of 3 cost a quarter of a second)."""
    import cv2

    img = np.asarray(image_rgb)
    far = np.zeros(img.shape[:2], bool)
    for c in range(3):
        diff = cv2.absdiff(np.ascontiguousarray(img[..., c]), np.full(img.shape[:2], int(rgb[c]), np.uint8))
        far |= diff > tolerance
    return far


def reduce_large_input(image_rgb: np.ndarray, max_side_px: int = MAX_INPUT_SIDE_PX) -> tuple[np.ndarray, float]:
    """(image, scale): an image whose long side exceeds max_side_px area-reduced to it, else as given (1.0)."""
    h, w = image_rgb.shape[:2]
    scale = max_side_px / float(max(h, w))
    if scale >= 1.0:
        return image_rgb, 1.0
    import cv2

    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(np.ascontiguousarray(image_rgb), size, interpolation=cv2.INTER_AREA), scale


def turn_quarters(image_rgb: np.ndarray, quarter_turns: int) -> np.ndarray:
    return np.ascontiguousarray(np.rot90(image_rgb, quarter_turns % 4))


def orientation_evidence(raw_boxes: list[LeadNameBox]) -> float:
    """How much a reading looks like an upright page: the sum, over the names that do not read the same
    upside down, of the best score any detection gave that name."""
    best: dict[str, float] = {}
    for b in raw_boxes:
        if b.name not in SYMMETRIC_NAMES:
            best[b.name] = max(best.get(b.name, 0.0), b.score)
    return float(sum(best.values()))


@dataclass
class TurnReading:
    quarter_turns: int  # np.rot90 turns of the page as given
    raw: list[LeadNameBox]  # the detections, in the turned page's pixels (a test double's: its named boxes)
    scores: np.ndarray | None  # every class's score per raw box; None where the detector gave no raw reading
    evidence: float  # orientation_evidence of the raw detections

    def boxes(self, detector) -> list[LeadNameBox]:
        """The names to use (layout-decoded). Decoded only for the reading that is used: the decoding costs
        about as much as half a detector pass, and a page of uncertain turn is read four or eight times."""
        return list(self.raw) if self.scores is None else detector.name_boxes(self.raw, self.scores)

def paper_box(image_rgb: np.ndarray, long_side_px: int = 400) -> tuple[int, int, int, int] | None:
    """(x, y, w, h) of the sheet of paper in a photo: the largest bright, weakly coloured region (closed over
    the grid and the trace), a little padded; None where it fills the image or is too small to believe."""
    import cv2

    h, w = image_rgb.shape[:2]
    scale = min(1.0, long_side_px / float(max(h, w)))
    small = cv2.resize(np.ascontiguousarray(image_rgb[..., :3]), (max(1, round(w * scale)), max(1, round(h * scale))),
                       interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    value, saturation = hsv[..., 2].astype(np.float32), hsv[..., 1]
    paper = ((value >= 0.9 * np.percentile(value, 60)) & (saturation < 80)).astype(np.uint8)
    k = max(3, round(0.02 * max(small.shape[:2])) | 1)
    paper = cv2.morphologyEx(paper, cv2.MORPH_CLOSE, np.ones((k, k), np.uint8))
    n, _, stats, _ = cv2.connectedComponentsWithStats(paper)
    if n < 2:
        return None
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    bx, by, bw, bh = (int(v) for v in stats[best, :4])
    share = bw * bh / float(small.shape[0] * small.shape[1])
    if not PAPER_MIN_SHARE <= share <= PAPER_MAX_SHARE:
        return None
    pad = 0.02 * max(bw, bh)
    x0, y0 = max(0, math.floor((bx - pad) / scale)), max(0, math.floor((by - pad) / scale))
    x1, y1 = min(w, math.ceil((bx + bw + pad) / scale)), min(h, math.ceil((by + bh + pad) / scale))
    return x0, y0, x1 - x0, y1 - y0


def turned_crop_origin(box: tuple[int, int, int, int], image_hw: tuple[int, int], quarter_turns: int
                       ) -> tuple[int, int]:
    """(x, y) of a crop's top-left corner in the image turned by quarter_turns (np.rot90, counter-clockwise):
    the crop of the turned image there is the turned crop."""
    x, y, w, h = box
    height, width = image_hw
    for _ in range(quarter_turns % 4):
        # one turn maps pixel (x, y) of a W-wide image to (y, W - 1 - x)
        x, y, w, h, height, width = y, width - x - w, h, w, width, height
    return x, y


def shift_boxes(boxes: list[LeadNameBox], dx: float, dy: float) -> list[LeadNameBox]:
    return [LeadNameBox(b.name, Box(b.box.x0 + dx, b.box.y0 + dy, b.box.x1 + dx, b.box.y1 + dy), b.score)
            for b in boxes]


def read_turn(image_rgb: np.ndarray, detector, quarter_turns: int, box_scale: float = 1.0) -> TurnReading:
    """One detector pass over the page turned by quarter_turns. Detectors without a raw reading (test
    doubles) are judged by their named boxes. box_scale: page px per px of image_rgb (a detection copy,
    see detection_copy); the boxes come back in the page's pixels."""
    turned = turn_quarters(image_rgb, quarter_turns)
    if hasattr(detector, "detect_raw") and hasattr(detector, "name_boxes"):
        raw, scores = detector.detect_raw(turned)
        raw = scale_boxes(raw, box_scale)  # before the layout decoding, which sees the page's own pixels
        return TurnReading(quarter_turns, raw, scores, orientation_evidence(raw))
    boxes = scale_boxes(detector.detect(turned), box_scale)
    return TurnReading(quarter_turns, boxes, None, orientation_evidence(boxes))


def scale_boxes(boxes: list[LeadNameBox], factor: float) -> list[LeadNameBox]:
    """Boxes of an image resized by 1/factor -> boxes of the image (edges scale with the image)."""
    if factor == 1.0:
        return list(boxes)
    return [LeadNameBox(b.name, Box(b.box.x0 * factor, b.box.y0 * factor, b.box.x1 * factor, b.box.y1 * factor),
                        b.score) for b in boxes]


def detection_copy(image_rgb: np.ndarray, detector) -> tuple[np.ndarray, float]:
    """(the page reduced to the detector's own scale, page px per copy px). The detector reduces every page
    to its `page_long_side_px` before it looks; reducing once here, as it would (same size, same area
    averaging), lets the orientation passes turn and tilt a 1-MP copy instead of a photo of several MP,
    and gives the first pass the very pixels it saw before. Detectors without that setting get the page."""
    long_side = getattr(getattr(detector, "config", None), "page_long_side_px", None)
    if not long_side:
        return image_rgb, 1.0
    small, scale = reduce_large_input(image_rgb, int(long_side))
    return small, 1.0 / scale


def choose_turn(readings: list[TurnReading]) -> tuple[TurnReading, bool]:
    """(best reading, confident): the turn with most evidence, confident when it has enough and clearly
    more than the next best; an unconfident choice falls back on the page as given (the first reading)."""
    ranked = sorted(readings, key=lambda r: -r.evidence)
    best = ranked[0]
    runner_up = ranked[1].evidence if len(ranked) > 1 else 0.0
    confident = best.evidence >= MIN_TURN_EVIDENCE and best.evidence >= TURN_EVIDENCE_RATIO * runner_up
    # turning a page wrongly ruins it: only a confident reading turns it
    return (best, True) if confident else (readings[0], False)


def find_orientation(image_rgb: np.ndarray, detector, box_scale: float = 1.0
                     ) -> tuple[int, list[LeadNameBox], bool]:
    """(quarter turns, detections on the turned page, confident). One detector pass when the page as given
    shows enough orientation evidence; otherwise all four turns are read and the one with clearly most
    evidence wins (none does: the page is read as given, not confident). box_scale: as in read_turn."""
    as_given = read_turn(image_rgb, detector, 0, box_scale)
    if as_given.evidence >= MIN_UPRIGHT_EVIDENCE:
        return 0, as_given.boxes(detector), True
    readings = [as_given] + [read_turn(image_rgb, detector, k, box_scale) for k in (1, 2, 3)]
    best, confident = choose_turn(readings)
    return best.quarter_turns, best.boxes(detector), confident


def orient_page(image_rgb: np.ndarray, detector, max_angle_deg: float = 15.0
                ) -> tuple[int, list[LeadNameBox], bool, float]:
    """find_orientation, and for a page it leaves uncertain, once more on the page with its line tilt removed:
    (quarter turns, boxes, confident, pre-tilt deg). The boxes are in the frame of the page turned by the
    quarter turns and then by -pre-tilt (rotate_image); pre-tilt is 0 unless that second reading was needed
    and confident. The detector reads a copy at its own scale (detection_copy); boxes are in page pixels. A
    photo of a sheet lying on a table is read cropped to the sheet (paper_box), so that the names reach the
    detector at the size it learned; its boxes are shifted back into the whole turned page."""
    sheet = paper_box(image_rgb)
    view = image_rgb if sheet is None else image_rgb[sheet[1]:sheet[1] + sheet[3], sheet[0]:sheet[0] + sheet[2]]
    small, box_scale = detection_copy(view, detector)
    quarter_turns, boxes, confident = find_orientation(small, detector, box_scale)
    if sheet is not None:
        boxes = shift_boxes(boxes, *turned_crop_origin(sheet, image_rgb.shape[:2], quarter_turns))
    if confident:
        return quarter_turns, boxes, True, 0.0
    lines = estimate_tilt_from_lines(image_rgb, max_angle_deg)
    if lines.confidence <= 0 or abs(lines.angle_deg) < MIN_PRETILT_DEG:
        return quarter_turns, boxes, False, 0.0
    if sheet is not None:  # the second reading turns the whole page about its centre
        small, box_scale = detection_copy(image_rgb, detector)
    # (a turn about the centre commutes with the area reduction: the copy's centre is the page's centre)
    k, turned_boxes, sure = find_orientation(rotate_image(small, -lines.angle_deg), detector, box_scale)
    if not sure:
        return quarter_turns, boxes, False, 0.0
    return k, turned_boxes, True, float(lines.angle_deg)


def orientation_note(quarter_turns: int, confident: bool, detector_used: bool) -> str:
    """One line for the log when a detector could not settle the page's orientation; '' otherwise."""
    if confident or not detector_used:
        return ""
    return "orientation uncertain (too few lead names read in any quarter turn): read as given"


def rectify_page(image_rgb: np.ndarray, detector=None, max_angle_deg: float = 15.0) -> RectifiedPage:
    """Upright page and lead-name boxes in its frame.

    With a detector: orientation from the names (on a page no turn reads confidently, again once its line
    tilt is removed), tilt from the names cross-checked with the grid/trace lines. Without one (or with no
    names found): tilt from the lines only; quarter turns are then not detected (quarter_turns = 0,
    orientation_confident False). After a correction of MIN_REREAD_DEG or more the fill border is trimmed
    (trim_offset_px) and the names are read again on the corrected page."""
    img, input_scale = reduce_large_input(np.asarray(image_rgb)[..., :3])
    quarter_turns, boxes, confident, pre_deg = 0, [], False, 0.0
    if detector is not None:
        quarter_turns, boxes, confident, pre_deg = orient_page(img, detector, max_angle_deg)
        img = turn_quarters(img, quarter_turns)
    # boxes are in the frame of the turned page less pre_deg: the remaining (fine) tilt is measured there
    work = rotate_image(img, -pre_deg) if pre_deg else img
    tilt = estimate_tilt(boxes, work, max_angle_deg)
    fine = tilt.angle_deg if tilt.confidence > 0 else 0.0
    angle = pre_deg + fine
    offset = (0, 0)
    reread = False
    if abs(angle) >= MIN_CORRECTION_DEG:
        fill = paper_color(img)
        upright = rotate_image(img, -angle, fill)  # one resampling of the turned page for both tilt steps
        boxes = rotate_boxes(boxes, -fine, img.shape)
        if abs(angle) >= MIN_REREAD_DEG:
            upright, offset = trim_fill_border(upright, fill)
            reread = detector is not None
    else:
        upright, angle = img, 0.0
    # The canonical page (rectify/frame.py): perspective, curl and scale, measured on the page once its
    # rotation is gone (the line-based tilt is robust on any flat page; the grid fit is surest on an upright one)
    frame = find_page_frame(upright)
    if frame.method == "none":  # the fallback chain: say which evidence straightened the page
        frame.notes.append(no_grid_note(tilt.method if tilt.confidence > 0 else "none", angle, tilt.num_pairs))
    if not frame.is_identity:
        upright, boxes = frame.warp_image(upright), frame.boxes_to_canonical(boxes)
        reread = reread or (detector is not None and frame.method != "scale")
    if reread:
        boxes = read_turn(upright, detector, 0).boxes(detector)
    return RectifiedPage(upright, boxes, float(angle), int(quarter_turns), tilt, offset, confident,
                         orientation_note(quarter_turns, confident, detector is not None), frame,
                         input_scale)
