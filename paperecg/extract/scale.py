"""The extractor's page scale: the printed grid's period along each axis where the page shows a grid (read by
`rectify.grid`'s axis comb, `estimate_grid_scale`), else the lead-name columns' pitch or the page size
(`gridless_geometry`).
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..geometry import LeadNameBox, PageGeometry, page_size_px_per_mm
from ..rectify.grid import GridScale, estimate_grid_scale, grid_unresolved, square_grid

PAGE_SIZE_FACTOR = 1.2  # search range of the grid scale around the page-size scale there (5/4 is out)


def _layout_page_fractions(layout) -> dict[str, float]:
    """Lead -> the fraction of the page's time axis where the layout prints its name, for leads printed at
    one place only in a multi-column grid (a lead also printed in a rhythm strip or twice is left out: its
    box could be either)."""
    places: dict[str, set[float]] = {}
    for cell in layout.cells():
        places.setdefault(cell.lead, set()).add(cell.page_x0)
    return {lead: xs.pop() for lead, xs in places.items() if len(xs) == 1}


def scale_from_name_columns(boxes: list[LeadNameBox], duration_s: float, mm_per_s: float, tol_rel: float = 0.03,
                            min_names: int = 4) -> tuple[float, str] | None:
    """px per mm along the time axis from the horizontal pitch of the printed lead-name columns, for a page
    with no grid to measure: a known layout prints its columns a fixed time apart (3x4: 2.5 s = 62.5 mm at
    25 mm/s; 6x2: 5 s = 125 mm), and each name sits at the same offset from its column's start, so the
    names' left edges are a straight line in their columns' page time. The layout is the one whose line
    explains the most names within `tol_rel` of a column pitch; it must explain at least `min_names` in two
    or more columns and three quarters of the names it places, else None (a shuffled order, stray
    detections, a one-column page). Returns (px per mm, layout name)."""
    from ..layouts import LAYOUTS, printed_lead

    best: tuple[int, float, str] | None = None
    for name, layout in LAYOUTS.items():
        if layout.num_cols < 2:
            continue
        frac_of = _layout_page_fractions(layout)
        pts = [(frac_of[lead] * duration_s * mm_per_s, b.box.x0) for b in boxes
               for lead in [printed_lead(b.name)[0]] if lead in frac_of]
        if len(pts) < min_names:
            continue
        mm, px = np.array(pts).T
        pitch_mm = duration_s * mm_per_s / layout.num_cols
        # every pair of names in different columns proposes a slope; keep the one most names agree with
        i, j = np.triu_indices(mm.size, 1)
        apart = np.abs(mm[i] - mm[j]) > 0.5 * pitch_mm
        if not apart.any():
            continue
        slopes = (px[j] - px[i])[apart] / (mm[j] - mm[i])[apart]
        slopes = slopes[slopes > 0]
        for s in np.unique(np.round(slopes, 3)):
            resid = px - s * mm
            inl = np.abs(resid - np.median(resid)) <= tol_rel * s * pitch_mm
            if inl.sum() < max(min_names, 0.75 * mm.size) or np.unique(mm[inl]).size < 2:
                continue
            fit = float(np.polyfit(mm[inl], px[inl], 1)[0])  # least squares over the agreeing names
            if best is None or inl.sum() > best[0]:
                best = (int(inl.sum()), fit, name)
    return None if best is None else (best[1], best[2])


def gridless_geometry(geometry: PageGeometry, grid: GridScale | None, boxes: list[LeadNameBox] | None,
                      duration_s: float, max_disagreement: float = 0.03, page_size_tol: float = 0.01
                      ) -> tuple[PageGeometry, str | None]:
    """A page with no grid found on either axis takes its scale from its lead-name columns when they give a
    consistent pitch more than `page_size_tol` off the page size's (which is wrong for a crop or a photo
    close-up, and exact for a whole page), the same on both axes
    (paper millimetres are square; the pulses still set the gain). A grid found on one axis only is
    overruled by names that disagree with it by more than `max_disagreement`: on a page without a grid the
    trace's own beat-to-beat rhythm can pass for a grid along x (grid-less renders read 19 % small).
    Returns the geometry and a note saying which scale was used (None when the grid's stands)."""
    if grid is None or (grid.x.found and grid.y.found):
        return geometry, None
    one_axis = grid.x.found or grid.y.found
    by_names = scale_from_name_columns(boxes, duration_s, geometry.mm_per_s) if boxes else None
    # a scale far from the page size's is a misfit, not a crop: no page is cut to a third or magnified 3x
    if by_names is not None and not 1 / 3 < by_names[0] / geometry.px_per_mm_x < 3:
        by_names = None
    # names that agree with the scale at hand leave it: a whole page's size (or a grid comb) is the finer
    # ruler, names read by the detector are a few px off (grid-less renders: 0.1 % off, -0.5 dB)
    agree_tol = max_disagreement if one_axis else page_size_tol
    if by_names is not None and abs(by_names[0] / geometry.px_per_mm_x - 1) > agree_tol:
        px_per_mm, layout = by_names
        overruled = f" (a comb on one axis only, {geometry.px_per_mm_x:.3f} px/mm, overruled)" if one_axis else ""
        return replace(geometry, px_per_mm_x=px_per_mm, px_per_mm_y=px_per_mm), \
            f"no grid{overruled}: scale from lead-name columns ({layout}), {px_per_mm:.3f} px/mm"
    if one_axis:
        return geometry, None
    agree = f" (lead-name columns agree: {by_names[0]:.3f})" if by_names is not None else ""
    return geometry, f"no grid: scale from the page size, {geometry.px_per_mm_x:.3f} px/mm{agree}"


def page_geometry(image_rgb: np.ndarray | None, shape_hw: tuple[int, int], source_px_per_mm: float | None = None
                  ) -> tuple[PageGeometry, GridScale | None]:
    """Scale from the grid when the image shows one, else from the page size (letter printout).

    A scan too coarse to resolve the 1-mm lines (rectify.grid.grid_unresolved(source_px_per_mm)) shows them
    aliased, and the grid's comb then fits 5/4 of the true scale as well; such a scan is of a whole page, so
    the search stays within PAGE_SIZE_FACTOR of the page-size scale."""
    if image_rgb is not None:
        coarse_scan = source_px_per_mm is not None and grid_unresolved(source_px_per_mm)
        grid = estimate_grid_scale(image_rgb, prior_factor=PAGE_SIZE_FACTOR) if coarse_scan else \
            estimate_grid_scale(image_rgb)
        grid = square_grid(grid, page_size_px_per_mm(*shape_hw))
        return grid.geometry(), grid
    p = page_size_px_per_mm(*shape_hw)
    return PageGeometry(p, p), None
