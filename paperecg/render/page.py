"""Render a 12-lead record to a printout-like page image with pixel-exact labels.

Defaults follow ECG-Image-Kit: US-letter 11 x 8.5 in at 200 dpi, 25 mm/s, 10 mm/mV, 1 mm / 5 mm grid,
trace ~0.75 pt. Drawing is OpenCV anti-aliased polylines on a 1/16-pixel grid (shift=4), so a sample at
time t sits at column x0 + t * px_per_s and at row baseline_row - v * px_per_mv to within 1/32 px.
The trace mask and lead mask come from the very same polylines drawn into label layers.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..geometry import MM_PER_INCH, Box, PageGeometry
from ..layouts import LAYOUTS, Layout, canonical_lead_name, lead_index
from .labels import LeadTrace, RenderedPage

SHIFT_BITS = 4  # OpenCV fixed-point sub-pixel bits
_SCALE = float(1 << SHIFT_BITS)
FONT = cv2.FONT_HERSHEY_SIMPLEX
# Anti-aliased coverage (0..255) at or above which a pixel counts as trace in the binary mask.
MASK_ALPHA_MIN = 64

RGB = tuple[int, int, int]

# (minor, major) grid colours of common printouts, RGB.
GRID_PRESETS: dict[str, tuple[RGB, RGB]] = {
    "red": ((248, 196, 196), (232, 120, 120)),
    "pink": ((252, 214, 224), (236, 150, 170)),
    "orange": ((252, 222, 190), (238, 160, 90)),
    "green": ((196, 228, 196), (110, 176, 110)),
    "blue": ((200, 216, 244), (110, 146, 222)),
    "gray": ((214, 214, 214), (150, 150, 150)),
    "teal": ((74, 134, 134), (37, 74, 26)),  # ECG-Image-Kit's dark look
}


@dataclass
class RenderStyle:
    dpi: float = 200.0
    layout: str = "3x4+1"  # key of paperecg.layouts.LAYOUTS
    custom_layout: Layout | None = None  # drawn instead of LAYOUTS[layout] (random lead orders)
    paper_w_in: float = 11.0
    paper_h_in: float = 8.5
    mm_per_s: float = 25.0
    mm_per_mv: float = 10.0
    paper_rgb: RGB = (255, 255, 255)
    grid_minor_rgb: RGB = GRID_PRESETS["red"][0]
    grid_major_rgb: RGB = GRID_PRESETS["red"][1]
    trace_rgb: RGB = (20, 20, 20)
    text_rgb: RGB = (20, 20, 20)
    bw: bool = False  # grayscale output
    show_grid: bool = True
    show_minor_grid: bool = True
    grid_dots: bool = False  # minor grid printed as dots at the 1 mm crossings (some printers)
    grid_origin_mm: tuple[float, float] = (0.0, 0.0)  # (x, y) offset of the grid lines
    grid_minor_px: int = 1
    grid_major_px: int = 2
    line_width_pt: float = 0.75
    calibration_pulse: bool = True
    column_separators: bool = True  # short bars at the start of columns 2.. (as ECG-Image-Kit)
    lead_names: bool = True
    lead_name_pos: str = "below"  # 'below' or 'above' the baseline at the segment start
    text_height_mm: float = 3.5
    font_face: int = cv2.FONT_HERSHEY_SIMPLEX  # any Hershey font (built into OpenCV)
    header_text: tuple[str, ...] = ()  # printed lines at the top-left (demographics, date, ...)
    footer_text: bool = True  # '25mm/s  10mm/mV' at the bottom
    margin_left_mm: float = 10.0
    margin_right_mm: float = 5.0
    margin_top_mm: float = 30.0  # above the first row's band
    margin_bottom_mm: float = 12.0
    row_offsets_mm: tuple[float, ...] = ()  # per-row baseline jitter (mm, + = down); missing rows 0
    baseline_frac: float = 0.55  # baseline position inside a row's band (0 top .. 1 bottom)

    @property
    def px_per_mm(self) -> float:
        return self.dpi / MM_PER_INCH

    @property
    def line_width_px(self) -> int:
        return max(1, int(round(self.line_width_pt / 72.0 * self.dpi)))


def _rand_rgb(rng: np.random.Generator, lo: int, hi: int) -> RGB:
    return tuple(int(v) for v in rng.integers(lo, hi + 1, size=3))


def _eik_grid(rng: np.random.Generator) -> tuple[RGB, RGB]:
    """Grid colours as ECG-Image-Kit draws them (channel ranges measured on its JSON, 136 pages): dark,
    saturated lines, the major red channel in 0..0.8, green and blue in 0..0.5; the minor red a little
    lighter than the major, its green and blue drawn anew in 0..0.7, so the minor grid is sometimes the
    darker one and sometimes as dark as the trace."""
    r_major = rng.uniform(0.0, 0.8)
    major = (r_major, rng.uniform(0.0, 0.5), rng.uniform(0.0, 0.5))
    minor = (r_major + (1.0 - r_major) * rng.uniform(0.0, 0.4), rng.uniform(0.0, 0.7), rng.uniform(0.0, 0.7))
    return tuple(int(255 * c) for c in minor), tuple(int(255 * c) for c in major)


def _random_grid(rng: np.random.Generator) -> tuple[RGB, RGB]:
    """(minor, major): a jittered preset, ECG-Image-Kit's dark random colours, or a random hue."""
    u = rng.random()
    if u < 0.35:
        return _eik_grid(rng)
    if u < 0.85:
        names = list(GRID_PRESETS)
        minor, major = GRID_PRESETS[names[rng.integers(len(names))]]
        jitter = rng.integers(-12, 13, size=3)
        minor = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(minor, jitter))
        major = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(major, jitter))
        return minor, major
    # a random hue: major darker than minor
    base = rng.uniform(0.0, 1.0, size=3)
    major = tuple(int(60 + 170 * b) for b in base)
    minor = tuple(int(c + (255 - c) * rng.uniform(0.4, 0.7)) for c in major)
    return minor, major


