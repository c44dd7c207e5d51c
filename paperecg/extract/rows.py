"""Rows of traces: where each printed row's baseline lies, and which run in each column is its trace.

Rows are the peaks of a coverage profile (how many columns have trace pixels near each image row): an ECG
spends most of its time near the isoelectric line, so every printed row gives a sharp peak. Each row is
then followed column by column with a Viterbi path over the runs of that column: continuity (overlapping
runs cost nothing, a vertical jump costs its gap) keeps the path on its own trace through large QRS
excursions and through places where rows touch; a small ownership cost keeps it off the neighbours'
traces; a 'none' state lets it skip columns without evidence. Where rows cross (12x1: a tall QRS runs past
its neighbour's baseline, all rows' QRS at the same time), a row's candidates reach two row spacings, and a
second pass tracks each row against the other rows' paths instead of their centre lines
(`retrack_against_paths`). Where rows share a run (traces that touch or cross), `resolve_shared` gives each
row its own edges of it.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import find_peaks

from ..geometry import PageGeometry
from .runs import Runs


@dataclass
class TrackParams:
    gap_cost_per_px: float = 1.0  # cost of a vertical jump between runs of adjacent columns, per px
    own_cost: float = 4.0  # per column, for a run that sits a whole spacing closer to another row
    none_cost: float = 1.0  # per column without a chosen run
    enter_cost: float = 4.0  # starting a run after 'none' (discourages flickering onto noise)
    # Specks: an ink-sharpened map (extract/ink.py) leaves near-zero-length runs where grid lines cross the
    # segmenter's band. Lying inside a QRS stroke's range they cost no jump, so a row could step onto them
    # and cut the stroke's tip off (or cross onto a neighbour). Runs shorter than min_run_rel of the page's
    # median run length (a flat trace's thickness) are never tracked; up to short_rel they pay up to
    # short_cost per column, falling linearly with length. (Figures: docs/tuning.md, TrackParams.min_run_rel.)
    min_run_rel: float = 0.3
    short_rel: float = 0.7
    short_cost: float = 1.0
    # Rows that touch or cross (12x1: 13 rows 14 mm apart, QRS complexes at the same time in every row). A row's
    # candidates reach reach_rows row spacings up and down (a tall R wave runs past its neighbour's baseline),
    # and a second pass tracks each row against the others' first-pass paths, a run another row's path holds
    # costing claimed_cost per column unless it crosses the row's own line (free across it: the stroke's run
    # may be one long run through both lines). Rows far apart keep their band (max_reach_mm): uncapped, a
    # distorted 3x4 page's row reached two rows away and lost two leads. (Figures: docs/tuning.md,
    # TrackParams.reach_rows.)
    reach_rows: float = 2.0
    max_reach_mm: float = 30.0
    second_pass: bool = True
    claimed_cost: float = 2.0
    # Which short runs are specks (speck_mask): a phone photo's faint trace leaves thin runs over whole
    # stretches, which the rule above dropped. A short run is a speck when it lies inside a stroke up to
    # speck_reach_cols columns away or within beside_rel median lengths of a thicker run in its own column (a
    # grid line beside a flat trace); other short runs are trace, kept and not charged. None: every short run
    # is a speck. (Figures: docs/tuning.md, TrackParams.speck_reach_cols.)
    speck_reach_cols: int | None = 2
    beside_rel: float = 4.0


def coverage_profile(runs: Runs, half_height_px: float) -> np.ndarray:
    """For each image row, how many runs (extended by half_height_px up and down) cover it."""
    h = runs.height
    lo = np.clip(np.floor(runs.top - half_height_px).astype(np.int64), 0, h)
    hi = np.clip(np.ceil(runs.bot + half_height_px).astype(np.int64), 0, h)
    diff = np.zeros(h + 1)
    np.add.at(diff, lo, 1.0)
    np.add.at(diff, hi, -1.0)
    return np.cumsum(diff)[:h]


def find_row_centres(runs: Runs, px_per_mm: float, min_separation_mm: float = 6.0,
                     min_rel_height: float = 0.25, min_columns_s: float = 0.0) -> np.ndarray:
    """Image rows (float, sub-pixel) of the printed rows' isoelectric lines, top to bottom."""
    if len(runs) == 0:
        return np.zeros(0)
    cov = coverage_profile(runs, 1.0 * px_per_mm)
    cov = gaussian_filter1d(cov, sigma=max(0.5 * px_per_mm, 1.0))
    peak_max = float(cov.max())
    if peak_max <= 0:
        return np.zeros(0)
    height = max(min_rel_height * peak_max, min_columns_s)
    peaks, _ = find_peaks(cov, height=height, distance=max(1, int(min_separation_mm * px_per_mm)))
    out = []
    for p in peaks:  # parabolic sub-pixel peak
        if 0 < p < cov.size - 1:
            a, b, c = cov[p - 1], cov[p], cov[p + 1]
            den = a - 2 * b + c
            out.append(p + (0.5 * (a - c) / den if den < 0 else 0.0))
        else:
            out.append(float(p))
    return np.asarray(out, dtype=np.float64)


