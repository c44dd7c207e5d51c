"""The challenge's evaluation functions, with the organizers' names, arguments, return values and edge cases.

These mirror the evaluation section of the PhysioNet Challenge 2024 helper_code.py (final version, the one that
scored the challenge) so that the top-level helper_code.py can re-export them. Written from the published facts
of that file; behaviour that looks odd (0 dB for a lead the estimate leaves empty, NaN for a perfect match,
NaN for a lead whose reference has no finite sample) is kept on purpose because the ranking depended on it.

Signals are 1-D float arrays in mV; NaN marks a sample that is not there (masked in the reference, or not
digitized in the estimate).
"""
from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.signal import fftconvolve, filtfilt

from ..records.header import is_nan

__all__ = [
    "compute_one_vs_rest_confusion_matrix",
    "compute_f_measure",
    "compute_one_hot_encoding",
    "normalize_names",
    "reorder_signal",
    "trim_signal",
    "convert_signal",
    "fft_correlate",
    "align_signals",
    "compute_snr",
    "compute_ks_metric",
    "compute_asci_metric",
    "compute_weighted_absolute_difference",
]

# The organizers' alignment constants (evaluate_model.py): 8-bit amplitude raster, Gaussian smoothing,
# and the largest shift that is forgiven.
NUM_QUANT_LEVELS = 2**8
SMOOTH_SIGMA = 0.5
MAX_SHIFT_SECONDS = 0.5
MAX_SHIFT_MV = 1.0


@contextmanager
def _quiet_nan_warnings():
    """Silence numpy's 'All-NaN slice' / 'Mean of empty slice' RuntimeWarnings: NaN results are intended."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


# --- classification -------------------------------------------------------------------------------------

def compute_one_hot_encoding(data, classes) -> np.ndarray:
    """(num_instances, num_classes) bool; an entry is set when a label equals the class (NaN matches NaN)."""
    classes = list(classes)
    out = np.zeros((len(data), len(classes)), dtype=np.bool_)
    for i, labels in enumerate(data):
        for label in labels:
            for j, cls in enumerate(classes):
                if label == cls or (is_nan(label) and is_nan(cls)):
                    out[i, j] = True
    return out


def compute_one_vs_rest_confusion_matrix(labels, outputs, classes) -> np.ndarray:
    """(num_classes, 2, 2): [k,0,0]=TP, [k,0,1]=FP, [k,1,0]=FN, [k,1,1]=TN; labels/outputs are 0/1 matrices
    (rows = instances); entries other than 0/1 are counted nowhere, as in the organizers' loop."""
    assert np.shape(labels) == np.shape(outputs)
    num_classes = len(classes)
    y = np.asarray(labels)
    p = np.asarray(outputs)
    A = np.zeros((num_classes, 2, 2))
    if y.size == 0:
        return A
    y = y.reshape(len(y), -1)[:, :num_classes]
    p = p.reshape(len(p), -1)[:, :num_classes]
    A[:, 0, 0] = np.sum((y == 1) & (p == 1), axis=0)
    A[:, 0, 1] = np.sum((y == 0) & (p == 1), axis=0)
    A[:, 1, 0] = np.sum((y == 1) & (p == 0), axis=0)
    A[:, 1, 1] = np.sum((y == 0) & (p == 0), axis=0)
    return A


def compute_f_measure(labels, outputs):
    """Macro F over the classes that occur in `labels` (lists of label strings, one list per record).

    Returns (macro_f, per_class_f array, classes). A class with 2TP+FP+FN == 0 gets NaN and is left out of
    the mean; all NaN -> NaN.
    """
    classes = sorted(set.union(*map(set, labels)))
    y = compute_one_hot_encoding(labels, classes)
    p = compute_one_hot_encoding(outputs, classes)
    A = compute_one_vs_rest_confusion_matrix(y, p, classes)
    tp, fp, fn = A[:, 0, 0], A[:, 0, 1], A[:, 1, 0]
    denom = 2 * tp + fp + fn
    per_class = np.full(len(classes), np.nan)
    ok = denom > 0
    per_class[ok] = 2 * tp[ok] / denom[ok]
    macro = float(np.nanmean(per_class)) if np.any(np.isfinite(per_class)) else float("nan")
    return macro, per_class, classes