def _random_header(rng: np.random.Generator) -> tuple[str, ...]:
    rid = f"{rng.integers(0, 99999):05d}"
    sex = ["Male", "Female", "Unknown"][rng.integers(3)]
    date = f"{rng.integers(1985, 2025)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}"
    time = f"{rng.integers(0, 24):02d}:{rng.integers(0, 60):02d}:{rng.integers(0, 60):02d}"
    lines = [f"ID: {rid}", f"Age: {rng.integers(18, 95)} yrs", f"Sex: {sex}", f"Date: {date}, {time}"]
    if rng.random() < 0.5:
        lines.append(f"Vent rate: {rng.integers(45, 140)} bpm   PR: {rng.integers(120, 220)} ms")
    return tuple(lines[: rng.integers(2, len(lines) + 1)])


SHUFFLED_ORDER_SHARE = 0.15  # random styles drawing a layout's grid with its leads in a random order


def shuffled_layout(layout: Layout, rng: np.random.Generator) -> Layout:
    """The layout's grid with its twelve leads in a random order (printers differ; lead identity must come from
    the printed names), its columns randomly simultaneous (each showing the first 1/n of the record) or
    consecutive, and the rhythm strips kept."""
    printed = [lead for row in layout.grid for lead in row]
    order = [printed[i] for i in rng.permutation(len(printed))]
    n_cols = layout.num_cols
    grid = tuple(tuple(order[r * n_cols:(r + 1) * n_cols]) for r in range(len(layout.grid)))
    windows = None
    if n_cols > 1 and rng.random() < 0.5:
        windows = tuple((0.0, 1.0 / n_cols) for _ in range(n_cols))
    return Layout(f"{layout.name}~shuffled", grid, layout.rhythm, windows)


def page_layout(style: RenderStyle) -> Layout:
    """The layout a style draws: its custom one, else LAYOUTS[style.layout]."""
    if style.custom_layout is not None:
        return style.custom_layout
    if style.layout not in LAYOUTS:
        raise ValueError(f"unknown layout {style.layout!r}; choose one of {sorted(LAYOUTS)}")
    return LAYOUTS[style.layout]


