"""Clinical measurements of one record: the quantities the diagnostic classes are defined by.

Rate (TACHY/BRADY), RR irregularity and P waves (AFIB/AFL), early beats (PAC/PVC), QRS duration, axis and
terminal QRS forces (CD), voltage criteria (HYP: Sokolow-Lyon, Cornell), Q waves (Old MI), ST deviation and
T inversion (STTC, MI). Everything tolerates what a printout gives: each lead only over its 2.5-s window
(lead II over 10 s), NaN gaps, a missing lead, any sampling rate.

Method (own code, numpy/scipy): R peaks from a multi-lead QRS energy (band-passed derivative squared, each
lead scaled by its own robust level, averaged over the leads present at each instant, so the 3x4 page's
column changes do not matter); one median beat per lead from the beats inside its window; QRS onset/offset
from the summed slope of the median beats; amplitudes relative to the PR baseline just before the QRS.
NeuroKit2 (MIT) was considered: it expects gap-free signals and pulls in pandas, scikit-learn and matplotlib.

`measure(signal, fs_hz, lead_names)` -> float64 vector in FEATURE_NAMES order, NaN where a measurement is
impossible (the fusion model imputes it and sees a missing-value indicator).
"""
from __future__ import annotations

import warnings

import numpy as np

from ..layouts import STANDARD_LEADS
from .signal_data import INTERNAL_FS_HZ, to_internal

LEAD = {name: k for k, name in enumerate(STANDARD_LEADS)}
INFERIOR = ("II", "III", "aVF")
LATERAL = ("I", "aVL", "V5", "V6")
ANTERIOR = ("V1", "V2", "V3", "V4")
GROUPS = {"inf": INFERIOR, "lat": LATERAL, "ant": ANTERIOR}
# T waves are normally upright in these leads (aVR, III, V1 may be negative in health)
UPRIGHT_T = ("I", "II", "aVF", "V3", "V4", "V5", "V6")

# median-beat window around R, seconds
BEAT_BEFORE_S, BEAT_AFTER_S = 0.30, 0.50
MIN_RR_S = 0.24  # 250 bpm: two detections closer than this are one beat

FEATURE_NAMES: tuple[str, ...] = (
    "hr_bpm", "rr_cv", "rr_rmssd_rel", "rr_succ_diff_rel", "rr_min_rel", "rr_max_rel", "premature_index",
    "premature_frac", "num_beats", "p_amp_mv", "p_corr", "tq_noise_rel",
    "qrs_ms", "axis_cos", "axis_sin", "axis_left", "axis_right", "v1_terminal_mv", "v6_terminal_mv",
    "qrs_shape_var",
    "q_width_inf_ms", "q_ratio_inf", "q_width_lat_ms", "q_ratio_lat", "q_width_ant_ms", "q_ratio_ant",
    "r_max_v1v3_mv",
    "st_max_inf_mv", "st_min_inf_mv", "st_max_lat_mv", "st_min_lat_mv", "st_max_ant_mv", "st_min_ant_mv",
    "t_min_inf_mv", "t_min_lat_mv", "t_min_ant_mv", "t_inverted_frac",
    "sokolow_mv", "cornell_mv", "r_max_mv", "s_max_mv", "limb_qrs_pp_mv",
    "leads_present", "rhythm_seconds", "p_to_qrs_ms",
)
NUM_FEATURES = len(FEATURE_NAMES)


def measure(signal: np.ndarray | None, fs_hz: float, lead_names: list[str]) -> np.ndarray:
    """Measurements of a header-ordered (num_samples, num_leads) mV signal (NaN where not drawn)."""
    if signal is None:
        return np.full(NUM_FEATURES, np.nan)
    # one rate for every record: the fusion learns from 100-Hz PTB-XL and meets 250/500-Hz records
    x = to_internal(signal, fs_hz, lead_names).astype(np.float64)
    return measure_leads(x, INTERNAL_FS_HZ)


# --- filters ---------------------------------------------------------------------------------------------

def _fill_gaps(row: np.ndarray) -> np.ndarray:
    ok = np.isfinite(row)
    if ok.all():
        return row
    if not ok.any():
        return np.zeros_like(row)
    idx = np.arange(row.size)
    return np.interp(idx, idx[ok], row[ok])


