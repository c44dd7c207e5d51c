"""Training pages without an image folder: a torch Dataset that renders WFDB records on the fly, and a
finder for ECG-Image-Kit pages (image + JSON) in a folder.

Items are `RenderedPage` objects; use `collate_pages` (a plain list) as the DataLoader's collate_fn and
turn pages into tensors in the model's own package (the renderer never imports training code).
"""
from __future__ import annotations

import os
from functools import lru_cache

import numpy as np
from torch.utils.data import Dataset

from ..layouts import LAYOUTS
from ..records.images import IMAGE_EXTENSIONS
from ..records.io import find_records, load_header_info, load_signal
from .augment import augment_page
from .labels import RenderedPage
from .page import random_style, render_page



def find_record_paths(folder: str) -> list[str]:
    """Every record with a signal under `folder` (paths without extension)."""
    out = []
    for rel in find_records(folder):
        rec = os.path.join(folder, rel)
        if os.path.isfile(rec + ".dat") or os.path.isfile(rec + ".mat"):
            out.append(rec)
    return out


def find_eik_pages(folder: str) -> list[tuple[str, str]]:
    """(image_path, json_path) for every JSON under `folder` that has an image of the same stem beside it."""
    pairs = []
    for root, _dirs, files in os.walk(folder):
        names = set(files)
        for name in sorted(files):
            if not name.endswith(".json"):
                continue
            stem = name[:-5]
            for ext in IMAGE_EXTENSIONS:
                for cand in (stem + ext, stem + ext.upper()):
                    if cand in names:
                        pairs.append((os.path.join(root, cand), os.path.join(root, name)))
                        break
                else:
                    continue
                break
    return sorted(pairs)


@lru_cache(maxsize=256)
def load_record(record: str) -> tuple[np.ndarray, float, tuple[str, ...]]:
    """(signal (num_samples, num_leads) mV, fs_hz, lead names) of a record, cached: the renderer draws many
    pages of each training record."""
    signal, _ = load_signal(record)
    if signal is None:
        raise ValueError(f"record has no signal file: {record}")
    info = load_header_info(record)
    return signal, info.fs_hz, tuple(info.lead_names)


def page_seed(seed: int, epoch: int, index: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([int(seed), int(epoch), int(index)])


def render_training_page(record: str, rng: np.random.Generator, augment: bool = True, layouts=None,
                         dpi: float | None = None, strength: float = 1.0, rotate_max_deg: float = 10.0,
                         photo_prob: float = 0.0) -> RenderedPage:
    """One random page of `record`: random style (layout drawn from `layouts`), optionally augmented; with
    `photo_prob` > 0, that share of augmented pages is photographed instead (render/photo.py: perspective,
    curl, folds, table, light; labels move exactly with the paper)."""
    signal, fs_hz, names = load_record(record)
    layout = None
    if layouts:
        layout = layouts[int(rng.integers(len(layouts)))]
    style = random_style(rng, layout=layout, dpi=dpi)
    page = render_page(signal, fs_hz, list(names), style)
    page.meta["record"] = os.path.basename(record)
    if augment and photo_prob > 0 and rng.random() < photo_prob:  # (no draw at all when off: seeds keep)
        from .photo import photograph_page

        page = photograph_page(page, rng, strength=strength).page
    elif augment:
        page = augment_page(page, rng, strength=strength, rotate_max_deg=rotate_max_deg)
    return page


class RenderedPageDataset(Dataset):
    """Pages rendered on the fly from WFDB records; item i is deterministic for (seed, epoch, i).

    `record_paths`: record paths without extension (or one folder, searched recursively). Call
    `set_epoch(e)` to get new pages for the same indices in a new epoch.
    """

    def __init__(self, record_paths, pages_per_record: int = 1, augment: bool = True, seed: int = 0,
                 layouts: list[str] | None = None, dpi: float | None = None, strength: float = 1.0,
                 rotate_max_deg: float = 10.0, photo_prob: float = 0.0):
        if isinstance(record_paths, (str, os.PathLike)):
            record_paths = find_record_paths(str(record_paths))
        self.records = [str(r)[:-4] if str(r).endswith(".hea") else str(r) for r in record_paths]
        if not self.records:
            raise ValueError("RenderedPageDataset: no records given")
        for name in layouts or []:
            if name not in LAYOUTS:
                raise ValueError(f"unknown layout {name!r}; choose from {sorted(LAYOUTS)}")
        self.pages_per_record = int(pages_per_record)
        self.augment = bool(augment)
        self.seed = int(seed)
        self.layouts = list(layouts) if layouts else None
        self.dpi = dpi
        self.strength = float(strength)
        self.rotate_max_deg = float(rotate_max_deg)
        self.photo_prob = float(photo_prob)  # share of pages photographed (render/photo.py); 0 = off
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records) * self.pages_per_record

    def __getitem__(self, index: int) -> RenderedPage:
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        rng = np.random.default_rng(page_seed(self.seed, self.epoch, index))
        return render_training_page(self.records[index // self.pages_per_record], rng, self.augment, self.layouts,
                                    self.dpi, self.strength, self.rotate_max_deg, self.photo_prob)


def collate_pages(pages: list[RenderedPage]) -> list[RenderedPage]:
    return list(pages)
