"""The page frame (rectify/frame.py): photographed pages come back to flat paper at the canonical scale."""
import re

import cv2
import numpy as np
import pytest

from paperecg.rectify.frame import CANONICAL_PX_PER_MM, find_page_frame, identity_frame
from paperecg.rectify.rectify import rectify_page
from paperecg.records.synthetic import synthetic_ecg
from paperecg.render.page import RenderStyle, render_page
from paperecg.render.photo import PhotoParams, grid_crossings_mm, photograph_page
from paperecg.warp import MeshWarp

LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def _page(dpi: float = 200.0, origin_mm=(1.3, 2.6)):
    style = RenderStyle(dpi=dpi, grid_origin_mm=origin_mm)
    signal = synthetic_ecg(500.0, 10.0, "NORM", 3, 12)
    return render_page(signal, 500.0, LEADS, style), style


def _residual_mm(frame, photo_xy, mm):
    got = frame.to_canonical(photo_xy)
    want = mm * CANONICAL_PX_PER_MM
    shift = np.median(got - want, axis=0)
    return np.hypot(*(got - want - shift).T) / CANONICAL_PX_PER_MM


@pytest.fixture(scope="module")
def photo():
    page, style = _page()
    params = PhotoParams(out_scale=1.1, page_frac=0.9, angle_deg=6.0, perspective_frac=0.06,
                         corner_jitter=(0.8, -0.5, -0.9, 0.7, 0.6, 0.9, -0.4, -0.8), curl_mm=1.5, roll_mm=2.0,
                         table_rgb=(60, 80, 40), seed=5)
    shot = photograph_page(page, params=params)
    flat_xy, mm = grid_crossings_mm((page.height, page.width), page.geometry.px_per_mm_x, style.grid_origin_mm)
    return shot, shot.warp.inverse(flat_xy), mm


def test_photographed_page_comes_back_to_paper_mm(photo):
    shot, xy, mm = photo
    # without the frame (today's tilt alone) the crossings are millimetres off
    assert np.median(_residual_mm(identity_frame(shot.page.image.shape[:2]), xy, mm)) > 2.0
    frame = find_page_frame(shot.page.image)
    assert frame.method in ("grid", "grid+warp")
    res = _residual_mm(frame, xy, mm)
    assert np.median(res) < 0.2
    assert np.percentile(res, 95) < 0.6
    # the canonical page is at 200 dpi: about a letter page
    h, w = frame.shape_hw
    assert abs(w / CANONICAL_PX_PER_MM - 279.4) < 12 and abs(h / CANONICAL_PX_PER_MM - 215.9) < 12


def test_near_edge_of_a_slanted_photo_comes_back_too():
    """Strong perspective: the near side of the page is seen far larger than the page's own grid period, out
    of the first tile search's reach; the second pass (tiles measured around the first fit's local period,
    placed by growing from the fit's tiles) brings that edge back instead of extrapolating it (before:
    p95 0.74 mm, the worst crossing 1.24 mm off)."""
    page, style = _page()
    params = PhotoParams(out_scale=1.0, page_frac=0.95, angle_deg=4.0, perspective_frac=0.12,
                         corner_jitter=(-1, -1, 1, 1, 1, -1, -1, 1), curl_mm=2.0, roll_mm=2.5,
                         table_rgb=(60, 80, 40), seed=7)
    shot = photograph_page(page, params=params)
    flat_xy, mm = grid_crossings_mm((page.height, page.width), page.geometry.px_per_mm_x, style.grid_origin_mm)
    xy = shot.warp.inverse(flat_xy)
    h, w = shot.page.image.shape[:2]
    on = (xy[:, 0] >= 0) & (xy[:, 0] <= w - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= h - 1)
    res = _residual_mm(find_page_frame(shot.page.image), xy[on], mm[on])
    assert np.median(res) < 0.1
    assert np.percentile(res, 95) < 0.4
    assert res.max() < 0.8


def test_points_round_trip(photo):
    shot, xy, _ = photo
    frame = find_page_frame(shot.page.image)
    back = frame.to_original(frame.to_canonical(xy))
    assert np.max(np.abs(back - xy)) < 0.01


