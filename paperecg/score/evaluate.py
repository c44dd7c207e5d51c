"""Folder scoring exactly as the organizers' 2024 evaluate_model.py (final, 2024-08-20), plus per-lead and
per-class detail tables.

Digitization: for every reference record with a signal, every reference lead: align the estimate (unless
align=False) when the found shift is within round(0.5*fs) samples and 1.0 mV, then compute_snr; the score is
the mean over (record, lead) with NaNs skipped. Classification: macro F over the classes in the references,
counting records whose reference has at least one label.

Where the organizers' script would crash (estimate header missing, an estimate lacking one of the
reference's leads, -x on a lead with no overlapping samples), this evaluator carries on (missing = NaN) and
says so on stderr; every case the organizers' script completes gives the same numbers.
"""
from __future__ import annotations

import csv
import os
import sys
from dataclasses import asdict, dataclass, field

import numpy as np

from ..records.header import LABELS_PREFIX, get_variables
from ..records.io import find_records, header_path, load_signal, load_text
from .metrics import (
    MAX_SHIFT_MV,
    MAX_SHIFT_SECONDS,
    NUM_QUANT_LEVELS,
    _quiet_nan_warnings,
    compute_asci_metric,
    compute_f_measure,
    compute_ks_metric,
    compute_one_hot_encoding,
    compute_one_vs_rest_confusion_matrix,
    compute_snr,
    compute_weighted_absolute_difference,
    estimate_offsets,
    normalize_names,
    shift_signal,
)


@dataclass
class LeadScore:
    """One (record, lead) of the digitization score."""

    record: str
    lead: str
    fs_hz: float
    snr_db: float
    shift_samples: int  # found lag (applied only if `aligned`)
    shift_mv: float  # found vertical offset (applied only if `aligned`)
    aligned: bool
    coverage: float  # fraction of the reference's finite samples the (aligned) estimate also has
    p_signal: float
    p_noise: float
    estimate_present: bool
    extra: dict = field(default_factory=dict)  # snr_median_db, ks, asci, wad when requested


# --- one lead -------------------------------------------------------------------------------------------

def max_shift_samples(fs_hz: float) -> float:
    """The largest forgiven lag: round(0.5 s * fs), as the organizers compute it (numpy rounding)."""
    return float(np.round(MAX_SHIFT_SECONDS * fs_hz))


def align_within_limits(x_ref: np.ndarray, x_est: np.ndarray, fs_hz: float):
    """(estimate to score, lag, vertical offset, whether the shift was applied)."""
    if not (np.isfinite(x_est).any() and np.isfinite(x_ref).any()):
        # Nothing to align (an abstained lead, or a reference with nothing drawn): no shift changes the
        # SNR (0 dB, or NaN), so skip the work.
        return np.asarray(x_est, dtype=np.float64), 0, 0.0, False
    lag, offset_mv = estimate_offsets(x_ref, x_est, NUM_QUANT_LEVELS)
    if abs(lag) <= max_shift_samples(fs_hz) and abs(offset_mv) <= MAX_SHIFT_MV:
        return shift_signal(x_est, lag, offset_mv), lag, offset_mv, True
    return np.asarray(x_est, dtype=np.float64), lag, offset_mv, False


def _coverage(x_ref: np.ndarray, x_est: np.ndarray) -> float:
    n = max(x_ref.size, x_est.size)
    ref_ok = np.zeros(n, bool)
    est_ok = np.zeros(n, bool)
    ref_ok[: x_ref.size] = np.isfinite(x_ref)
    est_ok[: x_est.size] = np.isfinite(x_est)
    total = ref_ok.sum()
    return float((ref_ok & est_ok).sum() / total) if total else float("nan")


def score_lead(x_ref, x_est, fs_hz: float, align: bool = True, extra: bool = False,
               record: str = "", lead: str = "", estimate_present: bool = True) -> LeadScore:
    """Score one lead the organizers' way (alignment within limits, then SNR with coverage scaling)."""
    x_ref = np.asarray(x_ref, dtype=np.float64)
    x_est = np.asarray(x_est, dtype=np.float64)
    if align:
        est, lag, offset_mv, applied = align_within_limits(x_ref, x_est, fs_hz)
    else:
        est, lag, offset_mv, applied = x_est, 0, 0.0, False
    snr, p_signal, p_noise = compute_snr(x_ref, est)
    scores = {}
    if extra:
        scores["snr_median"] = compute_snr(x_ref, est, noise_median=True)
        scores["ks"] = compute_ks_metric(x_ref, est)
        scores["asci"] = compute_asci_metric(x_ref, est)
        scores["wad"] = compute_weighted_absolute_difference(x_ref, est, fs_hz)
    return LeadScore(record, lead, float(fs_hz), float(snr), int(lag), float(offset_mv), bool(applied),
                     _coverage(x_ref, est), float(p_signal), float(p_noise), estimate_present, scores)


