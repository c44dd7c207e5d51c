"""Each row's place in time: which of its inked columns hold its first and last samples, where its
calibration pulse is (and the page's gain the pulses agree on), rows printed side by side put on one start,
and the sub-pixel sample phase found by the polyline fit's cost.

A row's samples lie at x_first + k * px_per_sample. The ink's first and last columns give x_first to about
a pixel (the pen reaches half a trace width beyond the end samples, a map may lose the first columns, the
calibration pulse's falling stroke is where ECG-Image-Kit draws sample 0); the fit's cost gives the rest.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..geometry import PageGeometry
from .pulse import PulseInfo, find_pulse
from .readout import PHASE_SEARCH_FIT_ITERS, fit_row, probe_row
from .runs import Runs
from .types import RowTrace, empty_row

# A trace speck at a row's end no longer than this (and 3x as far from the rest) is not part of the row.
STRAY_MM = 2.5

# A row's ink shorter than its record by more than END_TRUST_PX (px) and at most START_LOSS_MAX_SHARE of it
# has lost its start (see row_time_span): up to a calibration pulse's width (0.2 s of 10 s).
END_TRUST_PX = 1.0
START_LOSS_MAX_SHARE = 0.02
# Ink spanning the record to within this (px, or share of the record if more) places the row symmetrically by
# its two ends: quantisation and the map's edges move each end by a pixel or two, never more
SYMMETRIC_TOL_PX = 3.0
SYMMETRIC_TOL_SHARE = 0.005


def _first_last(valid: np.ndarray, min_len: int = 3, stray_px: float = 0.0) -> tuple[int, int] | None:
    """First and last index of stretches of at least min_len consecutive True values.

    With stray_px > 0, a stretch at either end no longer than stray_px and set apart from the rest by a gap
    of at least 3 * stray_px is left out: a speck at the page edge (a photo's border, the dark wedge of a
    turned scan) must not stretch the row, whose ends fix its time axis."""
    if not valid.any():
        return None
    d = np.diff(np.concatenate([[0], valid.astype(np.int8), [0]]))
    s = np.nonzero(d == 1)[0]
    e = np.nonzero(d == -1)[0]
    keep = (e - s) >= min_len
    if not keep.any():
        keep = (e - s) == (e - s).max()
    s, e = s[keep], e[keep]
    if stray_px > 0:
        while len(s) >= 2 and e[0] - s[0] <= stray_px and s[1] - e[0] >= 3 * stray_px:
            s, e = s[1:], e[1:]
        while len(s) >= 2 and e[-1] - s[-1] <= stray_px and s[-1] - e[-2] >= 3 * stray_px:
            s, e = s[:-1], e[:-1]
    return int(s[0]), int(e[-1] - 1)


def row_end_columns(runs: Runs, chosen: np.ndarray, min_rel: float) -> np.ndarray:
    """bool (R, W): columns whose tracked run may be a row's first or last: not shorter than the tracker's
    speck length. The row's ends fix its time axis, and the tracker now follows a faint trace's thin runs
    (rows.speck_runs); one such run beyond the row's end (a zero-length wisp of the map) moved every row's
    start and the timing search with it (eik-dev/lowdpi 00184: -3.6 dB)."""
    ok = chosen >= 0
    if min_rel <= 0 or not len(runs):
        return ok
    min_len = min_rel * float(np.median(runs.length))
    return ok & (runs.length[np.maximum(chosen, 0)] >= min_len)


@dataclass(frozen=True)
class TrackedRows:
    """The page's tracked rows (R rows, W page columns), as rows.track_rows and rows.resolve_shared leave them."""

    centres: np.ndarray  # (R,) y of each row's centre line
    top: np.ndarray  # (R, W) each row's run edges per column, NaN = none
    bot: np.ndarray
    shared: np.ndarray  # bool (R, W): the run is shared with another row
    w_top: np.ndarray  # (R, W) weight of each column's top edge as evidence (0 where shared from below)
    w_bot: np.ndarray
    ends_ok: np.ndarray  # bool (R, W): columns that may be a row's first or last (row_end_columns)


@dataclass(frozen=True)
class PageAxis:
    """What places a row's samples on the page."""

    image_rgb: np.ndarray | None  # the page, where the calibration pulses are looked for (None: the map's)
    geometry: PageGeometry
    skew: float  # residual tilt sheared out of the runs (dy/dx), about column x_mid
    x_mid: float
    width_px: float  # trace thickness (rows.trace_width)
    px_per_sample: float
    num_samples: int


