"""Unit tests of the extraction parts: runs, grid scale, pulse, polyline fit, row tracking, cells."""
import numpy as np
import pytest

from paperecg.extract.cells import cells_from_boxes, layout_for_row_count
from paperecg.extract.combine import combine_readings
from paperecg.extract.timeaxis import row_time_span
from paperecg.extract.fit import fit_samples
from paperecg.extract.pulse import detect_pulse_in_patch, snap_gain
from paperecg.extract.readout import centre_path
from paperecg.extract.rows import TrackParams, find_row_centres, row_bands, speck_mask, track_row
from paperecg.extract.runs import Runs, bridged_in_boxes, find_runs
from paperecg.extract.scale import gridless_geometry, scale_from_name_columns
from paperecg.geometry import Box, LeadNameBox, PageGeometry
from paperecg.rectify.grid import AxisScale, GridScale, estimate_grid_scale, estimate_skew


def draw_polylines(shape, polylines, thickness):
    """Binary trace mask of [row, col] polylines, drawn the way the renderer draws its masks."""
    from paperecg.render.page import MASK_ALPHA_MIN, draw_polyline

    alpha = np.zeros(shape, np.uint8)
    for pts in polylines:
        draw_polyline(alpha, np.asarray(pts, dtype=np.float64), 255, thickness)
    return (alpha >= MASK_ALPHA_MIN).astype(np.float32)


# --- runs -------------------------------------------------------------------------------------------------

def test_runs_subpixel_edges_from_probabilities():
    col = np.array([0.0, 0.25, 1.0, 1.0, 0.75, 0.0, 0.0, 1.0, 0.0], np.float32)
    runs = find_runs(col[:, None], threshold=0.5)
    assert len(runs) == 2
    assert runs.top[0] == pytest.approx(1 + 0.25 / 0.75)
    assert runs.bot[0] == pytest.approx(5 - 0.5 / 0.75)
    # a binary run has edges on pixel boundaries: its length is its pixel count
    assert runs.top[1] == pytest.approx(6.5) and runs.bot[1] == pytest.approx(7.5)
    merged = find_runs(col[:, None], threshold=0.5, max_gap_px=2.5)
    assert len(merged) == 1 and merged.bot[0] == pytest.approx(7.5)


def test_runs_crossing_a_printed_name_are_one_stroke():
    """A stroke that enters a name's box from above and leaves it below is one run, whatever holes the letters
    left in it; pieces that start or end inside the box (letters, a grid line on its edge) stay apart."""
    box = (0.0, 40.0, 10.0, 80.0)  # x0, y0, x1, y1
    runs = Runs(col=np.array([2, 2, 2, 3, 3, 4, 4, 5, 5, 12, 12]),
                top=np.array([10.0, 50, 65, 10, 50, 39, 60, 10, 90, 10, 50]),
                bot=np.array([45.0, 58, 95, 45, 70, 39.5, 95, 30, 99, 45, 95]),
                height=120, width=20)
    out = bridged_in_boxes(runs, [box], margin_px=2.0, min_end_px=1.0)
    spans = {c: [(t, b) for cc, t, b in zip(out.col, out.top, out.bot) if cc == c] for c in (2, 3, 4, 5, 12)}
    assert spans[2] == [(10.0, 95.0)]  # through the box, two holes
    assert spans[3] == [(10.0, 45.0), (50.0, 70.0)]  # ends inside the box: a letter's remains may be below
    assert spans[4] == [(39.0, 39.5), (60.0, 95.0)]  # a line on the box's top edge is no stroke from above
    assert spans[5] == [(10.0, 30.0), (90.0, 99.0)]  # the gap reaches beyond the box
    assert spans[12] == [(10.0, 45.0), (50.0, 95.0)]  # outside the box's columns
    assert len(bridged_in_boxes(runs, [], 2.0)) == len(runs)


# --- grid scale ------------------------------------------------------------------------------------------

def grid_image(px_per_mm: float, h: int = 850, w: int = 1100, minor: bool = True, major_dark: float = 120.0):
    img = np.full((h, w, 3), 255, np.uint8)
    for k in range(int(max(h, w) / px_per_mm) + 1):
        pos = int(round(k * px_per_mm))
        shade = major_dark if k % 5 == 0 else 60.0
        if k % 5 and not minor:
            continue
        if pos < w:
            img[:, pos] = np.minimum(img[:, pos], 255 - shade)
        if pos < h:
            img[pos, :] = np.minimum(img[pos, :], 255 - shade)
    return img