def snr_db(ref, est, fs_hz: float, align: bool = True) -> float:
    """The challenge SNR (dB) of one lead: NaN-aware, aligned within the limits, scaled by coverage.
    0 dB when the estimate has no finite sample where the reference has some (abstaining counts as 0 dB);
    NaN (skipped by the folder mean) for a perfect match, an all-zero reference or an all-NaN reference."""
    return score_lead(ref, est, fs_hz, align=align).snr_db


def match_leads(est_signal: np.ndarray, est_names: list[str], ref_names: list[str]) -> np.ndarray:
    """Estimate columns in the reference's lead order (names matched case-insensitively); a reference lead
    the estimate lacks becomes all NaN (the organizers' script would crash or misalign there)."""
    est_signal = np.asarray(est_signal, dtype=np.float64)
    out = np.full((est_signal.shape[0], len(ref_names)), np.nan)
    matched = normalize_names(est_names, ref_names)  # est spellings, in ref order, unmatched dropped
    folded = {n.casefold(): n for n in matched}
    for i, ref_name in enumerate(ref_names):
        name = folded.get(ref_name.casefold())
        if name is not None:
            out[:, i] = est_signal[:, list(est_names).index(name)]
    return out


def score_signals(ref_signal, est_signal, fs_hz: float, lead_names: list[str], align: bool = True,
                  extra: bool = False, record: str = "") -> list[LeadScore]:
    """Per-lead scores of an in-memory (num_samples, num_leads) estimate against a reference in the same
    lead order (est may be None = missing); for benchmarks that keep signals in memory."""
    ref_signal = np.asarray(ref_signal, dtype=np.float64)
    present = est_signal is not None
    est = np.full(ref_signal.shape, np.nan) if not present else np.asarray(est_signal, dtype=np.float64)
    return [score_lead(ref_signal[:, j], est[:, j], fs_hz, align, extra, record, name, present)
            for j, name in enumerate(lead_names)]


# --- folders --------------------------------------------------------------------------------------------

def _warn(message: str) -> None:
    print(f"evaluate: {message}", file=sys.stderr)


def load_estimate(record_est: str):
    """(signal, fields) of an estimate record, or (None, None) when its header or signal file is missing."""
    if not os.path.isfile(header_path(record_est)):
        return None, None
    return load_signal(record_est)


def score_record(record: str, ref_dir: str, est_dir: str, align: bool = True, extra: bool = False):
    """(lead scores, whether the estimate had a signal) for one record; None when the reference has none."""
    signal_ref, fields_ref = load_signal(os.path.join(ref_dir, record))
    if signal_ref is None:
        return None
    names_ref = list(fields_ref["sig_name"])
    fs_hz = fields_ref["fs"]
    record_est = os.path.join(est_dir, record)
    if not os.path.isfile(header_path(record_est)):
        _warn(f"{record}: estimate header missing; scored as all NaN (0 dB per lead with a reference)")
    signal_est, fields_est = load_estimate(record_est)
    if signal_est is not None:
        if fields_est["fs"] != fs_hz:
            raise ValueError(f"{record}: sampling frequency {fields_est['fs']} != reference {fs_hz}")
        if list(fields_est["units"]) != list(fields_ref["units"]):
            raise ValueError(f"{record}: units {fields_est['units']} != reference {fields_ref['units']}")
        if set(fields_ref["units"]) != {"mV"}:
            raise ValueError(f"{record}: units must all be mV, got {fields_ref['units']}")
        names_est = list(fields_est["sig_name"])
        if len(set(names_est)) != len(names_est):
            raise ValueError(f"{record}: repeated lead names in the estimate: {names_est}")
        if len(normalize_names(names_est, names_ref)) != len(names_ref):
            _warn(f"{record}: estimate lacks some of {names_ref}; missing leads scored as all NaN")
        signal_est = match_leads(signal_est, names_est, names_ref)
    return score_signals(signal_ref, signal_est, fs_hz, names_ref, align, extra, record), signal_est is not None


def _oracle_labels(record_path: str) -> list[str]:
    """Labels the organizers' way: every '# Labels:' line, split on commas, stripped (an empty line gives
    ['']); no header or no such line -> []."""
    try:
        values, found = get_variables(load_text(header_path(record_path)), LABELS_PREFIX)
    except OSError:
        return []
    return values if found else []


def _nanmean_or_nan(values) -> float:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0 or np.all(np.isnan(arr)):
        return float("nan")
    return float(np.nanmean(arr))