def test_rectify_page_carries_the_frame_and_straightens(photo):
    from paperecg.geometry import rotate_points

    shot, xy, mm = photo
    rect = rectify_page(shot.page.image)
    assert rect.frame is not None and rect.frame.method in ("grid", "grid+warp")
    assert rect.image.shape[:2] == rect.frame.shape_hw
    # the chain photo -> tilt removed (about the photo's centre) -> border trimmed -> frame: a grid crossing
    # of the photo lands where its paper position says (up to one common shift)
    h, w = shot.page.image.shape[:2]
    rc = rotate_points(np.asarray(xy)[:, ::-1], -rect.angle_deg, ((h - 1) / 2.0, (w - 1) / 2.0))
    tilted = rc[:, ::-1] - np.asarray(rect.trim_offset_px, dtype=np.float64)
    res = _residual_mm(rect.frame, tilted, mm)
    assert np.median(res) < 0.2


def test_flat_200dpi_page_passes_unchanged():
    page, _ = _page()
    frame = find_page_frame(page.image)
    assert frame.method == "flat" and frame.is_identity
    assert abs(frame.source_px_per_mm - CANONICAL_PX_PER_MM) < 0.02
    rect = rectify_page(page.image)
    assert rect.image.shape == page.image.shape
    assert np.array_equal(rect.image, page.image)
    pts = np.array([[10.0, 20.0], [1500.5, 900.25]])
    assert np.max(np.abs(rect.frame.to_canonical(pts) - pts)) < 0.1


def test_big_page_is_reduced_to_the_canonical_scale():
    page, _ = _page()
    big = cv2.resize(page.image, (4000, 3091), interpolation=cv2.INTER_CUBIC)  # a 12-MP scan
    frame = find_page_frame(big)
    assert frame.method == "scale"
    assert abs(frame.source_px_per_mm / CANONICAL_PX_PER_MM - 4000 / 2200) < 0.02
    rect = rectify_page(big)
    h, w = rect.image.shape[:2]
    assert abs(w - 2200) <= 12 and abs(h - 1700) <= 12  # what the segmenter and extractor get


def test_low_dpi_page_is_upsampled_to_the_canonical_scale():
    page, _ = _page(dpi=75.0)
    frame = find_page_frame(page.image)
    assert frame.method == "scale"
    assert abs(frame.source_px_per_mm - 75.0 / 25.4) < 0.05
    rect = rectify_page(page.image)
    h, w = rect.image.shape[:2]
    assert abs(w - 2200) <= 12 and abs(h - 1700) <= 12


def test_blank_page_keeps_todays_behaviour():
    blank = np.full((850, 1100, 3), 250, np.uint8)
    frame = find_page_frame(blank)
    assert frame.method == "none" and frame.is_identity
    assert rectify_page(blank).image.shape == blank.shape


def test_mesh_warp_inverse_and_resample():
    hom = np.array([[1.1, 0.05, 3.0], [-0.04, 0.95, 7.0], [1e-5, -2e-5, 1.0]])
    mesh = np.random.default_rng(0).normal(0, 1.5, size=(6, 8, 2))
    warp = MeshWarp(hom, mesh, (0.0, 0.0), 40.0)
    p = np.random.default_rng(1).uniform(0, 250, size=(50, 2))
    assert np.max(np.abs(warp.inverse(warp.forward(p)) - p)) < 1e-3
    # resampling an image of x coordinates returns the map's x at every pixel
    src = np.tile(np.arange(400, dtype=np.float32), (400, 1))
    out = warp.resample(src, (200, 280))
    q = warp.forward(np.array([[100.0, 50.0]]))[0]
    assert abs(out[50, 100] - q[0]) < 0.05


