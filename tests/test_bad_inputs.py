"""Bad inputs (issue 18): every record gets a valid output, every problem one clear line, and training
refuses data it cannot learn from before it starts. One test per defect found by trying the entry as a new
user would; each builds its bad files from a small generated page."""
import os
from dataclasses import replace

import numpy as np
import pytest
from conftest import LEADS_12, make_record
from PIL import Image

from paperecg.pipeline import entry, training
from paperecg.pipeline.data import UnusableDataError
from paperecg.pipeline.digitizer import DigitizedRecord, Digitizer
from paperecg.pipeline.prevalence import PrevalenceModel
from paperecg.records import images as images_module
from paperecg.records.io import load_header_info, load_signal, save_outputs, write_record
from paperecg.records.synthetic import synthetic_ecg

FS_HZ = 100.0
PREVALENCE = PrevalenceModel({"NORM": 0.5, "CD": 0.25}, 4)


class DarkInk:
    """A segmenter that calls every dark pixel trace: exact on a clean generated page (black trace on a red
    grid), so the real rectification and extraction run on it without a trained network."""

    def predict_work(self, image_rgb: np.ndarray) -> tuple[np.ndarray, float]:
        return (image_rgb.min(axis=2) < 90).astype(np.float32), 1.0


class ConstantDigitizer(Digitizer):
    """Reads the given value in mV on every lead (minus it on odd leads): what a wildly wrong scale gives."""

    def __init__(self, value_mv: float):
        super().__init__()
        self.value_mv = value_mv

    def digitize_record(self, record, header, verbose=False, log=print, pages=None):
        sign = np.where(np.arange(header.num_leads) % 2 == 0, 1.0, -1.0)
        return DigitizedRecord(np.full((header.num_samples, header.num_leads), self.value_mv) * sign)


def untrained_classifier() -> entry.Labeller:
    """The real classifier object (an untrained signal network, no image network): it answers from a
    digitized signal and has nothing to say without one."""
    from paperecg.classify.model import Classifier, ClassifierConfig, make_signal_net

    cfg = ClassifierConfig(num_signal_models=1)
    return entry.Labeller(PREVALENCE, Classifier(cfg, [make_signal_net(cfg)], None))


def good_page_record(folder, image_names: list[str]) -> tuple[str, np.ndarray]:
    """A record whose header names `image_names`; 'good.png' among them is a clean printed page of it."""
    from paperecg.render.page import RenderStyle, render_page

    os.makedirs(folder, exist_ok=True)
    signal = synthetic_ecg(FS_HZ, 10.0, "NORM", 0, 12)
    page = render_page(signal, FS_HZ, LEADS_12, RenderStyle(dpi=100.0), np.random.default_rng(0))
    Image.fromarray(page.image).save(os.path.join(folder, "good.png"))
    record = write_record(str(folder), "rec", signal, FS_HZ, LEADS_12, ["Image: " + ", ".join(image_names)])
    return record, signal


def warnings_about(text: str, name: str) -> list[str]:
    return [line for line in text.splitlines() if name in line]


def test_garbage_pages_cost_nothing_beside_a_good_page(tmp_path, capsys):
    """Row 1: random bytes and a text file named .jpg give one line each; the good page is digitized. With
    ultralytics imported (as run_model.py does), PIL's failure surfaces as ModuleNotFoundError: pi_heif."""
    from paperecg.rectify.yolo import import_ultralytics

    import_ultralytics()
    record, truth = good_page_record(tmp_path, ["random.png", "good.png", "text.jpg"])
    (tmp_path / "random.png").write_bytes(np.random.default_rng(1).integers(0, 256, 3000, np.uint8).tobytes())
    (tmp_path / "text.jpg").write_text("this is not a JPEG\n")
    signal, _ = entry.run(record, Digitizer(segmenter=DarkInk()), entry.Labeller(PREVALENCE))
    err = capsys.readouterr().err
    for name in ("random.png", "text.jpg"):
        lines = warnings_about(err, name)
        assert len(lines) == 1 and "not an image" in lines[0], err
    assert "pi_heif" not in err and "Traceback" not in err, err
    lead_ii = LEADS_12.index("II")  # the rhythm strip: drawn over all 10 s
    ok = np.isfinite(signal[:, lead_ii])
    assert ok.mean() > 0.9
    assert np.corrcoef(signal[ok, lead_ii], truth[ok, lead_ii])[0, 1] > 0.9