def row_bands(centres: np.ndarray, default_spacing_px: float) -> list[tuple[float, float]]:
    """Search band of each row: from the previous row's centre to the next one's."""
    bands = []
    for i, y in enumerate(centres):
        if i > 0:
            up = centres[i] - centres[i - 1]
        else:
            up = centres[1] - centres[0] if len(centres) > 1 else default_spacing_px
        down = centres[i + 1] - centres[i] if i + 1 < len(centres) else up
        bands.append((y - up, y + down))
    return bands


def reach_bands(centres: np.ndarray, default_spacing_px: float, reach_rows: float, max_reach_px: float
                ) -> list[tuple[float, float]]:
    """Search band of each row reaching `reach_rows` row spacings up and down, but no further than max_reach_px
    beyond its centre where that is more than a spacing (never less than `row_bands`). On tightly packed pages
    (12x1) a tall QRS stroke runs past its neighbour's centre; its tip lies only in a wider band. Rows far
    apart (3x4) keep their band: no QRS reaches two of their spacings."""
    def side(spacing_px: float) -> float:
        return max(spacing_px, min(reach_rows * spacing_px, max_reach_px))

    return [(float(c - side(c - lo)), float(c + side(hi - c))) for c, (lo, hi) in
            zip(centres, row_bands(centres, default_spacing_px))]


def speck_runs(runs: Runs, short: np.ndarray, reach_cols: int, margin_px: float) -> np.ndarray:
    """bool (K,): the short runs that lie inside another run's vertical extent, at least margin_px from both
    of its ends, in a column up to reach_cols away.

    A grid line crossing a tall stroke's band leaves its specks beside the stroke, inside the stroke's range:
    there they cost the row's path no jump and can cut the stroke's tip. A faint trace's thin runs continue
    the runs of neighbouring columns at their ends (a flat stretch, a peak's tip), never from inside them."""
    out = np.zeros(len(runs), dtype=bool)
    idx = np.nonzero(short)[0]
    if idx.size == 0 or len(runs) == 0:
        return out
    inner_top = runs.top + margin_px
    inner_bot = runs.bot - margin_px
    holds = np.nonzero(inner_bot > inner_top)[0]  # runs long enough to hold a speck inside
    if holds.size == 0:
        return out
    # runs of one column are disjoint and sorted by top: their inner intervals, keyed by column, sort globally
    stride = float(runs.height) + 4.0 * margin_px + 4.0
    lo = runs.col[holds] * stride + inner_top[holds]
    hi = runs.col[holds] * stride + inner_bot[holds]
    centre = runs.centre[idx]
    found = np.zeros(idx.size, dtype=bool)
    for d in range(-reach_cols, reach_cols + 1):
        if d == 0:
            continue
        q = (runs.col[idx] + d) * stride + centre
        k = np.searchsorted(lo, q, side="right") - 1
        found |= (k >= 0) & (q <= hi[np.maximum(k, 0)])
    out[idx[found]] = True
    return out


