"""Extract the signals of every record in a folder from its page images' trace maps; write WFDB outputs.

For each record (a header naming its images): a trace map per image from one of
  --maps json       the ECG-Image-Kit / own-render JSON beside the image (oracle: plotted pixels drawn as a
                    mask; its lead-name boxes are used unless --no-boxes),
  --maps png        a grey PNG beside the image, `<image stem><suffix>` (0..255 = trace probability),
  --maps segmenter  the trained segmenter in --segmenter DIR (`paperecg.segment`), on the image itself,
                    after `paperecg.rectify.rectify_page` (with the lead-name detector in --detector DIR,
                    whose boxes then name the leads; without it, tilt from the page's lines only);
then `extract_signal` with the header's fs, length and lead names. With several images, each lead is
taken from the image whose extraction is most confident for it. Outputs mirror run_model.py's: the input
header copied, the signal written with its format, gains and comment lines.

  python -m paperecg.tools.extract_folder -i DATA -o OUTPUT [--maps json|png|segmenter] [--no-boxes]
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from ..extract import extract_signal
from ..geometry import LeadNameBox
from ..layouts import canonical_lead_name
from ..records.images import load_page
from ..records.io import find_records, image_paths, load_header, load_header_info, sanitize_signal, save_outputs


def trace_map_from_json(image_path: str, soft: bool = False) -> tuple[np.ndarray, np.ndarray, list[LeadNameBox]] | None:
    """(trace map, image, lead-name boxes) from the JSON beside an image, or None without one."""
    json_path = os.path.splitext(image_path)[0] + ".json"
    if not os.path.isfile(json_path):
        return None
    from ..render.eik import load_eik_page

    page = load_eik_page(image_path, json_path, fit_baselines=False)
    tmap = page.trace_alpha.astype(np.float32) / 255.0 if (soft and page.trace_alpha is not None) \
        else page.trace_mask.astype(np.float32)
    return tmap, page.image, page.lead_name_boxes()


def trace_map_from_png(image_path: str, suffix: str) -> np.ndarray | None:
    path = os.path.splitext(image_path)[0] + suffix
    if not os.path.isfile(path):
        return None
    grey = load_page(path).rgb[..., 0].astype(np.float32)
    return grey / 255.0


def best_per_lead(signals: list[np.ndarray], confidences: list[dict[str, float]], lead_names: list[str]) -> np.ndarray:
    """Per lead, the signal of the most confident extraction (ties: the first)."""
    out = np.full(signals[0].shape, np.nan)
    for j, name in enumerate(lead_names):
        key = canonical_lead_name(name)
        scores = [c.get(key, 0.0) if np.isfinite(s[:, j]).any() else -1.0 for s, c in zip(signals, confidences)]
        out[:, j] = signals[int(np.argmax(scores))][:, j]
    return out


def segment_page(image: np.ndarray, segmenter, detector=None) -> tuple[np.ndarray, np.ndarray, list[LeadNameBox]]:
    """Rectify (upright, untilted) then segment: (working-frame trace map, rectified image, lead-name boxes);
    extract_signal brings the map onto the page and sharpens it with the page's ink."""
    from ..rectify import rectify_page
    from ..rectify.grid import light_paper

    rect = rectify_page(image, detector)
    page = light_paper(rect.image)  # a monitor page is read as ink on paper
    return segmenter.predict_work(page)[0], page, list(rect.lead_name_boxes or [])


def extract_record(record: str, maps: str, suffix: str = "_mask.png", use_boxes: bool = True,
                   segmenter=None, soft: bool = False, detector=None) -> np.ndarray | None:
    """(num_samples, num_leads) mV for one record, or None when no image gave a trace map."""
    info = load_header_info(record)
    signals, confidences = [], []
    for path in image_paths(record, info):
        if not os.path.isfile(path):
            continue
        boxes = None
        if maps == "json":
            got = trace_map_from_json(path, soft)
            if got is None:
                continue
            tmap, image, boxes = got
        elif maps == "png":
            image = load_page(path).rgb
            tmap = trace_map_from_png(path, suffix)
            if tmap is None:
                continue
        else:
            tmap, image, boxes = segment_page(load_page(path).rgb, segmenter, detector)
            boxes = boxes or None
        ex = extract_signal(tmap, image, info.fs_hz, info.num_samples, info.lead_names,
                            boxes if use_boxes else None)
        signals.append(ex.signal)
        confidences.append(ex.lead_confidence)
    if not signals:
        return None
    signal = best_per_lead(signals, confidences, info.lead_names)
    return sanitize_signal(signal, info.num_samples, info.num_leads, info.adc_gains, info.baselines, info.formats)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-i", "--input", required=True, help="folder of records (headers naming their images)")
    ap.add_argument("-o", "--output", required=True, help="folder for the WFDB outputs")
    ap.add_argument("--maps", choices=("json", "png", "segmenter"), default="json", help="source of trace maps")
    ap.add_argument("--suffix", default="_mask.png", help="file name ending of PNG trace maps (--maps png)")
    ap.add_argument("--segmenter", default=None, help="segmenter folder (--maps segmenter)")
    ap.add_argument("--detector", default=None, help="lead-name detector folder (--maps segmenter; optional)")
    ap.add_argument("--soft", action="store_true", help="json maps: anti-aliased coverage instead of a mask")
    ap.add_argument("--no-boxes", action="store_true", help="ignore lead-name boxes (layout from row count)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)

    segmenter = detector = None
    if args.maps == "segmenter":
        if not args.segmenter:
            ap.error("--maps segmenter needs --segmenter DIR")
        from ..segment import Segmenter  # the trained model; only needed in this mode

        segmenter = Segmenter.load(args.segmenter)
        if args.detector:
            from ..rectify import LeadNameDetector

            detector = LeadNameDetector.load(args.detector)
    records = find_records(args.input)
    if not records:
        print(f"no records in {args.input}", file=sys.stderr)
        return 1
    from tqdm import tqdm

    written = 0
    for rel in tqdm(records, desc="extracting", unit="record", disable=not args.verbose):
        record = os.path.join(args.input, rel)
        try:
            signal = extract_record(record, args.maps, args.suffix, not args.no_boxes, segmenter, args.soft,
                                    detector)
        except Exception as e:  # one bad page must not stop the folder
            print(f"{rel}: {type(e).__name__}: {e}", file=sys.stderr)
            signal = None
        save_outputs(os.path.join(args.output, rel), load_header(record), signal, None)
        written += signal is not None
    print(f"{written}/{len(records)} records with a signal written to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