NO_SIGNAL_HEADERS = {"empty": "", "zero_leads": "rec 0 500 5000\n# Image: rec-0.png\n",
                     "zero_gain": "rec 1 500 5000\nrec.dat 16 0/mV 16 0    I\n"}


@pytest.mark.parametrize("header_text", NO_SIGNAL_HEADERS.values(), ids=NO_SIGNAL_HEADERS.keys())
def test_headers_without_signals_never_stop_the_save_step(tmp_path, header_text):
    """Row 2: an empty header, one with zero signal lines or one whose gain wfdb refuses gives no signal
    (their save step cannot write one and runs outside their try/except), still the fallback labels; the
    save step then succeeds."""
    (tmp_path / "data").mkdir()
    record = str(tmp_path / "data" / "rec")
    with open(record + ".hea", "w") as f:
        f.write(header_text)
    signal, labels = entry.run(record, Digitizer(), entry.Labeller(PREVALENCE))
    assert signal is None and labels == PREVALENCE.predict()
    out = str(tmp_path / "out" / "rec")
    save_outputs(out, header_text, signal, labels)  # what run_model.py does after run_models
    assert open(out + ".hea").read().rstrip().endswith("# Labels: NORM, CD")


def test_values_are_clipped_into_each_leads_format_with_its_baseline(tmp_path):
    """Row 3: a non-zero ADC baseline (and 12-bit format 212) narrows what a lead can store; a 20 mV reading
    must be clipped so that round(value * gain + baseline) fits, or the organizers' save step raises."""
    (tmp_path / "data").mkdir()
    record = str(tmp_path / "data" / "rec")
    lines = ["rec 4 500 5000",
             "rec.dat 16 1000(16000)/mV 16 0 0 0 0 I",
             "rec.dat 16 1000(-16000)/mV 16 0 0 0 0 II",
             "rec.dat 212 200/mV 12 0 0 0 0 V1",
             "rec.dat 16 1000/mV 16 0 0 0 0 V2"]
    header_text = "\n".join(lines) + "\n"
    with open(record + ".hea", "w") as f:
        f.write(header_text)
    signal, labels = entry.run(record, ConstantDigitizer(20.0), entry.Labeller(PREVALENCE))
    out = str(tmp_path / "out" / "rec")
    save_outputs(out, header_text, signal, labels)  # raised IndexError 'outside allowed range' before
    stored, _ = load_signal(out)
    gains, baselines = np.array([1000.0, 1000.0, 200.0, 1000.0]), np.array([16000, -16000, 0, 0])
    counts = np.round(stored * gains + baselines)
    assert np.isfinite(stored).all()
    # each lead at the edge of its format's range, on the side the reading went (+20, -20, +20, -20 mV)
    np.testing.assert_array_equal(counts[0], [32767, -32767, 2047, -20000])


def test_one_label_fallback_on_every_path(tmp_path):
    """Row 4: with nothing to classify (no '# Image:' line, an unreadable page, no leads, an unreadable
    header) the labels are the prevalence model's, as when classification fails; never an empty line."""
    data = tmp_path / "data"
    no_image = make_record(data, "no_image", images=())
    unreadable = make_record(data, "unreadable", images=("unreadable-0.png",))
    (data / "unreadable-0.png").write_text("not a PNG")
    (data / "zero_leads.hea").write_text("zero_leads 0 500 5000\n")
    (data / "binary.hea").write_bytes(b"\xff\xfe\x00garbage\x80")
    classifier = untrained_classifier()
    for name in (no_image, unreadable, str(data / "zero_leads"), str(data / "binary")):
        _, labels = entry.run(name, Digitizer(), classifier)
        assert labels == ["NORM", "CD"], name
    # the same classifier answers from itself when there is something to classify
    signal = synthetic_ecg(FS_HZ, 10.0, "NORM", 0, 12)
    assert classifier.classify(load_header_info(no_image), [], signal)


