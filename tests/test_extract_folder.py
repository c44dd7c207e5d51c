"""The folder command: records with page images and JSON in, WFDB signals out, scored by the evaluator."""
import json
import os

import numpy as np
from conftest import make_record
from PIL import Image

from paperecg.records.io import load_header_info, load_signal
from paperecg.render.page import RenderStyle, render_page
from paperecg.score.evaluate import evaluate_folders
from paperecg.tools.extract_folder import best_per_lead, main


def write_rendered_record(folder, name: str, fs_hz: float, seed: int, with_json: bool = True) -> str:
    record = make_record(folder, name=name, fs_hz=fs_hz, images=(f"{name}-0.png",), seed=seed)
    signal, _ = load_signal(record)
    info = load_header_info(record)
    page = render_page(signal, fs_hz, info.lead_names, RenderStyle(dpi=100.0))
    Image.fromarray(page.image).save(os.path.join(folder, f"{name}-0.png"))
    if with_json:
        with open(os.path.join(folder, f"{name}-0.json"), "w") as f:
            json.dump(page.to_json(), f)
    return record


def test_folder_command_writes_scorable_outputs(tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    data.mkdir()
    write_rendered_record(data, "00001_lr", 100.0, seed=1)
    write_rendered_record(data, "00002_hr", 500.0, seed=2)
    write_rendered_record(data, "00003_lr", 100.0, seed=3, with_json=False)  # no trace map: header only
    assert main(["-i", str(data), "-o", str(out)]) == 0
    for name in ("00001_lr", "00002_hr"):
        est, fields = load_signal(str(out / name))
        assert est is not None and est.shape == (int(10 * fields["fs"]), 12)
    assert os.path.isfile(out / "00003_lr.hea") and not os.path.isfile(out / "00003_lr.dat")
    result = evaluate_folders(str(data), str(out))
    # the references here are unmasked (whole 10 s) while a 3x4 page shows 2.5 s of most leads,
    # so the coverage factor caps the score well below the per-sample accuracy
    per_record = {}
    for s in result["per_lead"]:
        per_record.setdefault(s.record, []).append(s.snr_db)
    assert np.nanmean(per_record["00001_lr"]) > 3.0
    assert np.nanmean(per_record["00002_hr"]) > 3.0


def test_best_per_lead_takes_the_most_confident_page():
    a = np.zeros((10, 2))
    b = np.ones((10, 2))
    b[:, 1] = np.nan
    out = best_per_lead([a, b], [{"I": 0.5, "II": 0.9}, {"I": 0.8, "II": 1.0}], ["I", "II"])
    assert np.all(out[:, 0] == 1.0)  # page b is more confident for I
    assert np.all(out[:, 1] == 0.0)  # page b has nothing for II


def test_segmenter_mode_rectifies_then_segments(tmp_path):
    """The segmenter path, with a stand-in segmenter (dark pixels of the rectified page are trace)."""
    from paperecg.tools.extract_folder import extract_record

    class DarkInk:
        def predict_work(self, image_rgb):
            return (image_rgb.astype(np.float32).mean(axis=2) < 90).astype(np.float32), 1.0

    data = tmp_path / "data"
    data.mkdir()
    record = write_rendered_record(data, "00001_lr", 100.0, seed=4, with_json=False)
    signal = extract_record(record, "segmenter", segmenter=DarkInk())
    assert signal is not None and signal.shape == (1000, 12)
    assert np.isfinite(signal).any()
