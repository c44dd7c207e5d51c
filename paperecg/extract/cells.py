"""Which lead each stretch of each row is, and over which time window.

With lead-name boxes: every name is tied to the row it labels (names sit at one consistent offset from their
row's baseline, above or below) and to the stretch of that row from its x to the next name's. The names'
arrangement is then compared with the known layouts (`paperecg.layouts.LAYOUTS`: textbook, ECG-Image-Kit,
Cabrera orders): when one explains nearly every name, its cells give each stretch's time window (ECG-Image-Kit's
6x2 prints the first 5 s in both columns, which the x position alone cannot tell) and its sign (-aVR), and fill in
names the detector missed. Otherwise each stretch's window is its place on the page's time axis, and where the
names are in an order no known layout has, a full-length strip's beats tell whether later columns show their own
window or the first one (`choose_column_windows`).

Without boxes: a standard layout chosen by the number of rows found (`layout_for_row_count`; six rows: 3x4+3 or
6x2 by the rhythm strips' likeness to the grid's windows, `choose_six_row_layout`); a row not found keeps its
place on the row pitch (`row_slots`). `choose_cells` tells that story.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..geometry import LeadNameBox
from ..layouts import LAYOUTS, Layout, align_rows, printed_lead
from .readout import quick_row_values
from .types import RowTrace

MIN_LAYOUT_AGREEMENT = 0.75  # share of the name boxes a known layout must explain to be taken
COL_TOL = 0.06  # a name may start this fraction of the time axis before its cell's page position
# six rows without names: 3x4+3 unless the rhythm strips' windows correlate less than this with the grid rows'
# (the same beats in 3x4+3 correlate far above it; different leads in 6x2 rarely reach it)
SIX_ROW_RHYTHM_MIN_CORR = 0.8


@dataclass
class RowCell:
    """One lead drawn in one row over samples [start, end) of the record."""

    lead: str  # canonical name
    row: int
    start: int
    end: int
    source: str  # 'boxes', 'boxes+LAYOUT' (names matched a known layout) or the layout name
    sign: int = 1  # -1: the printed trace is the inverted lead (Cabrera's -aVR)
    page_start: int | None = None  # sample position on the row's own time axis where the stretch begins
    # (differs from start when columns show simultaneous windows); None: same as start

    def start_on_row(self) -> int:
        """Where the stretch begins on its row's time axis (in samples)."""
        return self.start if self.page_start is None else self.page_start


def layout_for_row_count(num_rows: int) -> str | None:
    """The layout to assume with this many rows and no names (3x4+3 for six rows: the more common long-strip
    format is told from 6x2 by `choose_six_row_layout`; seven and thirteen rows are ECG-Image-Kit's 6x2 and
    12x1 pages, each with its lead-II strip)."""
    by_rows = {3: "3x4", 4: "3x4+1", 6: "3x4+3", 7: "6x2-eik", 12: "12x1", 13: "12x1-eik"}
    return by_rows.get(num_rows)


def _sample(frac: float, num_samples: int) -> int:
    return int(round(frac * num_samples))


def cells_from_layout(layout_name: str, num_samples: int, row_ids: list[int]) -> list[RowCell]:
    """Cells of a known layout, mapped onto the given found rows (top to bottom)."""
    layout = LAYOUTS[layout_name]
    out = []
    for cell in layout.cells():
        if cell.row >= len(row_ids):
            continue
        s0, s1 = cell.sample_window(num_samples)
        out.append(RowCell(cell.lead, row_ids[cell.row], s0, s1, layout_name, cell.sign,
                           _sample(cell.page_x0, num_samples)))
    return out


def _snap_fraction(frac: float, quarters_tol: float = 0.08) -> float:
    """Cell starts of every standard layout are multiples of a quarter of the record."""
    q = round(frac * 4) / 4
    return q if abs(frac - q) <= quarters_tol else frac