class SprayModel:
    """A trained model that names every class it knows whatever it is shown (as the image branch did with a
    monitor page no lead was read from)."""

    def predict(self, images, signal, header):
        return ["NORM", "Old MI", "STTC", "CD", "HYP", "PVC", "AFIB/AFL", "TACHY", "BRADY"]


@pytest.mark.parametrize("fs_hz", [250.0, 500.0])
def test_a_record_with_no_lead_read_gets_the_prevalence_labels(tmp_path, fs_hz):
    """A page was given but no lead was read from it (all NaN, or a few stray samples): the labels are the
    prevalence model's, not the trained model's answer to the picture; a read lead is classified."""
    record = make_record(tmp_path, "rec", images=("page.png",))
    header = load_header_info(record)
    header = replace(header, fs_hz=fs_hz, num_samples=int(10 * fs_hz))
    classifier = entry.Labeller(PREVALENCE, SprayModel())
    page = [np.full((64, 48, 3), 255, np.uint8)]
    empty = np.full((header.num_samples, 12), np.nan)
    few = empty.copy()
    few[100:110, 1] = 0.3  # ten stray samples of one lead
    few[2000:2005, 7] = -0.1
    for signal in (None, empty, few):
        assert classifier.classify(header, page, signal) == PREVALENCE.predict()
    read = empty.copy()
    read[: int(2.5 * fs_hz), 0] = 0.1  # one lead of a 3x4 page
    assert classifier.classify(header, page, read) == SprayModel().predict(None, None, None)


