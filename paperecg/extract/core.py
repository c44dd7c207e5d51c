"""extract_signal: a page's trace map (+ image, + optional lead-name boxes) -> (num_samples, num_leads) mV.

Order of work: scale from the grid (or page size) -> a map coarser than the page sharpened with the page's
ink (ink.py) -> runs of trace pixels per column -> printed rows and a
Viterbi track of each -> calibration pulses (gain, zero level, where the signal starts) -> cells (lead and
time window of each stretch of a row) -> sub-pixel sample phase -> polyline fit of each row to its column
edges (inverse rendering), started from the slope-aware centre-line path -> mV at the record's sample
times -> per-lead confidence and abstention.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import math
import warnings

import numpy as np

from ..geometry import LeadNameBox, PageGeometry
from ..layouts import canonical_lead_name, lead_index
from .fit import fit_samples
from .ink import InkParams, ink_score_map
from .paper import off_paper_mask
from .cells import RowCell, cells_from_boxes, cells_from_layout, layout_for_row_count, rows_from_names
from .pulse import PulseInfo, find_pulse
from .readout import centre_path, sample_path
from .rows import TrackParams, find_row_centres, resolve_shared, trace_width, track_rows
from .runs import Runs, find_runs
from .scale import GridScale, estimate_grid_scale, estimate_skew, gridless_geometry, page_size_px_per_mm

# Below this scan resolution (about 63 dpi) the 1-mm grid lines are less than 2.5 px apart in the scan.
UNRESOLVED_GRID_PX_PER_MM = 2.5
PAGE_SIZE_FACTOR = 1.2  # search range of the grid scale around the page-size scale there (5/4 is out)

# The page's ink sharpens the map only for a scan clearly finer than the map (the working frame of a canonical
# page is 100 dpi). Measured with the shipped segmenter's maps on eik-dev/lowdpi pages (the benchmark's own
# pages, so in-sample): 100-115 dpi 13.0 -> 15.1 dB without the ink (5 of 6 pages better), 115-130 dpi 16.4
# -> 15.2 (the ink wins). With perfect working-frame maps the map alone wins up to 160 dpi: worth re-measuring
# with a segmenter trained on low-dpi pages.
INK_SCAN_OVER_MAP = 1.15

# A trace speck at a row's end no longer than this (and 3x as far from the rest) is not part of the row.
STRAY_MM = 2.5


@dataclass
class ExtractParams:
    threshold: float = 0.7  # trace probability that counts as trace (0.7 beat 0.3-0.6 and 0.8 on eik-dev pages)
    # a map coarser than the page is sharpened with the page's ink (extract/ink.py); None: read it as it is
    ink: InkParams | None = field(default_factory=InkParams)
    max_gap_px: float = 1.0  # runs in one column closer than this are one crossing
    min_confidence: float = 0.5  # below this a lead is returned as NaN (0 dB beats a negative score)
    max_abs_mv: float = 8.0  # a lead reaching beyond this is not a plausible ECG: abstain
    off_paper: bool = True  # ignore trace probability on dark background reaching the image border
    refine: bool = True  # fit the drawn polyline to the column edges (else the slope-aware path)
    deskew: bool = True  # remove a residual page tilt measured on the grid
    pen_search: bool = True  # pick the pen width of the polyline model by the fit's cost
    timing_search: bool = True  # find each row's sub-pixel sample phase by the polyline fit's cost
    track: TrackParams = field(default_factory=TrackParams)
    row_end_min_rel: float = 0.3  # a row's first and last run: at least this share of the median run length
    combine_max_lag_s: float = 0.1  # a lead printed twice: its readings are aligned within this (combine_readings)
    # samples this close to a boundary between two cells of a row are left out (see trim_cell_edges)
    cell_edge_s: float = 0.02


@dataclass
class RowTrace:
    """Diagnostics of one printed row."""

    centre_y: float
    baseline_y: float
    x_first: float  # x of the first sample
    x_last: float
    top: np.ndarray  # run edges per column (NaN = none), columns col0..
    bot: np.ndarray
    col0: int
    shared: np.ndarray  # bool per column: run shared with another row
    w_top: np.ndarray  # weight of each column's top edge as evidence (0 where shared from below)
    w_bot: np.ndarray
    pulse: PulseInfo | None = None
    x_shift: float = 0.0  # sub-pixel correction of x_first found by the sample-phase search
    cell_starts: list[int] = field(default_factory=list)  # samples where a new lead's polyline begins
    start_group: int = 0  # rows with the same value start together (one timing search for all)


@dataclass
class Extraction:
    signal: np.ndarray  # (num_samples, num_leads) float64 mV, NaN = abstain / not drawn
    geometry: PageGeometry
    lead_confidence: dict[str, float]
    rows: list[RowTrace] = field(default_factory=list)
    cells: list[RowCell] = field(default_factory=list)
    layout: str | None = None
    grid: GridScale | None = None
    skew: float = 0.0  # residual tilt removed (dy/dx of the printed rows)
    trace_width_px: float = float("nan")  # thickness of flat stretches of the trace map
    pen_width_px: float = float("nan")  # pen width of the polyline model that fitted best
    notes: list[str] = field(default_factory=list)


def empty_extraction(num_samples: int, lead_names: list[str], geometry: PageGeometry, note: str) -> Extraction:
    return Extraction(np.full((num_samples, len(lead_names)), np.nan), geometry,
                      {canonical_lead_name(n): 0.0 for n in lead_names}, notes=[note])


def square_grid(grid: GridScale, page_px_per_mm: float, max_ratio: float = 1.15) -> GridScale:
    """Grid squares are square: when the two axes' scales differ by more than max_ratio (scanners differ by
    a few %), one axis misread its comb (an aliased 1-mm grid, a 5/4 confusion); the axis nearer the
    page-size scale stands for both. (A 53-dpi ECG-Image-Kit page read 7.75 px/mm across and 5.06 down on a
    page whose size says 5.05.)"""
    x, y = grid.x, grid.y
    if not (x.found and y.found) or max(x.px_per_mm, y.px_per_mm) <= max_ratio * min(x.px_per_mm, y.px_per_mm):
        return grid
    keep = x if abs(np.log(x.px_per_mm / page_px_per_mm)) <= abs(np.log(y.px_per_mm / page_px_per_mm)) else y
    return GridScale(keep, keep)


def page_geometry(image_rgb: np.ndarray | None, shape_hw: tuple[int, int], source_px_per_mm: float | None = None
                  ) -> tuple[PageGeometry, GridScale | None]:
    """Scale from the grid when the image shows one, else from the page size (letter printout).

    A scan too coarse to resolve the 1-mm lines (source_px_per_mm under UNRESOLVED_GRID_PX_PER_MM) shows them
    aliased, and the grid's comb then fits 5/4 of the true scale as well; such a scan is of a whole page
    (nobody scans a close-up at 60 dpi), so the search stays within PAGE_SIZE_FACTOR of the page-size scale."""
    if image_rgb is not None:
        coarse_scan = source_px_per_mm is not None and 0 < source_px_per_mm < UNRESOLVED_GRID_PX_PER_MM
        grid = estimate_grid_scale(image_rgb, prior_factor=PAGE_SIZE_FACTOR) if coarse_scan else \
            estimate_grid_scale(image_rgb)
        grid = square_grid(grid, page_size_px_per_mm(*shape_hw))
        return grid.geometry(), grid
    p = page_size_px_per_mm(*shape_hw)
    return PageGeometry(p, p), None


def map_finer_than_scan(map_px_per_mm: float, source_px_per_mm: float | None) -> bool:
    """Whether the trace map already resolves all the scan holds. A page scanned at 50-100 dpi and resized to
    the canonical 200 dpi has no detail beyond its own resolution: sharpening with its ink (ink.py) then only
    breaks its faint, blurred one-pixel trace into dashes where it falls between two pixel rows, and grid lines
    as dark as the trace join in (11 eik-dev/lowdpi pages under 100 dpi, segmenter maps: 7.2 dB with the ink, 10.3 without)."""
    if source_px_per_mm is None or not np.isfinite(source_px_per_mm) or source_px_per_mm <= 0:
        return False
    return map_px_per_mm * INK_SCAN_OVER_MAP >= source_px_per_mm


def isoelectric_row(ys: np.ndarray, bin_px: float = 0.25) -> float:
    """Most common vertical position of a row's path (the isoelectric line), sub-pixel."""
    ys = ys[np.isfinite(ys)]
    if ys.size == 0:
        return float("nan")
    lo, hi = np.floor(ys.min()) - 2, np.ceil(ys.max()) + 2
    bins = max(int((hi - lo) / bin_px), 1)
    hist, edges = np.histogram(ys, bins=bins, range=(lo, hi))
    from scipy.ndimage import gaussian_filter1d

    sm = gaussian_filter1d(hist.astype(np.float64), sigma=1.0 / bin_px)
    i = int(np.argmax(sm))
    return float(0.5 * (edges[i] + edges[i + 1]))


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


