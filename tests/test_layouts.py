"""Lead identity from the printed names whatever the order, per-column time windows (ECG-Image-Kit's 6x2 prints the
first 5 s in both columns), Cabrera's inverted aVR, and 12x1 pages whose neighbouring traces cross."""
import numpy as np
import pytest
from conftest import LEADS_12, synthetic_ecg
from test_extract import drawn_reference, independent_leads

from paperecg.extract import extract_signal
from paperecg.extract.cells import assign_boxes_to_rows, layout_for_row_count
from paperecg.geometry import Box, LeadNameBox
from paperecg.layouts import LAYOUTS, Layout, printed_lead
from paperecg.render.page import RenderStyle, random_style, render_page, shuffled_layout
from paperecg.score.evaluate import score_signals

FS_HZ = 100.0


def extract_page(style: RenderStyle, boxes: bool = True, rename=None, seed: int = 0):
    """Render independent leads (so a wrong lead scores badly), read the oracle mask; (page, extraction, snr)."""
    signal = independent_leads(FS_HZ, seed)
    page = render_page(signal, FS_HZ, LEADS_12, style)
    names = page.lead_name_boxes() if boxes else None
    if names and rename:
        names = [LeadNameBox(rename(b.name), b.box, b.score) for b in names]
    ex = extract_signal(page.trace_mask.astype(np.float32), page.image, FS_HZ, signal.shape[0], LEADS_12, names)
    ref = drawn_reference(page, signal, LEADS_12)
    snr = np.array([s.snr_db for s in score_signals(ref, ex.signal, FS_HZ, LEADS_12)])
    return page, ex, snr


def segment_leads(page, ex) -> list[tuple[str, tuple[int, int], tuple[str, int, int, int] | None]]:
    """For every drawn segment: (true lead, true window, (lead, start, end, sign) of the extracted cell on its
    row and place), the cell found by the segment's middle on the page."""
    pps = ex.geometry.px_per_s / FS_HZ
    centres = np.array([rt.centre_y for rt in ex.rows])
    out = []
    for t in page.leads:
        pix = t.pixels[np.all(np.isfinite(t.pixels), axis=1)]
        r = int(np.argmin(np.abs(centres - t.baseline_row)))
        x_mid = 0.5 * (pix[:, 1].min() + pix[:, 1].max())
        found = None
        for c in ex.cells:
            p0 = c.start if c.page_start is None else c.page_start
            rt = ex.rows[c.row]
            if c.row == r and rt.x_first + p0 * pps <= x_mid <= rt.x_first + (p0 + c.end - c.start) * pps:
                found = (c.lead, c.start, c.end, c.sign)
        out.append((t.name, (t.start_sample, t.end_sample), found, t.sign))
    return out


def assert_every_segment_right(page, ex):
    for lead, (s0, s1), found, sign in segment_leads(page, ex):
        assert found is not None, (lead, s0, s1)
        assert found[0] == lead and abs(found[1] - s0) <= 2 and abs(found[2] - s1) <= 2 and found[3] == sign, \
            (lead, s0, s1, found)


def test_known_layouts_have_per_column_windows_and_signs():
    eik = {c.lead: c for c in LAYOUTS["6x2-eik"].cells() if c.col == 1}
    assert (eik["aVR"].t0, eik["aVR"].t1, eik["aVR"].page_x0, eik["aVR"].page_x1) == (0.0, 0.5, 0.5, 1.0)
    assert LAYOUTS["6x2-eik"].simultaneous and not LAYOUTS["6x2"].simultaneous
    assert [c.lead for c in LAYOUTS["12x1-eik"].cells()][:4] == ["V4", "V1", "aVR", "I"]
    cab = [c for c in LAYOUTS["6x2-cabrera"].cells() if c.lead == "aVR"]
    assert len(cab) == 1 and cab[0].sign == -1 and cab[0].printed_name == "-aVR"
    assert printed_lead("-AVR") == ("aVR", -1) and printed_lead("v5") == ("V5", 1)
    assert layout_for_row_count(7) == "6x2-eik" and layout_for_row_count(13) == "12x1-eik"


def test_eik_6x2_from_names_gives_each_segment_its_lead_and_window():
    page, ex, snr = extract_page(RenderStyle(dpi=100.0, layout="6x2-eik"))
    assert_every_segment_right(page, ex)
    # the right column (aVR, aVL, aVF, V4-V6) is read into the first 5 s, where the reference has it
    assert np.all(snr >= 12.0), np.round(snr, 1)
    assert "printed names" in " ".join(ex.notes)


