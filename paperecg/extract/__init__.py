"""Signal extraction: a page's trace map -> calibrated (num_samples, num_leads) mV signal.

`extract_signal(trace_map, image_rgb, fs_hz, num_samples, lead_names, lead_name_boxes=None) -> Extraction`
finds the scale (grid periodicity, calibration pulses, page size), the printed rows and their leads, the
baselines, and reads each trace out by fitting the drawn polyline to the trace's column edges.
"""
from .core import Extraction, ExtractParams, RowTrace, extract_signal

__all__ = ["Extraction", "ExtractParams", "RowTrace", "extract_signal"]
