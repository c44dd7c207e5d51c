"""Combining readings: a lead's confidence over its cells, the edges of a cell left out, rows moved onto each
other's beats, and a lead printed more than once (lead II in a row and in the rhythm strip) brought onto one
time axis and averaged."""
from __future__ import annotations

import warnings

import numpy as np

from ..geometry import PageGeometry
from ..layouts import canonical_lead_name, lead_index
from .cells import RowCell, beat_activity
from .readout import row_samples
from .types import ExtractParams, RowTrace


def cell_confidence(rt: RowTrace, cell: RowCell, good: np.ndarray, px_per_sample: float) -> float:
    """Evidence for one cell: the fraction of its samples read off the trace, less the fraction of its
    columns where the trace merges with another row's (there only one edge of the run is its own)."""
    if good.size == 0:
        return 0.0
    p0 = cell.start_on_row()
    a = int(np.floor(rt.x_first + p0 * px_per_sample)) - rt.col0
    b = int(np.ceil(rt.x_first + (p0 + cell.end - cell.start - 1) * px_per_sample)) - rt.col0 + 1
    cols = rt.shared[max(a, 0):max(min(b, rt.shared.size), 0)]
    shared = float(cols.mean()) if cols.size else 0.0
    return float(good.mean()) * (1.0 - shared)


def trim_cell_edges(vals: np.ndarray, page_start: int, row_cell_starts: list[int], num: int) -> np.ndarray:
    """A cell's readings with `num` samples left out (NaN) at each end that touches another cell of its row.
    There the pen jumps from one lead to the next, and ECG-Image-Kit prints a separator bar: the map's column
    holds both, and the first and last samples are read off the jump or the bar (one record's V2 began at
    +0.2 mV for -2.1). An empty sample costs its share of coverage, a wrong one far more (eik-dev/lowdpi, 33
    pages, segmenter maps: 2 samples at 100 Hz: +0.2 dB under 100 dpi, +0.8 dB at 100-150 dpi)."""
    if num <= 0 or vals.size <= 4 * num:
        return vals
    out = vals.copy()
    if page_start > 0 and page_start in row_cell_starts:
        out[:num] = np.nan
    if page_start + vals.size in row_cell_starts:
        out[-num:] = np.nan
    return out


def shift_samples(v: np.ndarray, lag: int) -> np.ndarray:
    """v moved later by lag samples (earlier for a negative lag), NaN where nothing moved in."""
    out = np.full(v.shape, np.nan)
    if lag >= 0:
        out[lag:] = v[:v.size - lag]
    else:
        out[:lag] = v[-lag:]
    return out


def reading_lag(base: np.ndarray, v: np.ndarray, max_lag: int, min_overlap: int = 10) -> tuple[int, float]:
    """(lag, correlation): the shift of v (shift_samples) within +-max_lag that correlates best with base over
    their common samples; (0, NaN) when no shift leaves min_overlap common samples with some variation."""
    best_lag, best_corr = 0, float("nan")
    for lag in range(-max_lag, max_lag + 1):
        s = shift_samples(v, lag)
        ok = np.isfinite(s) & np.isfinite(base)
        if ok.sum() < min_overlap:
            continue
        a, b = s[ok] - s[ok].mean(), base[ok] - base[ok].mean()
        den = float(np.sqrt((a * a).sum() * (b * b).sum()))
        if den <= 0:
            continue
        corr = float((a * b).sum()) / den
        if not corr <= best_corr:  # also the first finite value
            best_lag, best_corr = lag, corr
    return best_lag, best_corr


def combine_readings(reads: list[np.ndarray], max_lag: int = 0, min_corr: float = 0.5) -> np.ndarray:
    """One lead printed more than once (lead II in a row and in the rhythm strip): the longest reading
    leads, the others are moved onto its time axis (the best shift within +-max_lag samples) and to its level
    (rows have their own baseline estimates) and averaged in; one that then correlates less than min_corr
    with it is left out.

    Rows read their time axes apart: on eik-dev pages the row's stretch of lead II sat a few samples off the
    strip's often enough that averaging the two cost lead II 3.4 dB (clean, 24 pages; 00041: 28.0 dB for the
    strip alone, 8.8 averaged), while each alone scored alike."""
    reads = sorted(reads, key=lambda v: -np.isfinite(v).sum())
    base = reads[0]
    total = np.where(np.isfinite(base), base, 0.0)
    count = np.isfinite(base).astype(np.float64)
    for v in reads[1:]:
        if max_lag > 0:
            lag, corr = reading_lag(base, v, max_lag)
            if not corr >= min_corr:
                continue
            v = shift_samples(v, lag)
        both = np.isfinite(v) & np.isfinite(base)
        if both.sum() >= 3:
            v = v - np.median(v[both] - base[both])
        ok = np.isfinite(v)
        total[ok] += v[ok]
        count[ok] += 1
    out = np.full(base.shape, np.nan)
    out[count > 0] = total[count > 0] / count[count > 0]
    return out