def test_cabrera_page_inverts_the_printed_minus_avr():
    # the detector has no '-aVR' class: a box named 'aVR' in Cabrera's place still gets the sign from the layout
    for rename in (None, lambda n: n.lstrip("-")):
        page, ex, snr = extract_page(RenderStyle(dpi=100.0, layout="6x2-cabrera"), rename=rename)
        assert_every_segment_right(page, ex)
        assert snr[LEADS_12.index("aVR")] >= 12.0, np.round(snr, 1)
        assert np.nanmean(snr) >= 12.0


@pytest.mark.parametrize("seed", [1, 2])
def test_any_printed_order_is_read_from_the_names(seed):
    rng = np.random.default_rng(seed)
    layout = shuffled_layout(LAYOUTS["6x2" if seed == 1 else "3x4+1"], rng)
    # an unknown order with simultaneous columns has no window evidence yet (see cells.py): consecutive ones
    layout = Layout(layout.name, layout.grid, layout.rhythm, None)
    style = RenderStyle(dpi=100.0, layout="3x4+1", custom_layout=layout)
    page, ex, snr = extract_page(style, seed=seed)
    assert page.layout.endswith("~shuffled")
    assert_every_segment_right(page, ex)
    assert np.nanmean(snr) >= 12.0, np.round(snr, 1)


def test_simultaneous_columns_in_an_unknown_order_are_told_by_the_rhythm_strip():
    # a shuffled 6x2 grid with both columns over the first 5 s and a II strip: the names say which lead, the
    # strip's beats say the right column's window
    rng = np.random.default_rng(4)
    grid = shuffled_layout(LAYOUTS["6x2"], rng).grid
    layout = Layout("6x2~sim", grid, ("II",), ((0.0, 0.5), (0.0, 0.5)))
    signal = synthetic_ecg(FS_HZ, rhythm="AFIB/AFL", seed=4)  # irregular beats: a 5 s shift cannot line up
    page = render_page(signal, FS_HZ, LEADS_12, RenderStyle(dpi=100.0, layout="3x4+1", custom_layout=layout))
    ex = extract_signal(page.trace_mask.astype(np.float32), page.image, FS_HZ, signal.shape[0], LEADS_12,
                        page.lead_name_boxes())
    assert_every_segment_right(page, ex)
    assert any("first column's time window" in n for n in ex.notes)
    # the same grid with consecutive columns stays consecutive
    layout = Layout("6x2~cons", grid, ("II",))
    page = render_page(signal, FS_HZ, LEADS_12, RenderStyle(dpi=100.0, layout="3x4+1", custom_layout=layout))
    ex = extract_signal(page.trace_mask.astype(np.float32), page.image, FS_HZ, signal.shape[0], LEADS_12,
                        page.lead_name_boxes())
    assert_every_segment_right(page, ex)


def test_fallback_without_names_says_so():
    page, ex, snr = extract_page(RenderStyle(dpi=100.0, layout="6x2-eik"), boxes=False)
    assert ex.layout == "6x2-eik"
    assert any("no lead names" in n for n in ex.notes)
    assert_every_segment_right(page, ex)


def test_names_nearer_the_next_row_go_to_their_own_row():
    # ECG-Image-Kit's 12x1: each name sits 0.6 row spacings below its own baseline, nearer the next row
    centres = np.arange(13) * 100.0 + 200.0
    boxes = [LeadNameBox("V1", Box(10, y + 50, 30, y + 70)) for y in centres]
    assert assign_boxes_to_rows(boxes, centres) == list(range(13))
    # names above their rows
    boxes = [LeadNameBox("V1", Box(10, y - 40, 30, y - 20)) for y in centres[:12]]
    assert assign_boxes_to_rows(boxes, centres) == list(range(12))


