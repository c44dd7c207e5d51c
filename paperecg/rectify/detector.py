"""Lead-name detector: a YOLOv8-nano network (built from ultralytics' yaml) with our own pre/post-processing.

Weights live as safetensors beside a config.json; ultralytics is used only to build the network from its yaml
(and, in train.py, for its training loop). Inference is a letterboxed forward pass plus class-agnostic NMS, so
no ultralytics predictor, download or thread change is involved at run time.

Scale: the page is resized so that its long side is `page_long_side_px` before detection, and training crops
are cut from pages at that same scale, so a lead name has the same size in pixels in training and use.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..geometry import Box, LeadNameBox
from .names import assign_layout_names
from .yolo import CLASS_NAMES, MODEL_YAML, SETTINGS_SUBDIR, import_ultralytics

WEIGHTS_FILE = "detector.safetensors"
CONFIG_FILE = "config.json"
STRIDE_PX = 32


@dataclass
class DetectorConfig:
    model_yaml: str = MODEL_YAML
    class_names: tuple[str, ...] = CLASS_NAMES
    page_long_side_px: int = 1024  # detection scale: the page's long side in pixels
    crop_px: int = 256  # training crop size at detection scale (small crops: more steps per CPU minute)
    conf_threshold: float = 0.1  # low: the layout decoding (names.py) drops what fits no printed cell
    nms_iou: float = 0.5
    max_detections: int = 60
    layout_names: bool = True  # rename detections after the best-fitting printed layout (names.py)
    # provenance
    trained_minutes: float = 0.0
    train_pages: int = 0
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d = asdict(self)
        d["class_names"] = list(self.class_names)
        return d

    @classmethod
    def from_json(cls, d: dict) -> "DetectorConfig":
        d = dict(d)
        d["class_names"] = tuple(d.get("class_names", CLASS_NAMES))
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


def build_network(config: DetectorConfig, settings_dir: str | os.PathLike | None = None):
    """An untrained ultralytics DetectionModel (plain nn.Module) with one class per lead name."""
    import_ultralytics(settings_dir)
    from ultralytics.nn.tasks import DetectionModel

    net = DetectionModel(config.model_yaml, nc=len(config.class_names), verbose=False)
    net.names = {i: n for i, n in enumerate(config.class_names)}
    return net


def page_scale(height_px: int, width_px: int, long_side_px: int) -> float:
    return long_side_px / float(max(height_px, width_px))


def letterbox(image_rgb: np.ndarray, long_side_px: int) -> tuple[np.ndarray, float]:
    """Resize to the detection scale and pad right/bottom to a multiple of the network stride."""
    import cv2

    h, w = image_rgb.shape[:2]
    scale = page_scale(h, w, long_side_px)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(np.ascontiguousarray(image_rgb), (nw, nh), interpolation=interp)
    ph, pw = -(-nh // STRIDE_PX) * STRIDE_PX, -(-nw // STRIDE_PX) * STRIDE_PX
    out = np.full((ph, pw, 3), 114, np.uint8)  # ultralytics' pad grey
    out[:nh, :nw] = small
    return out, scale


def decode_predictions(pred: np.ndarray, conf_threshold: float, nms_iou: float, max_detections: int
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(4 + nc, N) network output (cx, cy, w, h, class scores) -> boxes xyxy, scores, class ids and every
    class's score (n, nc) after class-agnostic NMS (a spot on the page carries one name, so 'II' and 'III'
    must not both survive)."""
    import torch
    import torchvision

    xywh, cls = pred[:4].T, pred[4:].T
    cls_id = cls.argmax(1)
    score = cls[np.arange(len(cls)), cls_id]
    keep = score >= conf_threshold
    xywh, score, cls_id, cls = xywh[keep], score[keep], cls_id[keep], cls[keep]
    xyxy = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)
    if len(xyxy) == 0:
        return xyxy.reshape(0, 4), score, cls_id, cls.reshape(0, pred.shape[0] - 4)
    idx = torchvision.ops.nms(torch.from_numpy(xyxy).float(), torch.from_numpy(score).float(), nms_iou)
    idx = idx.numpy()[:max_detections]
    return xyxy[idx], score[idx], cls_id[idx], cls[idx]