@pytest.mark.parametrize("minor,major_dark", [(True, 120.0), (False, 120.0), (True, 60.0)])
def test_grid_period_without_confusing_major_and_minor(minor, major_dark):
    true = 3.937 * 1.013  # a slightly scaled 100 dpi page
    g = estimate_grid_scale(grid_image(true, minor=minor, major_dark=major_dark))
    assert g.x.found and g.y.found
    assert abs(g.x.px_per_mm / true - 1) < 0.003
    assert abs(g.y.px_per_mm / true - 1) < 0.003


@pytest.mark.parametrize("angle_deg", [0.0, 0.3, -0.7])
def test_skew_from_the_grid_phase(angle_deg):
    from scipy.ndimage import rotate

    image = grid_image(3.937)
    rng = np.random.default_rng(1)
    for r in rng.integers(50, 800, size=6):  # some trace-like ink that must not bias it
        image[r:r + 2, 100:1000] = 20
    image = rotate(image, angle_deg, reshape=False, order=1, cval=255)
    g = estimate_grid_scale(image)
    # scipy turns the image counter-clockwise for a positive angle: the rows then rise to the right
    assert estimate_skew(image, g) == pytest.approx(-np.tan(np.radians(angle_deg)), abs=3e-4)


def test_blank_page_has_no_grid():
    g = estimate_grid_scale(np.full((850, 1100, 3), 250, np.uint8))
    assert not g.x.found and not g.y.found
    assert g.x.px_per_mm == pytest.approx(1100 / 279.4)


# --- calibration pulse -----------------------------------------------------------------------------------

def test_pulse_found_and_height_measured():
    px_mm = 4.0
    ink = np.zeros((120, 100), bool)
    base, top = 90, 90 - 40  # 10 mm tall at 4 px/mm: 1 mV at 10 mm/mV
    ink[base - 1:base + 1, 5:20] = True  # lead-in on the zero line
    ink[top - 1:base + 1, 19:21] = True  # rise
    ink[top - 1:top + 1, 19:41] = True  # flat top, 5 mm
    ink[top - 1:base + 1, 39:41] = True  # fall
    ink[base - 1:base + 1, 40:100] = True  # the signal begins
    found = detect_pulse_in_patch(ink, px_mm, baseline_hint=88.0)
    assert found is not None
    height = found["base_y"] - found["top_y"]
    assert height == pytest.approx(40.0, abs=1.0)
    assert snap_gain(height, px_mm) == 10.0
    assert snap_gain(0.5 * height, px_mm) == 5.0
    assert snap_gain(0.75 * height, px_mm) is None


def test_qrs_is_not_a_pulse():
    px_mm = 4.0
    ink = np.zeros((120, 100), bool)
    pts = [(90, 0), (90, 30), (40, 33), (95, 36), (90, 40), (88, 60), (40, 62), (90, 64), (90, 100)]
    mask = draw_polylines(ink.shape, [np.array(pts, float)], 2) > 0
    assert detect_pulse_in_patch(mask, px_mm, baseline_hint=90.0) is None


# --- polyline fit ----------------------------------------------------------------------------------------

def test_fit_recovers_a_sharp_peak_that_the_column_midpoint_misses():
    spacing = 1.9685  # 100 Hz at 200 dpi
    n = 60
    x = 20.0 + np.arange(n) * spacing
    y = np.full(n, 100.0)
    y[28:34] = [92.0, 70.0, 40.0, 75.0, 108.0, 102.0]  # a QRS: R peak at sample 30, S at 32
    mask = draw_polylines((160, 160), [np.stack([y, x], axis=1)], thickness=2)
    runs = find_runs(mask)
    c0, c1 = int(runs.col.min()), int(runs.col.max())
    top = np.full(c1 - c0 + 1, np.nan)
    bot = np.full(c1 - c0 + 1, np.nan)
    top[runs.col - c0] = runs.top
    bot[runs.col - c0] = runs.bot
    width = float(np.mean((bot - top)[:30]))  # flat stretch: the trace thickness
    xs, ys = centre_path(top, bot, width, c0, x)
    y0 = np.interp(x, xs, ys)
    mid = 0.5 * (top + bot)[np.rint(x).astype(int) - c0]
    ones = np.ones_like(top)
    yfit, cost = fit_samples(top, bot, ones, ones, c0, x, y0, 0.5 * width)
    assert abs(mid[30] - 40.0) > 10.0  # what a column readout gets at the R peak
    assert abs(yfit[30] - 40.0) < 1.5
    assert abs(yfit[32] - 108.0) < 2.0
    assert np.median(np.abs(yfit - y)) < 0.75
    assert np.isfinite(cost)


