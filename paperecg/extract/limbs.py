"""The six limb leads carry two signals: readings that the other limb leads contradict are taken from them.

Einthoven and Goldberger: with I and II known, III = II - I, aVR = -(I + II) / 2, aVL = I - II / 2 and
aVF = II - I / 2. Where five or six limb leads were read at one instant (12x1 and 6x2 pages print them side
by side in time), there are three or four readings more than unknowns: one or two leads that disagree with
the other four, while those four agree among themselves, were misread there, and what the four imply
replaces them. On 12x1 pages every row's QRS comes at the same instant and rows are 15 mm apart, so tall R
waves meet the row above's trace, and the split between the two rows cut them at about half their height.

3x4 pages print at most four limb leads at one instant (aVR, aVL, aVF and the lead II strip). Three others
are too few to trust: rebuilding a lead from three gained 0.15 dB on eik-dev/clean but cost 0.02 on
eik-dev/distorted (one page 1.6 dB) and 0.22 on photos-real-ref, whose rows keep timing errors of their
own (session 14), so 3x4 pages are left as read.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..layouts import canonical_lead_name
from .combine import reading_lag

# Each limb lead as a combination of (I, II).
LIMB_BASIS: dict[str, tuple[float, float]] = {
    "I": (1.0, 0.0), "II": (0.0, 1.0), "III": (-1.0, 1.0),
    "aVR": (-0.5, -0.5), "aVL": (1.0, -0.5), "aVF": (-0.5, 1.0),
}


def limb_columns(lead_names: list[str]) -> tuple[list[int], np.ndarray]:
    """(indices of the limb leads in lead_names, first of each name, and their (n, 2) rows of LIMB_BASIS)."""
    idx, seen, basis = [], set(), []
    for j, name in enumerate(lead_names):
        key = canonical_lead_name(name)
        if key in LIMB_BASIS and key not in seen:
            seen.add(key)
            idx.append(j)
            basis.append(LIMB_BASIS[key])
    return idx, np.array(basis, dtype=np.float64).reshape(-1, 2)


def fit_limbs(values: np.ndarray, usable: np.ndarray, basis: np.ndarray, min_leads: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """(fitted, misfit): at each sample where at least min_leads usable columns span both signals, I and II
    fitted to them by least squares, every column's value they imply (T, m), and the largest distance of a
    usable column from its fitted value (T,). NaN elsewhere."""
    n, m = values.shape
    fitted = np.full((n, m), np.nan)
    misfit = np.full(n, np.nan)
    codes = usable.astype(np.int64) @ (1 << np.arange(m))
    for code in np.unique(codes):
        cols = (code >> np.arange(m)) & 1 == 1
        if cols.sum() < min_leads or np.linalg.matrix_rank(basis[cols]) < 2:
            continue
        at = codes == code
        i_ii = np.linalg.pinv(basis[cols]) @ values[at][:, cols].T  # (2, samples)
        fitted[at] = (basis @ i_ii).T
        misfit[at] = np.abs(fitted[at][:, cols] - values[at][:, cols]).max(axis=1)
    return fitted, misfit


def limb_offsets(values: np.ndarray, read: np.ndarray, basis: np.ndarray, rounds: int = 3) -> np.ndarray:
    """(m,) each lead's baseline against the others (rows read their zero levels apart): the median of the
    lead minus the least-squares fit of all, refined `rounds` times."""
    offsets = np.zeros(values.shape[1])
    for _ in range(rounds):
        y = np.where(read, values - offsets, 0.0)
        fitted, _ = fit_limbs(y, read, basis, min_leads=3)
        for k in range(values.shape[1]):
            d = (y[:, k] - fitted[:, k])[read[:, k] & np.isfinite(fitted[:, k])]
            if d.size >= 10:
                offsets[k] += float(np.median(d))
    return offsets


def lead_agreement(values: np.ndarray, read: np.ndarray, basis: np.ndarray, fs_hz: float, min_others: int,
                   max_lag_s: float, search_s: float = 0.1, min_corr: float = 0.8, min_related: float = 0.5
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(misaligned, unrelated), each (m,) bool, from each lead's best correlation with what the others imply
    (within +-search_s):
    - misaligned: it matches (correlation >= min_corr) best at a lag beyond max_lag_s. Rows read their time
      axes apart (one distorted page's aVL came 50 ms late): such a lead's QRS, rebuilt from the others, would
      be printed twice, once at each time. A lead cut where rows meet still matches at no lag.
    - unrelated: it matches at no lag (correlation below min_related, or nothing to compare): misread
      throughout (12x1 00354's aVL, -3.7 dB as read, 25.5 rebuilt), or the readings do not hold Einthoven's
      law at all (leads that are not one heart's, names that are wrong)."""
    misaligned = np.zeros(values.shape[1], dtype=bool)
    unrelated = np.zeros(values.shape[1], dtype=bool)
    search = max(int(round(search_s * fs_hz)), 1)
    for k in range(values.shape[1]):
        others = read.copy()
        others[:, k] = False
        fitted, _ = fit_limbs(values, others, basis, min_leads=min_others)
        lag, corr = reading_lag(fitted[:, k], np.where(read[:, k], values[:, k], np.nan), search)
        misaligned[k] = bool(corr >= min_corr and abs(lag) > max_lag_s * fs_hz)
        unrelated[k] = not corr >= min_related
    return misaligned, unrelated


