"""Shared test setup: one torch thread (the CPU may be shared), small synthetic records."""
import os
import sys

import pytest

os.environ.setdefault("PAPERECG_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("PAPERECG_PROFILE", "tiny")
# Harness tests train the prevalence model only; tests of the whole pipeline ask for the components.
os.environ.setdefault("PAPERECG_COMPONENTS", "")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # torch-free tests still run
    pass

from paperecg.records.synthetic import synthetic_ecg  # noqa: E402

LEADS_12 = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


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
    signal = synthetic_ecg(fs_hz, seconds, "NORM", seed, len(lead_names))
    path = write_record(str(folder), name, signal, fs_hz, lead_names, comments)
    if not with_signal:
        os.remove(path + ".dat")
    return path


@pytest.fixture
def record_factory(tmp_path):
    def factory(*args, **kwargs):
        return make_record(tmp_path / "data", *args, **kwargs)

    return factory