def test_photo_labels_move_with_the_paper(photo):
    shot, _, _ = photo
    page = shot.page
    # every plotted sample of the photo lies on a trace-mask pixel (or its neighbour)
    pts = np.concatenate([t.pixels for t in page.leads])
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    r = np.clip(np.round(pts[:, 0]).astype(int), 0, page.height - 1)
    c = np.clip(np.round(pts[:, 1]).astype(int), 0, page.width - 1)
    mask = cv2.dilate(page.trace_mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert mask[r, c].mean() > 0.99
    # and the image is dark there (the trace was drawn at those points)
    grey = page.image.mean(axis=2)
    assert np.median(grey[r, c]) < np.median(grey) - 40


def test_training_dataset_can_photograph_pages(tmp_path):
    from paperecg.records.io import write_record
    from paperecg.render.dataset import RenderedPageDataset

    signal = synthetic_ecg(100.0, 10.0, "NORM", 0, 12)
    write_record(str(tmp_path), "00001_lr", signal, 100.0, LEADS, ["Age: 50"])
    plain = RenderedPageDataset(str(tmp_path), augment=True, seed=3)
    photo = RenderedPageDataset(str(tmp_path), augment=True, seed=3, photo_prob=1.0)
    page = photo[0]
    assert page.meta.get("look") == "photo"
    # the labels are in the photo's pixels: the plotted points lie on the (moved) trace mask
    pts = np.concatenate([t.pixels for t in page.leads])
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    r = np.clip(np.round(pts[:, 0]).astype(int), 0, page.height - 1)
    c = np.clip(np.round(pts[:, 1]).astype(int), 0, page.width - 1)
    assert cv2.dilate(page.trace_mask.astype(np.uint8), np.ones((3, 3), np.uint8))[r, c].mean() > 0.99
    # off by default: the same seed gives the same page as before the option existed
    from paperecg.render.dataset import render_training_page, page_seed

    again = render_training_page(plain.records[0], np.random.default_rng(page_seed(3, 0, 0)), True)
    assert np.array_equal(plain[0].image, again.image)


def test_very_large_photo_is_reduced_before_rectification_and_overlays_map_back():
    """A 12-MP input is area-reduced before the detector, tilt and frame (the speed of big phone photos);
    the overlay's inverse map still lands on the input's own pixels."""
    from paperecg.pipeline.overlay import rectified_to_original
    from paperecg.rectify.rectify import MAX_INPUT_SIDE_PX

    page, _ = _page()
    big = cv2.resize(page.image, (4000, round(4000 * page.image.shape[0] / page.image.shape[1])),
                     interpolation=cv2.INTER_CUBIC)
    rect = rectify_page(big)
    assert rect.input_scale == pytest.approx(MAX_INPUT_SIDE_PX / 4000)
    # a point of the rectified page maps to the place of the same paper point on the big input (flat page:
    # the canonical page equals the 200-dpi render, which the big input magnifies by 4000 / width)
    pts = np.array([[500.0, 400.0], [1700.0, 1300.0]])
    back = rectified_to_original(pts, rect, big.shape[:2])
    assert np.max(np.abs(back - (pts + 0.5) * (4000 / page.image.shape[1]) + 0.5)) < 3.0


@pytest.mark.parametrize("quarter_turns", [0, 1, 3])
def test_forward_chain_map_follows_the_rectifier_and_inverts_the_overlay_map(quarter_turns):
    """original_to_rectified runs the rectifier's chain (reduce, quarter turns, tilt, trim, frame) forwards:
    a mark on the input lands where the chain's own image operations put it, and rectified_to_original
    brings it back."""
    from paperecg.pipeline.overlay import original_to_rectified, rectified_to_original
    from paperecg.rectify.frame import PageFrame
    from paperecg.rectify.rectify import RectifiedPage, reduce_large_input, rotate_image, turn_quarters

    h, w = 300, 420
    original = np.full((h, w, 3), 255, np.uint8)
    marks = np.array([[60.0, 50.0], [300.0, 120.0], [200.0, 240.0]])
    for x, y in marks.astype(int):
        original[y - 2:y + 3, x - 2:x + 3] = 0
    small, scale = reduce_large_input(original, 360)
    angle, trim = 4.0, (7, 5)
    img = rotate_image(turn_quarters(small, quarter_turns), -angle, (255, 255, 255))
    img = img[trim[1]:, trim[0]:]
    # a frame that shrinks by 0.8 and shifts (canonical px -> trimmed-page px), bent by a smooth mesh
    hom = np.array([[1.25, 0.02, 3.0], [-0.01, 1.25, -2.0], [0.0, 0.0, 1.0]])
    mesh = np.zeros((6, 6, 2))
    mesh[2:4, 2:4] = (1.5, -1.0)
    warp = MeshWarp(hom, mesh, (0.0, 0.0), 60.0)
    frame = PageFrame((260, 260), "grid+warp", warp)
    canon = frame.warp_image(img)
    rect = RectifiedPage(canon, [], angle, quarter_turns, trim_offset_px=trim, frame=frame, input_scale=scale)
    got = original_to_rectified(marks, rect, (h, w))
    for (x, y), (gx, gy) in zip(marks, got):
        r0, c0 = int(round(gy)), int(round(gx))
        patch = canon[max(r0 - 6, 0):r0 + 7, max(c0 - 6, 0):c0 + 7].min(axis=2).astype(float)
        rr, cc = np.nonzero(patch < 160)
        assert len(rr) > 0
        wgt = 255.0 - patch[rr, cc]
        centre = np.array([np.sum(cc * wgt) / wgt.sum() + max(c0 - 6, 0), np.sum(rr * wgt) / wgt.sum() + max(r0 - 6, 0)])
        assert np.hypot(*(centre - (gx, gy))) < 0.8
    assert np.max(np.abs(rectified_to_original(got, rect, (h, w)) - marks)) < 0.01


def test_page_without_grid_is_straightened_by_its_lines_and_the_log_says_so():
    """The fallback chain: no printed grid -> the tilt comes from the trace/text lines, and the frame's log
    line says which evidence was used; a blank page says nothing straightened it."""
    from paperecg.rectify.rectify import rotate_image

    style = RenderStyle(dpi=200.0, show_grid=False)
    page = render_page(synthetic_ecg(500.0, 10.0, "NORM", 3, 12), 500.0, LEADS, style)
    # its trace rows, beats and text are periodic too: they must not pass for a grid (they bent and resized
    # such pages by 1.1-2.3x)
    assert rectify_page(page.image).frame.method == "none"
    tilted = rotate_image(page.image, 4.0, (255, 255, 255))
    rect = rectify_page(tilted)
    assert rect.frame.method == "none"
    assert abs(rect.angle_deg - 4.0) < 0.5
    line = rect.frame.describe()
    assert "no printed grid" in line and "from trace/text lines" in line
    assert abs(float(re.search(r"tilt (-?[0-9.]+) deg", line).group(1)) - rect.angle_deg) < 0.01
    from paperecg.rectify.frame import no_grid_note

    assert "page used as given" in no_grid_note("none", 0.0)  # nothing to go by: today's behaviour
    assert "lead names (5 pairs) and trace lines" in no_grid_note("names+lines", 2.0, 5)


def test_a_grid_region_too_large_is_cut_on_the_side_of_the_scattered_tiles():
    """A few tiles off the page (a table's grain: 2-6 per 10 mm against ~20 on the page) on one side widened
    the grid region past the largest page; cut around its centre, the page lost 15-25 mm of traces on the
    other side (real photos 03515, 03919: V4-V6)."""
    from paperecg.rectify.frame import cut_start, dense_extent_mm

    u, v = np.meshgrid(np.arange(0.0, 280.0, 10.0), np.arange(0.0, 200.0, 10.0))
    body = u.ravel()
    stray = np.random.default_rng(1).uniform(-70.0, -30.0, 9)
    uv_u = np.concatenate([body, stray])
    assert dense_extent_mm(uv_u) == (0.0, 270.0)
    lo, hi = np.percentile(uv_u, 1) - 8.0, np.percentile(uv_u, 99) + 8.0
    assert hi - lo > 300.0
    start = cut_start(lo, hi, 290.0, -8.0, 278.0)
    assert start + 290.0 == pytest.approx(hi) and hi >= 278.0  # the body's side is kept whole
    assert 0.5 * (lo + hi) + 145.0 < 270.0  # around the centre, the body's last 10 mm went: the test can fail
    assert cut_start(-8.0, 278.0, 290.0, -8.0, 278.0) == -8.0  # a region that fits is left as it is


def test_coarse_scan_whose_grid_reads_off_the_page_size_takes_the_page_size():
    """A 51-dpi ECG-Image-Kit scan (433 x 561 px: a letter page at 2.01 px/mm) whose grid read 3.11 px/mm,
    an alias of 1-mm lines at 2 px: the page size replaces the reading; a reading that agrees stands, and so
    does a fine reading on a small image (a crop of a page)."""
    from paperecg.rectify.frame import _checked_low_res_scale, _scale_frame

    shape = (433, 561)
    wrong = _checked_low_res_scale(_scale_frame(shape, 3.11), shape)
    assert wrong.method == "scale"
    assert abs(wrong.source_px_per_mm - 561 / 279.4) < 0.01
    assert abs(wrong.shape_hw[1] - 2200) <= 2
    agreeing = _checked_low_res_scale(_scale_frame(shape, 2.05), shape)
    assert agreeing.source_px_per_mm == pytest.approx(2.05)
    crop = _checked_low_res_scale(_scale_frame(shape, 5.9), shape)
    assert crop.source_px_per_mm == pytest.approx(5.9)
    # a 75-dpi page (2.95 px/mm) is fine enough for its grid reading to stand
    shape75 = (638, 825)
    assert _checked_low_res_scale(_scale_frame(shape75, 3.5), shape75).source_px_per_mm == pytest.approx(3.5)


def test_monitor_page_with_bright_traces_comes_back_to_paper_mm():
    """A monitor-like page (dark screen, dim grid, bright 12x1 traces): the traces, capped but left in the
    analysis image, were lines as strong as the grid's and rows' baselines read as major lines (p95 2.25 mm);
    set to the background level they no longer count."""
    style = RenderStyle(dpi=200.0, grid_origin_mm=(1.3, 2.6), layout="12x1", paper_rgb=(12, 12, 12),
                        grid_minor_rgb=(18, 22, 18), grid_major_rgb=(32, 40, 32), trace_rgb=(0, 255, 0),
                        text_rgb=(0, 255, 0))
    page = render_page(synthetic_ecg(500.0, 10.0, "NORM", 3, 12), 500.0, LEADS, style)
    params = PhotoParams(out_scale=1.1, page_frac=0.9, angle_deg=6.0, perspective_frac=0.06,
                         corner_jitter=(0.8, -0.5, -0.9, 0.7, 0.6, 0.9, -0.4, -0.8), curl_mm=1.5, roll_mm=2.0,
                         table_rgb=(60, 80, 40), seed=5)
    shot = photograph_page(page, params=params)
    flat_xy, mm = grid_crossings_mm((page.height, page.width), page.geometry.px_per_mm_x, style.grid_origin_mm)
    frame = find_page_frame(shot.page.image)
    assert frame.method in ("grid", "grid+warp")
    res = _residual_mm(frame, shot.warp.inverse(flat_xy), mm)
    assert np.median(res) < 0.1
    assert np.percentile(res, 95) < 0.3


def test_without_traces_keeps_grid_lines_and_drops_traces():
    from paperecg.rectify.grid import without_traces

    dark = np.zeros((120, 120), np.float32)
    dark[:, ::5] = 10.0  # 1-mm lines
    dark[:, ::25] = 25.0  # major lines (2.5x the minor ones)
    dark[60:63, :] = 120.0  # a trace
    out = without_traces(dark)
    assert np.all(out[59:64, :] == 0.0)  # the trace and its edge are gone
    rows = np.r_[0:58, 66:120]
    np.testing.assert_array_equal(out[rows], dark[rows])  # the grid is untouched


def test_a_slight_perspective_is_straightened_not_taken_for_a_flat_page():
    """A page photographed almost square-on (perspective about 1 mm, no curl: the demo's photographed pages) was
    read as flat, its rows' far ends 0.5-1 mm (20-40 ms) off; the homography straightens it."""
    page, style = _page()
    params = PhotoParams(out_scale=1.0, page_frac=0.97, angle_deg=0.0, perspective_frac=0.005,
                         corner_jitter=(0.8, -0.5, -0.9, 0.7, 0.6, 0.9, -0.4, -0.8), seed=3)
    shot = photograph_page(page, params=params)
    flat_xy, mm = grid_crossings_mm((page.height, page.width), page.geometry.px_per_mm_x, style.grid_origin_mm)
    xy = shot.warp.inverse(flat_xy)
    assert np.percentile(_residual_mm(identity_frame(shot.page.image.shape[:2]), xy, mm), 95) > 0.5
    frame = find_page_frame(shot.page.image)
    assert frame.method == "grid"
    assert 0.4 < frame.perspective_mm < 1.5
    assert np.percentile(_residual_mm(frame, xy, mm), 95) < 0.2


def test_frame_and_extractor_share_one_coarse_scan_rule(monkeypatch):
    """One rule (rectify.grid.grid_unresolved) says whether a whole page is too coarse to resolve its 1-mm grid:
    there the frame checks the grid's reading against the page size, and the extractor searches the grid's period
    near the page-size scale. Two thresholds (2.6 px/mm in the frame, 2.5 in the extractor) left a 65-dpi page
    checked by one and not by the other."""
    import paperecg.extract.scale as scale
    from paperecg.geometry import page_size_px_per_mm
    from paperecg.rectify.frame import _checked_low_res_scale, _scale_frame
    from paperecg.rectify.grid import AxisScale, GridScale

    searched_near_page: list[bool] = []

    def spy(image_rgb, exclude=None, prior_px_per_mm=None, prior_factor=1.6):
        searched_near_page.append(prior_factor < 1.6)
        axis = AxisScale(8.0, 10.0, True)
        return GridScale(axis, axis)

    monkeypatch.setattr(scale, "estimate_grid_scale", spy)
    for ppm in (2.3, 2.45, 2.55, 2.7):
        shape = (round(215.9 * ppm), round(279.4 * ppm))
        page = page_size_px_per_mm(*shape)
        aliased = 1.4 * page  # an alias of the 1-mm lines
        frame_checks = _checked_low_res_scale(_scale_frame(shape, aliased), shape).source_px_per_mm != aliased
        searched_near_page.clear()
        scale.page_geometry(np.full(shape + (3,), 255, np.uint8), shape, source_px_per_mm=page)
        assert frame_checks == searched_near_page[0] == (ppm < 2.5), ppm
