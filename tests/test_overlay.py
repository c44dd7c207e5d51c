"""Overlays: each lead drawn as its own pieces (never joined across a NaN gap or a new segment), and the
rectified page's points mapped back onto the image as given."""
import numpy as np
import pytest

from paperecg.extract import Extraction, RowTrace
from paperecg.extract.cells import RowCell
from paperecg.geometry import PageGeometry
from paperecg.pipeline.overlay import draw_pieces, rectified_to_original, trace_pieces
from paperecg.rectify.rectify import RectifiedPage, rotate_image, turn_quarters

FS_HZ = 100.0
N = 1000  # 10 s
LEADS = ["I", "II", "aVR"]


def row(centre_y, x_first):
    none = np.zeros(0)
    rt = RowTrace(centre_y, centre_y, x_first, x_first + (N - 1) * 2.0, none, none, 0, np.zeros(0, bool), none, none)
    return rt


def extraction_with_two_rows():
    """Row 0: I over 0-5 s, aVR over 5-10 s; row 1: II over the whole 10 s (a rhythm strip). 2 px per sample."""
    geometry = PageGeometry(8.0, 8.0)  # 200 px/s at 25 mm/s: 2 px per sample at 100 Hz
    rows = [row(100.0, 50.0), row(300.0, 50.0)]
    cells = [RowCell("I", 0, 0, 500, "test"), RowCell("aVR", 0, 500, 1000, "test"), RowCell("II", 1, 0, 1000, "test")]
    t = np.arange(N) / FS_HZ
    signal = np.stack([np.sin(t), np.cos(t), -np.sin(t)], axis=1)
    signal[500:, 0] = np.nan  # I is drawn in its cell only
    signal[:500, 2] = np.nan
    signal[200:260, 1] = np.nan  # a gap in the rhythm strip
    ext = Extraction(signal, geometry, {n: 1.0 for n in LEADS}, rows, cells, "test")
    return ext, signal


def test_pieces_break_at_nan_and_at_segment_starts():
    ext, signal = extraction_with_two_rows()
    pieces = trace_pieces(ext, signal, FS_HZ, LEADS, image_width_px=2100)
    assert [(p.lead, p.start, p.end) for p in pieces] == [("I", 0, 500), ("aVR", 500, 1000), ("II", 0, 200),
                                                           ("II", 260, 1000)]
    for p in pieces:  # consecutive points are one sample apart: no straight join anywhere
        assert np.all(np.diff(p.points_xy[:, 0]) == pytest.approx(2.0))
        assert len(p.points_xy) == p.end - p.start
    # lead II was read in the row at y=300: its points are there, mV up = y down (10 mm/mV at 8 px/mm)
    ii = pieces[2]
    assert ii.points_xy[0, 1] == pytest.approx(300.0 - 1.0 * 80.0)


def test_drawn_pieces_leave_gaps_unpainted():
    ext, signal = extraction_with_two_rows()
    pieces = trace_pieces(ext, signal, FS_HZ, LEADS, image_width_px=2100)
    blank = np.full((400, 2100, 3), 255, np.uint8)
    canvas = draw_pieces(blank, [(p.lead, p.points_xy) for p in pieces], alpha=1.0, thickness_px=1)
    painted = (canvas != 255).any(axis=2)
    # the NaN gap of lead II (samples 200-259: x 450-568) has nothing drawn in row 1's band
    assert not painted[150:400, 455:565].any()
    # and nothing joins row 0's end (x ~ 2048, y ~ 100) to row 1's start (x 50, y ~ 220): the band between
    # the rows is empty away from the traces' own extent
    assert not painted[182:215, :].any()
    assert painted[150:400, 60:440].any() and painted[0:190, 60:2000].any()


@pytest.mark.parametrize("quarter_turns", [0, 1, 2, 3])
@pytest.mark.parametrize("angle_deg", [0.0, 3.0])
def test_rectified_points_map_back_onto_the_image_as_given(quarter_turns, angle_deg):
    """A mark on the original image, put through the rectifier's own turn and rotation, maps back home."""
    h, w = 120, 200
    original = np.full((h, w, 3), 255, np.uint8)
    marks = [(30, 40), (150, 90), (100, 20)]  # (x, y)
    for x, y in marks:
        original[y - 1:y + 2, x - 1:x + 2] = 0
    turned = turn_quarters(original, quarter_turns)
    rectified = rotate_image(turned, -angle_deg, (255, 255, 255)) if angle_deg else turned
    rect = RectifiedPage(rectified, [], angle_deg, quarter_turns)
    dark = rectified.min(axis=2) < 128
    from scipy import ndimage

    labels, n = ndimage.label(dark)
    centres = np.array(ndimage.center_of_mass(dark, labels, range(1, n + 1)))[:, ::-1]  # (x, y)
    back = rectified_to_original(centres, rect, (h, w))
    for x, y in marks:
        assert np.min(np.hypot(back[:, 0] - x, back[:, 1] - y)) < 0.7


def test_simultaneous_columns_are_drawn_where_they_are_printed():
    """A row whose second column shows the record's first 5 s again (a simultaneous layout): its piece is drawn
    on the row's second half, not over the first column's."""
    ext, signal = extraction_with_two_rows()
    ext.cells[1] = RowCell("aVR", 0, 0, 500, "test", page_start=500)
    signal = signal.copy()
    signal[:500, 2] = -np.sin(np.arange(500) / FS_HZ)
    pieces = trace_pieces(ext, signal, FS_HZ, LEADS, image_width_px=2100)
    avr = next(p for p in pieces if p.lead == "aVR")
    assert avr.points_xy[0, 0] == pytest.approx(50.0 + 500 * 2.0)
