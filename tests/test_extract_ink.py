"""Sharpening a coarse (working-size) trace map with the page's ink (paperecg.extract.ink)."""
import cv2
import numpy as np
from conftest import LEADS_12, synthetic_ecg

from paperecg.extract import ExtractParams, extract_signal
from paperecg.extract.ink import ink_score_map
from paperecg.render.page import RenderStyle, render_page
from paperecg.score.evaluate import score_signals


def _coarse(mask: np.ndarray, factor: int = 2) -> np.ndarray:
    """What a perfect segmenter working at 1/factor of the page's size returns: the mask at that size."""
    h, w = mask.shape
    small = cv2.resize(mask.astype(np.float32), (w // factor, h // factor), interpolation=cv2.INTER_AREA)
    return (small >= 0.5).astype(np.float32)


def test_a_coarse_map_reads_out_better_with_the_page_ink():
    fs_hz = 100.0
    signal = synthetic_ecg(fs_hz, seed=3)
    page = render_page(signal, fs_hz, LEADS_12, RenderStyle(dpi=200.0, layout="3x4"))
    coarse = _coarse(page.trace_mask)
    boxes = page.lead_name_boxes()
    snr = {}
    for ink in (False, True):
        ex = extract_signal(coarse, page.image, fs_hz, signal.shape[0], LEADS_12, boxes,
                            params=ExtractParams() if ink else ExtractParams(ink=None))
        ref = np.full(signal.shape, np.nan)
        for trace in page.leads:
            j = LEADS_12.index(trace.name)
            ref[trace.start_sample:trace.end_sample, j] = signal[trace.start_sample:trace.end_sample, j]
        snr[ink] = np.nanmean([s.snr_db for s in score_signals(ref, ex.signal, fs_hz, LEADS_12)])
    assert snr[True] >= snr[False] + 2.0, snr


def test_ink_edges_sit_at_the_page_resolution():
    """A dark line 3 px thick at rows 40-42 of a white page with a light grid line at row 38; the map
    upsampled from half size covers rows 38-43."""
    image = np.full((80, 200, 3), 255, np.uint8)
    image[40:43, 20:180] = 30
    image[38, :] = (250, 180, 180)
    coarse = np.zeros((80, 200), np.float32)
    coarse[38:44, 20:180] = 1.0
    score = ink_score_map(coarse, image, px_per_mm=8.0)
    assert score is not None
    col = score[:, 100]
    assert np.all(col[40:43] >= 0.85)
    assert np.all(col[:40] < 0.5) and np.all(col[43:] < 0.5)  # the grid line and the paper are not trace


def test_no_ink_contrast_keeps_the_map():
    """A blank page (nothing darker than the paper inside the map) says nothing about where the trace is."""
    image = np.full((80, 200, 3), 255, np.uint8)
    coarse = np.zeros((80, 200), np.float32)
    coarse[38:46, 20:180] = 1.0
    assert ink_score_map(coarse, image, px_per_mm=8.0) is None
    assert ink_score_map(np.zeros((80, 200), np.float32), image, px_per_mm=8.0) is None  # no confident pixels


def test_a_faint_stretch_keeps_the_map_where_the_ink_says_nothing():
    """A dark trace (ink 225) fading to grey (ink 90) for its last sixth: the page's trace ink level comes from
    the dark part, so the grey part alone would score below the threshold and read as gaps. The map's core
    stands there, and each column still holds trace; the dark part stays sharpened to its 3 rows."""
    image = np.full((80, 400, 3), 255, np.uint8)
    image[40:43, 20:320] = 30
    image[40:43, 320:380] = 165
    coarse = np.zeros((80, 400), np.float32)
    coarse[38:44, 20:380] = 1.0
    score = ink_score_map(coarse, image, px_per_mm=8.0)
    assert score is not None
    passed = score >= 0.85
    assert passed[:, 20:380].any(axis=0).all()  # no column of the trace is lost
    assert passed[:, 100].sum() == 3  # the dark part: sharpened to the ink
    assert not passed[:, 10].any() and not passed[:, 390].any()  # off the band nothing changes


def test_band_runs_without_a_hit():
    from paperecg.extract.ink import band_runs_without

    band = np.zeros((10, 3), bool)
    band[1:4, 0] = band[6:9, 0] = True  # two runs in column 0
    band[2:5, 1] = True
    hits = np.zeros_like(band)
    hits[2, 0] = True  # only the upper run of column 0 is hit
    out = band_runs_without(band, hits)
    assert not out[1:4, 0].any() and out[6:9, 0].all()
    assert out[2:5, 1].all() and not out[:, 2].any()