def empty_row(centre_y: float) -> RowTrace:
    none = np.zeros(0)
    return RowTrace(centre_y, np.nan, np.nan, np.nan, none, none, 0, np.zeros(0, dtype=bool), none, none)


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


def build_row(r: int, centres: np.ndarray, top: np.ndarray, bot: np.ndarray, shared: np.ndarray,
              w_top: np.ndarray, w_bot: np.ndarray, image_rgb: np.ndarray | None, geometry: PageGeometry,
              skew: float, x_mid: float, width_px: float, px_per_sample: float, num_samples: int,
              ends_ok: np.ndarray | None = None) -> RowTrace:
    """One printed row: its tracked stretch, its calibration pulse (cut off when the trace map holds it)
    and the x of its first and last sample. ends_ok: bool (W,), the columns that may be the row's ends
    (None: every inked one)."""
    stray_px = STRAY_MM * geometry.px_per_mm_x
    ends_ok = np.ones(top[r].size, dtype=bool) if ends_ok is None else ends_ok
    span = _first_last(np.isfinite(top[r]) & ends_ok, stray_px=stray_px)
    if span is None:
        return empty_row(centres[r])
    c0, c1 = span
    t, b = top[r][c0:c1 + 1].copy(), bot[r][c0:c1 + 1].copy()
    # the pulse is looked for in the page image, which is not sheared
    unshear = skew * (c0 - x_mid)
    pulse = find_pulse(t + unshear, b + unshear, c0, image_rgb, centres[r] + unshear, geometry)
    if pulse is not None and skew:
        back = skew * (pulse.fall_x - x_mid)
        pulse = replace(pulse, baseline_y=pulse.baseline_y - back, top_y=pulse.top_y - back)
    cut_by_pulse = False
    if pulse is not None and _mask_has_pulse(t, b, c0, pulse, geometry):
        # the trace map holds the pulse too: the signal starts at its falling stroke
        t[: int(np.floor(pulse.fall_x)) + 1 - c0] = np.nan
        span = _first_last(np.isfinite(t) & ends_ok[c0:c1 + 1], stray_px=stray_px)
        if span is None:
            return empty_row(centres[r])
        c0, c1 = c0 + span[0], c0 + span[1]
        cut_by_pulse = True
    x_first, x_last = row_time_span(c0, c1, width_px, px_per_sample, num_samples, cut_start=cut_by_pulse)
    sl = slice(c0, c1 + 1)
    return RowTrace(centres[r], np.nan, x_first, x_last, top[r][sl].copy(), bot[r][sl].copy(), c0, shared[r][sl],
                    w_top[r][sl], w_bot[r][sl], pulse)


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


