"""Clinical measurements (classify/measure.py) on synthetic ECGs with known rate, QRS width and axis, and the
measurement + CNN fusion (classify/fusion.py): fit, JSON round trip, use by the Classifier."""
import json
import os

import numpy as np
import pytest

from paperecg.classify.fusion import FUSION_FILE, FusionModel, train_fusion
from paperecg.classify.measure import FEATURE_NAMES, NUM_FEATURES, measure
from paperecg.classify.signal_data import apply_layout_mask, to_internal
from paperecg.layouts import STANDARD_LEADS

# frontal-plane lead angles (deg) of the hexaxial system
LIMB_ANGLE_DEG = {"I": 0.0, "II": 60.0, "III": 120.0, "aVR": -150.0, "aVL": -30.0, "aVF": 90.0}
# precordial QRS: (R, S) amplitudes in mV, a normal R progression
PRECORDIAL_RS_MV = {"V1": (0.2, 1.0), "V2": (0.4, 1.2), "V3": (0.8, 0.8), "V4": (1.2, 0.5), "V5": (1.3, 0.3),
                    "V6": (1.0, 0.2)}


def _gauss(t: np.ndarray, centre_s: float, sigma_s: float) -> np.ndarray:
    return np.exp(-0.5 * ((t - centre_s) / sigma_s) ** 2)


def synthetic_ecg(fs_hz: float, beat_times_s: list[float], qrs_ms: float = 90.0, axis_deg: float = 60.0,
                  seconds: float = 10.0, noise_mv: float = 0.01, seed: int = 0) -> np.ndarray:
    """(num_samples, 12) mV, STANDARD_LEADS order: per beat a P wave, a QRS whose full width (+-3 sigma of
    its R and S lobes) is `qrs_ms`, and a T wave; limb leads see a 1.2 mV QRS dipole at `axis_deg`."""
    t = np.arange(int(round(seconds * fs_hz))) / fs_hz
    sigma = qrs_ms / 1000.0 / 6.0
    out = np.zeros((t.size, 12))
    for k, name in enumerate(STANDARD_LEADS):
        if name in LIMB_ANGLE_DEG:
            proj = np.cos(np.radians(axis_deg - LIMB_ANGLE_DEG[name]))
            r_mv, s_mv, t_mv, p_mv = 1.2 * proj, 0.0, 0.3 * proj, 0.12 * proj
        else:
            (r_mv, s_mv), t_mv, p_mv = PRECORDIAL_RS_MV[name], 0.3, 0.05
        for b in beat_times_s:
            out[:, k] += p_mv * _gauss(t, b - 0.16, 0.025)
            if r_mv >= 0:
                out[:, k] += r_mv * _gauss(t, b, sigma)
            else:  # a negative projection: the whole complex points down
                out[:, k] += r_mv * _gauss(t, b, sigma)
            out[:, k] -= s_mv * _gauss(t, b + 2 * sigma, sigma)
            out[:, k] += t_mv * _gauss(t, b + 0.30, 0.05)
    return out + np.random.default_rng(seed).normal(0.0, noise_mv, out.shape)


def _regular(rate_bpm: float, seconds: float = 10.0, first_s: float = 0.4) -> list[float]:
    return list(np.arange(first_s, seconds - 0.3, 60.0 / rate_bpm))


def _m(signal: np.ndarray, fs_hz: float) -> dict:
    return dict(zip(FEATURE_NAMES, measure(signal, fs_hz, list(STANDARD_LEADS))))


def _axis_deg(m: dict) -> float:
    return float(np.degrees(np.arctan2(m["axis_sin"], m["axis_cos"])))


def _page_windows(signal: np.ndarray, fs_hz: float) -> np.ndarray:
    """The 3x4+1 printout: each lead over its 2.5-s column, lead II over 10 s, NaN elsewhere."""
    n = signal.shape[0]
    keep = np.zeros_like(signal, dtype=bool)
    for k, name in enumerate(STANDARD_LEADS):
        col = {"I": 0, "II": 0, "III": 0, "aVR": 1, "aVL": 1, "aVF": 1, "V1": 2, "V2": 2, "V3": 2}.get(name, 3)
        a, b = int(col * n / 4), int((col + 1) * n / 4)
        keep[a:b, k] = True
    keep[:, STANDARD_LEADS.index("II")] = True
    return np.where(keep, signal, np.nan)


