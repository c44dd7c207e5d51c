"""Tilt estimation, page rotation with box mapping, and quarter-turn handling."""
import cv2
import numpy as np
import pytest

from paperecg.geometry import Box, LeadNameBox, rotate_points
from paperecg.layouts import LAYOUTS
from paperecg.rectify.rectify import (
    find_orientation,
    rectify_page,
    rotate_boxes,
    rotate_image,
    turn_quarters,
    upright_box_size,
)
from paperecg.rectify.tilt import estimate_tilt, estimate_tilt_from_lines, fit_tilt_from_boxes

H, W = 850, 1100


def layout_boxes(layout="3x4+1", x0=40.0, col_w=250.0, y0=200.0, row_h=150.0, text_h=14.0):
    """Upright name boxes as a printout places them: left-aligned per column, one height per row."""
    widths = {"I": 4, "II": 9, "III": 14, "aVR": 28, "aVL": 26, "aVF": 26}
    out = []
    for cell in LAYOUTS[layout].cells():
        x = x0 + cell.col * col_w
        y = y0 + cell.row * row_h
        out.append(LeadNameBox(cell.lead, Box(x, y, x + widths.get(cell.lead, 20), y + text_h)))
    return out


def turn_boxes(boxes, angle_deg, rng=None, jitter_px=0.0):
    """Axis-aligned bounding boxes of the boxes turned with a page about its centre (plus jitter)."""
    centre = ((H - 1) / 2, (W - 1) / 2)
    out = []
    for b in boxes:
        corners = np.array([[b.box.y0, b.box.x0], [b.box.y0, b.box.x1], [b.box.y1, b.box.x1], [b.box.y1, b.box.x0]])
        bb = Box.from_points(rotate_points(corners, angle_deg, centre))
        if rng is not None and jitter_px:
            j = rng.normal(0, jitter_px, 4)
            bb = Box(bb.x0 + j[0], bb.y0 + j[1], bb.x1 + j[2], bb.y1 + j[3])
        out.append(LeadNameBox(b.name, bb, 0.9))
    return out


@pytest.mark.parametrize("angle", [-9.0, -2.5, 0.0, 0.7, 4.0, 9.5])
@pytest.mark.parametrize("layout", ["3x4+1", "6x2"])
def test_name_fit_recovers_angle_despite_outliers(angle, layout):
    rng = np.random.default_rng(int(abs(angle) * 10) + len(layout))
    boxes = turn_boxes(layout_boxes(layout), angle, rng, jitter_px=0.5)
    # false detections and a name far off its column
    boxes += [LeadNameBox("V3", Box(500, 60, 520, 74), 0.3), LeadNameBox("I", Box(900, 700, 905, 714), 0.4)]
    boxes[2] = LeadNameBox(boxes[2].name, Box(boxes[2].box.x0 + 60, boxes[2].box.y0 + 25,
                                              boxes[2].box.x1 + 60, boxes[2].box.y1 + 25), 0.8)
    est = fit_tilt_from_boxes(boxes)
    assert est.method == "names"
    assert est.num_pairs >= 5
    assert abs(est.angle_deg - angle) < 0.2
    assert 0 < est.confidence <= 1


def test_name_fit_without_pairs_has_no_confidence():
    assert fit_tilt_from_boxes([]).confidence == 0
    one = [LeadNameBox("I", Box(10, 10, 15, 24))]
    assert fit_tilt_from_boxes(one).confidence == 0


def grid_page(angle_deg, seed=0):
    """A synthetic printout: pink grid, a few wavy dark traces, turned by angle_deg."""
    rng = np.random.default_rng(seed)
    img = np.full((H, W, 3), 255, np.uint8)
    for x in range(0, W, 8):
        cv2.line(img, (x, 0), (x, H - 1), (250, 200, 200) if x % 40 else (230, 120, 120), 1)
    for y in range(0, H, 8):
        cv2.line(img, (0, y), (W - 1, y), (250, 200, 200) if y % 40 else (230, 120, 120), 1)
    xs = np.arange(40, W - 40)
    for base in (200, 350, 500, 650):
        ys = base + 10 * np.sin(xs / 15.0 + rng.uniform(0, 6)) + rng.normal(0, 1, len(xs))
        pts = np.stack([xs, ys], 1).astype(np.int32)
        cv2.polylines(img, [pts], False, (20, 20, 20), 2)
    return rotate_image(img, angle_deg, (255, 255, 255))


