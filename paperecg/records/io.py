"""Record files on disk: discovery, header/signal/label reading and writing (WFDB).

The only module that touches .hea/.dat files. Everyone else receives numbers in units (mV, Hz, samples).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .header import (
    LABELS_PREFIX,
    HeaderInfo,
    get_adc_gains,
    get_baselines,
    get_comment_lines,
    get_num_signals,
    get_sampling_frequency,
    get_signal_files_from_header,
    get_signal_formats,
    get_signal_names,
    get_signal_units,
    parse_header,
)



def find_records(folder: str | os.PathLike) -> list[str]:
    """Every '*.hea' under folder, recursively, as sorted relative paths without extension."""
    folder = str(folder)
    records = set()
    for root, _dirs, files in os.walk(folder):
        for name in files:
            if os.path.splitext(name)[1] == ".hea":
                records.add(os.path.relpath(os.path.join(root, name), folder)[:-4])
    return sorted(records)


def header_path(record: str | os.PathLike) -> str:
    record = str(record)
    return record if record.endswith(".hea") else record + ".hea"


def load_text(path: str | os.PathLike) -> str:
    with open(path, "r") as f:
        return f.read()


def save_text(path: str | os.PathLike, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def load_header(record: str | os.PathLike) -> str:
    return load_text(header_path(record))


def load_header_info(record: str | os.PathLike) -> HeaderInfo:
    return parse_header(load_header(record))


def signal_files_exist(record: str | os.PathLike) -> bool:
    header = load_header(record)
    folder = os.path.dirname(str(record))
    files = get_signal_files_from_header(header)
    return bool(files) and all(os.path.isfile(os.path.join(folder, f)) for f in files)


def load_signal(record: str | os.PathLike) -> tuple[np.ndarray | None, dict | None]:
    """(signal in physical units, float64 (num_samples, num_leads), NaN where invalid; wfdb fields),
    or (None, None) when the record has no signal file."""
    import wfdb

    if not signal_files_exist(record):
        return None, None
    signal, fields = wfdb.rdsamp(str(record))
    return np.asarray(signal, dtype=np.float64), fields


def image_paths(record: str | os.PathLike, info: HeaderInfo | None = None) -> list[str]:
    """Absolute-ish paths of the images a header names (relative to the header's folder)."""
    info = info or load_header_info(record)
    folder = os.path.dirname(str(record))
    return [os.path.join(folder, name) for name in info.image_files]


# --- writing --------------------------------------------------------------------------------------------

# Digital sample range of each WFDB storage format (WFDB's signal(5) manual). The lowest value of a format is
# its invalid-sample marker (NaN), so finite samples must stay at least one count above it.
FORMAT_DIGITAL_RANGE = {
    "80": (-(2**7), 2**7 - 1), "508": (-(2**7), 2**7 - 1),
    "310": (-(2**9), 2**9 - 1), "311": (-(2**9), 2**9 - 1),
    "212": (-(2**11), 2**11 - 1),
    "16": (-(2**15), 2**15 - 1), "61": (-(2**15), 2**15 - 1), "160": (-(2**15), 2**15 - 1),
    "516": (-(2**15), 2**15 - 1),
    "24": (-(2**23), 2**23 - 1), "524": (-(2**23), 2**23 - 1),
    "32": (-(2**31), 2**31 - 1),
}
DEFAULT_FORMAT = "16"
DEFAULT_GAIN = 1000.0  # counts per mV, the challenge's


def storable_counts(fmt: str | None) -> tuple[int, int]:
    """(lowest, highest) digital value a finite sample may take in format `fmt` (the marker excluded);
    an unknown format is treated as 16-bit."""
    lo, hi = FORMAT_DIGITAL_RANGE.get(str(fmt), FORMAT_DIGITAL_RANGE[DEFAULT_FORMAT])
    return lo + 1, hi


def storable_range(adc_gains: list[float | None], baselines: list[int | None] | None = None,
                   formats: list[str | None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per lead, the lowest and highest physical value (e.g. mV) whose stored sample
    round(value * gain + baseline) fits the lead's format. A missing gain counts as 1000, a missing
    baseline as 0, a missing format as 16."""
    n = len(adc_gains)
    baselines = list(baselines or []) + [0] * n
    formats = list(formats or []) + [DEFAULT_FORMAT] * n
    lows, highs = np.empty(n), np.empty(n)
    for j, gain in enumerate(adc_gains):
        g = float(gain) if gain else DEFAULT_GAIN
        b = float(baselines[j] or 0)
        lo_counts, hi_counts = storable_counts(formats[j])
        # exactly the storable counts: float error there (~1e-12 counts) cannot round past them
        a, c = (lo_counts - b) / g, (hi_counts - b) / g
        lows[j], highs[j] = min(a, c), max(a, c)
    return lows, highs


def sanitize_signal(signal, num_samples: int, num_leads: int, adc_gains: list[float] | None = None,
                    baselines: list[int] | None = None, formats: list[str] | None = None) -> np.ndarray:
    """Make any array-like safe for the organizers' save step.

    Returns float64 of shape (num_samples, num_leads): NaN where missing, ±Inf turned to NaN, finite values
    clipped so that each lead's stored sample round(value * gain + baseline) fits its format (default: gain
    1000, baseline 0, format 16). A wrong shape becomes all NaN rather than a crash (a 1-D array of the
    right length fills one lead only if num_leads == 1).
    """
    out = np.full((max(int(num_samples), 1), max(int(num_leads), 1)), np.nan, dtype=np.float64)
    try:
        arr = np.asarray(signal, dtype=np.float64)
    except (TypeError, ValueError):
        return out
    if arr.ndim == 1 and out.shape[1] == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[1] != out.shape[1]:
        return out
    n = min(arr.shape[0], out.shape[0])
    out[:n] = arr[:n]
    out[~np.isfinite(out)] = np.nan
    gains = list(adc_gains or [])
    if len(gains) != out.shape[1]:  # no usable per-lead gains: the challenge's for every lead
        gains, baselines, formats = [DEFAULT_GAIN] * out.shape[1], None, None
    lows, highs = storable_range(gains, baselines, formats)
    np.clip(out, lows, highs, out=out)
    return out


def save_step_accepts(header_text: str) -> bool:
    """Whether the organizers' save step (wfdb.wrsamp with this header's fields) can write a signal at all:
    at least one lead, a positive sampling rate, and a known format, a positive gain and an integer
    baseline on every signal line. When it cannot, run_models must return no signal (None) for the record,
    because that step runs outside the organizers' try/except and would stop their whole run."""
    names = get_signal_names(header_text)
    n = len(names)
    if n == 0 or (get_num_signals(header_text) or 0) != n:
        return False
    fs = get_sampling_frequency(header_text)
    if fs is None or not np.isfinite(fs) or fs <= 0:
        return False
    formats, gains, baselines = get_signal_formats(header_text), get_adc_gains(header_text), get_baselines(header_text)
    if not (len(formats) == len(gains) == len(baselines) == n):
        return False
    return (all(f in FORMAT_DIGITAL_RANGE for f in formats)
            and all(g is not None and np.isfinite(g) and g > 0 for g in gains)
            and all(b is not None for b in baselines))


def save_header(record: str | os.PathLike, header: str) -> None:
    save_text(header_path(record), header)


def save_signal(record: str | os.PathLike, signal: np.ndarray, comments: list[str] | None = None) -> None:
    """Write `signal` (physical units) next to an existing header `record`.hea, taking fs, formats, gains,
    baselines, units and lead names from that header (the organizers' save step)."""
    import wfdb

    header = load_header(record)
    folder, name = os.path.split(str(record))
    comments = [c.replace("#", "").strip() for c in (comments or [])]
    wfdb.wrsamp(
        name,
        fs=get_sampling_frequency(header),
        units=get_signal_units(header),
        sig_name=get_signal_names(header),
        p_signal=signal,
        fmt=get_signal_formats(header),
        adc_gain=get_adc_gains(header),
        baseline=get_baselines(header),
        comments=comments,
        write_dir=folder,
    )


def save_labels(record: str | os.PathLike, labels: list[str]) -> str:
    """Append '# Labels: A, B' to the record's header; returns the new header text."""
    header = load_header(record)
    header += LABELS_PREFIX + " " + ", ".join(labels) + "\n"
    save_header(record, header)
    return header


def save_outputs(output_record: str | os.PathLike, input_header: str, signal, labels) -> None:
    """What run_model.py does after run_models: header copy, then signal and labels when not None."""
    Path(os.path.dirname(str(output_record)) or ".").mkdir(parents=True, exist_ok=True)
    save_header(output_record, input_header)
    if signal is not None:
        save_signal(output_record, signal, get_comment_lines(input_header))
    if labels is not None:
        save_labels(output_record, labels)


def write_record(
    folder: str | os.PathLike,
    name: str,
    signal_mv: np.ndarray,
    fs_hz: float,
    lead_names: list[str],
    comments: list[str] | None = None,
    adc_gain: float = 1000.0,
) -> str:
    """Write a fresh WFDB record (format 16, given gain, baseline 0); returns the record path."""
    import wfdb

    os.makedirs(folder, exist_ok=True)
    n = len(lead_names)
    sig = np.asarray(signal_mv, dtype=np.float64)
    wfdb.wrsamp(
        name,
        fs=fs_hz,
        units=["mV"] * n,
        sig_name=list(lead_names),
        p_signal=sig,
        fmt=["16"] * n,
        adc_gain=[adc_gain] * n,
        baseline=[0] * n,
        comments=[c.replace("#", "").strip() for c in (comments or [])],
        write_dir=str(folder),
    )
    return os.path.join(str(folder), name)
