"""Pages turned by quarter turns come back upright from the shipped lead-name detector; the detector's gate reads
the page-level figures saved in its config; an uncertain page never outvotes a confident page of the record."""
import json
import os

import numpy as np
import pytest
from conftest import LEADS_12, ROOT

from paperecg.geometry import Box, LeadNameBox
from paperecg.records.synthetic import synthetic_ecg
from paperecg.rectify.evaluate import match_names, page_name_figures
from paperecg.rectify.rectify import find_orientation, rectify_page, turn_quarters

SHIPPED_DETECTOR = os.path.join(ROOT, "model", "detector")


@pytest.fixture(scope="module")
def detector():
    import torch

    torch.set_num_threads(1)
    from paperecg.rectify.detector import LeadNameDetector

    return LeadNameDetector.load(SHIPPED_DETECTOR)


@pytest.fixture(scope="module")
def page():
    """A generated 3x4+1 page (200 dpi, ECG-Image-Kit-like style) and its truth name boxes (label convention)."""
    from paperecg.rectify.data import with_label_boxes
    from paperecg.render.page import render_page

    fs_hz = 250.0
    rendered = with_label_boxes(render_page(synthetic_ecg(fs_hz, 10.0, "NORM", 7, 12), fs_hz, LEADS_12))
    return rendered.image, rendered.lead_name_boxes()


@pytest.mark.parametrize("k", [1, 2, 3])
def test_turned_pages_come_back_upright_with_right_names(detector, page, k):
    image, truth = page
    rect = rectify_page(turn_quarters(image, k), detector)
    assert rect.quarter_turns == (4 - k) % 4
    assert rect.orientation_confident and rect.orientation_note == ""
    assert rect.image.shape == image.shape
    assert abs(rect.angle_deg) < 0.5
    # the upright page's names, in place: most truth names found with the right name (IoU >= 0.5)
    assert match_names(truth, rect.lead_name_boxes) >= 0.8 * len(truth)


def test_upright_page_takes_one_detector_pass(detector, page):
    image, truth = page
    calls = []

    class Counting:
        config = detector.config

        def detect_raw(self, img, conf_threshold=None):
            calls.append(img.shape)
            return detector.detect_raw(img, conf_threshold)

        def name_boxes(self, boxes, scores):
            return detector.name_boxes(boxes, scores)

    k, boxes, confident = find_orientation(image, Counting())
    assert (k, confident, len(calls)) == (0, True, 1)
    assert match_names(truth, boxes) >= 0.8 * len(truth)


def test_upside_down_is_told_from_upright(detector, page):
    """I, II and III read the same upside down: the turn must come from the other names."""
    image, _ = page
    k, _, confident = find_orientation(turn_quarters(image, 2), detector)
    assert (k, confident) == (2, True)


def test_tilted_quarter_turned_page_is_put_upright(detector, page):
    """Turned by 90 deg and tilted by 15 (beyond the +-10 deg the detector learned) on a canvas grown to hold
    it: upright, at its own size again (the fill border trimmed), names read on the corrected page."""
    from PIL import Image

    from paperecg.rectify.rectify import paper_color

    image, truth = page
    turned = turn_quarters(image, 1)
    tilted = np.asarray(Image.fromarray(turned).rotate(15.0, resample=Image.BICUBIC, expand=True,
                                                       fillcolor=paper_color(image)))
    rect = rectify_page(tilted, detector)
    assert rect.quarter_turns == 3 and rect.orientation_confident
    assert rect.angle_deg == pytest.approx(15.0, abs=0.5)  # the tilt survives the quarter turn, and is removed
    assert np.abs(np.subtract(rect.image.shape[:2], image.shape[:2])).max() <= 8
    x0, y0 = rect.trim_offset_px
    assert x0 > 100 and y0 > 100
    assert match_names(truth, rect.lead_name_boxes, iou_min=0.3) >= 0.8 * len(truth)


