"""Per-lead fidelity of a digitized lead against its reference: amplitude ratio, best lag and time drift.

The SNR says how much a lead is off, not why. These two statistics separate the two ways a digitizer
usually fails on photographs:
- amplitude ratio: the digitized lead's 1-99 % range over the reference's, over the samples both have
  after the scorer's own alignment (a readout that cuts QRS strokes reads < 1);
- time drift: the scorer's best lag of the second half of the lead's window minus that of the first half,
  in ms per second between the halves' centres (a half's lag and centre: the mean of its beats' lags and
  times, see `half_window_lags`) (a fold or a wrong time scale stretches the lead's time axis).

A third pair of figures says where along a lead the error sits: the SNR a lead would gain if the first (the
last) `EDGE_S` of its drawn window were read exactly (`edge_gains_db`). A lead's ends are where its printed
neighbour, the column separator and its printed name meet its trace; an even spread of error would put about
0.2 dB in each 100-ms end of a 2.5-s lead.

A fourth figure says how much of a lead's error is its local time axis: the SNR it would gain were every
`RETIME_WINDOW_S` of its drawn window read at its own best shift within `RETIME_MAX_S` (`retime_gain_db`, an
oracle: a crease moves a photographed page's beats one at a time, which the whole lead's lag cannot follow).

Alignment is the organizers' (`metrics.estimate_offsets`, `evaluate.align_within_limits`); the half-window
lags are found by the same raster correlation on the two halves. At a low sampling rate one sample of lag is
a large drift (10 ms over 1.25 s = 8 ms/s at 100 Hz), so both signals are linearly resampled to at least
`DRIFT_FS_HZ` for the half lags only.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .evaluate import align_within_limits
from .metrics import compute_snr, estimate_offsets

# Resampling rate for the half-window lags: 1 ms per lag step, 0.8 ms/s of drift over a 2.5 s window.
DRIFT_FS_HZ = 1000.0
# A half window shorter than this holds too little of an ECG (under one beat) for a meaningful lag.
MIN_HALF_S = 0.4
# Half width of the window around one QRS for its lag: the complex and its neighbouring P and T waves.
BEAT_HALF_WIDTH_S = 0.2
# Leads whose estimate covers less than this share of the reference's drawn samples are not measured.
MIN_COVERAGE = 0.5
# Length of a lead's start and end whose share of the error `edge_gains_db` measures.
EDGE_S = 0.1
# The re-timing oracle's windows and their largest shift (`retime_gain_db`): a window holds about one beat's
# QRS with its P and T waves; after the row rulers a real photo's beats sit a few ms off (p90 6 ms), and a
# larger reach would let a window slide onto the next beat's stroke.
RETIME_WINDOW_S = 0.3
RETIME_MAX_S = 0.01


@dataclass
class LeadFidelity:
    """One lead's fidelity statistics (NaN where not measurable)."""

    amplitude_ratio: float
    lag_ms: float  # the scorer's best lag of the whole lead (positive: the estimate comes late)
    drift_ms_per_s: float
    coverage: float  # share of the reference's finite samples the aligned estimate has
    start_gain_db: float = float("nan")  # SNR gained were the first EDGE_S of the drawn window read exactly
    end_gain_db: float = float("nan")  # ... the last EDGE_S
    retime_gain_db: float = float("nan")  # SNR gained were every RETIME_WINDOW_S read at its own best shift


def robust_range(x: np.ndarray, lo_pct: float = 1.0, hi_pct: float = 99.0) -> float:
    """The 1-99 % range of the finite samples of x (NaN when none)."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan")
    lo, hi = np.percentile(x, [lo_pct, hi_pct])
    return float(hi - lo)


def amplitude_ratio(x_ref: np.ndarray, x_est_aligned: np.ndarray) -> float:
    """Digitized 1-99 % range over the reference's, over the samples finite in both (NaN if none)."""
    n = min(len(x_ref), len(x_est_aligned))
    ref = np.asarray(x_ref[:n], dtype=np.float64)
    est = np.asarray(x_est_aligned[:n], dtype=np.float64)
    both = np.isfinite(ref) & np.isfinite(est)
    if both.sum() < 2:
        return float("nan")
    r_ref = robust_range(ref[both])
    return float(robust_range(est[both]) / r_ref) if r_ref > 0 else float("nan")


def _resample(x: np.ndarray, factor: int) -> np.ndarray:
    """Linear resampling by an integer factor; a new sample is NaN unless both its neighbours are finite."""
    if factor == 1:
        return np.asarray(x, dtype=np.float64)
    n = len(x)
    t = np.arange((n - 1) * factor + 1) / factor
    i0 = np.floor(t).astype(int)
    i1 = np.minimum(i0 + 1, n - 1)
    w = t - i0
    out = (1.0 - w) * x[i0] + w * x[i1]
    exact = w == 0  # an original sample stays itself even beside a NaN
    out[exact] = x[i0[exact]]
    return out


def _masked(x: np.ndarray, start: int, stop: int) -> np.ndarray:
    out = np.full(len(x), np.nan)
    start, stop = max(start, 0), min(stop, len(x))
    if stop > start:
        out[start:stop] = x[start:stop]
    return out