def random_style(rng: np.random.Generator | int | None = None, layout: str | None = None,
                 dpi: float | None = None) -> RenderStyle:
    """A random but plausible printout style (grid colours, B&W, no grid, widths, offsets, margins)."""
    rng = np.random.default_rng(rng)
    chosen_at_random = layout is None
    if layout is None:
        # ECG-Image-Kit's 6x2 and 12x1 orders as often as the textbook ones; Cabrera now and then
        names = ["3x4+1", "3x4+1", "3x4+1", "3x4+3", "3x4", "6x2", "12x1", "6x2-eik", "12x1-eik", "6x2-cabrera",
                 "12x1-cabrera"]
        layout = names[rng.integers(len(names))]
    minor, major = _random_grid(rng)
    bw = bool(rng.random() < 0.2)
    show_grid = bool(rng.random() < 0.93)
    header = _random_header(rng) if rng.random() < 0.5 else ()
    num_rows = LAYOUTS[layout].num_rows
    # only a randomly chosen layout is sometimes reordered (a caller asking for a layout gets that layout)
    custom = (shuffled_layout(LAYOUTS[layout], rng) if chosen_at_random and rng.random() < SHUFFLED_ORDER_SHARE
              else None)
    row_jitter = rng.uniform(0.0, 3.0)
    trace = _rand_rgb(rng, 0, 60) if rng.random() < 0.85 else (int(rng.integers(0, 40)), int(rng.integers(0, 60)),
                                                                int(rng.integers(80, 160)))
    paper = (255, 255, 255) if rng.random() < 0.6 else tuple(int(v) for v in 255 - rng.integers(0, 14, size=3))
    top = (rng.uniform(22, 45) if header else rng.uniform(5, 40)) if num_rows <= 6 else rng.uniform(5, 25)
    # some printers halve the gain when 12 rows share a page
    mm_per_mv = 5.0 if (num_rows > 6 and rng.random() < 0.25) else 10.0
    text = _rand_rgb(rng, 0, 50)
    if rng.random() < 0.05:
        # a monitor: dark screen, dim grid, bright traces (photos of monitors are in the hidden set)
        paper = _rand_rgb(rng, 0, 25)
        hue = rng.uniform(0.3, 1.0, size=3)
        minor = tuple(int(p + 30 * h) for p, h in zip(paper, hue))
        major = tuple(int(p + 70 * h) for p, h in zip(paper, hue))
        bright = [(0, 255, 0), (255, 255, 0), (255, 255, 255), (0, 255, 255), (120, 255, 120)]
        trace = bright[int(rng.integers(len(bright)))]
        text = trace
        bw = False
    return RenderStyle(
        dpi=float(dpi) if dpi else 200.0,
        mm_per_mv=mm_per_mv,
        layout=layout,
        custom_layout=custom,
        paper_rgb=paper,
        grid_minor_rgb=minor,
        grid_major_rgb=major,
        trace_rgb=trace,
        text_rgb=text,
        bw=bw,
        show_grid=show_grid,
        show_minor_grid=bool(rng.random() < 0.9),
        grid_dots=bool(rng.random() < 0.1),
        grid_origin_mm=(float(rng.uniform(0, 5)), float(rng.uniform(0, 5))) if rng.random() < 0.5 else (0.0, 0.0),
        grid_minor_px=1,
        grid_major_px=int(rng.integers(1, 3)),
        line_width_pt=float(rng.uniform(0.5, 1.4)),
        calibration_pulse=bool(rng.random() < 0.8),
        column_separators=bool(rng.random() < 0.7),
        lead_names=bool(rng.random() < 0.97),
        lead_name_pos="below" if rng.random() < 0.6 else "above",
        text_height_mm=float(rng.uniform(2.5, 4.5)),
        font_face=int(rng.choice([cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX,
                                  cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_TRIPLEX])),
        header_text=header,
        footer_text=bool(rng.random() < 0.6),
        margin_left_mm=float(rng.uniform(3, 14)),
        margin_right_mm=float(rng.uniform(2, 8)),
        margin_top_mm=float(top),
        margin_bottom_mm=float(rng.uniform(6, 18)),
        row_offsets_mm=tuple(float(v) for v in rng.normal(0.0, row_jitter, size=num_rows)),
        baseline_frac=float(rng.uniform(0.4, 0.65)),
    )


