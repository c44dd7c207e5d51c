"""Standard printout layouts: which lead is drawn in which row and column, and over which time window.

Shared by the renderer (what to draw) and the extractor (what a found row/column means). Lead names are
canonical ('aVR', not 'AVR'); match record lead names with `canonical_lead_name`.
"""
from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class Cell:
    """One drawn segment: `lead` over the fraction [t0, t1) of the record's duration."""

    lead: str
    row: int
    col: int
    t0: float
    t1: float

    def sample_window(self, num_samples: int) -> tuple[int, int]:
        """[start, end) sample indices of this cell's time window."""
        return int(round(self.t0 * num_samples)), int(round(self.t1 * num_samples))


@dataclass(frozen=True)
class Layout:
    name: str
    grid: tuple[tuple[str, ...], ...]  # rows of leads sharing the time axis, split into equal columns
    rhythm: tuple[str, ...] = ()  # full-length strips below the grid

    @property
    def num_rows(self) -> int:
        return len(self.grid) + len(self.rhythm)

    @property
    def num_cols(self) -> int:
        return len(self.grid[0]) if self.grid else 1

    def cells(self) -> list[Cell]:
        cells = []
        for r, row in enumerate(self.grid):
            n = len(row)
            for c, lead in enumerate(row):
                cells.append(Cell(lead, r, c, c / n, (c + 1) / n))
        for k, lead in enumerate(self.rhythm):
            cells.append(Cell(lead, len(self.grid) + k, 0, 0.0, 1.0))
        return cells


_GRID_3X4 = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"))

LAYOUTS: dict[str, Layout] = {
    "3x4+1": Layout("3x4+1", _GRID_3X4, ("II",)),
    "3x4+3": Layout("3x4+3", _GRID_3X4, ("V1", "II", "V5")),
    "3x4": Layout("3x4", _GRID_3X4),
    "6x2": Layout("6x2", (("I", "V1"), ("II", "V2"), ("III", "V3"), ("aVR", "V4"), ("aVL", "V5"), ("aVF", "V6"))),
    "12x1": Layout("12x1", tuple((lead,) for lead in STANDARD_LEADS)),
}
DEFAULT_LAYOUT = "3x4+1"
