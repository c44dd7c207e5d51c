"""The fidelity statistics (amplitude ratio, time drift, best lag) on leads with a known scale, stretch and shift.

A lead drawn with its time axis stretched by a factor (1 + s) shows what the reference has at t(1 + s) at time
t: its features come early by s*t, so its lag (positive = late) falls by s per second: drift = -1000*s ms/s.
"""
import numpy as np
import pytest

from paperecg.score.fidelity import lead_fidelity, summarize


def beats(t: np.ndarray, rr_s: float = 0.83) -> np.ndarray:
    """P-QRS-T beats (mV) at the given times (s), on a flat baseline."""
    x = np.zeros_like(t)
    for r in np.arange(0.3, 12.0, rr_s):
        for dt, width, amp in ((-0.16, 0.025, 0.15), (0.0, 0.012, 1.2), (0.03, 0.01, -0.3), (0.28, 0.05, 0.3)):
            x += amp * np.exp(-((t - r - dt) / width) ** 2)
    return x


def windowed(x: np.ndarray, fs_hz: float, t0_s: float, t1_s: float) -> np.ndarray:
    """The lead masked to its printed window [t0, t1) (NaN elsewhere), as the references are."""
    out = np.full_like(x, np.nan)
    out[int(round(t0_s * fs_hz)):int(round(t1_s * fs_hz))] = x[int(round(t0_s * fs_hz)):int(round(t1_s * fs_hz))]
    return out


@pytest.mark.parametrize("fs_hz", [100.0, 500.0])
@pytest.mark.parametrize("scale", [0.6, 1.0, 1.3])
def test_amplitude_ratio_is_the_drawn_scale(fs_hz, scale):
    t = np.arange(int(10 * fs_hz)) / fs_hz
    ref = windowed(beats(t), fs_hz, 2.5, 5.0)
    est = windowed(scale * beats(t) + 0.2, fs_hz, 2.5, 5.0)  # an offset the alignment removes
    f = lead_fidelity(ref, est, fs_hz)
    assert f.amplitude_ratio == pytest.approx(scale, rel=0.02)
    assert abs(f.drift_ms_per_s) <= 1.0


@pytest.mark.parametrize("fs_hz", [100.0, 500.0])
@pytest.mark.parametrize("stretch", [-0.02, 0.01, 0.03])
def test_drift_is_the_time_stretch(fs_hz, stretch):
    t = np.arange(int(10 * fs_hz)) / fs_hz
    t_mid = 3.75  # the window's centre stays in place; the lead is stretched about it
    ref = windowed(beats(t), fs_hz, 2.5, 5.0)
    est = windowed(beats(t_mid + (t - t_mid) * (1.0 + stretch)), fs_hz, 2.5, 5.0)
    f = lead_fidelity(ref, est, fs_hz)
    assert f.drift_ms_per_s == pytest.approx(-1000.0 * stretch, rel=0.1, abs=1.5)
    # widened or narrowed QRS peaks hold more or fewer samples above the 99th percentile
    assert f.amplitude_ratio == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize("fs_hz", [100.0, 500.0])
def test_a_shift_is_a_lag_not_a_drift(fs_hz):
    t = np.arange(int(10 * fs_hz)) / fs_hz
    ref = windowed(beats(t), fs_hz, 0.0, 10.0)
    est = windowed(beats(t - 0.04), fs_hz, 0.0, 10.0)  # drawn 40 ms late
    f = lead_fidelity(ref, est, fs_hz)
    assert f.lag_ms == pytest.approx(40.0, abs=1000.0 / fs_hz)
    assert abs(f.drift_ms_per_s) <= 1.0


def test_empty_leads_are_counted_not_measured():
    fs_hz = 500.0
    t = np.arange(5000) / fs_hz
    ref = windowed(beats(t), fs_hz, 0.0, 2.5)
    rows = [lead_fidelity(ref, ref * 0.5, fs_hz), lead_fidelity(ref, np.full_like(ref, np.nan), fs_hz)]
    s = summarize(rows)
    assert s["leads"] == 2 and s["leads_measured"] == 1
    assert s["ratio_median"] == pytest.approx(0.5, rel=0.02)
    assert s["ratio_below_08"] == 1.0


@pytest.mark.parametrize("fs_hz", [100.0, 500.0])
def test_edge_gains_say_which_end_of_a_lead_holds_the_error(fs_hz):
    """A lead read with a little noise and a QRS cut off in its first 100 ms: the start holds most of the error
    and the end almost none; with the noise alone each end holds its share (100 ms of a 2.5-s window: 0.18 dB)."""
    t = np.arange(int(10 * fs_hz)) / fs_hz
    ref = windowed(beats(t - 2.5 + 0.25), fs_hz, 2.5, 5.0)  # a QRS 50 ms after the window starts
    noisy = ref + np.random.default_rng(0).normal(0.0, 0.02, ref.shape)
    cut = noisy.copy()
    first = slice(int(2.5 * fs_hz), int(2.6 * fs_hz))
    cut[first] = np.clip(cut[first], None, 0.2)  # its R wave cut at 0.2 mV
    share_db = -10 * np.log10(1 - 0.1 / 2.5)
    f = lead_fidelity(ref, cut, fs_hz)
    assert f.start_gain_db > 5.0
    assert 0.0 < f.end_gain_db < 0.05
    g = lead_fidelity(ref, noisy, fs_hz)
    assert g.start_gain_db == pytest.approx(share_db, abs=0.15)
    assert g.end_gain_db == pytest.approx(share_db, abs=0.15)
    assert summarize([f, g])["start_gain_db"] == pytest.approx((f.start_gain_db + g.start_gain_db) / 2, abs=1e-3)


def test_retime_gain_is_what_the_local_time_axis_costs():
    """A lead whose second beat comes 6 ms late (a crease) gains from re-timing; one read 10 % too small, or
    whose every beat comes equally late (the scorer's own lag), gains nothing."""
    fs_hz = 500.0
    t = np.arange(int(10 * fs_hz)) / fs_hz
    ref = windowed(beats(t), fs_hz, 0.0, 2.5)
    creased = beats(t - 0.006 * ((t > 1.0) & (t < 1.3)))  # only the beat at 1.13 s moves
    rng = np.random.default_rng(0)
    noise = 0.005 * rng.standard_normal(t.size)
    moved = lead_fidelity(ref, windowed(creased + noise, fs_hz, 0.0, 2.5), fs_hz)
    small = lead_fidelity(ref, windowed(0.9 * beats(t) + noise, fs_hz, 0.0, 2.5), fs_hz)
    late = lead_fidelity(ref, windowed(beats(t - 0.008) + noise, fs_hz, 0.0, 2.5), fs_hz)
    assert moved.retime_gain_db > 3.0
    assert abs(small.retime_gain_db) < 0.3
    assert abs(late.retime_gain_db) < 0.3
    assert summarize([moved, small])["retime_gain_db"] == pytest.approx(
        (moved.retime_gain_db + small.retime_gain_db) / 2, abs=1e-4)
