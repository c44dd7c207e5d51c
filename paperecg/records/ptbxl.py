"""PTB-XL metadata: challenge labels from scp_codes, demographics, and stratified-fold selection."""
from __future__ import annotations

import ast
import csv
import os
from dataclasses import dataclass

from .io import find_records
from .labels import order_labels

DATABASE_CSV = "ptbxl_database.csv"
STATEMENTS_CSV = "scp_statements.csv"

# Rhythm/form statements that map directly to a challenge class.
_DIRECT = {"PAC": "PAC", "PVC": "PVC", "AFIB": "AFIB/AFL", "AFLT": "AFIB/AFL", "STACH": "TACHY",
           "SVTAC": "TACHY", "PSVT": "TACHY", "SBRAD": "BRADY"}
_SUPERCLASS_TO_LABEL = {"NORM": "NORM", "STTC": "STTC", "CD": "CD", "HYP": "HYP", "MI": "Old MI"}


@dataclass
class PtbxlEntry:
    ecg_id: int
    age: float | None
    sex: str | None  # 'Male' / 'Female'
    height: float | None
    weight: float | None
    scp_codes: dict[str, float]
    strat_fold: int | None
    filename_lr: str
    filename_hr: str


def _float_or_none(value: str) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if v == v else None


def read_database(csv_path: str) -> dict[str, PtbxlEntry]:
    """Rows of ptbxl_database.csv keyed by record base name ('00001_lr' and '00001_hr' both map)."""
    entries: dict[str, PtbxlEntry] = {}
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            sex_code = _float_or_none(row.get("sex", ""))
            entry = PtbxlEntry(
                ecg_id=int(float(row["ecg_id"])),
                age=_float_or_none(row.get("age", "")),
                sex=None if sex_code is None else ("Male" if sex_code == 0 else "Female"),
                height=_float_or_none(row.get("height", "")),
                weight=_float_or_none(row.get("weight", "")),
                scp_codes=ast.literal_eval(row["scp_codes"]) if row.get("scp_codes") else {},
                strat_fold=int(float(row["strat_fold"])) if row.get("strat_fold") else None,
                filename_lr=row.get("filename_lr", ""),
                filename_hr=row.get("filename_hr", ""),
            )
            for fn in (entry.filename_lr, entry.filename_hr):
                if fn:
                    entries[os.path.basename(fn)] = entry
    return entries


def read_diagnostic_classes(csv_path: str) -> dict[str, str]:
    """scp code -> diagnostic superclass, for statements with diagnostic == 1."""
    classes = {}
    with open(csv_path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        i_diag, i_class = header.index("diagnostic"), header.index("diagnostic_class")
        for row in reader:
            if _float_or_none(row[i_diag]) == 1.0 and row[i_class]:
                classes[row[0]] = row[i_class]
    return classes


def challenge_labels(scp_codes: dict[str, float], diagnostic_classes: dict[str, str],
                     acute_mi: bool = False) -> list[str]:
    """Challenge classes for one record: superclasses of its diagnostic statements (any likelihood), the
    direct rhythm/form classes, and MI split into Acute/Old by a PTB-XL+ acute-MI flag."""
    labels = set()
    for code in scp_codes:
        superclass = diagnostic_classes.get(code)
        if superclass in _SUPERCLASS_TO_LABEL:
            labels.add(_SUPERCLASS_TO_LABEL[superclass])
        if code in _DIRECT:
            labels.add(_DIRECT[code])
    if acute_mi and "Old MI" in labels:
        labels.discard("Old MI")
        labels.add("Acute MI")
    return order_labels(labels)


def find_database(folder: str) -> str | None:
    """ptbxl_database.csv in `folder` or one of its parents (up to three levels)."""
    folder = os.path.abspath(folder)
    for _ in range(4):
        candidate = os.path.join(folder, DATABASE_CSV)
        if os.path.isfile(candidate):
            return candidate
        folder = os.path.dirname(folder)
    return None


def parse_folds(spec: str | None) -> set[int] | None:
    """'1-8' / '1,2,5' / '9' -> set of folds; None or '' -> None (all)."""
    if not spec:
        return None
    folds: set[int] = set()
    for part in spec.split(","):
        if "-" in part:
            a, b = part.split("-")
            folds.update(range(int(a), int(b) + 1))
        elif part.strip():
            folds.add(int(part))
    return folds


def select_records(data_dir: str, folds: set[int] | str | None = None) -> list[str]:
    """Full record paths under data_dir, restricted to PTB-XL stratified folds when asked.

    Fold selection needs ptbxl_database.csv in data_dir (or a parent); records it does not list are kept
    only when no fold filter is given.
    """
    if isinstance(folds, str):
        folds = parse_folds(folds)
    records = [os.path.join(data_dir, r) for r in find_records(data_dir)]
    if not folds:
        return records
    db_path = find_database(data_dir)
    if db_path is None:
        raise ValueError(f"fold selection asked for, but no {DATABASE_CSV} found in or above {data_dir}")
    db = read_database(db_path)
    return [r for r in records if (e := db.get(os.path.basename(r))) is not None and e.strat_fold in folds]


def seeded_order(records: list[str], seed: int) -> list[str]:
    """`records` in a seeded random order: a job that walks them and stops early (the digitizer's cache of
    training pages) has covered a random subset, and a reader can name that subset by its length."""
    import numpy as np

    return [records[i] for i in np.random.default_rng(seed).permutation(len(records))]