def beside_thicker(runs: Runs, idx: np.ndarray, thick: np.ndarray, reach_px: float) -> np.ndarray:
    """bool per run in idx: a run of its own column marked `thick` lies within reach_px of it (a grid line's
    thin run beside a trace: the line parallel to a flat stretch, two pixels off)."""
    if idx.size == 0:
        return np.zeros(0, dtype=bool)
    t = np.nonzero(thick)[0]
    if t.size == 0:
        return np.zeros(idx.size, dtype=bool)
    stride = float(runs.height) + 4.0 * reach_px + 4.0
    t_top = runs.col[t] * stride + runs.top[t]  # sorted (runs are sorted by column, then top)
    t_bot = runs.col[t] * stride + runs.bot[t]
    base = runs.col[idx] * stride
    below = np.searchsorted(t_top, base + runs.bot[idx], side="left")  # first thick run starting below
    ok_b = below < t.size
    near_below = ok_b & ((t_top[np.minimum(below, t.size - 1)] - base - runs.bot[idx]) <= reach_px)
    above = below - 1
    near_above = (above >= 0) & ((base + runs.top[idx] - t_bot[np.maximum(above, 0)]) <= reach_px)
    return near_below | near_above


def speck_mask(runs: Runs, in_band: np.ndarray, typical_len: float, params: TrackParams) -> np.ndarray:
    """bool (K,): the runs of the band that are grid-line specks rather than thin trace (see TrackParams)."""
    short = in_band & (runs.length < params.short_rel * typical_len)
    if params.speck_reach_cols is None:
        return short
    speck = speck_runs(runs, short, params.speck_reach_cols, typical_len)
    loose = np.nonzero(short & ~speck)[0]
    thick = in_band & ~short
    speck[loose[beside_thicker(runs, loose, thick, params.beside_rel * typical_len)]] = True
    return speck


def track_row(runs: Runs, row_index: int, centres: np.ndarray, band: tuple[float, float],
              params: TrackParams = TrackParams(), search: tuple[float, float] | None = None,
              claimed: np.ndarray | None = None) -> np.ndarray:
    """Index into `runs` of the run chosen in each column for row `row_index` (-1 = none), shape (W,).
    Candidates are the runs reaching into `search` (default: `band`, which sets the ownership scale).
    claimed: bool per run, taken by another row's path (`retrack_against_paths`); given, a run pays the
    ownership cost only when another row's path holds it and it does not cross this row's own line, not for
    lying near another row's centre."""
    chosen = np.full(runs.width, -1, dtype=np.int64)
    typical_len = float(np.median(runs.length)) if len(runs) else 0.0
    lo, hi = band if search is None else search
    in_band = (runs.bot > lo) & (runs.top < hi)
    # off for maps at the page's resolution (extract/core.py tracking_for)
    priced = params.min_run_rel > 0 or params.short_cost > 0
    speck = speck_mask(runs, in_band, typical_len, params) if priced else np.zeros(len(runs), dtype=bool)
    sel = np.nonzero(in_band & ~(speck & (runs.length < params.min_run_rel * typical_len)))[0]
    if sel.size == 0:
        return chosen
    y_row = centres[row_index]
    spacing = max(0.5 * (band[1] - band[0]), 1.0)
    centre = runs.centre[sel]
    d_own = np.abs(centre - y_row)
    others = np.delete(centres, row_index)
    d_other = np.abs(centre[:, None] - others[None, :]).min(axis=1) if others.size else np.full(sel.size, np.inf)
    if claimed is None:
        unary = params.own_cost * np.maximum(0.0, d_own - d_other) / spacing + 0.05 * d_own / spacing
    else:
        # a run across the row's own line is its way through a crossing, whoever else holds it
        across = (runs.top[sel] <= y_row) & (runs.bot[sel] >= y_row)
        unary = params.claimed_cost * (claimed[sel] & ~across) + 0.05 * d_own / spacing
    if params.short_cost > 0 and params.short_rel * typical_len > 0:
        shortness = np.where(speck[sel], 1.0 - runs.length[sel] / (params.short_rel * typical_len), 0.0)
        unary = unary + params.short_cost * np.clip(shortness, 0.0, 1.0)
    unary = unary.tolist()
    tops = runs.top[sel].tolist()
    bots = runs.bot[sel].tolist()
    cols = runs.col[sel]
    # entries: one per column holding candidates, plus an empty entry for each stretch without any
    bounds = np.nonzero(np.diff(cols))[0] + 1
    starts = np.concatenate([[0], bounds]).tolist()
    ends = np.concatenate([bounds, [cols.size]]).tolist()
    entries: list[tuple[list[int], int]] = []  # (local run indices, columns covered)
    prev_col = None
    for a, b in zip(starts, ends):
        c = int(cols[a])
        if prev_col is not None and c > prev_col + 1:
            entries.append(([], c - prev_col - 1))
        entries.append((list(range(a, b)), 1))
        prev_col = c

    gap_w, none_c, enter_c = params.gap_cost_per_px, params.none_cost, params.enter_cost
    # state 0 = none, state j>0 = the entry's (j-1)-th run; back[e][j] = previous entry's state
    back: list[list[int]] = []
    prev_cost = [0.0]
    prev_runs: list[int] = []
    for cur, ncols in entries:
        best = min(prev_cost)
        costs = [best + none_c * ncols]
        bps = [prev_cost.index(best)]
        for r in cur:
            tj, bj = tops[r], bots[r]
            bc, bi = prev_cost[0] + enter_c, 0
            for i, q in enumerate(prev_runs, start=1):
                gap = max(tj - bots[q], tops[q] - bj)
                cost = prev_cost[i] + (gap * gap_w if gap > 0 else 0.0)
                if cost < bc:
                    bc, bi = cost, i
            costs.append(bc + unary[r])
            bps.append(bi)
        back.append(bps)
        prev_cost, prev_runs = costs, cur
    state = prev_cost.index(min(prev_cost))
    for e in range(len(entries) - 1, -1, -1):
        cur, _ = entries[e]
        if state > 0:
            local = cur[state - 1]
            chosen[int(cols[local])] = int(sel[local])
        state = back[e][state]
    return chosen


