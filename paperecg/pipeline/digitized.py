"""What the digitizer reads from rendered pages of training records: the classifier's fusion is fitted on
these readings too, so that what a page does to a signal (gaps, clipped strokes, a photo's noise) is not
taken for an arrhythmia (train_model.py does this between the segmenter and the classifier; the
`paperecg.tools.digitize_training` command fills the same cache by hand).

For each record, in a seeded random order (a run stopped by its budget leaves a random subset): one page
rendered by the project's renderer (3x4+1, augmented; a share photographed), read by the pipeline's
Digitizer, and saved as DIR/NAME.npz with `signal` ((num_samples, num_leads) mV float32, header order, NaN
where nothing was read), `fs_hz`, `lead_names` and `photo` (0/1). Records with a file are skipped (resumable).
"""
from __future__ import annotations

import os
import time

import numpy as np

from paperecg.log import warn

PHOTO_SHARE = 0.3  # share of the pages photographed (render/photo.py), as in the segmenter's page mix


def cache_name(record: str) -> str:
    return os.path.basename(record) + ".npz"


def digitize_one(record: str, digitizer, seed: int, photo_share: float) -> tuple[np.ndarray, float, list[str], bool]:
    """Render one page of `record` and read it back: (signal mV, fs_hz, lead names, photographed)."""
    from paperecg.records.images import PageImage
    from paperecg.records.io import load_header_info
    from paperecg.render.dataset import render_training_page

    header = load_header_info(record)
    rng = np.random.default_rng([seed, int.from_bytes(os.path.basename(record).encode()[-8:], "little")])
    photo = bool(rng.random() < photo_share)
    page = render_training_page(record, rng, augment=True, layouts=["3x4+1"], photo_prob=1.0 if photo else 0.0)
    signal = digitizer.digitize(record, header, log=lambda m: None,
                                pages=[PageImage(path=os.path.basename(record) + ".png", rgb=page.image)])
    return signal.astype(np.float32), float(header.fs_hz), list(header.lead_names), photo


def digitize_records(records: list[str], digitizer, out_dir: str, minutes: float | None = None, seed: int = 0,
                     photo_share: float = PHOTO_SHARE, log=None) -> int:
    """Fill out_dir's cache for `records` (in the order given) until done or `minutes` have passed; a page that
    fails is reported and skipped. Returns how many records the cache holds."""
    os.makedirs(out_dir, exist_ok=True)
    todo = [r for r in records if not os.path.isfile(os.path.join(out_dir, cache_name(r)))]
    t0 = time.time()
    for k, rec in enumerate(todo):
        if minutes is not None and time.time() - t0 > 60.0 * minutes:
            break
        try:
            sig, fs_hz, names, photo = digitize_one(rec, digitizer, seed, photo_share)
        except Exception as e:  # one failed page must not stop the cache
            warn(f"{rec}: {type(e).__name__}: {e}")
            continue
        tmp = os.path.join(out_dir, cache_name(rec) + ".tmp.npz")
        np.savez_compressed(tmp, signal=sig, fs_hz=fs_hz, lead_names=np.array(names), photo=int(photo))
        os.replace(tmp, os.path.join(out_dir, cache_name(rec)))
        if log is not None and k % 25 == 0:
            log(f"digitized {k + 1} training pages in {time.time() - t0:.0f} s")
    return sum(os.path.isfile(os.path.join(out_dir, cache_name(r))) for r in records)
