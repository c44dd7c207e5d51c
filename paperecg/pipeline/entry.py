"""What team_code.py calls: train, load and run, with the challenge's calling convention kept out.

`run` never raises: every failure is logged and turned into a valid fallback (all-NaN signal of the header's
shape, the prevalence model's labels).
"""
from __future__ import annotations

import os
import sys
import time
import traceback
from dataclasses import dataclass

import numpy as np

from paperecg.hardware import ddp_procs_wanted, ddp_rank_world, select_profile, set_threads
from paperecg.records.header import HeaderInfo
from paperecg.records.images import load_pages
from paperecg.records.io import image_paths, load_header_info, sanitize_signal

from .data import UnusableDataError, require_labels, scan_training_folder
from .digitizer import DETECTOR_DIR, SEGMENTER_DIR, Digitizer
from .prevalence import PrevalenceModel


def _log(verbose: bool, msg: str) -> None:
    if verbose:
        print(msg, flush=True)


def _warn(msg: str) -> None:
    print(f"[paperecg] {msg}", file=sys.stderr, flush=True)


# --- the classifier as team_code sees it -----------------------------------------------------------------

CLASSIFIER_DIR = "classifier"


@dataclass
class Classifier:
    """The trained classifier when the model folder has one; the prevalence model otherwise and as fallback."""

    prevalence: PrevalenceModel
    model: object | None = None  # paperecg.classify.model.Classifier

    @classmethod
    def load(cls, model_folder: str, device: str | None = None) -> "Classifier":
        model = None
        folder = os.path.join(model_folder, CLASSIFIER_DIR)
        if os.path.isdir(folder):
            from paperecg.classify.model import Classifier as TrainedClassifier

            model = TrainedClassifier.load(folder, device=device)
        else:
            _warn(f"no classifier in {model_folder}: answering with the label-prevalence model")
        return cls(PrevalenceModel.load(model_folder), model)

    def classify(self, header: HeaderInfo, images: list[np.ndarray], signal: np.ndarray | None) -> list[str]:
        if self.model is None:
            return self.prevalence.predict()
        return list(self.model.predict(images, signal, header))


# --- the three team functions --------------------------------------------------------------------------

def train(data_folder: str, model_folder: str, verbose: bool = False) -> None:
    """Prevalence fallback, then the lead-name detector, the segmenter and the classifier, each within the
    hardware profile's wall-clock budget. Unusable data raises UnusableDataError before any training.
    Under torchrun (or with several processes wanted: paperecg.pipeline.ddp) every rank trains the segmenter and
    the classifier; rank 0 alone trains the detector and writes the model folder."""
    from paperecg.render.dataset import find_eik_pages

    t0 = time.time()
    prof = select_profile()
    rank, _local_rank, world = ddp_rank_world()
    is_main = rank == 0
    verbose = verbose and is_main
    _log(verbose, f"Profile {prof.name} on {prof.device}: budgets detector {prof.detector_minutes:g} min, "
                  f"segmenter {prof.segmenter_minutes:g} min, classifier {prof.classifier_minutes:g} min")
    _log(verbose, f"Scanning training data in {data_folder} ...")
    records = scan_training_folder(data_folder, log=_warn)
    labelled = require_labels(records)
    with_signal = [r.path for r in records if r.has_signal]
    eik_pages = list(find_eik_pages(data_folder))
    _log(verbose, f"{len(records)} usable records ({len(with_signal)} with signals, {len(labelled)} labelled), "
                  f"{len(eik_pages)} ECG-Image-Kit pages")
    if not with_signal and not eik_pages:
        raise UnusableDataError("no signal files to render training pages from and no ECG-Image-Kit pages "
                                "(image + JSON): the digitizer cannot be trained")
    prevalence = PrevalenceModel.fit([r.labels for r in labelled])
    if is_main:
        os.makedirs(model_folder, exist_ok=True)
        prevalence.save(model_folder)
    _log(verbose, "Label prevalence: " + ", ".join(f"{c} {p:.3f}" for c, p in prevalence.prevalence.items() if p))

    from paperecg.classify.train import train_classifier
    from paperecg.rectify.train import train_detector
    from paperecg.segment.train import TrainConfig, train_segmenter

    log = print if verbose else (lambda *a, **k: None)
    if "detector" in prof.components and is_main:
        _log(verbose, "Training the lead-name detector ...")
        train_detector(with_signal, os.path.join(model_folder, DETECTOR_DIR), prof.detector_minutes,
                       eik_pages=eik_pages, log=log)
    parallel = [c for c in ("segmenter", "classifier") if c in prof.components]
    procs = ddp_procs_wanted(prof)
    if world == 1 and procs > 1 and parallel:
        from .ddp import launch

        if launch(data_folder, model_folder, parallel, procs, verbose, log=_warn):
            parallel = []
        else:
            _warn(f"multi-process training failed: training {', '.join(parallel)} in this process instead")
    if "segmenter" in parallel:
        _log(verbose, "Training the segmenter ...")
        train_segmenter(with_signal, os.path.join(model_folder, SEGMENTER_DIR), eik_pairs=eik_pages,
                        train_config=TrainConfig(minutes=prof.segmenter_minutes), log=log)
    if "classifier" in parallel:
        _log(verbose, "Training the classifier ...")
        train_classifier([r.path for r in labelled if r.has_signal], os.path.join(model_folder, CLASSIFIER_DIR),
                         minutes=prof.classifier_minutes, verbose=verbose)
    _log(verbose, f"Training done in {(time.time() - t0) / 60:.1f} min")


def load(model_folder: str, verbose: bool = False) -> tuple[Digitizer, Classifier]:
    """Both models on the profile's device; a missing prevalence file means no training ever ran: fail."""
    device = select_profile().device
    set_threads()
    return Digitizer.load(model_folder, device=device, log=_warn), Classifier.load(model_folder, device=device)


def run(record: str, digitizer: Digitizer | None, classifier: Classifier | None,
        verbose: bool = False) -> tuple[np.ndarray | None, list[str] | None]:
    try:
        header = load_header_info(record)
    except Exception as e:
        # Without a header there is no shape to fill; the organizers' save step cannot run either.
        _warn(f"{record}: unreadable header ({e}); no output")
        return None, None
    signal, images = None, []
    try:
        if digitizer is not None:
            signal = digitizer.digitize(record, header, verbose, log=_warn)
            images = [p.rectified.image if p.rectified is not None else p.page.rgb for p in digitizer.last_pages]
    except Exception:
        _warn(f"{record}: digitization failed, leads left empty:\n{traceback.format_exc()}")
    signal = sanitize_signal(signal if signal is not None else np.nan, header.num_samples,
                             header.num_leads, header.adc_gains)
    labels = None
    try:
        if classifier is not None:
            if not images and classifier.model is not None:
                images = [p.rgb for p in load_pages(image_paths(record, header), log=_warn)]
            labels = classifier.classify(header, images, signal)
    except Exception:
        _warn(f"{record}: classification failed, prevalence fallback:\n{traceback.format_exc()}")
        labels = classifier.prevalence.predict() if classifier is not None else None
    return signal, (list(labels) if labels is not None else None)
