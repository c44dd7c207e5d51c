"""Grid lines that lean on a photographed page: each sample moved by how far the lines lean between its height
and its row's baseline (paperecg.extract.ruler.upright, rectify.grid.grid_warp).

Near a curled corner of a real phone photo the vertical grid lines lean by up to 7 px over 12 mm: a tall QRS
stroke leans with them, and its tip is read up to 30 ms early or late while the P and T waves beside it sit
right. A shift per row (the row ruler) cannot undo that; the lines measured at every height can.
"""
import cv2
import numpy as np
from conftest import LEADS_12, synthetic_ecg

from paperecg.extract import ExtractParams, extract_signal
from paperecg.rectify.grid import grid_warp, line_darkness
from paperecg.render.page import RenderStyle, render_page
from paperecg.score.evaluate import snr_db
from test_extract_ruler import PRINTOUT, PX_PER_MM

LEAN = 0.05  # px of x per px of y: 2.9 degrees, 0.5 mm over the 10 mm of a tall R wave (real photos: up to 0.07)


def leaning(image: np.ndarray, interpolation: int, y_centre: float | None = None,
            reach_px: float | None = None) -> np.ndarray:
    """The page with its vertical lines on the right half leaning by LEAN (a curled corner), within reach_px of
    y_centre (default: everywhere about the middle): what the page shows at (x, y) is what stands at
    x + lean(x) * (y - y_centre), that offset held beyond the reach."""
    h, w = image.shape[:2]
    xs = np.arange(w, dtype=np.float64)
    ys = np.arange(h, dtype=np.float64)
    k = LEAN / (1.0 + np.exp(-(xs - 0.5 * w) / (0.05 * w)))
    dy = ys - (0.5 * h if y_centre is None else y_centre)
    if reach_px is not None:
        dy = np.clip(dy, -reach_px, reach_px)
    map_x = (xs[None, :] + k[None, :] * dy[:, None]).astype(np.float32)
    map_y = np.repeat(ys[:, None], w, axis=1).astype(np.float32)
    return cv2.remap(image, map_x, map_y, interpolation, borderMode=cv2.BORDER_REPLICATE)


def tall_page(fs_hz: float, seed: int):
    signal = 2.0 * synthetic_ecg(fs_hz, 10.0, "NORM", seed, 12)  # QRS of 0.5-2.5 mV: 5-25 mm strokes
    page = render_page(signal, fs_hz, LEADS_12, RenderStyle(**PRINTOUT))
    reference = np.full(signal.shape, np.nan)
    for trace in page.leads:
        j = LEADS_12.index(trace.name)
        reference[trace.start_sample:trace.end_sample, j] = signal[trace.start_sample:trace.end_sample, j]
    return page, reference


def test_grid_warp_reads_how_the_lines_lean():
    """On the leaning half a line 20 mm lower stands 20 mm * LEAN further left than higher up (the page shows at
    x what stands at x + lean * (y - middle)); on the upright half it stands where it does higher up."""
    page = render_page(np.zeros((5000, 12)), 500.0, LEADS_12, RenderStyle(**PRINTOUT))
    image = leaning(page.image, cv2.INTER_LINEAR)
    h, w = image.shape[:2]
    warp = grid_warp(line_darkness(image, PX_PER_MM), np.zeros((h, w), bool), PX_PER_MM)
    assert warp is not None
    dy = 20.0 * PX_PER_MM
    y_hi, y_lo = 0.5 * h - 0.5 * dy, 0.5 * h + 0.5 * dy
    for x, want in ((0.2 * w, 0.0), (0.85 * w, -LEAN * dy)):
        got = float(warp.at(np.array([x]), np.array([y_lo]))[0] - warp.at(np.array([x]), np.array([y_hi]))[0])
        assert abs(got - want) < 0.6, (x, got, want)


def test_leaning_lines_set_tall_strokes_upright():
    """The lines lean about the middle row on the right half of the page (and stand shifted, upright, beyond):
    read with the lean, that row's leads there gain over 2 dB each, only that row is moved, and no lead loses."""
    fs_hz = 500.0
    page, reference = tall_page(fs_hz, seed=3)
    middle = next(t for t in page.leads if t.name == "V2")
    y_centre = float(np.median(middle.pixels[:, 0]))
    reach = 15.0 * PX_PER_MM
    image = leaning(page.image, cv2.INTER_LINEAR, y_centre, reach)
    mask = leaning(page.trace_mask.astype(np.float32), cv2.INTER_LINEAR, y_centre, reach)
    snr = {}
    for lean in (False, True):
        ex = extract_signal(mask, image, fs_hz, reference.shape[0], LEADS_12, page.lead_name_boxes(),
                            params=ExtractParams(grid_ruler=True, grid_lean=lean))
        snr[lean] = np.array([snr_db(reference[:, j], ex.signal[:, j], fs_hz) for j in range(12)])
        if lean:
            assert [rt.lean is not None for rt in ex.rows] == [False, True, False]
    gain = snr[True] - snr[False]
    leaning_leads = [LEADS_12.index(n) for n in ("V2", "V5")]
    assert np.all(gain[leaning_leads] > 2.0), (snr[False], snr[True])
    assert np.nanmin(gain) > -0.1, (snr[False], snr[True])


def test_an_upright_page_is_read_as_before():
    """On a page whose lines stand upright no row leans, and the reading is the one without the lean, to the bit."""
    fs_hz = 100.0
    page, reference = tall_page(fs_hz, seed=7)
    mask = page.trace_mask.astype(np.float32)
    out = {}
    for lean in (False, True):
        ex = extract_signal(mask, page.image, fs_hz, reference.shape[0], LEADS_12, page.lead_name_boxes(),
                            params=ExtractParams(grid_ruler=True, grid_lean=lean))
        out[lean] = ex.signal
        if lean:
            assert all(rt.lean is None for rt in ex.rows)
    np.testing.assert_array_equal(out[False], out[True])
