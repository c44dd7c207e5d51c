"""What team_code.py calls: train, load and run, with the challenge's calling convention kept out.

`run` never raises: every failure is logged and turned into a valid fallback (all-NaN signal of the header's
shape, or None where the organizers' save step could not write one; the prevalence model's labels).
"""
from __future__ import annotations

import os
import shutil
import sys
import time
import traceback
from dataclasses import dataclass

import numpy as np

from paperecg.hardware import ddp_procs_wanted, ddp_rank_world, select_profile, set_threads
from paperecg.records.header import HeaderInfo, parse_header
from paperecg.records.images import PageImage, load_pages
from paperecg.records.io import image_paths, load_header, sanitize_signal, save_step_accepts

from .data import UnusableDataError, check_trainable, require_labels, scan_training_folder
from .ddp import DDP_CHILD_ENV
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


# --- the three team functions --------------------------------------------------------------------------

# Each part trains into a hidden folder inside the model folder (the one folder sure to be writable and kept;
# the classifier also looks beside its folder for ImageNet weights) and replaces the model folder's part
# only once every part has trained: a failed run leaves no part behind that looks usable.
STAGING_PREFIX = ".training-"
PREVALENCE_PART = "prevalence"


def _staged(model_folder: str, part: str) -> str:
    return os.path.join(model_folder, STAGING_PREFIX + part)


def train(data_folder: str, model_folder: str, verbose: bool = False) -> None:
    """Prevalence fallback, then the lead-name detector, the segmenter and the classifier, each within the
    hardware profile's wall-clock budget. Unusable data raises UnusableDataError before any training; a
    training that fails leaves the model folder as it was (not created, or with its previous parts).
    Under torchrun (or with several processes wanted: paperecg.pipeline.ddp) every rank trains the segmenter and
    the classifier into the staging folders; rank 0 alone trains the detector and writes the model folder.
    Ranks launched by a parent train_models (PAPERECG_DDP_CHILD) leave staging and the final move to it."""
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
    check_trainable(records, len(eik_pages), prof.components)

    child = os.environ.get(DDP_CHILD_ENV) == "1"  # ranks launched by paperecg.pipeline.ddp for a parent
    if child or not is_main:
        # the parent (or rank 0) owns the staging folders and moves them into place
        _train_parts(data_folder, model_folder, prof, labelled, with_signal, eik_pages, verbose, rank, world,
                     write_prevalence=False)
        return
    created = not os.path.isdir(model_folder)
    os.makedirs(model_folder, exist_ok=True)
    _remove_staged(model_folder)  # left by an interrupted run
    try:
        _train_parts(data_folder, model_folder, prof, labelled, with_signal, eik_pages, verbose, rank, world,
                     write_prevalence=True)
    except BaseException:
        if created:
            shutil.rmtree(model_folder, ignore_errors=True)
        else:
            _remove_staged(model_folder)
        raise
    _move_into_place(model_folder)
    _log(verbose, f"Training done in {(time.time() - t0) / 60:.1f} min")


