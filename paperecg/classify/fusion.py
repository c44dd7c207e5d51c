"""Fusion of the clinical measurements (classify/measure.py) with the signal CNN's class scores.

One L2-regularised logistic regression per class on [logit of every CNN class score, the measurements
(clipped to their training range, standardised, NaN -> 0) and one missing-value indicator per measurement
that was ever missing in training]. Small enough to learn from a few hundred records, and linear in features
whose meaning is clinical (rate, RR irregularity, QRS width, voltage ...), so it extrapolates sanely.

Saved as `fusion.json` in the classifier folder (plain numbers, no pickle); a folder without it keeps the
CNN-only decisions.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields

import numpy as np

from .measure import FEATURE_NAMES
from .thresholds import tune_thresholds

FUSION_FILE = "fusion.json"
LOGIT_CLIP = 8.0

# PTB-XL's TACHY and BRADY are sinus tachycardia (STACH) and sinus bradycardia (SBRAD): statements about the
# rate of a sinus rhythm. So, when the rate was measured, TACHY needs >= 100 bpm and BRADY <= 52 bpm (the
# ACC/AHA/HRS 2018 bradycardia cut-off of 50 bpm plus the measurement's error: PTB-XL labels SBRAD on 9 of
# the 15 training records measured at 45-50 bpm and on 1 of the 32 at 50-55), and neither goes with a
# decided AFIB/AFL (no PTB-XL record has both); a fast flutter or a slow fibrillation otherwise reads as a
# sinus rate class. And PAC is not called beside a decided PVC: the same early beats would be counted as
# both (PTB-XL has both on 4 of its 22 PAC training records; out of fold the rule removes more PAC false
# positives than true ones, model/README.md).
TACHY_MIN_BPM = 100.0
BRADY_MAX_BPM = 52.0


# Hinges at the textbook cut-offs, and irregularity without repeating P waves: a linear model cannot bend
# a single feature or multiply two.
DERIVED_NAMES = ("hr_over_100", "hr_under_60", "qrs_over_110", "irregular_without_p", "early_wide")


def derived(meas: np.ndarray) -> np.ndarray:
    """(n, len(DERIVED_NAMES)) nonlinear combinations of measurement columns (NaN propagates)."""
    col = {n: meas[:, k] for k, n in enumerate(FEATURE_NAMES)}
    return np.stack([
        np.maximum(col["hr_bpm"] - 100.0, 0.0),
        np.maximum(60.0 - col["hr_bpm"], 0.0),
        np.maximum(col["qrs_ms"] - 110.0, 0.0),
        col["rr_succ_diff_rel"] * (1.0 - np.clip(col["p_corr"], 0.0, 1.0)),
        col["premature_index"] * col["qrs_shape_var"],
    ], axis=1)


def with_derived(meas: np.ndarray) -> np.ndarray:
    meas = np.atleast_2d(np.asarray(meas, dtype=np.float64))
    return np.concatenate([meas, derived(meas)], axis=1)


def apply_rhythm_rules(probs: np.ndarray, hr_bpm: np.ndarray, thresholds: np.ndarray, classes: list[str]
                       ) -> np.ndarray:
    """`probs` (n, classes) with TACHY / BRADY set to 0 where the measured rate (NaN: not measured, no rule)
    contradicts them or where AFIB/AFL passes its threshold, and PAC set to 0 where PVC passes its own."""
    probs = np.array(probs, dtype=np.float64, ndmin=2)
    hr_bpm = np.asarray(hr_bpm, dtype=np.float64).reshape(-1)
    thresholds = np.asarray(thresholds, dtype=np.float64)
    measured = np.isfinite(hr_bpm)
    rate = np.where(measured, hr_bpm, 0.0)

    def decided(name: str) -> np.ndarray:
        k = classes.index(name) if name in classes else None
        return probs[:, k] >= thresholds[k] if k is not None else np.zeros(len(probs), bool)

    af, pvc = decided("AFIB/AFL"), decided("PVC")
    if "TACHY" in classes:
        probs[(measured & (rate < TACHY_MIN_BPM)) | af, classes.index("TACHY")] = 0.0
    if "BRADY" in classes:
        probs[(measured & (rate > BRADY_MAX_BPM)) | af, classes.index("BRADY")] = 0.0
    if "PAC" in classes:
        probs[pvc, classes.index("PAC")] = 0.0
    return probs


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-4, 1 - 1e-4)
    return np.clip(np.log(p / (1 - p)), -LOGIT_CLIP, LOGIT_CLIP)


@dataclass
class FusionModel:
    classes: list[str]
    feature_names: list[str] = field(default_factory=lambda: list(FEATURE_NAMES + DERIVED_NAMES))
    lo: list[float] = field(default_factory=list)  # per measurement: training 1st / 99th percentile (clip)
    hi: list[float] = field(default_factory=list)
    mean: list[float] = field(default_factory=list)  # after clipping
    std: list[float] = field(default_factory=list)
    indicators: list[bool] = field(default_factory=list)  # which measurements get a missing-value column
    weights: list[list[float]] = field(default_factory=list)  # (classes, inputs)
    bias: list[float] = field(default_factory=list)
    thresholds: list[float | None] = field(default_factory=list)  # None: class never predicted
    # per class: True = the fused score, False = the CNN's own score (where fusion did not help out of fold)
    use_fusion: list[bool] = field(default_factory=list)
    # the answer is blend * fused + (1 - blend) * CNN: a half-and-half average is steadier on digitized
    # signals than either alone
    blend: float = 1.0
    rhythm_rules: bool = False  # apply_rhythm_rules to the answer (False in fusions fitted before the rules)
    l2: float = 1.0
    notes: dict = field(default_factory=dict)

    # --- inputs ------------------------------------------------------------------------------------------
    def inputs(self, p_cnn: np.ndarray, meas: np.ndarray) -> np.ndarray:
        """(n, inputs) design matrix from CNN probabilities (n, classes) and measurements (n, features)."""
        p_cnn = np.atleast_2d(np.asarray(p_cnn, dtype=np.float64))
        meas = with_derived(meas)
        missing = ~np.isfinite(meas)
        z = (np.clip(meas, self.lo, self.hi) - np.asarray(self.mean)) / np.asarray(self.std)
        z[missing] = 0.0
        return np.concatenate([logit(p_cnn), z, missing[:, np.asarray(self.indicators, bool)].astype(np.float64)],
                              axis=1)

    def probs(self, p_cnn: np.ndarray, meas: np.ndarray) -> np.ndarray:
        x = self.inputs(p_cnn, meas)
        fused = 1.0 / (1.0 + np.exp(-(x @ np.asarray(self.weights).T + np.asarray(self.bias))))
        fused = self.blend * fused + (1.0 - self.blend) * np.atleast_2d(p_cnn)
        if self.use_fusion:
            keep = ~np.asarray(self.use_fusion, bool)
            fused[:, keep] = np.atleast_2d(p_cnn)[:, keep]
        if self.rhythm_rules:
            fused = apply_rhythm_rules(fused, np.atleast_2d(meas)[:, FEATURE_NAMES.index("hr_bpm")],
                                     self.thresholds_array(), self.classes)
        return fused

    def thresholds_array(self) -> np.ndarray:
        return np.array([np.inf if t is None else float(t) for t in self.thresholds])

    # --- persistence -------------------------------------------------------------------------------------
    def save(self, folder: str) -> None:
        with open(os.path.join(folder, FUSION_FILE), "w") as f:
            json.dump(asdict(self), f, indent=1)

    @classmethod
    def load(cls, folder: str) -> "FusionModel | None":
        path = os.path.join(folder, FUSION_FILE)
        if not os.path.isfile(path):
            return None
        with open(path) as f:
            d = json.load(f)
        known = {f.name for f in fields(cls)}
        model = cls(**{k: v for k, v in d.items() if k in known})  # a field since dropped is ignored
        if list(model.feature_names) != list(FEATURE_NAMES + DERIVED_NAMES):  # measurements changed since it was trained
            return None
        return model


def standardisation(meas: np.ndarray) -> dict:
    """Clip range, mean, std and indicator flags of a training measurement matrix."""
    meas = np.asarray(meas, dtype=np.float64)
    lo, hi, mean, std = [], [], [], []
    for col in meas.T:
        ok = col[np.isfinite(col)]
        if ok.size == 0:
            lo.append(0.0), hi.append(0.0), mean.append(0.0), std.append(1.0)
            continue
        a, b = np.percentile(ok, [1, 99])
        c = np.clip(ok, a, b)
        lo.append(float(a)), hi.append(float(b)), mean.append(float(c.mean())), std.append(float(max(c.std(), 1e-6)))
    indicators = [bool((~np.isfinite(col)).any()) for col in meas.T]
    return dict(lo=lo, hi=hi, mean=mean, std=std, indicators=indicators)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, pos_weight: float = 1.0) -> tuple[np.ndarray, float]:
    """Weights and bias minimising weighted log-loss + l2/2 |w|^2 (bias unpenalised), by L-BFGS."""
    from scipy.optimize import minimize

    n, d = x.shape
    sw = np.where(y > 0, pos_weight, 1.0)
    sw = sw / sw.mean()

    def loss(theta: np.ndarray):
        w, b = theta[:d], theta[d]
        z = x @ w + b
        # log(1 + e^z) - y z, stable
        ll = np.logaddexp(0.0, z) - y * z
        p = 1.0 / (1.0 + np.exp(-z))
        g = sw * (p - y)
        f = float(np.sum(sw * ll) / n + 0.5 * l2 * w @ w / n)
        grad = np.concatenate([x.T @ g / n + l2 * w / n, [g.sum() / n]])
        return f, grad

    res = minimize(loss, np.zeros(d + 1), jac=True, method="L-BFGS-B", options={"maxiter": 500})
    return res.x[:d], float(res.x[d])


def fit_fusion(p_cnn: np.ndarray, meas: np.ndarray, y: np.ndarray, trained: np.ndarray, classes: list[str],
               l2: float = 1.0, pos_power: float = 0.5) -> FusionModel:
    """A FusionModel fitted on all rows (thresholds left at 0.5: tune them out of fold, see train_fusion)."""
    model = FusionModel(classes=list(classes), l2=l2, **standardisation(with_derived(meas)))
    x = model.inputs(p_cnn, meas)
    weights, bias = [], []
    for c in range(y.shape[1]):
        yc = y[:, c].astype(np.float64)
        if not trained[c] or yc.sum() == 0:
            weights.append([0.0] * x.shape[1]), bias.append(-20.0)
            continue
        pw = ((len(yc) - yc.sum()) / yc.sum()) ** pos_power
        w, b = fit_logistic(x, yc, l2, pw)
        weights.append(w.tolist()), bias.append(b)
    model.weights, model.bias = weights, bias
    model.thresholds = [0.5 if t else None for t in trained]
    return model


def train_fusion(p_cnn: np.ndarray, meas: np.ndarray, y: np.ndarray, folds: np.ndarray, trained: np.ndarray,
                 classes: list[str], tune_rows: np.ndarray | None = None, l2: float = 1.0,
                 min_gain: float = 0.0, blend: float = 1.0, rhythm_rules: bool = True
                 ) -> tuple[FusionModel, np.ndarray]:
    """Fusion fitted on every row, thresholds tuned on out-of-fold fused scores (rows of fold f scored by a
    model fitted without fold f; `folds` groups the views of one record). `tune_rows`: the rows the
    thresholds are tuned on (default all). With `rhythm_rules`, the rules are applied to the out-of-fold
    scores with the tuned AFIB/AFL threshold and the thresholds tuned again on what they leave (each class's
    threshold is tuned on its own, so AFIB/AFL's does not move). Returns (model, out-of-fold probabilities)."""
    y = np.asarray(y, dtype=bool)
    oof = np.full(y.shape, np.nan)
    for f in np.unique(folds):
        tr, va = folds != f, folds == f
        m = fit_fusion(p_cnn[tr], meas[tr], y[tr], trained, classes, l2)
        m.blend = blend
        oof[va] = m.probs(p_cnn[va], meas[va])
    rows = np.ones(len(y), bool) if tune_rows is None else np.asarray(tune_rows, bool)
    use = choose_per_class(oof[rows], p_cnn[rows], y[rows], trained, folds[rows], min_gain)
    oof[:, ~use] = p_cnn[:, ~use]
    thr = tune_thresholds(oof[rows], y[rows], trained)
    if rhythm_rules:
        oof = apply_rhythm_rules(oof, np.asarray(meas)[:, FEATURE_NAMES.index("hr_bpm")], thr, list(classes))
        thr = tune_thresholds(oof[rows], y[rows], trained)
    model = fit_fusion(p_cnn, meas, y, trained, classes, l2)
    model.thresholds = [float(t) if np.isfinite(t) else None for t in thr]
    model.use_fusion = [bool(u) for u in use]
    model.blend = float(blend)
    model.rhythm_rules = bool(rhythm_rules)
    return model, oof


def choose_per_class(p_fused: np.ndarray, p_cnn: np.ndarray, y: np.ndarray, trained: np.ndarray,
                     folds: np.ndarray, min_gain: float) -> np.ndarray:
    """Per class, whether the fused score beats the CNN's by `min_gain` in F, each judged cross-fitted
    (threshold tuned on the other folds, F counted on the held-out one, summed over folds)."""
    from .thresholds import best_threshold, f_measure

    def crossfit_f(p: np.ndarray, t: np.ndarray) -> float:
        tp = fp = fn = 0
        for f in np.unique(folds):
            tr, va = folds != f, folds == f
            thr, _ = best_threshold(p[tr], t[tr])
            pr = p[va] >= thr
            tp, fp, fn = tp + np.sum(pr & t[va]), fp + np.sum(pr & ~t[va]), fn + np.sum(~pr & t[va])
        return f_measure(tp, fp, fn)

    use = np.zeros(y.shape[1], bool)
    for c in range(y.shape[1]):
        if trained[c] and y[:, c].any():
            use[c] = crossfit_f(p_fused[:, c], y[:, c]) >= crossfit_f(p_cnn[:, c], y[:, c]) + min_gain
    return use
