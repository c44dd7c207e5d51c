import numpy as np
import pytest

from paperecg.geometry import rotate_points
from paperecg.layouts import STANDARD_LEADS
from paperecg.render.augment import AugParams, apply_augmentation, augment_page
from paperecg.render.page import RenderStyle, render_page
from paperecg.records.synthetic import synthetic_ecg


@pytest.fixture(autouse=True)
def _one_thread():
    import cv2

    cv2.setNumThreads(1)  # the CPU is shared (torch threads: conftest)


def _pages(dpi=100, fs=250.0):
    sig = synthetic_ecg(fs, seed=11)
    style = RenderStyle(dpi=dpi, show_grid=False, calibration_pulse=False, column_separators=False,
                        lead_names=False, footer_text=False)
    page = render_page(sig, fs, list(STANDARD_LEADS), style)
    blank = render_page(np.full_like(sig, np.nan), fs, list(STANDARD_LEADS), style)
    return page, blank


def _ink(page, blank):
    a = blank.image.astype(np.float64).mean(axis=2)
    b = page.image.astype(np.float64).mean(axis=2)
    return (a - b) / np.maximum(a - 20.0, 1.0)


def test_rotated_page_keeps_mask_on_the_trace():
    page, blank = _pages()
    params = AugParams(angle_deg=7.0)
    rot = apply_augmentation(page, params)
    rot_blank = apply_augmentation(blank, params)
    assert rot.angle_deg == pytest.approx(7.0)
    ink = _ink(rot, rot_blank)
    dark = ink > 0.5
    assert dark.sum() > 2000
    assert rot.trace_mask[dark].mean() > 0.97
    assert (ink[rot.trace_mask] < 0.1).mean() < 0.05
    # the page really turned: the mask moved off most of its old pixels
    assert (rot.trace_mask & page.trace_mask).sum() < 0.5 * page.trace_mask.sum()
    # plotted pixels follow geometry.rotate_points (the project's rotation convention)
    centre = ((page.height - 1) / 2.0, (page.width - 1) / 2.0)
    for before, after in zip(page.leads, rot.leads):
        assert np.allclose(rotate_points(before.pixels, 7.0, centre), after.pixels, atol=1e-6)
        k = rot.leads.index(after) + 1
        r = np.round(after.pixels[:, 0]).astype(int)
        c = np.round(after.pixels[:, 1]).astype(int)
        ok = (r >= 0) & (r < rot.height) & (c >= 0) & (c < rot.width)
        assert (rot.lead_mask[r[ok], c[ok]] == k).mean() > 0.8


def test_text_boxes_follow_the_text():
    sig = synthetic_ecg(250.0, seed=12)
    style = RenderStyle(dpi=100, show_grid=False, calibration_pulse=False, column_separators=False)
    page = render_page(sig, 250.0, list(STANDARD_LEADS), style)
    out = apply_augmentation(page, AugParams(angle_deg=-6.0, scale=0.95, shift_frac=(0.02, -0.01)))
    gray = out.image.mean(axis=2)
    assert out.geometry.px_per_mm_x == pytest.approx(page.geometry.px_per_mm_x * 0.95, rel=1e-6)
    for t in out.leads:
        b = t.text_box
        inside = gray[int(b.y0):int(np.ceil(b.y1)) + 1, int(b.x0):int(np.ceil(b.x1)) + 1]
        assert inside.min() < 100  # the printed name is inside its moved box
        assert t.text_corners is not None and t.text_corners.shape == (4, 2)


def test_random_augmentation_is_seeded_and_labels_stay_dark():
    page, _ = _pages()
    a = augment_page(page, 5)
    b = augment_page(page, 5)
    c = augment_page(page, 6)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.trace_mask, b.trace_mask)
    assert not np.array_equal(a.image, c.image)
    for seed in range(4):
        out = augment_page(page, seed, strength=1.0)
        gray = out.image.astype(np.float64).mean(axis=2)
        assert out.trace_mask.any()
        assert np.median(gray[out.trace_mask]) < np.median(gray) - 60
        assert abs(out.angle_deg) <= 10.0


def test_strength_zero_keeps_the_geometry():
    page, _ = _pages()
    out = augment_page(page, 3, strength=0.0)
    assert out.angle_deg == 0.0
    assert np.array_equal(out.trace_mask, page.trace_mask)
    for x, y in zip(page.leads, out.leads):
        assert np.allclose(x.pixels, y.pixels)


def test_every_photometric_effect_leaves_labels_alone():
    page, _ = _pages()
    geo = AugParams(angle_deg=3.0, scale=0.97)
    full = AugParams(angle_deg=3.0, scale=0.97, look="photo", shading=0.5, wrinkles=1.0, creases=2, stains=2,
                     scribbles=4, temperature=0.7, contrast=0.8, brightness=-10, gamma=1.2, blur_sigma_px=1.0,
                     noise_sigma=6.0, jpeg_quality=50, seed=9, border_rgb=(40, 40, 40))
    a = apply_augmentation(page, geo)
    b = apply_augmentation(page, full)
    assert np.array_equal(a.trace_mask, b.trace_mask) and np.array_equal(a.lead_mask, b.lead_mask)
    assert b.image.shape == page.image.shape and b.image.dtype == np.uint8
    diff = np.abs(a.image.astype(int) - b.image.astype(int)).mean()
    assert diff > 3  # the effects did change the picture
    gray = b.image.astype(np.float64).mean(axis=2)
    assert np.median(gray[b.trace_mask]) < np.median(gray) - 40  # ink still darker than paper
