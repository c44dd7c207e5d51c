"""The printed grid as a ruler of the rectified page (rectify/grid/residual.py), and a fold across the rows.

A page whose paper is stretched by s along its rows reads every lead's time axis stretched by s: 1000 * s ms of
drift per second. The grid measures that on any rectified page; the fold test measures it exactly, from the
rendered traces' known pixels carried through the photo's warp and the rectifier's chain.
"""
import numpy as np
import pytest

from paperecg.rectify.frame import CANONICAL_PX_PER_MM
from paperecg.rectify.grid import time_axis_residual


def grid_page(h: int, w: int, px_per_mm: float, stretch_x: float = 1.0) -> np.ndarray:
    """A red 1-mm grid (5-mm lines darker) on white, its vertical lines spaced by stretch_x mm."""
    img = np.full((h, w, 3), 250, np.uint8)
    for k in range(int(w / px_per_mm / stretch_x) + 1):
        x = int(round(k * px_per_mm * stretch_x))
        if x < w:
            img[:, x] = (150, 40, 40) if k % 5 == 0 else (200, 120, 120)
    for k in range(int(h / px_per_mm) + 1):
        y = int(round(k * px_per_mm))
        if y < h:
            img[y, :] = (150, 40, 40) if k % 5 == 0 else (200, 120, 120)
    return img


@pytest.mark.parametrize("stretch", [1.0, 1.01, 0.995])
def test_grid_residual_reads_a_stretch_as_drift(stretch):
    r = time_axis_residual(grid_page(400, 1400, CANONICAL_PX_PER_MM, stretch))
    assert r.bands >= 3
    assert np.median(r.stretch_ms_per_s) == pytest.approx(1000.0 * abs(stretch - 1.0), abs=1.0)
    assert np.median(r.bend_mm) < 0.1  # straight lines


def fold_drifts(kink_share: float) -> list[float]:
    """|drift| (ms/s) of every lead of a 3x4+1 page photographed with a vertical fold across its rows at the
    page's middle (the paper beyond it stretched by kink_share of the page per page width), after
    rectification, from the traces' exact pixels."""
    from paperecg.pipeline.overlay import original_to_rectified
    from paperecg.records.synthetic import synthetic_ecg
    from paperecg.rectify.rectify import rectify_page
    from paperecg.render.page import RenderStyle, render_page
    from paperecg.render.photo import PhotoParams, photograph_page

    fs_hz = 500.0
    names = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    page = render_page(synthetic_ecg(fs_hz, 10.0, seed=3), fs_hz, names, RenderStyle())
    photo = photograph_page(page, params=PhotoParams(page_frac=0.92, fold_lines=((0.0, 0.5, kink_share),), seed=1))
    rect = rectify_page(photo.page.image)
    px_per_s = CANONICAL_PX_PER_MM * 25.0
    drifts = []
    for lead in page.leads:
        ok = np.all(np.isfinite(lead.pixels), axis=1)
        t_s = np.arange(lead.start_sample, lead.end_sample)[ok] / fs_hz
        x_rect = original_to_rectified(photo.warp.inverse(lead.pixels[ok][:, ::-1]), rect,
                                       photo.page.image.shape[:2])[:, 0]
        lag_s = x_rect / px_per_s - t_s
        n = t_s.size // 2
        drifts.append(abs((lag_s[n:].mean() - lag_s[:n].mean()) / (t_s[n:].mean() - t_s[:n].mean())) * 1000.0)
    return drifts


@pytest.mark.xfail(strict=True, reason="the frame declares a page whose map departs < 1.5 mm (p95) from a "
                   "similarity flat and only resizes it: a 1 % fold across the rows is left in (7 ms/s)")
def test_a_fold_across_the_rows_keeps_the_time_axis():
    assert max(fold_drifts(0.01)) <= 3.0