def classification_scores(ref_dir: str, est_dir: str, records: list[str]) -> dict:
    """Macro F and per-class counts over the records whose reference has at least one label."""
    labels_ref, labels_est, completed = [], [], 0
    for record in records:
        ref = _oracle_labels(os.path.join(ref_dir, record))
        if not any(ref):
            continue
        est = _oracle_labels(os.path.join(est_dir, record))
        completed += bool(any(est))
        labels_ref.append(ref)
        labels_est.append(est)
    if completed == 0:
        return {"f_measure": float("nan"), "per_class": {}, "num_records": len(labels_ref)}
    macro, per_class, classes = compute_f_measure(labels_ref, labels_est)
    A = compute_one_vs_rest_confusion_matrix(compute_one_hot_encoding(labels_ref, classes),
                                             compute_one_hot_encoding(labels_est, classes), classes)
    table = {c: {"f_measure": float(per_class[k]), "tp": int(A[k, 0, 0]), "fp": int(A[k, 0, 1]),
                 "fn": int(A[k, 1, 0]), "tn": int(A[k, 1, 1])} for k, c in enumerate(classes)}
    return {"f_measure": float(macro), "per_class": table, "num_records": len(labels_ref)}


def evaluate_folders(ref_dir, est_dir, align: bool = True, extra: bool = False, progress: bool = False) -> dict:
    """Score an output folder against a reference folder.

    Returns {snr, f_measure, snr_median, ks_metric, asci_metric, wad_metric (NaN unless extra),
    per_lead: list[LeadScore], per_class: {class: {f_measure, tp, fp, fn, tn}}, num_records,
    records_with_estimate}. `snr_median` reproduces the organizers' printed figure, which averages each lead's
    (snr, p_signal, p_noise) triple; the per-lead `extra['snr_median']` holds the triples.
    """
    ref_dir, est_dir = str(ref_dir), str(est_dir)
    records = find_records(ref_dir)
    if not records:
        raise FileNotFoundError(f"No records found in {ref_dir}.")
    iterator = records
    if progress:
        from tqdm import tqdm

        iterator = tqdm(records, desc="scoring", unit="record")
    per_lead: list[LeadScore] = []
    with_estimate = 0
    for record in iterator:
        result = score_record(record, ref_dir, est_dir, align, extra)
        if result is None:
            continue
        leads, present = result
        per_lead += leads
        with_estimate += present

    out = {"snr": float("nan"), "snr_median": float("nan"), "ks_metric": float("nan"),
           "asci_metric": float("nan"), "wad_metric": float("nan")}
    if with_estimate > 0:
        with _quiet_nan_warnings():
            out["snr"] = _nanmean_or_nan([s.snr_db for s in per_lead])
            if extra:
                # The organizers store the whole (snr, p_signal, p_noise) tuple here and average all of it.
                out["snr_median"] = _nanmean_or_nan([s.extra["snr_median"] for s in per_lead])
                out["ks_metric"] = _nanmean_or_nan([s.extra["ks"] for s in per_lead])
                out["asci_metric"] = _nanmean_or_nan([s.extra["asci"] for s in per_lead])
                out["wad_metric"] = _nanmean_or_nan([s.extra["wad"] for s in per_lead])
    cls = classification_scores(ref_dir, est_dir, records)
    out.update(f_measure=cls["f_measure"], per_class=cls["per_class"], per_lead=per_lead,
               num_records=len(records), records_with_estimate=with_estimate)
    return out


# --- output ---------------------------------------------------------------------------------------------

def format_scores(result: dict, extra: bool = False) -> str:
    """The organizers' output text, character for character."""
    if not extra:
        return f"SNR: {result['snr']:.3f}\n" + f"F-measure: {result['f_measure']:.3f}\n"
    return (
        f"SNR: {result['snr']:.3f}\n"
        f"SNR median: {result['snr_median']:.3f}\n"
        f"KS metric: {result['ks_metric']:.3f}\n"
        f"ASCI metric: {result['asci_metric']:.3f}\n"
        f"Weighted absolute difference metric: {result['wad_metric']:.3f}\n"
        f"F-measure: {result['f_measure']:.3f}\n"
    )


def write_details(result: dict, folder: str) -> list[str]:
    """per_lead.tsv (one row per record and lead) and per_class.tsv; returns the paths written."""
    os.makedirs(folder, exist_ok=True)
    lead_path = os.path.join(folder, "per_lead.tsv")
    with open(lead_path, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        extra_keys = ["ks", "asci", "wad"] if any(s.extra for s in result["per_lead"]) else []
        w.writerow(["record", "lead", "fs_hz", "snr_db", "shift_samples", "shift_mv", "aligned", "coverage",
                    "p_signal", "p_noise", "estimate_present", *extra_keys])
        for s in result["per_lead"]:
            row = asdict(s)
            w.writerow([s.record, s.lead, f"{s.fs_hz:g}", f"{s.snr_db:.4f}", s.shift_samples, f"{s.shift_mv:.4f}",
                        int(s.aligned), f"{s.coverage:.4f}", f"{s.p_signal:.6g}", f"{s.p_noise:.6g}",
                        int(s.estimate_present), *[f"{row['extra'][k]:.4f}" for k in extra_keys]])
    class_path = os.path.join(folder, "per_class.tsv")
    with open(class_path, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["class", "f_measure", "tp", "fp", "fn", "tn"])
        for c, v in result["per_class"].items():
            w.writerow([c, f"{v['f_measure']:.4f}", v["tp"], v["fp"], v["fn"], v["tn"]])
    return [lead_path, class_path]
