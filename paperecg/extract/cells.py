"""Which lead each stretch of each row is, and over which time window: from lead-name boxes when given,
else from the standard layouts (chosen by the number of rows found)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..geometry import LeadNameBox
from ..layouts import LAYOUTS, canonical_lead_name


@dataclass
class RowCell:
    """One lead drawn in one row over samples [start, end) of the record."""

    lead: str  # canonical name
    row: int
    start: int
    end: int
    source: str  # 'boxes' or the layout name


def layout_for_row_count(num_rows: int) -> str | None:
    """The standard layout with this many rows (3x4+3 for six rows: the more common long-strip format
    is told from 6x2 by `choose_six_row_layout`)."""
    by_rows = {3: "3x4", 4: "3x4+1", 6: "3x4+3", 12: "12x1"}
    return by_rows.get(num_rows)


def cells_from_layout(layout_name: str, num_samples: int, row_ids: list[int]) -> list[RowCell]:
    """Cells of a standard layout, mapped onto the given found rows (top to bottom)."""
    layout = LAYOUTS[layout_name]
    out = []
    for cell in layout.cells():
        if cell.row >= len(row_ids):
            continue
        s0, s1 = cell.sample_window(num_samples)
        out.append(RowCell(cell.lead, row_ids[cell.row], s0, s1, layout_name))
    return out


def _snap_fraction(frac: float, quarters_tol: float = 0.08) -> float:
    """Cell starts of every standard layout are multiples of a quarter of the record."""
    q = round(frac * 4) / 4
    return q if abs(frac - q) <= quarters_tol else frac


def assign_boxes_to_rows(boxes: list[LeadNameBox], centres: np.ndarray) -> list[int]:
    """Row index (nearest centre, -1 when none within a row spacing) for each box."""
    if centres.size == 0:
        return [-1] * len(boxes)
    spacing = float(np.median(np.diff(centres))) if centres.size > 1 else np.inf
    out = []
    for b in boxes:
        d = np.abs(centres - b.box.cy)
        i = int(np.argmin(d))
        out.append(i if d[i] <= 0.75 * spacing else -1)
    return out


def cells_from_boxes(boxes: list[LeadNameBox], centres: np.ndarray, row_x0: np.ndarray,
                     row_x1: np.ndarray, px_per_sample: float, num_samples: int) -> list[RowCell]:
    """Cells from the lead names printed on each row: a name's cell runs from its x to the next name's.

    row_x0: x of each row's first sample; row_x1: x of its last.
    """
    rows = assign_boxes_to_rows(boxes, centres)
    out: list[RowCell] = []
    for r in range(centres.size):
        mine = sorted((b for b, rr in zip(boxes, rows) if rr == r), key=lambda b: b.box.x0)
        if not mine or not np.isfinite(row_x0[r]):
            continue
        starts = []
        for b in mine:
            frac = (b.box.x0 - row_x0[r]) / px_per_sample / num_samples
            starts.append(int(round(_snap_fraction(max(frac, 0.0)) * num_samples)))
        row_end = int(round((row_x1[r] - row_x0[r]) / px_per_sample)) + 1
        row_end = min(num_samples, int(round(_snap_fraction(row_end / num_samples) * num_samples)))
        for i, b in enumerate(mine):
            s0 = starts[i]
            s1 = starts[i + 1] if i + 1 < len(mine) else row_end
            if s1 > s0:
                out.append(RowCell(canonical_lead_name(b.name), r, s0, min(s1, num_samples), "boxes"))
    return out
