"""The shortcuts that keep a big photo fast stay exact: a JPEG decoded at a reduced scale, the rectifier's early
area reduction, and the orientation passes on a copy at the detector's scale all map back onto the page's own
pixel grid; the networks with their batch norms folded give the same outputs."""
import functools
import os

import numpy as np
import pytest
from conftest import LEADS_12, ROOT

from paperecg.records.images import PageImage, jpeg_decode_scale, load_page
from paperecg.rectify import rectify

SHIPPED_DETECTOR = os.path.join(ROOT, "model", "detector")

# dark squares (odd sides, centred on whole file pixels) on white paper; centres (x, y) in file pixels
MARK_CENTRES = np.array([[200.0, 150.0], [1400.0, 180.0], [820.0, 620.0], [230.0, 1010.0], [1390.0, 1000.0]])
MARK_HALF_PX = 6


def marked_page(width_px: int = 1601, height_px: int = 1203) -> np.ndarray:
    img = np.full((height_px, width_px, 3), 250, np.uint8)
    for x, y in MARK_CENTRES.astype(int):
        img[y - MARK_HALF_PX:y + MARK_HALF_PX + 1, x - MARK_HALF_PX:x + MARK_HALF_PX + 1] = 20
    return img


def mark_centroids(image_rgb: np.ndarray) -> np.ndarray:
    """(x, y) darkness-weighted centroid of every mark, in the order of MARK_CENTRES (nearest blob)."""
    import cv2

    dark = 255.0 - np.asarray(image_rgb, np.float64).mean(axis=2)
    dark = np.where(dark > 40, dark, 0.0)
    n, labels = cv2.connectedComponents((dark > 0).astype(np.uint8))
    ys, xs = np.mgrid[:dark.shape[0], :dark.shape[1]]
    found = []
    for k in range(1, n):
        w = dark * (labels == k)
        found.append([(w * xs).sum() / w.sum(), (w * ys).sum() / w.sum()])
    return np.array(found)


