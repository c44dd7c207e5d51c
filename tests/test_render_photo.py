"""What a phone does to a printout (render/photo.py): faint steep strokes, folds, cast shadows, camera shake;
the labels must move with the paper and stay on the ink."""
from dataclasses import replace

import cv2
import numpy as np
import pytest

from paperecg.layouts import STANDARD_LEADS
from paperecg.records.synthetic import synthetic_ecg
from paperecg.render.augment import AugParams, motion_kernel, photometric
from paperecg.render.page import RenderStyle, render_page
from paperecg.render.photo import PhotoParams, thin_strokes, photograph_page


@pytest.fixture(autouse=True)
def _one_thread():
    cv2.setNumThreads(1)


def _pages(dpi=100):
    sig = synthetic_ecg(250.0, seed=11)
    style = RenderStyle(dpi=dpi, show_grid=False, calibration_pulse=False, column_separators=False,
                        lead_names=False, footer_text=False)
    page = render_page(sig, 250.0, list(STANDARD_LEADS), style)
    blank = render_page(np.full_like(sig, np.nan), 250.0, list(STANDARD_LEADS), style)
    return page, blank


def test_steep_strokes_fade_and_flat_ones_keep_their_ink():
    img = np.full((80, 80, 3), 255, np.uint8)
    alpha = np.zeros((80, 80), np.uint8)
    cv2.line(img, (20, 10), (20, 70), (0, 0, 0), 3)  # a vertical stroke (QRS)
    cv2.line(alpha, (20, 10), (20, 70), 255, 3)
    cv2.line(img, (35, 40), (75, 40), (0, 0, 0), 3)  # a flat one (baseline)
    cv2.line(alpha, (35, 40), (75, 40), 255, 3)
    out = thin_strokes(img, alpha, 0.5)
    dark_in = 255.0 - img.mean(axis=2)
    dark_out = 255.0 - out.mean(axis=2)
    steep = dark_out[20:60, 17:24].sum(axis=1) / dark_in[20:60, 17:24].sum(axis=1)
    flat = dark_out[37:44, 45:70].sum(axis=0) / dark_in[37:44, 45:70].sum(axis=0)
    assert np.all(steep < 0.5)  # thinner and fainter: at most half the ink across the stroke
    assert np.all(steep > 0.05)  # but still there
    assert np.all(flat > 0.95)
    assert np.array_equal(thin_strokes(img, alpha, 0.0), img)
    # thinning every stroke keeps its centre (the labels stay on it)
    both = thin_strokes(img, alpha, 0.0, 1.0)
    d = 255.0 - both.mean(axis=2)
    rows = np.arange(80)[:, None]
    centre = (d[:, 45:70] * rows).sum(axis=0) / d[:, 45:70].sum(axis=0)
    assert np.allclose(centre, 40.0, atol=0.05)
    assert d[:, 45:70].sum() < 0.85 * dark_in[:, 45:70].sum()


def test_fold_moves_the_mask_with_the_paper():
    page, blank = _pages()
    base = PhotoParams(out_scale=1.0, page_frac=0.9, angle_deg=3.0, folds=2, seed=4, table_rgb=(60, 60, 60))
    folded = replace(base, fold_step_mm=1.5, fold_shade=0.25, shadow=0.3)
    plain = photograph_page(page, params=base)
    shot = photograph_page(page, params=folded)
    shot_blank = photograph_page(blank, params=folded)
    # the crease shifted the paper: some plotted points moved by more than half a millimetre
    ppm = page.geometry.px_per_mm_x
    moved = np.concatenate([np.hypot(*(a.pixels - b.pixels).T) for a, b in zip(shot.page.leads, plain.page.leads)])
    drawn = np.concatenate([np.isfinite(b.pixels[:, 0]) for b in plain.page.leads])
    assert np.all(np.isfinite(moved[drawn])) and np.nanmax(moved) > 0.5 * ppm
    # the ink (photo minus the same photo of a blank page: folds and shadow cancel) lies on the mask
    ink = shot_blank.page.image.astype(float).mean(axis=2) - shot.page.image.astype(float).mean(axis=2)
    strong = ink > 0.5 * np.percentile(ink[shot.page.trace_mask], 90)
    assert strong.sum() > 1000
    near = cv2.dilate(shot.page.trace_mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    assert near[strong].mean() > 0.97
    # and every plotted point is on ink
    pts = np.concatenate([t.pixels for t in shot.page.leads])
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    r, c = np.round(pts[:, 0]).astype(int), np.round(pts[:, 1]).astype(int)
    ok = (r >= 0) & (r < ink.shape[0]) & (c >= 0) & (c < ink.shape[1])
    ink_max = cv2.dilate(ink.astype(np.float32), np.ones((3, 3), np.uint8))
    assert np.median(ink_max[r[ok], c[ok]]) > 40
    # the fold and the shadow changed the light of the paper
    grey = shot_blank.page.image.astype(float).mean(axis=2)
    grey0 = photograph_page(blank, params=base).page.image.astype(float).mean(axis=2)
    assert np.percentile(np.abs(grey - grey0), 90) > 10


def test_motion_blur_does_not_move_the_image():
    img = np.full((41, 41, 3), 255, np.uint8)
    img[20, 20] = 0
    for length, angle in ((3.0, 0.0), (4.5, 37.0), (2.0, 90.0)):
        k = motion_kernel(length, angle)
        r = k.shape[0] // 2
        yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
        assert abs((k * xx).sum()) < 1e-6 and abs((k * yy).sum()) < 1e-6
        assert (k * (xx * np.cos(np.radians(angle)) + yy * np.sin(np.radians(angle))) ** 2).sum() > 0.4
        out = photometric(img, AugParams(look="photo", motion_px=length, motion_deg=angle))
        dark = 255.0 - out.mean(axis=2)
        rows, cols = np.mgrid[0:41, 0:41]
        assert abs((dark * rows).sum() / dark.sum() - 20) < 0.05
        assert abs((dark * cols).sum() / dark.sum() - 20) < 0.05


def test_black_level_lifts_the_ink_and_keeps_the_paper():
    img = np.zeros((4, 4, 3), np.uint8)
    img[:2] = 255
    out = photometric(img, AugParams(look="photo", black_level=60.0))
    assert np.all(out[2:] == 60) and np.all(out[:2] == 255)
