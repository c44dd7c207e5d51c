"""Sharpening a trace map with the page's own ink, at page resolution.

The segmenter works at half the page's resolution, and a map drawn at that size caps what the extractor can
read (a perfect working-size label of ECG-Image-Kit pages reads out at about 16 dB, the same pages' exact
masks at 26-30 dB). The page itself still has the full-resolution trace: inside the segmenter's band, a
pixel is trace as far as it is as dark as the trace is (relative to its local paper level), which puts the
trace edges back at page-pixel precision and drops the grid lines the band took in.

Ink score of a band pixel = (ink - paper ink) / (trace ink - paper ink), where ink is the darkness relative
to the local paper level, paper ink the median outside the band and trace ink a percentile over the band's
confident core. The extractor reads the score at `InkParams.threshold` instead of its map threshold.

Where the ink says nothing the map stands: a stretch of the band (a vertical run of band pixels in one
column) with no pixel at the threshold keeps the segmenter's confident core. On phone photos a thin printed
trace fades to grey along a row while the QRS stays dark, so the trace's ink level (taken over the whole
page) is above the faint stretches; scored alone they broke into gaps and stray fragments, which the readout
turned into NaN and spikes (real photos, lead II strip).

A phone's steep QRS strokes are a pixel or two wide and fainter than the baseline: their ink breaks into
pieces and loses the stroke's faint ends, while the map holds the whole stroke. With
`InkParams.stroke_threshold` set, inside each vertical band run the stretch from the first to the last hit,
and faint ink joined to a hit, are trace (`stroke_pixels`). The band, not the core, bounds a stroke: along a
faint stroke the map holds at 0.7-0.75 and dips under the core's threshold, which cut the stroke where it
dipped (real photo 02652 V4: an R wave of 2.3 mV read at 1.0; eik-dev/photo +0.44 dB, docs/tuning.md).
It is off by default because on a flat scan a grid line as dark as the trace is a hit inside a stroke's run,
and filling or joining from it spreads the stroke sideways; the Digitizer sets it for pages the frame
straightened, i.e. photographs (`pipeline/digitizer.extract_params_for`; figures in docs/tuning.md).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..segment.preprocess import flatten_illumination, to_gray_ink

# The page's ink sharpens the map only for a scan clearly finer than the map (the working frame of a canonical
# page is 100 dpi): from a scan no finer, the ink holds nothing the map lacks (figures: docs/tuning.md).
INK_SCAN_OVER_MAP = 1.15


@dataclass
class InkParams:
    band_threshold: float = 0.5  # segmenter probability that makes a pixel a candidate
    core_threshold: float = 0.7  # probability of the band's core, whose ink says how dark the trace is
    trace_percentile: float = 60.0  # of the core's ink: the trace's ink level (robust to blur and gaps)
    paper_window_mm: float = 2.8  # window of the local paper level: wider than any trace or grid line
    min_core_px: int = 200  # fewer confident pixels than this: the page's ink level is not known, keep the map
    min_contrast: float = 8.0  # trace ink this close to the paper's (of 255): the ink says nothing, keep the map
    threshold: float = 0.85  # ink score that counts as trace (0.8-0.85 beat 0.7 and 0.9 on eik-dev pages)
    # a thin, faint stroke's ink inside the core (stroke_pixels): the faint level that joins a hit; None: off
    # (see the module's note)
    stroke_threshold: float | None = None


def relative_ink(image_rgb: np.ndarray, px_per_mm: float, window_mm: float) -> np.ndarray:
    """float32 (H, W): darkness relative to the local paper level (0 on paper, up to 255 on black ink)."""
    kernel_px = max(3, int(round(window_mm * px_per_mm)) | 1)
    return flatten_illumination(to_gray_ink(np.asarray(image_rgb)), kernel_px).astype(np.float32)


def ink_score_map(trace_map: np.ndarray, image_rgb: np.ndarray, px_per_mm: float,
                  params: InkParams | None = None) -> np.ndarray | None:
    """float32 (H, W) ink score inside the band, 0 outside; None where the page's ink cannot be trusted (too
    few confident pixels, or a trace no darker than the paper), and the map should be read as it is."""
    params = params or InkParams()
    prob = np.asarray(trace_map, dtype=np.float32)
    if image_rgb is None or tuple(np.asarray(image_rgb).shape[:2]) != prob.shape:
        return None
    band = prob >= params.band_threshold
    core = prob >= params.core_threshold
    if int(core.sum()) < params.min_core_px or band.all():
        return None
    ink = relative_ink(image_rgb, px_per_mm, params.paper_window_mm)
    trace_ink = float(np.percentile(ink[core], params.trace_percentile))
    paper_ink = float(np.median(ink[~band]))
    if trace_ink - paper_ink < params.min_contrast:
        return None
    score = np.where(band, np.clip((ink - paper_ink) / (trace_ink - paper_ink), 0.0, 1.0), 0.0)
    faint = band_runs_without(band, score >= params.threshold)
    score = np.where(faint, core.astype(np.float32), score)
    if params.stroke_threshold is not None:
        strokes = stroke_pixels(band, score >= params.threshold, score >= params.stroke_threshold)
        score = np.where(strokes, 1.0, score)
    return score.astype(np.float32)


def band_runs_without(band: np.ndarray, hits: np.ndarray) -> np.ndarray:
    """bool (H, W): the band pixels of every vertical band run (one column, consecutive rows) that holds no
    hit."""
    band = np.asarray(band, dtype=bool)
    h, w = band.shape
    above = np.zeros_like(band)
    above[1:] = band[:-1]
    starts = band & ~above
    # number the runs column by column (transpose: a column's pixels are consecutive in the flat order)
    ids = np.cumsum(starts.T.ravel()).reshape(w, h).T
    ids = np.where(band, ids, 0)
    hit_count = np.bincount(ids.ravel(), weights=(np.asarray(hits, dtype=bool) & band).ravel(),
                            minlength=int(ids.max()) + 1)
    return band & (hit_count[ids] == 0)


def between_hits(runs_mask: np.ndarray, hits: np.ndarray) -> np.ndarray:
    """bool (H, W): the pixels of each vertical run of runs_mask that lie between two of its hits (both ends
    included): a hit at or above them and one at or below them in the same run."""
    mask_t = np.asarray(runs_mask, dtype=bool).T  # columns as rows: a column's pixels are consecutive
    hit_t = mask_t & np.asarray(hits, dtype=bool).T
    above = np.zeros_like(mask_t)
    above[:, 1:] = mask_t[:, :-1]
    below = np.zeros_like(mask_t)
    below[:, :-1] = mask_t[:, 1:]
    flat = mask_t.ravel()
    count = np.cumsum(hit_t.ravel(), dtype=np.int64)  # hits up to and including each pixel, in column order
    start = np.nonzero((mask_t & ~above).ravel())[0]
    end = np.nonzero((mask_t & ~below).ravel())[0]
    before_run = count[start] - hit_t.ravel()[start]  # hits before each run
    ids = np.cumsum((mask_t & ~above).ravel()) - 1  # run index of each pixel (meaningful on the mask)
    ids = np.where(flat, ids, 0)
    upto = count - before_run[ids]  # hits of the pixel's run at or above it
    after = count[end][ids] - count + hit_t.ravel()  # ... at or below it
    return (flat & (upto > 0) & (after > 0)).reshape(mask_t.shape).T


def stroke_pixels(band: np.ndarray, hits: np.ndarray, faint: np.ndarray) -> np.ndarray:
    """bool (H, W): trace pixels a thin, faint stroke leaves out of the hits, inside the segmenter's band.

    A phone's steep QRS stroke is a pixel or two wide and blurred: its ink reaches a fraction of the trace's
    darkness and varies along it, so the hits break it into pieces and lose its faint ends (the foot at the
    baseline, a tip), while the map holds the whole stroke (real photos: R waves of 1-1.5 mV read at 0.3-0.5).
    What the readout needs of a steep column is the stroke's extent, so within each vertical band run
    - everything between its first and last hit is trace (the gaps between the pieces), and
    - a stretch of faint ink (score >= stroke_threshold) joined to a hit is trace (hysteresis along the
      column: the stroke's faint end, where the image still shows it).
    (On a flat page a grid line as dark as the trace is a hit too: see the module's note.)"""
    band = np.asarray(band, dtype=bool)
    hits = band & np.asarray(hits, dtype=bool)
    weak = band & np.asarray(faint, dtype=bool)
    joined = weak & ~band_runs_without(weak, hits)
    return band & (joined | between_hits(band, hits | joined))


def map_finer_than_scan(map_px_per_mm: float, source_px_per_mm: float | None) -> bool:
    """Whether the trace map already resolves all the scan holds. A page scanned at 50-100 dpi and resized to
    the canonical 200 dpi has no detail beyond its own resolution: sharpening with its ink (ink.py) then only
    breaks its faint, blurred one-pixel trace into dashes where it falls between two pixel rows, and grid lines
    as dark as the trace join in (11 eik-dev/lowdpi pages under 100 dpi, segmenter maps: 7.2 dB with the ink, 10.3
    without)."""
    if source_px_per_mm is None or not np.isfinite(source_px_per_mm) or source_px_per_mm <= 0:
        return False
    return map_px_per_mm * INK_SCAN_OVER_MAP >= source_px_per_mm
