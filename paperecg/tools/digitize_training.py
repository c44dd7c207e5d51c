"""Cache of what the digitizer reads from rendered pages of training records (for the classifier's fusion),
filled by hand with a given model (train_model.py fills its own: paperecg.pipeline.digitized, whose cache
format this is). Resumable: records with a file are skipped.

    python -m paperecg.tools.digitize_training --data DIR --folds 1-8 --model model --out OUT [--photo-share 0.3]
"""
from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    from paperecg.pipeline.digitized import PHOTO_SHARE, cache_name, digitize_records
    from paperecg.pipeline.digitizer import Digitizer
    from paperecg.records.ptbxl import seeded_order, select_records

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--folds", default=None)
    ap.add_argument("--model", default="model")
    ap.add_argument("--out", required=True)
    ap.add_argument("--photo-share", type=float, default=PHOTO_SHARE)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None)
    a = ap.parse_args(argv)
    records = seeded_order(select_records(a.data, a.folds), a.seed)[: a.limit]
    cached = sum(os.path.isfile(os.path.join(a.out, cache_name(r))) for r in records)
    print(f"{len(records)} records, {cached} cached, {len(records) - cached} to do", file=sys.stderr)
    digitizer = Digitizer.load(a.model, device="cpu", log=lambda m: print(m, file=sys.stderr))
    # digitize_records skips the cached records itself and makes the folder
    digitize_records(records, digitizer, a.out, seed=a.seed, photo_share=a.photo_share,
                     log=lambda m: print(m, file=sys.stderr, flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
