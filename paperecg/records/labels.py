"""The challenge's 11 diagnostic classes and label-set helpers."""
from __future__ import annotations

import numpy as np

# Exact strings, in the order labels are written ('# Labels: A, B').
CLASSES: tuple[str, ...] = (
    "NORM", "Acute MI", "Old MI", "STTC", "CD", "HYP", "PAC", "PVC", "AFIB/AFL", "TACHY", "BRADY",
)
_CLASS_INDEX = {c: i for i, c in enumerate(CLASSES)}


def order_labels(labels) -> list[str]:
    """Deduplicate and sort into the challenge's class order; unknown strings go last, alphabetically."""
    unique = {str(l).strip() for l in labels if str(l).strip()}
    return sorted(unique, key=lambda c: (_CLASS_INDEX.get(c, len(CLASSES)), c))


def format_labels(labels) -> str:
    return ", ".join(order_labels(labels))


def labels_to_multi_hot(label_sets, classes=CLASSES) -> np.ndarray:
    """(num_records, num_classes) float32 0/1 matrix."""
    index = {c: i for i, c in enumerate(classes)}
    y = np.zeros((len(label_sets), len(classes)), dtype=np.float32)
    for r, labels in enumerate(label_sets):
        for l in labels or []:
            if l in index:
                y[r, index[l]] = 1.0
    return y


def multi_hot_to_labels(row, classes=CLASSES) -> list[str]:
    return [c for c, v in zip(classes, row) if v]