def test_fit_with_too_few_samples_returns_the_start():
    top = np.array([9.5, 9.5])
    y, cost = fit_samples(top, top + 2, np.ones(2), np.ones(2), 0, np.array([0.5, 1.5]), np.array([10.0, 11.0]), 1.0)
    assert np.allclose(y, [10.0, 11.0]) and np.isnan(cost)


# --- rows ------------------------------------------------------------------------------------------------

def test_touching_rows_are_followed_without_swapping():
    """Row A's deep S wave reaches down into row B's trace; each row must keep its own trace."""
    x = np.arange(10.0, 390.0, 2.0)
    ya = np.full(x.size, 60.0)
    yb = np.full(x.size, 120.0) + 3.0 * np.sin(x / 15.0)
    k = np.searchsorted(x, 200.0)
    ya[k:k + 3] = [95.0, 125.0, 80.0]  # A's S wave touches and crosses B's line
    mask = draw_polylines((180, 400), [np.stack([ya, x], 1), np.stack([yb, x], 1)], thickness=3)
    runs = find_runs(mask, max_gap_px=1.0)
    centres = find_row_centres(runs, px_per_mm=4.0)
    assert centres.size == 2
    assert abs(centres[0] - 60) < 3 and abs(centres[1] - 120) < 3
    bands = row_bands(centres, 80.0)
    chosen = [track_row(runs, i, centres, bands[i]) for i in range(2)]
    for i, ytrue in enumerate((ya, yb)):
        cols = np.nonzero(chosen[i] >= 0)[0]
        assert cols.size > 0.9 * (x[-1] - x[0])
        centre = runs.centre[chosen[i][cols]]
        expected = np.interp(cols, x, ytrue)
        away = np.abs(cols - 202.0) > 12  # away from the touch, each row sits on its own trace
        assert np.median(np.abs(centre[away] - expected[away])) < 1.5
        assert np.max(np.abs(centre[away] - expected[away])) < 12


def test_tall_spike_is_followed_past_grid_line_specks():
    """An ink-sharpened map leaves near-zero-length specks where a horizontal grid line meets the segmenter's
    band. Inside a tall R wave's columns they cost no jump, and the row must not step onto them and cut the
    spike's tip off (eik-dev 12x1 pages lost their R waves this way)."""
    h, w = 200, 300
    spike = [[120, 0], [120, 140], [30, 147], [150, 153], [120, 160], [120, 299]]  # [row, col]: R then S wave
    mask = draw_polylines((h, w), [spike], thickness=3)
    grid_row = 108
    for c in range(140, 160):  # the grid line's fringe: one pixel barely over the threshold, off the stroke
        if not mask[grid_row - 1:grid_row + 2, c].any():
            mask[grid_row, c] = 0.71
    runs = find_runs(mask, threshold=0.7)
    chosen = track_row(runs, 0, np.array([120.0]), (20.0, 199.0))
    tip_cols = np.arange(144, 148)  # the R wave's upstroke and tip, where specks sit beside the stroke
    assert np.all(chosen[tip_cols] >= 0)
    assert np.all(runs.length[chosen[tip_cols]] > 40.0)  # the stroke's long runs, not a speck
    assert runs.top[chosen[tip_cols]].min() < 32.0  # the tip (row 30) is kept


def _tall_r_wave_page():
    """Three rows 60 px apart (a 12x1 page's pitch at 4 px/mm); the bottom row's R wave runs up past the middle
    row's line to 15 px under the top row's. (mask, the rows' true lines [row, col])"""
    x = np.arange(10.0, 390.0, 2.0)
    lines = [np.full(x.size, 60.0), np.full(x.size, 120.0) + 2.0 * np.sin(x / 15.0), np.full(x.size, 180.0)]
    k = int(np.searchsorted(x, 200.0))
    lines[2][k - 1:k + 3] = [175.0, 75.0, 195.0, 180.0]  # R up to row 75, S to 195
    mask = draw_polylines((240, 400), [np.stack([y, x], 1) for y in lines], thickness=3)
    return mask, [np.stack([y, x], 1) for y in lines]


