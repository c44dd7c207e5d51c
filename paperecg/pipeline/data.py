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