# --- channel handling -----------------------------------------------------------------------------------

def normalize_names(names_ref, names_est) -> list[str]:
    """For each name in names_est, the first case-insensitively equal name from names_ref (unmatched dropped)."""
    folded = [(b.casefold(), b) for b in names_ref]
    out = []
    for a in names_est:
        key = a.casefold()
        match = next((b for f, b in folded if f == key), None)
        if match is not None:
            out.append(match)
    return out


def reorder_signal(input_signal, input_channels, output_channels):
    """Columns of input_signal rearranged into output_channels order (names matched case-insensitively).

    Like the organizers' version: repeated names are refused, identical name lists pass the array through,
    and an output channel the input lacks is dropped from the result (so the result can have fewer columns).
    """
    assert len(set(input_channels)) == len(input_channels)
    assert len(set(output_channels)) == len(output_channels)
    if input_channels == output_channels:
        return input_signal
    matched = normalize_names(input_channels, output_channels)
    input_signal = np.asarray(input_signal)
    out = np.zeros((np.shape(input_signal)[0], len(matched)), dtype=input_signal.dtype)
    for i, name in enumerate(matched):
        for j, in_name in enumerate(input_channels):
            if in_name == name:
                out[:, i] = input_signal[:, j]
    return out


def trim_signal(input_signal, num_samples_trimmed: int):
    """Zero-pad or truncate along time to num_samples_trimmed (kept from the earlier 2024 helper; the final
    scorer pads with NaN inside compute_snr instead)."""
    input_signal = np.asarray(input_signal)
    num_samples, num_channels = np.shape(input_signal)
    if num_samples == num_samples_trimmed:
        return input_signal
    if num_samples > num_samples_trimmed:
        return input_signal[:num_samples_trimmed, :]
    out = np.zeros((num_samples_trimmed, num_channels), dtype=input_signal.dtype)
    out[:num_samples, :] = input_signal
    return out


# --- alignment ------------------------------------------------------------------------------------------

def _quantized_levels(x: np.ndarray, num_quant_levels: int, min_amp: float, max_amp: float):
    """(row, column) of every finite sample of x on the num_quant_levels raster (0-based)."""
    x = np.asarray(x, dtype=np.float64)
    cols = np.flatnonzero(np.isfinite(x))
    with np.errstate(invalid="ignore", divide="ignore"):
        # Same arithmetic, in the same order, as the organizers' raster (1-based levels, rounded, clipped);
        # a zero amplitude range gives NaN, whose integer cast lands on level 1 after clipping.
        levels = np.round((num_quant_levels - 1) * (x[cols] - min_amp) / (max_amp - min_amp) + 1).astype(int)
    levels = np.clip(levels, 1, num_quant_levels)
    return levels - 1, cols


def convert_signal(x, num_quant_levels: int, min_amp: float, max_amp: float, max_t: int) -> np.ndarray:
    """(num_quant_levels, max_t) binary image with a 1 at each finite sample's amplitude level."""
    rows, cols = _quantized_levels(x, num_quant_levels, min_amp, max_amp)
    A = np.zeros((num_quant_levels, max_t))
    A[rows, cols] = 1
    return A


def fft_correlate(A_ref: np.ndarray, A_est: np.ndarray) -> np.ndarray:
    """Full 2-D cross-correlation via FFT (A_est flipped in both axes, then convolved)."""
    return fftconvolve(A_ref, A_est[::-1, ::-1], mode="full")


