"""What team_code.py calls to run the models: load and run, with the challenge's calling convention kept out
(the running direction; `training.py` trains the model folder that `load` reads).

`run` never raises: every failure is logged and turned into a valid fallback (all-NaN signal of the header's
shape, or None where the organizers' save step could not write one; the prevalence model's labels).
"""
from __future__ import annotations

import os
import traceback
from dataclasses import dataclass, field

import numpy as np

from paperecg.hardware import select_profile, set_threads
from paperecg.log import warn
from paperecg.records.header import HeaderInfo, parse_header
from paperecg.records.images import PageImage, load_pages
from paperecg.records.io import image_paths, load_header, sanitize_signal, save_step_accepts

from .digitizer import Digitizer, PageResult
from .prevalence import PrevalenceModel


# --- the classification model as team_code sees it --------------------------------------------------

CLASSIFIER_DIR = "classifier"


@dataclass
class Labeller:
    """The trained classifier when the model folder has one; the prevalence model otherwise and as fallback."""

    prevalence: PrevalenceModel
    model: object | None = None  # paperecg.classify.model.Classifier

    @classmethod
    def load(cls, model_folder: str, device: str | None = None) -> "Labeller":
        model = None
        folder = os.path.join(model_folder, CLASSIFIER_DIR)
        if os.path.isdir(folder):
            from paperecg.classify.model import Classifier

            model = Classifier.load(folder, device=device)
        else:
            warn(f"no classifier in {model_folder}: answering with the label-prevalence model")
        return cls(PrevalenceModel.load(model_folder), model)

    def classify(self, header: HeaderInfo, images: list[np.ndarray], signal: np.ndarray | None) -> list[str]:
        """The trained model's labels; the prevalence model's when there is no trained model or no lead was
        read (see lead_was_read). A page whose leads could not be read is one the pipeline did not understand
        (a monitor page read as empty got nine classes from the image branch alone), so its picture is not
        classified either."""
        if self.model is None or not lead_was_read(signal, header.fs_hz):
            return self.prevalence.predict()
        return list(self.model.predict(images, signal, header))


# A lead counts as read with at least this much digitized signal: about one beat at any rate the classes name
# (a few stray samples are a flat line to the signal branch, which it reads as an arrhythmia or a block).
MIN_READ_SECONDS = 1.0


def lead_was_read(signal: np.ndarray | None, fs_hz: float, min_seconds: float = MIN_READ_SECONDS) -> bool:
    """Whether some lead of a (num_samples, num_leads) signal holds at least min_seconds of finite samples."""
    if signal is None:
        return False
    x = np.asarray(signal, dtype=np.float64)
    if x.size == 0:
        return False
    x = x.reshape(x.shape[0], -1)
    finite_per_lead = np.isfinite(x).sum(axis=0)
    needed = max(1, int(np.ceil(min_seconds * float(fs_hz)))) if np.isfinite(fs_hz) and fs_hz > 0 else 1
    # a record shorter than min_seconds counts as read when one lead is whole
    return bool((finite_per_lead >= min(needed, x.shape[0])).any())


# --- running the models -------------------------------------------------------------------------------

def load(model_folder: str, verbose: bool = False) -> tuple[Digitizer, Labeller]:
    """Both models on the profile's device; a missing prevalence file means no training ever ran: fail."""
    device = select_profile().device
    set_threads()
    return Digitizer.load(model_folder, device=device, log=warn), Labeller.load(model_folder, device=device)


@dataclass
class RecordOutput:
    """What running the models on one record gives: what run_models returns, and each page's result."""

    signal: np.ndarray | None
    labels: list[str] | None
    pages: list[PageResult] = field(default_factory=list)


def run(record: str, digitizer: Digitizer | None, classifier: Labeller | None,
        verbose: bool = False) -> tuple[np.ndarray | None, list[str] | None]:
    """(signal, labels) for one record; never raises.

    signal: float64 (num_samples, num_leads) mV in header order, NaN where not digitized, clipped so the
    organizers' save step stores it in the header's formats; None when that step cannot write a signal for
    this header at all (no leads, no readable header): their save runs outside their try/except.
    labels: the classifier's; the prevalence model's whenever it has nothing to go on or fails (the one
    fallback, on every path).
    """
    out = run_record(record, digitizer, classifier, verbose)
    return out.signal, out.labels


def run_record(record: str, digitizer: Digitizer | None, classifier: Labeller | None,
               verbose: bool = False) -> RecordOutput:
    """`run`'s signal and labels with the digitizer's page results (empty where nothing was digitized)."""
    fallback_labels = _fallback_labels(classifier)
    try:
        header_text = load_header(record)
        header = parse_header(header_text)
    except Exception as e:
        warn(f"{record}: unreadable header ({type(e).__name__}: {e}); no signal, prevalence labels")
        return RecordOutput(None, fallback_labels)
    if not save_step_accepts(header_text):
        warn(f"{record}: the header describes no signal that can be saved (leads, rate, formats or gains "
             "missing); no signal, labels only")
        return RecordOutput(None, _classify(record, classifier, header, [], None, fallback_labels))
    pages = _load_pages(record, header)
    signal, results = None, []
    try:
        if digitizer is not None:
            digitized = digitizer.digitize_record(record, header, verbose, log=warn, pages=pages)
            signal, results = digitized.signal, digitized.pages
    except Exception:
        warn(f"{record}: digitization failed, leads left empty:\n{traceback.format_exc()}")
    signal = sanitize_signal(signal if signal is not None else np.nan, header.num_samples, header.num_leads,
                             header.adc_gains, header.baselines, header.formats)
    images = [p.rectified.image if p.rectified is not None else p.page.rgb for p in results]
    images = images or [p.rgb for p in pages]
    return RecordOutput(signal, _classify(record, classifier, header, images, signal, fallback_labels), results)


def _fallback_labels(classifier: Labeller | None) -> list[str] | None:
    try:
        return classifier.prevalence.predict() if classifier is not None else None
    except Exception:
        return None


def _load_pages(record: str, header: HeaderInfo) -> list[PageImage]:
    """Each page named by the header decoded once, shared by the digitizer and the classifier; every
    unreadable one reported in one line."""
    try:
        paths = image_paths(record, header)
        if not paths:
            warn(f"{record}: header names no image ('# Image:' line missing or empty)")
        return load_pages(paths, log=lambda m: warn(f"{record}: {m}"))
    except Exception as e:
        warn(f"{record}: page images could not be listed ({type(e).__name__}: {e})")
        return []


def _classify(record: str, classifier: Labeller | None, header: HeaderInfo, images: list[np.ndarray],
              signal: np.ndarray | None, fallback: list[str] | None) -> list[str] | None:
    if classifier is None:
        return fallback
    try:
        return list(classifier.classify(header, images, signal))
    except Exception:
        warn(f"{record}: classification failed, prevalence fallback:\n{traceback.format_exc()}")
        return fallback
