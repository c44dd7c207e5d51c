"""A corpus of bad inputs for the organizers' harness, and the check of what run_model.py wrote for it.

    python -m paperecg.tools.bad_inputs make  --out DIR
    python -m paperecg.tools.bad_inputs check --data DIR/corpus --outputs OUT [--rejected-log LOG ...]

`make` writes DIR/corpus/<case>/<case>.hea (+ images), one folder per case, headers as the hidden test set has
them (no signal files, no labels), pages printed from synthetic signals like make_demo_data's; and
DIR/rejected/<case>/ for the two kinds the organizers' own code rejects (a Latin-1 comment, a space in the
record's name), each to be run on its own because they stop the organizers' loop.

`check` prints one line per case and a summary, and exits 1 if any corpus record lacks a loadable output:
the header copy with a '# Labels:' line, and, where the header describes a signal the save step can write, a
WFDB signal of the header's shape with no infinite value and every stored sample inside its format's range.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

import numpy as np
from PIL import Image

from paperecg.records.header import LABELS_PREFIX, get_num_signals, get_signal_formats
from paperecg.records.io import find_records, save_step_accepts, storable_counts
from paperecg.records.synthetic import LEAD_NAMES, synthetic_ecg
from paperecg.render.page import random_style, render_page

PAGE_DPI = 200.0  # the challenge's pages are about 2200 x 1700 px
REJECTED_KINDS = ("latin1_comment", "name with spaces")


@dataclass
class Case:
    kind: str
    folder: str  # holds the case's record(s)
    rejected: bool = False  # the organizers' own code stops on it: reported, not failed


# --- pages and headers -----------------------------------------------------------------------------------

def printed_page(fs_hz: float, seed: int) -> np.ndarray:
    """uint8 RGB page of a synthetic 12-lead record, 10 s at fs_hz."""
    rng = np.random.default_rng(seed)
    signal = synthetic_ecg(fs_hz, 10.0, "NORM", seed)
    return render_page(signal, fs_hz, LEAD_NAMES, random_style(rng, dpi=PAGE_DPI), rng).image


def hidden_header(name: str, fs_hz: float, num_samples: int | None, lead_names: list[str],
                  images: list[str] | None, fmt: str = "16", gain_field: str = "1000(0)/mV",
                  comments: tuple[str, ...] = ()) -> str:
    """Header text as the hidden test set writes it: init value, checksum and block size left blank."""
    record = f"{name} {len(lead_names)} {fs_hz:g}" + (f" {num_samples}" if num_samples is not None else "")
    lines = [record]
    res = "12" if fmt == "212" else "16"
    lines += [f"{name}.dat {fmt} {gain_field} {res} 0    {lead}" for lead in lead_names]
    lines += list(comments)
    if images is not None:
        lines.append("# Image: " + ", ".join(images))
    return "\n".join(lines) + "\n"


def _save(image, path: str, **kw) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(path, **kw)


def _perspective(rgb: np.ndarray, strength: float = 0.15) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    dx, dy = strength * w, strength * h
    dst = np.float32([[dx, dy], [w - 0.3 * dx, 0], [w, h - 0.5 * dy], [0.4 * dx, h]])
    return cv2.warpPerspective(rgb, cv2.getPerspectiveTransform(src, dst), (w, h), borderValue=(255, 255, 255))


# --- the corpus -------------------------------------------------------------------------------------------

def make_bad_corpus(out: str, seed: int = 0) -> list[Case]:
    """Write every case; returns them in order. `out` must not exist or be empty."""
    corpus, rejected = os.path.join(out, "corpus"), os.path.join(out, "rejected")
    os.makedirs(corpus, exist_ok=True)
    os.makedirs(rejected, exist_ok=True)
    pages = {fs: printed_page(fs, seed + int(fs)) for fs in (100.0, 250.0, 500.0, 1000.0)}
    page = pages[500.0]
    cases: list[Case] = []

    def case(kind: str, header: str | bytes, files: dict | None = None, name: str | None = None,
             is_rejected: bool = False) -> None:
        folder = os.path.join(rejected if is_rejected else corpus, kind.replace(" ", "_"))
        os.makedirs(folder, exist_ok=True)
        hea = os.path.join(folder, (name or kind) + ".hea")
        with open(hea, "wb") as f:
            f.write(header if isinstance(header, bytes) else header.encode("utf-8"))
        for rel, writer in (files or {}).items():
            writer(os.path.join(folder, rel))
        cases.append(Case(kind, folder, is_rejected))

    def page_case(kind: str, writer, image: str | None = None, **header_kw) -> None:
        image = image or f"{kind}-0.png"
        case(kind, hidden_header(kind, 500.0, 5000, LEAD_NAMES, [image], **header_kw), {image: writer})

    good = lambda p: _save(page, p)  # noqa: E731
    # image files
    page_case("missing_image", lambda p: None)
    page_case("empty_image", lambda p: open(p, "wb").close())
    page_case("truncated_image", lambda p: (_save(page, p), _truncate(p)))
    page_case("random_bytes", lambda p: open(p, "wb").write(np.random.default_rng(seed).bytes(5000)))
    page_case("text_as_image", lambda p: open(p, "w").write("not an image\n"), image="text_as_image-0.jpg")
    page_case("one_pixel", lambda p: _save(Image.new("RGB", (1, 1), "white"), p))
    page_case("over_pixel_limit", lambda p: _save(Image.new("L", (8000, 7600), 255), p))
    page_case("blank_page", lambda p: _save(np.full_like(page, 255), p))
    page_case("black_page", lambda p: _save(np.zeros_like(page), p))
    page_case("rgba_transparent", lambda p: _save(_transparent_paper(page), p))
    page_case("mode_P", lambda p: _save(Image.fromarray(page).convert("P", palette=Image.Palette.ADAPTIVE), p))
    page_case("mode_I16", lambda p: _save(Image.fromarray(page.min(axis=2).astype(np.uint16) * 257), p))
    page_case("mode_1bit", lambda p: _save(Image.fromarray(page).convert("L").point(lambda v: 255 * (v > 128))
                                           .convert("1"), p))
    page_case("mode_LA", lambda p: _save(Image.fromarray(page).convert("LA"), p))
    page_case("cmyk_jpeg", lambda p: _save(Image.fromarray(page).convert("CMYK"), p, quality=90),
              image="cmyk_jpeg-0.jpg")
    page_case("grey_jpeg", lambda p: _save(Image.fromarray(page).convert("L"), p, quality=90),
              image="grey_jpeg-0.jpg")
    page_case("tiff_page", good, image="tiff_page-0.tiff")
    page_case("bmp_page", good, image="bmp_page-0.bmp")
    page_case("webp_page", lambda p: _save(page, p, quality=90), image="webp_page-0.webp")
    page_case("upper_case_ext", good, image="upper_case_ext-0.PNG")
    page_case("rotated_90", lambda p: _save(np.ascontiguousarray(np.rot90(page, 1)), p))
    page_case("rotated_180", lambda p: _save(np.ascontiguousarray(page[::-1, ::-1]), p))
    page_case("rotated_270", lambda p: _save(np.ascontiguousarray(np.rot90(page, 3)), p))
    page_case("strong_perspective", lambda p: _save(_perspective(page), p))
    page_case("scale_40pct", lambda p: _save(Image.fromarray(page).resize(
        (int(page.shape[1] * 0.4), int(page.shape[0] * 0.4)), Image.Resampling.LANCZOS), p))
    page_case("image_name_with_space", good, image="page one.png")
    # which pages a header names
    case("no_image_line", hidden_header("no_image_line", 500.0, 5000, LEAD_NAMES, None))
    case("two_images", hidden_header("two_images", 500.0, 5000, LEAD_NAMES, ["two_images-0.png", "two_images-1.png"]),
         {"two_images-0.png": good, "two_images-1.png": lambda p: _save(pages[250.0], p)})
    case("image_in_subfolder", hidden_header("image_in_subfolder", 500.0, 5000, LEAD_NAMES, ["pages/p-0.png"]),
         {"pages/p-0.png": good})
    case("second_page_missing", hidden_header("second_page_missing", 500.0, 5000, LEAD_NAMES,
                                              ["second_page_missing-0.png", "second_page_missing-1.png"]),
         {"second_page_missing-0.png": good})
    case("good_plus_garbage", hidden_header("good_plus_garbage", 500.0, 5000, LEAD_NAMES,
                                            ["good_plus_garbage-0.png", "good_plus_garbage-1.png"]),
         {"good_plus_garbage-0.png": good,
          "good_plus_garbage-1.png": lambda p: open(p, "wb").write(np.random.default_rng(1).bytes(4000))})
    case("same_image_twice", hidden_header("same_image_twice", 500.0, 5000, LEAD_NAMES, ["s-0.png", "s-0.png"]),
         {"s-0.png": good})
    case("image_prefix_no_space", hidden_header("image_prefix_no_space", 500.0, 5000, LEAD_NAMES, None)
         + "#Image: image_prefix_no_space-0.png\n", {"image_prefix_no_space-0.png": good})
    # sampling rates and lengths
    for fs in (100.0, 250.0, 500.0, 1000.0):
        kind = f"fs_{fs:g}"
        case(kind, hidden_header(kind, fs, int(10 * fs), LEAD_NAMES, [f"{kind}-0.png"]),
             {f"{kind}-0.png": (lambda img: lambda p: _save(img, p))(pages[fs])})
    page_case_header = lambda kind, text: case(kind, text, {f"{kind}-0.png": good})  # noqa: E731
    page_case_header("one_sample", hidden_header("one_sample", 500.0, 1, LEAD_NAMES, ["one_sample-0.png"]))
    page_case_header("no_length_field", hidden_header("no_length_field", 500.0, None, LEAD_NAMES,
                                                      ["no_length_field-0.png"]))
    # leads
    page_case_header("two_leads", hidden_header("two_leads", 500.0, 5000, ["II", "V1"], ["two_leads-0.png"]))
    page_case_header("fifteen_leads", hidden_header("fifteen_leads", 500.0, 5000, LEAD_NAMES + ["X", "Y", "Z"],
                                                    ["fifteen_leads-0.png"]))
    page_case_header("lower_case_leads", hidden_header("lower_case_leads", 500.0, 5000,
                                                       [n.lower() for n in LEAD_NAMES], ["lower_case_leads-0.png"]))
    page_case_header("unknown_lead_names", hidden_header("unknown_lead_names", 500.0, 5000,
                                                         [f"ECG{i + 1}" for i in range(12)],
                                                         ["unknown_lead_names-0.png"]))
    # header text
    text = hidden_header("no_trailing_newline", 500.0, 5000, LEAD_NAMES, ["no_trailing_newline-0.png"])
    page_case_header("no_trailing_newline", text.rstrip("\n"))
    text = hidden_header("crlf", 500.0, 5000, LEAD_NAMES, ["crlf-0.png"])
    page_case_header("crlf", text.replace("\n", "\r\n"))
    page_case_header("non_ascii_comment", hidden_header("non_ascii_comment", 500.0, 5000, LEAD_NAMES,
                                                        ["non_ascii_comment-0.png"],
                                                        comments=("# Comment: Müller, 25 mm/s, ±1 mV, 心电图",)))
    case("empty_header", "")
    case("zero_leads", hidden_header("zero_leads", 500.0, 5000, [], ["zero_leads-0.png"]),
         {"zero_leads-0.png": good})
    page_case_header("baseline_nonzero", hidden_header("baseline_nonzero", 500.0, 5000, LEAD_NAMES,
                                                       ["baseline_nonzero-0.png"], gain_field="1000(32000)/mV"))
    page_case_header("format_212", hidden_header("format_212", 500.0, 5000, LEAD_NAMES, ["format_212-0.png"],
                                                 fmt="212", gain_field="200(0)/mV"))
    page_case_header("tiny_range_gain", hidden_header("tiny_range_gain", 500.0, 5000, LEAD_NAMES,
                                                      ["tiny_range_gain-0.png"], gain_field="50000(0)/mV"))
    # the two kinds the organizers' own code rejects
    text = hidden_header("latin1_comment", 500.0, 5000, LEAD_NAMES, ["latin1_comment-0.png"],
                         comments=("# Comment: Müller",))
    case("latin1_comment", text.encode("latin-1"), {"latin1_comment-0.png": good}, is_rejected=True)
    case("name with spaces", hidden_header("name with spaces", 500.0, 5000, LEAD_NAMES, ["spaces-0.png"]),
         {"spaces-0.png": good}, is_rejected=True)
    return cases


def _truncate(path: str) -> None:
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 3])


def _transparent_paper(rgb: np.ndarray) -> np.ndarray:
    """RGBA page whose paper (light pixels) is fully transparent, as some exports write it."""
    alpha = np.where(rgb.min(axis=2) > 200, 0, 255).astype(np.uint8)
    return np.dstack([rgb, alpha])


# --- the check --------------------------------------------------------------------------------------------

def check_record(data_record: str, output_record: str) -> tuple[bool, str]:
    """(valid, one-line description) of what the organizers' loop wrote for one record."""
    import wfdb

    hea = output_record + ".hea"
    if not os.path.isfile(hea):
        return False, "no output header (the run stopped before this record)"
    with open(data_record + ".hea", "rb") as f:
        header_in = f.read().decode("utf-8", errors="replace")
    with open(hea, "rb") as f:
        header_out = f.read().decode("utf-8", errors="replace")
    label_lines = [line for line in header_out.splitlines() if line.startswith(LABELS_PREFIX)]
    labels = label_lines[-1][len(LABELS_PREFIX):].strip() if label_lines else None
    if not labels:
        return False, "no labels written"
    if not save_step_accepts(header_in):
        return True, f"no signal (header describes none that can be saved); labels: {labels}"
    if not os.path.isfile(output_record + ".dat"):
        return False, "no signal file although the header describes a savable signal"
    try:
        rec = wfdb.rdrecord(output_record, physical=False, return_res=64)
        phys, _ = wfdb.rdsamp(output_record)
    except Exception as e:
        return False, f"signal does not load: {type(e).__name__}: {e}"
    n_sig = get_num_signals(header_in)
    if phys.shape[1] != n_sig:
        return False, f"signal has {phys.shape[1]} leads, the header {n_sig}"
    if np.isinf(phys).any():
        return False, "infinite values"
    digital = np.asarray(rec.d_signal, dtype=np.int64)
    for j, fmt in enumerate(get_signal_formats(header_in)):
        lo, hi = storable_counts(fmt)
        col = digital[:, j]
        finite = col[col != lo - 1]  # lo - 1: the format's invalid-sample marker (NaN)
        if finite.size and (finite.min() < lo or finite.max() > hi):
            return False, f"lead {j} stores values outside its format {fmt}"
    drawn = np.isfinite(phys).any(axis=0)
    return True, (f"signal {phys.shape[0]}x{phys.shape[1]}, {int(drawn.sum())} leads digitized, "
                  f"max |value| {np.nanmax(np.abs(phys), initial=0):.2f}; labels: {labels}")


