import json

import numpy as np
import pytest

from paperecg.layouts import LAYOUTS, STANDARD_LEADS
from paperecg.render.eik import page_from_json
from paperecg.render.page import RenderStyle, random_style, render_page
from paperecg.records.synthetic import synthetic_ecg


@pytest.fixture(autouse=True)
def _one_thread():
    import cv2

    cv2.setNumThreads(1)  # the CPU is shared (torch threads: conftest)


def _ink_fraction(page, blank) -> np.ndarray:
    """Per pixel: how much of the paper-to-trace contrast the traces took (1 = full trace colour)."""
    a = blank.image.astype(np.float64).mean(axis=2)
    b = page.image.astype(np.float64).mean(axis=2)
    return (a - b) / np.maximum(a - 20.0, 1.0)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_layout_draws_each_cell_at_its_time_window(layout):
    fs = 250.0
    sig = synthetic_ecg(fs)
    style = RenderStyle(dpi=100, layout=layout)
    page = render_page(sig, fs, list(STANDARD_LEADS), style)
    cells = LAYOUTS[layout].cells()
    assert len(page.leads) == len(cells)
    assert page.image.shape == (850, 1100, 3) and page.image.dtype == np.uint8
    assert page.trace_mask.shape == page.image.shape[:2] and page.lead_mask.dtype == np.uint8
    x0 = None
    for trace, cell in zip(page.leads, cells):
        s0, s1 = cell.sample_window(len(sig))
        assert (trace.name, trace.start_sample, trace.end_sample) == (cell.lead, s0, s1)
        assert trace.pixels.shape == (s1 - s0, 2)
        # a cell's first sample sits at x0 + (its place on the time axis) * px_per_s, the same x0 for every
        # cell; the place is its time window unless columns are simultaneous (ECG-Image-Kit's 6x2)
        x0_here = trace.pixels[0, 1] - cell.page_x0 * len(sig) / fs * page.geometry.px_per_s
        x0 = x0_here if x0 is None else x0
        assert abs(x0_here - x0) < 1e-6
        assert np.allclose(np.diff(trace.pixels[:, 1]), page.geometry.px_per_s / fs)
        # every plotted sample lies inside the lead box and on the lead's own mask label
        r = np.round(trace.pixels[:, 0]).astype(int)
        c = np.round(trace.pixels[:, 1]).astype(int)
        inside = (r >= 0) & (r < page.height)
        assert page.trace_mask[r[inside], c[inside]].mean() > 0.99
        k = page.leads.index(trace) + 1
        assert (page.lead_mask[r[inside], c[inside]] == k).mean() > 0.8
        assert trace.lead_box.x0 <= trace.pixels[:, 1].min() and trace.lead_box.x1 >= trace.pixels[:, 1].max()
        assert trace.text_box is not None and trace.text_box.width > 0
    readback, _ = page.signal_readback(list(STANDARD_LEADS))
    drawn = np.isfinite(readback)
    assert np.allclose(readback[drawn], sig[drawn], atol=1e-9)
    # every lead is drawn somewhere in every layout
    assert drawn.any(axis=0).all()


@pytest.mark.parametrize("fs", [100.0, 500.0])
def test_mask_sits_on_the_ink_and_nowhere_else(fs):
    sig = synthetic_ecg(fs, seed=3)
    style = RenderStyle(dpi=200)
    page = render_page(sig, fs, list(STANDARD_LEADS), style)
    blank = render_page(np.full_like(sig, np.nan), fs, list(STANDARD_LEADS), style)
    ink = _ink_fraction(page, blank)
    dark = ink > 0.5
    assert dark.sum() > 10000
    recall = page.trace_mask[dark].mean()
    extra = (ink[page.trace_mask] < 0.1).mean()
    assert recall >= 0.99, recall
    assert extra <= 0.02, extra
    # no ink outside the mask's neighbourhood: traces are the only difference
    assert (ink[~page.trace_mask] > 0.5).mean() < 1e-3


def test_lead_names_in_any_case_and_missing_leads():
    fs = 500.0
    names = [n.upper() for n in STANDARD_LEADS]  # PTB-XL writes AVR/AVL/AVF
    sig = synthetic_ecg(fs, seed=1)
    page = render_page(sig[:, :10], fs, names[:10], RenderStyle(dpi=100))  # no V5, V6
    drawn = {t.name for t in page.leads}
    assert "aVR" in drawn and "V5" not in drawn and "V6" not in drawn
    assert len(page.leads) == 13 - 2


def test_nan_samples_are_not_drawn():
    fs = 250.0
    sig = synthetic_ecg(fs, seed=2)
    sig[100:200, 0] = np.nan
    page = render_page(sig, fs, list(STANDARD_LEADS), RenderStyle(dpi=100))
    lead_i = next(t for t in page.leads if t.name == "I")
    assert np.isnan(lead_i.pixels[100:200]).all() and np.isfinite(lead_i.pixels[:100]).all()


def test_same_seed_same_page_and_styles_vary():
    fs = 100.0
    sig = synthetic_ecg(fs, seed=4)
    a = render_page(sig, fs, list(STANDARD_LEADS), rng=7)
    b = render_page(sig, fs, list(STANDARD_LEADS), rng=7)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.trace_mask, b.trace_mask)
    styles = [random_style(s) for s in range(40)]
    assert len({s.layout for s in styles}) >= 4
    assert any(s.bw for s in styles) and any(not s.show_grid for s in styles)
    assert len({s.grid_major_rgb for s in styles}) > 10


def test_random_styles_keep_every_trace_on_the_page():
    fs = 500.0
    sig = synthetic_ecg(fs, seed=5) * 0.5
    for seed in range(6):
        page = render_page(sig, fs, list(STANDARD_LEADS), random_style(seed, dpi=100))
        for t in page.leads:
            assert t.pixels[:, 1].min() >= 0 and t.pixels[:, 1].max() < page.width
            assert 0 <= t.baseline_row < page.height


def test_json_round_trip_and_yolo():
    fs = 100.0
    sig = synthetic_ecg(fs, seed=6)
    page = render_page(sig, fs, list(STANDARD_LEADS), RenderStyle(dpi=100, header_text=("ID: 1", "Age: 50")))
    meta = json.loads(json.dumps(page.to_json()))
    for key in ("sampling_frequency", "resolution", "x_grid", "y_grid", "width", "height", "px_per_mv", "layout"):
        assert key in meta
    first = meta["leads"][0]
    for key in ("lead_name", "start_sample", "end_sample", "lead_bounding_box", "text_bounding_box",
                "plotted_pixels", "baseline_row"):
        assert key in first
    back = page_from_json(meta, page.image)
    assert back.layout == page.layout and back.num_samples == page.num_samples
    assert back.geometry.px_per_mv == pytest.approx(page.geometry.px_per_mv, rel=1e-3)
    for a, b in zip(page.leads, back.leads):
        assert a.name == b.name and np.allclose(a.pixels, b.pixels, atol=0.01)
        assert a.text_box.iou(b.text_box) > 0.95
    inter = (back.trace_mask & page.trace_mask).sum()
    assert inter / page.trace_mask.sum() > 0.95
    lines = page.yolo_lines()
    assert len(lines) == len(page.leads)
    vals = np.array([[float(v) for v in line.split()] for line in lines])
    assert (vals[:, 1:] > 0).all() and (vals[:, 1:] < 1).all()
    assert set(vals[:, 0].astype(int)) == set(range(12))
