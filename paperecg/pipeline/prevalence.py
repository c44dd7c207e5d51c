"""The label-prevalence model: the best constant answer, and the fallback of every classifier.

Predicting class c for every record gives it F = 2p/(1+p) > 0 (p its prevalence) where leaving it out gives
0, so the constant answer that maximises expected macro F names every class seen in training.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass

from paperecg.records.labels import CLASSES, order_labels

FILENAME = "prevalence.json"


@dataclass
class PrevalenceModel:
    prevalence: dict[str, float]  # class -> fraction of labelled training records
    num_records: int

    @classmethod
    def fit(cls, label_sets: list[list[str]]) -> "PrevalenceModel":
        labelled = [ls for ls in label_sets if ls is not None]
        if not labelled:
            raise ValueError("no labelled records: every header lacks a '# Labels:' line")
        n = len(labelled)
        known = [c for c in CLASSES]
        counts = {c: sum(c in ls for ls in labelled) for c in known}
        return cls({c: counts[c] / n for c in known}, n)

    def predict(self) -> list[str]:
        return order_labels(c for c, p in self.prevalence.items() if p > 0)

    def save(self, folder: str) -> None:
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, FILENAME), "w") as f:
            json.dump({"prevalence": self.prevalence, "num_records": self.num_records}, f, indent=1)

    @classmethod
    def load(cls, folder: str) -> "PrevalenceModel":
        with open(os.path.join(folder, FILENAME)) as f:
            d = json.load(f)
        return cls({str(k): float(v) for k, v in d["prevalence"].items()}, int(d["num_records"]))