@pytest.mark.parametrize("rate_bpm", [45.0, 75.0, 130.0])
def test_rate_from_a_full_500_hz_record(rate_bpm):
    m = _m(synthetic_ecg(500.0, _regular(rate_bpm)), 500.0)
    assert m["hr_bpm"] == pytest.approx(rate_bpm, abs=2.0)
    assert m["rr_cv"] < 0.03
    assert m["premature_index"] < 0.1


def test_qrs_width_tracks_the_true_width_within_25_ms():
    narrow = _m(synthetic_ecg(500.0, _regular(70.0), qrs_ms=80.0), 500.0)["qrs_ms"]
    wide = _m(synthetic_ecg(500.0, _regular(70.0), qrs_ms=150.0), 500.0)["qrs_ms"]
    assert narrow == pytest.approx(80.0, abs=25.0)
    assert wide == pytest.approx(150.0, abs=25.0)
    assert 45.0 <= wide - narrow <= 95.0  # true difference 70 ms


@pytest.mark.parametrize("axis_deg", [60.0, 0.0, -50.0, 120.0])
def test_frontal_axis_within_15_degrees(axis_deg):
    m = _m(synthetic_ecg(500.0, _regular(70.0), axis_deg=axis_deg), 500.0)
    err = (_axis_deg(m) - axis_deg + 180.0) % 360.0 - 180.0
    assert abs(err) <= 15.0
    assert m["axis_left"] == float(-90.0 <= axis_deg < -30.0)
    assert m["axis_right"] == float(axis_deg > 90.0)


def test_page_windows_at_250_hz_give_the_same_rate_qrs_and_axis():
    sig = synthetic_ecg(250.0, _regular(88.0), qrs_ms=100.0, axis_deg=-40.0)
    full, page = _m(sig, 250.0), _m(_page_windows(sig, 250.0), 250.0)
    assert page["hr_bpm"] == pytest.approx(88.0, abs=2.0)
    assert page["qrs_ms"] == pytest.approx(full["qrs_ms"], abs=15.0)
    assert abs(_axis_deg(page) - _axis_deg(full)) <= 15.0
    assert page["sokolow_mv"] == pytest.approx(full["sokolow_mv"], abs=0.2)


def test_a_single_2_5_s_window_still_gives_the_rate():
    sig = synthetic_ecg(500.0, _regular(100.0))
    only = np.full_like(sig, np.nan)
    only[:1250] = sig[:1250]  # 2.5 s of every lead, nothing after
    assert _m(only, 500.0)["hr_bpm"] == pytest.approx(100.0, abs=3.0)


def test_nan_gaps_and_a_missing_lead():
    sig = synthetic_ecg(500.0, _regular(66.0))
    rng = np.random.default_rng(3)
    for k in range(12):
        for _ in range(2):
            a = int(rng.integers(0, 4500))
            sig[a:a + int(rng.integers(50, 300)), k] = np.nan
    sig[:, STANDARD_LEADS.index("V1")] = np.nan
    m = _m(sig, 500.0)
    assert m["hr_bpm"] == pytest.approx(66.0, abs=3.0)
    assert np.isnan(m["sokolow_mv"])  # needs V1's S wave
    assert np.isfinite(m["cornell_mv"]) and np.isfinite(m["qrs_ms"])
    assert m["leads_present"] == 11


def test_irregular_rhythm_and_an_early_beat_are_seen():
    rng = np.random.default_rng(1)
    af = list(np.cumsum(rng.uniform(0.45, 1.05, size=14)) + 0.3)
    af = [b for b in af if b < 9.7]
    regular = _m(synthetic_ecg(500.0, _regular(75.0)), 500.0)
    irregular = _m(synthetic_ecg(500.0, af), 500.0)
    assert irregular["rr_cv"] > 0.1 > regular["rr_cv"]
    beats = _regular(60.0, first_s=0.5)
    beats[5] -= 0.4  # one beat 400 ms early, then the usual pause
    early = _m(synthetic_ecg(500.0, beats), 500.0)
    assert early["premature_index"] > 0.25 and regular["premature_index"] < 0.1


def test_empty_and_all_nan_records_give_nan_not_errors():
    assert measure(None, 500.0, list(STANDARD_LEADS)).shape == (NUM_FEATURES,)
    m = _m(np.full((5000, 12), np.nan), 500.0)
    assert np.isnan(m["hr_bpm"]) and m["leads_present"] == 0


# --- fusion -----------------------------------------------------------------------------------------------

