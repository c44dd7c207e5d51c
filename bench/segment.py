"""Benchmark the trace segmenter on ECG-Image-Kit pages: pixel F1 against the trace drawn from the JSON's
plotted pixels (in the model's working frame, at the model's label width) and CPU seconds per page.

    python bench/segment.py --eik ../shared/data/eik-dev/clean --model model/segmenter

Last line: one JSON object (pixel_f1, precision, recall, s_per_page, records, ...).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--eik", required=True, help="folder with ECG-Image-Kit images and their JSON")
    ap.add_argument("--model", required=True, help="segmenter folder (model.safetensors + config.json)")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N pages (0 = all)")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (the target is set for 2)")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (s_per_page is the CPU figure on cpu)")
    ap.add_argument("--save-maps", default=None, help="folder to write probability maps as PNG (optional)")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from paperecg.render.dataset import find_eik_pages
    from paperecg.render.eik import load_eik_page
    from paperecg.segment.infer import Segmenter
    from paperecg.segment.loss import f1_counts, f1_from_counts
    from paperecg.segment.preprocess import draw_trace_label, map_to_page
    from paperecg.segment.train import THRESHOLDS

    seg = Segmenter.load(args.model, device=args.device)
    cfg = seg.config
    pairs = find_eik_pages(args.eik)
    if args.limit:
        pairs = pairs[: args.limit]
    if not pairs:
        raise SystemExit(f"no ECG-Image-Kit pages (image + JSON) under {args.eik}")
    ths = np.unique(np.append(THRESHOLDS, cfg.threshold))
    i_model = int(np.argmin(np.abs(ths - cfg.threshold)))
    counts = np.zeros((len(ths), 3), np.int64)
    page_f1 = []
    times = []
    # warm-up: the first call pays one-off allocation costs that a served model pays once
    seg.predict(np.full((64, 64, 3), 255, np.uint8))
    for k, (image_path, json_path) in enumerate(pairs):
        page = load_eik_page(image_path, json_path, fit_baselines=False)
        t0 = time.perf_counter()
        prob_work, scale = seg.predict_work(page.image)
        prob_page = map_to_page(prob_work, page.image.shape[:2])  # what predict() returns, timed with it
        times.append(time.perf_counter() - t0)
        label = draw_trace_label([t.pixels for t in page.leads], prob_work.shape, scale, cfg.label_width_px)
        c = f1_counts(prob_work, label, ths)
        counts += c
        page_f1.append(float(f1_from_counts(c[i_model:i_model + 1])[0]))
        if args.save_maps:
            import cv2

            os.makedirs(args.save_maps, exist_ok=True)
            name = os.path.splitext(os.path.basename(image_path))[0]
            vis = np.stack([label * 255, (prob_work * 255).astype(np.uint8), np.zeros_like(label, np.uint8)], -1)
            cv2.imwrite(os.path.join(args.save_maps, name + "_map.png"), vis.astype(np.uint8)[:, :, ::-1])
        del prob_page
        print(f"{os.path.basename(image_path)}: pixel F1 {page_f1[-1]:.4f}, {times[-1]:.2f} s", file=sys.stderr)
    f1s = f1_from_counts(counts)
    tp, fp, fn = counts[i_model]
    best = int(np.argmax(f1s))
    result = {
        "pixel_f1": round(float(f1s[i_model]), 4),
        "precision": round(float(tp / max(1, tp + fp)), 4),
        "recall": round(float(tp / max(1, tp + fn)), 4),
        "threshold": float(ths[i_model]),
        "best_threshold": float(ths[best]),
        "pixel_f1_at_best_threshold": round(float(f1s[best]), 4),
        "median_page_f1": round(float(np.median(page_f1)), 4),
        "s_per_page": round(float(np.median(times)), 3),
        "s_per_page_mean": round(float(np.mean(times)), 3),
        "records": len(pairs),
        "device": args.device,
        "threads": args.threads,
        "work_size": f"{cfg.work_width_px}x{cfg.work_height_px}",
        "base_channels": cfg.base_channels,
        "depth": cfg.depth,
        "flatten": cfg.flatten,
        "chroma": cfg.chroma,
        "eik": os.path.abspath(args.eik),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