@pytest.mark.parametrize("angle", [-7.0, -1.0, 0.0, 3.0, 10.0])
def test_line_estimate_fallback_without_detections(angle):
    img = grid_page(angle)
    est = estimate_tilt([], img)
    assert est.method == "lines"
    assert abs(est.angle_deg - angle) < 0.1
    assert est.confidence > 0.3
    direct = estimate_tilt_from_lines(img)
    assert direct.angle_deg == pytest.approx(est.angle_deg)


def test_line_estimate_on_blank_page_is_not_confident():
    est = estimate_tilt_from_lines(np.full((300, 400, 3), 250, np.uint8))
    assert est.confidence == 0


def test_names_and_lines_combine():
    angle = 2.0
    img = grid_page(angle)
    boxes = turn_boxes(layout_boxes(), angle)
    est = estimate_tilt(boxes, img)
    assert est.method == "names+lines"
    assert abs(est.angle_deg - angle) < 0.1
    # names that disagree badly with the lines lose confidence
    wrong = turn_boxes(layout_boxes(), angle + 5.0)
    est2 = estimate_tilt(wrong, img)
    assert est2.confidence < est.confidence


def test_rectify_without_detector_straightens_page():
    angle = -4.0
    img = grid_page(angle)
    rect = rectify_page(img, None)
    assert rect.image.shape == img.shape
    assert rect.quarter_turns == 0 and not rect.orientation_confident
    assert abs(rect.angle_deg - angle) < 0.1
    assert abs(estimate_tilt_from_lines(rect.image).angle_deg) < 0.1


def test_rotate_image_matches_rotate_points():
    img = np.zeros((H, W, 3), np.uint8)
    img[300:303, 700:703] = 255  # a bright dot at (301, 701)
    turned = rotate_image(img, 8.0, (0, 0, 0))
    r, c = np.unravel_index(np.argmax(turned[..., 0]), turned.shape[:2])
    want = rotate_points(np.array([[301.0, 701.0]]), 8.0, ((H - 1) / 2, (W - 1) / 2))[0]
    assert abs(r - want[0]) <= 1.5 and abs(c - want[1]) <= 1.5


def test_rotate_boxes_brings_turned_names_back_upright():
    upright = layout_boxes()
    angle = 6.0
    turned = turn_boxes(upright, angle)
    back = rotate_boxes(turned, -angle, (H, W))
    for u, b in zip(upright, back):
        assert abs(u.box.cx - b.box.cx) < 0.5 and abs(u.box.cy - b.box.cy) < 0.5
        assert abs(u.box.width - b.box.width) < 0.5 and abs(u.box.height - b.box.height) < 0.5
        assert b.name == u.name


def test_upright_box_size_inverts_bounding_box():
    w, h, a = 30.0, 12.0, 7.0
    c, s = np.cos(np.radians(a)), np.sin(np.radians(a))
    bw, bh = w * c + h * s, w * s + h * c
    assert upright_box_size(bw, bh, a) == pytest.approx((w, h), abs=1e-6)
    assert upright_box_size(bw, bh, -a) == pytest.approx((w, h), abs=1e-6)


class MarkerDetector:
    """Stands in for the network: 'reads' the names only when a red marker is at the top-left corner."""

    def __init__(self, upright_boxes):
        self.boxes = upright_boxes

    def detect(self, image_rgb):
        corner = image_rgb[:20, :20].reshape(-1, 3).mean(0)
        if corner[0] > 200 and corner[1] < 50 and image_rgb.shape[1] > image_rgb.shape[0]:
            return [LeadNameBox(b.name, b.box, 0.9) for b in self.boxes]
        return [LeadNameBox("I", Box(5, 5, 9, 19), 0.3)]


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_quarter_turns_are_detected_and_undone(k):
    page = grid_page(0.0)
    page[:20, :20] = (255, 0, 0)
    det = MarkerDetector(layout_boxes())
    turned = turn_quarters(page, k)
    quarter, boxes, confident = find_orientation(turned, det)
    assert quarter == (4 - k) % 4
    assert confident
    rect = rectify_page(turned, det)
    assert rect.quarter_turns == (4 - k) % 4
    assert rect.image.shape == page.shape
    assert abs(rect.angle_deg) < 0.1
    assert len(rect.lead_name_boxes) == len(layout_boxes())


class NoiseDetector:
    """A weak detector: a few low, random-looking reads in every orientation."""

    def detect(self, image_rgb):
        s = 0.2 + 0.1 * (image_rgb.shape[0] % 3)
        return [LeadNameBox("V2", Box(5, 5, 20, 19), s), LeadNameBox("I", Box(40, 5, 45, 19), 0.25)]


def test_weak_detections_never_turn_the_page():
    page = grid_page(1.5)
    rect = rectify_page(turn_quarters(page, 1), NoiseDetector())
    assert rect.quarter_turns == 0 and not rect.orientation_confident
