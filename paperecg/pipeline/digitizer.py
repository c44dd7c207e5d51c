"""The digitizer as run_models uses it: page image(s) -> rectify -> segment -> extract -> one signal.

Every component is optional: without a detector the tilt comes from the page's lines and the extractor
falls back on the standard layouts; without a segmenter nothing can be read and every lead abstains (NaN).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

from paperecg.extract import Extraction, ExtractParams, extract_signal
from paperecg.extract.ink import InkParams
from paperecg.records.header import HeaderInfo
from paperecg.records.images import PageImage, load_pages
from paperecg.records.io import image_paths
from paperecg.rectify.evaluate import PAGE_PRECISION_KEY, PAGE_RECALL_KEY
from paperecg.rectify.grid import light_paper
from paperecg.rectify.rectify import RectifiedPage, rectify_page

DETECTOR_DIR = "detector"
# The detector's gate reads the page-level figures saved at training time (rectify/evaluate.py: recall and
# precision of the layout-decoded names on rendered pages of held-out records). Below either threshold the
# detector's names would mislabel leads and its orientation votes would be noise, so it is not used (the
# shipped detector's figures: model/detector/config.json, docs/tuning.md).
MIN_PAGE_NAME_RECALL = 0.8
MIN_PAGE_NAME_PRECISION = 0.8
# Older detectors carry crop-level figures only (ultralytics' validation on 256-px crops, which reads far lower
# than the page-level figures: 0.67 for the shipped one); they are gated on that as before.
MIN_DETECTOR_VAL_RECALL = 0.8
SEGMENTER_DIR = "segmenter"
# Per-record wall-clock guard: pages after this many seconds are skipped (inference limit is per record set).
DEFAULT_RECORD_SECONDS = float(os.environ.get("PAPERECG_RECORD_SECONDS", "120"))

PHOTO_STROKE_THRESHOLD = 0.6  # faint ink joined to a stroke's dark pixels (extract/ink.py)


@dataclass
class PageResult:
    """What digitizing one page produced; kept for overlays and reports."""

    page: PageImage
    rectified: RectifiedPage | None
    extraction: Extraction | None
    error: str | None = None


@dataclass
class DigitizedRecord:
    """One record's reading: the combined signal and what each page gave (for overlays, reports and the
    classifier's rectified images)."""

    signal: np.ndarray  # float64 (num_samples, num_leads) mV in header order, NaN where no page read a lead
    pages: list[PageResult] = field(default_factory=list)


@dataclass
class Digitizer:
    detector: object | None = None  # paperecg.rectify.detector.LeadNameDetector
    segmenter: object | None = None  # paperecg.segment.infer.Segmenter
    record_seconds: float = DEFAULT_RECORD_SECONDS

    @classmethod
    def load(cls, model_folder: str, device: str | None = None, log=print) -> "Digitizer":
        detector = segmenter = None
        det_dir = os.path.join(model_folder, DETECTOR_DIR)
        seg_dir = os.path.join(model_folder, SEGMENTER_DIR)
        if os.path.isdir(det_dir):
            from paperecg.rectify.detector import LeadNameDetector

            detector = LeadNameDetector.load(det_dir)
            refusal = detector_gate(detector.config.extra)
            if refusal:
                log(f"lead-name detector in {det_dir} left unused: {refusal}; pages are not turned, tilt from "
                    f"page lines, standard layouts only")
                detector = None
        else:
            log(f"no lead-name detector in {model_folder}: tilt from page lines, standard layouts only")
        if os.path.isdir(seg_dir):
            from paperecg.segment.infer import Segmenter

            segmenter = Segmenter.load(seg_dir, device=device)
        else:
            log(f"no segmenter in {model_folder}: every lead will be left empty (NaN)")
        return cls(detector, segmenter)

    def digitize_page(self, page: PageImage, header: HeaderInfo) -> PageResult:
        rect = rectify_page(page.rgb, self.detector)
        image = light_paper(rect.image)  # a monitor page is read as ink on paper
        # the working-frame map: extract_signal brings it onto the page and sharpens it with the page's ink
        trace_map, _ = self.segmenter.predict_work(image)
        ext = extract_signal(trace_map, image, header.fs_hz, header.num_samples, header.lead_names,
                             rect.lead_name_boxes or None, params=extract_params_for(rect),
                             source_px_per_mm=rect.frame.source_px_per_mm if rect.frame is not None else None)
        return PageResult(page, rect, ext)

    def digitize(self, record: str, header: HeaderInfo, verbose: bool = False, log=print,
                 pages: list[PageImage] | None = None) -> np.ndarray:
        """(num_samples, num_leads) mV in header order; NaN where no page gave a confident reading."""
        return self.digitize_record(record, header, verbose, log, pages).signal

    def digitize_record(self, record: str, header: HeaderInfo, verbose: bool = False, log=print,
                        pages: list[PageImage] | None = None) -> DigitizedRecord:
        """The record's signal and each page's result.

        `pages`: the record's page images already decoded (run_models decodes each page once and shares
        them with the classifier; unreadable ones were reported there); None reads them here."""
        empty = np.full((header.num_samples, header.num_leads), np.nan)
        if self.segmenter is None:
            return DigitizedRecord(empty)
        if pages is None:
            paths = image_paths(record, header)
            if not paths:
                log(f"{record}: header names no image ('# Image:' line missing or empty)")
                return DigitizedRecord(empty)
            pages = load_pages(paths, log=lambda m: log(f"{record}: {m}"))
        t0 = time.time()
        results: list[PageResult] = []
        for page in pages:
            if time.time() - t0 > self.record_seconds:
                log(f"{record}: time guard ({self.record_seconds:.0f} s) reached, remaining pages skipped")
                break
            try:
                results.append(self.digitize_page(page, header))
            except Exception as e:  # one bad page must not cost the record's other pages
                log(f"{record}: page {os.path.basename(page.path)} failed: {type(e).__name__}: {e}")
                results.append(PageResult(page, None, None, str(e)))
        signal = combine_page_results(results, header.lead_names, empty, log=lambda m: log(f"{record}: {m}"))
        return DigitizedRecord(signal, results)