# --- drawing primitives ---------------------------------------------------------------------------------

def _fixed_xy(rows_cols: np.ndarray) -> np.ndarray:
    """[row, col] floats -> OpenCV int32 (x, y) points in 1/16 px."""
    xy = np.round(rows_cols[:, ::-1] * _SCALE)
    return np.clip(xy, -(2 ** 26), 2 ** 26).astype(np.int32)


def _finite_runs(rows_cols: np.ndarray) -> list[np.ndarray]:
    """Split a polyline at NaN samples (not drawn) into runs of >= 1 finite point."""
    ok = np.all(np.isfinite(rows_cols), axis=1)
    if ok.all():
        return [rows_cols]
    runs, start = [], None
    for i, good in enumerate(np.append(ok, False)):
        if good and start is None:
            start = i
        elif not good and start is not None:
            runs.append(rows_cols[start:i])
            start = None
    return runs


def draw_polyline(canvas: np.ndarray, rows_cols: np.ndarray, color, thickness_px: int,
                  antialias: bool = True) -> None:
    """Sub-pixel polyline (NaN rows break it); single points become dots."""
    line_type = cv2.LINE_AA if antialias else cv2.LINE_8
    pts = [_fixed_xy(run) for run in _finite_runs(rows_cols)]
    pts = [p if len(p) > 1 else np.repeat(p, 2, axis=0) for p in pts if len(p)]
    if pts:
        cv2.polylines(canvas, pts, False, color, int(thickness_px), line_type, SHIFT_BITS)


def draw_grid(image: np.ndarray, px_per_mm: float, origin_mm: tuple[float, float], minor_rgb: RGB,
              major_rgb: RGB, minor_px: int, major_px: int, show_minor: bool, dots: bool = False) -> None:
    """1 mm minor and 5 mm major lines over the whole page (major drawn last, on top); with `dots` the
    minor grid is dots at the 1 mm crossings."""
    h, w = image.shape[:2]
    width_mm, height_mm = w / px_per_mm, h / px_per_mm
    lines: dict[bool, list] = {False: [], True: []}
    for axis, extent_mm, origin in ((0, width_mm, origin_mm[0]), (1, height_mm, origin_mm[1])):
        k0 = int(math.floor(-origin))
        for k in range(k0, int(math.ceil(extent_mm - origin)) + 1):
            pos = (origin + k) * px_per_mm
            if pos < -2 or pos > (w if axis == 0 else h) + 2:
                continue
            p = int(round(pos * _SCALE))
            seg = ((p, 0), (p, int(h * _SCALE))) if axis == 0 else ((0, p), (int(w * _SCALE), p))
            lines[k % 5 == 0].append(seg)
    if dots and show_minor:
        h, w = image.shape[:2]
        xs = np.round((origin_mm[0] + np.arange(math.floor(-origin_mm[0]), width_mm - origin_mm[0] + 1)) * px_per_mm)
        ys = np.round((origin_mm[1] + np.arange(math.floor(-origin_mm[1]), height_mm - origin_mm[1] + 1)) * px_per_mm)
        size = max(1, int(round(px_per_mm / 5.0)))  # ~0.2 mm dots
        for d in range(size):
            cx = (xs + d).astype(int)
            cy = (ys + d).astype(int)
            cx, cy = cx[(cx >= 0) & (cx < w)], cy[(cy >= 0) & (cy < h)]
            for e in range(size):
                image[np.ix_(np.clip(cy, 0, h - 1), np.clip(cx - d + e, 0, w - 1))] = minor_rgb
        show_minor = False
    for major in (False, True):
        if not major and not show_minor:
            continue
        color = major_rgb if major else minor_rgb
        thick = major_px if major else minor_px
        for a, b in lines[major]:
            cv2.line(image, a, b, color, thick, cv2.LINE_AA, SHIFT_BITS)