def test_tall_r_wave_past_the_neighbours_line_is_followed_to_its_tip():
    """12x1 pages: a QRS taller than the row pitch. The row must follow its R wave past the neighbour's line
    (the first pass's band ended at the neighbour's centre and cut the tip), and the neighbour it crosses must
    stay on its own line instead of riding the stroke."""
    from paperecg.extract.rows import track_rows
    from paperecg.geometry import PageGeometry

    mask, lines = _tall_r_wave_page()
    runs = find_runs(mask, max_gap_px=1.0)
    centres = find_row_centres(runs, px_per_mm=4.0)
    assert centres.size == 3
    centres, chosen = track_rows(runs, centres, PageGeometry(4.0, 4.0), TrackParams())
    stroke = np.arange(196, 204)
    picked = chosen[2, stroke][chosen[2, stroke] >= 0]
    assert runs.top[picked].min() < 80.0  # the tip at row 75
    # the crossed row: on its own line wherever it does not share the stroke's run
    own = (chosen[1] >= 0) & (chosen[1] != chosen[2])
    cols = np.nonzero(own)[0]
    expected = np.interp(cols, lines[1][:, 1], lines[1][:, 0])
    assert cols.size > 0.9 * 370
    assert np.max(np.abs(runs.centre[chosen[1, cols]] - expected)) < 4.0


def test_a_stroke_crossing_a_row_keeps_both_edges_of_its_run():
    """Where the bottom row's R wave crosses the middle row's line, the two share one run. The crossed row is
    bridged (no evidence there); the stroke's row keeps both edges of the run as evidence (an upper/lower split
    gave it one edge and a trace width, which cut the stroke at the crossed line)."""
    from paperecg.extract.rows import resolve_shared, track_rows
    from paperecg.geometry import PageGeometry

    mask, _ = _tall_r_wave_page()
    runs = find_runs(mask, max_gap_px=1.0)
    centres, chosen = track_rows(runs, find_row_centres(runs, px_per_mm=4.0), PageGeometry(4.0, 4.0),
                                 TrackParams())
    top, bot, shared, w_top, w_bot = resolve_shared(runs, chosen, 3.0)
    bridged = shared[1] & (w_top[1] == 0) & (w_bot[1] == 0) & (chosen[1] == chosen[2])
    assert bridged.any()
    cols = np.nonzero(bridged)[0]
    assert np.allclose(top[2, cols], runs.top[chosen[2, cols]]) and np.allclose(bot[2, cols], runs.bot[chosen[2, cols]])
    assert np.all(w_top[2, cols] == 1.0) and np.all(w_bot[2, cols] == 1.0)


OLD_SPECK_RULE = TrackParams(speck_reach_cols=None)  # every short run a speck, as the rule was first made


def faint_stretch_map(h: int = 200, w: int = 300, faint: tuple[int, int] = (100, 200)) -> np.ndarray:
    """An ink-scored map of a flat trace (rows 119-121) that fades to one pixel barely over the threshold
    over the columns `faint` (a phone photo's grey stretch), sloping 2 px up across it."""
    mask = np.zeros((h, w), np.float32)
    mask[119:122, :] = 1.0
    a, b = faint
    mask[119:122, a:b] = 0.0
    for c in range(a, b):
        mask[int(round(120 - 2.0 * (c - a) / (b - a))), c] = 0.72
    return mask


def test_faint_trace_of_thin_runs_is_followed():
    """A phone photo's faint stretch leaves one-pixel runs just over the threshold: a chain of thin runs that
    continues the trace. The speck rule as first made dropped them all (03784's II strip: 12 % unread)."""
    runs = find_runs(faint_stretch_map(), threshold=0.7)
    assert np.median(runs.length[(runs.col >= 100) & (runs.col < 200)]) < 0.3 * np.median(runs.length)
    chosen = track_row(runs, 0, np.array([120.0]), (20.0, 199.0))
    assert (chosen[100:200] >= 0).mean() > 0.95
    old = track_row(runs, 0, np.array([120.0]), (20.0, 199.0), OLD_SPECK_RULE)
    assert (old[100:200] >= 0).mean() < 0.05  # what the old rule did: the test can fail