def qrs_energy(x: np.ndarray, fs_hz: float) -> np.ndarray:
    """(T,) mean over the leads present at each instant of each lead's band-passed slope squared, scaled by
    that lead's 98th percentile; NaN where no lead is present."""
    from scipy.signal import butter, sosfiltfilt

    hi = min(18.0, 0.45 * fs_hz)
    sos = butter(2, [6.0 / (fs_hz / 2), hi / (fs_hz / 2)], btype="band", output="sos")
    num, den = np.zeros(x.shape[1]), np.zeros(x.shape[1])
    for row in x:
        ok = np.isfinite(row)
        if ok.sum() < fs_hz:  # less than a second: nothing to scale by
            continue
        filled = _fill_gaps(row - np.nanmedian(row))
        bp = sosfiltfilt(sos, filled, padlen=min(3 * 7, filled.size - 1))
        e = np.gradient(bp) ** 2
        level = np.percentile(e[ok], 98)
        if level <= 0:
            continue
        num[ok] += np.minimum(e[ok] / level, 4.0)
        den[ok] += 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        out = num / den
    width = max(1, int(round(0.06 * fs_hz)))
    out = np.convolve(np.nan_to_num(out), np.ones(width) / width, mode="same")
    out[den == 0] = np.nan
    return out


def detect_r_peaks(x: np.ndarray, fs_hz: float) -> np.ndarray:
    """Sample indices of the QRS complexes (the energy's maxima above an adaptive level)."""
    from scipy.signal import find_peaks

    e = qrs_energy(x, fs_hz)
    ok = np.isfinite(e)
    if ok.sum() < fs_hz:
        return np.zeros(0, int)
    e0 = np.where(ok, e, 0.0)
    peaks, props = find_peaks(e0, distance=max(1, int(MIN_RR_S * fs_hz)), height=0.0)
    if peaks.size == 0:
        return peaks
    h = props["peak_heights"]
    ref = np.percentile(h, 90) if h.size >= 3 else h.max()
    keep = h >= 0.3 * ref
    return peaks[keep]


# --- rhythm ----------------------------------------------------------------------------------------------

def rr_features(peaks: np.ndarray, valid: np.ndarray, fs_hz: float) -> dict:
    """RR statistics from consecutive peaks with no gap between them (`valid`: samples with some lead)."""
    out: dict = {}
    if peaks.size < 2:
        return out
    rr = []
    for a, b in zip(peaks[:-1], peaks[1:]):
        rr.append((b - a) / fs_hz if valid[a:b + 1].all() else np.nan)
    rr = np.asarray(rr)
    good = rr[np.isfinite(rr)]
    if good.size < 1:
        return out
    med = float(np.median(good))
    out["hr_bpm"] = 60.0 / med
    out["num_beats"] = float(peaks.size)
    if good.size >= 2:
        out["rr_cv"] = float(np.std(good) / np.mean(good))
        out["rr_min_rel"] = float(good.min() / med)
        out["rr_max_rel"] = float(good.max() / med)
    diffs = np.diff(rr)
    diffs = diffs[np.isfinite(diffs)]
    if diffs.size >= 1:
        out["rr_rmssd_rel"] = float(np.sqrt(np.mean(diffs ** 2)) / med)
        out["rr_succ_diff_rel"] = float(np.median(np.abs(diffs)) / med)
    # an early beat: an interval clearly shorter than the usual one, followed by a longer one (pause)
    early = []
    for i in range(rr.size):
        if not np.isfinite(rr[i]):
            continue
        prem = (med - rr[i]) / med
        nxt = rr[i + 1] if i + 1 < rr.size else np.nan
        pause = np.isfinite(nxt) and nxt > rr[i] * 1.15
        early.append(prem if (pause or not np.isfinite(nxt)) else min(prem, 0.0))
    if early:
        early = np.asarray(early)
        out["premature_index"] = float(early.max())
        out["premature_frac"] = float(np.mean(early > 0.12))
    return out


# --- median beats and delineation ------------------------------------------------------------------------

