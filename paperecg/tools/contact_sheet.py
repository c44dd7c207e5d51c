"""Contact sheet: N pages with their labels overlaid in colour, one PNG, to look at.

Each lead's mask pixels get their own colour, lead-name boxes and lead boxes are outlined (rotated
corners), and every 10th plotted sample is dotted. Pages come from records rendered on the fly
(--records) or from ECG-Image-Kit / render_folder output (--pages: image + JSON pairs).

Example: python -m paperecg.tools.contact_sheet --records ../shared/data/ptbxl/records100/00000 --n 8 \
             --out /tmp/sheet.png
"""
from __future__ import annotations

import argparse
import colorsys
import json
import sys

import cv2
import numpy as np

from paperecg.render.labels import RenderedPage, box_corners


def lead_colours(n: int) -> np.ndarray:
    """n well-separated saturated RGB colours."""
    return np.array([[int(255 * c) for c in colorsys.hsv_to_rgb((i * 0.61803) % 1.0, 0.9, 0.95)]
                     for i in range(max(n, 1))], dtype=np.uint8)


def overlay(page: RenderedPage, tile_width: int = 550) -> np.ndarray:
    """The page at `tile_width` px wide with its labels drawn on top (RGB uint8)."""
    img = page.image.copy()
    colours = lead_colours(len(page.leads))
    ids = page.lead_mask
    on = ids > 0
    img[on] = (0.3 * img[on] + 0.7 * colours[ids[on] - 1]).astype(np.uint8)
    unassigned = page.trace_mask & ~on
    img[unassigned] = (255, 0, 255)
    thick = max(1, page.width // 700)
    for k, t in enumerate(page.leads):
        col = tuple(int(v) for v in colours[k])
        lead_c = t.lead_corners if t.lead_corners is not None else box_corners(t.lead_box)
        cv2.polylines(img, [np.round(lead_c[:, ::-1]).astype(np.int32)], True, col, thick)
        if t.text_box is not None:
            text_c = t.text_corners if t.text_corners is not None else box_corners(t.text_box)
            cv2.polylines(img, [np.round(text_c[:, ::-1]).astype(np.int32)], True, (255, 0, 0), thick)
        pts = t.pixels[::10]
        for r, c in pts[np.all(np.isfinite(pts), axis=1)]:
            cv2.circle(img, (int(round(c)), int(round(r))), thick + 1, (0, 160, 255), -1)
    h = int(round(page.height * tile_width / page.width))
    tile = cv2.resize(img, (tile_width, h), interpolation=cv2.INTER_AREA)
    label = f"{page.layout}  {page.angle_deg:+.1f} deg  {page.meta.get('look', '')}  {page.meta.get('record', '')}"
    cv2.putText(tile, label, (6, h - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(tile, label, (6, h - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 0), 1, cv2.LINE_AA)
    return tile


def contact_sheet(pages: list[RenderedPage], columns: int = 4, tile_width: int = 550) -> np.ndarray:
    tiles = [overlay(p, tile_width) for p in pages]
    th = max(t.shape[0] for t in tiles)
    rows = []
    for i in range(0, len(tiles), columns):
        row = [np.pad(t, ((0, th - t.shape[0]), (2, 2), (0, 0)), constant_values=40) for t in tiles[i:i + columns]]
        while len(row) < columns:
            row.append(np.full_like(row[0], 40))
        rows.append(np.pad(np.concatenate(row, axis=1), ((2, 2), (0, 0), (0, 0)), constant_values=40))
    return np.concatenate(rows, axis=0)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--records", help="folder of WFDB records to render on the fly")
    src.add_argument("--pages", help="folder of image + JSON pairs (ECG-Image-Kit or render_folder output)")
    p.add_argument("--n", type=int, default=8, help="number of pages")
    p.add_argument("--out", required=True, help="output PNG")
    p.add_argument("--no-augment", action="store_true")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--columns", type=int, default=4)
    p.add_argument("--tile-width", type=int, default=550)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    pages: list[RenderedPage] = []
    if args.records:
        from paperecg.render.dataset import RenderedPageDataset, find_record_paths

        records = find_record_paths(args.records)
        if not records:
            print(f"no records under {args.records}", file=sys.stderr)
            return 1
        ds = RenderedPageDataset(records, augment=not args.no_augment, seed=args.seed)
        rng = np.random.default_rng(args.seed)
        idx = rng.choice(len(ds), size=min(args.n, len(ds)), replace=False)
        pages = [ds[int(i)] for i in idx]
    else:
        from paperecg.render.dataset import find_eik_pages
        from paperecg.render.eik import load_eik_page

        pairs = find_eik_pages(args.pages)[: args.n]
        if not pairs:
            print(f"no image + JSON pairs under {args.pages}", file=sys.stderr)
            return 1
        pages = [load_eik_page(img, js) for img, js in pairs]
    sheet = contact_sheet(pages, args.columns, args.tile_width)
    cv2.imwrite(args.out, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(json.dumps({"pages": len(pages), "out": args.out, "size": [int(sheet.shape[1]), int(sheet.shape[0])]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
