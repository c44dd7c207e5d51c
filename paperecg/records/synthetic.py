"""Synthetic 12-lead ECGs with known rhythm labels: data for the demo, the organizer simulation and tests.

Not physiology-grade; enough that rate and rhythm classes are learnable and traces look like ECGs:
Gaussian P, Q, R, S, T waves per beat, lead-specific projections of one cardiac vector, baseline wander;
III, aVR, aVL and aVF derived from I and II as an electrocardiograph derives them.
"""
from __future__ import annotations

import numpy as np

from paperecg.layouts import STANDARD_LEADS

# (label, heart-rate range in bpm)
RHYTHMS = {"NORM": (60, 95), "BRADY": (40, 55), "TACHY": (105, 150), "AFIB/AFL": (70, 130), "PVC": (60, 90)}

# Projections of a 2-D cardiac axis (frontal x, precordial y) onto the 12 leads: rough but lead-distinct.
_LEAD_WEIGHTS = np.array([
    [1.0, 0.1], [1.2, 0.2], [0.3, 0.1], [-1.0, -0.1], [0.5, 0.0], [0.8, 0.1],
    [-0.3, -0.8], [0.0, -0.4], [0.4, 0.3], [0.8, 0.9], [0.9, 0.8], [0.8, 0.6],
])


def beat_times(rhythm: str, seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Beat onsets (s) and a flag per beat for premature ventricular beats."""
    lo, hi = RHYTHMS[rhythm]
    rr = 60.0 / rng.uniform(lo, hi)
    times, flags, t = [], [], rng.uniform(0.05, rr)
    while t < seconds:
        premature = rhythm == "PVC" and rng.random() < 0.2
        times.append(t - (0.35 * rr if premature else 0.0))
        flags.append(premature)
        jitter = rng.uniform(-0.35, 0.35) * rr if rhythm == "AFIB/AFL" else rng.normal(0, 0.02 * rr)
        t += rr + jitter
    return np.asarray(times), np.asarray(flags, dtype=bool)


def synthetic_ecg(fs_hz: float, seconds: float = 10.0, rhythm: str = "NORM", seed: int | None = 0,
                  num_leads: int = 12) -> np.ndarray:
    """(num_samples, num_leads) float64 in mV, rounded to the µV."""
    rng = np.random.default_rng(seed)
    n = int(round(fs_hz * seconds))
    t = np.arange(n) / fs_hz
    wave = lambda centre, width, amp: amp * np.exp(-((t - centre) / width) ** 2)  # noqa: E731
    frontal = np.zeros(n)
    precordial = np.zeros(n)
    axis_gain = rng.uniform(0.7, 1.4)
    for onset, premature in zip(*beat_times(rhythm, seconds, rng)):
        r = onset + 0.2
        if premature:  # wide, tall, no P wave, discordant T
            frontal += wave(r, 0.04, 1.6 * axis_gain) + wave(r + 0.3, 0.08, -0.5)
            precordial += wave(r, 0.045, -1.2)
            continue
        if rhythm != "AFIB/AFL":
            frontal += wave(r - 0.16, 0.025, 0.15)
        frontal += wave(r - 0.03, 0.008, -0.1) + wave(r, 0.012, axis_gain) + wave(r + 0.03, 0.01, -0.25)
        frontal += wave(r + 0.28, 0.05, 0.3)
        precordial += wave(r, 0.013, -0.8 * axis_gain) + wave(r + 0.04, 0.012, 0.6) + wave(r + 0.3, 0.06, 0.25)
    if rhythm == "AFIB/AFL":  # fibrillatory baseline
        frontal += 0.04 * np.sin(2 * np.pi * rng.uniform(5, 8) * t + rng.uniform(0, 6))
    weights = _LEAD_WEIGHTS[np.arange(num_leads) % len(_LEAD_WEIGHTS)] * rng.uniform(0.8, 1.2, (num_leads, 2))
    signal = np.stack([frontal, precordial], axis=1) @ weights.T
    wander = 0.05 * np.sin(2 * np.pi * rng.uniform(0.1, 0.4) * t[:, None] + rng.uniform(0, 6, num_leads))
    signal = signal + wander + rng.normal(0, 0.005, signal.shape)
    if num_leads == len(STANDARD_LEADS):
        signal = with_derived_limb_leads(signal)
    return np.round(signal, 3)


def with_derived_limb_leads(signal: np.ndarray) -> np.ndarray:
    """A STANDARD_LEADS-ordered signal with III, aVR, aVL and aVF computed from I and II, as an
    electrocardiograph derives them (Einthoven, Goldberger): the extractor reads the limb leads against
    each other (extract/limbs.py), and leads projected apart would not hold that law."""
    out = np.array(signal, dtype=np.float64, copy=True)
    lead_i, lead_ii = out[:, 0], out[:, 1]
    out[:, 2] = lead_ii - lead_i
    out[:, 3] = -(lead_i + lead_ii) / 2.0
    out[:, 4] = lead_i - lead_ii / 2.0
    out[:, 5] = lead_ii - lead_i / 2.0
    return out


def synthetic_record_set(count: int, seed: int = 0) -> list[tuple[str, list[str]]]:
    """(rhythm, labels) for `count` records, cycling through the rhythms so every class occurs."""
    rng = np.random.default_rng(seed)
    names = list(RHYTHMS)
    out = []
    for i in range(count):
        rhythm = names[i % len(names)] if i < len(names) else names[rng.integers(len(names))]
        out.append((rhythm, [rhythm]))
    return out


LEAD_NAMES = list(STANDARD_LEADS)
