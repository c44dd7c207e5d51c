"""Lead names from the printed layout: confused class scores are put right by the grid the names sit on."""
import numpy as np
import pytest

from paperecg.geometry import Box, LeadNameBox
from paperecg.layouts import LAYOUTS, STANDARD_LEADS
from paperecg.rectify.names import assign_layout_names, cluster_1d, decode_layout

from test_rectify_tilt import layout_boxes, turn_boxes

CLASSES = STANDARD_LEADS
CONFUSED = {"I": "II", "III": "II", "aVR": "aVL", "aVF": "aVL", "V2": "V1", "V3": "V1", "V5": "V4", "V6": "V4"}


def confused_scores(boxes, rng, right=0.05, wrong=0.6):
    """Class scores of a detector that sees where a name is but often reads it as its look-alike."""
    scores = rng.uniform(0.0, 0.02, size=(len(boxes), len(CLASSES)))
    for i, b in enumerate(boxes):
        seen = CONFUSED.get(b.name, b.name)
        scores[i, CLASSES.index(seen)] = wrong
        scores[i, CLASSES.index(b.name)] = max(scores[i, CLASSES.index(b.name)], right if seen != b.name else wrong)
    return scores


def as_detections(boxes, scores):
    return [LeadNameBox(CLASSES[int(s.argmax())], b.box, float(s.max())) for b, s in zip(boxes, scores)]


def names_by_position(boxes):
    return sorted((round(b.box.cy), round(b.box.x0), b.name) for b in boxes)


def test_cluster_1d_splits_at_gaps():
    labels = cluster_1d(np.array([10.0, 300.0, 12.0, 305.0, 150.0]), gap=20.0)
    assert list(labels) == [0, 2, 0, 2, 1]


@pytest.mark.parametrize("layout,angle", [("3x4+1", 0.0), ("3x4+1", 4.0), ("6x2", -3.0), ("12x1", 0.0),
                                          ("3x4+3", 2.0)])
def test_confused_names_are_put_right_by_the_layout(layout, angle):
    rng = np.random.default_rng(len(layout) + int(angle))
    truth = turn_boxes(layout_boxes(layout, row_h=60.0 if layout == "12x1" else 150.0), angle)
    scores = confused_scores(truth, rng)
    raw = as_detections(truth, scores)
    assert sum(r.name != t.name for r, t in zip(raw, truth)) >= 3  # the detector alone gets names wrong
    decoded = assign_layout_names(raw, scores, CLASSES)
    assert names_by_position(decoded) == names_by_position(truth)


def test_the_rhythm_strip_keeps_its_own_name_beside_the_grid_copy():
    rng = np.random.default_rng(3)
    truth = layout_boxes("3x4+1")
    decoded = assign_layout_names(as_detections(truth, s := confused_scores(truth, rng)), s, CLASSES)
    assert [b.name for b in decoded].count("II") == 2
    assert len(decoded) == len(truth)


def test_stray_detections_off_the_grid_are_dropped_and_missing_names_tolerated():
    rng = np.random.default_rng(5)
    truth = layout_boxes("3x4+1")
    kept = [b for i, b in enumerate(truth) if i not in (0, 5)]  # two names the detector missed
    strays = [LeadNameBox("III", Box(700 + 90 * k, 20, 730 + 90 * k, 34)) for k in range(7)]  # header text
    boxes = kept + strays
    scores = confused_scores(boxes, rng)
    scores[len(kept):] *= 0.3  # strays are weak reads
    decoded = assign_layout_names(as_detections(boxes, scores), scores, CLASSES)
    assert names_by_position(decoded) == names_by_position(kept)


def test_too_few_boxes_are_left_as_read():
    boxes = [LeadNameBox("V2", Box(10, 10, 30, 24), 0.7), LeadNameBox("I", Box(300, 10, 304, 24), 0.4)]
    scores = np.zeros((2, len(CLASSES)))
    scores[0, CLASSES.index("V2")], scores[1, CLASSES.index("I")] = 0.7, 0.4
    assert assign_layout_names(boxes, scores, CLASSES) == boxes
    layout, cls, cell = decode_layout(boxes, scores, CLASSES)
    assert layout is None and list(cell) == [-1, -1]


