"""Vertical runs of trace pixels, column by column, with sub-pixel edges.

A run is a maximal stretch of rows in one column whose trace probability is >= threshold. Edges are
continuous row coordinates (pixel centres at integers): where the probability crosses the threshold,
interpolated linearly between the two pixel centres around the crossing. A binary map therefore gives
edges at half-integers and a run length equal to its pixel count.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Runs:
    """All runs of a page, sorted by column then top edge."""

    col: np.ndarray  # int64 (K,)
    top: np.ndarray  # float64 (K,) upper edge (smaller row)
    bot: np.ndarray  # float64 (K,) lower edge
    height: int
    width: int

    def __len__(self) -> int:
        return int(self.col.size)

    @property
    def centre(self) -> np.ndarray:
        return 0.5 * (self.top + self.bot)

    @property
    def length(self) -> np.ndarray:
        return self.bot - self.top

    def subset(self, keep: np.ndarray) -> "Runs":
        return Runs(self.col[keep], self.top[keep], self.bot[keep], self.height, self.width)

    def joined(self, with_next: np.ndarray) -> "Runs":
        """Runs k and k + 1 made one wherever with_next[k] (K - 1 bools; runs of one column only): the first's
        top, the lowest bottom."""
        if len(self) < 2 or not with_next.any():
            return self
        starts = np.nonzero(np.concatenate([[True], ~with_next]))[0]
        return Runs(self.col[starts], self.top[starts], np.maximum.reduceat(self.bot, starts), self.height,
                    self.width)


def _crossing(p_out: np.ndarray, p_in: np.ndarray, threshold: float) -> np.ndarray:
    """Fraction of the way from the outside pixel centre to the inside one where p crosses threshold."""
    denom = np.maximum(p_in - p_out, 1e-6)
    return np.clip((threshold - p_out) / denom, 0.0, 1.0)


def find_runs(trace_map: np.ndarray, threshold: float = 0.5, max_gap_px: float = 0.0) -> Runs:
    """Runs of `trace_map >= threshold` in every column; runs closer than `max_gap_px` are merged
    (a segmentation that breaks a steep stroke into pieces still gives one crossing per column)."""
    prob = np.asarray(trace_map, dtype=np.float32)
    h, w = prob.shape
    on = prob >= threshold
    padded = np.zeros((w, h + 2), dtype=np.int8)
    padded[:, 1:-1] = on.T
    step = np.diff(padded, axis=1)  # (W, H+1): +1 where a run starts (at row i), -1 after it ends (row i-1)
    s_col, s_row = np.nonzero(step == 1)
    e_col, e_row = np.nonzero(step == -1)
    e_row = e_row - 1  # last row inside the run
    if s_col.size == 0:
        empty = np.zeros(0)
        return Runs(np.zeros(0, dtype=np.int64), empty, empty.copy(), h, w)
    # sub-pixel edges from the probability just outside the run
    above = np.where(s_row > 0, prob[np.maximum(s_row - 1, 0), s_col], 0.0)
    below = np.where(e_row < h - 1, prob[np.minimum(e_row + 1, h - 1), e_col], 0.0)
    top = s_row - 1 + _crossing(above, prob[s_row, s_col], threshold)
    bot = e_row + 1 - _crossing(below, prob[e_row, e_col], threshold)
    runs = Runs(s_col.astype(np.int64), top.astype(np.float64), bot.astype(np.float64), h, w)
    if max_gap_px > 0 and len(runs) > 1:
        same = runs.col[1:] == runs.col[:-1]
        runs = runs.joined(same & ((runs.top[1:] - runs.bot[:-1]) <= max_gap_px))
    return runs


def bridged_in_boxes(runs: Runs, boxes: list[tuple[float, float, float, float]], margin_px: float = 0.0,
                     min_end_px: float = 0.0) -> Runs:
    """Runs of one column that cross a box (x0, y0, x1, y1) of print joined into one: a chain of runs whose
    gaps all lie inside the box widened by margin_px, from a run that starts above the box to one that ends
    below it, both at least min_end_px long. A lead's name is printed where its trace starts, and a QRS stroke
    there can run right through it; the segmenter, taught to ignore print, leaves holes in the stroke where it
    crosses the letters, and the row would take the stroke's upper piece for all of it (a 1-mV S wave read at
    half depth). A chain that ends inside the box may be a letter's remains and is left as it is, and so is
    one whose end is a speck (a grid line along the box's edge)."""
    if len(runs) < 2 or not boxes:
        return runs
    offsets = column_index(runs)
    length = runs.length
    join = np.zeros(len(runs) - 1, dtype=bool)  # join[k]: run k is one stroke with run k + 1
    for x0, y0, x1, y1 in boxes:
        top_in, bot_in = y0 - margin_px, y1 + margin_px
        for c in range(max(0, int(np.ceil(x0))), min(runs.width, int(np.floor(x1)) + 1)):
            a, b = offsets[c], offsets[c + 1]
            k = a
            while k < b - 1:
                m = k  # the chain from run k down, each gap inside the widened box
                while m < b - 1 and runs.bot[m] >= top_in and runs.top[m + 1] <= bot_in:
                    m += 1
                if runs.top[k] < y0 and length[k] >= min_end_px:
                    ends = [e for e in range(k + 1, m + 1) if runs.bot[e] > y1 and length[e] >= min_end_px]
                    if ends:
                        join[k:ends[-1]] = True
                k = m + 1
    return runs.joined(join)


def column_index(runs: Runs) -> np.ndarray:
    """offsets (W+1,): runs of column c are runs[offsets[c]:offsets[c+1]]."""
    counts = np.bincount(runs.col, minlength=runs.width)
    return np.concatenate([[0], np.cumsum(counts)])
