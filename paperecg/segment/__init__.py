"""Trace segmentation: ResUNet with CBAM on a pixel-unshuffled grayscale page -> trace probability map.

    from paperecg.segment import Segmenter
    prob = Segmenter.load("model/segmenter").predict(image_rgb)   # float32 (H, W) in page pixels

Training: `python -m paperecg.segment.train --data DIR --out DIR [--minutes M]` or `train_segmenter(...)`.
"""
from .infer import Segmenter
from .model import ResUNetCBAM, SegmenterConfig


def train_segmenter(*args, **kwargs):
    """See paperecg.segment.train.train_segmenter (imported lazily: training pulls in the renderer)."""
    from .train import train_segmenter as _train

    return _train(*args, **kwargs)


__all__ = ["Segmenter", "ResUNetCBAM", "SegmenterConfig", "train_segmenter"]
