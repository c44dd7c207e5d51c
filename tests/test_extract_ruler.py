"""A crease across the rows of a photographed page: each row's time axis read on the grid beside it
(paperecg.extract.ruler, rectify.grid.row_ruler).

A crease the page frame's smooth surface cannot follow moves everything printed beyond it (trace and grid
alike) by a fraction of a millimetre: a lead crossing it drifts by tens of ms per second. The grid lines beside
the row carry the same shift, so reading the row's samples where the lines say keeps the time axis.
"""
import cv2
import numpy as np
from conftest import LEADS_12, synthetic_ecg

from paperecg.extract import ExtractParams, extract_signal
from paperecg.rectify.grid import line_darkness, row_ruler
from paperecg.render.page import RenderStyle, render_page
from paperecg.score.fidelity import lead_fidelity

PX_PER_MM = 200.0 / 25.4
CREASE_PX = 5.0  # 0.64 mm: what a crumpled real photo shows (up to ~0.7 mm, 28 ms)
# a printout as the phone sees it: its 5-mm lines stand out, the 1-mm ones are faint (the 5-mm comb about
# 2.4 times the 1-mm one; real photographed printouts 1.2-5.6)
PRINTOUT = dict(dpi=200.0, layout="3x4", grid_minor_rgb=(246, 210, 210), grid_major_rgb=(205, 95, 95))


def crease_shift(x: np.ndarray, centres_px: list[float], width_px: float = 6.0) -> np.ndarray:
    """Page x a creased page shows at x: beyond each crease the paper is pulled CREASE_PX towards it."""
    s = np.zeros_like(x, dtype=np.float64)
    for c in centres_px:
        s += CREASE_PX / (1.0 + np.exp(-(x - c) / width_px))
    return s


def creased(image: np.ndarray, centres_px: list[float], interpolation: int) -> np.ndarray:
    h, w = image.shape[:2]
    xs = np.arange(w, dtype=np.float64)
    map_x = np.repeat((xs + crease_shift(xs, centres_px))[None, :], h, axis=0).astype(np.float32)
    map_y = np.repeat(np.arange(h, dtype=np.float32)[:, None], w, axis=1)
    return cv2.remap(image, map_x, map_y, interpolation, borderMode=cv2.BORDER_REPLICATE)


def creased_page(fs_hz: float, seed: int):
    signal = synthetic_ecg(fs_hz, 10.0, "NORM", seed, 12)
    page = render_page(signal, fs_hz, LEADS_12, RenderStyle(**PRINTOUT))
    # a crease in the middle of each of the four columns: every short lead crosses one
    x0 = min(t.pixels[:, 1].min() for t in page.leads if t.end_sample - t.start_sample < signal.shape[0])
    x1 = max(t.pixels[:, 1].max() for t in page.leads if t.end_sample - t.start_sample < signal.shape[0])
    quarter = (x1 - x0) / 4.0
    centres = [x0 + (k + 0.5) * quarter for k in range(4)]
    image = creased(page.image, centres, cv2.INTER_LINEAR)
    mask = creased(page.trace_mask.astype(np.float32), centres, cv2.INTER_LINEAR) >= 0.5
    reference = np.full(signal.shape, np.nan)
    for trace in page.leads:
        j = LEADS_12.index(trace.name)
        reference[trace.start_sample:trace.end_sample, j] = signal[trace.start_sample:trace.end_sample, j]
    return page, image, mask, reference


def test_row_ruler_reads_a_crease_in_the_grid():
    """The lines beyond a crease stand CREASE_PX nearer than a perfect comb puts them: the ruler's shift steps
    by that much across it, and is flat on either side."""
    page = render_page(np.zeros((5000, 12)), 500.0, LEADS_12, RenderStyle(**PRINTOUT))
    w = page.image.shape[1]
    image = creased(page.image, [0.5 * w], cv2.INTER_LINEAR)
    dark = line_darkness(image, PX_PER_MM)
    y = 0.5 * image.shape[0]
    ruler = row_ruler(dark, None, 0.15 * w, 0.85 * w, y, PX_PER_MM)
    assert ruler is not None
    left = ruler.shift_at(np.array([0.2 * w, 0.35 * w]))
    right = ruler.shift_at(np.array([0.65 * w, 0.8 * w]))
    assert np.all(np.abs(np.diff(left)) < 0.5) and np.all(np.abs(np.diff(right)) < 0.5)
    # the lines beyond the crease are found CREASE_PX to the left of where the comb puts them
    assert abs(float(np.mean(left) - np.mean(right)) - CREASE_PX) < 0.6


def test_a_crease_across_the_rows_keeps_the_time_axis():
    """Without the ruler the leads crossing a crease drift by over 3 ms/s; with it every lead stays within
    3 ms/s, and the SNR of the page rises."""
    fs_hz = 500.0
    page, image, mask, reference = creased_page(fs_hz, seed=4)
    drift, snr = {}, {}
    for ruler in (False, True):
        ex = extract_signal(mask.astype(np.float32), image, fs_hz, reference.shape[0], LEADS_12,
                            page.lead_name_boxes(), params=ExtractParams(grid_ruler=ruler))
        fid = [lead_fidelity(reference[:, j], ex.signal[:, j], fs_hz) for j in range(12)]
        drift[ruler] = np.array([abs(f.drift_ms_per_s) for f in fid])
        if ruler:
            assert sum(rt.ruler is not None for rt in ex.rows) == len(ex.rows)
    assert np.nanmax(drift[False]) > 3.0  # the crease is there to be read
    assert np.nanmax(drift[True]) <= 3.0


def test_a_page_without_creases_keeps_its_nominal_time_axis():
    """On an uncreased page the ruler reads only its own noise (a few tenths of a pixel, most at a row's ends);
    applied, that noise moves a steep QRS stroke's samples by tenths of a mV. No row gets a ruler and the
    reading is the one without the ruler, to the bit."""
    fs_hz = 100.0
    signal = synthetic_ecg(fs_hz, 10.0, "NORM", 7, 12)
    page = render_page(signal, fs_hz, LEADS_12, RenderStyle(**PRINTOUT))
    mask = page.trace_mask.astype(np.float32)
    out = {}
    for ruler in (False, True):
        ex = extract_signal(mask, page.image, fs_hz, signal.shape[0], LEADS_12, page.lead_name_boxes(),
                            params=ExtractParams(grid_ruler=ruler))
        out[ruler] = ex.signal
        if ruler:
            assert all(rt.ruler is None for rt in ex.rows)
    np.testing.assert_array_equal(out[False], out[True])
