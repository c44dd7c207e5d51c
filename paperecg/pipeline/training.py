"""What team_code.train_models calls: every part of the model folder trained within the hardware profile's
budgets (the training direction; `entry.py` is the running direction, `ddp.py` launches the ranks).

Under several processes the ranks run this module: `python -m torch.distributed.run --standalone
--nproc_per_node N -m paperecg.pipeline.training DATA MODEL [-v]` (`ddp.torchrun_command`).
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

from paperecg.hardware import ddp_procs_wanted, ddp_rank_world, select_profile
from paperecg.log import log_if, warn

from .data import UnusableDataError, check_trainable, require_labels, scan_training_folder
from .ddp import DDP_CHILD_ENV, DIGITIZED_ENV, launch
from .digitizer import DETECTOR_DIR, SEGMENTER_DIR
from .entry import CLASSIFIER_DIR
from .prevalence import PrevalenceModel

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
    Under torchrun (or with several processes wanted: ddp.launch) every rank trains the segmenter and
    the classifier into the staging folders; rank 0 alone trains the detector and writes the model folder.
    Ranks launched by a parent train_models (PAPERECG_DDP_CHILD) leave staging and the final move to it."""
    from paperecg.render.dataset import find_eik_pages

    t0 = time.time()
    prof = select_profile()
    rank, _local_rank, world = ddp_rank_world()
    is_main = rank == 0
    verbose = verbose and is_main
    log_if(verbose, f"Profile {prof.name} on {prof.device}: budgets detector {prof.detector_minutes:g} min, "
                    f"segmenter {prof.segmenter_minutes:g} min, classifier {prof.classifier_minutes:g} min")
    log_if(verbose, f"Scanning training data in {data_folder} ...")
    records = scan_training_folder(data_folder, log=warn)
    labelled = require_labels(records)
    with_signal = [r.path for r in records if r.has_signal]
    eik_pages = list(find_eik_pages(data_folder))
    log_if(verbose, f"{len(records)} usable records ({len(with_signal)} with signals, {len(labelled)} labelled), "
                    f"{len(eik_pages)} ECG-Image-Kit pages")
    if not with_signal and not eik_pages:
        raise UnusableDataError("no signal files to render training pages from and no ECG-Image-Kit pages "
                                "(image + JSON): the digitizer cannot be trained")
    check_trainable(records, len(eik_pages), prof.components)

    child = os.environ.get(DDP_CHILD_ENV) == "1"  # ranks launched by ddp.launch for a parent
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
    log_if(verbose, f"Training done in {(time.time() - t0) / 60:.1f} min")


def _train_parts(data_folder: str, model_folder: str, prof, labelled: list, with_signal: list[str],
                 eik_pages: list, verbose: bool, rank: int, world: int, write_prevalence: bool) -> None:
    """Every requested part, each written into its staging folder (rank 0 writes; other ranks train)."""
    is_main = rank == 0
    prevalence = PrevalenceModel.fit([r.labels for r in labelled])
    if write_prevalence and is_main:
        prevalence.save(_staged(model_folder, PREVALENCE_PART))
    log_if(verbose, "Label prevalence: " + ", ".join(f"{c} {p:.3f}" for c, p in prevalence.prevalence.items() if p))

    from paperecg.classify.train import train_classifier
    from paperecg.rectify.train import train_detector
    from paperecg.segment.train import TrainConfig, train_segmenter

    log = print if verbose else (lambda *a, **k: None)
    if "detector" in prof.components and is_main:
        log_if(verbose, "Training the lead-name detector ...")
        train_detector(with_signal, _staged(model_folder, DETECTOR_DIR), prof.detector_minutes,
                       eik_pages=eik_pages, log=log)
    procs = ddp_procs_wanted(prof)
    # the segmenter first: the classifier's fusion also learns from what the trained digitizer reads
    for part in ("segmenter", "classifier"):
        if part not in prof.components:
            continue
        digitized = None
        if part == "classifier" and is_main and world == 1:
            try:
                digitized = _digitize_training_pages(model_folder, prof, labelled, verbose)
            except Exception as e:  # the readings only refine the fusion: the classifier trains without them
                warn(f"reading training pages with the digitizer failed ({type(e).__name__}: {e}); the "
                     "classifier's fusion learns from clean signals only")
        if world == 1 and procs > 1:
            if launch(data_folder, model_folder, [part], procs, verbose, log=warn, digitized_dir=digitized):
                continue
            warn(f"multi-process training failed: training the {part} in this process instead")
        if part == "segmenter":
            log_if(verbose, "Training the segmenter ...")
            train_segmenter(with_signal, _staged(model_folder, SEGMENTER_DIR), eik_pairs=eik_pages,
                            train_config=TrainConfig(minutes=prof.segmenter_minutes), log=log)
        else:
            log_if(verbose, "Training the classifier ...")
            train_classifier([r.path for r in labelled if r.has_signal], _staged(model_folder, CLASSIFIER_DIR),
                             minutes=prof.classifier_minutes, verbose=verbose,
                             digitized_dir=digitized or os.environ.get(DIGITIZED_ENV) or None)


def _digitizer_view(model_folder: str) -> str | None:
    """A folder holding this run's lead-name detector and segmenter (the staged ones it trained, else the
    model folder's), or None without a segmenter."""
    view = _staged(model_folder, "digitizer")
    os.makedirs(view, exist_ok=True)
    for part in (DETECTOR_DIR, SEGMENTER_DIR):
        src = _staged(model_folder, part)
        src = src if os.path.isdir(src) else os.path.join(model_folder, part)
        link = os.path.join(view, part)
        if os.path.isdir(src) and not os.path.lexists(link):
            os.symlink(os.path.abspath(src), link)
    return view if os.path.isdir(os.path.join(view, SEGMENTER_DIR)) else None


def _digitize_training_pages(model_folder: str, prof, labelled: list, verbose: bool) -> str | None:
    """Read rendered pages of the training records with this run's digitizer, within the profile's
    digitize_minutes, into a cache the classifier's fusion learns from (pipeline/digitized.py); None when
    there is no segmenter to read with or no time for it."""
    if prof.digitize_minutes <= 0:
        return None
    view = _digitizer_view(model_folder)
    if view is None:
        log_if(verbose, "no segmenter: the classifier's fusion learns from clean signals only")
        return None
    from paperecg.records.ptbxl import seeded_order

    from .digitized import digitize_records
    from .digitizer import Digitizer

    out = _staged(model_folder, "digitized")
    digitizer = Digitizer.load(view, device=prof.device, log=warn)
    records = seeded_order([r.path for r in labelled if r.has_signal], 0)
    log_if(verbose, f"Reading rendered training pages with the digitizer ({prof.digitize_minutes:g} min) ...")
    done = digitize_records(records, digitizer, out, minutes=prof.digitize_minutes,
                            log=(lambda m: log_if(verbose, m)))
    log_if(verbose, f"{done} of {len(records)} training pages read for the classifier's fusion")
    return out if done else None


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


def main(argv: list[str] | None = None) -> int:
    """One rank launched by `ddp.launch` (or by torchrun directly): train, then leave the process group."""
    ap = argparse.ArgumentParser(prog="python -m paperecg.pipeline.training", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data_folder")
    ap.add_argument("model_folder")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args(argv)
    rank, _, world = ddp_rank_world()
    if world < 2:
        print("paperecg.pipeline.training: run me under torchrun (WORLD_SIZE >= 2)", file=sys.stderr)
    train(a.data_folder, a.model_folder, a.verbose and rank == 0)
    try:
        import torch

        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    except ImportError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
