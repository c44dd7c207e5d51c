"""Lead-name detection (YOLOv8-nano) and page rectification: quarter turns, tilt estimate and correction.

`rectify_page(image, detector)` is the entry point for inference; `LeadNameDetector.load(dir)` reads a model
folder written by `python -m paperecg.rectify.train` (or `train_detector`).
"""
from .detector import DetectorConfig, LeadNameDetector
from .rectify import RectifiedPage, rectify_page, rotate_boxes, rotate_image
from .tilt import TiltEstimate, estimate_tilt, estimate_tilt_from_lines, fit_tilt_from_boxes


def train_detector(*args, **kwargs):
    """See paperecg.rectify.train.train_detector (imported on use: it pulls in the renderer)."""
    from .train import train_detector as _train

    return _train(*args, **kwargs)


__all__ = ["DetectorConfig", "LeadNameDetector", "RectifiedPage", "rectify_page", "rotate_boxes", "rotate_image",
           "TiltEstimate", "estimate_tilt", "estimate_tilt_from_lines", "fit_tilt_from_boxes", "train_detector"]
