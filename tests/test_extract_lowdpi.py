"""Pages scanned at 50-100 dpi and resized to the canonical 200 dpi (rectify/frame.py 'scale'): the trace map
is read as it is, not sharpened with the page's ink (extract/ink.py map_finer_than_scan)."""
import cv2
import numpy as np
import pytest
from conftest import LEADS_12, synthetic_ecg

from paperecg.extract import extract_signal
from paperecg.extract.ink import map_finer_than_scan
from paperecg.geometry import MM_PER_INCH, Box, LeadNameBox
from paperecg.render.page import RenderStyle, render_page
from paperecg.score.evaluate import score_signals
from paperecg.segment.preprocess import draw_trace_label


def _low_dpi_page(dpi: float, seed: int):
    """An ECG-Image-Kit-like page at `dpi` (thin anti-aliased trace, grid lines about as dark as the trace),
    resized to 200 dpi as the page frame does, and a perfect segmenter's working-frame map (the training
    label: the plotted polylines 1.5 px wide at half the canonical size)."""
    fs_hz = 100.0
    signal = synthetic_ecg(fs_hz, seed=seed)
    style = RenderStyle(dpi=dpi, layout="3x4+1", line_width_pt=0.4, grid_minor_rgb=(170, 180, 195),
                        grid_major_rgb=(110, 90, 90))
    page = render_page(signal, fs_hz, LEADS_12, style)
    h, w = page.image.shape[:2]
    f = 200.0 / dpi
    big_w, big_h = round(w * f), round(h * f)
    image = cv2.resize(page.image, (big_w, big_h), interpolation=cv2.INTER_CUBIC)
    work = draw_trace_label([t.pixels for t in page.leads], (big_h // 2, big_w // 2), 0.5 * big_w / w, 1.5)
    boxes = [LeadNameBox(b.name, Box(b.box.x0 * f, b.box.y0 * f, b.box.x1 * f, b.box.y1 * f), b.score)
             for b in page.lead_name_boxes()]
    ref = np.full(signal.shape, np.nan)
    for trace in page.leads:
        j = LEADS_12.index(trace.name)
        ref[trace.start_sample:trace.end_sample, j] = signal[trace.start_sample:trace.end_sample, j]
    return image, work.astype(np.float32), boxes, ref, fs_hz


@pytest.mark.parametrize("dpi,seed", [(75.0, 4), (90.0, 5)])
def test_a_low_dpi_scan_is_read_from_the_map_not_its_blurred_ink(dpi, seed):
    image, work, boxes, ref, fs_hz = _low_dpi_page(dpi, seed)
    snr = {}
    for source in (None, dpi / MM_PER_INCH):
        ex = extract_signal(work, image, fs_hz, ref.shape[0], LEADS_12, boxes, source_px_per_mm=source)
        snr[source is not None] = float(np.nanmean([s.snr_db for s in score_signals(ref, ex.signal, fs_hz, LEADS_12)]))
        assert any("no finer than the map" in n for n in ex.notes) == (source is not None)
    # the blurred one-pixel trace breaks into dashes under the ink threshold; the map keeps it whole (with the
    # synthetic limb leads derived from I and II, session 14: 75 dpi 18.3 -> 20.0 dB, 90 dpi 12.4 -> 18.8)
    assert snr[True] >= snr[False] + 1.5, snr
    assert snr[True] >= 15.0, snr


def test_map_finer_than_scan():
    work_px_per_mm = 0.5 * 200.0 / MM_PER_INCH  # the segmenter's working frame of a canonical page
    assert map_finer_than_scan(work_px_per_mm, 75.0 / MM_PER_INCH)
    assert not map_finer_than_scan(work_px_per_mm, 200.0 / MM_PER_INCH)  # a 200-dpi scan: ink sharpening
    assert not map_finer_than_scan(work_px_per_mm, None)  # scale of the scan unknown: as before
    assert not map_finer_than_scan(work_px_per_mm, float("nan"))


@pytest.mark.parametrize("dpi", [50.0, 53.0])
def test_a_scan_too_coarse_for_the_1mm_lines_keeps_its_true_scale(dpi):
    """At 50-53 dpi the 1-mm lines are 2 px apart in the scan, aliased; enlarged to 200 dpi, the grid's comb
    reads 5/4 of the true scale (9.84 px/mm) unless the search stays near the page-size scale."""
    from paperecg.extract.scale import page_geometry

    image, _, _, _, _ = _low_dpi_page(dpi, 1)
    geometry, _ = page_geometry(image, image.shape[:2], source_px_per_mm=dpi / MM_PER_INCH)
    canonical = 200.0 / MM_PER_INCH
    assert abs(geometry.px_per_mm_x / canonical - 1) < 0.01 and abs(geometry.px_per_mm_y / canonical - 1) < 0.01


def test_square_grid_keeps_the_axis_the_page_size_agrees_with():
    from paperecg.rectify.grid import AxisScale, GridScale, square_grid

    misread = GridScale(AxisScale(7.75, 20.0, True), AxisScale(5.06, 20.0, True))
    fixed = square_grid(misread, page_px_per_mm=5.05)
    assert fixed.x.px_per_mm == fixed.y.px_per_mm == 5.06
    scanner = GridScale(AxisScale(7.87, 20.0, True), AxisScale(7.60, 20.0, True))  # a few % apart: both stand
    assert square_grid(scanner, page_px_per_mm=7.87) is scanner


def test_cell_edges_next_to_another_cell_are_left_out():
    """Only the ends where a row passes from one lead to the next (and ECG-Image-Kit prints its separator
    bar) lose samples; a row's outer ends and a full-length strip keep theirs."""
    from paperecg.extract.combine import trim_cell_edges

    vals = np.arange(250, dtype=np.float64)
    row_starts = [250, 500, 750]  # a 3x4 row: cells at 0, 250, 500, 750 of 1000 samples
    first = trim_cell_edges(vals, 0, row_starts, 2)
    assert np.isfinite(first[:248]).all() and np.isnan(first[248:]).all()
    middle = trim_cell_edges(vals, 250, row_starts, 2)
    assert np.isnan(middle[:2]).all() and np.isnan(middle[-2:]).all() and np.isfinite(middle[2:-2]).all()
    last = trim_cell_edges(vals, 750, row_starts, 2)
    assert np.isnan(last[:2]).all() and np.isfinite(last[2:]).all()
    strip = np.arange(1000, dtype=np.float64)
    assert np.isfinite(trim_cell_edges(strip, 0, [], 2)).all()