def build_row(r: int, rows: TrackedRows, axis: PageAxis) -> RowTrace:
    """Row r: its tracked stretch, its calibration pulse (cut off when the trace map holds it) and the x of
    its first and last sample."""
    geometry, skew, x_mid = axis.geometry, axis.skew, axis.x_mid
    top, bot, ends_ok = rows.top[r], rows.bot[r], rows.ends_ok[r]
    stray_px = STRAY_MM * geometry.px_per_mm_x
    span = _first_last(np.isfinite(top) & ends_ok, stray_px=stray_px)
    if span is None:
        return empty_row(rows.centres[r])
    c0, c1 = span
    t, b = top[c0:c1 + 1].copy(), bot[c0:c1 + 1].copy()
    # the pulse is looked for in the page image, which is not sheared
    unshear = skew * (c0 - x_mid)
    pulse = find_pulse(t + unshear, b + unshear, c0, axis.image_rgb, rows.centres[r] + unshear, geometry)
    if pulse is not None and skew:
        back = skew * (pulse.fall_x - x_mid)
        pulse = replace(pulse, baseline_y=pulse.baseline_y - back, top_y=pulse.top_y - back)
    cut_by_pulse = False
    if pulse is not None and _mask_has_pulse(t, b, c0, pulse, geometry):
        # the trace map holds the pulse too: the signal starts at its falling stroke
        t[: int(np.floor(pulse.fall_x)) + 1 - c0] = np.nan
        span = _first_last(np.isfinite(t) & ends_ok[c0:c1 + 1], stray_px=stray_px)
        if span is None:
            return empty_row(rows.centres[r])
        c0, c1 = c0 + span[0], c0 + span[1]
        cut_by_pulse = True
    x_first, x_last = row_time_span(c0, c1, axis.width_px, axis.px_per_sample, axis.num_samples,
                                    cut_start=cut_by_pulse)
    sl = slice(c0, c1 + 1)
    return RowTrace(rows.centres[r], np.nan, x_first, x_last, top[sl].copy(), bot[sl].copy(), c0,
                    rows.shared[r][sl], rows.w_top[r][sl], rows.w_bot[r][sl], pulse)


def _mask_has_pulse(top: np.ndarray, bot: np.ndarray, col0: int, pulse: PulseInfo, geometry: PageGeometry) -> bool:
    """Whether the tracked runs contain the pulse's rising stroke (a tall run at the pulse's start)."""
    a = int(round(pulse.x0)) - col0
    z = int(round(pulse.fall_x)) - col0
    if z <= 0 or a >= top.size:
        return False
    seg_len = (bot - top)[max(a - 2, 0):max(min(z, top.size), 0)]
    return bool(np.any(seg_len >= 0.5 * pulse.height_px))


def row_time_span(c0: int, c1: int, width_px: float, px_per_sample: float, num_samples: int,
                  cut_start: bool = False) -> tuple[float, float]:
    """x of a row's first and last sample from its first and last inked columns.

    The pen reaches about half a trace width beyond the end samples. When the row spans the whole record
    (every standard layout's rows do), its two ends give the start symmetrically and the pen's reach
    cancels: x_first = (c0 + c1 - (N - 1) * px_per_sample) / 2. A row whose ink is shorter than the record
    by more than END_TRUST_PX (and by at most a pulse's width) lost columns at its start, not its end: the trace
    begins at the foot of the calibration pulse's falling stroke (ECG-Image-Kit draws sample 0 exactly
    there), which the map leaves out or the pulse cut takes, so the row's end places it (eik-dev clean 00010:
    four rows' ink began 1-10 px late, ends within 1 px, and the symmetric start put every lead 20 ms early;
    00051: 11-13 px lost, beyond the symmetric rule's 0.5 %, and the ink's first column put them 60 ms early)."""
    x_first = c0 - 0.5 + 0.5 * width_px
    x_last = c1 + 0.5 - 0.5 * width_px
    full = (num_samples - 1) * px_per_sample
    short = full - (x_last - x_first)
    if END_TRUST_PX < short <= START_LOSS_MAX_SHARE * full:
        x_first = x_last - full
    elif abs(short) <= max(SYMMETRIC_TOL_PX, SYMMETRIC_TOL_SHARE * full):
        x_first = x_last - full if cut_start else 0.5 * (c0 + c1 - full)
        x_last = x_first + full
    return x_first, x_last


