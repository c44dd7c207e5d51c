"""Classifier pieces: macro F, threshold tuning, imbalance weights, signal preparation, multi-image
records, absent classes."""
import json
import math

import numpy as np
import pytest
import torch

from paperecg.classify.model import Classifier, ClassifierConfig, decide, make_signal_net
from paperecg.classify.networks import build_image_net
from paperecg.classify.signal_data import (INTERNAL_FS_HZ, apply_layout_mask, augment_signal, network_input,
                                           rhythm_features, side_features, to_internal)
from paperecg.classify.thresholds import (apply_thresholds, best_threshold, macro_f, positive_weights,
                                          tune_thresholds)
from paperecg.classify.train import choose_fusion
from paperecg.layouts import STANDARD_LEADS
from paperecg.records.header import HeaderInfo
from paperecg.records.labels import CLASSES

torch.set_num_threads(1)


def test_macro_f_uses_only_classes_present_in_truth_and_labelled_records():
    truth = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=bool)
    pred = np.array([[1, 0, 1], [1, 1, 0], [0, 0, 0], [1, 1, 1]], dtype=bool)
    f, per = macro_f(pred, truth)
    # class 0: TP1 FP1 FN1 -> 0.5; class 1: TP1 -> 1.0; class 2 absent from truth -> not scored;
    # the unlabeled last record is ignored entirely
    assert per[0] == pytest.approx(0.5)
    assert per[1] == pytest.approx(1.0)
    assert math.isnan(per[2])
    assert f == pytest.approx(0.75)


def test_threshold_tuning_on_hand_made_case():
    prob = np.array([0.9, 0.8, 0.35, 0.3, 0.2, 0.1])
    truth = np.array([1, 1, 1, 0, 0, 0], dtype=bool)
    t, f = best_threshold(prob, truth)
    # every positive scores above every negative: the cut must fall between 0.30 and 0.35
    assert 0.3 < t <= 0.35
    assert f == pytest.approx(1.0)
    # a default 0.5 cut would miss one positive
    assert macro_f(prob[:, None] >= 0.5, truth[:, None])[0] < 1.0


def test_tune_thresholds_absent_and_untrained_classes():
    probs = np.array([[0.9, 0.2, 0.5], [0.1, 0.7, 0.5], [0.8, 0.1, 0.5]])
    truth = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0]], dtype=bool)
    thr = tune_thresholds(probs, truth, trained=np.array([True, True, False]), default=0.42)
    assert 0.1 < thr[0] <= 0.8 and 0.2 < thr[1] <= 0.7
    assert np.isinf(thr[2])  # never trained -> never predicted
    assert not apply_thresholds(np.ones((1, 3)), thr)[0, 2]
    thr2 = tune_thresholds(probs, truth, default=0.42)
    assert thr2[2] == 0.42  # trained but no positive here: keep the default


def test_positive_weights_favour_rare_classes():
    y = np.zeros((100, 3), dtype=np.float32)
    y[:50, 0] = 1
    y[:4, 1] = 1
    w = positive_weights(y, power=1.0, max_weight=1000)
    assert w[0] == pytest.approx(1.0)
    assert w[1] == pytest.approx(96 / 4)
    assert w[2] == pytest.approx(1.0)  # no positives: neutral (masked in training)
    assert positive_weights(y, power=0.5)[1] == pytest.approx(math.sqrt(24))
    assert positive_weights(y, power=1.0, max_weight=10)[1] == pytest.approx(10)


def test_fusion_keeps_the_informative_branch_and_signal_thresholds_for_rare_classes():
    rng = np.random.default_rng(0)
    truth = np.zeros((200, 3), dtype=bool)
    truth[:, 0] = rng.random(200) < 0.4
    truth[:, 1] = rng.random(200) < 0.3
    truth[:4, 2] = True  # rare here: keeps the signal branch's threshold
    good = np.clip(truth * 0.6 + rng.random((200, 3)) * 0.4, 0, 1)
    noise = rng.random((200, 3))
    cfg = ClassifierConfig(classes=["A", "B", "C"], trained_classes=[True] * 3)
    sig_thr = np.array([0.5, 0.5, 0.77])
    w, thr, f = choose_fusion(good, noise, truth, np.ones(3, bool), sig_thr, cfg)
    assert w >= 0.7 and f > 0.9
    assert thr[2] == 0.77
    w2, thr2, _ = choose_fusion(noise, good, truth, np.ones(3, bool), sig_thr, cfg)
    assert w2 <= 0.3
    # a useless image branch never makes the fused answer worse than the signal branch on this fold
    w3, thr3, f3 = choose_fusion(good, np.full_like(good, 0.5), truth, np.ones(3, bool), sig_thr, cfg)
    f_sig, _ = macro_f(good >= sig_thr, truth)
    assert f3 >= f_sig - 1e-9


