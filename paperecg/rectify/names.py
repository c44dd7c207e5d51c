"""Lead names from the page's layout: the detector finds where names are printed far more reliably than which
name each one is ('aVR'/'aVL'/'aVF', 'I'/'II'/'III' and 'V1'..'V6' differ by a letter or a digit), while
the grid they sit on says which is which. Decoding picks the standard layout, and the mapping of the found
rows and columns of names onto its rows and columns, that agrees best with the detector's class scores, then
renames every detection after the cell it sits in.

Names of one column are left-aligned and names of one row share a baseline, so after the page's tilt is
turned back (fitted from the boxes, names ignored) rows and columns are clusters of box positions.
"""
from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np

from ..geometry import LeadNameBox
from ..layouts import LAYOUTS, Layout, align_rows
from .tilt import derotate, fit_tilt_from_boxes

ROW_GAP_HEIGHTS = 0.7  # a new row starts where box centres jump by more than this many name heights
COL_GAP_HEIGHTS = 2.0  # a new column starts where left edges jump by more than this many name heights
PLACE_WEIGHT = 0.5  # what placing a box in a printed cell earns, per unit of its strength
ASSIGN_COST = 0.02  # a box must earn more than this for its cell to be worth taking
MIN_BOXES = 3  # fewer boxes carry too little structure to decode
MIN_FAMILY_AGREEMENT = 0.6  # share of renamed boxes whose read name is of the layout name's family (else keep)
# The names as read (each printed once) replace the best known layout's when they explain the boxes by more
# than this much class score per box: a shuffled page's reads beat its best known layout by 0.4-0.6 per box
# (the demo's 3x4+1 page under a header block: see the commit), while a page of a known layout whose names the
# detector confuses loses nothing by the layout (its reads, made distinct, can only swap look-alikes).
SHUFFLED_MARGIN_PER_BOX = 0.15
MIN_READ_SCORE = 0.3  # a box outside the layout's cells is kept (renamed as read) from this best class score
MAX_COLUMNS = 6  # column clusters searched (the strongest); layouts print at most 4 columns of names


def cluster_1d(values: np.ndarray, gap: float) -> np.ndarray:
    """Cluster index per value (0 = smallest), a new cluster wherever sorted values jump by more than gap."""
    order = np.argsort(values)
    labels = np.empty(len(values), np.int64)
    k = 0
    for pos, i in enumerate(order):
        if pos > 0 and values[i] - values[order[pos - 1]] > gap:
            k += 1
        labels[i] = k
    return labels


def layout_cells(layout: Layout, class_names: tuple[str, ...]) -> np.ndarray:
    """(rows, cols) class index of the name printed in each cell; -1 where none is printed."""
    cells = np.full((layout.num_rows, layout.num_cols), -1, np.int64)
    index = {n: i for i, n in enumerate(class_names)}
    for cell in layout.cells():
        cells[cell.row, cell.col] = index.get(cell.lead, -1)
    return cells


def _monotone_maps(num_found: int, num_slots: int):
    """Every order-keeping assignment of found clusters to slots (a cluster may map to no slot: -1)."""
    for used in range(min(num_found, num_slots), 0, -1):
        for which in itertools.combinations(range(num_found), used):
            for slots in itertools.combinations(range(num_slots), used):
                m = np.full(num_found, -1, np.int64)
                m[list(which)] = slots
                yield m


ROW_GAP_COST = 0.5  # per row pitch by which two placed rows' distance on the page differs from the layout's