def extract_signal(trace_map: np.ndarray, image_rgb: np.ndarray | None, fs_hz: float, num_samples: int,
                   lead_names: list[str], lead_name_boxes: list[LeadNameBox] | None = None, *,
                   geometry: PageGeometry | None = None, params: ExtractParams | None = None,
                   source_px_per_mm: float | None = None) -> Extraction:
    """Calibrated signals of one page: (num_samples, len(lead_names)) mV in the given lead order.

    source_px_per_mm: the scale of the page as it was scanned, when image_rgb was resized from it (the
    rectification's `PageFrame.source_px_per_mm`); None: image_rgb is the page as scanned."""
    params = params or ExtractParams()
    tmap = np.nan_to_num(np.asarray(trace_map, dtype=np.float32), nan=0.0)
    # a map coarser than the page (the segmenter's working frame) is sharpened with the page's ink below
    coarse = image_rgb is not None and tmap.shape[0] * tmap.shape[1] < 0.9 * image_rgb.shape[0] * image_rgb.shape[1]
    map_share = float(tmap.shape[1]) / image_rgb.shape[1] if image_rgb is not None else 1.0  # map px per page px
    if image_rgb is not None and tuple(image_rgb.shape[:2]) != tmap.shape:
        # a map at another resolution is brought onto the page's pixels (scale and pulses are measured there)
        import cv2

        tmap = cv2.resize(tmap, (image_rgb.shape[1], image_rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
    h, w = tmap.shape
    grid, scale_note = None, None
    if geometry is None:
        geometry, grid = page_geometry(image_rgb, (h, w), source_px_per_mm)
        geometry, scale_note = gridless_geometry(geometry, grid, lead_name_boxes, num_samples / float(fs_hz))
    if image_rgb is not None and params.off_paper:
        tmap[off_paper_mask(image_rgb, geometry.px_per_mm_y)] = 0.0
    num_samples = int(num_samples)
    threshold = params.threshold
    if coarse and map_finer_than_scan(map_share * geometry.px_per_mm_y, source_px_per_mm):
        notes_ink = "trace map read as it is: the scan is no finer than the map"
    else:
        notes_ink = None
    if params.ink is not None and coarse and notes_ink is None:
        score = ink_score_map(tmap, image_rgb, geometry.px_per_mm_y, params.ink)
        if score is not None:
            tmap, threshold = score, params.ink.threshold
    track = params.track
    if not coarse:
        # the row tracker's speck rule (rows.py) is for the segmenter's map, sharpened or enlarged; a map given
        # at the page's resolution (an exact mask, a test double) has no specks, and its one-pixel runs are thin
        # trace (a 100-dpi page's dark pixels lost 30 % of lead II; exact eik-dev 12x1 masks: 23.30 dB without
        # the rule, 23.16 with)
        track = replace(track, min_run_rel=0.0, short_cost=0.0)
    runs = find_runs(tmap, threshold, params.max_gap_px)
    if len(runs) == 0:
        return empty_extraction(num_samples, lead_names, geometry, "empty trace map")
    # a residual tilt (after upstream rotation correction) makes rows drift: shear it out of the runs
    skew = estimate_skew(image_rgb, grid) if (params.deskew and image_rgb is not None and grid is not None) else 0.0
    skew = skew if abs(skew) > 1e-4 else 0.0
    x_mid = 0.5 * (w - 1)
    if skew:
        runs.top = runs.top - skew * (runs.col - x_mid)
        runs.bot = runs.bot - skew * (runs.col - x_mid)

    centres = find_row_centres(runs, geometry.px_per_mm_y)
    if centres.size == 0:
        return empty_extraction(num_samples, lead_names, geometry, "no rows found")
    centres, chosen = track_rows(runs, centres, geometry, track)
    if lead_name_boxes:
        by_names = rows_from_names(lead_name_boxes, centres)
        if by_names is not None:  # rows the names contradict (a crossing blob) or show (a row not found)
            centres, chosen = track_rows(runs, by_names, geometry, track)
    width_px = trace_width(runs, chosen)
    top, bot, shared, w_top, w_bot = resolve_shared(runs, chosen, width_px)

    px_per_s = geometry.px_per_s
    px_per_sample = px_per_s / float(fs_hz)
    ends_ok = row_end_columns(runs, chosen, min(track.min_run_rel, params.row_end_min_rel))
    rows = [build_row(r, centres, top, bot, shared, w_top, w_bot, image_rgb, geometry, skew, x_mid, width_px,
                      px_per_sample, num_samples, ends_ok[r]) for r in range(centres.size)]
    geometry = apply_pulse_gain(rows, geometry)
    align_row_starts(rows, skew, 0.5 * (h - 1), 0.02 * px_per_s)

    # cells: lead names when given, else a standard layout by row count
    usable = [i for i, rt in enumerate(rows) if np.isfinite(rt.x_first)]
    cells: list[RowCell] = []
    layout_name = None
    notes: list[str] = [n for n in (scale_note, notes_ink) if n]
    if lead_name_boxes:
        cells = cells_from_boxes(lead_name_boxes, centres, np.array([rt.x_first for rt in rows]),
                                 np.array([rt.x_last for rt in rows]), px_per_sample, num_samples)
        if cells:
            notes.append(f"lead identity from {len(lead_name_boxes)} printed names ({cells[0].source})")
            matched = {c.source.split("+", 1)[1] for c in cells if c.source.startswith("boxes+")}
            if len(matched) == 1:  # the names matched one known layout: say which
                layout_name = matched.pop()
    if not cells:
        slots = row_slots(np.array([rows[i].centre_y for i in usable]))
        if len(slots) != len(usable) and layout_for_row_count(len(slots)) is not None:
            # a row of the page was not found (a lead drifting far off its baseline): the others keep their
            # places on the row pitch
            usable = [usable[k] if k >= 0 else -1 for k in slots]
        layout_name = layout_for_row_count(len(usable))
        if layout_name is None:
            layout_name = _nearest_layout(len(usable))
        if layout_name == "3x4+3":
            layout_name = choose_six_row_layout([rows[i] for i in usable if i >= 0], px_per_sample, num_samples,
                                                width_px)
        cells = [c for c in cells_from_layout(layout_name, num_samples, usable) if c.row >= 0]
        notes.append(f"no lead names {'placed' if lead_name_boxes else 'given'}: layout {layout_name} assumed "
                     f"from {sum(i >= 0 for i in usable)} rows in {len(usable)} row places")
    if cells and cells[0].source == "boxes":  # names in an order no known layout has: windows from the page
        cells, moved = choose_column_windows(cells, rows, fs_hz, px_per_sample, num_samples, width_px)
        if moved:
            notes.append(f"columns at {moved} (samples on the time axis) show the first column's time window "
                         "(their beats line up with the full-length strip's there)")
    for cell in cells:
        if _page_start(cell) > 0:
            rows[cell.row].cell_starts.append(_page_start(cell))
    pen_width = width_px
    if params.refine and params.pen_search:
        pen_width = choose_pen_width(rows, px_per_sample, num_samples, width_px)
    if params.refine and params.timing_search and px_per_sample >= 0.75:
        refine_sample_phase(rows, px_per_sample, num_samples, width_px, pen_width_px=pen_width)

    readings: dict[int, list[np.ndarray]] = {}
    conf_num = {canonical_lead_name(n): 0.0 for n in lead_names}
    conf_den = {canonical_lead_name(n): 0.0 for n in lead_names}
    row_values: dict[int, np.ndarray] = {}
    for cell in cells:
        j = lead_index(lead_names, cell.lead)
        if j is None:
            continue
        rt = rows[cell.row]
        if cell.row not in row_values:
            row_values[cell.row] = _row_samples(rt, px_per_sample, num_samples, width_px, geometry,
                                                params.refine, pen_width)
        p0 = _page_start(cell)
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
    return Extraction(signal, geometry, confidence, rows, cells, layout_name, grid, skew, width_px, pen_width,
                      notes)


def beat_activity(values_px: np.ndarray, fs_hz: float) -> np.ndarray:
    """How fast a row's trace moves at each sample (|slope|, smoothed over ~30 ms; 0 off the trace): its peaks
    are the QRS complexes, at the same times in every lead of one record."""
    from scipy.ndimage import gaussian_filter1d

    slope = np.abs(np.diff(values_px, prepend=values_px[:1]))
    slope = np.nan_to_num(slope, nan=0.0)
    return gaussian_filter1d(slope, sigma=max(1.0, 0.03 * fs_hz))


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if a.size < 3 or np.std(a) < 1e-9 or np.std(b) < 1e-9:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def choose_column_windows(cells: list[RowCell], rows: list[RowTrace], fs_hz: float, px_per_sample: float,
                          num_samples: int, width_px: float, margin: float = 0.15
                          ) -> tuple[list[RowCell], list[int]]:
    """Time windows of later columns when only their place on the page is known: a column printed at
    [s0, s1) of the time axis shows either that window (consecutive columns) or the first one, [0, s1 - s0)
    (simultaneous columns, as ECG-Image-Kit's 6x2). A full-length strip decides: all leads beat together, so
    the column's beats line up with the strip's in its true window. The simultaneous reading needs to win by
    `margin` in mean correlation (a regular rhythm lines up both ways; then the page position stands).
    Returns the cells (moved ones with start 0 and page_start s0) and the moved columns' s0."""
    full = [c for c in cells if c.start == 0 and c.end >= 0.95 * num_samples and np.isfinite(rows[c.row].x_first)]
    if not full:
        return cells, []
    ref = beat_activity(_quick_row_values(rows[full[0].row], px_per_sample, num_samples, width_px), fs_hz)
    groups: dict[int, list[RowCell]] = {}
    for c in cells:
        if c.start > 0 and c.page_start in (None, c.start) and c.row != full[0].row:
            groups.setdefault(c.start, []).append(c)
    activity: dict[int, np.ndarray] = {}
    moved = []
    for s0, members in sorted(groups.items()):
        length = min(c.end - c.start for c in members)
        if length < fs_hz:  # under a second holds too few beats to tell
            continue
        cons, sim = [], []
        for c in members:
            if c.row not in activity:
                activity[c.row] = beat_activity(
                    _quick_row_values(rows[c.row], px_per_sample, num_samples, width_px), fs_hz)
            a = activity[c.row][s0:s0 + length]
            cons.append(_corr(a, ref[s0:s0 + length]))
            sim.append(_corr(a, ref[:length]))
        if np.isfinite(sim).any() and np.nanmean(sim) > np.nanmean(cons) + margin:
            moved.append(s0)
    if not moved:
        return cells, []
    out = []
    for c in cells:
        if c.start in moved and c.page_start in (None, c.start) and c.row != full[0].row:
            c = replace(c, start=0, end=c.end - c.start, page_start=c.start)
        out.append(c)
    return out, moved


def row_slots(centres: np.ndarray) -> list[int]:
    """Row slots of a page from its found rows' centres (top to bottom) on the median row pitch: the index of
    the found row in each slot, -1 for a slot no row was found in (at most one in a row, and only where the
    gap is clearly two pitches). [0, 1, ..., n-1] when nothing is missing."""
    n = centres.size
    if n < 3:
        return list(range(n))
    pitch = float(np.median(np.diff(centres)))
    out = [0]
    for k in range(1, n):
        gap = (centres[k] - centres[k - 1]) / pitch
        if 1.75 < gap < 2.3:
            out.append(-1)
        out.append(k)
    return out


def _page_start(cell: RowCell) -> int:
    """Where the cell's stretch begins on its row's time axis (in samples)."""
    return cell.start if cell.page_start is None else cell.page_start


def _mask_has_pulse(top: np.ndarray, bot: np.ndarray, col0: int, pulse: PulseInfo, geometry: PageGeometry) -> bool:
    """Whether the tracked runs contain the pulse's rising stroke (a tall run at the pulse's start)."""
    a = int(round(pulse.x0)) - col0
    z = int(round(pulse.fall_x)) - col0
    if z <= 0 or a >= top.size:
        return False
    seg_len = (bot - top)[max(a - 2, 0):max(min(z, top.size), 0)]
    return bool(np.any(seg_len >= 0.5 * pulse.height_px))


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


def cell_confidence(rt: RowTrace, cell: RowCell, good: np.ndarray, px_per_sample: float) -> float:
    """Evidence for one cell: the fraction of its samples read off the trace, less the fraction of its
    columns where the trace merges with another row's (there only one edge of the run is its own)."""
    if good.size == 0:
        return 0.0
    p0 = _page_start(cell)
    a = int(np.floor(rt.x_first + p0 * px_per_sample)) - rt.col0
    b = int(np.ceil(rt.x_first + (p0 + cell.end - cell.start - 1) * px_per_sample)) - rt.col0 + 1
    cols = rt.shared[max(a, 0):max(min(b, rt.shared.size), 0)]
    shared = float(cols.mean()) if cols.size else 0.0
    return float(good.mean()) * (1.0 - shared)


def smoothing_weight(px_per_sample: float) -> float:
    """Second-difference penalty of the polyline fit. Two edges per column constrain the samples; where
    several samples share a column (250/500 Hz at 200 dpi) the rest must come from smoothness, and the
    per-sample second differences of a smooth curve shrink with the spacing (tuned on own renders:
    0.02 at 2 px per sample, ~0.15 at 0.8, ~0.7 at 0.4)."""
    return 0.02 * (1.97 / max(px_per_sample, 0.05)) ** 2.2


def _fit_row(rt: RowTrace, x_first: float, px_per_sample: float, num_samples: int, width_px: float,
             iters: int, pen_width_px: float | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Polyline fit of one row with its first sample at x_first: (sample indices on the row, y, cost).
    Each cell (lead) of the row is a polyline of its own: no line joins the last sample of one cell and
    the first of the next."""
    sample_x = x_first + np.arange(num_samples) * px_per_sample
    on_row = (sample_x >= rt.col0 - 0.5) & (sample_x <= rt.col0 + rt.top.size - 0.5)
    idx = np.nonzero(on_row)[0]
    if idx.size < 3:
        return idx, np.zeros(0), float("nan")
    xs, ys = centre_path(rt.top, rt.bot, width_px, rt.col0, sample_x)
    if xs.size < 2:
        return idx, np.zeros(0), float("nan")
    y0 = np.interp(sample_x[idx], xs, ys)
    breaks = np.isin(idx[1:], np.asarray(rt.cell_starts, dtype=np.int64)) if rt.cell_starts else None
    pen = width_px if pen_width_px is None else pen_width_px
    y, cost = fit_samples(rt.top, rt.bot, rt.w_top, rt.w_bot, rt.col0, sample_x[idx], y0, 0.5 * pen,
                          iters=iters, breaks=breaks, smooth=smoothing_weight(px_per_sample))
    return idx, y, cost / max(idx.size, 1)


def _probe_row(rows: list[RowTrace]) -> RowTrace | None:
    """The row with the most vertical stroke length: the most information for page-wide choices."""
    usable = [r for r in rows if np.isfinite(r.x_first) and r.top.size > 10]
    return max(usable, key=lambda r: float(np.nansum(r.bot - r.top))) if usable else None


def choose_pen_width(rows: list[RowTrace], px_per_sample: float, num_samples: int, width_px: float,
                     factors: tuple[float, ...] = (0.6, 0.7, 0.85, 1.0, 1.15)) -> float:
    """Pen width of the polyline model: the flat-run thickness for crisp binary masks, less for soft or
    blurred maps (a segmenter's), whose 0.5 contour hugs thin steep strokes and peak tips closer than
    it does flat stretches. The fit's own cost on the probe row picks it (it tracks the score)."""
    probe = _probe_row(rows)
    if probe is None:
        return width_px
    costs = [_fit_row(probe, probe.x_first, px_per_sample, num_samples, width_px, 4, f * width_px)[2]
             for f in factors]
    if not np.all(np.isfinite(costs)):
        return width_px
    return float(factors[int(np.argmin(costs))] * width_px)


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
        probe = _probe_row(members)
        if probe is None:
            continue
        x0 = probe.x_first
        deltas = (np.arange(steps) - steps // 2) * px_per_sample / steps
        costs = np.array([_fit_row(probe, x0 + d, px_per_sample, num_samples, width_px, 3, pen_width_px)[2]
                          for d in deltas])
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


# A row's ink shorter than its record by more than END_TRUST_PX (px) and at most START_LOSS_MAX_SHARE of it
# has lost its start (see row_time_span): up to a calibration pulse's width (0.2 s of 10 s).
END_TRUST_PX = 1.0
START_LOSS_MAX_SHARE = 0.02


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
    elif abs(short) <= max(3.0, 0.005 * full):
        x_first = x_last - full if cut_start else 0.5 * (c0 + c1 - full)
        x_last = x_first + full
    return x_first, x_last


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


def _quick_row_values(rt: RowTrace, px_per_sample: float, num_samples: int, width_px: float) -> np.ndarray:
    """Image rows of the centre-line path at every sample (no fit): enough to compare shapes."""
    sample_x = rt.x_first + np.arange(num_samples) * px_per_sample
    xs, ys = centre_path(rt.top, rt.bot, width_px, rt.col0, sample_x)
    return sample_path(xs, ys, sample_x, np.isfinite(rt.top), rt.col0)


def choose_six_row_layout(rows: list[RowTrace], px_per_sample: float, num_samples: int, width_px: float) -> str:
    """3x4+3 or 6x2: both have six full-width rows. In 3x4+3 the three rhythm strips repeat what the grid
    shows in one quarter each (II in row 1's first quarter, V1 in row 0's third, V5 in row 1's last);
    in 6x2 those windows hold different leads. Decide by the correlation over the three windows."""
    if len(rows) != 6:
        return "3x4+3"
    vals = [_quick_row_values(rt, px_per_sample, num_samples, width_px) for rt in rows]
    q = num_samples // 4
    pairs = [(1, 4, 0), (0, 3, 2), (1, 5, 3)]  # (grid row, rhythm row, quarter)
    corrs = []
    for a, b, k in pairs:
        u, v = vals[a][k * q:(k + 1) * q], vals[b][k * q:(k + 1) * q]
        ok = np.isfinite(u) & np.isfinite(v)
        if ok.sum() < 0.5 * q or np.std(u[ok]) < 1e-6 or np.std(v[ok]) < 1e-6:
            continue
        corrs.append(float(np.corrcoef(u[ok], v[ok])[0, 1]))
    if corrs and float(np.mean(corrs)) < 0.8:
        return "6x2"
    return "3x4+3"


def _nearest_layout(num_rows: int) -> str:
    from ..layouts import LAYOUTS

    return min(LAYOUTS, key=lambda k: (abs(LAYOUTS[k].num_rows - num_rows), k != "3x4+1"))


def column_envelope(rt: RowTrace, x: np.ndarray, margin_px: float) -> tuple[np.ndarray, np.ndarray]:
    """(lowest top, highest bottom) of the row's ink in the two columns each x lies between, widened by
    margin_px; NaN where neither column holds ink."""
    n = rt.top.size
    c0 = np.clip(np.floor(np.asarray(x, dtype=np.float64)).astype(np.int64) - rt.col0, 0, n - 1)
    c1 = np.minimum(c0 + 1, n - 1)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pairs: NaN, as documented
        lo = np.nanmin(np.stack([rt.top[c0], rt.top[c1]]), axis=0) - margin_px
        hi = np.nanmax(np.stack([rt.bot[c0], rt.bot[c1]]), axis=0) + margin_px
    return lo, hi


def near_gap(rt: RowTrace, x: np.ndarray, reach_px: float) -> np.ndarray:
    """bool per x: a column of the row without ink lies within reach_px (inside the row's extent)."""
    gap = ~np.isfinite(rt.top)
    if not gap.any():
        return np.zeros(np.shape(x), dtype=bool)
    k = max(1, int(math.ceil(reach_px)))
    padded = np.concatenate([np.zeros(k, bool), gap, np.zeros(k, bool)])
    window = np.convolve(padded.astype(np.int64), np.ones(2 * k + 1, np.int64), mode="same")[k:k + gap.size] > 0
    c = np.clip(np.round(np.asarray(x, dtype=np.float64)).astype(np.int64) - rt.col0, 0, gap.size - 1)
    return window[c]


def _row_samples(rt: RowTrace, px_per_sample: float, num_samples: int, width_px: float,
                 geometry: PageGeometry, refine: bool = True, pen_width_px: float | None = None) -> np.ndarray:
    """mV of every record sample on this row's time axis (NaN off the trace)."""
    if not np.isfinite(rt.x_first) or rt.top.size == 0:
        return np.full(num_samples, np.nan)
    sample_x = rt.x_first + np.arange(num_samples) * px_per_sample
    xs, ys = centre_path(rt.top, rt.bot, width_px, rt.col0, sample_x)
    valid = np.isfinite(rt.top)
    y = sample_path(xs, ys, sample_x, valid, rt.col0)
    if refine:
        idx, yfit, _ = _fit_row(rt, rt.x_first, px_per_sample, num_samples, width_px, 8, pen_width_px)
        if yfit.size:
            # the fit follows the trace's slope; at the edge of a gap it can run on along that slope far past
            # any ink (real photos: flat columns read up to 1 mV high beside a gap, drawn as spikes). Within
            # half a millimetre of a gap, a fitted sample more than half a millimetre outside the ink of the
            # columns it lies between keeps the plain centre path (elsewhere a QRS tip the map lost may rightly
            # be fitted beyond its ink)
            half_mm = 0.5 * geometry.px_per_mm_y
            lo, hi = column_envelope(rt, sample_x[idx], margin_px=half_mm)
            inside = (yfit >= lo) & (yfit <= hi) | ~near_gap(rt, sample_x[idx], half_mm)
            y[idx] = np.where(np.isfinite(y[idx]), np.where(inside, yfit, y[idx]), np.nan)
    if rt.pulse is not None and np.isfinite(rt.pulse.baseline_y):
        rt.baseline_y = rt.pulse.baseline_y
    else:
        rt.baseline_y = isoelectric_row(ys)
    return (rt.baseline_y - y) / geometry.px_per_mv
