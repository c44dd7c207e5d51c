"""The digitizer as run_models uses it: page image(s) -> rectify -> segment -> extract -> one signal.

Every component is optional: without a detector the tilt comes from the page's lines and the extractor
falls back on the standard layouts; without a segmenter nothing can be read and every lead abstains (NaN).
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import numpy as np

from paperecg.extract import Extraction, extract_signal
from paperecg.records.header import HeaderInfo
from paperecg.records.images import PageImage, load_pages
from paperecg.records.io import image_paths
from paperecg.rectify.rectify import RectifiedPage, rectify_page

DETECTOR_DIR = "detector"
MIN_DETECTOR_VAL_RECALL = 0.8  # below this (on its own validation crops) the detector is not used
SEGMENTER_DIR = "segmenter"
# Per-record wall-clock guard: pages after this many seconds are skipped (inference limit is per record set).
DEFAULT_RECORD_SECONDS = float(os.environ.get("PAPERECG_RECORD_SECONDS", "120"))


@dataclass
class PageResult:
    """What digitizing one page produced; kept for overlays and reports."""

    page: PageImage
    rectified: RectifiedPage | None
    extraction: Extraction | None
    error: str | None = None


@dataclass
class Digitizer:
    detector: object | None = None  # paperecg.rectify.detector.LeadNameDetector
    segmenter: object | None = None  # paperecg.segment.infer.Segmenter
    record_seconds: float = DEFAULT_RECORD_SECONDS
    last_pages: list[PageResult] = field(default_factory=list)  # diagnostics of the latest record

    @classmethod
    def load(cls, model_folder: str, device: str | None = None, log=print) -> "Digitizer":
        detector = segmenter = None
        det_dir = os.path.join(model_folder, DETECTOR_DIR)
        seg_dir = os.path.join(model_folder, SEGMENTER_DIR)
        if os.path.isdir(det_dir):
            from paperecg.rectify.detector import LeadNameDetector

            detector = LeadNameDetector.load(det_dir)
            val_recall = detector.config.extra.get("val_recall")
            if val_recall is not None and val_recall < MIN_DETECTOR_VAL_RECALL:
                # a detector that misses most names only slows pages down (it reads all four turns)
                log(f"lead-name detector in {det_dir} left unused: validation recall {val_recall:.2f} < "
                    f"{MIN_DETECTOR_VAL_RECALL}; tilt from page lines, standard layouts only")
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
        # the working-frame map: extract_signal brings it onto the page and sharpens it with the page's ink
        trace_map, _ = self.segmenter.predict_work(rect.image)
        ext = extract_signal(trace_map, rect.image, header.fs_hz, header.num_samples, header.lead_names,
                             rect.lead_name_boxes or None)
        return PageResult(page, rect, ext)

    def digitize(self, record: str, header: HeaderInfo, verbose: bool = False, log=print,
                 pages: list[PageImage] | None = None) -> np.ndarray:
        """(num_samples, num_leads) mV in header order; NaN where no page gave a confident reading.

        `pages`: the record's page images already decoded (run_models decodes each page once and shares
        them with the classifier; unreadable ones were reported there); None reads them here."""
        self.last_pages = []
        empty = np.full((header.num_samples, header.num_leads), np.nan)
        if self.segmenter is None:
            return empty
        if pages is None:
            paths = image_paths(record, header)
            if not paths:
                log(f"{record}: header names no image ('# Image:' line missing or empty)")
                return empty
            pages = load_pages(paths, log=lambda m: log(f"{record}: {m}"))
        t0 = time.time()
        for page in pages:
            if time.time() - t0 > self.record_seconds:
                log(f"{record}: time guard ({self.record_seconds:.0f} s) reached, remaining pages skipped")
                break
            try:
                self.last_pages.append(self.digitize_page(page, header))
            except Exception as e:  # one bad page must not cost the record's other pages
                log(f"{record}: page {os.path.basename(page.path)} failed: {type(e).__name__}: {e}")
                self.last_pages.append(PageResult(page, None, None, str(e)))
        return combine_pages([p.extraction for p in self.last_pages if p.extraction is not None],
                             header.lead_names, empty)


def combine_pages(extractions: list[Extraction], lead_names: list[str], empty: np.ndarray) -> np.ndarray:
    """Per lead, the reading of the page that was most confident about it (pages may be different crops or
    photos of the same printout, so averaging misaligned readings would blur them)."""
    out = empty.copy()
    for j, name in enumerate(lead_names):
        best, best_conf = None, -1.0
        for ext in extractions:
            col = ext.signal[:, j]
            conf = _confidence(ext, name)
            if np.isfinite(col).any() and conf > best_conf:
                best, best_conf = col, conf
        if best is not None:
            out[:, j] = best
    return out


def _confidence(ext: Extraction, lead_name: str) -> float:
    key = lead_name.strip().casefold()
    for name, conf in ext.lead_confidence.items():
        if name.casefold() == key:
            return float(conf)
    return 0.0
