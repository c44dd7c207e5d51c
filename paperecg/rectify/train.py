"""Train the lead-name detector on a wall-clock budget: render pages -> YOLO crops -> ultralytics training.

    python -m paperecg.rectify.train --data DIR --out DIR [--minutes M] [--folds 1-8]

The budget covers everything: about `render_share` of it renders pages (both cores), the rest trains;
a data build or a training run that was cut off resumes with --resume. Everything ultralytics writes
(settings, runs) stays inside the output folder; only config.json, the safetensors weights, the settings
folder and a training log are kept.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

from ..hardware import detector_recipe, select_profile, set_threads
from .data import count_samples, record_page_job, write_data_yaml
from .detector import DetectorConfig, LeadNameDetector, build_network
from .evaluate import PAGE_PRECISION_KEY, PAGE_RECALL_KEY, evaluate_held_out, with_page_figures
from .yolo import SETTINGS_SUBDIR, import_ultralytics, restore_threads

WORK_SUBDIR = "_work"
VAL_FRACTION = 0.05
# Page-level figures at the end of training (the pipeline's gate): at most this many rendered pages of the
# held-out records, within this share of the budget (at least PAGE_EVAL_MIN_S seconds).
PAGE_EVAL_PAGES = 48
PAGE_EVAL_SHARE = 0.1
PAGE_EVAL_MIN_S = 20.0


def find_training_sources(data_dir: str, folds: str | None) -> tuple[list[str], list[tuple[str, str]]]:
    """WFDB records (fold-filtered when asked) and ECG-Image-Kit pages (image + JSON) under data_dir."""
    from ..records.ptbxl import select_records

    records = select_records(data_dir, folds)
    try:
        from ..render.dataset import find_eik_pages

        eik = list(find_eik_pages(data_dir))
    except ImportError:  # renderer without the finder: no ECG-Image-Kit pages then
        eik = []
    return records, eik


def build_dataset(records: list[str], eik_pages: list[tuple[str, str]], root: Path, config: DetectorConfig,
                  deadline_s: float, max_pages_per_record: int, crops_per_page: int, seed: int,
                  workers: int, log=print) -> int:
    """Write crops until every record has max_pages_per_record pages or the deadline passes; returns the
    number of pages used. Validation: a few records held out (their pages go to the 'val' split)."""
    import multiprocessing as mp

    from tqdm import tqdm

    val_set = set(held_out_records(records))
    jobs = []
    for kind, items in (("eik", eik_pages), ("rec", records)):
        for i, src in enumerate(items):
            split = "val" if (kind == "rec" and src in val_set) else "train"
            jobs.append((kind, src, seed * 1_000_003 + i, str(root), split, config.page_long_side_px,
                         config.crop_px, crops_per_page))
    # later passes over the records give new pages (new seeds); ECG-Image-Kit pages are used once
    for p in range(1, max_pages_per_record):
        for i, src in enumerate(records):
            split = "val" if src in val_set else "train"
            if split == "val":
                continue
            jobs.append(("rec", src, seed * 1_000_003 + p * 100_000 + i, str(root), "train",
                         config.page_long_side_px, config.crop_px, crops_per_page))
    pages = 0
    # spawn, not fork: a forked child of a process whose OpenMP pool is running can hang in libgomp
    ctx = mp.get_context("spawn")
    with ctx.Pool(max(1, workers), initializer=_worker_init) as pool:
        bar = tqdm(total=len(jobs), desc="render", unit="page", mininterval=5)
        for n in pool.imap(record_page_job, jobs, chunksize=1):
            pages += int(n > 0)
            bar.update(1)
            # the budget ends rendering only once both splits have something (slow worker start-up on a
            # busy machine could otherwise leave the training split empty)
            if time.time() > deadline_s and count_samples(root, "val") > 0 and count_samples(root, "train") > 0:
                log(f"render budget reached after {pages} pages")
                pool.terminate()
                break
        bar.close()
    return pages


def held_out_records(records: list[str]) -> list[str]:
    """The records whose pages training never sees (their crops form the validation split): VAL_FRACTION of
    them, spread evenly over the list; none when there is only one record."""
    n_val = max(1, int(round(VAL_FRACTION * len(records)))) if len(records) > 1 else 0
    return list(records[::max(1, len(records) // n_val)][:n_val]) if n_val else []


def _worker_init() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass


def yolo_train_args(data_yaml: str, config: DetectorConfig, project: Path, hours: float, device: str,
                    batch: int, seed: int, resume: bool, workers: int | None = None, fine_tune: bool = False,
                    lr0: float = 0.002) -> dict:
    """ultralytics arguments: offline, CPU-friendly, and no augmentation that would change text
    (no left-right flips, no mosaic shrinking, rotations come from our renders, not from ultralytics).
    workers: data-loader processes (default 0 on the CPU, 4 on a GPU). AMP is asked for everywhere;
    ultralytics turns it off off CUDA (yolo.offline_check_amp decides on CUDA without a download).
    fine_tune: the model passed to ultralytics already holds weights (--init-from) and training starts
    from them (ultralytics' `pretrained=True` seeds from the loaded model; False would rebuild it)."""
    cpu = device == "cpu"
    workers = (0 if cpu else 4) if workers is None else workers
    return dict(data=data_yaml, imgsz=config.crop_px, epochs=1000, time=hours, batch=batch, device=device,
                workers=workers, amp=True, project=str(project.resolve()), name="train", exist_ok=True,
                plots=False, mosaic=0.0, close_mosaic=0, fliplr=0.0, flipud=0.0, degrees=0.0, shear=0.0,
                perspective=0.0, scale=0.1, translate=0.05, hsv_h=0.015, hsv_s=0.5, hsv_v=0.3, patience=1000,
                pretrained=fine_tune, verbose=False, seed=seed, deterministic=False, val=True, save=True,
                cache=False, resume=resume,
                # short CPU budgets give a few epochs only: a brisk fixed optimiser and a short warm-up
                optimizer="AdamW", lr0=lr0, warmup_epochs=0.3)


def best_validation(results_csv: Path) -> dict:
    """Validation precision/recall/mAP50 of the best epoch (highest mAP50) in ultralytics' results.csv;
    {} when there is none. The pipeline reads val_recall to decide whether the detector is worth using."""
    import csv

    try:
        with open(results_csv, newline="") as f:
            rows = [{k.strip(): v for k, v in r.items()} for r in csv.DictReader(f)]
        best = max(rows, key=lambda r: float(r["metrics/mAP50(B)"]))
        return {"val_precision": round(float(best["metrics/precision(B)"]), 4),
                "val_recall": round(float(best["metrics/recall(B)"]), 4),
                "val_map50": round(float(best["metrics/mAP50(B)"]), 4), "epochs": len(rows)}
    except (OSError, KeyError, ValueError):
        return {}


def train_detector(records: list[str], out_dir: str, minutes: float, eik_pages: list[tuple[str, str]] = (),
                   config: DetectorConfig | None = None, seed: int = 0, render_share: float = 0.2,
                   max_pages_per_record: int = 4, crops_per_page: int = 8, batch: int | None = None,
                   device: str | None = None, resume: bool = False, keep_work: bool = False,
                   init_from: str | None = None, lr0: float | None = None, log=print) -> LeadNameDetector:
    """Render, train for the rest of the budget, export config.json + safetensors to out_dir.
    init_from: a saved detector folder to start from (a fine-tune on new pages; its class names and
    network yaml must match `config`); lr0: the optimiser's first learning rate (default 0.002 from
    scratch, 0.0007 for a fine-tune)."""
    t0 = time.time()
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    config = config or DetectorConfig()
    num_threads = set_threads()
    prof = select_profile()
    device = device or prof.device
    recipe = detector_recipe(prof)
    batch = batch or recipe.batch
    settings_dir = out / SETTINGS_SUBDIR
    import_ultralytics(settings_dir)
    work = out / WORK_SUBDIR
    data_root = work / "data"
    if not resume and work.exists():
        shutil.rmtree(work)
    render_deadline = t0 + 60.0 * minutes * render_share
    pages = build_dataset(records, list(eik_pages), data_root, config, render_deadline, max_pages_per_record,
                          crops_per_page, seed, workers=max(1, num_threads), log=log)
    n_train, n_val = count_samples(data_root, "train"), count_samples(data_root, "val")
    log(f"dataset: {pages} pages, {n_train} train crops, {n_val} val crops ({time.time() - t0:.0f} s)")
    if n_train == 0:
        raise RuntimeError("no training crops could be made from the data folder")
    data_yaml = write_data_yaml(data_root, config.class_names)

    from ultralytics import YOLO

    export_reserve_s = 30.0
    hours = max(1.0 / 3600, (60.0 * minutes - (time.time() - t0) - export_reserve_s) / 3600.0)
    last = work / "runs" / "train" / "weights" / "last.pt"
    if resume and last.exists():
        model = YOLO(str(last))
        model.train(resume=True)
    else:
        model = YOLO(config.model_yaml)
        if init_from:
            base = LeadNameDetector.load(init_from, fuse=False)
            if (tuple(base.config.class_names) != tuple(config.class_names)
                    or base.config.model_yaml != config.model_yaml):
                raise ValueError(f"--init-from {init_from}: its classes or network differ from this training's")
            model.load(base.network)
            log(f"starting from the weights in {init_from}")
        lr0 = lr0 if lr0 is not None else (0.0007 if init_from else 0.002)
        model.train(**yolo_train_args(data_yaml, config, work / "runs", hours, device, batch, seed, False,
                                      workers=recipe.loader_workers, fine_tune=bool(init_from), lr0=lr0))
    restore_threads(num_threads)
    # the trained network (best checkpoint) -> our own plain module + safetensors
    net = build_network(config, settings_dir)
    state = {k: v.float() for k, v in model.model.state_dict().items()}
    net.load_state_dict(state, strict=True)
    elapsed_min = (time.time() - t0) / 60.0
    results = work / "runs" / "train" / "results.csv"
    config = replace(config, trained_minutes=round(elapsed_min, 2), train_pages=pages,
                     extra={"train_crops": n_train, "val_crops": n_val, "device": device,
                            **best_validation(results)})
    detector = LeadNameDetector(net.float().cpu(), config)
    detector = add_page_level_figures(detector, held_out_records(records), minutes, seed, log)
    detector.save(out)
    if results.exists():
        shutil.copyfile(results, out / "train_log.csv")
    if not keep_work:
        shutil.rmtree(work, ignore_errors=True)
    log(f"detector saved to {out} after {elapsed_min:.1f} min")
    return detector


def add_page_level_figures(detector: LeadNameDetector, held_out: list[str], minutes: float, seed: int = 0,
                           log=print) -> LeadNameDetector:
    """Measure what the pipeline's gate reads (`Digitizer.load`): page-level lead-name recall and precision
    after layout decoding, on rendered pages of records training never saw (rectify/evaluate.py), and keep
    them in config.extra. Without held-out records nothing is measured (and the gate falls back on crops)."""
    if not held_out:
        log("no held-out records: page-level name figures not measured")
        return detector
    deadline = time.time() + max(PAGE_EVAL_MIN_S, 60.0 * minutes * PAGE_EVAL_SHARE)
    figures = evaluate_held_out(detector, held_out, PAGE_EVAL_PAGES, seed, deadline,
                                source=f"rendered pages of {len(held_out)} held-out training-set records")
    log(f"page-level names on {figures['page_eval_pages']} held-out pages: recall {figures[PAGE_RECALL_KEY]:.3f}, "
        f"precision {figures[PAGE_PRECISION_KEY]:.3f}")
    return with_page_figures(detector, figures)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="folder of WFDB records (and/or ECG-Image-Kit pages)")
    ap.add_argument("--out", required=True, help="model folder to write (e.g. model/detector)")
    ap.add_argument("--minutes", type=float, default=None,
                    help="wall-clock budget for rendering + training (default: hardware profile)")
    ap.add_argument("--folds", default=None, help="PTB-XL folds to use, e.g. 1-8 (default: all records)")
    ap.add_argument("--max-records", type=int, default=None, help="use at most this many records")
    ap.add_argument("--pages-per-record", type=int, default=4, help="most pages rendered per record")
    ap.add_argument("--crops-per-page", type=int, default=8)
    ap.add_argument("--render-share", type=float, default=0.2, help="share of the budget spent rendering")
    ap.add_argument("--long-side", type=int, default=DetectorConfig.page_long_side_px,
                    help="page long side (px) at which names are detected")
    ap.add_argument("--crop", type=int, default=DetectorConfig.crop_px, help="training crop size (px)")
    ap.add_argument("--batch", type=int, default=None, help="crops per step (default 8 on CPU, 64 on GPU)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None, help="cpu / cuda / cuda:N (default: hardware profile)")
    ap.add_argument("--resume", action="store_true", help="continue a cut-off data build / training run")
    ap.add_argument("--keep-work", action="store_true", help="keep the rendered crops and ultralytics run")
    ap.add_argument("--init-from", default=None, help="a detector folder to fine-tune (e.g. model/detector)")
    ap.add_argument("--lr", type=float, default=None, help="first learning rate (default 0.002, 0.0007 with "
                    "--init-from)")
    args = ap.parse_args(argv)
    minutes = args.minutes if args.minutes is not None else select_profile().detector_minutes
    records, eik = find_training_sources(args.data, args.folds)
    if args.max_records:
        records = records[: args.max_records]
    print(f"{len(records)} records, {len(eik)} ECG-Image-Kit pages; budget {minutes:g} min", flush=True)
    config = DetectorConfig(page_long_side_px=args.long_side, crop_px=args.crop)
    train_detector(records, args.out, minutes, eik, config, seed=args.seed, render_share=args.render_share,
                   max_pages_per_record=args.pages_per_record, crops_per_page=args.crops_per_page,
                   batch=args.batch, device=args.device, resume=args.resume, keep_work=args.keep_work,
                   init_from=args.init_from, lr0=args.lr)
    print(json.dumps({"out": args.out, "minutes": minutes}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
