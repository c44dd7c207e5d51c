"""Render a folder of WFDB records into a training folder (parallel, resumable, deterministic per seed).

Output (NAME = '<record>-<k>'):
  OUT/images/NAME.png    page image (or .jpg with --format jpg)
  OUT/images/NAME.json   page JSON (ECG-Image-Kit key names + our geometry keys; read with load_eik_page)
  OUT/labels/NAME.txt    lead-name boxes, YOLO format (class = index in STANDARD_LEADS)
  OUT/masks/NAME.png     trace mask (0/255);  OUT/masks/NAME_leads.png  lead ids (0 = none, k = JSON lead k-1)
  with --write-records:  OUT/images/NAME.hea/.dat, the reference as the challenge scores it (samples not
                         drawn on the page are NaN; '# Image: NAME.png'; source comments kept).

Example: python -m paperecg.tools.render_folder --records ../shared/data/ptbxl/records100 --out /tmp/pages \
             --pages-per-record 2 --workers 2
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import cv2
import numpy as np

from paperecg.layouts import LAYOUTS, lead_index
from paperecg.pipeline.parallel import map_in_workers
from paperecg.records.header import get_comment_lines
from paperecg.records.io import load_header, write_record
from paperecg.render.dataset import find_record_paths, page_seed, render_training_page
from paperecg.render.labels import RenderedPage


def _name(record: str, k: int) -> str:
    return f"{os.path.basename(record)}-{k}"


def drawn_reference(page: RenderedPage, signal: np.ndarray, lead_names: list[str]) -> np.ndarray:
    """The record with every sample the page does not draw set to NaN (the challenge's masked reference)."""
    out = np.full_like(signal, np.nan, dtype=np.float64)
    for t in page.leads:
        j = lead_index(lead_names, t.name)
        if j is None:
            continue
        drawn = np.all(np.isfinite(t.pixels), axis=1)
        idx = np.arange(t.start_sample, t.end_sample)[drawn[: t.end_sample - t.start_sample]]
        out[idx, j] = signal[idx, j]
    return out


def write_page(page: RenderedPage, out_dir: str, name: str, image_format: str = "png",
               record: str | None = None) -> None:
    """All files of one page (see the module docstring)."""
    for sub in ("images", "labels", "masks"):
        os.makedirs(os.path.join(out_dir, sub), exist_ok=True)
    image_name = f"{name}.{image_format}"
    bgr = cv2.cvtColor(page.image, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, 92] if image_format == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    cv2.imwrite(os.path.join(out_dir, "images", image_name), bgr, params)
    with open(os.path.join(out_dir, "images", f"{name}.json"), "w") as f:
        json.dump(page.to_json(), f, separators=(",", ":"))
    with open(os.path.join(out_dir, "labels", f"{name}.txt"), "w") as f:
        f.write("\n".join(page.yolo_lines()) + ("\n" if page.leads else ""))
    cv2.imwrite(os.path.join(out_dir, "masks", f"{name}.png"), page.trace_mask.astype(np.uint8) * 255)
    cv2.imwrite(os.path.join(out_dir, "masks", f"{name}_leads.png"), page.lead_mask)
    if record is not None:
        from paperecg.render.dataset import load_record

        signal, fs_hz, names = load_record(record)
        comments = [c for c in get_comment_lines(load_header(record))
                    if not c.replace(" ", "").lower().startswith("#image:")]
        comments.append(f"# Image: {image_name}")
        write_record(os.path.join(out_dir, "images"), name, drawn_reference(page, signal, list(names)), fs_hz,
                     list(names), comments)


def _job(args: tuple) -> str:
    record, k, index, opts = args
    import cv2 as _cv2

    _cv2.setNumThreads(1)
    name = _name(record, k)
    rng = np.random.default_rng(page_seed(opts["seed"], 0, index))
    page = render_training_page(record, rng, augment=opts["augment"], layouts=opts["layouts"], dpi=opts["dpi"],
                                strength=opts["strength"], rotate_max_deg=opts["rotate_max_deg"])
    write_page(page, opts["out"], name, opts["format"], record if opts["write_records"] else None)
    return name


def _done(out_dir: str, name: str, image_format: str) -> bool:
    return (os.path.isfile(os.path.join(out_dir, "images", f"{name}.json"))
            and os.path.isfile(os.path.join(out_dir, "images", f"{name}.{image_format}"))
            and os.path.isfile(os.path.join(out_dir, "masks", f"{name}_leads.png")))


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", required=True, help="folder of WFDB records (searched recursively)")
    p.add_argument("--out", required=True, help="output training folder")
    p.add_argument("--pages-per-record", type=int, default=1)
    p.add_argument("--no-augment", action="store_true", help="clean renders only")
    p.add_argument("--strength", type=float, default=1.0, help="augmentation strength (0..2)")
    p.add_argument("--rotate-max-deg", type=float, default=10.0)
    p.add_argument("--layouts", nargs="*", default=None, choices=sorted(LAYOUTS),
                   help="layouts to draw from (default: the random style's mix)")
    p.add_argument("--dpi", type=float, default=None, help="page resolution (default 200)")
    p.add_argument("--format", choices=["png", "jpg"], default="png")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="use only the first N records")
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 1)))
    p.add_argument("--write-records", action="store_true", help="also write each page's masked reference")
    p.add_argument("--overwrite", action="store_true", help="redo pages whose files exist (default: resume)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    from tqdm import tqdm

    args = parse_args(argv)
    records = find_record_paths(args.records)[: args.limit]
    if not records:
        print(f"no records with signals under {args.records}", file=sys.stderr)
        return 1
    opts = {"seed": args.seed, "augment": not args.no_augment, "layouts": args.layouts, "dpi": args.dpi,
            "strength": args.strength, "rotate_max_deg": args.rotate_max_deg, "out": args.out,
            "format": args.format, "write_records": args.write_records}
    jobs = []
    for i, rec in enumerate(records):
        for k in range(args.pages_per_record):
            if args.overwrite or not _done(args.out, _name(rec, k), args.format):
                jobs.append((rec, k, i * args.pages_per_record + k, opts))
    skipped = len(records) * args.pages_per_record - len(jobs)
    if skipped:
        print(f"resuming: {skipped} pages already there", file=sys.stderr)
    # worker processes (joblib/loky: spawned, not forked, so a parent's OpenMP pool cannot hang them)
    for _ in tqdm(map_in_workers(_job, jobs, args.workers), total=len(jobs), desc="render", unit="page"):
        pass
    print(json.dumps({"pages": len(records) * args.pages_per_record, "rendered": len(jobs), "out": args.out}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