def apply_pulse_gain(rows: list[RowTrace], geometry: PageGeometry) -> PageGeometry:
    """The calibration pulses say the gain (1 mV = 5, 10 or 20 mm); the grid stays the ruler. The most
    frequent gain wins; a tie goes to the standard 10 mm/mV when it is among the winners, and a
    non-standard gain needs two pulses and a third of the rows (one misread pulse must not halve or double
    a whole page; on tightly packed pages, 12x1, most pulses are not found and two misread ones must not
    decide either). A pulse that disagrees with the page's gain was misread and is not trusted for the zero
    line either."""
    gains = [rt.pulse.mm_per_mv for rt in rows if rt.pulse is not None]
    if not gains:
        return geometry
    values, counts = np.unique(gains, return_counts=True)
    winners = values[counts == counts.max()]
    gain = float(geometry.mm_per_mv if geometry.mm_per_mv in winners else winners[0])
    traced = sum(1 for rt in rows if np.isfinite(rt.x_first))
    if gain != geometry.mm_per_mv and counts.max() >= max(2, traced / 3.0):
        geometry = replace(geometry, mm_per_mv=gain)
    for rt in rows:
        if rt.pulse is not None and rt.pulse.mm_per_mv != geometry.mm_per_mv:
            rt.pulse = None
    return geometry


def align_row_starts(rows: list[RowTrace], skew: float, y_mid: float, tol_px: float, late_px: float | None = None
                     ) -> None:
    """Rows printed side by side start together: average the starts that agree (less quantisation) and
    give them one timing search; a row starting later than the others is put on their time axis. A residual
    tilt moves each row's start along x by its height times the lean, so starts are compared with that removed.
    Where no two starts agree (a curled photo's rows, straightened to a few pixels), a row starting more than
    late_px (default 5 tol_px) after the rows' median start is put on that median (real photo 03424: the
    strip's first 50 px lay outside the photo, and lead II's two readings fell 0.25 s apart). A row starting
    earlier than the agreeing majority (its end lost, see row_time_span) is put on their start too."""
    lean = -skew  # dx/dy of a printed vertical line
    starts = np.array([rt.x_first - lean * (rt.centre_y - y_mid) for rt in rows])
    for i, rt in enumerate(rows):
        rt.start_group = i
    fin = np.isfinite(starts)
    if fin.sum() < 2:
        return
    agree = fin & (np.abs(starts - np.median(starts[fin])) <= tol_px)
    if agree.sum() < 2:
        median = float(np.median(starts[fin]))
        late = 5.0 * tol_px if late_px is None else late_px
        for rt, s in zip(rows, starts):
            if np.isfinite(s) and s > median + late:
                rt.x_first = median + lean * (rt.centre_y - y_mid)
        return
    common = float(np.mean(starts[agree]))
    for rt, a, s in zip(rows, agree, starts):
        new_first = common + lean * (rt.centre_y - y_mid)
        if a:
            rt.x_last += new_first - rt.x_first
            rt.x_first = new_first
            rt.start_group = -1
        elif np.isfinite(s) and s > common + tol_px:
            # a row whose first stretch is missing (not printed, erased, not segmented) is on the page's time
            # axis all the same: its samples are counted from the common start, its end stays where it is
            rt.x_first = new_first
            rt.start_group = -1
        elif np.isfinite(s) and s < common - tol_px and 2 * agree.sum() > fin.sum():
            # a row placed by its end (row_time_span) whose end was lost (a photo's faded or cut-off last
            # beats): the majority's start holds (real photo 01109: row 1 placed 21 px early, +108 ms)
            rt.x_last += new_first - rt.x_first
            rt.x_first = new_first
            rt.start_group = -1


def refine_sample_phase(rows: list[RowTrace], px_per_sample: float, num_samples: int, width_px: float,
                        steps: int = 8, pen_width_px: float | None = None) -> None:
    """Sub-pixel timing. A plotted polyline has its corners (QRS peaks) exactly at samples, so the fit
    cost, as a function of where the samples sit, is lowest at the true sample phase; it is periodic in
    one sample spacing (an integer lag is left to the scorer's alignment). The mask's first column only
    gives the start to about a pixel, worth ~10 dB at 100 Hz. Rows sharing a start share the search."""
    groups: dict[int, list[RowTrace]] = {}
    for rt in rows:
        if np.isfinite(rt.x_first) and rt.top.size > 10:
            groups.setdefault(rt.start_group, []).append(rt)
    for members in groups.values():
        probe = probe_row(members)
        if probe is None:
            continue
        x0 = probe.x_first
        deltas = (np.arange(steps) - steps // 2) * px_per_sample / steps
        costs = np.array([fit_row(probe, x0 + d, px_per_sample, num_samples, width_px, PHASE_SEARCH_FIT_ITERS,
                                  pen_width_px)[2] for d in deltas])
        if not np.all(np.isfinite(costs)):
            continue
        i = int(np.argmin(costs))
        a, b, c = costs[(i - 1) % steps], costs[i], costs[(i + 1) % steps]
        den = a - 2 * b + c
        frac = 0.5 * (a - c) / den if den > 0 else 0.0
        shift = deltas[i] + float(np.clip(frac, -0.5, 0.5)) * px_per_sample / steps
        for rt in members:
            rt.x_shift = shift
            rt.x_first += shift
            rt.x_last += shift
