"""What the extractor's stages share: its settings (`ExtractParams`) and its picture of one printed row
(`RowTrace`), which the time axis (timeaxis.py), the cells (cells.py) and the readout (readout.py) fill in."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..rectify.grid import GridWarp, RowRuler
from .ink import InkParams
from .pulse import PulseInfo
from .rows import TrackParams


@dataclass
class ExtractParams:
    threshold: float = 0.7  # trace probability that counts as trace (0.7 beat 0.3-0.6 and 0.8 on eik-dev pages)
    # a map coarser than the page is sharpened with the page's ink (extract/ink.py); None: read it as it is
    ink: InkParams | None = field(default_factory=InkParams)
    max_gap_px: float = 1.0  # runs in one column closer than this are one crossing
    # a column's runs that cross a printed lead name's box from above to below, through gaps inside the box
    # widened by this (mm), are one stroke (extract/runs.py bridged_in_boxes); None: never
    name_bridge_mm: float | None = 1.0
    # ... and the chain's first and last runs are at least this long (mm): a grid line along the box is a thinner
    # speck
    name_bridge_end_mm: float = 0.3
    min_confidence: float = 0.5  # below this a lead is returned as NaN (0 dB beats a negative score)
    max_abs_mv: float = 8.0  # a lead reaching beyond this is not a plausible ECG: abstain
    off_paper: bool = True  # ignore trace probability on dark background reaching the image border
    refine: bool = True  # fit the drawn polyline to the column edges (else the slope-aware path)
    deskew: bool = True  # remove a residual page tilt measured on the grid
    pen_search: bool = True  # pick the pen width of the polyline model by the fit's cost
    timing_search: bool = True  # find each row's sub-pixel sample phase by the polyline fit's cost
    # ... only where samples are this far apart or more (px): denser samples leave the fit's cost flat in the phase
    timing_min_px_per_sample: float = 0.75
    # read each row's time axis on the grid lines beside it (extract/ruler.py): for photographed pages, whose
    # creases the page frame's smooth surface leaves in
    grid_ruler: bool = False
    # photographed pages: each sample moved along x by how far the grid's vertical lines lean between its height
    # and its row's baseline (extract/ruler.py, rectify/grid/warp.py)
    grid_lean: bool = False
    track: TrackParams = field(default_factory=TrackParams)
    row_end_min_rel: float = 0.3  # a row's first and last run: at least this share of the median run length
    row_start_tol_s: float = 0.02  # rows whose starts agree within this start together (align_row_starts)
    combine_max_lag_s: float = 0.1  # a lead printed twice: its readings are aligned within this (combine_readings)
    # rows print the same instants: a row whose QRS complexes come at least beat_lag_min_s (and at most
    # beat_lag_max_s) off the other rows' is moved onto them (combine.align_rows_on_beats; None: never)
    beat_lag_max_s: float | None = 0.15
    beat_lag_min_s: float = 0.03
    # samples this close to a boundary between two cells of a row are left out (see trim_cell_edges)
    cell_edge_s: float = 0.02
    # a limb lead's reading that this many other limb leads contradict, while they agree among themselves, is
    # taken from them (extract/limbs.py; None: never)
    limb_min_others: int | None = 4


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
    ruler: RowRuler | None = None  # where the row's millimetres really are (extract/ruler.py); None: nominal
    lean: GridWarp | None = None  # how the grid's vertical lines lean about the row (extract/ruler.py); None: upright


def empty_row(centre_y: float) -> RowTrace:
    none = np.zeros(0)
    return RowTrace(centre_y, np.nan, np.nan, np.nan, none, none, 0, np.zeros(0, dtype=bool), none, none)