def test_a_page_without_names_is_read_as_given_and_says_so(detector):
    blank = np.full((850, 1100, 3), 245, np.uint8)
    rect = rectify_page(blank, detector)
    assert rect.quarter_turns == 0 and not rect.orientation_confident
    assert "orientation uncertain" in rect.orientation_note
    assert rectify_page(blank, None).orientation_note == ""  # no detector: nothing to report per page


# --- the gate --------------------------------------------------------------------------------------------

def test_gate_reads_page_level_figures():
    from paperecg.pipeline.digitizer import detector_gate

    assert detector_gate({"val_recall": 0.67, "page_name_recall": 0.97, "page_name_precision": 0.98}) == ""
    assert "recall" in detector_gate({"val_recall": 0.95, "page_name_recall": 0.5, "page_name_precision": 0.98})
    assert "precision" in detector_gate({"page_name_recall": 0.95, "page_name_precision": 0.4})
    assert "crop" in detector_gate({"val_recall": 0.67})  # no page-level figures: the crop figure decides
    assert detector_gate({}) == ""


def test_shipped_detector_is_used_by_the_digitizer():
    from paperecg.pipeline.digitizer import Digitizer

    from paperecg.pipeline.digitizer import MIN_PAGE_NAME_PRECISION, MIN_PAGE_NAME_RECALL

    with open(os.path.join(SHIPPED_DETECTOR, "config.json")) as f:
        extra = json.load(f)["extra"]
    # measured on the training mix's held-out pages, a third of them photographs since session 8 (0.86 / 0.90;
    # the session-4 weights score 0.82 / 0.88 there): clear of the gate, not at its edge
    assert extra["page_eval_pages"] >= 40
    assert extra["page_name_recall"] >= MIN_PAGE_NAME_RECALL + 0.05
    assert extra["page_name_precision"] >= MIN_PAGE_NAME_PRECISION + 0.05
    messages = []
    dig = Digitizer.load(os.path.join(ROOT, "model"), log=messages.append)
    assert dig.detector is not None, messages


def test_page_name_figures_count_named_boxes():
    truth = [LeadNameBox("V1", Box(10, 10, 40, 30)), LeadNameBox("aVR", Box(100, 10, 150, 30))]

    class Reads:
        def __init__(self, boxes):
            self.boxes = boxes

        def detect(self, image):
            return self.boxes

    img = np.zeros((50, 200, 3), np.uint8)
    wrong_name = LeadNameBox("aVL", Box(100, 10, 150, 30), 0.9)
    f = page_name_figures(Reads([LeadNameBox("V1", Box(11, 10, 41, 30), 0.9), wrong_name]), [(img, truth)])
    assert (f["page_name_recall"], f["page_name_precision"], f["page_eval_pages"]) == (0.5, 0.5, 1)
    assert page_name_figures(Reads([]), [(img, truth)])["page_name_recall"] == 0.0


# --- one record, several pages ---------------------------------------------------------------------------

def _extraction(signal, confidence):
    from paperecg.extract import Extraction
    from paperecg.geometry import PageGeometry

    return Extraction(signal, PageGeometry(8.0, 8.0), {n: confidence for n in LEADS_12})


def test_uncertain_page_never_outvotes_a_confident_page():
    from paperecg.pipeline.digitizer import combine_pages

    n = 100
    good = np.tile(np.linspace(0, 1, n)[:, None], (1, 12))
    bad = -good
    bad[:, 3] = np.nan  # a lead the confident page did not read either way comes from the other page
    good[:, 5] = np.nan
    empty = np.full((n, 12), np.nan)
    exts = [_extraction(bad, 0.99), _extraction(good, 0.2)]
    out = combine_pages(exts, LEADS_12, empty, orientation_confident=[False, True])
    expected = good.copy()
    expected[:, 5] = bad[:, 5]  # only the uncertain page read lead 5
    np.testing.assert_array_equal(out, expected)
    # pages of equal standing: the lead confidence decides, as before
    out_equal = combine_pages(exts, LEADS_12, empty, orientation_confident=[True, True])
    assert np.nanmean(out_equal[:, 0]) < 0