def check_outputs(data_folder: str, output_folder: str, rejected: tuple[str, str, str] | None = None) -> int:
    """Print one line per case and a summary; returns the number of failures. `rejected`: (folder of the
    rejected cases, folder of their outputs, folder of their run logs '<case>.log'), one run per case."""
    failures = valid = 0
    records = find_records(data_folder)
    for rel in records:
        ok, text = check_record(os.path.join(data_folder, rel), os.path.join(output_folder, rel))
        valid += ok
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {rel.split(os.sep)[0]:24s} {text}")
    kinds = sorted(os.listdir(rejected[0])) if rejected else []
    for kind in kinds:
        with open(os.path.join(rejected[2], kind + ".log"), errors="replace") as f:
            verdict = _rejected_verdict(f.read())
        if verdict is None:  # their loop went through: say what it wrote (their evaluator may still refuse it)
            outs = [check_record(os.path.join(rejected[0], kind, rel), os.path.join(rejected[1], kind, rel))
                    for rel in find_records(os.path.join(rejected[0], kind))]
            verdict = "the run went through; " + "; ".join(("" if ok else "FAIL: ") + t for ok, t in outs)
        failures += "FAIL" in verdict
        print(f"{'FAIL' if 'FAIL' in verdict else 'rej '} {kind:24s} {verdict}")
    print(f"summary: {len(records) + len(kinds)} cases, {valid} valid outputs, {failures} failures, "
          f"{len(kinds)} of the kinds the organizers' own code rejects reported apart (not failed)")
    return failures