def retrack_against_paths(runs: Runs, centres: np.ndarray, chosen: np.ndarray, bands: list[tuple[float, float]],
                          search: list[tuple[float, float]], params: TrackParams = TrackParams()) -> np.ndarray:
    """Second pass of the row tracker, shape of `chosen`: each row tracked again with the other rows' first-pass
    paths in place of their centre lines. A run lying near a neighbour's centre but on no neighbour's path (the
    upper half of a tall R wave that runs past its neighbour's baseline on a 12x1 page) is then free to follow;
    a run a neighbour's path holds costs claimed_cost per column (crossings stay possible)."""
    out = chosen.copy()
    # a path takes at most one run per column and a run lies in one column: a row holds each run at most once
    held = np.bincount(chosen[chosen >= 0], minlength=len(runs))
    for r in range(centres.size):
        own = np.zeros(len(runs), dtype=np.int64)
        own[chosen[r][chosen[r] >= 0]] = 1
        out[r] = track_row(runs, r, centres, bands[r], params, search[r], held - own > 0)
    return out


# --- every row of a page: tracking, thickness, shared runs ------------------------------------------------

def track_rows(runs: Runs, centres: np.ndarray, geometry: PageGeometry, track: TrackParams
               ) -> tuple[np.ndarray, np.ndarray]:
    """Viterbi track of every row. Two neighbouring 'rows' that follow the same trace, or share one trace
    out side by side (one printed row split in two by baseline wander), are merged and re-tracked. Then every
    row is tracked once more against the other rows' paths (rows.retrack_against_paths: a tall QRS running past
    its neighbour's baseline is followed, a row no longer dips onto a neighbour's stroke)."""
    while True:
        bands = row_bands(centres, 20.0 * geometry.px_per_mm_y)
        search = reach_bands(centres, 20.0 * geometry.px_per_mm_y, track.reach_rows,
                             track.max_reach_mm * geometry.px_per_mm_y)
        chosen = np.stack([track_row(runs, i, centres, bands[i], track, search[i]) for i in range(centres.size)])
        merge = None
        for r in range(centres.size - 1):
            a, b = chosen[r] >= 0, chosen[r + 1] >= 0
            either = a | b
            distinct = a & b & (chosen[r] != chosen[r + 1])
            if not either.any():
                continue
            # two separate printed rows have two different traces in nearly every column; one trace
            # followed by both, or shared out side by side between them, is one row
            if distinct.sum() < 0.2 * either.sum():
                merge = r
                break
        if merge is None:
            if track.second_pass:
                chosen = retrack_against_paths(runs, centres, chosen, bands, search, track)
            return centres, chosen
        na, nb = (chosen[merge] >= 0).sum(), (chosen[merge + 1] >= 0).sum()
        merged = (centres[merge] * na + centres[merge + 1] * nb) / max(na + nb, 1)
        centres = np.concatenate([centres[:merge], [merged], centres[merge + 2:]])