def _align_rows_spaced(gain: np.ndarray, row_y: np.ndarray, gap_cost: float = ROW_GAP_COST
                       ) -> tuple[float, np.ndarray]:
    """As `layouts.align_rows`, but the page's geometry counts too: printed rows are equally spaced, so two placed rows
    must lie as many row pitches apart as their layout rows (a missed row leaves a gap of two pitches; without
    this, a page missing one row's names slides every lower row up by one layout row). Pitch: the median gap
    between neighbouring found rows. Each placement pays gap_cost per pitch of disagreement with the previous
    placed row. (total, layout row per found row or -1)."""
    k_rows, s_rows = gain.shape
    if k_rows < 2:
        return align_rows(gain)
    gaps = np.diff(row_y)
    pitch = float(np.median(gaps[gaps > 0])) if (gaps > 0).any() else 1.0
    best = np.full((k_rows, s_rows), -np.inf)
    prev = np.full((k_rows, s_rows, 2), -1, np.int64)
    s_idx = np.arange(s_rows)
    for k in range(k_rows):
        for s in range(s_rows):
            g = gain[k, s]
            if g <= 0:
                continue
            value, from_ks = g, (-1, -1)
            if k > 0 and s > 0:
                dy = (row_y[k] - row_y[:k]) / pitch  # (k,)
                ds = s - s_idx[:s]  # (s,)
                cand = best[:k, :s] + g - gap_cost * np.abs(dy[:, None] - ds[None, :])
                i = int(np.argmax(cand))
                kk, ss = divmod(i, s)
                if cand[kk, ss] > value:
                    value, from_ks = float(cand[kk, ss]), (kk, ss)
            best[k, s] = value
            prev[k, s] = from_ks
    mapping = np.full(k_rows, -1, np.int64)
    if not np.isfinite(best).any() or best.max() <= 0:
        return 0.0, mapping
    k, s = np.unravel_index(int(np.argmax(best)), best.shape)
    total = float(best[k, s])
    while k >= 0:
        mapping[k] = s
        k, s = prev[k, s]
    return total, mapping


def upright_anchors(boxes: list[LeadNameBox]) -> tuple[np.ndarray, np.ndarray, float]:
    """(left edges, centre heights, median name height) with the page's tilt (fitted from the boxes) turned
    back: the names of a row then share y, those of a column their left edge."""
    tilt = fit_tilt_from_boxes(boxes)
    cy = np.array([b.box.cy for b in boxes])
    x0 = np.array([b.box.x0 for b in boxes])
    x_up, y_up = derotate(x0, cy, tilt.angle_deg if tilt.num_pairs else 0.0)
    return x_up, y_up, float(np.median([max(b.box.height, 1.0) for b in boxes]))


def decode_layout(boxes: list[LeadNameBox], scores: np.ndarray, class_names: tuple[str, ...],
                  layouts: list[Layout] | None = None) -> tuple[str | None, np.ndarray, np.ndarray]:
    """(layout name, class index per box, cell per box) of the layout and placement that best explain the
    boxes; boxes outside every cell get class and cell -1. (None, argmax classes, -1s) when there is too
    little to decode.

    A box placed in a printed cell earns PLACE_WEIGHT times its strength (its best class score: how sure the
    detector is that some name is printed there) plus its score for the cell's name. The first term makes the
    grid itself the main evidence (the true placement puts every real name in a cell, a shifted one leaves
    rows or columns over), the second picks among placements and layouts that fit the grid equally well."""
    n = len(boxes)
    fallback = (None, scores.argmax(1) if n else np.zeros(0, np.int64), np.full(n, -1, np.int64))
    if n < MIN_BOXES:
        return fallback
    strength = scores.max(1)
    x_up, y_up, h = upright_anchors(boxes)
    row_of = cluster_1d(y_up, ROW_GAP_HEIGHTS * h)
    col_of = cluster_1d(x_up, COL_GAP_HEIGHTS * h)
    # stray detections (header text, grid texture) make columns of their own: keep the strongest columns
    col_strength = np.bincount(col_of, weights=strength)
    kept_cols = np.sort(np.argsort(-col_strength)[:MAX_COLUMNS])
    col_rank = np.full(len(col_strength), -1, np.int64)
    col_rank[kept_cols] = np.arange(len(kept_cols))
    col_of = col_rank[col_of]  # -1: a box in a dropped column
    n_rows, n_cols = int(row_of.max()) + 1, len(kept_cols)
    row_y = np.array([float(np.mean(y_up[row_of == k])) for k in range(n_rows)])
    idx = np.arange(n)
    best_total, best = 0.0, fallback
    for layout in layouts or list(LAYOUTS.values()):
        cells = layout_cells(layout, class_names)
        for col_map in _monotone_maps(n_cols, cells.shape[1]):
            box_col = np.where(col_of >= 0, col_map[np.maximum(col_of, 0)], -1)
            # gain[k, s]: what putting found row k on layout row s earns
            gain = np.zeros((n_rows, cells.shape[0]))
            for s in range(cells.shape[0]):
                cls = np.where(box_col >= 0, cells[s, np.maximum(box_col, 0)], -1)
                earn = PLACE_WEIGHT * strength + scores[idx, np.maximum(cls, 0)] - ASSIGN_COST
                np.add.at(gain[:, s], row_of, np.where(cls >= 0, np.maximum(earn, 0.0), 0.0))
            total, row_map = _align_rows_spaced(gain, row_y)
            if total > best_total + 1e-9:
                box_row = row_map[row_of]
                ok = (box_row >= 0) & (box_col >= 0)
                # once rows and columns are placed, every box in a printed cell takes its name, however
                # little of that name's score the detector gave it ('III' read as 'II' is the usual case)
                cls = np.where(ok, cells[np.maximum(box_row, 0), np.maximum(box_col, 0)], -1)
                cell = np.where(cls >= 0, box_row * cells.shape[1] + box_col, -1)
                best_total, best = total, (layout.name, cls, cell)
    return best


