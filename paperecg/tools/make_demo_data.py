"""Generate a challenge-format demo set from synthetic signals (no external data needed).

    python -m paperecg.tools.make_demo_data --out DIR [--records 24] [--seed 0] [--augment]

Each record: WFDB signal (250 or 500 Hz, 10 s) masked like the challenge's references (NaN where the page
does not show a lead), '# Labels:' from its synthetic rhythm, one rendered page image named in '# Image:',
and the page's JSON sidecar (ECG-Image-Kit key names) beside it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
from PIL import Image
from tqdm import tqdm

from paperecg.records.io import write_record
from paperecg.records.synthetic import LEAD_NAMES, synthetic_ecg, synthetic_record_set
from paperecg.render.augment import augment_page
from paperecg.render.page import random_style, render_page


def plotted_mask(page, num_samples: int, lead_names: list[str]) -> np.ndarray:
    """True where the page shows that lead's sample (the challenge masks references the same way)."""
    keys = [n.casefold() for n in lead_names]
    shown = np.zeros((num_samples, len(lead_names)), dtype=bool)
    for t in page.leads:
        if t.name.casefold() in keys:
            shown[t.start_sample:t.end_sample, keys.index(t.name.casefold())] = True
    return shown


def make_demo_data(out: str, records: int = 24, seed: int = 0, augment: bool = False, verbose: bool = True) -> list[str]:
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i, (rhythm, labels) in enumerate(tqdm(synthetic_record_set(records, seed), disable=not verbose,
                                               desc="demo data")):
        name = f"demo_{i:05d}"
        fs_hz = float(rng.choice([250.0, 500.0]))
        signal = synthetic_ecg(fs_hz, 10.0, rhythm, seed=int(rng.integers(1 << 31)))
        page = render_page(signal, fs_hz, LEAD_NAMES, random_style(rng, dpi=200.0), rng)
        if augment:
            page = augment_page(page, rng, strength=0.5, rotate_max_deg=3.0)
        image_name = f"{name}-0.png"
        Image.fromarray(page.image).save(os.path.join(out, image_name))
        with open(os.path.join(out, f"{name}-0.json"), "w") as f:
            json.dump(page.to_json(), f)
        masked = np.where(plotted_mask(page, len(signal), LEAD_NAMES), signal, np.nan)
        comments = ["Age: Unknown", "Sex: Unknown", "Labels: " + ", ".join(labels), f"Image: {image_name}"]
        paths.append(write_record(out, name, masked, fs_hz, LEAD_NAMES, comments))
    return paths


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--records", type=int, default=24)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--augment", action="store_true", help="rotate/warp/noise the pages a little")
    a = p.parse_args(argv)
    make_demo_data(a.out, a.records, a.seed, a.augment)
    print(f"wrote {a.records} records to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
