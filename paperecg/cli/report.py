"""What `paperecg digitize` writes beside the WFDB record: the CSV of the signal and the JSON of what was
found. Pure functions of the digitizer's results (`Digitizer.digitize_record(...).pages`: PageResult -> RectifiedPage,
Extraction), so a field added upstream is one line here.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from paperecg.extract import Extraction
from paperecg.layouts import canonical_lead_name
from paperecg.pipeline.digitizer import PageResult
from paperecg.rectify.rectify import RectifiedPage

# WFDB storage of the outputs: 16-bit counts at this gain (counts per mV), so 0.001 mV steps.
ADC_GAIN = 1000.0


def quantize_mv(signal_mv: np.ndarray, adc_gain: float = ADC_GAIN) -> np.ndarray:
    """The values as 16-bit WFDB stores them at this gain (NaN stays NaN): the CSV equals the record."""
    return np.round(np.asarray(signal_mv, dtype=np.float64) * adc_gain) / adc_gain


def csv_text(signal_mv: np.ndarray, fs_hz: float, lead_names: list[str], adc_gain: float = ADC_GAIN) -> str:
    """`time_s` then one column per lead in mV at the storage precision; empty where NaN."""
    digits = max(0, math.ceil(math.log10(adc_gain)))
    values = quantize_mv(signal_mv, adc_gain)
    cells = np.where(np.isfinite(values), np.char.mod(f"%.{digits}f", np.nan_to_num(values)), "")
    times = np.char.mod("%.6f", np.arange(values.shape[0]) / float(fs_hz))
    lines = [",".join(["time_s", *lead_names])]
    lines += [",".join([t, *row]) for t, row in zip(times, cells)]
    return "\n".join(lines) + "\n"


def _simple(value):
    """A JSON-ready copy of a scalar (NaN/inf -> None), or None for anything that is not one."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return round(float(value), 6) if math.isfinite(value) else None
    if isinstance(value, str):
        return value
    return None


def scalar_fields(obj) -> dict:
    """Every scalar field of a dataclass (bool, number, string): fields other stages add show up without
    a change here."""
    if obj is None or not dataclasses.is_dataclass(obj):
        return {}
    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        s = _simple(v)
        if s is not None or v is None or (isinstance(v, float) and not math.isfinite(v)):
            out[f.name] = s
    return out


def rectify_report(rect: RectifiedPage) -> dict:
    """Orientation and rotation the rectifier applied (and any scalar it reports), the names it read."""
    out = scalar_fields(rect)
    out["rotation_applied_deg"] = round(90.0 * (rect.quarter_turns % 4) + rect.angle_deg, 4)
    out["tilt"] = scalar_fields(rect.tilt)
    frame = getattr(rect, "frame", None)
    if frame is not None:  # the warp onto the canonical page (rectify/frame.py)
        out["frame"] = {**scalar_fields(frame), "shape_hw": [int(v) for v in frame.shape_hw],
                        "description": frame.describe(), "notes": list(frame.notes)}
    out["lead_name_boxes"] = [{"name": b.name, "score": round(float(b.score), 3),
                               "box_xyxy": [round(float(v), 1) for v in (b.box.x0, b.box.y0, b.box.x1, b.box.y1)]}
                              for b in rect.lead_name_boxes]
    return out


def name_source(cell_source: str) -> str:
    """Where a cell's lead name came from, in words (RowCell.source: 'boxes', 'boxes+LAYOUT' or a layout)."""
    if cell_source == "boxes":
        return "printed name"
    if cell_source.startswith("boxes+"):
        return f"printed names matched to layout {cell_source.split('+', 1)[1]}"
    return f"position in layout {cell_source}"


def layout_source(ext: Extraction) -> str:
    if any(c.source.startswith("boxes") for c in ext.cells):
        known = f", matching the known layout {ext.layout}" if ext.layout else ""
        return "lead names read on the page" + known
    if ext.layout:
        return f"standard layout {ext.layout} chosen by the number of rows found ({len(ext.rows)})"
    return "none"


def extraction_report(ext: Extraction, fs_hz: float) -> dict:
    """Scale, layout and cells (which lead where, and whence its name), per-lead confidence, notes."""
    g = ext.geometry
    grid = None
    if ext.grid is not None:
        grid = {"x": scalar_fields(ext.grid.x), "y": scalar_fields(ext.grid.y)}
    return {
        "scale": {"px_per_mm_x": round(g.px_per_mm_x, 4), "px_per_mm_y": round(g.px_per_mm_y, 4),
                  "mm_per_s": g.mm_per_s, "mm_per_mv": g.mm_per_mv,
                  "source": "grid" if grid and grid["x"].get("found") and grid["y"].get("found") else "page size",
                  "grid": grid},
        "residual_skew": round(float(ext.skew), 6),
        "trace_width_px": _simple(ext.trace_width_px),
        "calibration_pulses": sum(r.pulse is not None for r in ext.rows),
        "layout": ext.layout,
        "layout_source": layout_source(ext),
        "rows": len(ext.rows),
        "cells": [{"lead": c.lead, "row": c.row, "start_s": round(c.start / fs_hz, 4),
                   "end_s": round(c.end / fs_hz, 4),
                   "name_from": name_source(c.source)}
                  for c in ext.cells],
        "lead_confidence": {k: round(float(v), 4) for k, v in ext.lead_confidence.items()},
        "notes": list(ext.notes),
    }