def repair_limb_leads(signal: np.ndarray, lead_names: list[str], fs_hz: float, min_others: int = 4,
                      max_left_out: int = 2, min_change_mv: float = 0.15, max_misfit_mv: float = 0.075,
                      max_lag_s: float = 0.02) -> tuple[np.ndarray, int]:
    """(signal, samples changed): at each sample, the fewest limb leads (up to max_left_out) whose readings,
    left out, leave at least min_others that fit I and II within max_misfit_mv, replaced by what those
    others imply, where one of them is more than min_change_mv from it. Samples where no such set exists,
    or where the readings agree already, stay as read, and so does a lead read on a time axis of its own
    and nothing is changed unless at least min_others leads follow the others (lead_agreement). Each lead
    keeps its own baseline (limb_offsets).

    Two readings are replaced only where neither comes out more than min_change_mv nearer its baseline: a
    stroke cut where two rows' traces meet is only ever read too short, and three leads cut toward their
    baselines agree with one another as a smaller signal would, so the four left can include them and the
    two good readings would be the ones "repaired" (12x1 00987: II and III lost 10 dB that way)."""
    idx, basis = limb_columns(lead_names)
    out = np.array(signal, dtype=np.float64, copy=True)
    m = len(idx)
    if m < min_others + 1:
        return out, 0
    values = out[:, idx]
    read = np.isfinite(values)
    if not (read.sum(axis=1) > min_others).any():
        return out, 0  # no instant with a reading to spare (every 3x4 page): nothing to weigh
    offsets = limb_offsets(values, read, basis)
    misaligned, unrelated = lead_agreement(np.where(read, values - offsets, np.nan), read, basis, fs_hz, min_others,
                                      max_lag_s)
    if (~unrelated).sum() < min_others:
        # no four leads follow the others: where four unrelated traces happen to agree (all flat between
        # their beats) a fifth's QRS would be "repaired" flat
        return out, 0
    y = np.where(read, values - offsets, 0.0)
    done = np.zeros(len(out), dtype=bool)
    changed = 0
    for size in range(1, max_left_out + 1):
        best_misfit = np.full(len(out), np.inf)
        best_fit = np.full((len(out), m), np.nan)
        best_set = np.zeros((len(out), m), dtype=bool)
        for left in itertools.combinations(np.nonzero(~misaligned)[0], size):
            out_cols = np.zeros(m, dtype=bool)
            out_cols[list(left)] = True
            fitted, misfit = fit_limbs(y, read & ~out_cols, basis, min_leads=min_others)
            dev = np.abs(fitted[:, out_cols] - y[:, out_cols]).max(axis=1)
            take = ~done & read[:, out_cols].all(axis=1) & np.isfinite(dev) & (dev > min_change_mv) \
                & (misfit <= max_misfit_mv) & (misfit < best_misfit)
            if size > 1:  # see the docstring: two readings are only ever replaced by taller ones
                shrink = (np.abs(y[:, out_cols]) - np.abs(fitted[:, out_cols])).max(axis=1)
                take &= shrink <= min_change_mv
            best_misfit[take] = misfit[take]
            best_fit[take] = fitted[take]
            best_set[take] = out_cols
        at = np.isfinite(best_misfit)
        rows, cols = np.nonzero(best_set & at[:, None])
        values[rows, cols] = best_fit[rows, cols] + offsets[cols]
        changed += int(at.sum())
        done |= at
    out[:, idx] = values
    return out, changed
