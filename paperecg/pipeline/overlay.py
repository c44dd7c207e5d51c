"""Pictures of what the digitizer did: the digitized trace drawn back over the page.

A sample k of a lead drawn in row r sits at x = x_first(r) + k * px_per_sample (moved by the row's grid
ruler on a photographed page, extract/ruler.py) and
y = baseline_y(r) - mV * px_per_mv (+ the residual skew the extractor sheared out), the inverse of the
extractor's readout, in the rectified page's pixels. `rectified_to_original` takes those points back onto
the image as it was given (the rectifier's quarter turns and tilt undone), so a person sees the reading on
their own picture.

Each lead is drawn as its own pieces: a piece ends wherever the signal is NaN and wherever a new cell
(lead segment) starts, so nothing joins one lead's end to the next lead's start. The line is thin and
semi-transparent: where the reading is right it sits on the page's own trace; where it is wrong a person
sees two lines.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from paperecg.extract import Extraction
from paperecg.extract.ruler import ruled_x
from paperecg.geometry import rotate_points
from paperecg.layouts import STANDARD_LEADS, canonical_lead_name, lead_index
from paperecg.rectify.rectify import RectifiedPage

ABSTAIN_RGB = (255, 0, 160)
# One colour per standard lead (saturated, told apart on red, green, grey and black-and-white grids and on
# the black trace); other lead names take these in turn.
LEAD_RGB = (
    (0, 114, 255), (230, 0, 230), (0, 170, 60), (255, 120, 0), (120, 60, 255), (0, 180, 200),
    (220, 0, 60), (100, 150, 0), (0, 60, 200), (200, 0, 140), (0, 140, 140), (160, 80, 0),
)
SUBPIXEL_BITS = 4  # cv2 drawing with 1/16-pixel coordinates


@dataclass
class TracePiece:
    """One unbroken stretch of a lead's drawn samples: (K, 2) [x, y] pixels, K >= 2, samples [start, end)."""

    lead: str
    cell_start: int  # first sample of the cell (lead segment) the piece belongs to
    start: int
    end: int
    points_xy: np.ndarray


def lead_colour(lead: str) -> tuple[int, int, int]:
    name = canonical_lead_name(lead)
    if name in STANDARD_LEADS:
        return LEAD_RGB[STANDARD_LEADS.index(name)]
    return LEAD_RGB[sum(map(ord, name)) % len(LEAD_RGB)]


def finite_runs(valid: np.ndarray, min_len: int = 2) -> list[tuple[int, int]]:
    """[start, end) of every run of True at least min_len long."""
    d = np.diff(np.concatenate([[0], np.asarray(valid, dtype=np.int8), [0]]))
    starts, ends = np.nonzero(d == 1)[0], np.nonzero(d == -1)[0]
    return [(int(s), int(e)) for s, e in zip(starts, ends) if e - s >= min_len]


def trace_pieces(extraction: Extraction, signal_mv: np.ndarray, fs_hz: float, lead_names: list[str],
                 image_width_px: int) -> list[TracePiece]:
    """The digitized samples of every cell, in the rectified page's pixels, split at NaN samples.

    image_width_px: width of the page the extractor read (its residual skew was sheared about the middle
    column, and is put back here so the points lie on the page as it is)."""
    g = extraction.geometry
    px_per_sample = g.px_per_s / fs_hz
    x_mid = 0.5 * (image_width_px - 1)
    pieces: list[TracePiece] = []
    for cell in extraction.cells:
        j = lead_index(lead_names, cell.lead)
        if j is None or not 0 <= cell.row < len(extraction.rows):
            continue
        row = extraction.rows[cell.row]
        if not np.isfinite(row.x_first) or not np.isfinite(row.baseline_y):
            continue
        end = min(cell.end, signal_mv.shape[0])
        values = signal_mv[cell.start:end, j]
        # where the stretch lies on the row's time axis (simultaneous columns show the record's first window)
        page_start = cell.start if cell.page_start is None else cell.page_start
        for s, e in finite_runs(np.isfinite(values)):
            k = np.arange(cell.start + s, cell.start + e)
            xs = ruled_x(row.x_first + (k - cell.start + page_start) * px_per_sample, row.ruler)
            ys = row.baseline_y - values[s:e] * g.px_per_mv + extraction.skew * (xs - x_mid)
            pieces.append(TracePiece(canonical_lead_name(cell.lead), cell.start, int(k[0]), int(k[-1]) + 1,
                                     np.stack([xs, ys], axis=1)))
    return pieces