class LeadNameDetector:
    def __init__(self, network, config: DetectorConfig):
        self.network = network.eval()
        self.config = config

    @classmethod
    def create(cls, config: DetectorConfig | None = None, settings_dir=None) -> "LeadNameDetector":
        config = config or DetectorConfig()
        return cls(build_network(config, settings_dir), config)

    @classmethod
    def load(cls, model_dir: str | os.PathLike, fuse: bool = True) -> "LeadNameDetector":
        """The saved detector; `fuse`: its batch norms folded into the convolutions (ultralytics' own
        inference step: the same detections to within 1e-4 px, 8 % faster on a CPU), which makes it
        inference-only (it can no longer be trained or saved)."""
        from safetensors.torch import load_file

        model_dir = Path(model_dir)
        with open(model_dir / CONFIG_FILE) as f:
            config = DetectorConfig.from_json(json.load(f))
        net = build_network(config, model_dir / SETTINGS_SUBDIR)
        state = load_file(str(model_dir / WEIGHTS_FILE))
        net.load_state_dict(state, strict=True)
        detector = cls(net, config)
        if fuse:
            detector.network = net.eval().fuse(verbose=False).eval()
            detector.fused = True
        return detector

    fused = False  # batch norms folded by load(fuse=True): inference only

    def save(self, model_dir: str | os.PathLike) -> None:
        from safetensors.torch import save_file

        if self.fused:
            raise ValueError("a detector loaded with fuse=True is for inference only; load it with fuse=False "
                             "to train or save it")
        model_dir = Path(model_dir)
        model_dir.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous().cpu() for k, v in self.network.state_dict().items()}
        save_file(state, str(model_dir / WEIGHTS_FILE))
        with open(model_dir / CONFIG_FILE, "w") as f:
            json.dump(self.config.to_json(), f, indent=2)

    def detect_raw(self, image_rgb: np.ndarray, conf_threshold: float | None = None
                   ) -> tuple[list[LeadNameBox], np.ndarray]:
        """The network's reading: boxes in the page's own pixels named by their best class, best score first,
        and every class's score per box (n, classes)."""
        import torch

        cfg = self.config
        img, scale = letterbox(np.asarray(image_rgb)[..., :3], cfg.page_long_side_px)
        x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255.0
        device = next(self.network.parameters()).device
        with torch.inference_mode():
            out = self.network(x.to(device))
        pred = (out[0] if isinstance(out, (list, tuple)) else out)[0].float().cpu().numpy()
        thr = cfg.conf_threshold if conf_threshold is None else conf_threshold
        xyxy, score, cls_id, cls_scores = decode_predictions(pred, thr, cfg.nms_iou, cfg.max_detections)
        h, w = np.asarray(image_rgb).shape[:2]
        xyxy = np.clip(xyxy / scale, 0.0, [w, h, w, h])  # padding and page edge: keep boxes on the page
        boxes = [LeadNameBox(cfg.class_names[int(c)], Box(*map(float, b)), float(s))
                 for b, s, c in zip(xyxy, score, cls_id)]
        return boxes, cls_scores

    def name_boxes(self, boxes: list[LeadNameBox], cls_scores: np.ndarray) -> list[LeadNameBox]:
        """Raw detections -> the names to use: renamed after the printed layout when config.layout_names."""
        if not self.config.layout_names:
            return list(boxes)
        return assign_layout_names(boxes, cls_scores, tuple(self.config.class_names))

    def detect(self, image_rgb: np.ndarray, conf_threshold: float | None = None) -> list[LeadNameBox]:
        """Lead names on the page, boxes in the page's own pixels, best score first (detect_raw, then
        name_boxes)."""
        return self.name_boxes(*self.detect_raw(image_rgb, conf_threshold))