@functools.lru_cache(maxsize=4)
def _paper(h: int, w: int, px_per_mm: float, paper_rgb: RGB, show_grid: bool, origin_mm: tuple[float, float],
           minor_rgb: RGB, major_rgb: RGB, minor_px: int, major_px: int, show_minor: bool,
           dots: bool = False) -> np.ndarray:
    """Blank gridded paper; cached because consecutive pages often share a style (copy before drawing)."""
    image = np.empty((h, w, 3), np.uint8)
    image[:] = paper_rgb
    if show_grid:
        draw_grid(image, px_per_mm, origin_mm, minor_rgb, major_rgb, minor_px, major_px, show_minor, dots)
    image.setflags(write=False)
    return image


def draw_label_masks(pixels_per_lead: list[np.ndarray], height: int, width: int, thickness_px: int
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(trace_mask bool, lead_mask uint8 (k + 1 = lead k), alpha uint8 coverage) drawn as the same
    anti-aliased polylines that draw the ink, one per lead."""
    alpha = np.zeros((height, width), np.uint8)
    ids = np.zeros((height, width), np.uint8)
    for k, pix in enumerate(pixels_per_lead, start=1):
        draw_polyline(alpha, pix, 255, thickness_px)
        # ids a little wider than the ink so every masked pixel gets a lead; later leads win overlaps
        draw_polyline(ids, pix, k, thickness_px + 2, antialias=False)
    mask = alpha >= MASK_ALPHA_MIN
    return mask, np.where(mask, ids, 0).astype(np.uint8), alpha


def _text_scale(text_height_px: float) -> float:
    # Hershey simplex capital height is about 22 px at scale 1
    return max(0.2, text_height_px / 22.0)


def draw_text(image: np.ndarray, text: str, x_px: float, top_px: float, height_px: float, color,
              font: int = FONT) -> Box:
    """Put `text` with its ink's top-left near (x_px, top_px); returns the exact ink box (measured by
    drawing the text once on a small scratch canvas)."""
    scale = _text_scale(height_px) * (1.6 if font == cv2.FONT_HERSHEY_PLAIN else 1.0)
    thick = max(1, int(round(height_px / 12.0)))
    (tw, th), base = cv2.getTextSize(text, font, scale, thick)
    pad = thick + 2 + int(0.3 * th)
    scratch = np.zeros((th + base + 2 * pad, tw + 2 * pad), np.uint8)
    cv2.putText(scratch, text, (pad, pad + th), font, scale, 255, thick, cv2.LINE_AA)
    ys, xs = np.nonzero(scratch > 40)
    if len(xs) == 0:
        return Box(x_px, top_px, x_px, top_px)
    # place so that the ink's top-left lands at (x_px, top_px)
    ox = int(round(x_px)) - (xs.min() - pad)
    oy = int(round(top_px)) - (ys.min() - pad - th)
    cv2.putText(image, text, (ox, oy), font, scale, color, thick, cv2.LINE_AA)
    return Box(float(ox + xs.min() - pad - 0.5), float(oy - th + ys.min() - pad - 0.5),
               float(ox + xs.max() - pad + 0.5), float(oy - th + ys.max() - pad + 0.5))


# --- page plan ------------------------------------------------------------------------------------------

@dataclass
class _Plan:
    geometry: PageGeometry
    width_px: int
    height_px: int
    x0_px: float  # column of time 0
    baselines_px: list[float]  # per layout row
    pulse_x_px: float  # left edge of the calibration pulse


def plan_page(style: RenderStyle, duration_s: float) -> _Plan:
    """Where the time axis and each row's baseline go; shrinks mm/s only if the record cannot fit."""
    px_mm = style.px_per_mm
    layout = page_layout(style)
    paper_w_mm, paper_h_mm = style.paper_w_in * MM_PER_INCH, style.paper_h_in * MM_PER_INCH
    pulse_mm = (0.2 * style.mm_per_s + 2.0) if style.calibration_pulse else 0.0
    mm_per_s = style.mm_per_s
    left = style.margin_left_mm
    avail = paper_w_mm - style.margin_right_mm - pulse_mm
    if left + duration_s * mm_per_s > avail:
        left = max(2.0, avail - duration_s * mm_per_s)
        if left + duration_s * mm_per_s > avail:
            mm_per_s = (avail - left) / max(duration_s, 1e-6)
    x0_mm = left + pulse_mm
    header_mm = (3.0 + 1.6 * style.text_height_mm * len(style.header_text)) if style.header_text else 0.0
    top, bottom = max(style.margin_top_mm, header_mm), paper_h_mm - style.margin_bottom_mm
    if bottom - top < 15.0 * layout.num_rows:  # margins too big for many rows: give rows room
        top, bottom = max(5.0, header_mm), paper_h_mm - min(style.margin_bottom_mm, 8.0)
    pitch = (bottom - top) / layout.num_rows
    baselines = []
    for r in range(layout.num_rows):
        off = style.row_offsets_mm[r] if r < len(style.row_offsets_mm) else 0.0
        off = float(np.clip(off, -0.2 * pitch, 0.2 * pitch))  # jitter never swaps or merges rows
        baselines.append((top + (r + style.baseline_frac) * pitch + off) * px_mm)
    geom = PageGeometry(px_mm, px_mm, mm_per_s=mm_per_s, mm_per_mv=style.mm_per_mv)
    return _Plan(geom, int(round(paper_w_mm * px_mm)), int(round(paper_h_mm * px_mm)), x0_mm * px_mm,
                 baselines, left * px_mm)


