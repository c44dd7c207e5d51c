"""The main job on generated data: synthetic records -> printed pages -> the shipped model -> scores,
overlays and a short report. Needs no external data.

    python -m paperecg.tools.demo --out demo_out [--model model] [--records 12] [--seed 0]

Writes OUT/data (records with references and page images), OUT/hidden (what inference sees),
OUT/outputs (WFDB signals + labels, as run_model.py writes them), OUT/overlays/*.png (the digitized trace
drawn back over each page as given, one colour per lead, per-lead SNR), OUT/report.md and OUT/scores.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
from PIL import Image
from tqdm import tqdm

from paperecg.pipeline import entry
from paperecg.pipeline.overlay import overlay_on_original
from paperecg.records.io import find_records, load_header, load_header_info, save_outputs
from paperecg.score.evaluate import evaluate_folders
from paperecg.tools.hidden_view import make_hidden_view
from paperecg.tools.make_demo_data import make_demo_data


def run_records(hidden: str, outputs: str, model: str) -> dict[str, list]:
    """run_model.py's loop in-process (so the page diagnostics are at hand); returns per-record page results."""
    digitizer, classifier = entry.load(model)
    pages = {}
    for rel in tqdm(find_records(hidden), desc="digitizing"):
        record = os.path.join(hidden, rel)
        out = entry.run_record(record, digitizer, classifier)
        save_outputs(os.path.join(outputs, rel), load_header(record), out.signal, out.labels)
        pages[rel] = (out.signal, out.pages)
    return pages


def write_overlays(pages: dict, hidden: str, overlays: str, per_lead) -> list[str]:
    os.makedirs(overlays, exist_ok=True)
    written = []
    for rel, (signal, results) in pages.items():
        header = load_header_info(os.path.join(hidden, rel))
        snr = {s.lead: s.snr_db for s in per_lead if s.record == rel}
        for i, res in enumerate(results):
            if res.extraction is None or res.rectified is None:
                continue
            canvas = overlay_on_original(res.page.rgb, res.rectified, res.extraction, signal, header.fs_hz,
                                         header.lead_names, snr)
            path = os.path.join(overlays, f"{os.path.basename(rel)}-{i}.png")
            Image.fromarray(canvas).save(path)
            written.append(path)
    return written


def report(scores: dict, data: str, outputs: str, overlays: list[str], seconds: float, model: str) -> str:
    per_lead = scores["per_lead"]
    lines = [
        "# paperecg demo report", "",
        f"Model: `{model}`. Records: {scores['num_records']}. Wall time: {seconds:.1f} s.", "",
        f"- **SNR: {scores['snr']:.3f} dB** (challenge scoring, mean over record x lead)",
        f"- **F-measure: {scores['f_measure']:.3f}** (macro over the classes present)", "",
        "## Per lead (mean SNR over records, dB)", "", "| lead | SNR | abstained |", "|---|---|---|",
    ]
    leads = list(dict.fromkeys(s.lead for s in per_lead))  # first-seen (header) order
    for lead in leads:
        vals = [s.snr_db for s in per_lead if s.lead == lead and np.isfinite(s.snr_db)]
        abst = sum(1 for s in per_lead if s.lead == lead and s.coverage == 0)
        lines.append(f"| {lead} | {np.mean(vals):.2f} | {abst} |" if vals else f"| {lead} | - | {abst} |")
    lines += ["", "## Per class", "", "| class | F | TP | FP | FN |", "|---|---|---|---|---|"]
    for c, t in scores["per_class"].items():
        lines.append(f"| {c} | {t['f_measure']:.3f} | {t['tp']} | {t['fp']} | {t['fn']} |")
    lines += ["", "## Per record", "", "| record | SNR | true labels | predicted |", "|---|---|---|---|"]
    for rel in find_records(data):
        vals = [s.snr_db for s in per_lead if s.record == rel and np.isfinite(s.snr_db)]
        true = load_header_info(os.path.join(data, rel)).labels or []
        pred = load_header_info(os.path.join(outputs, rel)).labels or []
        lines.append(f"| {rel} | {np.mean(vals):.2f} | {', '.join(true)} | {', '.join(pred)} |" if vals else
                     f"| {rel} | - | {', '.join(true)} | {', '.join(pred)} |")
    lines += ["", "## Overlays", "", "The digitized trace (one colour per lead, thin and see-through) over each page, with per-lead SNR:", ""]
    lines += [f"- `{os.path.relpath(p, os.path.dirname(outputs))}`" for p in overlays]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="demo_out")
    p.add_argument("--model", default=os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "model"))
    p.add_argument("--records", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if not os.path.isfile(os.path.join(a.model, "prevalence.json")):
        p.error(f"no trained model in {a.model}: train one with `python train_model.py -d DATA -m {a.model}`")
    t0 = time.time()
    data, hidden, outputs = (os.path.join(a.out, d) for d in ("data", "hidden", "outputs"))
    make_demo_data(data, a.records, a.seed, augment=True)
    make_hidden_view(data, hidden)
    pages = run_records(hidden, outputs, a.model)
    scores = evaluate_folders(data, outputs)
    overlays = write_overlays(pages, hidden, os.path.join(a.out, "overlays"), scores["per_lead"])
    text = report(scores, data, outputs, overlays, time.time() - t0, a.model)
    with open(os.path.join(a.out, "report.md"), "w") as f:
        f.write(text)
    with open(os.path.join(a.out, "scores.json"), "w") as f:
        json.dump({"snr_db": scores["snr"], "macro_f": scores["f_measure"], "records": scores["num_records"]}, f)
    print(f"SNR: {scores['snr']:.3f}\nF-measure: {scores['f_measure']:.3f}")
    print(f"report: {os.path.join(a.out, 'report.md')}; overlays: {len(overlays)} in {os.path.join(a.out, 'overlays')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
