"""How much a set of photographed pages looks like a phone's photos: statistics of the trace, grid and light,
measured the same way on real photos, ECG-Image-Kit's synthetic photos and our renderer's photographed pages.

Every page goes through the shipped pipeline's first two stages (rectify_page: the canonical 200-dpi page;
the segmenter's map locates the trace), then, on the canonical page's grey levels:
- darkness D = (paper - grey) / paper, paper = the local light level (a max filter over the grid's pitch,
  smoothed), so the light of the photo cancels;
- steep_contrast: median darkness of the trace where it is steep (line within 20 deg of vertical: QRS
  strokes) over its median darkness where it is flat (within 20 deg of horizontal: baseline). A phone's
  photo makes steep strokes fainter than flat ones; a clean print gives about 1;
- flat_dark, steep_dark: those two medians (0: invisible, 1: black);
- flat_width_mm, steep_width_mm: full width at half darkness across the stroke, in mm of paper;
- edge_mm: 10-90 % rise of the flat stroke's profile (blur), mm;
- grid_to_trace: darkness of the grid (95th percentile off the trace, inside the trace rows) over flat_dark;
- light_uneven: (p95 - p5) / median of the paper level over 10-mm tiles of the page;
- noise: std of grey minus its 1-px Gaussian on blank paper, in grey levels.
Folds and curl (the grid's bending) are measured by the frame's own benchmark (bench/rectify_frame.py).

    python bench/photo_realism.py --images ../shared/data/photos-real --images ../shared/data/photos-real-ref \
        --images ../shared/data/eik-dev/photo --ours ../shared/data/ptbxl/records100 --n 16 --cache DIR

Each --images folder and --ours is one set; the table gives per-set medians (and p25-p75) over pages.
Last line: one JSON object {set: {statistic: median}}.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

CANON_PX_PER_MM = 200.0 / 25.4
STATS = ("steep_contrast", "flat_dark", "steep_dark", "flat_width_mm", "steep_width_mm", "edge_mm",
         "grid_to_trace", "light_uneven", "noise")
PROFILE_HALF_PX = 8
MAX_PROFILES = 4000


# --- statistics on one canonical page -----------------------------------------------------------------

def paper_level(grey: np.ndarray) -> np.ndarray:
    """Local paper brightness: the brightest level within a grid pitch (lines and trace are thinner), smoothed."""
    k = int(round(1.2 * CANON_PX_PER_MM)) | 1
    top = cv2.dilate(grey, np.ones((k, k), np.uint8))
    return cv2.GaussianBlur(top.astype(np.float32), (0, 0), 6.0)


def darkness(grey: np.ndarray, paper: np.ndarray) -> np.ndarray:
    return np.clip((paper - grey.astype(np.float32)) / np.maximum(paper, 1.0), 0.0, 1.0)


def line_normal_angle(trace_map: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(angle of the line's normal from the x axis in degrees, 0..90; coherence 0..1) from the map's
    structure tensor: a steep stroke has a near-horizontal normal."""
    m = cv2.GaussianBlur(trace_map.astype(np.float32), (0, 0), 1.0)
    gx = cv2.Sobel(m, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(m, cv2.CV_32F, 0, 1, ksize=3)
    jxx = cv2.GaussianBlur(gx * gx, (0, 0), 3.0)
    jyy = cv2.GaussianBlur(gy * gy, (0, 0), 3.0)
    jxy = cv2.GaussianBlur(gx * gy, (0, 0), 3.0)
    phi = 0.5 * np.degrees(np.arctan2(2 * jxy, jxx - jyy))
    coh = np.sqrt((jxx - jyy) ** 2 + 4 * jxy ** 2) / np.maximum(jxx + jyy, 1e-9)
    return np.abs(phi), coh


def profile_widths(profiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(full width at half maximum, mean 10-90 % edge width) in px of darkness profiles (N, 2k+1) centred
    near their peak; NaN where a profile does not fall to half on both sides."""
    n, L = profiles.shape
    c = L // 2
    fw = np.full(n, np.nan)
    edge = np.full(n, np.nan)
    for i in range(n):
        p = profiles[i]
        j = c - 2 + int(np.argmax(p[c - 2:c + 3]))
        peak = p[j]
        if peak <= 0.05:
            continue
        base = min(p[:j + 1].min(), p[j:].min())
        amp = peak - base
        if amp <= 0.05:
            continue

        def cross(level: float, step: int) -> float:
            k = j
            while 0 <= k + step < L and p[k + step] > base + level * amp:
                k += step
            if not 0 <= k + step < L:
                return np.nan
            a, b = p[k] - base, p[k + step] - base
            return k + step * (a - level * amp) / max(a - b, 1e-9)

        left, right = cross(0.5, -1), cross(0.5, 1)
        fw[i] = right - left
        e = [abs(cross(0.1, s) - cross(0.9, s)) for s in (-1, 1)]
        edge[i] = float(np.mean(e))
    return fw, edge


def page_stats(rgb: np.ndarray, trace_map: np.ndarray, rng: np.random.Generator) -> dict[str, float]:
    """The statistics of one canonical page (uint8 RGB) and its trace map (float 0..1, page px)."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    paper = paper_level(grey)
    dark = darkness(grey, paper)
    mask = trace_map > 0.5
    out = {k: float("nan") for k in STATS}
    if mask.sum() < 500:
        return out
    normal_deg, coh = line_normal_angle(trace_map)
    # the darkest pixel beside each map pixel: the map's band is wider than a thin stroke's core
    dmax = cv2.dilate(dark, np.ones((3, 3), np.uint8))
    coherent = mask & (coh > 0.5)
    steep = coherent & (normal_deg < 20)
    flat = coherent & (normal_deg > 70)
    h, w = grey.shape
    k = PROFILE_HALF_PX
    inner = np.zeros_like(mask)
    inner[k:h - k, k:w - k] = True
    if flat.sum() >= 50:
        out["flat_dark"] = float(np.median(dmax[flat]))
    if steep.sum() >= 20:
        out["steep_dark"] = float(np.median(dmax[steep]))
    out["steep_contrast"] = out["steep_dark"] / out["flat_dark"] if out["flat_dark"] > 0 else float("nan")
    offs = np.arange(-k, k + 1)
    for name, sel, vertical in (("flat", flat & inner, True), ("steep", steep & inner, False)):
        rc = np.argwhere(sel)
        if len(rc) < 20:
            continue
        if len(rc) > MAX_PROFILES:
            rc = rc[rng.choice(len(rc), MAX_PROFILES, replace=False)]
        if vertical:
            prof = dark[rc[:, 0:1] + offs[None, :], rc[:, 1:2]]
        else:
            prof = dark[rc[:, 0:1], rc[:, 1:2] + offs[None, :]]
        fw, edge = profile_widths(prof)
        if np.isfinite(fw).sum() >= 10:
            out[f"{name}_width_mm"] = float(np.nanmedian(fw)) / CANON_PX_PER_MM
        if vertical and np.isfinite(edge).sum() >= 10:
            out["edge_mm"] = float(np.nanmedian(edge)) / CANON_PX_PER_MM
    # grid: off the trace, within the rows that hold trace
    rows = np.flatnonzero(mask.any(axis=1))
    near = cv2.dilate(mask.astype(np.uint8), np.ones((15, 15), np.uint8)) > 0
    band = np.zeros_like(mask)
    band[rows.min():rows.max() + 1] = True
    off = band & ~near & (paper > 0.5 * np.percentile(paper, 90))
    if off.sum() > 1000 and out["flat_dark"] > 0:
        out["grid_to_trace"] = float(np.percentile(dark[off], 95)) / out["flat_dark"]
    # light: the paper level on 10-mm tiles of the page (tiles of table or dark border left out)
    t = int(round(10 * CANON_PX_PER_MM))
    tiles = np.array([np.median(paper[r:r + t, c:c + t])
                      for r in range(0, h - t + 1, t) for c in range(0, w - t + 1, t)])
    tiles = tiles[tiles > 0.6 * np.percentile(tiles, 90)]
    if len(tiles) >= 10:
        p5, p50, p95 = np.percentile(tiles, [5, 50, 95])
        out["light_uneven"] = float((p95 - p5) / max(p50, 1.0))
    # noise on blank paper: no line within 2 px
    blank = cv2.erode((dark < 0.04).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    if blank.sum() > 1000:
        resid = grey.astype(np.float32) - cv2.GaussianBlur(grey.astype(np.float32), (0, 0), 1.0)
        out["noise"] = float(np.std(resid[blank]))
    return out


# --- pages --------------------------------------------------------------------------------------------

def canonical_page(image_rgb: np.ndarray, detector, segmenter) -> tuple[np.ndarray, np.ndarray]:
    from paperecg.rectify.rectify import rectify_page

    rect = rectify_page(image_rgb, detector)
    return rect.image, segmenter.predict(rect.image)


def cached_canonical(key: str, make_image, detector, segmenter, cache: str | None) -> tuple[np.ndarray, np.ndarray]:
    path = None
    if cache:
        os.makedirs(cache, exist_ok=True)
        path = os.path.join(cache, hashlib.sha1(key.encode()).hexdigest()[:16] + ".npz")
        if os.path.isfile(path):
            z = np.load(path)
            return z["image"], z["map"].astype(np.float32) / 255.0
    image, trace_map = canonical_page(make_image(), detector, segmenter)
    if path:
        np.savez_compressed(path, image=image, map=np.round(trace_map * 255).astype(np.uint8))
    return image, trace_map


def image_files(folder: str, limit: int) -> list[str]:
    from paperecg.records.images import IMAGE_EXTENSIONS

    files = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                   if os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS)
    return files[:limit] if limit else files


def our_photo(records: list[str], index: int, seed: int) -> np.ndarray:
    """Our renderer's photographed training page number `index` (a 3x4+1 page at the resolutions the
    segmenter's training photographs)."""
    from paperecg.render.dataset import render_training_page
    from paperecg.segment.data import RenderSettings

    rng = np.random.default_rng([seed, index])
    record = records[int(rng.integers(len(records)))]
    settings = RenderSettings()
    # the resolutions the segmenter's training photographs (before photo_dpi_choices: all of dpi_choices)
    dpi = float(rng.choice(getattr(settings, "photo_dpi_choices", settings.dpi_choices)))
    return render_training_page(record, rng, augment=True, layouts=["3x4+1"], dpi=dpi, photo_prob=1.0).image


def summarise(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    out = {}
    for k in STATS:
        v = np.array([r[k] for r in rows], float)
        v = v[np.isfinite(v)]
        out[k] = ({"median": float(np.median(v)), "p25": float(np.percentile(v, 25)),
                   "p75": float(np.percentile(v, 75)), "n": int(len(v))} if len(v) else
                  {"median": float("nan"), "p25": float("nan"), "p75": float("nan"), "n": 0})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", action="append", default=[], help="a folder of photos (one set each)")
    ap.add_argument("--ours", default=None, help="records folder: our renderer's photographed pages are a set")
    ap.add_argument("--ours-name", default="ours", help="name of that set in the table")
    ap.add_argument("--n", type=int, default=16, help="how many of our pages")
    ap.add_argument("--seed", type=int, default=2027)
    ap.add_argument("--limit", type=int, default=0, help="first N photos of each folder (0 = all)")
    ap.add_argument("--model", default=os.path.join(ROOT, "model"))
    ap.add_argument("--cache", default=None, help="folder for canonical pages and maps (keyed by path/seed)")
    ap.add_argument("--per-page", action="store_true", help="print every page's statistics")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(int(os.environ.get("PAPERECG_THREADS", "2")))
    cv2.setNumThreads(1)
    from paperecg.records.images import load_page
    from paperecg.rectify.detector import LeadNameDetector
    from paperecg.segment.infer import Segmenter

    detector = LeadNameDetector.load(os.path.join(args.model, "detector"))
    segmenter = Segmenter.load(os.path.join(args.model, "segmenter"), device="cpu")
    sets: dict[str, list[tuple[str, object]]] = {}
    for folder in args.images:
        name = os.path.basename(os.path.normpath(folder))
        if name == "photo":
            name = "eik-photo"
        sets[name] = [(p, (lambda p=p: load_page(p).rgb)) for p in image_files(folder, args.limit)]
    if args.ours:
        from paperecg.render.dataset import find_record_paths

        records = find_record_paths(args.ours)
        # the cache key includes the renderer's source: a changed renderer makes new pages
        src = "".join(open(os.path.join(ROOT, "paperecg", f)).read()
                      for f in ("render/photo.py", "render/augment.py", "segment/data.py"))
        tag = hashlib.sha1(src.encode()).hexdigest()[:8]
        sets[args.ours_name] = [(f"ours:{tag}:{args.seed}:{i}", (lambda i=i: our_photo(records, i, args.seed)))
                                for i in range(args.n)]
    results: dict[str, dict] = {}
    for name, items in sets.items():
        rows = []
        for key, make in items:
            image, trace_map = cached_canonical(key, make, detector, segmenter, args.cache)
            st = page_stats(image, trace_map, np.random.default_rng(0))
            rows.append(st)
            if args.per_page:
                print(name, os.path.basename(key), " ".join(f"{k}={v:.3f}" for k, v in st.items()), flush=True)
        results[name] = summarise(rows)
    print(f"{'statistic':16s}" + "".join(f"{n:>22s}" for n in results))
    for k in STATS:
        cells = "".join(f"{r[k]['median']:8.3f} ({r[k]['p25']:.2f}-{r[k]['p75']:.2f})" for r in results.values())
        print(f"{k:16s}{cells}")
    print(json.dumps({n: {k: round(r[k]["median"], 4) for k in STATS} for n, r in results.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