def _rejected_verdict(log_text: str) -> str | None:
    """What stopped the organizers' loop on a rejected kind (their code may stop; run_models must not raise);
    None when nothing stopped it."""
    if "Traceback" not in log_text:
        return None
    if 'team_code.py"' in log_text:  # a frame of ours in the traceback: run_models raised
        return "FAIL: run_models raised"
    last = [line for line in log_text.strip().splitlines() if line.strip()][-1]
    return f"stopped in the organizers' own code: {last.strip()[:140]}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make", help="write the corpus")
    m.add_argument("--out", required=True)
    m.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("check", help="check run_model.py's outputs for the corpus")
    c.add_argument("--data", required=True)
    c.add_argument("--outputs", required=True)
    c.add_argument("--rejected", nargs=3, metavar=("DATA", "OUTPUTS", "LOGS"), default=None,
                   help="the rejected cases' folder, their outputs and run logs (<case>.log), one run per case")
    a = p.parse_args(argv)
    if a.cmd == "make":
        if os.path.isdir(a.out) and os.listdir(a.out):
            p.error(f"{a.out} is not empty")
        cases = make_bad_corpus(a.out, a.seed)
        print(f"wrote {len(cases)} cases to {a.out} ({sum(c.rejected for c in cases)} in rejected/)")
        return 0
    return 1 if check_outputs(a.data, a.outputs, a.rejected) else 0


if __name__ == "__main__":
    sys.exit(main())
