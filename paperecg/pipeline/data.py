"""The training folder as the trainers see it: which records are usable, with a clear error otherwise."""
from __future__ import annotations

import os
from dataclasses import dataclass

from paperecg.records.header import HeaderInfo
from paperecg.records.io import find_records, image_paths, load_header_info, signal_files_exist


class UnusableDataError(ValueError):
    """The training folder cannot produce a useful model; the message says why."""


@dataclass
class TrainingRecord:
    path: str  # record path without extension
    header: HeaderInfo
    has_signal: bool
    images: list[str]  # existing image files

    @property
    def labels(self) -> list[str] | None:
        return self.header.labels


def scan_training_folder(data_folder: str, log=print) -> list[TrainingRecord]:
    """Every record whose header parses and that has a signal or an image. Raises UnusableDataError when
    the folder is missing, holds no records, or none of them is usable."""
    if not os.path.isdir(data_folder):
        raise UnusableDataError(f"training folder not found: {data_folder}")
    names = find_records(data_folder)
    if not names:
        raise UnusableDataError(f"no records (*.hea) under {data_folder}")
    records, problems = [], 0
    for rel in names:
        path = os.path.join(data_folder, rel)
        try:
            header = load_header_info(path)
            if header.num_leads == 0:
                raise ValueError("header lists no signals")
            has_signal = signal_files_exist(path)
            images = [p for p in image_paths(path, header) if os.path.isfile(p)]
        except Exception as e:  # one broken header must not stop training on the rest
            problems += 1
            log(f"skipping {rel}: {e}")
            continue
        if not has_signal and not images:
            problems += 1
            log(f"skipping {rel}: neither a signal file nor an image")
            continue
        records.append(TrainingRecord(path, header, has_signal, images))
    if not records:
        raise UnusableDataError(f"none of the {len(names)} records under {data_folder} is usable "
                                f"({problems} skipped; see messages above)")
    return records


def require_labels(records: list[TrainingRecord]) -> list[TrainingRecord]:
    labelled = [r for r in records if r.labels is not None]
    if not labelled:
        raise UnusableDataError("no record has a '# Labels:' line: cannot train a classifier "
                                "(prepare the data with paperecg.tools.prepare_ptbxl first)")
    return labelled


# The lead-name detector holds whole records out for validation (ultralytics needs a non-empty 'val' split,
# and ECG-Image-Kit pages all go to training): one record to train on and one to validate on.
MIN_DETECTOR_RECORDS = 2


def check_trainable(records: list[TrainingRecord], num_eik_pages: int, components: tuple[str, ...]) -> None:
    """Raise UnusableDataError naming the first shortfall that would make a requested component fail
    mid-training (or train on nothing), before any training starts. The prevalence model needs one labelled
    record (require_labels); the digitizer's parts learn from records with signal files (pages are rendered
    from them) or ECG-Image-Kit pages; the classifier from labelled records with signal files."""
    labelled = [r for r in records if r.labels is not None]
    with_signal = [r for r in records if r.has_signal]
    summary = (f"{len(records)} usable record(s): {len(with_signal)} with a signal file, {len(labelled)} "
               f"labelled, {num_eik_pages} ECG-Image-Kit page(s)")
    if "detector" in components and len(with_signal) < MIN_DETECTOR_RECORDS:
        raise UnusableDataError(
            f"the lead-name detector needs at least {MIN_DETECTOR_RECORDS} records with signal files (one is held "
            f"out for validation); {summary}. Add records, or leave the detector out (PAPERECG_COMPONENTS)")
    if "segmenter" in components and not with_signal and num_eik_pages == 0:
        raise UnusableDataError(f"the segmenter needs records with signal files or ECG-Image-Kit pages; {summary}")
    if "classifier" in components and not any(r.has_signal for r in labelled):
        raise UnusableDataError(
            f"the classifier needs labelled records with signal files, and no labelled record has one; {summary}")