def test_a_thin_run_inside_a_neighbouring_stroke_is_a_speck_one_at_its_tip_is_not():
    from paperecg.extract.rows import speck_runs
    from paperecg.extract.runs import Runs

    # column 10: a tall stroke (rows 20-100); column 11: a thin run inside its range (a grid line's speck) and
    # one at its top (a faint peak tip); column 14: a thin run inside the range but 4 columns away
    runs = Runs(col=np.array([10, 11, 11, 14]), top=np.array([20.0, 18.8, 60.0, 60.0]),
                bot=np.array([100.0, 19.2, 60.4, 60.4]), height=200, width=20)
    short = runs.length < 1.0
    speck = speck_runs(runs, short, reach_cols=2, margin_px=1.5)
    assert speck.tolist() == [False, False, True, False]


def test_a_thin_line_beside_a_trace_stays_a_speck():
    """A grid line's thin run two pixels above a flat trace of full thickness continues along the trace like
    a faint trace would, but lies beside thicker trace in its own column: a speck (eik-dev 12x1 00262's lead
    II strip followed such a line and lost 17 dB)."""
    mask = np.zeros((200, 300), np.float32)
    mask[119:122, :] = 1.0  # the trace
    mask[116, :] = 0.72  # a grid line's fringe, parallel, 2 px above
    runs = find_runs(mask, threshold=0.7)
    in_band = np.ones(len(runs), dtype=bool)
    speck = speck_mask(runs, in_band, float(np.median(runs.length)), TrackParams())
    assert speck[runs.centre < 117].all() and not speck[runs.centre > 118].any()
    # the row centre placed nearer the line than the trace: the line would win on distance alone
    chosen = track_row(runs, 0, np.array([115.0]), (20.0, 199.0))
    assert np.all(runs.centre[chosen[10:290]] > 118)
    free = track_row(runs, 0, np.array([115.0]), (20.0, 199.0), TrackParams(beside_rel=0.0))
    assert np.all(runs.centre[free[10:290]] < 117)  # without the test: the test can fail


def test_layout_for_row_count():
    assert layout_for_row_count(4) == "3x4+1"
    assert layout_for_row_count(3) == "3x4"
    assert layout_for_row_count(12) == "12x1"
    assert layout_for_row_count(5) is None


# --- cells and time axis ---------------------------------------------------------------------------------

def test_cells_from_boxes_snap_to_quarters():
    px_per_sample = 2.0
    x0 = 100.0
    boxes = [LeadNameBox(name, Box(x0 + start * px_per_sample + 3.0, 130, x0 + start * px_per_sample + 20, 140))
             for name, start in (("I", 0), ("AVR", 250), ("V1", 500), ("V4", 750))]
    cells = cells_from_boxes(boxes, np.array([110.0, 250.0]), np.array([x0, x0]), np.array([x0 + 1998, x0 + 1998]),
                             px_per_sample, 1000)
    assert [(c.lead, c.row, c.start, c.end) for c in cells] == [
        ("I", 0, 0, 250), ("aVR", 0, 250, 500), ("V1", 0, 500, 750), ("V4", 0, 750, 1000)]


def test_row_time_span_cancels_the_pen_reach():
    px_per_sample, n = 1.9685, 1000
    x_first = 78.3
    for width in (1.0, 3.0, 6.0):
        c0 = int(np.ceil(x_first - width / 2))
        c1 = int(np.floor(x_first + (n - 1) * px_per_sample + width / 2))
        a, b = row_time_span(c0, c1, width, px_per_sample, n)
        assert abs(a - x_first) <= 0.5
        assert b - a == pytest.approx((n - 1) * px_per_sample)


def test_combine_readings_levels_then_averages():
    t = np.linspace(0, 1, 100)
    base = np.sin(6 * t)
    long = base.copy()
    short = np.full(100, np.nan)
    short[:25] = base[:25] + 0.3  # another row, another baseline estimate
    out = combine_readings([short, long])
    assert np.allclose(out, base)


def test_combine_readings_aligns_a_reading_off_by_a_few_samples():
    """A row's stretch of lead II read 4 samples off the strip's time axis: averaged as it is, the QRS
    doubles into two half-height spikes (eik-dev clean 00041: lead II 28.0 dB alone, 8.8 averaged)."""
    rng = np.random.default_rng(0)
    n = 1000
    strip = np.zeros(n)
    strip[50::80] = 1.5  # sharp beats
    strip += 0.01 * rng.standard_normal(n)
    row = np.full(n, np.nan)
    row[4:250] = strip[:246] + 0.2  # 4 samples late, another baseline
    out = combine_readings([row, strip], max_lag=10)
    assert np.nanmax(np.abs(out - strip)) < 0.05
    plain = combine_readings([row, strip])  # without the search: the spikes are halved
    assert np.nanmax(np.abs(plain - strip)) > 0.5