def match(found: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Per truth point, its distance to the nearest found point."""
    return np.array([np.hypot(*(found - t).T).min() for t in truth])


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory):
    from PIL import Image

    path = tmp_path_factory.mktemp("jpeg") / "page-0.jpg"
    Image.fromarray(marked_page()).save(path, quality=95)
    return str(path)


def test_decode_scale_is_the_largest_dct_reduction_that_keeps_the_long_side():
    assert jpeg_decode_scale(4000, 3000, 3000) == 1  # a 12-MP photo is decoded in full: 2000 px is too few
    assert jpeg_decode_scale(7000, 5400, 3000) == 2
    assert jpeg_decode_scale(13000, 9000, 3000) == 4
    assert jpeg_decode_scale(30000, 20000, 3000) == 8
    assert jpeg_decode_scale(7000, 5400, None) == 1


def test_reduced_jpeg_decode_maps_back_onto_the_file_grid(big_jpeg):
    full = load_page(big_jpeg, reduce_to_px=None)
    assert full.decode_scale == 1 and full.rgb.shape == (1203, 1601, 3)
    page = load_page(big_jpeg, reduce_to_px=400)
    assert page.decode_scale == 4
    assert page.rgb.shape == (301, 401, 3)  # libjpeg's ceil(size / 4)
    err = match(page.to_file_px(mark_centroids(page.rgb)), MARK_CENTRES)
    # pixel-centre alignment: a plain x * 4 would be 1.5 px off
    assert err.max() < 0.3, err


def test_png_and_small_jpeg_are_decoded_in_full(tmp_path, big_jpeg):
    from PIL import Image

    png = tmp_path / "page-0.png"
    Image.fromarray(marked_page()).save(png)
    assert load_page(str(png), reduce_to_px=400).decode_scale == 1
    assert load_page(big_jpeg, reduce_to_px=1000).decode_scale == 1  # 1601 // 2 < 1000


def test_reduced_decode_then_early_reduction_map_back_exactly(big_jpeg, monkeypatch):
    """JPEG at 1/2, then the rectifier's area reduction (cap lowered to 500 px for a small test page), then the
    overlay's inverse map and the decode scale: the marks land on their file pixels."""
    from paperecg.pipeline.overlay import rectified_to_original

    page = load_page(big_jpeg, reduce_to_px=700)
    assert page.decode_scale == 2 and page.rgb.shape == (602, 801, 3)
    monkeypatch.setattr(rectify, "reduce_large_input", functools.partial(rectify.reduce_large_input, max_side_px=500))
    rect = rectify.rectify_page(page.rgb, None)
    assert rect.input_scale == pytest.approx(500 / 801)
    assert rect.frame.is_identity  # no grid (the lines' tilt of the bare marks, if any, is undone too)
    back = rectified_to_original(mark_centroids(rect.image), rect, page.rgb.shape[:2])
    err = match(page.to_file_px(back), MARK_CENTRES)
    assert err.max() < 0.35, err  # (a plain x * 2 for the decode would be 0.7 px off)


def test_to_file_px_is_the_identity_for_a_full_decode():
    page = PageImage("x.png", np.zeros((4, 4, 3), np.uint8))
    pts = np.array([[0.0, 0.0], [3.0, 2.5]])
    np.testing.assert_array_equal(page.to_file_px(pts), pts)


@pytest.mark.skipif(not os.path.isdir(SHIPPED_DETECTOR), reason="no shipped detector")
def test_orientation_passes_read_a_copy_at_the_detector_scale_and_return_page_boxes():
    """A 300-dpi page turned upside down: every orientation pass sees a copy whose long side is the detector's
    own, and the boxes come back in the page's pixels (they match the page's own names)."""
    import cv2
    import torch

    torch.set_num_threads(1)
    from paperecg.records.synthetic import synthetic_ecg
    from paperecg.rectify.data import with_label_boxes
    from paperecg.rectify.detector import LeadNameDetector
    from paperecg.rectify.evaluate import match_names
    from paperecg.geometry import Box, LeadNameBox
    from paperecg.render.page import render_page

    detector = LeadNameDetector.load(SHIPPED_DETECTOR)
    rendered = with_label_boxes(render_page(synthetic_ecg(250.0, 10.0, "NORM", 7, 12), 250.0, LEADS_12))
    f = 1.5
    image = cv2.resize(rendered.image, None, fx=f, fy=f, interpolation=cv2.INTER_CUBIC)
    truth = [LeadNameBox(b.name, Box(b.box.x0 * f, b.box.y0 * f, b.box.x1 * f, b.box.y1 * f), b.score)
             for b in rendered.lead_name_boxes()]
    seen = []

    class Watching:
        config = detector.config

        def detect_raw(self, img, conf_threshold=None):
            seen.append(max(img.shape[:2]))
            return detector.detect_raw(img, conf_threshold)

        def name_boxes(self, boxes, scores):
            return detector.name_boxes(boxes, scores)

    k, boxes, confident, pre_deg = rectify.orient_page(rectify.turn_quarters(image, 2), Watching())
    assert (k, confident, pre_deg) == (2, True, 0.0)
    assert seen and set(seen) == {detector.config.page_long_side_px}
    assert match_names(truth, boxes) >= 0.8 * len(truth)


# --- batch norms folded for inference -------------------------------------------------------------------

def test_segmenter_batch_norms_fold_into_convolutions_without_changing_the_map():
    import torch

    from paperecg.segment.infer import fuse_conv_bn
    from paperecg.segment.model import ResUNetCBAM, SegmenterConfig

    torch.manual_seed(0)
    model = ResUNetCBAM(SegmenterConfig(base_channels=4, depth=3))
    for m in model.modules():  # running statistics far from the identity, so that folding matters
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    model.eval()
    x = torch.rand(1, model.config.in_channels // model.config.unshuffle ** 2, 64, 96)
    with torch.inference_mode():
        before = model(x)
    folded = fuse_conv_bn(model)
    assert folded > 0
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    with torch.inference_mode():
        after = model(x)
    assert torch.allclose(before, after, atol=1e-4)


@pytest.mark.skipif(not os.path.isdir(SHIPPED_DETECTOR), reason="no shipped detector")
def test_fused_detector_reads_the_same_names_and_cannot_be_saved(tmp_path):
    import torch

    torch.set_num_threads(1)
    from paperecg.records.synthetic import synthetic_ecg
    from paperecg.rectify.detector import LeadNameDetector
    from paperecg.render.page import render_page

    image = render_page(synthetic_ecg(250.0, 10.0, "NORM", 3, 12), 250.0, LEADS_12).image
    plain = LeadNameDetector.load(SHIPPED_DETECTOR, fuse=False)
    fused = LeadNameDetector.load(SHIPPED_DETECTOR)
    assert fused.fused and not plain.fused
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.network.modules())
    a, b = plain.detect_raw(image)[0], fused.detect_raw(image)[0]
    assert [x.name for x in a] == [x.name for x in b] and len(a) >= 6
    for x, y in zip(a, b):
        assert abs(x.score - y.score) < 1e-3
        assert max(abs(x.box.x0 - y.box.x0), abs(x.box.y1 - y.box.y1)) < 0.05
    with pytest.raises(ValueError):
        fused.save(tmp_path / "d")