def test_eik_12x1_with_crossing_traces_gives_each_lead_its_own_trace():
    # 13 rows at 150 dpi with 2.5 x amplitudes: QRS complexes reach into the neighbouring rows
    signal = 2.5 * independent_leads(FS_HZ, 3)
    page = render_page(signal, FS_HZ, LEADS_12, RenderStyle(dpi=150.0, layout="12x1-eik", margin_top_mm=5.0))
    crossing = 0
    by_row = sorted(page.leads, key=lambda t: t.baseline_row)
    for a, b in zip(by_row, by_row[1:]):
        crossing += int(np.nanmax(a.pixels[:, 0]) > np.nanmin(b.pixels[:, 0]))
    assert crossing >= 3  # the page really has crossing traces
    ex = extract_signal(page.trace_mask.astype(np.float32), page.image, FS_HZ, signal.shape[0], LEADS_12,
                        page.lead_name_boxes())
    assert_every_segment_right(page, ex)
    ref = drawn_reference(page, signal, LEADS_12)
    for j, name in enumerate(LEADS_12):
        got = ex.signal[:, j]
        ok = np.isfinite(got) & np.isfinite(ref[:, j])
        assert ok.sum() > 0.8 * np.isfinite(ref[:, j]).sum(), name
        # its own lead, not a neighbour's: correlates with the true lead better than with any other
        corr = [np.corrcoef(got[ok], signal[ok, k])[0, 1] for k in range(12)]
        assert int(np.argmax(corr)) == j and corr[j] > 0.7, (name, np.round(corr, 2))


def test_random_styles_draw_the_new_layouts():
    rng = np.random.default_rng(0)
    seen = {random_style(rng).layout for _ in range(200)}
    assert {"6x2-eik", "12x1-eik", "6x2-cabrera"} <= seen
    shuffled = [s for s in (random_style(np.random.default_rng(i)) for i in range(60)) if s.custom_layout]
    assert shuffled and all(isinstance(s.custom_layout, Layout) for s in shuffled)


def test_a_missed_row_keeps_the_other_rows_in_their_places():
    from paperecg.extract.cells import row_slots

    assert row_slots(np.array([0.0, 100.0, 200.0, 300.0])) == [0, 1, 2, 3]
    assert row_slots(np.array([0.0, 100.0, 200.0, 400.0, 500.0])) == [0, 1, 2, -1, 3, 4]
    # ECG-Image-Kit's 12x1 (13 row places) with one lead not found is not read as the textbook 12x1
    page, ex, snr = extract_page(RenderStyle(dpi=100.0, layout="12x1-eik"), boxes=False)
    drop = next(t for t in page.leads if t.name == "V5")
    tmap = page.trace_mask.astype(np.float32)
    tmap[np.round(drop.pixels[:, 0]).astype(int) + np.arange(-3, 4)[:, None],
         np.round(drop.pixels[:, 1]).astype(int)] = 0.0
    ex = extract_signal(tmap, page.image, FS_HZ, page.num_samples, LEADS_12, None)
    assert ex.layout == "12x1-eik"
    right = [lead for lead, _, found, _ in segment_leads(page, ex) if found and found[0] == lead]
    assert len(right) == len(page.leads) - 1


def test_rows_from_names_drop_a_blob_row_and_add_a_missed_one():
    from paperecg.extract.cells import rows_from_names

    # names 40 px below rows 100 px apart; found: a blob row at 450 (between the names of rows 400 and 500) and
    # no row at 700
    truth = np.arange(10) * 100.0 + 100.0
    boxes = [LeadNameBox("V1", Box(10, y + 30, 30, y + 50)) for y in truth]
    found = np.array([100, 200, 300, 400, 450, 500, 600, 800, 900, 1000], dtype=float)
    fixed = rows_from_names(boxes, found)
    assert fixed is not None and np.allclose(fixed, truth, atol=1.0)
    assert rows_from_names(boxes, truth) is None


def test_rows_group_the_cells_of_each_printed_row():
    from paperecg.layouts import LAYOUTS

    rows = LAYOUTS["3x4+1"].rows()
    assert [[c.lead for c in row] for row in rows] == [["I", "aVR", "V1", "V4"], ["II", "aVL", "V2", "V5"],
                                                       ["III", "aVF", "V3", "V6"], ["II"]]


def test_align_rows_keeps_order_and_may_skip_a_layout_row():
    import numpy as np

    from paperecg.layouts import align_rows

    # found rows 0, 1 match layout rows 0 and 2 (row 1 was missed on the page); found row 2 matches nothing
    gain = np.array([[3.0, 1.0, 0.0, 0.0], [0.0, 1.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    total, mapping = align_rows(gain)
    assert total == 5.0 and list(mapping[:2]) == [0, 2] and mapping[2] in (-1, 3)
    # order is kept: a crossing assignment (found 0 -> layout 1, found 1 -> layout 0) is never chosen
    total, mapping = align_rows(np.array([[0.0, 5.0], [5.0, 0.0]]))
    assert total == 5.0 and sorted(m for m in mapping if m >= 0) == [m for m in mapping if m >= 0]
