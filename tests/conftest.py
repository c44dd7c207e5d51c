"""Shared test setup: one torch thread (the CPU may be shared), small synthetic records."""
import os
import sys

import numpy as np
import pytest

os.environ.setdefault("PAPERECG_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("PAPERECG_PROFILE", "tiny")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # torch-free tests still run
    pass

LEADS_12 = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def synthetic_ecg(fs_hz: float, seconds: float = 10.0, num_leads: int = 12, seed: int = 0) -> np.ndarray:
    """A plausible multi-lead ECG-like signal in mV: P-QRS-T complexes at ~70 bpm plus slow wander."""
    rng = np.random.default_rng(seed)
    n = int(round(fs_hz * seconds))
    t = np.arange(n) / fs_hz
    beats = np.arange(0.3, seconds, 60.0 / rng.uniform(60, 80))
    base = np.zeros(n)
    for b in beats:
        base += 0.15 * np.exp(-((t - b + 0.16) / 0.025) ** 2)  # P
        base += 1.0 * np.exp(-((t - b) / 0.012) ** 2)  # R
        base -= 0.2 * np.exp(-((t - b - 0.03) / 0.01) ** 2)  # S
        base += 0.3 * np.exp(-((t - b - 0.25) / 0.05) ** 2)  # T
    leads = [base * rng.uniform(-1.2, 1.2) + 0.05 * np.sin(2 * np.pi * 0.3 * t + k) for k in range(num_leads)]
    return np.round(np.stack(leads, axis=1), 3)


def make_record(folder, name="00001_lr", fs_hz=100.0, lead_names=None, labels=("NORM",), images=(),
                extra_comments=(), seconds=10.0, seed=0, with_signal=True):
    """Write a WFDB record with challenge comment lines; returns its path without extension."""
    from paperecg.records.io import write_record

    lead_names = list(lead_names or LEADS_12)
    comments = ["Age: 56", "Sex: Female", "Height: Unknown", "Weight: 63", *extra_comments]
    if labels is not None:
        comments.append("Labels: " + ", ".join(labels))
    if images:
        comments.append("Image: " + ", ".join(images))
    signal = synthetic_ecg(fs_hz, seconds, len(lead_names), seed)
    path = write_record(str(folder), name, signal, fs_hz, lead_names, comments)
    if not with_signal:
        os.remove(path + ".dat")
    return path


@pytest.fixture
def record_factory(tmp_path):
    def factory(*args, **kwargs):
        return make_record(tmp_path / "data", *args, **kwargs)

    return factory
