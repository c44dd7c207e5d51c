import json

import numpy as np
from PIL import Image

from paperecg.render.eik import corners_angle_deg, infer_layout, load_eik_page
from paperecg.records.io import write_record


def _hand_made_page(tmp_path, angle_deg: float = 0.0):
    """A tiny ECG-Image-Kit-like page: two leads, matplotlib pixel convention (centres at +0.5)."""
    h, w = 120, 200
    fs, n = 100.0, 40
    t = np.arange(n)
    sig = np.stack([0.5 * np.sin(t / 4.0), -0.3 * np.cos(t / 5.0)], axis=1)  # mV
    px_per_mv = 20.0
    leads, img = [], np.full((h, w, 3), 255, np.uint8)
    for k, (name, base) in enumerate((("I", 35.0), ("AVR", 85.0))):
        rows = base - sig[:, k] * px_per_mv
        cols = 20.0 + t * 4.0
        for r, c in zip(rows, cols):
            img[int(r), int(c)] = 0  # the ink pixel whose centre is (r - 0.5, c - 0.5) in our convention
        leads.append({
            "lead_name": name, "start_sample": 0, "end_sample": n,
            "lead_bounding_box": {"0": [base - 15, 20], "1": [base - 15, 180], "2": [base + 15, 180],
                                  "3": [base + 15, 20]},
            "text_bounding_box": {"0": [base + 5, 20], "1": [base + 5, 32], "2": [base + 14, 32],
                                  "3": [base + 14, 20]},
            "plotted_pixels": [[round(float(r), 2), round(float(c), 2)] for r, c in zip(rows, cols)],
        })
    meta = {"sampling_frequency": fs, "width": w, "height": h, "resolution": 200, "x_grid": 39.37,
            "y_grid": px_per_mv / 10.0 * 5.0, "leads": leads, "bw": False, "dc_pulse": False}
    Image.fromarray(img).convert("RGBA").save(tmp_path / "00001_lr-0.png")
    (tmp_path / "00001_lr-0.json").write_text(json.dumps(meta))
    return tmp_path / "00001_lr-0.png", tmp_path / "00001_lr-0.json", sig


def test_loader_builds_masks_boxes_and_geometry(tmp_path):
    png, js, sig = _hand_made_page(tmp_path)
    page = load_eik_page(str(png), str(js))
    assert page.image.shape == (120, 200, 3) and page.fs_hz == 100.0 and page.num_samples == 40
    assert [t.name for t in page.leads] == ["I", "aVR"]
    assert abs(page.geometry.px_per_mv - 20.0) < 1e-9
    # every hand-drawn ink pixel is covered by the trace mask and labelled with its own lead
    ys, xs = np.nonzero(page.image[:, :, 0] == 0)
    assert page.trace_mask[ys, xs].all()
    assert set(page.lead_mask[ys[ys < 60], xs[ys < 60]]) == {1}
    assert set(page.lead_mask[ys[ys > 60], xs[ys > 60]]) == {2}
    # the mask is a thin line along the polyline, not a blob
    length_px = sum(np.hypot(*np.diff(t.pixels, axis=0).T).sum() for t in page.leads)
    assert page.trace_mask.sum() < 3.0 * length_px
    boxes = page.lead_name_boxes()
    assert [b.name for b in boxes] == ["I", "aVR"]
    assert abs(boxes[0].box.x0 - 19.5) < 1e-6 and abs(boxes[0].box.y1 - (35 + 14 - 0.5)) < 1e-6
    assert page.angle_deg == 0.0
    # no record beside the JSON: baselines unknown
    assert np.isnan(page.leads[0].baseline_row)


def test_loader_fits_baselines_from_the_record_beside_the_json(tmp_path):
    png, js, sig = _hand_made_page(tmp_path)
    write_record(str(tmp_path), "00001_lr", sig, 100.0, ["I", "aVR"])
    page = load_eik_page(str(png), str(js))
    assert abs(page.leads[0].baseline_row - (35.0 - 0.5)) < 0.05
    assert abs(page.leads[1].baseline_row - (85.0 - 0.5)) < 0.05
    readback, _ = page.signal_readback(["I", "aVR"])
    assert np.allclose(readback, sig, atol=0.01)


def test_rotated_corners_give_the_angle_and_layout_is_inferred():
    c = np.array([[100.0, 0.0], [100.0 - np.sin(np.radians(3)) * 100, np.cos(np.radians(3)) * 100], [0, 0], [0, 0]])
    assert abs(corners_angle_deg(c) - 3.0) < 1e-6
    cells = [(lead, 0, 250) for lead in ("I", "II", "III")] + [(lead, 250, 500) for lead in ("aVR", "AVL", "aVF")]
    cells += [(lead, 500, 750) for lead in ("V1", "V2", "V3")] + [(lead, 750, 1000) for lead in ("V4", "V5", "V6")]
    assert infer_layout(cells, 1000) == "3x4"
    assert infer_layout(cells + [("II", 0, 1000)], 1000) == "3x4+1"
    assert infer_layout(cells[:5], 1000) == "unknown"