def page_report(result: PageResult, fs_hz: float) -> dict:
    out: dict = {"image": result.page.path,
                 "size_px": [int(result.page.rgb.shape[1]), int(result.page.rgb.shape[0])]}
    if result.error:
        out["error"] = result.error
    if result.rectified is not None:
        out["rectify"] = rectify_report(result.rectified)
    if result.extraction is not None:
        out.update(extraction_report(result.extraction, fs_hz))
    return out


def chosen_page(signal_col: np.ndarray, pages: list[PageResult], j: int) -> int | None:
    """Index of the page whose reading the record kept for lead j (the digitizer keeps one page per lead)."""
    for i, p in enumerate(pages):
        if p.extraction is not None and np.array_equal(p.extraction.signal[:, j], signal_col, equal_nan=True):
            return i
    return None


def lead_reports(signal_mv: np.ndarray, lead_names: list[str], pages: list[PageResult]) -> dict:
    """Per lead: coverage (share of samples read), confidence and name source of the page it came from."""
    out = {}
    for j, name in enumerate(lead_names):
        col = signal_mv[:, j]
        coverage = float(np.isfinite(col).mean()) if col.size else 0.0
        entry: dict = {"coverage": round(coverage, 4)}
        page = chosen_page(col, pages, j) if coverage > 0 else None
        key = canonical_lead_name(name)
        confs = [p.extraction.lead_confidence.get(key, 0.0) for p in pages if p.extraction is not None]
        if page is not None:
            ext = pages[page].extraction
            entry["page"] = page
            entry["confidence"] = round(float(ext.lead_confidence.get(key, 0.0)), 4)
            sources = {(name_source(c.source))
                       for c in ext.cells if canonical_lead_name(c.lead) == key}
            entry["name_from"] = sorted(sources)
        else:
            entry["confidence"] = round(float(max(confs, default=0.0)), 4)
        out[name] = entry
    return out


def record_warnings(leads: dict, pages: list[PageResult], messages: list[str]) -> list[str]:
    """Plain-language warnings: what was not read and what was assumed."""
    warn = list(messages)
    empty = [n for n, e in leads.items() if e["coverage"] == 0]
    if empty:
        warn.append("not read (left empty): " + ", ".join(empty))
    partial = [f"{n} ({100 * e['coverage']:.0f}%)" for n, e in leads.items() if 0 < e["coverage"] < 0.2]
    if partial:
        warn.append("read over a short stretch only: " + ", ".join(partial))
    for i, p in enumerate(pages):
        ext = p.extraction
        if p.error:
            warn.append(f"page {i}: failed: {p.error}")
        if ext is None:
            continue
        if ext.grid is None or not (ext.grid.x.found and ext.grid.y.found):
            warn.append(f"page {i}: no grid found; scale from the page size (a letter-size printout assumed)")
        if ext.rows and not any(r.pulse is not None for r in ext.rows):
            warn.append(f"page {i}: no calibration pulse found; gain assumed {ext.geometry.mm_per_mv:g} mm/mV")
        if not any(c.source.startswith("boxes") for c in ext.cells) and ext.layout:
            warn.append(f"page {i}: lead names not read; leads assigned by the {ext.layout} layout's positions")
        if p.rectified is not None and not p.rectified.orientation_confident:
            warn.append(f"page {i}: orientation not confirmed by lead names (page taken as upright)")
        warn += [f"page {i}: {n}" for n in ext.notes]
    return warn


def record_report(name: str, inputs: list[str], header_source: str, fs_hz: float, signal_mv: np.ndarray,
                  lead_names: list[str], pages: list[PageResult], messages: list[str]) -> dict:
    """The NAME.json document."""
    leads = lead_reports(signal_mv, lead_names, pages)
    return {
        "name": name,
        "inputs": inputs,
        "header": header_source,
        "fs_hz": fs_hz,
        "num_samples": int(signal_mv.shape[0]),
        "units": "mV",
        "lead_order": list(lead_names),
        "leads_found": sum(e["coverage"] > 0 for e in leads.values()),
        "leads": leads,
        "pages": [page_report(p, fs_hz) for p in pages],
        "warnings": record_warnings(leads, pages, messages),
    }