def rectified_to_original(points_xy: np.ndarray, rect: RectifiedPage, original_shape_hw: tuple[int, int]
                          ) -> np.ndarray:
    """[x, y] points of the rectified page -> the same points on the image as given.

    The rectifier area-reduced a very large input (input_scale), turned the image by `quarter_turns` (np.rot90,
    counter-clockwise), turned that by -angle_deg about its centre (same size), trimmed the fill border (trim_offset_px) and mapped the result onto the
    canonical page by its page frame (rectify/frame.py: homography + smooth warp + scale); this undoes the
    five in reverse order. The one place that knows that chain (`original_to_rectified` runs it forwards)."""
    pts = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    frame = getattr(rect, "frame", None)
    if frame is not None and not frame.is_identity:
        pts = np.asarray(frame.to_original(pts), dtype=np.float64).reshape(-1, 2)
    pts = pts + np.asarray(getattr(rect, "trim_offset_px", (0, 0)), dtype=np.float64)
    input_scale = float(getattr(rect, "input_scale", 1.0))
    h0, w0 = int(original_shape_hw[0]), int(original_shape_hw[1])
    if input_scale != 1.0:  # the chain started from the input area-reduced by input_scale (as cv2 sizes it)
        h0, w0 = max(1, round(h0 * input_scale)), max(1, round(w0 * input_scale))
    k = int(rect.quarter_turns) % 4
    h, w = (h0, w0) if k % 2 == 0 else (w0, h0)  # size of the turned image (the tilt keeps it)
    if rect.angle_deg:
        centre = ((h - 1) / 2.0, (w - 1) / 2.0)
        rc = rotate_points(pts[:, ::-1], float(rect.angle_deg), centre)  # undo the turn by -angle_deg
        pts = rc[:, ::-1]
    x, y = pts[:, 0].copy(), pts[:, 1].copy()
    for _ in range(k):
        # one np.rot90 turn maps (x, y) of an image of width W_before to (y, W_before - 1 - x);
        # undo it: the image before this turn has width = current height
        w_before = h
        x, y = w_before - 1 - y, x
        h, w = w, h
    if input_scale != 1.0:  # pixel centres: x_in + 0.5 = (x_small + 0.5) * (W_in / W_small)
        x = (x + 0.5) * (original_shape_hw[1] / w0) - 0.5
        y = (y + 0.5) * (original_shape_hw[0] / h0) - 0.5
    return np.stack([x, y], axis=1)


def original_to_rectified(points_xy: np.ndarray, rect: RectifiedPage, original_shape_hw: tuple[int, int]
                          ) -> np.ndarray:
    """[x, y] points of the image as given -> the same points on the rectified page: the rectifier's chain
    run forwards (reduce by input_scale, quarter turns, tilt about the turned image's centre, trim, page
    frame); the inverse of `rectified_to_original`."""
    pts = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
    x, y = pts[:, 0].copy(), pts[:, 1].copy()
    input_scale = float(getattr(rect, "input_scale", 1.0))
    h, w = int(original_shape_hw[0]), int(original_shape_hw[1])
    if input_scale != 1.0:  # cv2's area alignment: x_small + 0.5 = (x_in + 0.5) * (W_small / W_in)
        hs, ws = max(1, round(h * input_scale)), max(1, round(w * input_scale))
        x = (x + 0.5) * (ws / w) - 0.5
        y = (y + 0.5) * (hs / h) - 0.5
        h, w = hs, ws
    for _ in range(int(rect.quarter_turns) % 4):
        # one np.rot90 turn (counter-clockwise): (x, y) of an image of width W -> (y, W - 1 - x)
        x, y = y, w - 1 - x
        h, w = w, h
    pts = np.stack([x, y], axis=1)
    if rect.angle_deg:
        centre = ((h - 1) / 2.0, (w - 1) / 2.0)
        rc = rotate_points(pts[:, ::-1], -float(rect.angle_deg), centre)  # the image turned by -angle_deg
        pts = rc[:, ::-1]
    pts = pts - np.asarray(getattr(rect, "trim_offset_px", (0, 0)), dtype=np.float64)
    frame = getattr(rect, "frame", None)
    if frame is not None and not frame.is_identity:
        pts = np.asarray(frame.to_canonical(pts), dtype=np.float64).reshape(-1, 2)
    return pts