def extract_params_for(rect: RectifiedPage) -> ExtractParams:
    """The extractor's settings for a page as the frame found it. A page the frame straightened through a
    perspective or a curl was photographed: a phone thins and fades its steep strokes, whose pieces the ink
    alone breaks apart, so the whole stretch of ink inside the segmenter's core is read
    (`InkParams.stroke_threshold`), and each row's time axis is read on the grid lines beside it, which keep
    the creases the frame's smooth surface leaves in (`ExtractParams.grid_ruler`). A flat scan keeps the
    plain ink (there grid lines as dark as the trace would widen the strokes) and the nominal time axis."""
    if rect.frame is not None and rect.frame.straightens:
        return ExtractParams(ink=InkParams(stroke_threshold=PHOTO_STROKE_THRESHOLD), grid_ruler=True, grid_lean=True)
    return ExtractParams()


def detector_gate(extra: dict) -> str:
    """Why a detector with these saved figures (config.extra) must not be used; '' when it may be. Page-level
    figures decide when the config has them; else the crop-level validation recall; a config with neither
    (made by hand) is trusted."""
    recall, precision = extra.get(PAGE_RECALL_KEY), extra.get(PAGE_PRECISION_KEY)
    if recall is not None or precision is not None:
        if recall is None or recall < MIN_PAGE_NAME_RECALL:
            return f"page-level name recall {recall} < {MIN_PAGE_NAME_RECALL}"
        if precision is None or precision < MIN_PAGE_NAME_PRECISION:
            return f"page-level name precision {precision} < {MIN_PAGE_NAME_PRECISION}"
        return ""
    val_recall = extra.get("val_recall")
    if val_recall is not None and val_recall < MIN_DETECTOR_VAL_RECALL:
        return f"crop validation recall {val_recall:.2f} < {MIN_DETECTOR_VAL_RECALL} (no page-level figures saved)"
    return ""


def combine_page_results(pages: list[PageResult], lead_names: list[str], empty: np.ndarray, log=print
                         ) -> np.ndarray:
    """combine_pages over the pages that were read, each page's orientation confidence deciding its rank; a
    page whose orientation stayed uncertain, whose frame was more than a flat page, or whose layout was
    assumed says so (one line each)."""
    read = [p for p in pages if p.extraction is not None]
    for p in read:
        name = os.path.basename(p.page.path)
        if p.rectified is not None and p.rectified.orientation_note:
            log(f"page {name}: {p.rectified.orientation_note}")
        frame = p.rectified.frame if p.rectified is not None else None
        if frame is not None and frame.method != "flat":  # a flat 200-dpi page is the quiet, common case
            log(f"page {name}: {frame.describe()}")
        names_placed = any(c.source.startswith("boxes") for c in p.extraction.cells)
        for note in p.extraction.notes:  # where a grid-less page's scale came from; the standard-layout fallback
            if not names_placed or note.startswith("no grid"):
                log(f"page {name}: {note}")
    trusted = [p.rectified is not None and p.rectified.orientation_confident for p in read]
    return combine_pages([p.extraction for p in read], lead_names, empty, trusted)


def combine_pages(extractions: list[Extraction], lead_names: list[str], empty: np.ndarray,
                  orientation_confident: list[bool] | None = None) -> np.ndarray:
    """Per lead, the reading of the page that was most confident about it (pages may be different crops or
    photos of the same printout, so averaging misaligned readings would blur them). A page whose orientation
    is confident outranks every page whose orientation is not, whatever their lead confidences: an upside-down
    or sideways page is read as a plausible but wrong ECG, so its lead confidence means nothing. Uncertain
    pages only fill leads that no confident page read."""
    trusted = list(orientation_confident) if orientation_confident is not None else [False] * len(extractions)
    out = empty.copy()
    for j, name in enumerate(lead_names):
        best, best_rank = None, (False, -1.0)
        for ext, sure in zip(extractions, trusted):
            col = ext.signal[:, j]
            rank = (bool(sure), _confidence(ext, name))
            if np.isfinite(col).any() and rank > best_rank:
                best, best_rank = col, rank
        if best is not None:
            out[:, j] = best
    return out


def _confidence(ext: Extraction, lead_name: str) -> float:
    key = lead_name.strip().casefold()
    for name, conf in ext.lead_confidence.items():
        if name.casefold() == key:
            return float(conf)
    return 0.0