def _stroke_times(x: np.ndarray, start: int, stop: int, min_gap: int) -> list[int]:
    """Sample indices of the steep strokes (QRS complexes) of x in [start, stop): local maxima of the
    squared slope, at least min_gap apart, above a third of the strongest."""
    seg = np.asarray(x[start:stop], dtype=np.float64)
    slope2 = np.diff(seg) ** 2
    slope2[~np.isfinite(slope2)] = 0.0
    if slope2.size == 0 or slope2.max() <= 0:
        return []
    order = np.argsort(slope2)[::-1]
    picked: list[int] = []
    floor = slope2[order[0]] / 3.0
    for i in order:
        if slope2[i] < floor:
            break
        if all(abs(int(i) - p) >= min_gap for p in picked):
            picked.append(int(i))
    return sorted(start + p for p in picked)


def half_window_lags(x_ref: np.ndarray, x_est: np.ndarray, fs_hz: float, lag_samples: int):
    """(lag of the first half, lag of the second half, separation of the halves' centres), in seconds.

    The halves split the reference's drawn window (first to last finite sample). A half's lag is the mean
    of the scorer's best lags of its beats, each found on a short window around one QRS (the reference's
    window against the estimate's taken at the whole lead's lag, so a lag one beat away is never preferred),
    and its centre the mean of those beats' times: one best lag over a whole half would follow one of its
    beats, wherever that beat lies in the half. A half without a stroke uses its whole window. NaNs when the
    window is too short or the estimate too sparse.
    """
    finite = np.flatnonzero(np.isfinite(x_ref))
    if finite.size == 0:
        return float("nan"), float("nan"), float("nan")
    first, last = int(finite[0]), int(finite[-1]) + 1
    half = (last - first) // 2
    if half < MIN_HALF_S * fs_hz:
        return float("nan"), float("nan"), float("nan")
    factor = max(1, int(np.ceil(DRIFT_FS_HZ / fs_hz)))
    ref = _resample(np.asarray(x_ref, dtype=np.float64), factor)
    est = _resample(np.asarray(x_est, dtype=np.float64), factor)
    fs_up = fs_hz * factor
    lag_up = lag_samples * factor
    beat_up = int(round(BEAT_HALF_WIDTH_S * fs_up))
    lags, centres = [], []
    for a, b in ((first, first + half), (first + half, last)):
        a_up, b_up = a * factor, b * factor
        # a beat belongs to the half that holds its QRS; its window is cut by the lead's window only
        windows = [(max(c - beat_up, first * factor), min(c + beat_up, last * factor))
                   for c in _stroke_times(ref, a_up, b_up, 2 * beat_up)] or [(a_up, b_up)]
        half_lags, half_times = [], []
        for w0, w1 in windows:
            ref_w = _masked(ref, w0, w1)
            est_w = _masked(est, w0 + lag_up, w1 + lag_up)
            if np.isfinite(est_w).sum() < 0.5 * (w1 - w0):
                continue
            lag, _ = estimate_offsets(ref_w, est_w)
            half_lags.append(lag / fs_up)
            half_times.append(0.5 * (w0 + w1) / fs_up)
        if not half_lags:
            return float("nan"), float("nan"), float("nan")
        lags.append(float(np.mean(half_lags)))
        centres.append(float(np.mean(half_times)))
    return lags[0], lags[1], centres[1] - centres[0]


def time_drift_ms_per_s(x_ref: np.ndarray, x_est: np.ndarray, fs_hz: float, lag_samples: int = 0) -> float:
    """(lag of the second half - lag of the first half) in ms per second between the halves' centres."""
    lag1_s, lag2_s, sep_s = half_window_lags(x_ref, x_est, fs_hz, lag_samples)
    if not np.isfinite(sep_s) or sep_s <= 0:
        return float("nan")
    return float((lag2_s - lag1_s) * 1000.0 / sep_s)


def _on_reference(x_ref: np.ndarray, aligned: np.ndarray) -> np.ndarray:
    """The aligned estimate on the reference's samples (cut or NaN-padded to its length)."""
    est = np.full(x_ref.shape, np.nan)
    n = min(len(aligned), len(x_ref))
    est[:n] = aligned[:n]
    return est


def edge_gains_db(x_ref: np.ndarray, aligned: np.ndarray, fs_hz: float, edge_s: float = EDGE_S
                  ) -> tuple[float, float]:
    """(start, end): the organizers' SNR of the aligned estimate with the first (last) edge_s of the
    reference's drawn window set to the reference, minus its SNR as read."""
    drawn = np.nonzero(np.isfinite(x_ref))[0]
    est = _on_reference(x_ref, aligned)
    base = compute_snr(x_ref, est)[0]
    k = max(1, int(round(edge_s * fs_hz)))
    gains = []
    for a, b in ((drawn[0], drawn[0] + k), (drawn[-1] + 1 - k, drawn[-1] + 1)):
        exact = est.copy()
        exact[a:b] = x_ref[a:b]
        gains.append(float(compute_snr(x_ref, exact)[0] - base))
    return gains[0], gains[1]