def test_combine_readings_leaves_out_a_reading_unlike_the_longest():
    n = 1000
    t = np.arange(n) / 100.0
    strip = np.sin(2 * np.pi * 1.1 * t)
    other = np.full(n, np.nan)
    other[:250] = np.sin(2 * np.pi * 3.7 * t[:250] + 1.0)  # another lead read under this name
    out = combine_readings([other, strip], max_lag=10)
    assert np.allclose(out, strip)


def _beat_rows(fs_hz: float, late_s: dict[int, float], rng) -> dict[int, np.ndarray]:
    """Four rows of a 3x4+1 page at fs_hz (10 s): three rows of four cells (different leads: other QRS sizes and
    signs) and the rhythm strip; each row's reading late by late_s[row] seconds."""
    n = int(10 * fs_hz)
    t = np.arange(n) / fs_hz
    beats = np.arange(0.31, 10.0, 0.83) + 0.02 * rng.standard_normal(12)
    qrs = sum(np.exp(-0.5 * ((t - b) / 0.012) ** 2) for b in beats)
    twave = sum(np.exp(-0.5 * ((t - b - 0.25) / 0.05) ** 2) for b in beats)
    rows = {}
    for r in range(4):
        cell_gain = rng.uniform(-1.5, 1.5, 4) if r < 3 else np.array([1.2] * 4)
        gain = np.repeat(cell_gain, n // 4)
        v = gain * qrs + 0.2 * twave + 0.01 * rng.standard_normal(n)
        lag = int(round(late_s.get(r, 0.0) * fs_hz))
        rows[r] = np.concatenate([np.full(lag, np.nan), v[:n - lag]]) if lag else v
    return rows


@pytest.mark.parametrize("fs_hz", [100.0, 500.0])
def test_a_row_read_late_is_moved_onto_the_other_rows_beats(fs_hz):
    """Whole rows of real photos came 50-110 ms late (their starts misread): the classifier then measures each
    lead's QRS at the wrong instant. The rows print the same instants, so the late row is moved onto the
    others' beats, and rows already together are left alone."""
    from paperecg.extract.combine import align_rows_on_beats
    from paperecg.extract.types import empty_row

    rng = np.random.default_rng(3)
    rows = [empty_row(100.0 * (r + 1)) for r in range(4)]
    for rt in rows[:3]:
        rt.cell_starts = [int(k * fs_hz * 2.5) for k in (1, 2, 3)]
    together = _beat_rows(fs_hz, {}, rng)
    values = {r: v.copy() for r, v in together.items()}
    values[1] = np.concatenate([np.full(int(0.11 * fs_hz), np.nan), values[1][:-int(0.11 * fs_hz)]])
    applied = align_rows_on_beats(values, rows, fs_hz, max_lag_s=0.15, min_lag_s=0.03)
    assert list(applied) == [1] and abs(applied[1] + 0.11 * fs_hz) <= 0.005 * fs_hz  # within 5 ms
    ok = np.isfinite(values[1])
    # 0.08-0.13 mV off on average before the move
    assert ok.mean() > 0.95 and np.mean(np.abs(values[1][ok] - together[1][ok])) < 0.03
    # a page whose rows are together: nothing moves (physiological differences between leads stay)
    values = {r: v.copy() for r, v in together.items()}
    values[2] = np.concatenate([np.full(int(0.02 * fs_hz), np.nan), values[2][:-int(0.02 * fs_hz)]])
    assert align_rows_on_beats(values, rows, fs_hz, max_lag_s=0.15, min_lag_s=0.03) == {}


def test_a_row_starting_late_is_put_on_the_others_time_axis_when_their_starts_spread():
    """A curled photo's rows start a few pixels apart (no two within the tolerance); the strip whose first
    50 px lay outside the photo (real photo 03424) still belongs on their time axis."""
    from paperecg.extract.timeaxis import align_row_starts
    from paperecg.extract.types import empty_row

    rows = []
    for y, x0 in zip((800.0, 1080.0, 1375.0, 1636.0), (251.5, 255.0, 264.5, 310.5)):
        rt = empty_row(y)
        rt.x_first, rt.x_last = x0, 2220.0
        rows.append(rt)
    align_row_starts(rows, skew=0.0, y_mid=850.0, tol_px=3.9)
    assert [rt.x_first for rt in rows[:3]] == [251.5, 255.0, 264.5]  # spread, but none late: left alone
    assert rows[3].x_first == pytest.approx(259.75)  # the median start
    assert rows[3].x_last == 2220.0


def test_row_span_leaves_out_a_speck_at_the_page_edge():
    from paperecg.extract.timeaxis import _first_last

    valid = np.zeros(2200, bool)
    valid[2:14] = True  # a speck of the dark border
    valid[125:2080] = True  # the row
    assert _first_last(valid) == (2, 2079)
    assert _first_last(valid, stray_px=20) == (125, 2079)
    valid[2090:2100] = True  # a speck close to the row's end is kept: the gap is too short to be a border
    assert _first_last(valid, stray_px=20) == (125, 2099)
    valid[:] = False
    valid[0:12] = True  # nothing else: the only stretch is kept
    assert _first_last(valid, stray_px=20) == (0, 11)


def test_a_thin_run_past_the_trace_does_not_move_the_row_end():
    """The row's ends fix its time axis: a thin run the tracker now follows past the trace's end (a wisp of
    the map) must not move it (eik-dev/lowdpi 00184: one zero-length run moved every row's start, -3.6 dB)."""
    from paperecg.extract.timeaxis import row_end_columns

    mask = np.zeros((100, 60), np.float32)
    mask[49:52, 5:40] = 1.0
    mask[50, 40:44] = 0.72  # thin runs continuing the trace for 4 columns
    runs = find_runs(mask, threshold=0.7)
    chosen = np.full((1, 60), -1, dtype=np.int64)
    chosen[0, runs.col] = np.arange(len(runs))
    ends = row_end_columns(runs, chosen, min_rel=0.3)
    assert np.nonzero(ends[0])[0].max() == 39
    assert np.nonzero(row_end_columns(runs, chosen, min_rel=0.0)[0])[0].max() == 43


def test_off_paper_mask_finds_border_wedges_but_not_ink():
    from paperecg.extract.paper import off_paper_mask

    img = np.full((400, 600, 3), 235, np.uint8)
    img[:, :40] = 0  # a black wedge along the left edge (a turned scan's fill)
    img[200:203, 40:600] = 20  # a dark trace from the wedge to the right edge, 3 px thick
    img[100:140, 300:340] = 10  # a dark blob inside the page
    img[300:307, 100:600] = 0  # a thick pen stroke (7 px, ~0.9 mm) running off the right edge
    mask = off_paper_mask(img, px_per_mm=8.0)
    assert mask[:, :40].all() and mask[:, 40:45].all()  # widened by the 1 mm margin
    assert not mask[201, 60:].any()  # the trace is ink, not background
    assert not mask[120, 320]  # dark but not reaching the border
    assert not mask[303, 100:590].any()  # thick ink touching the border is still ink
    assert not off_paper_mask(np.full((50, 50, 3), 200, np.uint8), px_per_mm=8.0).any()


def test_a_fit_running_off_past_the_ink_beside_a_gap_keeps_the_centre_path(monkeypatch):
    """The polyline fit follows the trace's slope; beside a gap it can run on along it far from any ink (real
    photos: flat columns read up to 1 mV high next to a gap, drawn as spikes). Such a sample keeps the plain
    centre path; fitted samples within the ink are kept as fitted."""
    import paperecg.extract.readout as readout
    from paperecg.geometry import PageGeometry

    n = 100
    top = np.full(n, 99.0)
    bot = np.full(n, 101.0)
    top[50:60] = bot[50:60] = np.nan  # a gap in the trace
    rt = readout.RowTrace(centre_y=100.0, baseline_y=100.0, x_first=0.0, x_last=99.0, top=top, bot=bot, col0=0,
                       shared=np.zeros(n, bool), w_top=np.ones(n), w_bot=np.ones(n))
    fitted = np.full(n, 100.4)
    fitted[46:50] = [96.0, 90.0, 80.0, 60.0]  # the fit climbing away into the gap

    monkeypatch.setattr(readout, "fit_row", lambda *a, **k: (np.arange(n), fitted.copy(), 0.0))
    geometry = PageGeometry(8.0, 8.0)
    mv = readout.row_samples(rt, 1.0, n, 2.0, geometry, refine=True, pen_width_px=2.0)
    y = rt.baseline_y - mv * geometry.px_per_mv
    assert np.all(np.abs(y[40:50] - 100.0) < 5.0)  # no spike: within half a millimetre of the columns' ink
    assert np.allclose(y[10:40], 100.4)  # fitted values inside the ink stand
    assert np.isnan(y[51:59]).all()  # the gap stays a gap


def _names_at(layout_cols: list[list[str]], pitch_px: float, x0_px: float, glyph_px: float = 0.0) -> list[LeadNameBox]:
    """Name boxes of a grid printed in columns `pitch_px` apart, rows 100 px apart; glyph_px shifts every
    other name by a glyph's side bearing."""
    out = []
    for c, col in enumerate(layout_cols):
        for r, name in enumerate(col):
            x = x0_px + c * pitch_px + (glyph_px if (r + c) % 2 else 0.0)
            out.append(LeadNameBox(name, Box(x, 100.0 * r, x + 20.0, 100.0 * r + 12.0)))
    return out


def test_scale_from_3x4_name_columns():
    # 3x4 columns are 2.5 s = 62.5 mm apart: 250 px between columns is 4 px/mm
    boxes = _names_at([["I", "II", "III"], ["aVR", "aVL", "aVF"], ["V1", "V2", "V3"], ["V4", "V5", "V6"]],
                      250.0, 40.0, glyph_px=1.5)
    px_per_mm, layout = scale_from_name_columns(boxes, 10.0, 25.0)
    assert abs(px_per_mm / 4.0 - 1) < 0.01 and layout.startswith("3x4")


def test_scale_from_6x2_name_columns_with_a_stray_detection():
    # 6x2 columns are 5 s = 125 mm apart; one misread name (V2 where V3 is) must not move the scale
    boxes = _names_at([["I", "II", "III", "aVR", "aVL", "aVF"], ["V1", "V2", "V2", "V4", "V5", "V6"]], 500.0, 30.0)
    px_per_mm, layout = scale_from_name_columns(boxes, 10.0, 25.0)
    assert abs(px_per_mm / 4.0 - 1) < 0.01 and layout == "6x2"


def test_no_scale_from_names_in_one_column_or_no_known_order():
    assert scale_from_name_columns(_names_at([["I", "II", "III", "aVR"]], 250.0, 40.0), 10.0, 25.0) is None
    shuffled = _names_at([["V4", "I", "aVF"], ["II", "V6", "V1"], ["aVL", "III", "V5"], ["V2", "aVR", "V3"]],
                         250.0, 40.0)
    assert scale_from_name_columns(shuffled, 10.0, 25.0) is None


_COLS_3X4 = [["I", "II", "III"], ["aVR", "aVL", "aVF"], ["V1", "V2", "V3"], ["V4", "V5", "V6"]]


def test_gridless_scale_chain():
    page = PageGeometry(4.0, 4.0)  # the page-size rule's scale
    none = GridScale(AxisScale(4.0, 2.0, False), AxisScale(4.0, 2.0, False))
    # names at the page size's pitch (a whole page): the page size stays, the note says both agree
    geom, note = gridless_geometry(page, none, _names_at(_COLS_3X4, 250.0, 40.0), 10.0)
    assert geom == page and note.startswith("no grid: scale from the page size")
    # a crop: the image is narrower than the page, the names' pitch says 15 % more px per mm
    geom, note = gridless_geometry(page, none, _names_at(_COLS_3X4, 250.0 / 0.85, 40.0), 10.0)
    assert abs(geom.px_per_mm_x * 0.85 / 4.0 - 1) < 0.01 and geom.px_per_mm_y == geom.px_per_mm_x
    assert "lead-name columns" in note
    # no names: the page size, said so
    assert gridless_geometry(page, none, None, 10.0) == (page, "no grid: scale from the page size, 4.000 px/mm")
    # a comb along x only (a beat rhythm) 19 % off the names: overruled; a comb they agree with stands
    comb = GridScale(AxisScale(3.24, 7.0, True), AxisScale(3.24, 4.0, False))
    geom, note = gridless_geometry(PageGeometry(3.24, 3.24), comb, _names_at(_COLS_3X4, 250.0, 40.0), 10.0)
    assert abs(geom.px_per_mm_x / 4.0 - 1) < 0.01 and "overruled" in note
    grid = GridScale(AxisScale(4.0, 9.0, True), AxisScale(4.0, 4.0, False))
    assert gridless_geometry(page, grid, _names_at(_COLS_3X4, 251.0, 40.0), 10.0) == (page, None)