def _pulse_points(x_px: float, baseline_px: float, px_per_s: float, px_per_mv: float) -> np.ndarray:
    """1 mV, 0.2 s rectangular calibration pulse with short flat lead-in and lead-out, [row, col]."""
    w = 0.2 * px_per_s
    lead = 0.04 * px_per_s
    xs = [x_px, x_px + lead, x_px + lead, x_px + lead + w, x_px + lead + w, x_px + 2 * lead + w]
    ys = [baseline_px, baseline_px, baseline_px - px_per_mv, baseline_px - px_per_mv, baseline_px, baseline_px]
    return np.stack([ys, xs], axis=1)


def _match_columns(lead_names: list[str], layout: Layout) -> dict[str, int]:
    idx = {}
    for cell in layout.cells():
        j = lead_index(lead_names, cell.lead)
        if j is not None:
            idx[cell.lead] = j
    return idx


def _grayscale(image: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return cv2.cvtColor(g, cv2.COLOR_GRAY2RGB)


def render_page(signal_mv: np.ndarray, fs_hz: float, lead_names: list[str], style: RenderStyle | None = None,
                rng: np.random.Generator | int | None = None) -> RenderedPage:
    """Draw `signal_mv` (num_samples, num_leads) in the style's layout.

    style None: the default (ECG-Image-Kit-like) style, or `random_style(rng)` when rng is given. Leads the
    layout asks for but the record lacks are skipped; NaN samples are not drawn. Deterministic: the same
    inputs give the same page.
    """
    if style is None:
        style = RenderStyle() if rng is None else random_style(rng)
    layout = page_layout(style)
    sig = np.asarray(signal_mv, dtype=np.float64)
    if sig.ndim != 2 or sig.shape[1] != len(lead_names):
        raise ValueError(f"signal shape {sig.shape} does not match {len(lead_names)} lead names")
    num_samples = sig.shape[0]
    fs_hz = float(fs_hz)
    plan = plan_page(style, num_samples / fs_hz)
    geom = plan.geometry
    h, w = plan.height_px, plan.width_px
    px_per_s, px_per_mv, px_mm = geom.px_per_s, geom.px_per_mv, geom.px_per_mm_x

    image = _paper(h, w, px_mm, style.paper_rgb, style.show_grid, tuple(style.grid_origin_mm),
                   tuple(style.grid_minor_rgb), tuple(style.grid_major_rgb), style.grid_minor_px,
                   style.grid_major_px, style.show_minor_grid, style.grid_dots).copy()
    thick = style.line_width_px
    columns = _match_columns(lead_names, layout)
    text_px = style.text_height_mm * px_mm

    leads: list[LeadTrace] = []
    seen_rows: set[int] = set()
    for cell in layout.cells():
        base = plan.baselines_px[cell.row]
        s0, s1 = cell.sample_window(num_samples)
        if style.calibration_pulse and cell.row not in seen_rows:
            draw_polyline(image, _pulse_points(plan.pulse_x_px, base, px_per_s, px_per_mv), style.trace_rgb, thick)
        seen_rows.add(cell.row)
        page_s0 = int(round(cell.page_x0 * num_samples))  # where the window is printed on the time axis
        x_start = plan.x0_px + page_s0 / fs_hz * px_per_s
        if style.column_separators and cell.col > 0:
            bar = np.array([[base - 0.5 * px_per_mv, x_start], [base + 0.5 * px_per_mv, x_start]])
            draw_polyline(image, bar, style.trace_rgb, max(2, thick + 1))
        j = columns.get(cell.lead)
        if j is None or s1 <= s0:
            continue
        t_s = np.arange(page_s0, page_s0 + s1 - s0) / fs_hz
        pix = np.stack([base - cell.sign * sig[s0:s1, j] * px_per_mv, plan.x0_px + t_s * px_per_s], axis=1)
        pix[~np.isfinite(pix[:, 0])] = np.nan  # not drawn: no position at all
        draw_polyline(image, pix, style.trace_rgb, thick)
        text_box = None
        if style.lead_names:
            name = cell.printed_name
            top = base + 0.25 * px_per_mv if style.lead_name_pos == "below" else base - 0.3 * px_per_mv - text_px
            text_box = draw_text(image, name, x_start + 0.6 * px_mm, top, text_px, style.text_rgb, style.font_face)
        finite = pix[np.all(np.isfinite(pix), axis=1)]
        half = 0.5 * thick + 0.5
        if len(finite):
            lead_box = Box(float(finite[:, 1].min() - half), float(finite[:, 0].min() - half),
                           float(finite[:, 1].max() + half), float(finite[:, 0].max() + half))
        else:
            lead_box = Box(x_start, base, x_start, base)
        leads.append(LeadTrace(canonical_lead_name(cell.lead), lead_box, text_box, s0, s1, base, pix,
                               row_index=cell.row, col_index=cell.col, sign=cell.sign))

    header = list(style.header_text)
    if header:
        line_px = 1.6 * text_px
        for i, line in enumerate(header):
            draw_text(image, line, 3.0 * px_mm, 3.0 * px_mm + i * line_px, text_px, style.text_rgb, style.font_face)
    if style.footer_text:
        foot = f"{geom.mm_per_s:g}mm/s    {geom.mm_per_mv:g}mm/mV"
        draw_text(image, foot, plan.x0_px + 20 * px_mm, h - 0.6 * style.margin_bottom_mm * px_mm - text_px,
                  text_px, style.text_rgb)

    if style.bw:
        image = _grayscale(image)
    trace_mask, lead_mask, alpha = draw_label_masks([t.pixels for t in leads], h, w, thick)
    meta = {
        "grid_line_color_major": list(style.grid_major_rgb),
        "grid_line_color_minor": list(style.grid_minor_rgb),
        "ecg_plot_color": list(style.trace_rgb),
        "dc_pulse": bool(style.calibration_pulse),
        "bw": bool(style.bw),
        "gridlines": bool(style.show_grid),
        "printed_text": bool(header),
        "header_text": header,
        "line_width_px": thick,
    }
    return RenderedPage(image=image, trace_mask=trace_mask, lead_mask=lead_mask, leads=leads, geometry=geom,
                        dpi=float(style.dpi), fs_hz=fs_hz, num_samples=num_samples, layout=layout.name,
                        angle_deg=0.0, trace_alpha=alpha, meta=meta)


__all__ = ["RenderStyle", "random_style", "shuffled_layout", "page_layout", "render_page", "LeadTrace", "RenderedPage",
           "GRID_PRESETS", "plan_page", "draw_polyline", "draw_text", "draw_grid", "draw_label_masks", "MASK_ALPHA_MIN"]
