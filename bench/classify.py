"""Classification benchmark on an ECG-Image-Kit folder (e.g. ../shared/data/eik-dev/clean).

    python bench/classify.py --eik DIR --model MODEL_DIR [--signal-dir DIGITIZED_DIR] [--limit N]

Signal branch input: by default the folder's own reference signal, which is masked like the page (NaN where
not plotted) -- an ORACLE digitization, reported as signal_source "oracle-masked-reference". With
--signal-dir the signals come from a digitizer's output folder (same relative record names). The classifier
sees no age or sex (as on the organizers' hidden headers) unless --demographics.
The fused labels are written as challenge outputs and scored with the project's evaluate_model.py when it
exists (else paperecg.score, else the same macro F computed here). Last line: one JSON object.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from paperecg.classify.model import Classifier, decide  # noqa: E402
from paperecg.classify.thresholds import macro_f  # noqa: E402
from paperecg.records.images import load_pages  # noqa: E402
from paperecg.records.io import find_records, image_paths, load_header, load_header_info, load_signal, save_outputs  # noqa: E402
from paperecg.records.labels import CLASSES, labels_to_multi_hot  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def hidden_header(text: str) -> str:
    """The header as the organizers give it at inference: without its '# Labels:' line (else the copied
    header would carry the answer into the output)."""
    return "\n".join(l for l in text.split("\n") if not l.replace(" ", "").startswith("#Labels:"))


def score_with_evaluator(ref_dir: str, out_dir: str) -> tuple[float | None, str]:
    """Macro F from the project's evaluate_model.py (the organizers' scorer), or paperecg.score."""
    script = os.path.join(REPO, "evaluate_model.py")
    if os.path.isfile(script):
        res = subprocess.run([sys.executable, script, "-d", ref_dir, "-o", out_dir], capture_output=True, text=True)
        m = re.search(r"F-measure:\s*([-0-9.naN]+)", res.stdout)
        if m:
            try:
                return float(m.group(1)), "evaluate_model.py"
            except ValueError:
                pass
    try:
        from paperecg.score import evaluate_folders  # type: ignore

        result = evaluate_folders(ref_dir, out_dir)
        f = result.get("macro_f") if isinstance(result, dict) else getattr(result, "macro_f", None)
        if f is not None:
            return float(f), "paperecg.score.evaluate_folders"
    except Exception:
        pass
    return None, "none"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--eik", required=True, help="folder of ECG-Image-Kit records (.hea/.dat + images)")
    ap.add_argument("--model", required=True, help="classifier model folder")
    ap.add_argument("--signal-dir", default=None, help="digitized signals (default: masked reference = oracle)")
    ap.add_argument("--limit", type=int, default=None, help="first N records only")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--demographics", action="store_true",
                    help="let the classifier see age and sex (hidden test headers have neither; default: hidden)")
    a = ap.parse_args(argv)

    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    t0 = time.time()
    clf = Classifier.load(a.model, device="cpu" if not torch.cuda.is_available() else None)
    records = find_records(a.eik)[: a.limit]
    truth, p_sig, p_img, fused_pred, sig_pred, img_pred = [], [], [], [], [], []
    cfg = clf.cfg
    with tempfile.TemporaryDirectory() as out_dir, tempfile.TemporaryDirectory() as ref_dir:
        for rel in records:
            rec = os.path.join(a.eik, rel)
            info = load_header_info(rec)
            if info.labels is None:
                continue
            pages = [p.rgb for p in load_pages(image_paths(rec, info))]
            src = os.path.join(a.signal_dir, rel) if a.signal_dir else rec
            try:
                signal, _ = load_signal(src)
            except Exception:
                signal = None
            # the organizers' hidden headers carry no demographics: classify as run_model would see the record
            seen = info if a.demographics else dataclasses.replace(info, age=None, sex=None)
            probs = clf.branch_probs(pages, signal, seen)
            labels = clf.decide_probs(probs["signal"], probs["image"], probs.get("fusion"))
            truth.append(info.labels)
            zero = np.zeros(len(CLASSES))
            fused_pred.append(labels)
            sig_pred.append(decide(probs["signal"], cfg.thresholds_signal, cfg.trained_classes, cfg.at_least_one)
                            if probs["signal"] is not None else zero.astype(bool))
            img_pred.append(decide(probs["image"], cfg.thresholds_image, cfg.trained_classes, cfg.at_least_one)
                            if probs["image"] is not None else zero.astype(bool))
            # outputs and a header-only reference copy for the evaluator (it never needs the images)
            save_outputs(os.path.join(out_dir, rel), hidden_header(load_header(rec)), None, labels)
            os.makedirs(os.path.dirname(os.path.join(ref_dir, rel)) or ref_dir, exist_ok=True)
            with open(os.path.join(ref_dir, rel + ".hea"), "w") as f:
                f.write(load_header(rec))
        y = labels_to_multi_hot(truth)
        f_fused_local, per_class = macro_f(labels_to_multi_hot(fused_pred), y)
        f_eval, scorer = score_with_evaluator(ref_dir, out_dir)
    f_sig, per_sig = macro_f(np.array(sig_pred), y)
    f_img, per_img = macro_f(np.array(img_pred), y)
    clean = lambda v: None if v is None or not np.isfinite(v) else round(float(v), 4)
    result = {
        "bench": "classify",
        "eik": os.path.abspath(a.eik),
        "model": os.path.abspath(a.model),
        "records": len(truth),
        "signal_source": "digitized:" + os.path.abspath(a.signal_dir) if a.signal_dir else "oracle-masked-reference",
        "demographics": bool(a.demographics),
        "macro_f": clean(f_eval if f_eval is not None else f_fused_local),
        "scorer": scorer if f_eval is not None else "paperecg.classify.thresholds.macro_f",
        "macro_f_local": clean(f_fused_local),
        "macro_f_signal": clean(f_sig),
        "macro_f_image": clean(f_img) if cfg.has_image_model else None,
        "fusion_weight_signal": cfg.fusion_weight_signal,
        "measurement_fusion": clf.fusion is not None,
        "per_class": {c: clean(v) for c, v in zip(CLASSES, per_class) if np.isfinite(v)},
        "per_class_signal": {c: clean(v) for c, v in zip(CLASSES, per_sig) if np.isfinite(v)},
        "per_class_image": ({c: clean(v) for c, v in zip(CLASSES, per_img) if np.isfinite(v)}
                            if cfg.has_image_model else None),
        "seconds": round(time.time() - t0, 1),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
