"""Cache of what the digitizer reads from rendered pages of training records (for the classifier's training).

For each record (in a seeded random order, so a run stopped early leaves a random subset): render one page
with the project's renderer (3x4+1, augmented; a share photographed), digitize it with the pipeline's
Digitizer, and save OUT/NAME.npz with `signal` ((num_samples, num_leads) mV float32, header order, NaN where
nothing was read), `fs_hz`, `lead_names` and `photo` (0/1). Resumable: records with a file are skipped.

    python -m paperecg.tools.digitize_training --data DIR --folds 1-8 --model model --out OUT [--photo-share 0.3]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np


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


def main(argv: list[str] | None = None) -> int:
    from paperecg.pipeline.digitizer import Digitizer
    from paperecg.records.ptbxl import seeded_order, select_records

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--folds", default=None)
    ap.add_argument("--model", default="model")
    ap.add_argument("--out", required=True)
    ap.add_argument("--photo-share", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None)
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    records = seeded_order(select_records(a.data, a.folds), a.seed)[: a.limit]
    todo = [r for r in records if not os.path.isfile(os.path.join(a.out, cache_name(r)))]
    print(f"{len(records)} records, {len(records) - len(todo)} cached, {len(todo)} to do", file=sys.stderr)
    digitizer = Digitizer.load(a.model, device="cpu", log=lambda m: print(m, file=sys.stderr))
    t0 = time.time()
    for k, rec in enumerate(todo):
        try:
            sig, fs_hz, names, photo = digitize_one(rec, digitizer, a.seed, a.photo_share)
        except Exception as e:  # one failed page must not stop the cache
            print(f"{rec}: {type(e).__name__}: {e}", file=sys.stderr)
            continue
        tmp = os.path.join(a.out, cache_name(rec) + ".tmp.npz")
        np.savez_compressed(tmp, signal=sig, fs_hz=fs_hz, lead_names=np.array(names), photo=int(photo))
        os.replace(tmp, os.path.join(a.out, cache_name(rec)))
        if k % 10 == 0:
            print(f"{k + 1}/{len(todo)} {time.time() - t0:.0f}s", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
