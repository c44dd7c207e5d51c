"""Page-level figures of the lead-name detector, the ones the pipeline's gate reads.

    python -m paperecg.rectify.evaluate --model model/detector --data DIR --folds 9 [--pages 48] [--write]

What matters downstream is not how well the network reads a 256-px crop but whether, on a whole page and after
the layout decoding (`names.py`) has renamed every box after the printed cell it sits in, the right names end
up in the right places: recall (truth names found with the right name, IoU >= 0.5) and precision (named boxes
that are right). They are measured on pages of the project's renderer, drawn as for training
(`data.render_training_page`: random style, font and augmentation, tilt up to +-10 deg) from records that
training did not use, and saved in the detector's config.json (`extra`) under PAGE_FIGURE_KEYS.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace
from typing import Iterable, Iterator

import numpy as np

from ..geometry import LeadNameBox

IOU_MIN = 0.5
PAGE_RECALL_KEY = "page_name_recall"
PAGE_PRECISION_KEY = "page_name_precision"
PAGE_COUNT_KEY = "page_eval_pages"
PAGE_SOURCE_KEY = "page_eval_source"
PAGE_FIGURE_KEYS = (PAGE_RECALL_KEY, PAGE_PRECISION_KEY, PAGE_COUNT_KEY, PAGE_SOURCE_KEY)


def match_names(truth: list[LeadNameBox], found: list[LeadNameBox], iou_min: float = IOU_MIN) -> int:
    """True positives: detections (best score first) matched one-to-one to same-name truth boxes."""
    used: set[int] = set()
    tp = 0
    for d in sorted(found, key=lambda b: -b.score):
        best, best_iou = None, iou_min
        for i, t in enumerate(truth):
            if i in used or t.name.casefold() != d.name.casefold():
                continue
            iou = t.box.iou(d.box)
            if iou >= best_iou:
                best, best_iou = i, iou
        if best is not None:
            used.add(best)
            tp += 1
    return tp


def held_out_pages(records: list[str], num_pages: int, seed: int = 0
                   ) -> Iterator[tuple[np.ndarray, list[LeadNameBox]]]:
    """Rendered pages (image, truth label boxes) of the given records, one per record in turn until
    num_pages, drawn exactly as training pages are (same renderer, styles, fonts, augmentation)."""
    from ..records.io import load_header_info, load_signal
    from .data import render_training_page

    usable = 0
    for k in range(num_pages * 2):  # records without a signal are skipped; stop at twice the pages asked
        if usable >= num_pages or not records:
            return
        rec = records[k % len(records)]
        signal, _ = load_signal(rec)
        if signal is None:
            continue
        info = load_header_info(rec)
        rng = np.random.default_rng([seed, k])
        image, boxes, _ = render_training_page(signal, info.fs_hz, info.lead_names, rng)
        if boxes:
            usable += 1
            yield image, boxes


def page_name_figures(detector, pages: Iterable[tuple[np.ndarray, list[LeadNameBox]]],
                      deadline_s: float | None = None) -> dict:
    """Page-level recall and precision of `detector.detect` (layout-decoded names at the configured score
    threshold) over the pages; stops early at deadline_s (time.time() value), counting the pages done."""
    tp = n_truth = n_found = pages_done = 0
    for image, truth in pages:
        found = detector.detect(image)
        tp += match_names(truth, found)
        n_truth += len(truth)
        n_found += len(found)
        pages_done += 1
        if deadline_s is not None and time.time() > deadline_s:
            break
    return {PAGE_RECALL_KEY: round(tp / n_truth, 4) if n_truth else 0.0,
            PAGE_PRECISION_KEY: round(tp / n_found, 4) if n_found else 0.0,
            PAGE_COUNT_KEY: pages_done}


def evaluate_held_out(detector, records: list[str], num_pages: int, seed: int = 0,
                      deadline_s: float | None = None, source: str = "") -> dict:
    """The page-level figures on rendered pages of `records` (which must be records training did not use),
    with where they came from (PAGE_SOURCE_KEY)."""
    figures = page_name_figures(detector, held_out_pages(records, num_pages, seed), deadline_s)
    figures[PAGE_SOURCE_KEY] = source or f"rendered pages of {len(records)} held-out records"
    return figures


def with_page_figures(detector, figures: dict):
    """The same detector, its config's extra updated with the page-level figures."""
    detector.config = replace(detector.config, extra={**detector.config.extra, **figures})
    return detector


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="detector folder (config.json + weights)")
    ap.add_argument("--data", required=True, help="WFDB records that training did not use")
    ap.add_argument("--folds", default=None, help="PTB-XL folds to draw from, e.g. 9 (default: all records)")
    ap.add_argument("--pages", type=int, default=48, help="pages to render and score")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--write", action="store_true", help="save the figures into the model's config.json")
    args = ap.parse_args(argv)

    from ..hardware import set_threads
    from ..records.ptbxl import select_records
    from .detector import LeadNameDetector

    set_threads()
    detector = LeadNameDetector.load(args.model)
    records = select_records(args.data, args.folds)
    if not records:
        raise SystemExit(f"no records in {args.data} (folds {args.folds})")
    source = (f"{args.pages} rendered pages (render_training_page, seed {args.seed}) of "
              f"{os.path.basename(os.path.normpath(args.data))} folds {args.folds or 'all'}")
    figures = evaluate_held_out(detector, records, args.pages, args.seed, source=source)
    if args.write:
        with_page_figures(detector, figures)
        cfg_path = os.path.join(args.model, "config.json")
        with open(cfg_path, "w") as f:  # only the config changes: the weights stay byte-identical
            json.dump(detector.config.to_json(), f, indent=2)
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