def _amplitude_range(x_ref: np.ndarray, x_est: np.ndarray) -> tuple[float, float]:
    """Joint (min, max), NaNs ignored; mirrors Python min/max over two nanmin results (a NaN second value
    loses, a NaN first value wins), so an all-NaN estimate takes the reference's range."""
    with np.errstate(all="ignore"), _quiet_nan_warnings():
        lo_ref, lo_est = np.nanmin(x_ref), np.nanmin(x_est)
        hi_ref, hi_est = np.nanmax(x_ref), np.nanmax(x_est)
    return min(lo_ref, lo_est), max(hi_ref, hi_est)


def _smoothed_box(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int], smooth: bool, sigma: float):
    """The smoothed raster restricted to its non-zero bounding box, and the box's top-left cell.

    The box is the samples' extent plus the filter radius, clipped to the page; smoothing inside it equals
    smoothing the whole raster (zeros beyond the margin contribute nothing, and where the box meets the
    raster's border the filter's reflection is the same)."""
    margin = int(4.0 * float(sigma) + 0.5) if smooth else 0  # gaussian_filter's radius (truncate=4)
    r0, r1 = max(int(rows.min()) - margin, 0), min(int(rows.max()) + margin + 1, shape[0])
    c0, c1 = max(int(cols.min()) - margin, 0), min(int(cols.max()) + margin + 1, shape[1])
    box = np.zeros((r1 - r0, c1 - c0))
    box[rows - r0, cols - c0] = 1
    if smooth:
        box = gaussian_filter(box, sigma)
    return box, (r0, c0)


# A bounding-box correlation is trusted only when its peak beats every other cell by more than this fraction
# of the correlation's scale; FFT round-off is ~1e-14 of it, so only genuine ties fall back to the full product.
_PEAK_MARGIN = 1e-9


def _cross_peak_boxed(ref_box, ref_origin, est_box, est_origin, shape) -> tuple[int, int] | None:
    """Peak cell of the full cross-correlation (fft_correlate coordinates) computed from the two bounding
    boxes only (a masked 2.5 s lead fills a quarter of the raster, so this is several times cheaper).
    None when the peak is not unique by a clear margin; the caller then reproduces the organizers' full
    computation so that ties break exactly as theirs do."""
    C = fftconvolve(ref_box, est_box[::-1, ::-1], mode="full")
    flat = int(np.argmax(C))
    peak = C.flat[flat]
    scale = float(np.sqrt(np.sum(ref_box * ref_box) * np.sum(est_box * est_box)))
    C.flat[flat] = -np.inf
    if not peak > 0 or C.size < 2 or peak - C.max() <= _PEAK_MARGIN * scale:
        return None
    i, j = np.unravel_index(flat, C.shape)
    # Full index = box index + (ref origin - est origin) + (full size - est box size).
    row = int(i) + ref_origin[0] - est_origin[0] + shape[0] - est_box.shape[0]
    col = int(j) + ref_origin[1] - est_origin[1] + shape[1] - est_box.shape[1]
    return row, col


def _cross_peak_full(x_ref, x_est, num_quant_levels, min_amp, max_amp, max_t, smooth, sigma):
    """Peak cell of the organizers' own computation: full rasters, full FFT cross-correlation."""
    A_ref = convert_signal(x_ref, num_quant_levels, min_amp, max_amp, max_t)
    A_est = convert_signal(x_est, num_quant_levels, min_amp, max_amp, max_t)
    if smooth:
        A_ref = gaussian_filter(A_ref, sigma)
        A_est = gaussian_filter(A_est, sigma)
    A_cross = fft_correlate(A_ref, A_est)
    return np.unravel_index(np.argmax(A_cross), A_cross.shape)