def test_good_page_plus_upside_down_copy_gives_the_good_pages_leads(detector, page, tmp_path):
    """The whole digitizer on a record with an upright page and an upside-down copy of it: the copy is put
    upright too, so every lead is read the right way up (none is the upside-down reading)."""
    from PIL import Image

    from paperecg.pipeline.digitizer import Digitizer
    from paperecg.records.header import HeaderInfo
    from paperecg.records.images import PageImage

    image, _ = page
    dig = Digitizer.load(os.path.join(ROOT, "model"), log=lambda m: None)
    fs_hz, n = 250.0, 2500
    header = HeaderInfo("r", fs_hz, n, list(LEADS_12), [1000.0] * 12, [0] * 12, ["mV"] * 12, ["16"] * 12)
    Image.fromarray(image).save(tmp_path / "r-0.png")
    Image.fromarray(turn_quarters(image, 2)).save(tmp_path / "r-1.png")
    truth = synthetic_ecg(fs_hz, 10.0, "NORM", 7, 12)
    res_good = dig.digitize_page(PageImage(str(tmp_path / "r-0.png"), image), header)
    res_flip = dig.digitize_page(PageImage(str(tmp_path / "r-1.png"), turn_quarters(image, 2)), header)
    assert res_flip.rectified.quarter_turns == 2 and res_flip.rectified.orientation_confident
    from paperecg.pipeline.digitizer import combine_page_results

    out = combine_page_results([res_good, res_flip], LEADS_12, np.full((n, 12), np.nan), log=lambda m: None)
    for j in range(12):
        col = out[:, j]
        ok = np.isfinite(col) & np.isfinite(truth[:, j])
        if ok.sum() > 100:
            assert np.corrcoef(col[ok], truth[ok, j])[0, 1] > 0.5, LEADS_12[j]


@pytest.mark.parametrize("k", [0, 1, 2, 3])
def test_turned_crop_origin_matches_np_rot90(k):
    from paperecg.rectify.rectify import turned_crop_origin

    image = np.arange(7 * 11).reshape(7, 11)
    box = (2, 1, 5, 4)  # x, y, w, h
    crop = image[1:5, 2:7]
    turned, turned_crop = np.rot90(image, k), np.rot90(crop, k)
    x, y = turned_crop_origin(box, image.shape, k)
    h, w = turned_crop.shape
    assert np.array_equal(turned[y:y + h, x:x + w], turned_crop)


def test_paper_box_finds_the_sheet_on_a_table_and_leaves_a_scan_whole(page):
    from paperecg.render.labels import RenderedPage  # noqa: F401  (the page fixture's type)
    from paperecg.rectify.rectify import paper_box

    image, _ = page
    assert paper_box(image) is None  # a scan: the sheet fills the image
    h, w = image.shape[:2]
    table = np.zeros((h + 600, w + 900, 3), np.uint8)
    table[...] = (120, 80, 50)  # brown wood
    table[250:250 + h, 400:400 + w] = image
    x, y, bw, bh = paper_box(table)
    assert abs(x - 400) < 0.03 * w and abs(y - 250) < 0.03 * h
    assert abs(bw - w) < 0.06 * w and abs(bh - h) < 0.06 * h


def test_a_sideways_sheet_on_a_table_comes_back_upright_with_names_in_place(detector, page):
    image, truth = page
    h, w = image.shape[:2]
    table = np.zeros((h + 1400, w + 1800, 3), np.uint8)
    table[...] = (110, 75, 45)
    table[700:700 + h, 900:900 + w] = image
    from paperecg.rectify.rectify import orient_page

    k, boxes, confident, pre_deg = orient_page(turn_quarters(table, 1), detector)
    assert k == 3 and confident and pre_deg == 0.0
    # the boxes in the pixels of the photo turned back (the table as laid out), not of the crop
    moved = [LeadNameBox(b.name, Box(b.box.x0 + 900, b.box.y0 + 700, b.box.x1 + 900, b.box.y1 + 700), b.score)
             for b in truth]
    assert match_names(moved, boxes) >= 0.8 * len(truth)
