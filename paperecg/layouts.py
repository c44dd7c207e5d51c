"""Standard printout layouts: which lead is drawn in which row and column, and over which time window.

Shared by the renderer (what to draw) and the extractor (what a found row/column means). Lead names are
canonical ('aVR', not 'AVR'); match record lead names with `canonical_lead_name`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STANDARD_LEADS: tuple[str, ...] = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
_CANONICAL = {name.casefold(): name for name in STANDARD_LEADS}


def canonical_lead_name(name: str) -> str:
    """'AVR' / 'avr' / ' aVR ' -> 'aVR'; unknown names are returned stripped."""
    return _CANONICAL.get(name.strip().casefold(), name.strip())


def lead_index(lead_names: list[str], name: str) -> int | None:
    """Index of `name` in `lead_names`, case-insensitively; None when absent."""
    key = name.strip().casefold()
    for i, n in enumerate(lead_names):
        if n.strip().casefold() == key:
            return i
    return None


def printed_lead(name: str) -> tuple[str, int]:
    """A printed lead label -> (canonical lead, sign): '-aVR' (Cabrera's inverted aVR) -> ('aVR', -1)."""
    text = name.strip().replace("\u2212", "-")
    if text.startswith("-") and len(text) > 1:
        return canonical_lead_name(text[1:]), -1
    return canonical_lead_name(text), 1


@dataclass(frozen=True)
class Cell:
    """One drawn segment: `lead` over the fraction [t0, t1) of the record's duration, printed at the fraction
    [x0, x1) of the page's time axis (equal to [t0, t1) unless columns are simultaneous), times `sign`
    (-1: the inverted lead is printed, as Cabrera's -aVR)."""

    lead: str
    row: int
    col: int
    t0: float
    t1: float
    sign: int = 1
    x0: float | None = None  # None: same as t0
    x1: float | None = None

    @property
    def page_x0(self) -> float:
        return self.t0 if self.x0 is None else self.x0

    @property
    def page_x1(self) -> float:
        return self.t1 if self.x1 is None else self.x1

    @property
    def printed_name(self) -> str:
        return ("-" if self.sign < 0 else "") + self.lead

    def sample_window(self, num_samples: int) -> tuple[int, int]:
        """[start, end) sample indices of this cell's time window."""
        return int(round(self.t0 * num_samples)), int(round(self.t1 * num_samples))


@dataclass(frozen=True)
class Layout:
    """Rows of printed leads. Grid rows share the page's time axis, split into equal columns; column c shows
    the record's fraction col_windows[c] (None: consecutive columns, c/n..(c+1)/n; ECG-Image-Kit's 6x2 prints
    both columns over the same first half). Names may carry a '-' (inverted lead, e.g. Cabrera's -aVR)."""

    name: str
    grid: tuple[tuple[str, ...], ...]  # rows of leads sharing the time axis, split into equal columns
    rhythm: tuple[str, ...] = ()  # full-length strips below the grid
    col_windows: tuple[tuple[float, float], ...] | None = None  # record fraction shown by each column

    @property
    def num_rows(self) -> int:
        return len(self.grid) + len(self.rhythm)

    @property
    def num_cols(self) -> int:
        return len(self.grid[0]) if self.grid else 1

    @property
    def simultaneous(self) -> bool:
        """Whether some column shows another time window than its place on the page."""
        return any(c.t0 != c.page_x0 or c.t1 != c.page_x1 for c in self.cells())

    def column_window(self, col: int, num_cols: int) -> tuple[float, float]:
        """Record fraction [t0, t1) shown by column `col` of a row of num_cols columns."""
        if self.col_windows is not None and num_cols == len(self.col_windows):
            return self.col_windows[col]
        return col / num_cols, (col + 1) / num_cols

    def rows(self) -> list[list[Cell]]:
        """The cells of each printed row, top to bottom."""
        rows: list[list[Cell]] = [[] for _ in range(self.num_rows)]
        for cell in self.cells():
            rows[cell.row].append(cell)
        return rows

    def cells(self) -> list[Cell]:
        cells = []
        for r, row in enumerate(self.grid):
            n = len(row)
            for c, printed in enumerate(row):
                lead, sign = printed_lead(printed)
                t0, t1 = self.column_window(c, n)
                x0, x1 = c / n, (c + 1) / n
                cells.append(Cell(lead, r, c, t0, t1, sign, None if x0 == t0 else x0, None if x1 == t1 else x1))
        for k, printed in enumerate(self.rhythm):
            lead, sign = printed_lead(printed)
            cells.append(Cell(lead, len(self.grid) + k, 0, 0.0, 1.0, sign))
        return cells


_GRID_3X4 = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"))
_GRID_6X2 = (("I", "V1"), ("II", "V2"), ("III", "V3"), ("aVR", "V4"), ("aVL", "V5"), ("aVF", "V6"))
# ECG-Image-Kit (the challenge's generator): 6x2 interleaves the two columns and prints the first 5 s in both;
# 12x1 runs the same interleaved order top to bottom
_EIK_ORDER = ("V4", "V1", "aVR", "I", "V5", "V2", "aVL", "II", "V6", "V3", "aVF", "III")
_GRID_6X2_EIK = (("V1", "V4"), ("I", "aVR"), ("V2", "V5"), ("II", "aVL"), ("V3", "V6"), ("III", "aVF"))
# Cabrera: limb leads in their angular order, aVR printed inverted
_CABRERA_LIMB = ("aVL", "I", "-aVR", "II", "aVF", "III")
_GRID_6X2_CABRERA = tuple(zip(_CABRERA_LIMB, ("V1", "V2", "V3", "V4", "V5", "V6")))

LAYOUTS: dict[str, Layout] = {
    "3x4+1": Layout("3x4+1", _GRID_3X4, ("II",)),
    "3x4+3": Layout("3x4+3", _GRID_3X4, ("V1", "II", "V5")),
    "3x4": Layout("3x4", _GRID_3X4),
    "6x2": Layout("6x2", _GRID_6X2),
    "12x1": Layout("12x1", tuple((lead,) for lead in STANDARD_LEADS)),
    "6x2-eik": Layout("6x2-eik", _GRID_6X2_EIK, ("II",), ((0.0, 0.5), (0.0, 0.5))),
    "12x1-eik": Layout("12x1-eik", tuple((lead,) for lead in _EIK_ORDER), ("II",)),
    "6x2-cabrera": Layout("6x2-cabrera", _GRID_6X2_CABRERA),
    "12x1-cabrera": Layout("12x1-cabrera", tuple((lead,) for lead in _CABRERA_LIMB + STANDARD_LEADS[6:])),
}
DEFAULT_LAYOUT = "3x4+1"


def align_rows(gain: np.ndarray) -> tuple[float, np.ndarray]:
    """Best order-keeping assignment of found rows (gain's rows) to layout rows (its columns), each found row
    to at most one layout row and back, by dynamic programming; (total gain, layout row per found row or -1).
    The one row matcher of the package: the lead-name decoder (rectify/names.py) and the extractor's cells
    (extract/cells.py) each score (found row, layout row) pairs their own way and place rows with it."""
    k_rows, s_rows = gain.shape
    best = np.zeros((k_rows + 1, s_rows + 1))
    step = np.zeros((k_rows + 1, s_rows + 1), np.int8)  # 0 skip found row, 1 skip layout row, 2 match
    for k in range(1, k_rows + 1):
        for s in range(1, s_rows + 1):
            options = (best[k - 1, s], best[k, s - 1], best[k - 1, s - 1] + gain[k - 1, s - 1])
            step[k, s] = int(np.argmax(options))
            best[k, s] = options[step[k, s]]
    mapping = np.full(k_rows, -1, np.int64)
    k, s = k_rows, s_rows
    while k > 0 and s > 0:
        if step[k, s] == 2:
            mapping[k - 1] = s - 1
            k, s = k - 1, s - 1
        elif step[k, s] == 1:
            s -= 1
        else:
            k -= 1
    return float(best[k_rows, s_rows]), mapping