def qrs_envelope(values: np.ndarray, cell_starts: list[int], fs_hz: float) -> np.ndarray:
    """Where a row's QRS complexes are: its beat activity (cells.beat_activity) above each cell's median (the
    slope of noise and of the slow waves), scaled by the cell's 95th percentile (a row's cells are different
    leads, of different sizes); NaN where the row is unread."""
    v = np.asarray(values, dtype=np.float64)
    env = beat_activity(v, fs_hz)
    env[~np.isfinite(v)] = np.nan
    bounds = sorted({0, v.size, *[c for c in cell_starts if 0 < c < v.size]})
    for a, b in zip(bounds[:-1], bounds[1:]):
        part = env[a:b]
        if np.isfinite(part).sum() < 0.1 * fs_hz:
            env[a:b] = np.nan
            continue
        floor, top = np.nanpercentile(part, [50, 95])
        env[a:b] = np.maximum(part - floor, 0.0) / (top - floor) if top > floor else np.nan
    return env


def align_rows_on_beats(row_values: dict[int, np.ndarray], rows: list[RowTrace], fs_hz: float, max_lag_s: float,
                        min_lag_s: float, min_corr: float = 0.5, min_gain: float = 0.05) -> dict[int, int]:
    """The rows of a page print the same instants, so their QRS complexes come together (within the few tens
    of ms by which leads differ). A row whose complexes come min_lag_s or more off the other rows' is moved
    onto them (row_values in place): real photos had whole rows read 50-110 ms late (02694 row 2, 02780, 03259)
    where their starts were misread, which the scorer forgives lead by lead but the classifier's measurements,
    taken at the same instants in every lead, do not. One row at a time, the surest first, each against the
    mean of the others. Returns {row: lag applied (samples, shift_samples' sign)}."""
    envs = {r: qrs_envelope(v, rows[r].cell_starts, fs_hz) for r, v in row_values.items()}
    envs = {r: e for r, e in envs.items() if np.isfinite(e).sum() >= fs_hz}
    max_lag = int(round(max_lag_s * fs_hz))
    min_lag = max(1, int(round(min_lag_s * fs_hz)))
    applied: dict[int, int] = {}
    while len(envs) >= 3 and len(applied) < len(envs):
        best = None
        for r, e in envs.items():
            if r in applied:
                continue
            others = [envs[o] for o in envs if o != r]
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                ref = np.nanmean(np.stack(others), axis=0)
            lag, corr = reading_lag(ref, e, max_lag, min_overlap=int(fs_hz))
            _, corr0 = reading_lag(ref, e, 0, min_overlap=int(fs_hz))
            if abs(lag) < min_lag or not corr >= min_corr or not corr - corr0 >= min_gain:
                continue
            if best is None or corr - corr0 > best[2]:
                best = (r, lag, corr - corr0)
        if best is None:
            break
        r, lag, _ = best
        row_values[r] = shift_samples(row_values[r], lag)
        envs[r] = shift_samples(envs[r], lag)
        applied[r] = lag
    return applied


def read_leads(cells: list[RowCell], rows: list[RowTrace], lead_names: list[str], fs_hz: float,
               px_per_sample: float, num_samples: int, width_px: float, pen_width_px: float,
               geometry: PageGeometry, params: ExtractParams) -> tuple[np.ndarray, dict[str, float]]:
    """(signal, confidence): every cell's stretch of its row read out (readout.row_samples, once per row), its
    evidence weighed (cell_confidence; a lead's confidence is its cells' mean, by length), the cells with too
    little evidence or an implausible amplitude left out, and each lead's readings combined
    (combine_readings). signal: (num_samples, len(lead_names)) mV, NaN where no reading is kept."""
    readings: dict[int, list[np.ndarray]] = {}
    conf_num = {canonical_lead_name(n): 0.0 for n in lead_names}
    conf_den = {canonical_lead_name(n): 0.0 for n in lead_names}
    row_values: dict[int, np.ndarray] = {}
    for cell in cells:
        if lead_index(lead_names, cell.lead) is not None and cell.row not in row_values:
            row_values[cell.row] = row_samples(rows[cell.row], px_per_sample, num_samples, width_px, geometry,
                                               params.refine, pen_width_px)
    if params.beat_lag_max_s is not None:
        align_rows_on_beats(row_values, rows, fs_hz, params.beat_lag_max_s, params.beat_lag_min_s)
    for cell in cells:
        j = lead_index(lead_names, cell.lead)
        if j is None:
            continue
        rt = rows[cell.row]
        p0 = cell.start_on_row()
        vals = cell.sign * row_values[cell.row][p0:p0 + cell.end - cell.start]
        if vals.size < cell.end - cell.start:  # a stretch running past the row's time axis
            vals = np.concatenate([vals, np.full(cell.end - cell.start - vals.size, np.nan)])
        good = np.isfinite(vals)
        key = canonical_lead_name(cell.lead)
        conf = cell_confidence(rt, cell, good, px_per_sample)
        vals = trim_cell_edges(vals, p0, rt.cell_starts, int(round(params.cell_edge_s * fs_hz)))
        conf_num[key] += conf * (cell.end - cell.start)
        conf_den[key] += float(cell.end - cell.start)
        if conf < params.min_confidence or (good.any() and np.nanmax(np.abs(vals)) > params.max_abs_mv):
            continue
        full = np.full(num_samples, np.nan)
        full[cell.start:cell.end] = vals
        readings.setdefault(j, []).append(full)
    signal = np.full((num_samples, len(lead_names)), np.nan)
    for j, reads in readings.items():
        signal[:, j] = combine_readings(reads, max_lag=int(round(params.combine_max_lag_s * fs_hz)))
    confidence = {k: (conf_num[k] / conf_den[k] if conf_den[k] > 0 else 0.0) for k in conf_num}
    return signal, confidence
