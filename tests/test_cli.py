"""The `paperecg` command: run as a subprocess on generated pages with the shipped model.

One folder run (--jobs 2) covers a header-less image turned by 2 degrees, a challenge record (header naming
its page, 250 Hz) in a sub-folder and a bad file; one single-image run covers an image given alone.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from paperecg.layouts import STANDARD_LEADS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "model")
TILT_DEG = 2.0
needs_model = pytest.mark.skipif(not os.path.isdir(os.path.join(MODEL, "segmenter")), reason="no shipped model")


def run_cli(*args, timeout=600):
    env = dict(os.environ, PAPERECG_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=ROOT)
    env.pop("PAPERECG_PROFILE", None)  # the shipped model on the CPU, as a user runs it
    return subprocess.run([sys.executable, "-m", "paperecg.cli", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def make_page(fs_hz, layout, seed, tilt_deg=0.0):
    """A printed page (default style, 200 dpi) and its trace mask, optionally turned by tilt_deg."""
    from paperecg.records.synthetic import synthetic_ecg
    from paperecg.rectify.rectify import rotate_image
    from paperecg.render.page import RenderStyle, render_page

    signal = synthetic_ecg(fs_hz, 10.0, "NORM", seed)
    page = render_page(signal, fs_hz, list(STANDARD_LEADS), RenderStyle(layout=layout))
    image, mask = page.image, page.trace_mask
    if tilt_deg:
        image = rotate_image(image, tilt_deg)
        mask = rotate_image(np.repeat(mask[..., None].astype(np.uint8) * 255, 3, axis=2), tilt_deg, (0, 0, 0))[..., 0] > 127
    return image, mask, signal


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    from paperecg.records.io import write_record

    root = tmp_path_factory.mktemp("cli")
    data = root / "in"
    (data / "sub").mkdir(parents=True)
    image, mask, _ = make_page(500.0, "3x4+1", seed=1, tilt_deg=TILT_DEG)
    Image.fromarray(image).save(data / "scan one.png")
    rec_image, rec_mask, rec_signal = make_page(250.0, "3x4", seed=2)
    Image.fromarray(rec_image).save(data / "sub" / "rec-0.png")
    write_record(str(data / "sub"), "rec", rec_signal, 250.0, list(STANDARD_LEADS), ["Image: rec-0.png"])
    (data / "bad.png").write_bytes(b"this is not an image")
    out = root / "out"
    r = run_cli("digitize", data, "-o", out, "--jobs", 2)
    return {"root": root, "data": data, "out": out, "run": r, "masks": {"scan_one": mask, "sub/rec": rec_mask},
            "images": {"scan_one": image, "sub/rec": rec_image}}


@needs_model
def test_folder_run_reads_good_images_and_lists_the_bad_one(folder_run):
    r, out = folder_run["run"], folder_run["out"]
    assert r.returncode == 1, r.stderr[-3000:]
    assert "Traceback" not in r.stderr + r.stdout
    assert "digitized 2 of 3 inputs" in r.stdout
    failed = r.stdout.split("failed:\n", 1)[1]
    assert "bad" in failed and "scan_one" not in failed
    for name in ("scan_one", "sub/rec"):  # the space becomes '_' (a WFDB record name); sub-folders kept
        for ext in (".hea", ".dat", ".csv", ".json", ".overlay.png"):
            assert (out / (name + ext)).is_file(), name + ext
    assert not list(out.glob("bad*"))


@needs_model
def test_folder_run_keeps_a_manifest_and_a_second_run_resumes(folder_run):
    """Per input: status, reason, leads found, model identity; a second run reads nothing again but the
    failure it is asked to retry, and rewrites no output."""
    from paperecg.pipeline.archive import MANIFEST_NAME, Manifest

    out, data = folder_run["out"], folder_run["data"]
    rows = Manifest(str(out / MANIFEST_NAME)).rows()
    assert {n: r["status"] for n, r in rows.items()} == {"scan_one": "done", "sub/rec": "done", "bad": "failed"}
    assert rows["bad"]["reason"] and rows["scan_one"]["reason"] is None
    for name in ("scan_one", "sub/rec"):
        assert rows[name]["leads_found"] == len(rows[name]["leads"].split()) >= 10
        assert rows[name]["model_id"].startswith("sha256:") and rows[name]["seconds"] > 0
    written = {p: p.stat().st_mtime_ns for p in out.rglob("*")
               if p.suffix in (".hea", ".dat", ".csv", ".json") and not p.name.startswith("manifest")}
    assert len(written) == 8
    r = run_cli("digitize", data, "-o", out)
    assert r.returncode == 1 and "nothing left to digitize" in r.stdout, r.stdout + r.stderr[-2000:]
    assert "2 done before this run, 1 failed before" in r.stdout and "bad" in r.stdout.split("failed:\n", 1)[1]
    r = run_cli("digitize", data, "-o", out, "--retry-failed")
    assert r.returncode == 1 and "digitized 0 of 1 inputs" in r.stdout, r.stdout + r.stderr[-2000:]
    assert Manifest(str(out / MANIFEST_NAME)).rows()["bad"]["attempts"] == 2
    assert {p: p.stat().st_mtime_ns for p in written} == written


def read_csv(path):
    with open(path) as f:
        columns = f.readline().strip().split(",")
    values = np.genfromtxt(path, delimiter=",", skip_header=1, missing_values="", filling_values=np.nan)
    return columns, values


@needs_model
@pytest.mark.parametrize("name, fs_hz", [("scan_one", 500.0), ("sub/rec", 250.0)])
def test_csv_and_wfdb_agree_to_the_storage_precision(folder_run, name, fs_hz):
    from paperecg.records.io import load_signal

    out = folder_run["out"]
    signal, fields = load_signal(str(out / name))
    assert fields["fs"] == fs_hz and fields["sig_len"] == int(10 * fs_hz)
    assert list(fields["sig_name"]) == list(STANDARD_LEADS) and set(fields["units"]) == {"mV"}
    columns, values = read_csv(out / (name + ".csv"))
    assert columns == ["time_s", *STANDARD_LEADS]
    assert np.allclose(values[:, 0], np.arange(signal.shape[0]) / fs_hz)
    csv = values[:, 1:]
    assert np.array_equal(np.isnan(csv), np.isnan(signal))
    assert np.isfinite(signal).any(axis=0).sum() >= 10
    ok = np.isfinite(signal)
    assert np.max(np.abs(csv[ok] - signal[ok])) <= 0.0005 + 1e-9  # gain 1000: 0.001 mV steps


@needs_model
def test_json_says_what_was_found(folder_run):
    from paperecg.records.io import load_signal

    out = folder_run["out"]
    doc = json.loads((out / "scan_one.json").read_text())
    signal, _ = load_signal(str(out / "scan_one"))
    assert doc["lead_order"] == list(STANDARD_LEADS) and doc["fs_hz"] == 500.0
    assert doc["header"].startswith("none: the 12 standard leads")
    for j, lead in enumerate(STANDARD_LEADS):
        entry = doc["leads"][lead]
        assert entry["coverage"] == pytest.approx(np.isfinite(signal[:, j]).mean(), abs=1e-4)
        assert 0.0 <= entry["confidence"] <= 1.0
    page = doc["pages"][0]
    assert page["layout"] == "3x4+1" and page["rows"] == 4
    assert page["scale"]["px_per_mm_x"] == pytest.approx(200 / 25.4, rel=0.02)
    # the page was turned 2 degrees counter-clockwise: the rectifier took that tilt out
    assert page["rectify"]["rotation_applied_deg"] == pytest.approx(TILT_DEG, abs=0.3)
    assert all(c["name_from"] for c in page["cells"])
    assert isinstance(doc["warnings"], list)
    rec = json.loads((out / "sub" / "rec.json").read_text())
    assert rec["header"].startswith("record ") and rec["fs_hz"] == 250.0


def drawn_pixels(overlay: np.ndarray, image: np.ndarray) -> np.ndarray:
    return np.abs(overlay.astype(np.int16) - image.astype(np.int16)).max(axis=2) > 40


@needs_model
@pytest.mark.parametrize("name", ["scan_one", "sub/rec"])
def test_overlay_trace_lies_on_the_page_trace(folder_run, name):
    """The drawn line sits on the page's own trace pixels (mapped back through the 2 degree tilt), it
    covers the trace, and the measure would catch a line drawn 3 mm off."""
    import cv2

    out = folder_run["out"]
    image, mask = folder_run["images"][name], folder_run["masks"][name]
    overlay = np.asarray(Image.open(out / (name + ".overlay.png")).convert("RGB"))
    assert overlay.shape == image.shape
    drawn = drawn_pixels(overlay, image)
    assert drawn.sum() > 5000
    near_trace = cv2.dilate(mask.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0  # within 3 px
    on = float(near_trace[drawn].mean())
    shifted = np.roll(drawn, 24, axis=0)  # the same drawing 3 mm lower (a 0.3 mV offset)
    assert on > 0.85, on  # the rest is mostly the lead names written at each segment's start
    assert float(near_trace[shifted].mean()) < 0.6 * on
    near_drawn = cv2.dilate(drawn.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    assert float(near_drawn[mask].mean()) > 0.8  # the overlay is drawn along the whole trace
    # see-through: under the drawn line the page's dark trace still darkens the pixel
    dark = mask & drawn
    assert overlay[dark].mean() < 0.75 * 255


@needs_model
def test_an_image_given_alone(folder_run, tmp_path):
    src = folder_run["data"] / "scan one.png"
    r = run_cli("digitize", src, "-o", tmp_path, "--no-overlay")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "digitized 1 of 1 inputs" in r.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan_one.csv", "scan_one.dat", "scan_one.hea",
                                                           "scan_one.json"]
    # the worker processes of --jobs 2 read it exactly as one process does
    assert (tmp_path / "scan_one.csv").read_bytes() == (folder_run["out"] / "scan_one.csv").read_bytes()


@pytest.mark.parametrize("args", [
    ["digitize", "no/such/file.png"],
    ["digitize", "model", "--jobs", "0"],
    ["digitize", "README.md", "--header", "no/such.hea"],
    ["digitize", "paperecg/layouts.py", "--model", "no/such/model"],
    ["digitize"],
    [],
])
def test_bad_usage_exits_2_without_traceback(args):
    r = run_cli(*args, timeout=120)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and r.stderr.strip()


def test_help_shows_examples():
    for args in (["--help"], ["digitize", "--help"], ["classify", "--help"], ["evaluate", "--help"],
                 ["render", "--help"]):
        r = run_cli(*args, timeout=120)
        assert r.returncode == 0, r.stderr
        assert "example" in r.stdout.lower(), args


def test_folder_without_images_is_bad_usage(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    r = run_cli("digitize", tmp_path, timeout=120)
    assert r.returncode == 2 and "no image files" in r.stderr


def test_standard_header_for_header_less_pages():
    from paperecg.cli.digitize import standard_header

    h = standard_header("scan", 250.0, 10.0, ["scan.png"])
    assert h.lead_names == list(STANDARD_LEADS) and h.num_samples == 2500 and h.fs_hz == 250.0
    assert h.units == ["mV"] * 12 and h.image_files == ["scan.png"]


def test_output_names_are_unique_and_wfdb_safe(tmp_path):
    from paperecg.cli.digitize import find_jobs

    for name in ("a b.png", "a_b.jpg", "c.png"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "c.overlay.png").write_bytes(b"x")  # an earlier run's picture is not an input
    names = sorted(j.name for j in find_jobs([str(tmp_path)]))
    assert names == ["a_b", "a_b-2", "c"]


def test_model_search_order(tmp_path, monkeypatch):
    from paperecg.cli import MODEL_ENV, find_model
    from paperecg.cli.digitize import UsageError

    (tmp_path / "segmenter").mkdir()
    monkeypatch.setenv(MODEL_ENV, str(tmp_path))
    assert find_model(None) == str(tmp_path)
    assert find_model(MODEL) == MODEL  # --model first
    monkeypatch.delenv(MODEL_ENV)
    if os.path.isdir(os.path.join(MODEL, "segmenter")):
        assert os.path.samefile(find_model(None), MODEL)  # the checkout's model/
    with pytest.raises(UsageError):
        find_model(str(tmp_path / "none"))


def test_pyproject_installs_every_package_and_the_command():
    import tomllib

    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        conf = tomllib.load(f)
    listed = set(conf["tool"]["setuptools"]["packages"])
    found = {os.path.relpath(d, ROOT).replace(os.sep, ".") for d, _, files in os.walk(os.path.join(ROOT, "paperecg"))
             if "__init__.py" in files}
    assert listed == found | {"paperecg.model"}
    assert conf["tool"]["setuptools"]["package-dir"]["paperecg.model"] == "model"
    assert conf["project"]["scripts"]["paperecg"] == "paperecg.cli:entry_point"


def test_refuses_to_overwrite_a_record_it_did_not_write(tmp_path):
    """Digitizing a challenge folder into itself would write over the reference: bad usage, nothing touched."""
    from paperecg.records.io import write_record
    from paperecg.records.synthetic import synthetic_ecg

    write_record(str(tmp_path), "rec", synthetic_ecg(100.0, 10.0, "NORM", 0), 100.0, list(STANDARD_LEADS),
                 ["Image: rec-0.png"])
    Image.new("RGB", (40, 30), "white").save(tmp_path / "rec-0.png")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    r = run_cli("digitize", tmp_path, "-o", tmp_path, timeout=120)
    assert r.returncode == 2 and "not written by paperecg" in r.stderr
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


@needs_model
def test_classify_prints_classes_with_probabilities(folder_run):
    r = run_cli("classify", folder_run["data"] / "scan one.png", "--json")
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads(r.stdout)
    (res,) = doc["results"]
    assert res["name"] == "scan_one" and res["labels"] and not doc["failed"]
    probs = res["probabilities"]
    assert set(res["labels"]) <= set(probs) and all(0.0 <= p <= 1.0 for p in probs.values())
