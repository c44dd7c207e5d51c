"""The challenge scorer: per-lead SNR with the organizers' alignment, macro F, folder evaluation and CLI output.

Expected values come from the metric's definition, worked out by hand in each test:
SNR = 10*log10(mean(ref^2) / mean((ref - est)^2)) * (fraction of the reference the estimate covers).
"""
import os

import numpy as np
import pytest

from paperecg.records.io import write_record
from paperecg.records.synthetic import synthetic_ecg
from paperecg.score import evaluate_folders, format_scores, snr_db
from paperecg.score.evaluate import score_lead
from paperecg.score.metrics import (
    align_signals,
    compute_f_measure,
    compute_one_hot_encoding,
    compute_one_vs_rest_confusion_matrix,
    compute_snr,
    normalize_names,
    reorder_signal,
    shift_signal,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FS = 500.0


def clean_lead(fs_hz: float, seconds: float = 10.0) -> np.ndarray:
    """P-QRS-T beats every 0.8 s on an exactly flat 0 mV baseline (so the best vertical alignment is 0)."""
    t = np.arange(int(round(fs_hz * seconds))) / fs_hz
    x = np.zeros_like(t)
    for r in np.arange(0.4, seconds, 0.8):
        for dt, width, amp in ((-0.16, 0.025, 0.15), (0.0, 0.012, 1.0), (0.03, 0.01, -0.25), (0.28, 0.05, 0.3)):
            x += amp * np.exp(-((t - r - dt) / width) ** 2)
    return x


@pytest.fixture(scope="module")
def lead():
    """One 10 s lead at 500 Hz (mV) and a fixed noise realisation (0.05 mV rms) to add to it."""
    x = clean_lead(FS)
    noise = np.random.default_rng(7).normal(0.0, 0.05, x.size)
    return x, noise


def plain_snr(ref, est):
    return 10 * np.log10(np.mean(ref**2) / np.mean((ref - est) ** 2))


# --- single lead ----------------------------------------------------------------------------------------

def test_zero_estimate_scores_exactly_zero_db(lead):
    x, _ = lead
    assert snr_db(x, np.zeros_like(x), FS, align=False) == 0.0


def test_all_nan_estimate_scores_zero_db_and_counts(lead):
    # The organizers' final rule: no sample finite in both, while the reference has some -> 0 dB (not NaN),
    # so an abstained lead counts in the mean as 0 dB.
    x, _ = lead
    assert snr_db(x, np.full_like(x, np.nan), FS) == 0.0
    assert snr_db(x, np.full_like(x, np.nan), FS, align=False) == 0.0
    # no overlap also when both have finite samples, but in disjoint halves
    est = x.copy()
    est[: x.size // 2] = np.nan
    ref = x.copy()
    ref[x.size // 2:] = np.nan
    assert snr_db(ref, est, FS, align=False) == 0.0


def test_all_nan_reference_is_nan_and_skipped(lead):
    x, _ = lead
    assert np.isnan(snr_db(np.full_like(x, np.nan), x, FS))
    assert np.isnan(snr_db(np.full_like(x, np.nan), np.full_like(x, np.nan), FS))


def test_perfect_estimate_and_all_zero_reference_are_nan(lead):
    # p_noise == 0 (perfect) or p_signal == 0 (all-zero reference): neither branch of the rule -> NaN.
    x, noise = lead
    assert np.isnan(snr_db(x, x.copy(), FS))
    assert np.isnan(snr_db(np.zeros(100), noise[:100], FS, align=False))


def test_partial_estimate_is_scaled_by_coverage_by_hand():
    # ref = [1, -1, 1, -1], est = [1.5, NaN, 0.5, NaN]: p_signal = 1, p_noise = 0.25 over the 2 overlapping
    # samples -> 10*log10(4) = 6.0206 dB, times coverage 2/4 -> 3.0103 dB.
    ref = np.array([1.0, -1.0, 1.0, -1.0])
    est = np.array([1.5, np.nan, 0.5, np.nan])
    assert snr_db(ref, est, FS, align=False) == pytest.approx(10 * np.log10(4) / 2, abs=1e-12)


def test_snr_matches_definition_without_alignment(lead):
    x, noise = lead
    assert snr_db(x, x + noise, FS, align=False) == pytest.approx(plain_snr(x, x + noise), abs=1e-9)


def test_lag_of_50_samples_is_forgiven(lead):
    x, noise = lead
    base = snr_db(x, x + noise, FS)
    est = np.concatenate((np.full(50, np.nan), (x + noise)[:-50]))  # drawn 50 samples late
    s = score_lead(x, est, FS)
    assert s.aligned and s.shift_samples == 50
    # Aligned back; only the 50 samples lost at the end cost coverage.
    assert s.snr_db == pytest.approx(plain_snr(x[:-50], (x + noise)[:-50]) * (x.size - 50) / x.size, abs=1e-6)
    assert s.snr_db == pytest.approx(base, abs=0.3)
    assert snr_db(x, est, FS, align=False) < base - 5


def test_negative_lag_prepends_nans_and_keeps_the_whole_estimate(lead):
    x, noise = lead
    k = 30
    est = np.concatenate(((x + noise)[k:], np.full(k, np.nan)))  # drawn 30 samples early
    shifted, offset_hz, _ = align_signals(x, est)
    assert offset_hz == -k
    assert shifted.size == x.size + k and np.all(np.isnan(shifted[:k]))
    s = score_lead(x, est, FS)
    assert s.aligned and s.shift_samples == -k
    assert s.coverage == pytest.approx((x.size - k) / x.size)
    # The vertical offset found is a whole number of raster levels (range/255), here a hair off zero.
    assert abs(s.shift_mv) < 0.02
    expected = plain_snr(x[k:], (x + noise)[k:] - s.shift_mv) * (x.size - k) / x.size
    assert s.snr_db == pytest.approx(expected, abs=1e-9)


def test_lag_beyond_half_a_second_is_not_forgiven(lead):
    x, noise = lead
    k = int(0.6 * FS)
    est = np.concatenate((np.full(k, np.nan), (x + noise)[:-k]))
    s = score_lead(x, est, FS)
    assert not s.aligned
    assert s.snr_db == snr_db(x, est, FS, align=False)


def test_half_mv_offset_is_forgiven(lead):
    x, noise = lead
    s = score_lead(x, x + noise + 0.5, FS)
    assert s.aligned and s.shift_samples == 0 and s.shift_mv == pytest.approx(0.5, abs=0.02)
    assert s.snr_db == pytest.approx(snr_db(x, x + noise, FS), abs=0.3)


def test_offset_of_1_5_mv_is_not_forgiven(lead):
    x, noise = lead
    s = score_lead(x, x + noise + 1.5, FS)
    assert not s.aligned and abs(s.shift_mv) > 1.0
    assert s.snr_db == snr_db(x, x + noise + 1.5, FS, align=False)
    assert s.snr_db < -3.0


@pytest.mark.parametrize("scale", [2.0, 0.5, 1.5, 3.0])
def test_scale_error_and_what_the_alignment_does_with_it(lead, scale):
    # est = k*x -> noise = (k-1)*x -> SNR = -20*log10|k-1| without alignment: 2x amplitude is 0 dB.
    x, _ = lead
    assert snr_db(x, scale * x, FS, align=False) == pytest.approx(-20 * np.log10(abs(scale - 1)), abs=1e-9)
    # The raster alignment then slides the scaled trace a few samples (its steep edges overlap the
    # reference's best slightly off-time) and the shift is applied, because it is within the limits:
    # the score is the SNR at that shift, which is lower (2x: about -2.2 dB instead of 0 dB).
    s = score_lead(x, scale * x, FS)
    assert s.aligned and 0 < abs(s.shift_samples) <= 5 and s.shift_mv == 0.0
    assert s.snr_db == compute_snr(x, shift_signal(scale * x, s.shift_samples, s.shift_mv))[0]
    assert s.snr_db < -20 * np.log10(abs(scale - 1)) - 0.3


def test_half_the_samples_missing_halves_the_snr(lead):
    x, noise = lead
    n = x.size // 2
    est = x + noise
    est[n:] = np.nan
    assert snr_db(x, est, FS, align=False) == pytest.approx(0.5 * plain_snr(x[:n], (x + noise)[:n]), abs=1e-9)
    assert snr_db(x, est, FS) == pytest.approx(0.5 * plain_snr(x[:n], (x + noise)[:n]), abs=0.2)


def test_masked_reference_samples_do_not_count(lead):
    x, noise = lead
    ref = x.copy()
    ref[: x.size // 4] = np.nan  # not drawn on the page
    est = x + noise
    est[: x.size // 4] = 99.0  # whatever the estimate says there is ignored
    expected = plain_snr(x[x.size // 4:], est[x.size // 4:])
    assert snr_db(ref, est, FS, align=False) == pytest.approx(expected, abs=1e-9)


def test_shorter_estimate_is_nan_padded(lead):
    x, noise = lead
    est = (x + noise)[: x.size - 100]
    snr, _, _ = compute_snr(x, est)
    assert snr == pytest.approx(plain_snr(x[:-100], est) * (x.size - 100) / x.size, abs=1e-9)


def test_shift_signal_branches():
    est = np.arange(5.0)
    assert np.array_equal(shift_signal(est, 2, 0.0), [2, 3, 4, np.nan, np.nan], equal_nan=True)
    assert np.array_equal(shift_signal(est, -2, 1.0), [np.nan, np.nan, -1, 0, 1, 2, 3], equal_nan=True)


# --- channels and labels --------------------------------------------------------------------------------

def test_lead_names_match_case_insensitively():
    ref_names = ["I", "aVR", "V1"]
    assert normalize_names(ref_names, ["avr", "V1", "i"]) == ["aVR", "V1", "I"]  # ref spellings
    signal = np.array([[1.0, 2.0, 3.0]])
    out = reorder_signal(signal, ["V1", "AVR", "I"], ref_names)
    assert out.tolist() == [[3.0, 2.0, 1.0]]


def test_f_measure_on_hand_built_label_sets():
    labels = [["NORM"], ["CD", "STTC"], ["NORM"]]
    outputs = [["NORM"], ["CD", "PVC"], []]  # PVC is no reference class; the third prediction is empty
    macro, per_class, classes = compute_f_measure(labels, outputs)
    assert classes == ["CD", "NORM", "STTC"]
    # CD: TP=1 -> 1; NORM: TP=1, FN=1 -> 2/3; STTC: FN=1 -> 0.
    assert per_class.tolist() == pytest.approx([1.0, 2 / 3, 0.0])
    assert macro == pytest.approx((1 + 2 / 3 + 0) / 3)


def test_f_measure_class_counts_and_nan_class():
    y = compute_one_hot_encoding([["A"], ["B"]], ["A", "B", "C"])
    p = compute_one_hot_encoding([["A"], ["A"]], ["A", "B", "C"])
    A = compute_one_vs_rest_confusion_matrix(y, p, ["A", "B", "C"])
    assert A[0].tolist() == [[1, 1], [0, 0]]  # A: TP 1, FP 1
    assert A[1].tolist() == [[0, 0], [1, 1]]  # B: FN 1, TN 1
    assert A[2].tolist() == [[0, 0], [0, 2]]  # C: only TN
    _, per_class, _ = compute_f_measure([["A"], ["B"]], [[], []])
    assert per_class.tolist() == [0.0, 0.0]


# --- folders and CLI ------------------------------------------------------------------------------------

FS_FOLDER = 100.0
LEADS_4 = ["I", "II", "aVR", "V1"]


def _write_pair(tmp_path):
    """ref/ with 3 records; est/ with a good one, one with other lead order and no labels, one missing."""
    ref_dir, est_dir = tmp_path / "ref", tmp_path / "est"
    rng = np.random.default_rng(0)
    truth = {}
    for i, labels in enumerate((["NORM"], ["CD", "STTC"], ["NORM"])):
        sig = synthetic_ecg(FS_FOLDER, 10.0, seed=i, num_leads=4)
        truth[i] = sig
        write_record(ref_dir, f"r{i}", sig, FS_FOLDER, LEADS_4, ["Labels: " + ", ".join(labels)])
    est0 = np.round(truth[0] + rng.normal(0, 0.05, truth[0].shape), 3)
    write_record(est_dir, "r0", est0, FS_FOLDER, LEADS_4, ["Labels: NORM"])
    order = [3, 1, 0, 2]
    est1 = np.round(truth[1] + rng.normal(0, 0.05, truth[1].shape), 3)[:, order]
    write_record(est_dir, "r1", est1, FS_FOLDER, [LEADS_4[k].upper() for k in order], ["Labels: CD"])
    return ref_dir, est_dir, truth, est0, est1[:, np.argsort(order)]


def test_evaluate_folders_counts_the_missing_record_as_zero_db(tmp_path):
    ref_dir, est_dir, truth, est0, est1 = _write_pair(tmp_path)
    res = evaluate_folders(ref_dir, est_dir, align=False)
    expected = [plain_snr(truth[i][:, j], e[:, j]) for i, e in ((0, est0), (1, est1)) for j in range(4)]
    # the record with no output is scored as all-NaN leads: 0 dB each, counted in the mean (8 + 4 leads)
    assert res["snr"] == pytest.approx(np.sum(expected) / 12, abs=0.01)
    rows = res["per_lead"]
    assert len(rows) == 12 and [r.lead for r in rows[4:8]] == LEADS_4
    assert all(r.snr_db == 0.0 and not r.estimate_present for r in rows[8:])
    # Classes CD, NORM, STTC: CD 1; NORM TP1 FN1 -> 2/3; STTC 0 (r2 has no output at all: a miss).
    assert res["f_measure"] == pytest.approx((1 + 2 / 3 + 0) / 3)
    assert res["per_class"]["NORM"] == {"f_measure": pytest.approx(2 / 3), "tp": 1, "fp": 0, "fn": 1, "tn": 1}
    aligned = evaluate_folders(ref_dir, est_dir, align=True)
    assert aligned["snr"] == pytest.approx(res["snr"], abs=0.5)


def test_no_estimates_at_all_gives_nan_snr(tmp_path):
    ref_dir = tmp_path / "ref"
    write_record(ref_dir, "r0", synthetic_ecg(FS_FOLDER, 10.0, num_leads=4), FS_FOLDER, LEADS_4, ["Labels: NORM"])
    os.makedirs(tmp_path / "est")
    res = evaluate_folders(ref_dir, tmp_path / "est")
    assert np.isnan(res["snr"])
    assert res["f_measure"] != res["f_measure"]  # no record has a prediction -> NaN
    assert format_scores(res) == "SNR: nan\nF-measure: nan\n"


def test_sampling_frequency_mismatch_is_refused(tmp_path):
    sig = synthetic_ecg(FS_FOLDER, 10.0, num_leads=4)
    write_record(tmp_path / "ref", "r0", sig, FS_FOLDER, LEADS_4, ["Labels: NORM"])
    write_record(tmp_path / "est", "r0", sig, 2 * FS_FOLDER, LEADS_4, ["Labels: NORM"])
    with pytest.raises(ValueError, match="sampling frequency"):
        evaluate_folders(tmp_path / "ref", tmp_path / "est")


def _cli(*args) -> None:
    """Run top-level evaluate_model.py in-process (same argparse and printing, no interpreter start-up)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("evaluate_model_cli", os.path.join(ROOT, "evaluate_model.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.run(module.get_parser().parse_args([str(a) for a in args]))


def test_cli_prints_the_organizers_format_and_writes_score_file(tmp_path, capsys):
    ref_dir, est_dir, *_ = _write_pair(tmp_path)
    res = evaluate_folders(ref_dir, est_dir, align=False)
    _cli("-d", ref_dir, "-o", est_dir, "-n")
    assert capsys.readouterr().out == f"SNR: {res['snr']:.3f}\nF-measure: {res['f_measure']:.3f}\n\n"
    score_file = tmp_path / "scores.txt"
    details = tmp_path / "details"
    _cli("-d", ref_dir, "-o", est_dir, "-n", "-x", "-s", score_file, "--details", details)
    assert capsys.readouterr().out == ""  # with -s the text goes to the file only
    lines = score_file.read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "SNR", "SNR median", "KS metric", "ASCI metric", "Weighted absolute difference metric", "F-measure"]
    assert lines[0] == f"SNR: {res['snr']:.3f}" and lines[-1] == f"F-measure: {res['f_measure']:.3f}"
    per_lead = (details / "per_lead.tsv").read_text().splitlines()
    assert per_lead[0].startswith("record\tlead\tfs_hz\tsnr_db") and len(per_lead) == 1 + 12
    per_class = (details / "per_class.tsv").read_text().splitlines()
    assert per_class[0] == "class\tf_measure\ttp\tfp\tfn\ttn" and len(per_class) == 1 + 3


EVALUATOR_FIXTURE = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "fixtures", "evaluator")


@pytest.mark.skipif(not os.path.isdir(EVALUATOR_FIXTURE), reason="shared evaluator fixture not present")
@pytest.mark.parametrize("record, organizers_snr", [("00094_lr", 6.733), ("00127_lr", 4.177)])
def test_fixture_records_score_as_the_organizers_scorer(tmp_path, record, organizers_snr):
    # 00094_lr leaves leads I, III, aVR, aVL, aVF without overlap: they count as 0 dB (the old NaN rule gave
    # 11.543); the figures are what the organizers' evaluate_model.py prints for each record alone.
    for side in ("ref", "est"):
        os.makedirs(tmp_path / side)
        for ext in (".hea", ".dat"):
            src = os.path.join(EVALUATOR_FIXTURE, side, record + ext)
            os.symlink(os.path.abspath(src), tmp_path / side / (record + ext))
    res = evaluate_folders(tmp_path / "ref", tmp_path / "est")
    assert f"{res['snr']:.3f}" == f"{organizers_snr:.3f}"
