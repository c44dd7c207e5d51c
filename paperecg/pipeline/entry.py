"""What team_code.py calls: train, load and run, with the challenge's calling convention kept out.

`run` never raises: every failure is logged and turned into a valid fallback (all-NaN signal of the header's
shape, the prevalence model's labels).
"""
from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import dataclass, field

import numpy as np

from paperecg.records.header import HeaderInfo
from paperecg.records.io import load_header_info, sanitize_signal

from .data import require_labels, scan_training_folder
from .prevalence import PrevalenceModel


def _log(verbose: bool, msg: str) -> None:
    if verbose:
        print(msg, flush=True)


def _warn(msg: str) -> None:
    print(f"[paperecg] {msg}", file=sys.stderr, flush=True)


# --- models as team_code sees them ---------------------------------------------------------------------

@dataclass
class Digitizer:
    """Image(s) -> signal. Until a trained digitizer is in the model folder it abstains on every lead."""

    components: dict = field(default_factory=dict)

    def digitize(self, record: str, header: HeaderInfo, verbose: bool = False) -> np.ndarray:
        return np.full((header.num_samples, header.num_leads), np.nan)


@dataclass
class Classifier:
    prevalence: PrevalenceModel

    def classify(self, record: str, header: HeaderInfo, signal: np.ndarray | None, verbose: bool = False):
        return self.prevalence.predict()


# --- the three team functions --------------------------------------------------------------------------

def train(data_folder: str, model_folder: str, verbose: bool = False) -> None:
    t0 = time.time()
    _log(verbose, f"Scanning training data in {data_folder} ...")
    records = scan_training_folder(data_folder, log=_warn)
    labelled = require_labels(records)
    _log(verbose, f"{len(records)} usable records, {len(labelled)} labelled")
    os.makedirs(model_folder, exist_ok=True)
    prevalence = PrevalenceModel.fit([r.labels for r in labelled])
    prevalence.save(model_folder)
    _log(verbose, f"Label prevalence: " + ", ".join(f"{c} {p:.3f}" for c, p in prevalence.prevalence.items() if p))
    _log(verbose, f"Training done in {time.time() - t0:.1f} s")


def load(model_folder: str, verbose: bool = False) -> tuple[Digitizer, Classifier]:
    prevalence = PrevalenceModel.load(model_folder)
    return Digitizer(), Classifier(prevalence)


def run(record: str, digitizer: Digitizer | None, classifier: Classifier | None,
        verbose: bool = False) -> tuple[np.ndarray | None, list[str] | None]:
    try:
        header = load_header_info(record)
    except Exception as e:
        # Without a header there is no shape to fill; the organizers' save step cannot run either.
        _warn(f"{record}: unreadable header ({e}); no output")
        return None, None
    signal = None
    try:
        if digitizer is not None:
            signal = digitizer.digitize(record, header, verbose)
    except Exception:
        _warn(f"{record}: digitization failed, leads left empty:\n{traceback.format_exc()}")
    signal = sanitize_signal(signal if signal is not None else np.nan, header.num_samples,
                             header.num_leads, header.adc_gains)
    labels = None
    try:
        if classifier is not None:
            labels = classifier.classify(record, header, signal, verbose)
    except Exception:
        _warn(f"{record}: classification failed, prevalence fallback:\n{traceback.format_exc()}")
        labels = classifier.prevalence.predict() if classifier is not None else None
    return signal, (list(labels) if labels is not None else None)