def trace_width(runs: Runs, chosen: np.ndarray) -> float:
    """Trace thickness: mean run length where the trace is flat (centre moves < 0.5 px per column)."""
    lengths = []
    for ch in chosen:
        ok = ch >= 0
        both = ok[:-1] & ok[1:]
        c = np.where(ok, runs.centre[np.maximum(ch, 0)], np.nan)
        flat = both & (np.abs(np.diff(c)) < 0.5)
        sel = ch[:-1][flat]
        if sel.size:
            lengths.append(runs.length[sel])
    if not lengths:
        return 2.0
    allv = np.concatenate(lengths)
    return float(np.clip(np.mean(allv), 0.5, 50.0))


def resolve_shared(runs: Runs, chosen: np.ndarray, width_px: float
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-row run edges (R, W); where rows share one run (their traces touch), the upper row keeps the
    run's top edge and the lower row its bottom edge, each with one trace width.
    Returns top, bot, shared, w_top, w_bot (weights of each edge as evidence of the row's own trace)."""
    num_rows, w = chosen.shape
    ok = chosen >= 0
    top = np.where(ok, runs.top[np.maximum(chosen, 0)], np.nan)
    bot = np.where(ok, runs.bot[np.maximum(chosen, 0)], np.nan)
    shared = np.zeros_like(ok)
    w_top = ok.astype(np.float64)
    w_bot = ok.astype(np.float64)
    for r in range(num_rows):
        for q in range(num_rows):
            if q == r:
                continue
            same = ok[r] & (chosen[r] == chosen[q])
            if not same.any():
                continue
            shared[r] |= same
            if q > r:  # q is below: r keeps the top edge
                bot[r] = np.where(same, np.minimum(bot[r], top[r] + width_px), bot[r])
                w_bot[r][same] = 0.0
            else:
                top[r] = np.where(same, np.maximum(top[r], bot[r] - width_px), top[r])
                w_top[r][same] = 0.0
    _resolve_crossings(runs, chosen, width_px, top, bot, shared, w_top, w_bot)
    return top, bot, shared, w_top, w_bot


def _resolve_crossings(runs: Runs, chosen: np.ndarray, width_px: float, top: np.ndarray, bot: np.ndarray,
                       shared: np.ndarray, w_top: np.ndarray, w_bot: np.ndarray, reach_cols: int = 40) -> None:
    """Where one row's stroke (a QRS) crosses another row's trace, both rows take the same run, and the
    up/down split of `resolve_shared` would drag the crossed row along the stroke and cut the stroke at the
    crossed line. A row whose own line, interpolated between its nearest unshared columns on either side, lies
    well inside the shared run (more than 1.5 trace widths from both ends) is crossed: there it is given that
    interpolated line with no weight as evidence (the polyline fit bridges it), and the stroke's row keeps both
    edges of the run (`_stroke_rows_own_run`). In place. (Bridging alone, 12 eik-dev/12x1 oracle pages: +0.09 dB
    mean lead SNR. With the stroke's row owning the run, after the row tracker's second pass: see TrackParams.)"""
    crossed, line_y, flank = _crossed_columns(runs, chosen, width_px, shared, reach_cols)
    _stroke_rows_own_run(runs, chosen, crossed, flank, top, bot, w_top, w_bot)
    rows_i, cols_i = np.nonzero(crossed)
    top[rows_i, cols_i] = line_y[rows_i, cols_i] - 0.5 * width_px
    bot[rows_i, cols_i] = line_y[rows_i, cols_i] + 0.5 * width_px
    w_top[rows_i, cols_i] = 0.0
    w_bot[rows_i, cols_i] = 0.0


def _crossed_columns(runs: Runs, chosen: np.ndarray, width_px: float, shared: np.ndarray, reach_cols: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(crossed, line_y, flank_px), each (R, W): whether the row's interpolated line lies well inside its shared
    run there, that line, and the mean run length of the row's unshared columns on either side of the shared
    stretch (a flat line's thickness beside a crossed trace, a long stroke beside the crossing QRS)."""
    num_rows, w = chosen.shape
    ok = chosen >= 0
    margin = 1.5 * width_px
    crossed = np.zeros((num_rows, w), dtype=bool)
    line_y = np.full((num_rows, w), np.nan)
    flank = np.full((num_rows, w), np.nan)
    for r in range(num_rows):
        if not shared[r].any():
            continue
        own = ok[r] & ~shared[r]
        own_cols = np.nonzero(own)[0]
        if own_cols.size < 2:
            continue
        centre = 0.5 * (runs.top[chosen[r, own_cols]] + runs.bot[chosen[r, own_cols]])
        length = runs.length[chosen[r, own_cols]]
        d = np.diff(np.concatenate([[0], shared[r].astype(np.int8), [0]]))
        for a, b in zip(np.nonzero(d == 1)[0], np.nonzero(d == -1)[0]):
            i = np.searchsorted(own_cols, a)
            if i == 0 or i >= own_cols.size:
                continue
            left, right = own_cols[i - 1], own_cols[i]
            if a - left > reach_cols or right - (b - 1) > reach_cols:
                continue
            cols = np.arange(a, b)
            y = np.interp(cols, [left, right], [centre[i - 1], centre[i]])
            k = chosen[r, cols]
            inside = (y - runs.top[k] > margin) & (runs.bot[k] - y > margin)
            crossed[r, cols[inside]] = True
            line_y[r, cols] = y
            flank[r, cols] = 0.5 * (length[i - 1] + length[i])
    return crossed, line_y, flank


def _stroke_rows_own_run(runs: Runs, chosen: np.ndarray, crossed: np.ndarray, flank: np.ndarray, top: np.ndarray,
                         bot: np.ndarray, w_top: np.ndarray, w_bot: np.ndarray) -> None:
    """Where a crossed row shares its run with another row, the run is the other row's stroke: that row gets the
    run's two edges, both as evidence, instead of one edge and a trace width (which cut a tall 12x1 QRS at the
    line it crosses). When both rows' lines lie inside the run, the row with the longer runs beside it is the
    stroke: it is no longer counted as crossed. `crossed` is updated, the edges in place. (eik-dev/12x1, 32 pages,
    segmenter maps: 19.98 dB; always the upper row instead: 20.10, but that bridges a lower row's R wave
    through the upper row's line, as in tests/test_extract_units.py)"""
    num_rows = chosen.shape[0]
    for r in range(num_rows):
        for q in range(num_rows):
            if q == r:
                continue
            both = crossed[r] & crossed[q] & (chosen[r] == chosen[q])
            crossed[q] &= ~(both & (flank[q] > flank[r]))
    for r in range(num_rows):
        for q in range(num_rows):
            if q == r:
                continue
            own = np.nonzero(crossed[r] & ~crossed[q] & (chosen[q] == chosen[r]) & (chosen[q] >= 0))[0]
            top[q, own] = runs.top[chosen[q, own]]
            bot[q, own] = runs.bot[chosen[q, own]]
            w_top[q, own] = 1.0
            w_bot[q, own] = 1.0