def name_offset(boxes: list[LeadNameBox], centres: np.ndarray) -> float:
    """How far below its row's baseline the page prints each name (negative: above): the offset that puts the
    most names on a found row (the smaller one of equal fits; see `assign_boxes_to_rows`)."""
    if centres.size < 2 or not boxes:
        return 0.0
    spacing = float(np.median(np.diff(centres)))
    cy = np.array([b.box.cy for b in boxes])
    d = cy[:, None] - centres[None, :]
    offsets = sorted({round(float(v), 1) for v in d.ravel() if abs(v) <= spacing}, key=abs) or [0.0]
    tol = 0.3 * spacing

    def fit(offset: float) -> tuple[int, float]:
        dist = np.abs(cy[:, None] - offset - centres[None, :]).min(axis=1)
        hit = dist <= tol
        return int(hit.sum()), float(dist[hit].sum())

    best, best_fit = offsets[0], fit(offsets[0])
    for off in offsets[1:]:
        f = fit(off)
        # more names on rows wins; then a smaller residual (a clearly better fit) over a smaller offset
        if f[0] > best_fit[0] or (f[0] == best_fit[0] and f[1] < 0.5 * best_fit[1]):
            best, best_fit = off, f
    return best


def rows_from_names(boxes: list[LeadNameBox], centres: np.ndarray) -> np.ndarray | None:
    """Row centres corrected by the names of the first column (one per printed row): a found row lying between
    two names one row pitch apart is not a row (a crossing blob, a row split by wander), and a name with no found
    row near it marks one. Returns the corrected centres, or None when the names change nothing."""
    if centres.size < 3 or len(boxes) < 3:
        return None
    pitch = float(np.median(np.diff(centres)))
    rough = name_offset(boxes, centres)
    # the offset fit counts names within 0.3 pitch of a row; found rows wander by a fraction of that, so the
    # offset itself is the median of the names' distances to their rows
    cy_all = np.array([b.box.cy for b in boxes])
    nearest = centres[np.abs(cy_all[:, None] - rough - centres[None, :]).argmin(axis=1)]
    offset = float(np.median(cy_all - nearest))
    x0 = np.array([b.box.x0 for b in boxes])
    first = x0 <= x0.min() + 0.5 * pitch  # names of the first column: one per row
    ys = np.sort(np.array([b.box.cy for b in boxes])[first] - offset)
    if ys.size < 3:
        return None
    named: list[float] = []
    for y in ys:  # one position per printed row
        if named and y - named[-1] < 0.5 * pitch:
            continue
        named.append(float(y))
    named_arr = np.array(named)
    tol = 0.3 * pitch
    keep = []
    for c in centres:
        below = named_arr[named_arr < c]
        above = named_arr[named_arr > c]
        near = np.abs(named_arr - c).min() <= tol
        between = below.size and above.size and (above[0] - below[-1]) < 1.5 * pitch
        if near or not between:
            keep.append(float(c))
    for y in named_arr:
        if not keep or np.abs(np.array(keep) - y).min() > tol:
            keep.append(float(y))
    new = np.sort(np.array(keep))
    if new.size == centres.size and np.allclose(new, centres):
        return None
    return new


def assign_boxes_to_rows(boxes: list[LeadNameBox], centres: np.ndarray) -> list[int]:
    """Row index for each box (-1: none). Names are printed at one offset from their row's baseline (below it
    on ECG-Image-Kit pages, above it on others), and on tightly packed pages (12x1) a name may be nearer the
    next row than its own; so the page's offset is the one that puts the most names on a row (`name_offset`),
    and each box goes to the row nearest its centre less that offset (within half a row spacing)."""
    if centres.size == 0 or not boxes:
        return [-1] * len(boxes)
    spacing = float(np.median(np.diff(centres))) if centres.size > 1 else np.inf
    offset = name_offset(boxes, centres)
    out = []
    for b in boxes:
        dist = np.abs(b.box.cy - offset - centres)
        i = int(np.argmin(dist))
        out.append(i if dist[i] <= 0.5 * spacing else -1)
    return out


@dataclass
class _Named:
    """One name box placed on the page: its row, its start as a fraction of the page's time axis."""

    box_index: int
    row: int
    frac: float
    lead: str
    sign: int


def _cell_at(cells: list, frac: float):
    for cell in cells:
        if cell.page_x0 - COL_TOL <= frac < cell.page_x1 - COL_TOL:
            return cell
    return None