def draw_pieces(image_rgb: np.ndarray, pieces: list[tuple[str, np.ndarray]], alpha: float = 0.8,
                thickness_px: int = 1) -> np.ndarray:
    """The image with every (lead, points) piece drawn in the lead's colour, blended at `alpha` so the
    page's own trace shows beneath (anti-aliased, sub-pixel)."""
    img = np.ascontiguousarray(image_rgb[..., :3], dtype=np.uint8)
    colour = np.zeros_like(img)
    cover = np.zeros(img.shape[:2], dtype=np.uint8)
    scale = float(1 << SUBPIXEL_BITS)
    for lead, pts in pieces:
        p = np.round(np.asarray(pts) * scale).astype(np.int32).reshape(-1, 1, 2)
        if len(p) < 2:
            continue
        cv2.polylines(colour, [p], False, lead_colour(lead), thickness_px, cv2.LINE_AA, SUBPIXEL_BITS)
        cv2.polylines(cover, [p], False, 255, thickness_px, cv2.LINE_AA, SUBPIXEL_BITS)
    a = (alpha * cover.astype(np.float32) / 255.0)[..., None]
    # where pieces of two leads overlap the later colour wins; coverage is shared
    paint = np.where(cover[..., None] > 0, colour, img).astype(np.float32)
    return np.clip(img * (1.0 - a) + paint * a, 0, 255).astype(np.uint8)


def draw_labels(canvas: np.ndarray, labels: list[tuple[str, float, float]], font_scale: float) -> None:
    """Each (text, x, y) written just above (x, y) in the colour of the lead it starts with."""
    thickness = max(1, int(round(font_scale * 2)))
    for text, x, y in labels:
        lead = text.split(" ")[0]
        org = (int(round(x)), int(round(y - 8 * font_scale)))
        cv2.putText(canvas, text, org, cv2.FONT_HERSHEY_SIMPLEX, font_scale, lead_colour(lead), thickness,
                    cv2.LINE_AA)


def overlay_on_original(original_rgb: np.ndarray, rect: RectifiedPage, extraction: Extraction,
                        signal_mv: np.ndarray, fs_hz: float, lead_names: list[str],
                        lead_snr_db: dict[str, float] | None = None, alpha: float = 0.8,
                        thickness_px: int | None = None, labels: bool = True) -> np.ndarray:
    """The image as given, with the digitized trace of every lead drawn back on it (see the module doc);
    each cell's name (+ its SNR when given) at its first sample, and the abstained leads listed."""
    shape = original_rgb.shape[:2]
    pieces = trace_pieces(extraction, signal_mv, fs_hz, lead_names, rect.image.shape[1])
    mapped = [(p.lead, rectified_to_original(p.points_xy, rect, shape)) for p in pieces]
    if thickness_px is None:
        # about the pen of a printout (0.15 mm), never more than 2 px: thin enough to see the trace beneath
        thickness_px = int(np.clip(round(0.15 * extraction.geometry.px_per_mm_y), 1, 2))
    canvas = draw_pieces(original_rgb, mapped, alpha, thickness_px)
    font_scale = float(np.clip(max(shape) / 3000.0, 0.4, 1.5))
    if labels:
        first: dict[tuple[str, int], np.ndarray] = {}
        for p, (_lead, pts) in zip(pieces, mapped):
            first.setdefault((p.lead, p.cell_start), pts[0])
        text = []
        for (lead, _start), (x, y) in first.items():
            snr = (lead_snr_db or {}).get(lead)
            text.append((lead if snr is None else f"{lead} {snr:.1f} dB", x, y))
        draw_labels(canvas, text, font_scale)
        drawn = {p.lead.casefold() for p in pieces}
        missing = [n for n in lead_names if n.casefold() not in drawn]
        if missing:
            cv2.putText(canvas, "not read: " + ", ".join(missing), (20, shape[0] - 20), cv2.FONT_HERSHEY_SIMPLEX,
                        font_scale, ABSTAIN_RGB, max(1, int(round(font_scale * 2))), cv2.LINE_AA)
    return canvas