def assign_layout_names(boxes: list[LeadNameBox], scores: np.ndarray, class_names: tuple[str, ...]
                        ) -> list[LeadNameBox]:
    """Rename detections after the best-fitting layout's cells. A renamed box keeps the detector's best class
    score as its score (how sure it is that a name is printed there); boxes outside every cell are dropped, and
    of two boxes in one cell the stronger stays. Returns the boxes unchanged when there is too little to
    decode (fewer than MIN_BOXES)."""
    layout, cls, cell = decode_layout(boxes, scores, class_names)
    if layout is None:
        return list(boxes)
    best_in_cell: dict[int, int] = {}
    strength = scores.max(1)
    for i, c in enumerate(cell):
        if c >= 0 and (c not in best_in_cell or strength[i] > strength[best_in_cell[c]]):
            best_in_cell[int(c)] = i
    keep = sorted(best_in_cell.values(), key=lambda i: -strength[i])
    read = scores.argmax(1)
    same_family = [name_family(class_names[read[i]]) == name_family(class_names[cls[i]]) for i in keep]
    if not keep or float(np.mean(same_family)) < MIN_FAMILY_AGREEMENT:
        # a printed order none of the known layouts has: the detector's own readings stand
        return list(boxes)
    as_read = distinct_reading(boxes, scores)
    layout_total = float(scores[keep, cls[keep]].sum())
    read_total = float(scores[np.arange(len(boxes)), as_read].sum())
    if read_total - layout_total > SHUFFLED_MARGIN_PER_BOX * len(boxes):
        # the names as read, each printed once, explain the boxes far better than any known layout: a printed
        # order of its own whose rows happen to share their name families with a shifted known layout
        # (the boxes the layout placed, and those surely a name: header text read weakly stays out)
        named = sorted(set(keep) | set(np.flatnonzero(strength >= MIN_READ_SCORE)))
        return [replace(boxes[i], name=class_names[as_read[i]], score=float(strength[i])) for i in named]
    return [replace(boxes[i], name=class_names[cls[i]], score=float(strength[i])) for i in keep]


def distinct_reading(boxes: list[LeadNameBox], scores: np.ndarray) -> np.ndarray:
    """Class per box: the detector's readings with every name printed once in the grid (the assignment of
    names to boxes with the largest total score), the rhythm strips apart. A strip is a row holding one name
    below rows holding several; it repeats a grid lead and keeps its own best reading."""
    from scipy.optimize import linear_sum_assignment

    n = len(boxes)
    if n == 0:
        return np.zeros(0, np.int64)
    _, y_up, h = upright_anchors(boxes)
    row_of = cluster_1d(y_up, ROW_GAP_HEIGHTS * h)
    per_row = np.bincount(row_of)
    multi = np.flatnonzero(per_row > 1)
    strip = (per_row[row_of] == 1) & (row_of > multi.max()) if multi.size else np.zeros(n, bool)
    out = scores.argmax(1).astype(np.int64)
    grid = np.flatnonzero(~strip)
    if grid.size:
        # with more boxes than names, the boxes left out of the assignment keep their own readings
        rows, cols = linear_sum_assignment(-scores[grid])
        out[grid[rows]] = cols
    return out


def name_family(name: str) -> str:
    """'limb' (I, II, III), 'augmented' (aVR, aVL, aVF) or 'chest' (V1-V6): a detector mixes names up within a
    family (a letter or a digit apart), hardly ever across families."""
    key = name.strip().lstrip("-").casefold()
    if key.startswith("av"):
        return "augmented"
    if key.startswith("v"):
        return "chest"
    return "limb"
