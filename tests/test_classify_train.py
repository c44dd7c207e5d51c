"""Classifier training end to end on tiny synthetic records: skips unlabeled records, handles a class
absent from training, fails clearly without labels, writes a loadable model."""
import os

import numpy as np
import pytest
import torch

from paperecg.classify.model import Classifier
from paperecg.classify.train import load_training_records, make_folds, train_classifier
from paperecg.layouts import STANDARD_LEADS
from paperecg.records.io import load_header_info
from paperecg.records.io import write_record
from paperecg.records.labels import CLASSES

torch.set_num_threads(1)


def _beats(rate_bpm: float, fs_hz: float, rng, seconds: float = 10.0) -> np.ndarray:
    n = int(fs_hz * seconds)
    sig = np.zeros((n, 12))
    t = rng.uniform(0.1, 0.5)
    w = max(1, int(0.02 * fs_hz))
    while t < seconds - 0.1:
        i = int(t * fs_hz)
        sig[i - w:i + w] += np.hanning(2 * w)[:, None] * rng.uniform(0.5, 1.5, 12)
        t += 60.0 / rate_bpm
    return sig + rng.normal(0, 0.02, sig.shape)


def _make_dataset(folder, n: int = 12, labels_fn=None, unlabeled: int = 0, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        fs = [250.0, 500.0][i % 2]  # the challenge's two rates, never assumed
        labels = labels_fn(i) if labels_fn else (["TACHY"] if i % 3 == 0 else ["NORM"] if i % 3 == 1 else ["BRADY"])
        rate = 130 if "TACHY" in labels else 45 if "BRADY" in labels else 75
        comments = ["Age: 60", "Sex: Female" if i % 2 else "Sex: Male"]
        comments.append("Labels: " + ", ".join(labels))
        paths.append(write_record(str(folder), f"r{i:03d}", _beats(rate, fs, rng), fs,
                                  list(STANDARD_LEADS), comments))
    for j in range(unlabeled):
        paths.append(write_record(str(folder), f"u{j:03d}", _beats(70, 500.0, rng), 500.0,
                                  list(STANDARD_LEADS), ["Age: 50"]))
    return paths


@pytest.fixture(autouse=True)
def _tiny_profile(monkeypatch):
    monkeypatch.setenv("PAPERECG_PROFILE", "tiny")
    monkeypatch.setenv("PAPERECG_THREADS", "1")


def test_train_tiny_end_to_end_with_absent_class_and_unlabeled(tmp_path):
    paths = _make_dataset(tmp_path / "data", n=12, unlabeled=2)
    records = load_training_records(paths)
    assert len(records) == 12  # the two unlabeled records are skipped
    out = tmp_path / "model"
    clf = train_classifier(paths, str(out), minutes=0.15, signal_folds=2, use_image=True,
                           image_arch="resnet18", image_size_px=48, verbose=False)
    assert os.path.isfile(out / "config.json") and os.path.isfile(out / "signal_0.safetensors")
    cfg = clf.cfg
    present = {"TACHY", "NORM", "BRADY"}
    for c, trained, thr in zip(CLASSES, cfg.trained_classes, cfg.thresholds_fused):
        assert trained == (c in present)
        if c not in present:
            assert thr == float("inf")
    assert cfg.num_signal_models == 2
    # the measurement fusion is trained beside the branches and loaded with them
    assert os.path.isfile(out / "fusion.json")
    loaded = Classifier.load(str(out), device="cpu")
    assert loaded.fusion is not None
    info = load_header_info(paths[0])
    from paperecg.records.io import load_signal
    sig, _ = load_signal(paths[0])
    img = np.full((85, 110, 3), 255, np.uint8)
    labels = loaded.predict([img, img], sig, info)
    assert labels and set(labels) <= present


def test_training_without_labels_fails_clearly(tmp_path):
    paths = _make_dataset(tmp_path / "data", n=3, labels_fn=lambda i: [], unlabeled=2)
    with pytest.raises(ValueError, match="no labelled training records"):
        train_classifier(paths, str(tmp_path / "m"), minutes=0.05, use_image=False, verbose=False)


def test_single_labelled_record_signal_only(tmp_path):
    paths = _make_dataset(tmp_path / "data", n=1)
    clf = train_classifier(paths, str(tmp_path / "m"), minutes=0.05, use_image=False, verbose=False)
    assert clf.cfg.num_signal_models == 1 and not clf.cfg.has_image_model
    assert sum(clf.cfg.trained_classes) == 1


def test_folds_are_stratified_for_rare_classes():
    y = np.zeros((40, 3), dtype=np.float32)
    y[:, 0] = 1
    y[:4, 1] = 1  # four rare positives over four folds: one each
    folds = make_folds(y, 4, seed=0)
    assert sorted(folds[:4].tolist()) == [0, 1, 2, 3]
    assert np.bincount(folds, minlength=4).min() >= 9


def test_training_draws_sometimes_hide_demographics():
    """Hidden test headers have no age or sex: the signal branch must learn to do without them too."""
    from paperecg.classify.signal_data import NUM_RHYTHM_FEATURES
    from paperecg.classify.train import SignalTrainSet
    from paperecg.records.synthetic import synthetic_ecg

    x = synthetic_ecg(100.0, seed=1).T.astype(np.float32)
    ds = SignalTrainSet([x] * 40, [(63.0, "Male")] * 40, np.zeros((40, len(CLASSES)), np.float32), seed=0)
    age = np.array([ds[i][1][NUM_RHYTHM_FEATURES] for i in range(40)])
    hidden = np.isnan(age)
    assert 5 <= hidden.sum() <= 35  # about half of the draws
    assert np.allclose(age[~hidden], 0.63)


def test_image_branch_fine_tunes_from_imagenet_weights_in_the_model_folder(tmp_path):
    """A '{arch}_imagenet.safetensors' beside the classifier folder initialises the image branch (the
    1000-class head is skipped) and the config says so; a file of another network fails loudly."""
    import torchvision
    from safetensors.torch import save_file

    paths = _make_dataset(tmp_path / "data", n=8)
    model_folder = tmp_path / "model"
    model_folder.mkdir()
    torch.manual_seed(123)
    imagenet = torchvision.models.resnet18(weights=None, num_classes=1000).state_dict()
    save_file({k: v.contiguous() for k, v in imagenet.items()}, str(model_folder / "resnet18_imagenet.safetensors"))
    clf = train_classifier(paths, str(model_folder / "classifier"), minutes=0.1, signal_folds=2,
                           image_arch="resnet18", image_size_px=48, verbose=False)
    assert clf.cfg.imagenet_init and clf.cfg.notes["image_init"].endswith("resnet18_imagenet.safetensors")
    given, trained = imagenet["layer1.0.conv1.weight"].flatten(), clf.image_net.state_dict()["layer1.0.conv1.weight"].flatten()
    assert torch.corrcoef(torch.stack([given, trained.float().cpu()]))[0, 1] > 0.9  # fine-tuned, not re-drawn

    save_file({"encoder.weight": torch.zeros(3, 3)}, str(model_folder / "resnet18_imagenet.safetensors"))
    with pytest.raises(ValueError, match="no tensor matches"):
        train_classifier(paths, str(model_folder / "classifier2"), minutes=0.1, signal_folds=2,
                         image_arch="resnet18", image_size_px=48, verbose=False)