def test_each_page_is_decoded_once_and_reported_once(tmp_path, capsys, monkeypatch):
    """Row 5: the digitizer and the classifier share the decoded pages, so an unreadable page is read and
    reported once (it was decoded again for the classifier when no page had been digitized)."""
    record, _ = good_page_record(tmp_path, ["broken.png"])
    data = (tmp_path / "good.png").read_bytes()
    (tmp_path / "broken.png").write_bytes(data[: len(data) // 2])  # a truncated PNG
    calls = []
    real_load_page = images_module.load_page
    monkeypatch.setattr(images_module, "load_page", lambda p: calls.append(p) or real_load_page(p))
    entry.run(record, Digitizer(segmenter=DarkInk()), untrained_classifier())
    assert [os.path.basename(p) for p in calls] == ["broken.png"]
    assert len(warnings_about(capsys.readouterr().err, "broken.png")) == 1


def test_training_names_the_real_shortfall_before_training(tmp_path, monkeypatch):
    """Row 7a: one usable record cannot give the detector a validation split; a labelled record without a
    signal cannot train the classifier. Both refused up front, with the counts, and nothing written."""
    one = tmp_path / "one"
    make_record(one, "00001_lr")
    monkeypatch.setenv("PAPERECG_COMPONENTS", "detector,segmenter,classifier")
    with pytest.raises(UnusableDataError, match="at least 2 records with signal files"):
        training.train(str(one), str(tmp_path / "m1"))
    assert not os.path.exists(tmp_path / "m1")

    mixed = tmp_path / "mixed"
    make_record(mixed, "labelled_no_signal", with_signal=False, images=("page.png",))
    Image.new("RGB", (64, 48), "white").save(mixed / "page.png")
    make_record(mixed, "unlabelled", labels=None)
    monkeypatch.setenv("PAPERECG_COMPONENTS", "classifier")
    with pytest.raises(UnusableDataError, match="no labelled record has one.*2 usable record"):
        training.train(str(mixed), str(tmp_path / "m2"))
    assert not os.path.exists(tmp_path / "m2")


def test_a_failed_training_leaves_no_usable_looking_model(tmp_path, monkeypatch):
    """Row 7b: a part that fails mid-training leaves no model folder behind (or the previous one as it
    was), where it used to leave prevalence.json and half a part that failed to load later."""
    import paperecg.classify.train as classify_train

    data = tmp_path / "data"
    for i, labels in enumerate([("NORM",), ("CD",)]):
        make_record(data, f"{i:05d}_lr", labels=labels, seed=i)

    def failing_trainer(record_paths, out_dir, **kwargs):
        os.makedirs(os.path.join(out_dir, "_work"))
        open(os.path.join(out_dir, "_work", "partial.bin"), "wb").close()
        raise RuntimeError("out of memory (simulated)")

    monkeypatch.setattr(classify_train, "train_classifier", failing_trainer)
    monkeypatch.setenv("PAPERECG_COMPONENTS", "classifier")
    with pytest.raises(RuntimeError, match="simulated"):
        training.train(str(data), str(tmp_path / "fresh"))
    assert not os.path.exists(tmp_path / "fresh")

    # a previous model stays exactly as it was
    monkeypatch.setenv("PAPERECG_COMPONENTS", "")
    training.train(str(data), str(tmp_path / "model"))
    before = sorted(os.listdir(tmp_path / "model"))
    prevalence_before = open(tmp_path / "model" / "prevalence.json").read()
    make_record(data, "00002_lr", labels=("PVC",), seed=2)
    monkeypatch.setenv("PAPERECG_COMPONENTS", "classifier")
    with pytest.raises(RuntimeError, match="simulated"):
        training.train(str(data), str(tmp_path / "model"))
    assert sorted(os.listdir(tmp_path / "model")) == before == ["prevalence.json"]
    assert open(tmp_path / "model" / "prevalence.json").read() == prevalence_before


def test_the_corpus_check_tells_valid_outputs_from_missing_ones(tmp_path):
    """tools/bad_input_sim.sh's verdict per record: a saved signal with labels passes; no output, or a
    header describing a signal with none written, fails; a header without signal lines needs labels only."""
    from paperecg.tools.bad_inputs import check_record, hidden_header

    (tmp_path / "data").mkdir()
    cases = {"good": hidden_header("good", 500.0, 5000, LEADS_12, ["good-0.png"]),
             "zero": hidden_header("zero", 500.0, 5000, [], None)}
    for name, text in cases.items():
        (tmp_path / "data" / f"{name}.hea").write_text(text)
    out = tmp_path / "out"
    save_outputs(str(out / "good"), cases["good"], np.full((5000, 12), np.nan), ["NORM"])
    save_outputs(str(out / "zero"), cases["zero"], None, ["NORM"])
    assert check_record(str(tmp_path / "data" / "good"), str(out / "good"))[0]
    assert check_record(str(tmp_path / "data" / "zero"), str(out / "zero"))[0]
    os.remove(out / "good.dat")
    assert not check_record(str(tmp_path / "data" / "good"), str(out / "good"))[0]
    assert not check_record(str(tmp_path / "data" / "missing"), str(out / "missing"))[0]


def test_the_digitizer_returns_its_page_results(tmp_path):
    """Page results come back with the signal (no side attribute left on the digitizer): one PageResult per
    readable page, with its rectified page and extraction; entry.run_record hands them on with run's output."""
    record, _truth = good_page_record(tmp_path, ["good.png", "missing.png"])
    digitizer = Digitizer(segmenter=DarkInk())
    header = load_header_info(record)
    result = digitizer.digitize_record(record, header, log=lambda m: None)
    assert isinstance(result, DigitizedRecord) and not hasattr(digitizer, "last_pages")
    assert [os.path.basename(p.page.path) for p in result.pages] == ["good.png"]
    page = result.pages[0]
    assert page.error is None and page.rectified is not None and page.extraction is not None
    assert np.isfinite(result.signal).any() and result.signal.shape == (header.num_samples, header.num_leads)
    out = entry.run_record(record, digitizer, entry.Labeller(PREVALENCE))
    signal, labels = entry.run(record, digitizer, entry.Labeller(PREVALENCE))
    assert [os.path.basename(p.page.path) for p in out.pages] == ["good.png"]
    assert np.array_equal(out.signal, signal, equal_nan=True) and out.labels == labels
