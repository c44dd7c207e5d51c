"""Detector data (label convention, crops, YOLO files) and a tiny offline training run.

Run under `unshare -rn` where available; the socket guard below also fails the training test if
ultralytics tries to reach the network.
"""
import json
import os
import socket

import numpy as np
import pytest

from paperecg.geometry import Box, LeadNameBox
from paperecg.rectify.data import (
    INK_TO_LABEL_PAD,
    label_box_from_ink,
    label_quad_from_ink,
    page_crops,
    redraw_names_truetype,
    render_training_page,
    yolo_label_lines,
)
from paperecg.records.synthetic import synthetic_ecg

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def test_label_box_pads_ink_box_like_ecg_image_kit():
    ink = Box(100.0, 50.0, 110.0, 72.0)  # 22 px ink height, as a name at 200 dpi
    box = label_box_from_ink(ink)
    assert box.height == pytest.approx(22 * (1 + INK_TO_LABEL_PAD[1] + INK_TO_LABEL_PAD[3]))
    assert box.x0 < ink.x0 and box.x1 > ink.x1 and box.y1 > ink.y1 and box.y0 <= ink.y0


def test_label_quad_padding_turns_with_the_box():
    from paperecg.geometry import rotate_points
    from paperecg.render.labels import box_corners

    ink = Box(100.0, 50.0, 140.0, 72.0)
    upright = label_quad_from_ink(box_corners(ink))
    assert Box.from_points(upright).iou(label_box_from_ink(ink)) == pytest.approx(1.0)
    centre = (300.0, 400.0)
    turned = label_quad_from_ink(rotate_points(box_corners(ink), 7.0, centre))
    want = rotate_points(box_corners(label_box_from_ink(ink)), 7.0, centre)
    assert np.allclose(turned, want, atol=1e-6)


def test_page_crops_keep_boxes_inside_and_at_detection_scale():
    rng = np.random.default_rng(0)
    img = np.full((850, 1100, 3), 255, np.uint8)
    boxes = [LeadNameBox("V2", Box(300, 400, 330, 420)), LeadNameBox("I", Box(10, 10, 16, 30))]
    crops = page_crops(img, boxes, rng, long_side_px=550, crop_px=128, num_crops=20, scale_jitter=0.0)
    assert len(crops) == 20
    seen = 0
    for crop, kept in crops:
        assert crop.shape == (128, 128, 3)
        for b in kept:
            assert 0 <= b.box.x0 < b.box.x1 <= 128 and 0 <= b.box.y0 < b.box.y1 <= 128
            if b.name == "V2":  # halved with the page
                assert b.box.width == pytest.approx(15, abs=0.01)
                seen += 1
    assert seen > 0
    lines = yolo_label_lines(crops[0][1], 128, 128)
    for line in lines:
        cls, *vals = line.split()
        assert 0 <= int(cls) < 12 and all(0 <= float(v) <= 1 for v in vals)


def test_truetype_names_replace_hershey_names():
    from paperecg.render.page import RenderStyle, render_page

    sig = synthetic_ecg(100.0, 10.0, "NORM", 0, 12)
    style = RenderStyle(dpi=100)
    page = render_page(sig, 100.0, LEADS, style)
    plain = render_page(sig, 100.0, LEADS, RenderStyle(dpi=100, lead_names=False))
    new = redraw_names_truetype(page, plain.image, np.random.default_rng(1))
    assert not np.array_equal(new.image, page.image)
    gray = new.image.mean(axis=2)
    for t in new.leads:
        if t.text_box is None:
            continue
        b = t.text_box
        ink = gray[int(b.y0) + 1:int(np.ceil(b.y1)), int(b.x0) + 1:int(np.ceil(b.x1))]
        assert ink.size and ink.min() < 100  # the new glyphs are inside the new box
    # ECG-Image-Kit's convention (DejaVu Sans, 200 dpi): 'I' 8 px wide in a 29 px high box, 'aVR' 60 px
    boxes = {t.name: t.text_box for t in new.leads if t.text_box is not None}
    assert boxes["I"].width / boxes["I"].height == pytest.approx(8.5 / 29, abs=0.06)
    assert boxes["aVR"].width / boxes["aVR"].height == pytest.approx(60 / 29, abs=0.15)


def test_render_training_page_labels_follow_rotation():
    sig = synthetic_ecg(100.0, 10.0, "NORM", 3, 12)
    rng = np.random.default_rng(5)
    image, boxes, angle = render_training_page(sig, 100.0, LEADS, rng)
    assert image.ndim == 3 and len(boxes) >= 12
    h, w = image.shape[:2]
    inside = [b for b in boxes if 0 <= b.box.cx < w and 0 <= b.box.cy < h]
    assert len(inside) >= 10
    gray = image.mean(axis=2)
    dark = [gray[int(b.box.y0):int(b.box.y1) + 1, int(b.box.x0):int(b.box.x1) + 1].min() for b in inside]
    assert np.median(dark) < 120  # boxes sit on printed names


def test_photographed_training_page_labels_follow_the_paper():
    sig = synthetic_ecg(100.0, 10.0, "NORM", 3, 12)
    # (seed 8: a photo with the whole page in view; others cut an edge off, names and all)
    image, boxes, _ = render_training_page(sig, 100.0, LEADS, np.random.default_rng(8), photo_prob=1.0)
    plain, _, _ = render_training_page(sig, 100.0, LEADS, np.random.default_rng(8), augment=False)
    assert image.shape != plain.shape  # a photo of the page on a table, not the page
    h, w = image.shape[:2]
    inside = [b for b in boxes if 0 <= b.box.x0 and b.box.x1 < w and 0 <= b.box.y0 and b.box.y1 < h]
    assert len(inside) >= 10
    gray = image.mean(axis=2)
    dark = [gray[int(b.box.y0):int(b.box.y1) + 1, int(b.box.x0):int(b.box.x1) + 1].min() for b in inside]
    assert np.median(dark) < 120  # boxes sit on printed names


