"""Train the measurement + CNN fusion (classify/fusion.py) for a trained classifier folder.

Rows: for every labelled training record, views of its signal as the classifier meets them, each scored by
the CNN fold model that did not train on the record (train.py's folds, reproduced from the same labels and
seed) and measured by classify/measure.py:
  - "page": the 3x4+1 windows of the true signal with a little noise (train.py's validation view);
  - "augmented": a digitization-like augmentation of it (signal_data.augment_signal);
  - "digitized": what the digitizer read from a rendered (flat or photographed) page of the record, when a
    cache made by paperecg.tools.digitize_training has it.
Fusion weights are fitted on all rows; thresholds are tuned on out-of-fold fused scores.

    python -m paperecg.classify.fusion_train --data DIR --folds 1-8 --model model/classifier \
        [--digitized DIR] [--rows-cache FILE.npz] [--dry-run]
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from ..records.labels import CLASSES, labels_to_multi_hot
from .fusion import train_fusion
from .measure import NUM_FEATURES, measure_leads
from .model import Classifier, score_probs
from .signal_data import INTERNAL_FS_HZ, augment_signal, to_internal

VIEWS = ("page", "augmented", "digitized")


FUSION_L2 = 30.0  # chosen on the out-of-fold rows of PTB-XL folds 1-8 (model/README.md)
FUSION_BLEND = 0.7  # share of the fused score in the answer (the rest: the CNN's), see FusionModel.blend


def _measure_chunk(views: list[np.ndarray]) -> np.ndarray:
    return np.stack([measure_leads(v.astype(np.float64), INTERNAL_FS_HZ) for v in views])


def view_measures(views: list[np.ndarray], workers: int = 1) -> np.ndarray:
    """Measurements of (12, T) internal views: about 0.015 s of CPU each, so 21,000 records' views are
    spread over `workers` spawned processes (spawned: a CUDA parent must not be forked)."""
    if not views:
        return np.zeros((0, NUM_FEATURES))
    if workers <= 1 or len(views) < 200:
        return _measure_chunk(views)
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    size = max(50, len(views) // (4 * workers))
    chunks = [views[i:i + size] for i in range(0, len(views), size)]
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        return np.concatenate(list(pool.map(_measure_chunk, chunks)))


def rows_from_records(records: list, y_rec: np.ndarray, folds_rec: np.ndarray, nets: list, device,
                      digitized_dir: str | None = None, seed: int = 0, workers: int = 1,
                      verbose: bool = True, digitized_names: set[str] | None = None) -> dict:
    """CNN out-of-fold probabilities (net f scores the records of fold f), measurements, labels, record
    folds and view kinds (0 page, 1 augmented, 2 digitized) for every view of every record with a signal.
    `digitized_names`: the records (base names) whose cached digitized page is used (default: all)."""
    from .train_data import HIDDEN_DEMOGRAPHICS, predict_signal, validation_signal_view

    views, rec_of, kind = [], [], []
    for i, r in enumerate(records):
        if r.x is None:
            continue
        views.append(validation_signal_view(r.x, seed + i)), rec_of.append(i), kind.append(0)
        rng = np.random.default_rng([seed, 99, i])
        views.append(augment_signal(r.x, rng).astype(np.float32)), rec_of.append(i), kind.append(1)
        name = os.path.basename(r.path)
        wanted = digitized_dir and (digitized_names is None or name in digitized_names)
        cached = os.path.join(digitized_dir, name + ".npz") if wanted else None
        if cached and os.path.isfile(cached):
            d = np.load(cached)
            x = to_internal(d["signal"], float(d["fs_hz"]), [str(n) for n in d["lead_names"]])
            if np.isfinite(x).any():
                views.append(x), rec_of.append(i), kind.append(2)
    rec_of, kind = np.array(rec_of, dtype=int), np.array(kind, dtype=int)
    t0 = time.time()
    p_cnn = np.zeros((len(views), len(CLASSES)))
    for f, net in enumerate(nets):
        rows = np.flatnonzero(folds_rec[rec_of] == f)
        if rows.size:
            p_cnn[rows] = predict_signal(net, [views[j] for j in rows], [HIDDEN_DEMOGRAPHICS] * rows.size, device)
    t1 = time.time()
    meas = view_measures(views, workers)
    if verbose:
        print(f"[fusion] {len(views)} views of {len(records)} records ({np.bincount(kind, minlength=3)} "
              f"page/augmented/digitized): CNN {t1 - t0:.0f}s, measurements {time.time() - t1:.0f}s", flush=True)
    return dict(p_cnn=p_cnn, meas=meas, y=y_rec[rec_of], folds=folds_rec[rec_of], kind=kind, record=rec_of)


def build_rows(record_paths: list[str], clf: Classifier, digitized_dir: str | None, seed: int = 0,
               verbose: bool = True, workers: int = 1, digitized_names: set[str] | None = None) -> dict:
    """rows_from_records for a trained classifier folder, its folds reproduced as train.py drew them."""
    from .train_data import load_training_records, make_folds

    records = load_training_records(record_paths, verbose)
    y_rec = labels_to_multi_hot([r.info.labels for r in records], CLASSES)
    folds_rec = make_folds(y_rec, len(clf.signal_nets), seed)
    return rows_from_records(records, y_rec, folds_rec, clf.signal_nets, clf.device, digitized_dir, seed,
                             workers, verbose, digitized_names)


def fusion_report(rows: dict, oof: np.ndarray, model, thresholds_cnn, trained) -> dict:
    """Out-of-fold macro F (and per class) of the CNN alone and of the fusion, per view kind."""
    report = {}
    for v, name in enumerate(VIEWS):
        sel = rows["kind"] == v
        if not sel.any():
            continue
        f_cnn, per_cnn = score_probs(rows["p_cnn"][sel], rows["y"][sel], thresholds_cnn, trained)
        f_fus, per_fus = score_probs(oof[sel], rows["y"][sel], model.thresholds_array(), trained)
        report[name] = {"rows": int(sel.sum()), "oof_macro_f_cnn": f_cnn, "oof_macro_f_fusion": f_fus,
                        "per_class_cnn": per_cnn, "per_class_fusion": per_fus}
    return report


def fusion_for_training(records: list, y_rec: np.ndarray, folds_rec: np.ndarray, nets: list, device,
                        thresholds_cnn, trained: np.ndarray, digitized_dir: str | None = None, seed: int = 0,
                        workers: int = 1, verbose: bool = True):
    """The fusion train.py ships: rows from the k-fold CNN ensemble, fitted and tuned out of fold."""
    rows = rows_from_records(records, y_rec, folds_rec, nets, device, digitized_dir, seed, workers, verbose)
    model, oof = train_fusion(rows["p_cnn"], rows["meas"], rows["y"], rows["folds"], trained, list(CLASSES),
                              l2=FUSION_L2, blend=FUSION_BLEND)
    model.notes = {"rows": int(len(rows["kind"])), "l2": FUSION_L2, "blend": FUSION_BLEND,
                   "oof": fusion_report(rows, oof, model, thresholds_cnn, trained)}
    return model


def main(argv: list[str] | None = None) -> None:
    from ..records.ptbxl import seeded_order, select_records

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, nargs="+")
    ap.add_argument("--folds", default=None)
    ap.add_argument("--model", required=True, help="trained classifier folder (fusion.json is written there)")
    ap.add_argument("--digitized", default=None)
    ap.add_argument("--rows-cache", default=None, help="npz to reuse / store the rows")
    ap.add_argument("--digitized-first", type=int, default=None,
                    help="use the cached pages of only the first N records in digitize_training's order "
                         "(its seeded order of the same --data/--folds, seed 0)")
    ap.add_argument("--l2", type=float, default=FUSION_L2)
    ap.add_argument("--tune-on", default="all", choices=["all", "page", "digitized", "page+digitized"])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--blend", type=float, default=FUSION_BLEND)
    ap.add_argument("--no-rhythm-rules", action="store_true", help="without fusion.apply_rhythm_rules")
    ap.add_argument("--dry-run", action="store_true", help="report, do not write fusion.json")
    a = ap.parse_args(argv)
    clf = Classifier.load(a.model, device="cpu")
    if a.rows_cache and os.path.isfile(a.rows_cache):
        rows = dict(np.load(a.rows_cache))
    else:
        paths: list[str] = []
        for d in a.data:
            paths += select_records(d, a.folds)
        names = None
        if a.digitized_first is not None:
            names = {os.path.basename(p) for p in seeded_order(paths, 0)[: a.digitized_first]}
        rows = build_rows(paths, clf, a.digitized, workers=a.workers, digitized_names=names)
        if a.rows_cache:
            np.savez_compressed(a.rows_cache, **rows)
    trained = np.asarray(clf.cfg.trained_classes, bool)
    tune = {"all": np.ones(len(rows["kind"]), bool), "page": rows["kind"] == 0, "digitized": rows["kind"] == 2,
            "page+digitized": rows["kind"] != 1}[a.tune_on]
    model, oof = train_fusion(rows["p_cnn"], rows["meas"], rows["y"], rows["folds"], trained, list(CLASSES),
                              tune_rows=tune, l2=a.l2, blend=a.blend, rhythm_rules=not a.no_rhythm_rules)
    report = fusion_report(rows, oof, model, clf.cfg.thresholds_signal, trained)
    model.notes = {"rows": int(len(rows["kind"])), "views": np.bincount(rows["kind"], minlength=3).tolist(),
                   "digitized_first": a.digitized_first, "l2": a.l2, "blend": a.blend, "tune_on": a.tune_on,
                   "rhythm_rules": not a.no_rhythm_rules,
                   "oof": report}
    if not a.dry_run:
        model.save(a.model)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