def match_layout(named: list[_Named], found_rows: list[int], layouts: dict[str, Layout] | None = None
                 ) -> tuple[str | None, dict[int, int], float]:
    """The known layout, and the order-keeping map of found rows (with names) onto its rows, that explains the
    most names (a name is explained when the layout prints that lead at its place on the page). Returns
    (layout name or None, {found row: layout row}, share of names explained)."""
    if not named:
        return None, {}, 0.0
    best: tuple[str | None, dict[int, int], float] = (None, {}, 0.0)
    for name, layout in (layouts or LAYOUTS).items():
        lrows = layout.rows()
        gain = np.zeros((len(found_rows), len(lrows)))
        for k, r in enumerate(found_rows):
            for n in named:
                if n.row != r:
                    continue
                for s, cells in enumerate(lrows):
                    cell = _cell_at(cells, n.frac)
                    if cell is not None and cell.lead == n.lead and (n.sign > 0 or cell.sign < 0):
                        gain[k, s] += 1.0
                    else:
                        gain[k, s] -= 0.5
        total, mapping = align_rows(np.maximum(gain, 0.0))
        # a layout with rows left over (more rows than the page shows) is fine: names may be missed; a layout
        # that leaves named rows unplaced pays through the share
        share = total / len(named)
        if share > best[2] + 1e-9:
            best = (name, {r: int(s) for r, s in zip(found_rows, mapping) if s >= 0}, share)
    return best


def cells_from_boxes(boxes: list[LeadNameBox], centres: np.ndarray, row_x0: np.ndarray,
                     row_x1: np.ndarray, px_per_sample: float, num_samples: int,
                     layouts: dict[str, Layout] | None = None) -> list[RowCell]:
    """Cells from the lead names printed on each row.

    row_x0: x of each row's first sample; row_x1: x of its last (NaN for rows without a trace). The page's
    time axis starts at the median first sample of the rows. A name's stretch runs from its x to the next
    name's (or the row's end); its time window is its place on that axis, unless the names match a known
    layout, whose cells then say each stretch's window and sign (and add the cells of names not found)."""
    rows_of = assign_boxes_to_rows(boxes, centres)
    ok = np.isfinite(row_x0)
    if not ok.any():
        return []
    x_origin = float(np.median(row_x0[ok]))
    named: list[_Named] = []
    for i, (b, r) in enumerate(zip(boxes, rows_of)):
        if r < 0 or not ok[r]:
            continue
        lead, sign = printed_lead(b.name)
        frac = max((b.box.x0 - x_origin) / px_per_sample / num_samples, 0.0)
        named.append(_Named(i, r, frac, lead, sign))
    if not named:
        return []
    found_rows = sorted({n.row for n in named})
    layout_name, row_map, share = match_layout(named, found_rows, layouts)
    if layout_name is not None and share >= MIN_LAYOUT_AGREEMENT:
        cells = _cells_from_matched_layout(layout_name, row_map, named, num_samples, centres.size, ok)
        placed = {c.row for c in cells}
        rest = [n for n in named if n.row not in placed]  # named rows the layout has no place for
        return cells + _cells_from_positions(rest, row_x0, row_x1, x_origin, px_per_sample, num_samples)
    return _cells_from_positions(named, row_x0, row_x1, x_origin, px_per_sample, num_samples)


def _cells_from_matched_layout(layout_name: str, row_map: dict[int, int], named: list[_Named],
                               num_samples: int, num_rows: int, row_ok: np.ndarray) -> list[RowCell]:
    """Every cell of the matched layout on the found rows it was aligned with. Rows whose names were all missed
    are placed by counting: between two aligned rows when the gap is the layout's, and anywhere when the page
    traces exactly the layout's rows with the named ones in place."""
    layout = LAYOUTS[layout_name]
    mapping = dict(row_map)
    pairs = sorted(mapping.items())
    for (ra, sa), (rb, sb) in zip(pairs, pairs[1:]):
        if rb - ra == sb - sa:  # no row missing or extra in between: the unnamed rows follow the layout
            for k in range(1, rb - ra):
                mapping.setdefault(ra + k, sa + k)
    traced = np.nonzero(row_ok)[0]
    if pairs and len(traced) == layout.num_rows and all(traced[s] == r for r, s in pairs):
        # the page shows exactly the layout's rows, named ones in place: unnamed rows are the layout's too
        for s, r in enumerate(traced):
            mapping.setdefault(int(r), s)
    signs = {(n.row, n.lead): n.sign for n in named}
    by_layout_row: dict[int, list] = {}
    for cell in layout.cells():
        by_layout_row.setdefault(cell.row, []).append(cell)
    out = []
    for r, s in sorted(mapping.items()):
        if r >= num_rows or not row_ok[r]:
            continue
        for cell in by_layout_row.get(s, []):
            s0, s1 = cell.sample_window(num_samples)
            sign = -1 if (cell.sign < 0 or signs.get((r, cell.lead), 1) < 0) else 1
            out.append(RowCell(cell.lead, r, s0, s1, "boxes+" + layout_name, sign, _sample(cell.page_x0, num_samples)))
    return out