@pytest.fixture
def no_network(monkeypatch):
    attempts = []

    def guard(self, *args, **kwargs):
        attempts.append(args)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", guard)
    monkeypatch.setattr(socket.socket, "connect_ex", guard)
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: guard(None, *a))
    return attempts


def test_tiny_offline_training_saves_loadable_detector(tmp_path, record_factory, no_network):
    import torch

    from paperecg.rectify.detector import DetectorConfig, LeadNameDetector
    from paperecg.rectify.train import train_detector

    records = [record_factory(name=f"0000{i}_lr", seed=i) for i in range(3)]
    out = tmp_path / "detector"
    cfg = DetectorConfig(page_long_side_px=256, crop_px=96)
    det = train_detector(records, str(out), minutes=0.3, config=cfg, max_pages_per_record=1,
                         crops_per_page=2, batch=4, device="cpu", log=lambda *a: None)
    torch.set_num_threads(1)
    assert no_network == []
    assert (out / "config.json").exists() and (out / "detector.safetensors").exists()
    assert not (out / "_work").exists()  # crops and ultralytics runs are cleaned up
    saved = json.loads((out / "config.json").read_text())
    assert saved["page_long_side_px"] == 256 and saved["train_pages"] >= 2
    # the gate's figures: page-level names on rendered pages of the held-out record, measured at the end
    extra = saved["extra"]
    assert extra["page_eval_pages"] >= 1 and 0.0 <= extra["page_name_recall"] <= 1.0
    assert 0.0 <= extra["page_name_precision"] <= 1.0 and "held-out" in extra["page_eval_source"]
    loaded = LeadNameDetector.load(out)
    x = torch.rand(1, 3, 96, 128)
    with torch.inference_mode():
        a = det.network(x)[0]
        b = loaded.network(x)[0]
    assert torch.allclose(a, b, atol=1e-5)
    found = loaded.detect(np.full((200, 260, 3), 255, np.uint8))
    assert isinstance(found, list)
    for f in found:
        assert f.name in LEADS and 0 <= f.score <= 1


def test_fine_tune_starts_from_the_given_detector(tmp_path, record_factory, no_network):
    """--init-from: training seeds from the saved weights (with a vanishing learning rate the convolutions
    stay the base detector's, to ultralytics' fp16 checkpoint rounding; ultralytics would otherwise rebuild a
    fresh network from its yaml, whose random weights differ by ~0.1)."""
    import torch

    from paperecg.rectify.detector import DetectorConfig, LeadNameDetector
    from paperecg.rectify.train import train_detector

    records = [record_factory(name=f"0000{i}_lr", seed=i) for i in range(3)]
    cfg = DetectorConfig(page_long_side_px=256, crop_px=96)
    torch.manual_seed(123)
    base = LeadNameDetector.create(cfg)
    base.save(tmp_path / "base")
    tuned = train_detector(records, str(tmp_path / "tuned"), minutes=0.3, config=cfg, max_pages_per_record=1,
                           crops_per_page=2, batch=4, device="cpu", init_from=str(tmp_path / "base"),
                           lr0=1e-12, log=lambda *a: None)
    torch.set_num_threads(1)
    before, after = base.network.state_dict(), tuned.network.state_dict()
    conv = [k for k in before if k.endswith("conv.weight")]
    assert len(conv) > 20
    for k in conv:
        assert torch.allclose(before[k], after[k], rtol=2e-3, atol=1e-4), k
    with pytest.raises(ValueError, match="init-from"):
        train_detector(records, str(tmp_path / "bad"), minutes=0.3,
                       config=DetectorConfig(page_long_side_px=256, crop_px=96, class_names=("I", "II")),
                       max_pages_per_record=1, crops_per_page=2, batch=4, device="cpu",
                       init_from=str(tmp_path / "base"), log=lambda *a: None)


def test_best_validation_reads_the_best_epoch(tmp_path):
    from paperecg.rectify.train import best_validation

    csv_path = tmp_path / "results.csv"
    csv_path.write_text("epoch, metrics/precision(B), metrics/recall(B), metrics/mAP50(B)\n"
                        "1, 0.5, 0.4, 0.30\n2, 0.9, 0.85, 0.80\n3, 0.7, 0.9, 0.60\n")
    assert best_validation(csv_path) == {"val_precision": 0.9, "val_recall": 0.85, "val_map50": 0.8, "epochs": 3}
    assert best_validation(tmp_path / "missing.csv") == {}


def test_digitizer_leaves_a_poorly_validated_detector_unused(tmp_path, monkeypatch):
    from types import SimpleNamespace

    from paperecg.pipeline import digitizer as dig
    from paperecg.rectify import detector as det

    (tmp_path / dig.DETECTOR_DIR).mkdir()
    for recall, used in ((0.2, False), (0.97, True), (None, True)):
        extra = {} if recall is None else {"val_recall": recall}
        fake = SimpleNamespace(config=SimpleNamespace(extra=extra))
        monkeypatch.setattr(det.LeadNameDetector, "load", classmethod(lambda cls, path: fake))
        messages = []
        loaded = dig.Digitizer.load(str(tmp_path), log=messages.append)
        assert (loaded.detector is fake) == used, recall
        assert any("left unused" in m for m in messages) == (not used)