def test_decide_never_predicts_untrained_and_answers_at_least_one():
    probs = np.array([0.99, 0.2, 0.1])
    out = decide(probs, [0.5, 0.5, 0.5], [False, True, True], at_least_one=True)
    assert not out[0] and out[1] and not out[2]  # class 0 untrained; class 1 has the best p/threshold
    assert not decide(probs, [0.5, 0.5, 0.5], [False, True, True], at_least_one=False).any()


def _sine_record(fs_hz: float, seconds: float = 10.0):
    t = np.arange(int(fs_hz * seconds)) / fs_hz
    return np.stack([np.sin(2 * np.pi * 1.0 * t) * (k + 1) / 12 for k in range(12)], axis=1)


@pytest.mark.parametrize("fs_hz", [100.0, 250.0, 500.0])
def test_to_internal_resamples_and_reorders(fs_hz):
    sig = _sine_record(fs_hz)
    names = ["I", "II", "III", "AVR", "AVL", "AVF", "V1", "V2", "V3", "V4", "V5", "V6"][::-1]
    sig = sig[:, ::-1].copy()  # header order reversed, PTB-XL capitalisation
    sig[int(2 * fs_hz):int(3 * fs_hz), 0] = np.nan  # a gap in V6
    x = to_internal(sig, fs_hz, names)
    assert x.shape == (12, 1000)
    t = np.arange(1000) / INTERNAL_FS_HZ
    expect_avr = np.sin(2 * np.pi * t) * 4 / 12
    assert np.nanmax(np.abs(x[STANDARD_LEADS.index("aVR")] - expect_avr)) < 0.02
    v6 = x[STANDARD_LEADS.index("V6")]
    assert np.isnan(v6[210:290]).all() and np.isfinite(v6[:190]).all()


def test_layout_mask_and_augmentation_keep_windows():
    x = to_internal(_sine_record(500.0), 500.0, list(STANDARD_LEADS))
    m = apply_layout_mask(x, "3x4+1")
    v1 = m[STANDARD_LEADS.index("V1")]
    assert np.isnan(v1[:500]).all() and np.isfinite(v1[500:750]).all() and np.isnan(v1[750:]).all()
    assert np.isfinite(m[STANDARD_LEADS.index("II")]).all()  # the rhythm strip
    e = apply_layout_mask(x, "6x2-eik")  # ECG-Image-Kit's 6x2: both columns over the first 5 s
    v4 = e[STANDARD_LEADS.index("V4")]
    assert np.isfinite(v4[:500]).all() and np.isnan(v4[500:]).all()
    rng = np.random.default_rng(1)
    for _ in range(10):
        a = augment_signal(x, rng)
        assert a.shape == x.shape and a.dtype == np.float32
        assert np.nanmax(np.abs(a)) <= 5.0
    inp = network_input(m)
    assert inp.shape == (24, 1000) and np.isfinite(inp).all()
    assert inp[12 + STANDARD_LEADS.index("V1"), 600] == 1 and inp[12 + STANDARD_LEADS.index("V1"), 100] == 0


def _spike_ecg(rate_bpm: float, fs_hz: float, seconds: float = 10.0, jitter: float = 0.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    n = int(fs_hz * seconds)
    sig = np.zeros((n, 12))
    t = 0.3
    while t < seconds - 0.1:
        i = int(t * fs_hz)
        w = max(1, int(0.02 * fs_hz))
        sig[i - w:i + w, :] += np.hanning(2 * w)[:, None] * 1.0
        t += 60.0 / rate_bpm * (1 + jitter * rng.uniform(-1, 1))
    return sig + rng.normal(0, 0.01, sig.shape)


@pytest.mark.parametrize("rate_bpm,fs_hz", [(45, 500.0), (75, 250.0), (130, 500.0)])
def test_rhythm_features_rate_from_masked_layout(rate_bpm, fs_hz):
    x = apply_layout_mask(to_internal(_spike_ecg(rate_bpm, fs_hz), fs_hz, list(STANDARD_LEADS)), "3x4+1")
    f = rhythm_features(x)
    assert f[7] == 1.0  # valid
    assert f[0] * 100 == pytest.approx(rate_bpm, rel=0.08)
    assert f[1] < 0.05  # regular
    irregular = rhythm_features(to_internal(_spike_ecg(80, fs_hz, jitter=0.35, seed=3), fs_hz, list(STANDARD_LEADS)))
    assert irregular[1] > 3 * f[1]


def _tiny_classifier(trained=None) -> Classifier:
    cfg = ClassifierConfig(signal_width=8, image_arch="resnet18", image_size_px=32, num_signal_models=1,
                           has_image_model=True)
    if trained is not None:
        cfg.trained_classes = trained
        cfg.thresholds_fused = [t if tr else float("inf") for t, tr in zip(cfg.thresholds_fused, trained)]
        cfg.thresholds_signal = list(cfg.thresholds_fused)
        cfg.thresholds_image = list(cfg.thresholds_fused)
    torch.manual_seed(0)
    return Classifier(cfg, [make_signal_net(cfg)], build_image_net("resnet18", len(CLASSES)), "cpu")


def _header(fs_hz=500.0):
    return HeaderInfo("r", fs_hz, int(fs_hz * 10), list(STANDARD_LEADS), [1000.0] * 12, [0] * 12, ["mV"] * 12,
                      ["16"] * 12, age=60.0, sex="Female")


def test_record_with_two_images_averages_them():
    clf = _tiny_classifier()
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)
    b = np.full((100, 80, 3), 250, np.uint8)
    pa, pb = clf.image_probs([a]), clf.image_probs([b])
    pab = clf.image_probs([a, b])
    assert not np.allclose(pa, pb)
    assert np.allclose(pab, (pa + pb) / 2, atol=1e-5)
    labels = clf.predict([a, b], None, _header())
    assert labels and set(labels) <= set(CLASSES)