def _fusion_data(n: int = 240, seed: int = 0):
    """Two classes: class 0 follows the heart rate, class 1 the CNN's score."""
    rng = np.random.default_rng(seed)
    meas = rng.normal(0.0, 1.0, (n, NUM_FEATURES))
    hr = rng.uniform(40, 160, n)
    meas[rng.random((n, NUM_FEATURES)) < 0.05] = np.nan  # gaps in the other measurements
    meas[:, FEATURE_NAMES.index("hr_bpm")] = hr
    y = np.zeros((n, 2), bool)
    y[:, 0] = hr > 100
    y[:, 1] = rng.random(n) < 0.3
    p_cnn = np.clip(np.where(y, 0.7, 0.3) + rng.normal(0, 0.15, (n, 2)), 0.01, 0.99)
    p_cnn[:, 0] = rng.uniform(0.2, 0.8, n)  # the CNN knows nothing about class 0
    folds = np.arange(n) % 4
    return p_cnn, meas, y, folds


def test_fusion_learns_a_measurement_the_cnn_misses_and_survives_a_json_round_trip(tmp_path):
    p_cnn, meas, y, folds = _fusion_data()
    model, oof = train_fusion(p_cnn, meas, y, folds, np.array([True, True]), ["TACHY", "NORM"], l2=1.0)
    pred = oof[:, 0] >= model.thresholds[0]
    assert np.mean(pred == y[:, 0]) > 0.9  # out of fold, from the rate alone
    model.save(str(tmp_path))
    with open(tmp_path / FUSION_FILE) as f:
        json.load(f)  # plain JSON: nothing that could run code
    loaded = FusionModel.load(str(tmp_path))
    np.testing.assert_allclose(loaded.probs(p_cnn, meas), model.probs(p_cnn, meas), rtol=1e-12)
    assert FusionModel.load(str(tmp_path / "nothing")) is None


def test_classifier_decides_with_the_fusion_when_its_folder_has_one(tmp_path):
    import torch

    from paperecg.classify.model import Classifier, ClassifierConfig, make_signal_net
    from paperecg.classify.signal_data import NUM_SIDE_FEATURES  # noqa: F401
    from paperecg.records.header import HeaderInfo
    from paperecg.records.labels import CLASSES

    torch.manual_seed(0)
    cfg = ClassifierConfig()
    clf = Classifier(cfg, [make_signal_net(cfg)], None)
    clf.save(str(tmp_path))
    sig = synthetic_ecg(500.0, _regular(140.0))
    header = HeaderInfo("r", 500.0, sig.shape[0], list(STANDARD_LEADS), [1000.0] * 12, [0] * 12, ["mV"] * 12,
                        ["16"] * 12)
    plain = Classifier.load(str(tmp_path), device="cpu")
    assert plain.fusion is None and plain.branch_probs([], sig, header)["fusion"] is None
    # a fusion that answers TACHY exactly when the rate is over 100 bpm
    k_hr = FEATURE_NAMES.index("hr_bpm")
    p_cnn, meas, y, folds = _fusion_data()
    model = FusionModel(classes=list(CLASSES))
    from paperecg.classify.fusion import fit_fusion

    y_all = np.zeros((len(y), len(CLASSES)), bool)
    y_all[:, CLASSES.index("TACHY")] = meas[:, k_hr] > 100
    y_all[:, CLASSES.index("NORM")] = ~y_all[:, CLASSES.index("TACHY")]
    p_all = np.full((len(y), len(CLASSES)), 0.5)
    model = fit_fusion(p_all, meas, y_all, y_all.any(axis=0), list(CLASSES), l2=0.1)
    model.save(str(tmp_path))
    fused = Classifier.load(str(tmp_path), device="cpu")
    assert fused.fusion is not None
    assert fused.predict([], sig, header) == ["TACHY"]
    slow = synthetic_ecg(500.0, _regular(60.0))
    assert fused.predict([], slow, header) == ["NORM"]
    assert os.path.isfile(tmp_path / FUSION_FILE)


def test_rhythm_rules_follow_the_measured_rate_and_a_decided_afib():
    from paperecg.classify.fusion import apply_rhythm_rules

    classes = ["NORM", "AFIB/AFL", "TACHY", "BRADY"]
    thresholds = np.array([0.5, 0.4, 0.5, 0.5])
    probs = np.array([[0.1, 0.1, 0.9, 0.9]] * 5)
    probs[4, 1] = 0.45  # AFIB/AFL decided on the last row
    hr_bpm = np.array([90.0, 125.0, 50.0, np.nan, 125.0])
    out = apply_rhythm_rules(probs, hr_bpm, thresholds, classes)
    tachy, brady = out[:, 2], out[:, 3]
    np.testing.assert_array_equal(tachy, [0.0, 0.9, 0.0, 0.9, 0.0])  # < 100 bpm, ok, < 100, unmeasured, AF
    np.testing.assert_array_equal(brady, [0.0, 0.0, 0.9, 0.9, 0.0])  # > 52 bpm twice, ok, unmeasured, AF
    np.testing.assert_array_equal(out[:, :2], probs[:, :2])  # other classes untouched
    assert probs[0, 2] == 0.9  # the input is not modified