def _cells_from_positions(named: list[_Named], row_x0: np.ndarray, row_x1: np.ndarray, x_origin: float,
                          px_per_sample: float, num_samples: int) -> list[RowCell]:
    """A name's stretch runs from its x to the next name's on its row; its window is its page position."""
    out: list[RowCell] = []
    for r in sorted({n.row for n in named}):
        mine = sorted((n for n in named if n.row == r), key=lambda n: n.frac)
        starts = [_sample(_snap_fraction(n.frac), num_samples) for n in mine]
        row_end = int(round((row_x1[r] - x_origin) / px_per_sample)) + 1
        row_end = min(num_samples, _sample(_snap_fraction(row_end / num_samples), num_samples))
        for i, n in enumerate(mine):
            s0 = starts[i]
            s1 = starts[i + 1] if i + 1 < len(mine) else row_end
            if s1 > s0:
                out.append(RowCell(n.lead, r, s0, min(s1, num_samples), "boxes", n.sign))
    return out


@dataclass
class CellChoice:
    cells: list[RowCell]
    layout: str | None  # the known layout the cells come from (None: names in an order of their own)
    notes: list[str] = field(default_factory=list)


def choose_cells(rows: list[RowTrace], centres: np.ndarray, lead_name_boxes: list[LeadNameBox] | None,
                 fs_hz: float, px_per_sample: float, num_samples: int, width_px: float) -> CellChoice:
    """The page's cells: from the lead names when they are given and placed, else a standard layout by the
    number of rows; then the row's samples where each cell's stretch begins (`RowTrace.cell_starts`)."""
    usable = [i for i, rt in enumerate(rows) if np.isfinite(rt.x_first)]
    cells: list[RowCell] = []
    layout_name = None
    notes: list[str] = []
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
        if cell.start_on_row() > 0:
            rows[cell.row].cell_starts.append(cell.start_on_row())
    return CellChoice(cells, layout_name, notes)


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


def _nearest_layout(num_rows: int) -> str:
    return min(LAYOUTS, key=lambda k: (abs(LAYOUTS[k].num_rows - num_rows), k != "3x4+1"))


def choose_six_row_layout(rows: list[RowTrace], px_per_sample: float, num_samples: int, width_px: float) -> str:
    """3x4+3 or 6x2: both have six full-width rows. In 3x4+3 the three rhythm strips repeat what the grid
    shows in one quarter each (II in row 1's first quarter, V1 in row 0's third, V5 in row 1's last);
    in 6x2 those windows hold different leads. Decide by the correlation over the three windows."""
    if len(rows) != 6:
        return "3x4+3"
    vals = [quick_row_values(rt, px_per_sample, num_samples, width_px) for rt in rows]
    q = num_samples // 4
    pairs = [(1, 4, 0), (0, 3, 2), (1, 5, 3)]  # (grid row, rhythm row, quarter)
    corrs = []
    for a, b, k in pairs:
        u, v = vals[a][k * q:(k + 1) * q], vals[b][k * q:(k + 1) * q]
        ok = np.isfinite(u) & np.isfinite(v)
        if ok.sum() < 0.5 * q or np.std(u[ok]) < 1e-6 or np.std(v[ok]) < 1e-6:
            continue
        corrs.append(float(np.corrcoef(u[ok], v[ok])[0, 1]))
    if corrs and float(np.mean(corrs)) < SIX_ROW_RHYTHM_MIN_CORR:
        return "6x2"
    return "3x4+3"


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
    ref = beat_activity(quick_row_values(rows[full[0].row], px_per_sample, num_samples, width_px), fs_hz)
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
                    quick_row_values(rows[c.row], px_per_sample, num_samples, width_px), fs_hz)
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