def estimate_offsets(x_ref, x_est, num_quant_levels: int = NUM_QUANT_LEVELS, smooth: bool = True,
                     sigma: float = SMOOTH_SIGMA) -> tuple[int, float]:
    """(offset in samples, offset in signal units) of x_est against x_ref, the organizers' way.

    Both signals are drawn on a shared num_quant_levels raster, smoothed, and cross-correlated; the offsets
    are the cross-correlation peak's distance from the reference auto-correlation peak. That auto peak is
    the zero-lag cell (num_quant_levels-1, max_t-1) (a non-negative finite image correlates best with itself
    unshifted), so it is not computed. The cross-correlation runs on the rasters' bounding boxes; when its
    peak is not clearly unique it is recomputed exactly as the organizers do, so ties resolve as theirs.
    """
    x_ref = np.asarray(x_ref, dtype=np.float64)
    x_est = np.asarray(x_est, dtype=np.float64)
    min_amp, max_amp = _amplitude_range(x_ref, x_est)
    max_t = max(x_ref.size, x_est.size)
    shape = (num_quant_levels, max_t)
    rows_ref, cols_ref = _quantized_levels(x_ref, num_quant_levels, min_amp, max_amp)
    rows_est, cols_est = _quantized_levels(x_est, num_quant_levels, min_amp, max_amp)
    peak = None
    if rows_ref.size and rows_est.size:
        ref_box, ref_origin = _smoothed_box(rows_ref, cols_ref, shape, smooth, sigma)
        est_box, est_origin = _smoothed_box(rows_est, cols_est, shape, smooth, sigma)
        peak = _cross_peak_boxed(ref_box, ref_origin, est_box, est_origin, shape)
    if peak is None:
        peak = _cross_peak_full(x_ref, x_est, num_quant_levels, min_amp, max_amp, max_t, smooth, sigma)
    row_cross, col_cross = peak
    offset_hz = int((max_t - 1) - col_cross)
    offset_levels = (num_quant_levels - 1) - row_cross
    with np.errstate(invalid="ignore"):
        offset_vt = offset_levels / (num_quant_levels - 1) * (max_amp - min_amp)
    return offset_hz, float(offset_vt)


def shift_signal(x_est, offset_hz: int, offset_vt: float) -> np.ndarray:
    """Apply an alignment: a positive lag drops the first k samples and appends k NaNs; a negative lag
    prepends |k| NaNs (the whole estimate is kept, so the result is longer); then subtract offset_vt."""
    x_est = np.asarray(x_est, dtype=np.float64)
    if offset_hz < 0:
        shifted = np.concatenate((np.full(-offset_hz, np.nan), x_est))
    else:
        shifted = np.concatenate((x_est[offset_hz:], np.full(offset_hz, np.nan)))
    shifted -= offset_vt
    return shifted


def align_signals(x_ref, x_est, num_quant_levels: int = NUM_QUANT_LEVELS, smooth: bool = True,
                  sigma: float = SMOOTH_SIGMA):
    """(x_est shifted onto x_ref, offset_hz in samples, offset_vt in signal units), unconditionally shifted;
    the scorer applies the shift only within its limits (see evaluate.align_within_limits)."""
    offset_hz, offset_vt = estimate_offsets(x_ref, x_est, num_quant_levels, smooth, sigma)
    return shift_signal(x_est, offset_hz, offset_vt), offset_hz, offset_vt


# --- per-lead digitization metrics ----------------------------------------------------------------------

def _paired_samples(x_ref, x_est, keep_nans: bool):
    """NaN-pad the shorter signal; return (ref, est) at the samples that count, plus both masks."""
    x_ref = np.asarray(x_ref, dtype=np.float64).copy()
    x_est = np.asarray(x_est, dtype=np.float64).copy()
    assert x_ref.ndim == x_est.ndim == 1
    n = max(x_ref.size, x_est.size)
    x_ref = np.concatenate((x_ref, np.full(n - x_ref.size, np.nan)))
    x_est = np.concatenate((x_est, np.full(n - x_est.size, np.nan)))
    idx_ref = np.isfinite(x_ref)
    idx_est = np.isfinite(x_est)
    if keep_nans:
        idx = idx_ref & idx_est
    else:
        x_est[~idx_est] = 0
        idx = idx_ref
    return x_ref[idx], x_est[idx], idx, idx_ref


