"""extract_signal: a page's trace map (+ image, + optional lead-name boxes) -> (num_samples, num_leads) mV.

The extractor's story, one stage a file:
1. the page's scale from its grid (read by rectify.grid) or page size, or the lead names' pitch: scale.py;
2. the map on the page's pixels, off-paper dark background dropped (paper.py), a map coarser than the page
   sharpened with the page's ink (ink.py);
3. runs of trace pixels per column (runs.py), a residual tilt sheared out of them;
4. the printed rows and a Viterbi track of each, shared runs split between rows: rows.py;
5. each row's time axis: its first and last sample, its calibration pulse (gain, zero level, where the
   signal starts), rows printed side by side on one start: timeaxis.py;
6. the cells, which lead each stretch of each row is and over which window: cells.py;
7. the pen width and each row's sub-pixel sample phase from the polyline fit's cost (readout.py, fit.py);
   on a photographed page, each row's time axis read on the grid lines beside it (ruler.py);
8. every row read out by fitting the drawn polyline to its column edges, mV at the record's sample times,
   each lead's confidence, abstention and its readings combined: readout.py, combine.py;
9. a limb lead's reading that the other limb leads contradict taken from them: limbs.py.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..geometry import LeadNameBox, PageGeometry
from ..layouts import canonical_lead_name
from ..rectify.grid import GridScale, estimate_skew
from .cells import RowCell, choose_cells, rows_from_names
from .combine import read_leads
from .ink import ink_score_map, map_finer_than_scan
from .limbs import repair_limb_leads
from .paper import off_paper_mask
from .readout import choose_pen_width
from .ruler import grid_view, measure_row_leans, measure_row_rulers
from .rows import TrackParams, find_row_centres, resolve_shared, trace_width, track_rows
from .runs import Runs, bridged_in_boxes, find_runs
from .scale import gridless_geometry, page_geometry
from .timeaxis import (PageAxis, TrackedRows, align_row_starts, apply_pulse_gain, build_row, refine_sample_phase,
                       row_end_columns)
from .types import ExtractParams, RowTrace

__all__ = ["Extraction", "ExtractParams", "RowTrace", "extract_signal"]

# A map with fewer pixels than this share of the page's is the segmenter's working frame (half the page's size
# for a canonical page), not a map at the page's resolution: it is enlarged and sharpened with the page's ink.
COARSE_MAP_AREA_SHARE = 0.9
# A residual tilt below this (dy/dx, 0.006 deg: about 0.2 px across a 2200-px page) is left alone.
MIN_SKEW = 1e-4


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


def map_on_page(trace_map: np.ndarray, image_rgb: np.ndarray | None) -> tuple[np.ndarray, bool, float]:
    """(map in page pixels, whether it came coarser than the page, map px per page px)."""
    tmap = np.nan_to_num(np.asarray(trace_map, dtype=np.float32), nan=0.0)
    coarse = image_rgb is not None and \
        tmap.shape[0] * tmap.shape[1] < COARSE_MAP_AREA_SHARE * image_rgb.shape[0] * image_rgb.shape[1]
    map_share = float(tmap.shape[1]) / image_rgb.shape[1] if image_rgb is not None else 1.0  # map px per page px
    if image_rgb is not None and tuple(image_rgb.shape[:2]) != tmap.shape:
        # a map at another resolution is brought onto the page's pixels (scale and pulses are measured there)
        import cv2

        tmap = cv2.resize(tmap, (image_rgb.shape[1], image_rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
    return tmap, coarse, map_share


def sharpened_map(tmap: np.ndarray, image_rgb: np.ndarray | None, geometry: PageGeometry, coarse: bool,
                  map_share: float, source_px_per_mm: float | None, params: ExtractParams
                  ) -> tuple[np.ndarray, float, str | None]:
    """(map, its trace threshold, note): a map coarser than the page sharpened with the page's ink (ink.py),
    unless the scan holds no more than the map does."""
    if coarse and map_finer_than_scan(map_share * geometry.px_per_mm_y, source_px_per_mm):
        return tmap, params.threshold, "trace map read as it is: the scan is no finer than the map"
    if params.ink is not None and coarse:
        score = ink_score_map(tmap, image_rgb, geometry.px_per_mm_y, params.ink)
        if score is not None:
            return score, params.ink.threshold, None
    return tmap, params.threshold, None


def tracking_for(track: TrackParams, coarse: bool) -> TrackParams:
    """The row tracker's speck rule (rows.py) is for the segmenter's map, sharpened or enlarged; a map given at
    the page's resolution (an exact mask, a test double) has no specks, and its one-pixel runs are thin trace
    (a 100-dpi page's dark pixels lost 30 % of lead II)."""
    return track if coarse else replace(track, min_run_rel=0.0, short_cost=0.0)


def shear_out_skew(runs: Runs, image_rgb: np.ndarray | None, grid: GridScale | None, x_mid: float,
                   params: ExtractParams) -> float:
    """A residual tilt (after upstream rotation correction) makes rows drift: measured on the grid and
    sheared out of the runs about column x_mid (in place). Returns the tilt (dy/dx; 0: none removed)."""
    skew = estimate_skew(image_rgb, grid) if (params.deskew and image_rgb is not None and grid is not None) else 0.0
    skew = skew if abs(skew) > MIN_SKEW else 0.0
    if skew:
        runs.top = runs.top - skew * (runs.col - x_mid)
        runs.bot = runs.bot - skew * (runs.col - x_mid)
    return skew


def tracked_rows(runs: Runs, geometry: PageGeometry, lead_name_boxes: list[LeadNameBox] | None,
                 track: TrackParams, params: ExtractParams) -> tuple[TrackedRows, float] | None:
    """(the rows, tracked and their shared runs split; the trace width) or None where no row is found. Rows the
    names contradict (a crossing blob) or show (a row not found) are tracked again from the names' rows."""
    centres = find_row_centres(runs, geometry.px_per_mm_y)
    if centres.size == 0:
        return None
    centres, chosen = track_rows(runs, centres, geometry, track)
    if lead_name_boxes:
        by_names = rows_from_names(lead_name_boxes, centres)
        if by_names is not None:
            centres, chosen = track_rows(runs, by_names, geometry, track)
    width_px = trace_width(runs, chosen)
    top, bot, shared, w_top, w_bot = resolve_shared(runs, chosen, width_px)
    ends_ok = row_end_columns(runs, chosen, min(track.min_run_rel, params.row_end_min_rel))
    return TrackedRows(centres, top, bot, shared, w_top, w_bot, ends_ok), width_px


def fit_timing(rows: list[RowTrace], px_per_sample: float, num_samples: int, width_px: float,
               params: ExtractParams) -> float:
    """The polyline model's pen width and each row's sub-pixel sample phase (in place), both by the fit's
    cost; returns the pen width (px)."""
    pen_width = width_px
    if params.refine and params.pen_search:
        pen_width = choose_pen_width(rows, px_per_sample, num_samples, width_px)
    if params.refine and params.timing_search and px_per_sample >= params.timing_min_px_per_sample:
        refine_sample_phase(rows, px_per_sample, num_samples, width_px, pen_width_px=pen_width)
    return pen_width


def extract_signal(trace_map: np.ndarray, image_rgb: np.ndarray | None, fs_hz: float, num_samples: int,
                   lead_names: list[str], lead_name_boxes: list[LeadNameBox] | None = None, *,
                   geometry: PageGeometry | None = None, params: ExtractParams | None = None,
                   source_px_per_mm: float | None = None) -> Extraction:
    """Calibrated signals of one page: (num_samples, len(lead_names)) mV in the given lead order.

    source_px_per_mm: the scale of the page as it was scanned, when image_rgb was resized from it (the
    rectification's `PageFrame.source_px_per_mm`); None: image_rgb is the page as scanned."""
    params = params or ExtractParams()
    tmap, coarse, map_share = map_on_page(trace_map, image_rgb)
    h, w = tmap.shape
    grid, scale_note = None, None
    if geometry is None:
        geometry, grid = page_geometry(image_rgb, (h, w), source_px_per_mm)
        geometry, scale_note = gridless_geometry(geometry, grid, lead_name_boxes, num_samples / float(fs_hz))
    if image_rgb is not None and params.off_paper:
        tmap[off_paper_mask(image_rgb, geometry.px_per_mm_y)] = 0.0
    num_samples = int(num_samples)
    tmap, threshold, ink_note = sharpened_map(tmap, image_rgb, geometry, coarse, map_share, source_px_per_mm,
                                              params)
    runs = find_runs(tmap, threshold, params.max_gap_px)
    if lead_name_boxes and params.name_bridge_mm is not None:
        runs = bridged_in_boxes(runs, [(b.box.x0, b.box.y0, b.box.x1, b.box.y1) for b in lead_name_boxes],
                                params.name_bridge_mm * geometry.px_per_mm_y,
                                params.name_bridge_end_mm * geometry.px_per_mm_y)
    if len(runs) == 0:
        return empty_extraction(num_samples, lead_names, geometry, "empty trace map")
    x_mid = 0.5 * (w - 1)
    skew = shear_out_skew(runs, image_rgb, grid, x_mid, params)
    found = tracked_rows(runs, geometry, lead_name_boxes, tracking_for(params.track, coarse), params)
    if found is None:
        return empty_extraction(num_samples, lead_names, geometry, "no rows found")
    tracked, width_px = found

    px_per_s = geometry.px_per_s
    px_per_sample = px_per_s / float(fs_hz)
    axis = PageAxis(image_rgb, geometry, skew, x_mid, width_px, px_per_sample, num_samples)
    rows = [build_row(r, tracked, axis) for r in range(tracked.centres.size)]
    geometry = apply_pulse_gain(rows, geometry)
    align_row_starts(rows, skew, 0.5 * (h - 1), params.row_start_tol_s * px_per_s)

    choice = choose_cells(rows, tracked.centres, lead_name_boxes, fs_hz, px_per_sample, num_samples, width_px)
    pen_width = fit_timing(rows, px_per_sample, num_samples, width_px, params)
    ruler_note = warp_note = None
    if (params.grid_ruler or params.grid_lean) and image_rgb is not None:
        view = grid_view(image_rgb, tmap >= threshold, geometry.px_per_mm_x)  # read once, for both
    if params.grid_ruler and image_rgb is not None:
        ruled = measure_row_rulers(rows, view, geometry.px_per_mm_x, px_per_sample)
        ruler_note = f"time axis read on the grid beside {ruled} of {len(rows)} rows"
    if params.grid_lean and image_rgb is not None:
        leaning = measure_row_leans(rows, view, geometry.px_per_mm_x, px_per_sample)
        if leaning:
            warp_note = f"strokes set upright on the grid's leaning lines in {leaning} of {len(rows)} rows"
    signal, confidence = read_leads(choice.cells, rows, lead_names, fs_hz, px_per_sample, num_samples, width_px,
                                    pen_width, geometry, params)
    limb_note = ""
    if params.limb_min_others is not None:
        signal, repaired = repair_limb_leads(signal, lead_names, fs_hz, min_others=params.limb_min_others)
        limb_note = f"{repaired} limb-lead samples taken from the other limb leads" if repaired else ""
    notes = [n for n in (scale_note, ink_note, warp_note, limb_note) if n] + choice.notes + \
        ([ruler_note] if ruler_note else [])
    return Extraction(signal, geometry, confidence, rows, choice.cells, choice.layout, grid, skew, width_px,
                      pen_width, notes)