def test_layout_is_told_apart_by_the_grid():
    rng = np.random.default_rng(9)
    for name in ("6x2", "3x4+1"):
        truth = layout_boxes(name)
        scores = confused_scores(truth, rng, right=0.3, wrong=0.3)
        layout, _, _ = decode_layout(as_detections(truth, scores), scores, CLASSES)
        assert LAYOUTS[layout].grid == LAYOUTS[name].grid


def test_a_missed_row_does_not_slide_the_rows_below():
    """ECG-Image-Kit's 12x1 with one row's name missed and III read as II: the rows keep their places on the
    page's row pitch, so III is not taken for the rhythm strip's II (nor the strip dropped)."""
    rng = np.random.default_rng(5)
    truth = [b for b in layout_boxes("12x1-eik", row_h=60.0) if b.name != "I"]  # row 3 not detected
    scores = rng.uniform(0.0, 0.02, size=(len(truth), len(CLASSES)))
    for i, b in enumerate(truth):
        scores[i, CLASSES.index(b.name)] = 0.3
    iii = next(i for i, b in enumerate(truth) if b.name == "III")
    scores[iii, CLASSES.index("III")], scores[iii, CLASSES.index("II")] = 0.01, 0.7
    decoded = assign_layout_names(as_detections(truth, scores), scores, CLASSES)
    assert names_by_position(decoded) == names_by_position(truth)


def test_an_unknown_printed_order_keeps_the_names_read():
    """Names printed in an order no known layout has (read correctly by the detector) are not renamed after the
    best-fitting known layout: lead identity comes from the printed names."""
    rng = np.random.default_rng(3)
    places = layout_boxes("6x2")
    order = [places[i].name for i in rng.permutation(len(places))]
    truth = [LeadNameBox(name, b.box) for name, b in zip(order, places)]
    scores = rng.uniform(0.0, 0.02, size=(len(truth), len(CLASSES)))
    for i, b in enumerate(truth):
        scores[i, CLASSES.index(b.name)] = 0.6
    decoded = assign_layout_names(as_detections(truth, scores), scores, CLASSES)
    assert names_by_position(decoded) == names_by_position(truth)


def test_a_shuffled_order_that_a_shifted_layout_fits_by_family_keeps_the_names_read():
    """A 3x4+1 page printed in its own order (a demo page under a header block): rows III aVF V2 aVR / V1 aVL V3
    V6 / I II V4 V5 share their name families with 3x4+3's rows shifted down by one, so the family check let that
    layout rename ten of thirteen names (three leads lost, -0.4 dB). The detector read eleven names right and two
    as their look-alikes (II as III, V5 as V2), which the names, each printed once, put right."""
    rng = np.random.default_rng(11)
    order = [["III", "aVF", "V2", "aVR"], ["V1", "aVL", "V3", "V6"], ["I", "II", "V4", "V5"], ["II"]]
    truth = [LeadNameBox(name, Box(40 + 250 * c, 200 + 150 * r, 60 + 250 * c, 214 + 150 * r))
             for r, row in enumerate(order) for c, name in enumerate(row)]
    scores = rng.uniform(0.0, 0.02, size=(len(truth), len(CLASSES)))
    for i, b in enumerate(truth):
        scores[i, CLASSES.index(b.name)] = rng.uniform(0.55, 0.93)
    misread = {(2, 1): ("III", 0.38, 0.06), (2, 3): ("V2", 0.53, 0.25)}  # (row, col): read as, its score, truth's
    for (r, c), (seen, s_seen, s_true) in misread.items():
        i = sum(len(row) for row in order[:r]) + c
        scores[i, CLASSES.index(seen)], scores[i, CLASSES.index(truth[i].name)] = s_seen, s_true
    raw = as_detections(truth, scores)
    assert sum(r.name != t.name for r, t in zip(raw, truth)) == 2
    decoded = assign_layout_names(raw, scores, CLASSES)
    assert names_by_position(decoded) == names_by_position(truth)
