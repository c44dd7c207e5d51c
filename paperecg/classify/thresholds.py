"""Challenge macro F, per-class threshold tuning and class-imbalance weights (pure numpy)."""
from __future__ import annotations

import numpy as np


def f_measure(tp: float, fp: float, fn: float) -> float:
    """F1 = 2TP / (2TP + FP + FN); NaN when the class never occurs and is never predicted."""
    denom = 2.0 * tp + fp + fn
    return float(2.0 * tp / denom) if denom > 0 else float("nan")


def macro_f(pred: np.ndarray, truth: np.ndarray) -> tuple[float, np.ndarray]:
    """The organizers' macro F over a (records, classes) 0/1 matrix pair.

    Only records with at least one true label count, and only classes present in the truth (the organizers
    use the union of reference labels); per-class F of the other classes is NaN.
    """
    pred = np.asarray(pred, dtype=bool)
    truth = np.asarray(truth, dtype=bool)
    keep = truth.any(axis=1)
    pred, truth = pred[keep], truth[keep]
    per_class = np.full(truth.shape[1], np.nan)
    for c in range(truth.shape[1]):
        if truth[:, c].any():
            tp = float(np.sum(pred[:, c] & truth[:, c]))
            fp = float(np.sum(pred[:, c] & ~truth[:, c]))
            fn = float(np.sum(~pred[:, c] & truth[:, c]))
            per_class[c] = f_measure(tp, fp, fn)
    present = ~np.isnan(per_class)
    return (float(np.mean(per_class[present])) if present.any() else float("nan")), per_class


def best_threshold(prob: np.ndarray, truth: np.ndarray, default: float = 0.5,
                   lo: float = 1e-4, hi: float = 1.0 - 1e-4) -> tuple[float, float]:
    """Threshold on `prob` (predict prob >= t) maximising F for one class; (threshold, F).

    Candidates are midpoints between consecutive distinct scores, so the chosen cut leaves a margin on both
    sides; among equal F the cut nearest 0.5 wins (more stable on new data). No positive -> (default, NaN).
    """
    prob = np.asarray(prob, dtype=np.float64)
    truth = np.asarray(truth, dtype=bool)
    if truth.sum() == 0 or prob.size == 0:
        return default, float("nan")
    values = np.unique(prob)
    cuts = np.concatenate([[values[0] - 1e-6], 0.5 * (values[1:] + values[:-1]), [values[-1] + 1e-6]])
    cuts = np.clip(cuts, lo, hi)
    best_t, best_f = default, -1.0
    for t in np.unique(cuts):
        p = prob >= t
        f = f_measure(np.sum(p & truth), np.sum(p & ~truth), np.sum(~p & truth))
        if f > best_f + 1e-12 or (abs(f - best_f) <= 1e-12 and abs(t - 0.5) < abs(best_t - 0.5)):
            best_t, best_f = float(t), f
    return best_t, best_f


def tune_thresholds(probs: np.ndarray, truth: np.ndarray, trained: np.ndarray | None = None,
                    default: float = 0.5, min_positives: int = 1) -> np.ndarray:
    """One threshold per class. Classes never seen in training get +inf (never predicted); classes with
    fewer than `min_positives` positives in this set keep `default`."""
    probs = np.asarray(probs, dtype=np.float64)
    truth = np.asarray(truth, dtype=bool)
    num_classes = truth.shape[1]
    trained = np.ones(num_classes, dtype=bool) if trained is None else np.asarray(trained, dtype=bool)
    out = np.full(num_classes, default, dtype=np.float64)
    for c in range(num_classes):
        if not trained[c]:
            out[c] = np.inf
        elif truth[:, c].sum() >= min_positives:
            out[c], _ = best_threshold(probs[:, c], truth[:, c], default)
    return out


def apply_thresholds(probs: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    return np.asarray(probs) >= np.asarray(thresholds)[None, :]


def positive_weights(truth: np.ndarray, power: float = 0.5, max_weight: float = 30.0) -> np.ndarray:
    """BCE pos_weight per class: (negatives / positives) ** power, clipped to [1, max_weight].

    power=1 balances positives and negatives fully; 0.5 (default) is a softer correction that keeps rare
    classes from dominating. A class without positives gets 1 (it is masked out by the trainer anyway).
    """
    truth = np.asarray(truth, dtype=np.float64)
    pos = truth.sum(axis=0)
    neg = truth.shape[0] - pos
    ratio = np.where(pos > 0, neg / np.maximum(pos, 1.0), 1.0)
    return np.clip(ratio ** power, 1.0, max_weight).astype(np.float32)
