"""Benchmark of lead-name detection and tilt correction.

    python bench/rectify.py --eik ../shared/data/eik-dev/distorted --model model/detector

On ECG-Image-Kit pages (image + JSON): the applied rotation is derived from the JSON's rotated lead boxes
(its `rotate` key is only the range) and rounded to whole degrees, as the generator draws whole degrees;
lead-name recall/precision are IoU >= 0.5 matches of the same name against the JSON text boxes on the
uncorrected page; s_per_page is the time of `rectify_page` (detection + tilt + rotation) with --threads
torch threads. On our own renders (fold-9 PTB-XL records unless told otherwise) turned uniformly within
+-10 deg: the same figures under the key `own_renders`. The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from paperecg.geometry import LeadNameBox  # noqa: E402
from paperecg.rectify.evaluate import match_names  # noqa: E402  (the gate's page-level figures count the same way)
from paperecg.rectify.rectify import rectify_page  # noqa: E402
from paperecg.rectify.tilt import estimate_tilt_from_lines, fit_tilt_from_boxes  # noqa: E402
from paperecg.render.dataset import find_eik_pages  # noqa: E402

SWEEP_THRESHOLDS = (0.05, 0.1, 0.15, 0.25, 0.35, 0.5)


def evaluate(samples, detector, threads: int) -> dict:
    """samples: iterable of (image, truth boxes, true angle deg)."""
    import torch

    errs, names_errs, lines_errs, times = [], [], [], []
    tp = n_truth = n_found = 0
    sweep = {t: [0, 0] for t in SWEEP_THRESHOLDS}  # threshold -> [tp, found]
    wrong_turns = 0
    n = 0
    for image, truth, angle in samples:
        torch.set_num_threads(threads)
        t = time.perf_counter()
        rect = rectify_page(image, detector)
        times.append(time.perf_counter() - t)
        wrong_turns += int(rect.quarter_turns != 0)
        errs.append(abs(rect.angle_deg - angle))
        lines_errs.append(abs(estimate_tilt_from_lines(image).angle_deg - angle))
        if detector is not None:
            # what the pipeline uses: the reading above the configured threshold, named by the layout
            low, low_scores = detector.detect_raw(image, conf_threshold=min(SWEEP_THRESHOLDS))

            def named_above(thr: float) -> list[LeadNameBox]:
                keep = [i for i, b in enumerate(low) if b.score >= thr]
                return detector.name_boxes([low[i] for i in keep], low_scores[keep])

            found = named_above(detector.config.conf_threshold)
            tp += match_names(truth, found)
            n_found += len(found)
            for thr, acc in sweep.items():
                kept = named_above(thr)
                acc[0] += match_names(truth, kept)
                acc[1] += len(kept)
            fit = fit_tilt_from_boxes(found)
            if fit.num_pairs:
                names_errs.append(abs(fit.angle_deg - angle))
        n_truth += len(truth)
        n += 1
    errs = np.array(errs) if errs else np.array([np.nan])

    def q(a, p):
        return round(float(np.percentile(a, p)), 4) if len(a) else None

    return {
        "angle_err_median_deg": q(errs, 50),
        "angle_err_p95_deg": q(errs, 95),
        "angle_err_max_deg": q(errs, 100),
        "lead_name_recall": round(tp / n_truth, 4) if n_truth else None,
        "lead_name_precision": round(tp / n_found, 4) if n_found else (None if detector is None else 0.0),
        "s_per_page": round(float(np.mean(times)), 4) if times else None,
        "records": n,
        "names_only_err_median_deg": q(np.array(names_errs), 50),
        "names_only_err_p95_deg": q(np.array(names_errs), 95),
        "names_fit_pages": len(names_errs),
        "lines_only_err_median_deg": q(np.array(lines_errs), 50),
        "lines_only_err_p95_deg": q(np.array(lines_errs), 95),
        "wrong_quarter_turns": wrong_turns,
        # recall / precision of the names at other score thresholds (to tune config.json's conf_threshold)
        "name_pr_by_threshold": {f"{t:g}": [round(a[0] / n_truth, 4) if n_truth else None,
                                            round(a[0] / a[1], 4) if a[1] else None]
                                 for t, a in sweep.items()} if detector is not None else None,
    }


def eik_samples(folder: str, limit: int | None):
    from paperecg.render.eik import load_eik_page

    for image_path, json_path in find_eik_pages(folder)[:limit]:
        page = load_eik_page(image_path, json_path, fit_baselines=False)
        # the generator applies whole degrees; the boxes' own angle carries rounding noise of ~0.02 deg
        yield page.image, page.lead_name_boxes(), float(round(page.angle_deg))


def own_render_samples(data_dir: str, folds: str, count: int, seed: int, max_deg: float = 10.0):
    from paperecg.records.io import load_header_info, load_signal
    from paperecg.records.ptbxl import select_records
    from paperecg.rectify.data import label_box_from_ink
    from paperecg.render.augment import apply_augmentation, sample_aug_params
    from paperecg.render.page import random_style, render_page

    records = select_records(data_dir, folds)
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(records), size=min(count, len(records)), replace=False)
    for i in picks:
        signal, _ = load_signal(records[i])
        info = load_header_info(records[i])
        page = render_page(signal, info.fs_hz, info.lead_names, random_style(rng))
        # truth boxes in the detector's (ECG-Image-Kit) convention, turned with the page
        leads = [replace(t, text_box=label_box_from_ink(t.text_box), text_corners=None)
                 if t.text_box is not None else t for t in page.leads]
        page = replace(page, leads=leads)
        params = replace(sample_aug_params(rng, 1.0, max_deg), angle_deg=float(rng.uniform(-max_deg, max_deg)),
                         perspective_frac=0.0)
        page = apply_augmentation(page, params)
        yield page.image, page.lead_name_boxes(), float(page.angle_deg)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eik", required=True, help="folder of ECG-Image-Kit pages (image + JSON)")
    ap.add_argument("--model", default=None, help="detector folder (config.json + weights); none: lines only")
    ap.add_argument("--limit", type=int, default=None, help="at most this many ECG-Image-Kit pages")
    ap.add_argument("--own-renders", type=int, default=30, help="own rotated renders to score (0: skip)")
    ap.add_argument("--ptbxl", default=os.path.join(REPO, "..", "shared", "data", "ptbxl"),
                    help="records for the own renders")
    ap.add_argument("--folds", default="9", help="PTB-XL folds for the own renders")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    detector = None
    if args.model:
        from paperecg.rectify.detector import LeadNameDetector

        detector = LeadNameDetector.load(args.model)
    result = {"eik": os.path.abspath(args.eik), "model": args.model}
    result.update(evaluate(eik_samples(args.eik, args.limit), detector, args.threads))
    if args.own_renders > 0 and os.path.isdir(args.ptbxl):
        own = evaluate(own_render_samples(args.ptbxl, args.folds, args.own_renders, args.seed), detector,
                       args.threads)
        result["own_renders"] = own
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
