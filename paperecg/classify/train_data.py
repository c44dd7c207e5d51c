"""The classifier's labelled training records and what its trainers share about them (train.py's branches
and fusion_train.py's fusion rows): the records, label-stratified folds, the fixed validation view of a
signal and the signal branch's scores on such views.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..log import log_if
from ..records.header import HeaderInfo
from ..records.io import image_paths, load_header_info, load_signal
from .signal_data import apply_layout_mask, network_input, side_features, to_internal

# Thresholds are tuned on out-of-fold scores made as inference on hidden headers sees records: no demographics.
HIDDEN_DEMOGRAPHICS = (None, None)


@dataclass
class TrainRecord:
    path: str
    info: HeaderInfo
    signal_mv: np.ndarray | None  # header order, header rate (for rendering)
    x: np.ndarray | None  # (12, 1000) internal signal
    images: list[str]  # image files that exist


def load_training_records(record_paths: list[str], verbose: bool = False) -> list[TrainRecord]:
    """Labelled records with a signal or an image; unlabeled ('# Labels:' absent) or unreadable records are
    skipped with a note."""
    out, skipped = [], 0
    for path in record_paths:
        try:
            info = load_header_info(path)
        except (OSError, ValueError, IndexError):
            skipped += 1
            continue
        if info.labels is None:
            skipped += 1
            continue
        try:
            sig, _ = load_signal(path)
        except Exception:  # a broken .dat is the organizers' problem, not a reason to stop training
            sig = None
        x = to_internal(sig, info.fs_hz, info.lead_names) if sig is not None else None
        if x is not None and not np.isfinite(x).any():
            sig, x = None, None
        images = [p for p in image_paths(path, info) if os.path.isfile(p)]
        if x is None and not images:
            skipped += 1
            continue
        out.append(TrainRecord(path, info, sig, x, images))
    log_if(verbose, "[classify]", f"{len(out)} labelled records, {skipped} skipped (unlabelled/unreadable)")
    return out


def make_folds(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Approximately label-stratified folds: records sorted by their rarest class, dealt round-robin."""
    rng = np.random.default_rng(seed)
    n = y.shape[0]
    freq = y.sum(axis=0) + 1e-9
    rarity = np.array([freq[row > 0].min() if row.any() else np.inf for row in y])
    order = np.lexsort((rng.random(n), rarity))
    folds = np.empty(n, dtype=int)
    offset = int(rng.integers(k))
    folds[order] = (np.arange(n) + offset) % k
    return folds


def validation_signal_view(x: np.ndarray, seed: int) -> np.ndarray:
    """The fixed view used for out-of-fold scores: the challenge's 3x4+1 windows and a little noise."""
    rng = np.random.default_rng(seed)
    v = apply_layout_mask(x, "3x4+1")
    return (v + rng.normal(0.0, 0.01, v.shape)).astype(np.float32)


@torch.no_grad()
def predict_signal(net: nn.Module, views: list[np.ndarray], demo: list[tuple], device, batch: int = 256
                   ) -> np.ndarray:
    net.eval()
    out = []
    for s in range(0, len(views), batch):
        xb = torch.from_numpy(np.stack([network_input(v) for v in views[s:s + batch]])).to(device)
        fb = torch.from_numpy(np.stack([side_features(v, *d) for v, d in
                                        zip(views[s:s + batch], demo[s:s + batch])])).to(device)
        out.append(torch.sigmoid(net(xb, fb)).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0))