def median_beats(x: np.ndarray, peaks: np.ndarray, fs_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """(12, W) median beat per lead (NaN where a lead has no complete beat) and the beat count per lead."""
    before, after = int(round(BEAT_BEFORE_S * fs_hz)), int(round(BEAT_AFTER_S * fs_hz))
    w = before + after
    out = np.full((x.shape[0], w), np.nan)
    counts = np.zeros(x.shape[0], int)
    for k, row in enumerate(x):
        beats = []
        for p in peaks:
            a, b = p - before, p + after
            if a < 0 or b > row.size:
                continue
            seg = row[a:b]
            # the QRS and the 200 ms before it must be there; later parts may be cut by the window's end
            core = seg[before - int(0.2 * fs_hz): before + int(0.12 * fs_hz)]
            if np.isfinite(core).all():
                beats.append(seg)
        if beats:
            with warnings.catch_warnings():  # all-NaN columns (the window's end) stay NaN quietly
                warnings.simplefilter("ignore", RuntimeWarning)
                out[k] = np.nanmedian(np.stack(beats), axis=0)
            counts[k] = len(beats)
    return out, counts


def qrs_bounds(beats: np.ndarray, fs_hz: float) -> tuple[float, float] | None:
    """QRS onset and offset (fractional sample indices in the beat window) from the summed absolute slope of
    the leads' median beats, each scaled by its own peak slope."""
    before = int(round(BEAT_BEFORE_S * fs_hz))
    rows = [b for b in beats if np.isfinite(b[before - int(0.2 * fs_hz): before + int(0.12 * fs_hz)]).all()]
    if not rows:
        return None
    slope = []
    for b in rows:
        d = np.abs(np.gradient(_fill_gaps(b)))
        m = d[before - int(0.08 * fs_hz): before + int(0.08 * fs_hz) + 1].max()
        if m > 0:
            slope.append(d / m)
    if not slope:
        return None
    s = np.mean(slope, axis=0)
    lo_i, hi_i = before - int(0.12 * fs_hz), before + int(0.14 * fs_hz)
    peak_i = lo_i + int(np.argmax(s[lo_i:hi_i + 1]))
    level = 0.2 * s[peak_i]
    # slope-quiet baseline: the median slope of the 100 ms that end 100 ms before R (PR segment)
    base = float(np.median(s[max(0, before - int(0.2 * fs_hz)): before - int(0.1 * fs_hz)]))
    level = max(level, base + 0.1 * (s[peak_i] - base))
    i = peak_i
    while i > lo_i and s[i] > level:
        i -= 1
    onset = i + (level - s[i]) / max(s[i + 1] - s[i], 1e-9) if s[i] <= level else float(i)
    j = peak_i
    while j < hi_i and s[j] > level:
        j += 1
    offset = j - 1 + (s[j - 1] - level) / max(s[j - 1] - s[j], 1e-9) if s[j] <= level else float(j)
    return float(onset), float(offset)


def _at(b: np.ndarray, t: float) -> float:
    """Linear interpolation of a beat at fractional index t."""
    i = int(np.floor(t))
    if i < 0 or i + 1 >= b.size:
        return np.nan
    f = t - i
    return float(b[i] * (1 - f) + b[i + 1] * f)


def lead_measures(b: np.ndarray, onset: float, offset: float, fs_hz: float) -> dict:
    """Amplitudes of one median beat relative to its PR baseline (the 60 ms before QRS onset)."""
    ms = fs_hz / 1000.0
    a0 = int(max(0, np.floor(onset - 60 * ms)))
    base_seg = b[a0: int(np.ceil(onset)) + 1]
    if not np.isfinite(base_seg).any():
        return {}
    base = float(np.nanmedian(base_seg))
    v = b - base
    qa, qb = int(np.floor(onset)), int(np.ceil(offset)) + 1
    qrs = v[qa:qb]
    if not np.isfinite(qrs).all() or qrs.size < 2:
        return {}
    out = {"r": float(max(qrs.max(), 0.0)), "s": float(max(-qrs.min(), 0.0)),
           "area": float(qrs.sum() / fs_hz), "pp": float(qrs.max() - qrs.min())}
    # Q wave: an initial negative deflection, its width (until the trace comes back above 0) and depth
    first = qrs[: max(2, int(round(60 * ms)) + 1)]
    i_max = int(np.argmax(qrs))
    if qrs[: i_max + 1].min() < -0.03 and np.argmin(qrs[: i_max + 1]) < i_max:
        neg = qrs[: i_max + 1] < 0
        width = int(np.argmax(~neg)) if not neg.all() else neg.size
        out["q_width_ms"] = float(width / ms) if first.min() < -0.03 else 0.0
        out["q_depth"] = float(-qrs[: i_max + 1].min())
    else:
        out["q_width_ms"], out["q_depth"] = 0.0, 0.0
    term = v[int(round(offset - 40 * ms)): int(round(offset)) + 1]
    out["terminal"] = float(np.nanmean(term)) if np.isfinite(term).any() else np.nan
    out["st"] = _at(v, offset + 60 * ms)
    t_seg = v[int(round(offset + 80 * ms)): int(round(offset + 360 * ms))]
    if np.isfinite(t_seg).sum() >= max(3, 0.1 * fs_hz):
        t_ok = t_seg[np.isfinite(t_seg)]
        out["t"] = float(t_ok[np.argmax(np.abs(t_ok))])
    p_a = max(0, int(round(onset - 300 * ms)))
    p_seg = v[p_a: max(0, int(round(onset - 30 * ms)))]
    if np.isfinite(p_seg).all() and p_seg.size:
        i_p = int(np.argmax(np.abs(p_seg)))
        out["p"] = float(p_seg[i_p])
        out["p_to_qrs_ms"] = float((onset - (p_a + i_p)) / ms)  # P peak to QRS onset: the PR interval's core
    return out


def p_wave_consistency(x: np.ndarray, peaks: np.ndarray, fs_hz: float, lead: int) -> tuple[float, float]:
    """Mean correlation of each beat's pre-QRS segment (300..60 ms before R) with their median, and the
    TQ-segment noise relative to the QRS amplitude: sinus P waves repeat, fibrillation does not."""
    row = x[lead]
    a_off, b_off = int(round(0.30 * fs_hz)), int(round(0.06 * fs_hz))
    segs, tq = [], []
    for p in peaks:
        a, b = p - a_off, p - b_off
        if a < 0 or not np.isfinite(row[a:b]).all():
            continue
        s = row[a:b] - row[a:b].mean()
        segs.append(s)
        tq.append(np.std(np.diff(row[a:b])))
    if len(segs) < 3:
        return np.nan, np.nan
    segs = np.stack(segs)
    med = np.median(segs, axis=0)
    cors = [np.corrcoef(s, med)[0, 1] for s in segs if s.std() > 1e-6 and med.std() > 1e-6]
    qrs_amp = np.nanpercentile(row, 99) - np.nanpercentile(row, 1)
    noise = float(np.median(tq) / qrs_amp) if qrs_amp > 0 else np.nan
    return (float(np.mean(cors)) if cors else np.nan), noise


def measure_leads(x: np.ndarray, fs_hz: float) -> np.ndarray:
    """Measurements of a (12, T) STANDARD_LEADS-ordered mV array at fs_hz (NaN = not drawn)."""
    f = dict.fromkeys(FEATURE_NAMES, np.nan)
    present = np.isfinite(x).sum(axis=1) >= 0.5 * fs_hz
    f["leads_present"] = float(present.sum())
    valid = np.isfinite(x).any(axis=0)
    f["rhythm_seconds"] = float(valid.sum() / fs_hz)
    if not present.any():
        return np.array([f[n] for n in FEATURE_NAMES])
    peaks = detect_r_peaks(x, fs_hz)
    f.update(rr_features(peaks, valid, fs_hz))
    if peaks.size == 0:
        return np.array([f[n] for n in FEATURE_NAMES])
    beats, counts = median_beats(x, peaks, fs_hz)
    bounds = qrs_bounds(beats, fs_hz)
    rhythm = LEAD["II"] if np.isfinite(x[LEAD["II"]]).sum() >= 5 * fs_hz else int(np.argmax(np.isfinite(x).sum(1)))
    f["p_corr"], f["tq_noise_rel"] = p_wave_consistency(x, peaks, fs_hz, rhythm)
    if bounds is None:
        return np.array([f[n] for n in FEATURE_NAMES])
    onset, offset = bounds
    f["qrs_ms"] = (offset - onset) / fs_hz * 1000.0
    per = {name: (lead_measures(beats[k], onset, offset, fs_hz) if counts[k] else {})
           for name, k in LEAD.items()}

    def get(name: str, key: str) -> float:
        return per[name].get(key, np.nan)

    a_i, a_f = get("I", "area"), get("aVF", "area")
    if np.isfinite(a_i) and np.isfinite(a_f) and (a_i != 0 or a_f != 0):
        ang = np.arctan2(a_f, a_i)
        deg = np.degrees(ang)
        f["axis_cos"], f["axis_sin"] = float(np.cos(ang)), float(np.sin(ang))
        f["axis_left"] = float(-90.0 <= deg < -30.0)
        f["axis_right"] = float(deg > 90.0 or deg < -90.0)
    f["v1_terminal_mv"] = get("V1", "terminal")
    f["v6_terminal_mv"] = get("V6", "terminal")
    f["p_amp_mv"] = abs(get("II", "p"))
    f["p_to_qrs_ms"] = get("II", "p_to_qrs_ms")
    # QRS shape variation between beats of the rhythm lead (a PVC's complex differs from the others)
    f["qrs_shape_var"] = _qrs_shape_var(x[rhythm], peaks, fs_hz)

    for g, leads in GROUPS.items():
        qw = [get(n, "q_width_ms") for n in leads]
        qr = [get(n, "q_depth") / max(get(n, "r"), 0.05) for n in leads if np.isfinite(get(n, "q_depth"))]
        st = [get(n, "st") for n in leads]
        t = [get(n, "t") for n in leads]
        f[f"q_width_{g}_ms"] = _nanmax(qw)
        f[f"q_ratio_{g}"] = _nanmax(qr)
        f[f"st_max_{g}_mv"] = _nanmax(st)
        f[f"st_min_{g}_mv"] = _nanmin(st)
        f[f"t_min_{g}_mv"] = _nanmin(t)
    f["r_max_v1v3_mv"] = _nanmax([get(n, "r") for n in ("V1", "V2", "V3")])
    ts = [get(n, "t") for n in UPRIGHT_T]
    ts = [t for t in ts if np.isfinite(t)]
    if ts:
        f["t_inverted_frac"] = float(np.mean(np.asarray(ts) < -0.05))
    f["sokolow_mv"] = _nansum_required(get("V1", "s"), _nanmax([get("V5", "r"), get("V6", "r")]))
    f["cornell_mv"] = _nansum_required(get("aVL", "r"), get("V3", "s"))
    f["r_max_mv"] = _nanmax([get(n, "r") for n in STANDARD_LEADS])
    f["s_max_mv"] = _nanmax([get(n, "s") for n in STANDARD_LEADS])
    f["limb_qrs_pp_mv"] = _nanmax([get(n, "pp") for n in STANDARD_LEADS[:6]])
    return np.array([f[n] for n in FEATURE_NAMES], dtype=np.float64)


def _qrs_shape_var(row: np.ndarray, peaks: np.ndarray, fs_hz: float) -> float:
    h = int(round(0.08 * fs_hz))
    segs = [row[p - h: p + h + 1] for p in peaks if p - h >= 0 and p + h < row.size
            and np.isfinite(row[p - h: p + h + 1]).all()]
    if len(segs) < 3:
        return np.nan
    segs = np.stack(segs)
    segs = segs - segs.mean(axis=1, keepdims=True)
    med = np.median(segs, axis=0)
    scale = np.abs(med).max()
    if scale <= 0:
        return np.nan
    return float(np.max(np.sqrt(np.mean((segs - med) ** 2, axis=1))) / scale)


def _nanmax(v) -> float:
    v = np.asarray([a for a in v if np.isfinite(a)], dtype=np.float64)
    return float(v.max()) if v.size else np.nan


def _nanmin(v) -> float:
    v = np.asarray([a for a in v if np.isfinite(a)], dtype=np.float64)
    return float(v.min()) if v.size else np.nan


def _nansum_required(a: float, b: float) -> float:
    return float(a + b) if np.isfinite(a) and np.isfinite(b) else np.nan