def test_missing_class_never_predicted_and_survives_save_load(tmp_path):
    trained = [c != "Acute MI" for c in CLASSES]
    clf = _tiny_classifier(trained)
    clf.cfg.thresholds_fused = [0.0 if tr else float("inf") for tr in trained]  # everything trained fires
    clf.cfg.fusion_weight_signal = 0.5  # both branches count, so the fused thresholds decide
    clf.save(str(tmp_path))
    raw = json.load(open(tmp_path / "config.json"))
    assert raw["thresholds_fused"][CLASSES.index("Acute MI")] is None  # valid JSON, no Infinity
    clf2 = Classifier.load(str(tmp_path), device="cpu")
    sig = _spike_ecg(70, 500.0)
    img = np.full((60, 80, 3), 255, np.uint8)
    labels = clf2.predict([img], sig, _header())
    assert "Acute MI" not in labels
    assert set(labels) == {c for c in CLASSES if c != "Acute MI"}
    # the reloaded model gives the same probabilities
    p1 = clf.signal_probs(sig, 500.0, list(STANDARD_LEADS), 60.0, "Female")
    p2 = clf2.signal_probs(sig, 500.0, list(STANDARD_LEADS), 60.0, "Female")
    assert np.allclose(p1, p2, atol=1e-6)


def test_branch_fallbacks():
    clf = _tiny_classifier()
    h = _header(250.0)
    assert clf.predict([], None, h) == []
    assert clf.signal_probs(np.full((2500, 12), np.nan), 250.0, h.lead_names) is None
    assert clf.predict([], _spike_ecg(70, 250.0), h)  # signal only
    assert clf.predict([np.zeros((50, 50, 3), np.uint8)], None, h)  # image only


def test_side_features_demographics():
    x = np.full((12, 1000), np.nan, np.float32)
    f = side_features(x, None, None)
    assert f.shape == (14,) and not f[:-4].any()
    assert np.isnan(f[-4:]).all()  # unknown demographics: NaN, imputed with the training mean by the net


def test_unknown_demographics_are_imputed_with_the_training_mean():
    import torch

    from paperecg.classify.networks import SignalNet

    net = _tiny_classifier().signal_nets[0]
    assert isinstance(net, SignalNet)
    net.side_mean.copy_(torch.linspace(0.1, 0.9, net.side_mean.numel()))
    net.eval()
    x = torch.zeros(1, net.stem[0].in_channels, 1000)
    unknown = torch.full((1, net.side_mean.numel()), float("nan"))
    unknown[0, :-4] = net.side_mean[:-4]
    at_mean = net.side_mean[None].clone()
    with torch.no_grad():
        a, b = net(x, unknown), net(x, at_mean)
    assert torch.isfinite(a).all() and torch.allclose(a, b)
    f = side_features(x, 80.0, "Male")
    assert f[-4] == pytest.approx(0.8) and f[-3] == 1 and f[-2] == 1 and f[-1] == 0


def test_image_branch_read_only_when_it_counts(monkeypatch):
    """With fusion weight 1 the image branch is skipped while a signal answers; it stands in without one."""
    clf = _tiny_classifier([True] * len(CLASSES))
    calls = []
    real = clf.image_probs
    monkeypatch.setattr(clf, "image_probs", lambda images: calls.append(1) or real(images))
    img = np.full((60, 80, 3), 255, np.uint8)
    clf.cfg.fusion_weight_signal = 1.0
    clf.predict([img], _spike_ecg(70, 500.0), _header())
    assert calls == []
    clf.predict([img], None, _header())
    assert calls == [1]
    clf.cfg.fusion_weight_signal = 0.7
    clf.predict([img], _spike_ecg(70, 500.0), _header())
    assert calls == [1, 1]
