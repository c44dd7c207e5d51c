"""The limb leads' redundancy (Einthoven, Goldberger): a misread limb lead taken from the others."""
import numpy as np
import pytest

from paperecg.extract.limbs import LIMB_BASIS, repair_limb_leads
from paperecg.layouts import STANDARD_LEADS


def limb_signal(fs_hz: float, seconds: float = 10.0, seed: int = 0) -> np.ndarray:
    """(T, 12) leads in STANDARD_LEADS order: the six limb leads made from one I and one II with sharp
    'R waves' (Gaussian spikes every second), the chest leads noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fs_hz)) / fs_hz
    spikes = sum(np.exp(-0.5 * ((t - c) / 0.012) ** 2) for c in np.arange(0.5, seconds, 1.0))
    lead_i = 1.2 * spikes + 0.1 * np.sin(2 * np.pi * 0.3 * t)
    lead_ii = 0.9 * spikes - 0.05 * np.cos(2 * np.pi * 0.7 * t)
    out = rng.normal(0, 0.1, (t.size, 12))
    for j, name in enumerate(STANDARD_LEADS[:6]):
        a, b = LIMB_BASIS[name]
        out[:, j] = a * lead_i + b * lead_ii
    return out


def clip_peaks(x: np.ndarray, height_mv: float) -> np.ndarray:
    """A lead whose R waves were cut at height_mv (the split between two touching rows)."""
    return np.minimum(x, height_mv)


@pytest.mark.parametrize("fs_hz", [100.0, 500.0])
def test_a_lead_with_cut_r_waves_is_rebuilt_from_the_other_five(fs_hz):
    true = limb_signal(fs_hz)
    read = true.copy()
    read[:, 0] = clip_peaks(true[:, 0], 0.6)  # lead I: R waves of 1.2 mV read at half height
    read[:, :6] += np.array([0.05, -0.03, 0.02, 0.0, 0.04, -0.02])  # every row its own baseline
    fixed, replaced = repair_limb_leads(read, list(STANDARD_LEADS), fs_hz)
    assert replaced > 0
    peaks = true[:, 0] > 1.0
    assert np.abs(fixed[peaks, 0] - 0.05 - true[peaks, 0]).max() < 0.03  # at full height, on its own baseline
    # every other sample, and every other lead, as read
    np.testing.assert_array_equal(fixed[~peaks & (true[:, 0] < 0.6), 0], read[~peaks & (true[:, 0] < 0.6), 0])
    np.testing.assert_array_equal(fixed[:, 1:], read[:, 1:])


def test_four_limb_leads_at_one_instant_are_left_alone():
    """A 3x4 page's second column: aVR, aVL, aVF and the lead II strip. One reading more than unknowns
    cannot say which lead is wrong."""
    true = limb_signal(100.0)
    read = true.copy()
    read[:, [0, 2]] = np.nan  # I and III not printed at this instant
    read[:, 4] = clip_peaks(true[:, 4], 0.3)
    fixed, replaced = repair_limb_leads(read, list(STANDARD_LEADS), 100.0)
    assert replaced == 0
    np.testing.assert_array_equal(fixed, read)


def test_two_leads_cut_at_once_are_rebuilt_from_four_and_three_are_left_alone():
    true = limb_signal(100.0)
    two = true.copy()
    two[:, 0] = clip_peaks(true[:, 0], 0.6)  # lead I's R waves cut at 0.6 mV
    two[:, 2] = np.maximum(true[:, 2], -0.05)  # and lead III's negative ones at -0.05 mV, the same instants
    fixed, _ = repair_limb_leads(two, list(STANDARD_LEADS), 100.0)
    tall = true[:, 0] > 0.8
    assert np.abs(fixed[tall][:, [0, 2]] - true[tall][:, [0, 2]]).max() < 0.1  # cut by up to 0.7 mV
    three = two.copy()
    three[:, 3] = np.minimum(true[:, 3], 0.4 * true[:, 3].min())  # and aVR's cut too
    fixed, _ = repair_limb_leads(three, list(STANDARD_LEADS), 100.0)
    far = (true[:, 0] > 0.9) & (true[:, 2] < -0.2)  # every one of the three cut by more than 0.15 mV
    assert far.sum() >= 5
    np.testing.assert_array_equal(fixed[far], three[far])


def test_two_readings_are_never_replaced_by_shorter_ones():
    """Three leads cut toward their baselines agree with each other like a smaller signal: the four readings
    left can include them, and the good ones would be cut to match."""
    true = limb_signal(100.0)
    read = true.copy()
    tall = true[:, 0] > 0.6
    read[tall, 0] *= 0.3  # I, aVR and aVL cut alike: together they read as a smaller (I, II)
    read[tall, 3] *= 0.3
    read[tall, 4] *= 0.3
    fixed, _ = repair_limb_leads(read, list(STANDARD_LEADS), 100.0)
    assert (np.abs(fixed[tall]) >= np.abs(read[tall]) - 0.15).all()


def test_a_lead_read_on_a_time_axis_of_its_own_is_left_alone():
    """Rebuilt from the others, a lead read 50 ms late would show each QRS twice."""
    true = limb_signal(500.0)
    read = true.copy()
    read[:, 4] = np.roll(true[:, 4], 25)
    read[:, 4] = clip_peaks(read[:, 4], 0.5)
    fixed, _ = repair_limb_leads(read, list(STANDARD_LEADS), 500.0)
    np.testing.assert_array_equal(fixed[:, 4], read[:, 4])


def test_unread_samples_and_names_in_another_case_and_order():
    true = limb_signal(250.0)
    names = ["AVF", "V1", "II", "i", "avl", "III", "AVR", "V2", "V3", "V4", "V5", "V6"]
    order = [5, 6, 1, 0, 4, 2, 3, 7, 8, 9, 10, 11]
    read = true[:, order].copy()
    read[:1000, 3] = np.nan  # lead I not read in the first 4 s
    read[:, 3] = clip_peaks(read[:, 3], 0.6)
    fixed, _ = repair_limb_leads(read, names, 250.0)
    assert np.isnan(fixed[:1000, 3]).all()  # an unread sample stays unread
    late = np.arange(true.shape[0]) >= 1000
    peaks = late & (true[:, 0] > 1.0)
    assert np.abs(fixed[peaks, 3] - true[peaks, 0]).max() < 0.03


def test_a_12x1_page_whose_r_waves_meet_the_row_above_reads_every_limb_lead():
    """12x1: every row's QRS at the same instant, rows about 20 mm apart on this renderer's page; R waves of
    1.6 mV in lead I meet aVR's and aVL's rows (200 dpi, perfect trace mask). Without the limb leads'
    redundancy aVR and aVL read at about 14 dB."""
    from conftest import LEADS_12

    from paperecg.extract import extract_signal
    from paperecg.records.synthetic import synthetic_ecg
    from paperecg.render.page import RenderStyle, render_page
    from paperecg.score.evaluate import score_signals

    fs_hz = 100.0
    signal = synthetic_ecg(fs_hz, seed=3)
    lead_i = signal[:, 0] / np.abs(signal[:, 0]).max() * 1.6
    lead_ii = signal[:, 1] / np.abs(signal[:, 1]).max() * 1.0
    for j, name in enumerate(LEADS_12[:6]):
        a, b = LIMB_BASIS[name]
        signal[:, j] = a * lead_i + b * lead_ii
    page = render_page(signal, fs_hz, LEADS_12, RenderStyle(dpi=200.0, layout="12x1"))
    ex = extract_signal(page.trace_mask.astype(np.float32), page.image, fs_hz, signal.shape[0], LEADS_12,
                        page.lead_name_boxes())
    snr = np.array([s.snr_db for s in score_signals(signal, ex.signal, fs_hz, LEADS_12)])
    assert snr[:6].min() >= 20.0, np.round(snr[:6], 1)
    assert any("taken from the other limb leads" in n for n in ex.notes)


def test_leads_that_do_not_hold_einthovens_law_are_left_alone():
    """Six limb leads with rhythms of their own (a page of unrelated traces, or a reading with the names
    wrong): four of them agree only where all are flat, and a fifth's QRS there must not be flattened."""
    from conftest import synthetic_ecg

    read = np.stack([synthetic_ecg(100.0, seed=7 * j)[:, j] for j in range(12)], axis=1)
    fixed, replaced = repair_limb_leads(read, list(STANDARD_LEADS), 100.0)
    assert replaced == 0
    np.testing.assert_array_equal(fixed, read)