def _train_parts(data_folder: str, model_folder: str, prof, labelled: list, with_signal: list[str],
                 eik_pages: list, verbose: bool, rank: int, world: int, write_prevalence: bool) -> None:
    """Every requested part, each written into its staging folder (rank 0 writes; other ranks train)."""
    is_main = rank == 0
    prevalence = PrevalenceModel.fit([r.labels for r in labelled])
    if write_prevalence and is_main:
        prevalence.save(_staged(model_folder, PREVALENCE_PART))
    _log(verbose, "Label prevalence: " + ", ".join(f"{c} {p:.3f}" for c, p in prevalence.prevalence.items() if p))

    from paperecg.classify.train import train_classifier
    from paperecg.rectify.train import train_detector
    from paperecg.segment.train import TrainConfig, train_segmenter

    log = print if verbose else (lambda *a, **k: None)
    if "detector" in prof.components and is_main:
        _log(verbose, "Training the lead-name detector ...")
        train_detector(with_signal, _staged(model_folder, DETECTOR_DIR), prof.detector_minutes,
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
        train_segmenter(with_signal, _staged(model_folder, SEGMENTER_DIR), eik_pairs=eik_pages,
                        train_config=TrainConfig(minutes=prof.segmenter_minutes), log=log)
    if "classifier" in parallel:
        _log(verbose, "Training the classifier ...")
        train_classifier([r.path for r in labelled if r.has_signal], _staged(model_folder, CLASSIFIER_DIR),
                         minutes=prof.classifier_minutes, verbose=verbose)


def _remove_staged(model_folder: str) -> None:
    for name in os.listdir(model_folder):
        if name.startswith(STAGING_PREFIX):
            shutil.rmtree(os.path.join(model_folder, name), ignore_errors=True)


def _replace(src: str, target: str) -> None:
    if os.path.isdir(target) and not os.path.islink(target):
        shutil.rmtree(target)
    elif os.path.lexists(target):
        os.remove(target)
    os.replace(src, target)


def _move_into_place(model_folder: str) -> None:
    """Each trained part replaces the model folder's part of the same name; parts not trained this time
    (PAPERECG_COMPONENTS) stay as they were. The prevalence file goes last: load() requires it."""
    for part in (DETECTOR_DIR, SEGMENTER_DIR, CLASSIFIER_DIR):
        if os.path.isdir(_staged(model_folder, part)):
            _replace(_staged(model_folder, part), os.path.join(model_folder, part))
    staged = _staged(model_folder, PREVALENCE_PART)
    for name in os.listdir(staged):
        _replace(os.path.join(staged, name), os.path.join(model_folder, name))
    _remove_staged(model_folder)


def load(model_folder: str, verbose: bool = False) -> tuple[Digitizer, Classifier]:
    """Both models on the profile's device; a missing prevalence file means no training ever ran: fail."""
    device = select_profile().device
    set_threads()
    return Digitizer.load(model_folder, device=device, log=_warn), Classifier.load(model_folder, device=device)


def run(record: str, digitizer: Digitizer | None, classifier: Classifier | None,
        verbose: bool = False) -> tuple[np.ndarray | None, list[str] | None]:
    """(signal, labels) for one record; never raises.

    signal: float64 (num_samples, num_leads) mV in header order, NaN where not digitized, clipped so the
    organizers' save step stores it in the header's formats; None when that step cannot write a signal for
    this header at all (no leads, no readable header): their save runs outside their try/except.
    labels: the classifier's; the prevalence model's whenever it has nothing to go on or fails (the one
    fallback, on every path).
    """
    fallback_labels = _fallback_labels(classifier)
    try:
        header_text = load_header(record)
        header = parse_header(header_text)
    except Exception as e:
        _warn(f"{record}: unreadable header ({type(e).__name__}: {e}); no signal, prevalence labels")
        return None, fallback_labels
    if not save_step_accepts(header_text):
        _warn(f"{record}: the header describes no signal that can be saved (leads, rate, formats or gains "
              "missing); no signal, labels only")
        return None, _classify(record, classifier, header, [], None, fallback_labels)
    pages = _load_pages(record, header)
    signal, images = None, []
    try:
        if digitizer is not None:
            signal = digitizer.digitize(record, header, verbose, log=_warn, pages=pages)
            images = [p.rectified.image if p.rectified is not None else p.page.rgb for p in digitizer.last_pages]
    except Exception:
        _warn(f"{record}: digitization failed, leads left empty:\n{traceback.format_exc()}")
    signal = sanitize_signal(signal if signal is not None else np.nan, header.num_samples, header.num_leads,
                             header.adc_gains, header.baselines, header.formats)
    images = images or [p.rgb for p in pages]
    return signal, _classify(record, classifier, header, images, signal, fallback_labels)


def _fallback_labels(classifier: Classifier | None) -> list[str] | None:
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
            _warn(f"{record}: header names no image ('# Image:' line missing or empty)")
        return load_pages(paths, log=lambda m: _warn(f"{record}: {m}"))
    except Exception as e:
        _warn(f"{record}: page images could not be listed ({type(e).__name__}: {e})")
        return []


def _classify(record: str, classifier: Classifier | None, header: HeaderInfo, images: list[np.ndarray],
              signal: np.ndarray | None, fallback: list[str] | None) -> list[str] | None:
    if classifier is None:
        return fallback
    try:
        return list(classifier.classify(header, images, signal))
    except Exception:
        _warn(f"{record}: classification failed, prevalence fallback:\n{traceback.format_exc()}")
        return fallback