def test_pac_is_not_called_beside_a_decided_pvc():
    from paperecg.classify.fusion import apply_rhythm_rules

    classes = ["PAC", "PVC"]
    probs = np.array([[0.9, 0.8], [0.9, 0.2]])
    out = apply_rhythm_rules(probs, np.array([70.0, 70.0]), np.array([0.5, 0.5]), classes)
    np.testing.assert_array_equal(out, [[0.0, 0.8], [0.9, 0.2]])


def test_train_fusion_with_rhythm_rules_makes_no_slow_tachy_call_out_of_fold_and_keeps_them_in_json(tmp_path):
    # TACHY: a fast rate and a pattern only the CNN sees; the CNN also scores a third of the slow records
    # like its TACHY calls
    rng = np.random.default_rng(1)
    n = 320
    meas = rng.normal(0.0, 1.0, (n, NUM_FEATURES))
    hr = rng.uniform(60, 112, n)
    meas[:, FEATURE_NAMES.index("hr_bpm")] = hr
    y = np.zeros((n, 2), bool)
    y[:, 0] = (hr > 100) & (rng.random(n) < 0.7)
    y[:, 1] = ~y[:, 0]
    p_cnn = np.where(y, 0.8, 0.2) + rng.normal(0, 0.1, (n, 2))
    fooled = (hr < 95) & (rng.random(n) < 0.35)
    p_cnn[fooled, 0] = 0.8 + rng.normal(0, 0.1, fooled.sum())
    p_cnn = np.clip(p_cnn, 0.01, 0.99)
    folds = np.arange(n) % 4
    trained = np.array([True, True])
    plain, oof_plain = train_fusion(p_cnn, meas, y, folds, trained, ["TACHY", "NORM"], l2=1.0, rhythm_rules=False)
    ruled, oof_ruled = train_fusion(p_cnn, meas, y, folds, trained, ["TACHY", "NORM"], l2=1.0)
    called = lambda oof, m: oof[:, 0] >= m.thresholds[0]
    assert not np.any(called(oof_ruled, ruled) & (hr < 100))  # out of fold: no TACHY call under 100 bpm
    errors = lambda oof, m: int(np.sum(called(oof, m) != y[:, 0]))
    assert errors(oof_ruled, ruled) <= errors(oof_plain, plain)
    assert ruled.rhythm_rules and not plain.rhythm_rules
    assert np.all(ruled.probs(p_cnn, meas)[hr < 100, 0] == 0.0)
    ruled.save(str(tmp_path))
    loaded = FusionModel.load(str(tmp_path))
    assert loaded.rhythm_rules
    np.testing.assert_allclose(loaded.probs(p_cnn, meas), ruled.probs(p_cnn, meas), rtol=1e-12)


def test_a_fusion_json_from_another_version_loads_without_the_rules_and_unknown_fields(tmp_path):
    p_cnn, meas, y, folds = _fusion_data()
    model, _ = train_fusion(p_cnn, meas, y, folds, np.array([True, True]), ["TACHY", "NORM"], l2=1.0,
                            rhythm_rules=False)
    model.save(str(tmp_path))
    with open(tmp_path / FUSION_FILE) as f:
        d = json.load(f)
    del d["rhythm_rules"]
    d["a_field_since_dropped"] = 1.0
    with open(tmp_path / FUSION_FILE, "w") as f:
        json.dump(d, f)
    old = FusionModel.load(str(tmp_path))
    assert old is not None and not old.rhythm_rules


def test_score_probs_counts_decisions_the_organizers_way():
    from paperecg.classify.model import score_probs

    probs = np.array([[0.9, 0.1, 0.2], [0.2, 0.8, 0.1], [0.6, 0.7, 0.1]])
    y = np.array([[1, 0, 0], [0, 1, 0], [0, 1, 0]], bool)
    f, per = score_probs(probs, y, [0.5, 0.5, 0.5], [True, True, True], classes=["A", "B", "C"])
    # A: 1 TP, 1 FP -> 2/3; B: 2 TP -> 1; C is absent from the truth and not counted
    assert per == {"A": 0.667, "B": 1.0}
    assert f == round((2 / 3 + 1.0) / 2, 4)