def compute_snr(x_ref, x_est, keep_nans: bool = True, signal_median: bool = False, noise_median: bool = False):
    """(snr_db, p_signal, p_noise) for one lead, by the organizers' final rule (2024-08-14 "SNR edge case"):

    - signal and noise power both positive -> 10*log10(p_signal / p_noise);
    - else, no sample finite in both while the reference has finite samples (an abstained lead) -> 0 dB,
      which the folder mean counts;
    - else (a perfect match, an all-zero reference, a reference with no finite sample) -> NaN, which the
      folder mean skips.
    keep_nans (default): only samples finite in both count, and the SNR is then multiplied by the fraction
    of the reference's finite samples that the estimate also covers (a half-drawn lead keeps half its dB).
    """
    ref, est, idx, idx_ref = _paired_samples(x_ref, x_est, keep_nans)
    noise = ref - est
    with _quiet_nan_warnings():
        p_signal = np.median(ref**2) if signal_median else np.mean(ref**2)
        p_noise = np.median(noise**2) if noise_median else np.mean(noise**2)
        if p_signal > 0 and p_noise > 0:
            snr = 10 * np.log10(p_signal / p_noise)
        elif np.sum(idx) == 0 and np.sum(idx_ref) > 0:
            snr = 0.0
        else:
            snr = float("nan")
        if keep_nans:
            with np.errstate(invalid="ignore", divide="ignore"):
                snr *= np.sum(idx) / np.sum(idx_ref)
    return snr, p_signal, p_noise


def compute_ks_metric(x_ref, x_est, keep_nans: bool = True) -> float:
    """1 - max |CDF_ref - CDF_est| of the cumulative absolute amplitude (1 = identical shape).
    No overlapping samples -> NaN (the organizers' code raises there)."""
    ref, est, _, _ = _paired_samples(x_ref, x_est, keep_nans)
    if ref.size == 0:
        return float("nan")
    cdf_ref = np.nancumsum(np.abs(ref))
    cdf_est = np.nancumsum(np.abs(est))
    if cdf_ref[-1] > 0:
        cdf_ref = cdf_ref / cdf_ref[-1]
    if cdf_est[-1] > 0:
        cdf_est = cdf_est / cdf_est[-1]
    return 1.0 - np.max(np.abs(cdf_ref - cdf_est))


def compute_asci_metric(x_ref, x_est, beta: float = 0.05, keep_nans: bool = True) -> float:
    """Adaptive signed correlation index: mean of +1 (|error| <= beta*std(ref)) / -1 (otherwise)."""
    ref, est, _, _ = _paired_samples(x_ref, x_est, keep_nans)
    if beta <= 0 or beta > 1:
        raise ValueError("The beta value should be greater than 0 and less than or equal to 1.")
    with _quiet_nan_warnings():
        threshold = beta * np.std(ref)
        error = np.abs(ref - est)
        return np.mean(np.where(error <= threshold, 1.0, -1.0))


def compute_weighted_absolute_difference(x_ref, x_est, sampling_frequency: float, keep_nans: bool = True) -> float:
    """Mean |ref - est| weighted by 1 - 0.5 * (100 ms moving average of ref) / its max.
    Too few overlapping samples for the filter -> NaN (the organizers' code raises there)."""
    ref, est, _, _ = _paired_samples(x_ref, x_est, keep_nans)
    m = round(0.1 * sampling_frequency)
    try:
        w = filtfilt(np.ones(m), m, ref, method="gust")
    except ValueError:
        return float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):
        w = 1 - 0.5 / np.max(w) * w
        return np.sum(np.abs(ref - est) * w) / np.sum(w)
