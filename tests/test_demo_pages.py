"""Every kind of page the demo prints reads (issue 27, item 7): a monitor page (bright trace on a dark screen)
and a page whose leads are printed in a shuffled order under a header block. Small generated pages, read by the
real rectification and extraction with a segmenter double that calls the page's ink trace."""
import numpy as np

from paperecg.layouts import LAYOUTS
from paperecg.pipeline.digitizer import Digitizer
from paperecg.records.header import HeaderInfo
from paperecg.records.images import PageImage
from paperecg.records.synthetic import LEAD_NAMES, synthetic_ecg
from paperecg.rectify.grid import dark_page, light_paper
from paperecg.render.page import RenderStyle, render_page
from paperecg.score.evaluate import snr_db

FS_HZ = 250.0


class DarkInk:
    """A segmenter that calls every dark pixel trace: exact on a clean generated page with a light grid."""

    def predict_work(self, image_rgb: np.ndarray) -> tuple[np.ndarray, float]:
        return (np.asarray(image_rgb).min(axis=2) < 90).astype(np.float32), 1.0


def header_for(signal: np.ndarray) -> HeaderInfo:
    n = len(LEAD_NAMES)
    return HeaderInfo("rec", FS_HZ, signal.shape[0], list(LEAD_NAMES), [1000.0] * n, [0] * n, ["mV"] * n,
                      ["16"] * n)


def read_page(page_rgb: np.ndarray, signal: np.ndarray, detector=None):
    digitizer = Digitizer(detector=detector, segmenter=DarkInk())
    result = digitizer.digitize_page(PageImage("page.png", page_rgb), header_for(signal))
    return result.extraction


def mean_snr(signal: np.ndarray, est: np.ndarray, page) -> float:
    """Mean challenge SNR over the leads the page shows (the reference masked as the challenge masks it)."""
    out = []
    for t in page.leads:
        j = LEAD_NAMES.index(t.name)
        ref = np.full(signal.shape[0], np.nan)
        ref[t.start_sample:t.end_sample] = signal[t.start_sample:t.end_sample, j]
        out.append(snr_db(ref, est[:, j], FS_HZ))
    return float(np.mean(out))


def test_light_paper_inverts_a_dark_page_only():
    light = np.full((40, 60, 3), 245, np.uint8)
    light[20, :] = 0
    dark = 255 - light
    assert not dark_page(light) and dark_page(dark)
    assert light_paper(light) is light or np.array_equal(light_paper(light), light)
    np.testing.assert_array_equal(light_paper(dark), light)


def test_a_monitor_page_is_read_like_paper():
    """Bright green trace on a near-black screen with a dim grid: the whole screen is dark and reaches the
    image border, which the off-paper mask took for background (nothing was read: 'empty trace map')."""
    signal = synthetic_ecg(FS_HZ, 10.0, "NORM", 1, 12)
    style = RenderStyle(dpi=100.0, paper_rgb=(8, 6, 20), grid_minor_rgb=(26, 20, 44), grid_major_rgb=(52, 40, 80),
                        trace_rgb=(0, 255, 0), text_rgb=(0, 255, 0), line_width_pt=1.4)
    page = render_page(signal, FS_HZ, LEAD_NAMES, style, np.random.default_rng(0))
    ext = read_page(page.image, signal)
    assert "empty trace map" not in ext.notes
    assert np.isfinite(ext.signal).any(axis=0).all()  # every lead read
    assert mean_snr(signal, ext.signal, page) > 12.0


def shuffled_page(mm_per_mv: float, dpi: float = 200.0):
    """A 3x4+1 page printed in its own order under a header block, on a grid whose major lines are as dark
    and as thick as the trace (the demo's page 11)."""
    base = LAYOUTS["3x4+1"]
    order = (("III", "aVF", "V2", "aVR"), ("V1", "aVL", "V3", "V6"), ("I", "II", "V4", "V5"))
    layout = type(base)("3x4+1~shuffled", order, base.rhythm, tuple((0.0, 0.25) for _ in range(4)))
    style = RenderStyle(dpi=dpi, custom_layout=layout, mm_per_mv=mm_per_mv, paper_rgb=(236, 236, 255),
                        grid_minor_rgb=(120, 80, 190), grid_major_rgb=(20, 90, 20), grid_major_px=2,
                        trace_rgb=(20, 40, 20), text_rgb=(20, 40, 20), line_width_pt=1.4,
                        header_text=("ID: 44011", "Age: 64 yrs", "Sex: Female", "Vent rate: 116 bpm"))
    signal = synthetic_ecg(FS_HZ, 10.0, "NORM", 2, 12)
    return render_page(signal, FS_HZ, LEAD_NAMES, style, np.random.default_rng(0)), signal


def test_pulses_are_found_beside_major_grid_lines_as_dark_as_the_trace():
    """The page's calibration pulses set the gain (5 mm/mV here): a major grid line through a pulse read as ink
    inside its rectangle and no pulse was found, so every lead was read at twice its height."""
    from paperecg.extract import extract_signal

    page, signal = shuffled_page(mm_per_mv=5.0)
    ext = extract_signal(page.trace_mask.astype(np.float32), page.image, FS_HZ, signal.shape[0], LEAD_NAMES,
                         page.lead_name_boxes())
    assert all(r.pulse is not None for r in ext.rows)
    assert ext.geometry.mm_per_mv == 5.0
    assert mean_snr(signal, ext.signal, page) > 12.0


def test_a_light_sheet_on_a_dark_table_is_not_inverted():
    photo = np.full((300, 400, 3), 30, np.uint8)  # a dark table filling most of the frame
    photo[90:210, 120:280] = 240  # the sheet, small, in the middle
    assert not dark_page(photo)
    assert light_paper(photo) is photo