def retime_gain_db(x_ref: np.ndarray, aligned: np.ndarray, fs_hz: float, window_s: float = RETIME_WINDOW_S,
                   max_shift_s: float = RETIME_MAX_S) -> float:
    """The organizers' SNR of the aligned estimate with every window_s of the reference's drawn window taken at
    the whole-sample shift within max_shift_s that fits the reference best there, minus its SNR as read."""
    est = _on_reference(x_ref, aligned)
    drawn = np.nonzero(np.isfinite(x_ref))[0]
    if drawn.size == 0 or not np.isfinite(est).any():
        return float("nan")
    base = compute_snr(x_ref, est)[0]
    width = max(1, int(round(window_s * fs_hz)))
    reach = int(round(max_shift_s * fs_hz))
    retimed = est.copy()
    for a in range(int(drawn[0]), int(drawn[-1]) + 1, width):
        b = min(a + width, int(drawn[-1]) + 1)
        best, best_err = 0, np.inf
        for shift in range(-reach, reach + 1):
            if a + shift < 0 or b + shift > est.size:
                continue
            piece = est[a + shift:b + shift]
            both = np.isfinite(piece) & np.isfinite(x_ref[a:b])
            if both.sum() < 0.5 * (b - a):
                continue
            err = float(np.mean((piece[both] - x_ref[a:b][both]) ** 2))
            if err < best_err:
                best, best_err = shift, err
        retimed[a:b] = est[a + best:b + best]
    return float(compute_snr(x_ref, retimed)[0] - base)


def lead_fidelity(x_ref: np.ndarray, x_est: np.ndarray, fs_hz: float) -> LeadFidelity:
    """Amplitude ratio, whole-lead lag and drift of one lead (NaNs for an empty or barely drawn estimate)."""
    x_ref = np.asarray(x_ref, dtype=np.float64)
    x_est = np.asarray(x_est, dtype=np.float64)
    n_ref = int(np.isfinite(x_ref).sum())
    if n_ref == 0 or not np.isfinite(x_est).any():
        return LeadFidelity(float("nan"), float("nan"), float("nan"), 0.0 if n_ref else float("nan"))
    aligned, lag, _, _ = align_within_limits(x_ref, x_est, fs_hz)
    n = min(len(aligned), len(x_ref))
    coverage = float((np.isfinite(aligned[:n]) & np.isfinite(x_ref[:n])).sum() / n_ref)
    if coverage < MIN_COVERAGE:
        return LeadFidelity(float("nan"), float("nan"), float("nan"), coverage)
    ratio = amplitude_ratio(x_ref, aligned)
    lag_ms = lag * 1000.0 / fs_hz
    drift = time_drift_ms_per_s(x_ref, x_est, fs_hz, lag)
    start_gain, end_gain = edge_gains_db(x_ref, aligned, fs_hz)
    return LeadFidelity(ratio, lag_ms, drift, coverage, start_gain, end_gain, retime_gain_db(x_ref, aligned, fs_hz))


def summarize(rows: list[LeadFidelity]) -> dict:
    """Set-level figures over the measured leads (the issue's targets: ratio median >= 0.97 with >= 90 % of
    leads within 0.85-1.15; |drift| <= 3 ms/s on >= 95 % of leads)."""
    ratio = np.array([r.amplitude_ratio for r in rows if np.isfinite(r.amplitude_ratio)])
    drift = np.array([r.drift_ms_per_s for r in rows if np.isfinite(r.drift_ms_per_s)])
    lag = np.array([r.lag_ms for r in rows if np.isfinite(r.lag_ms)])
    start = np.array([r.start_gain_db for r in rows if np.isfinite(r.start_gain_db)])
    end = np.array([r.end_gain_db for r in rows if np.isfinite(r.end_gain_db)])
    retime = np.array([r.retime_gain_db for r in rows if np.isfinite(r.retime_gain_db)])

    def q(x, p):
        return round(float(np.percentile(x, p)), 4) if x.size else None

    def share(mask):
        return round(float(np.mean(mask)), 4) if mask.size else None

    return {
        "leads": len(rows),
        "leads_measured": int(ratio.size),
        "ratio_median": q(ratio, 50),
        "ratio_in_085_115": share((ratio >= 0.85) & (ratio <= 1.15)),
        "ratio_below_08": share(ratio < 0.8),
        "drift_median": q(np.abs(drift), 50),
        "drift_p90": q(np.abs(drift), 90),
        "drift_le3": share(np.abs(drift) <= 3.0),
        "drift_gt10": share(np.abs(drift) > 10.0),
        "lag_median_ms": q(np.abs(lag), 50),
        "lag_p90_ms": q(np.abs(lag), 90),
        "lag_signed_median_ms": q(lag, 50),
        # mean over the measured leads: what exact starts (ends) would add to the set's mean lead SNR
        "start_gain_db": round(float(start.mean()), 4) if start.size else None,
        "end_gain_db": round(float(end.mean()), 4) if end.size else None,
        "retime_gain_db": round(float(retime.mean()), 4) if retime.size else None,
    }
