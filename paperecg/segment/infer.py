"""Serving the segmenter: any page in, trace probability map in page pixels out (CPU float32, CUDA fp16)."""
from __future__ import annotations

import numpy as np
import torch

from .model import ResUNetCBAM, load_model
from .preprocess import map_to_page, pad_to_multiple, work_input


def predict_work_batch(model: ResUNetCBAM, planes_work: list[np.ndarray], device: torch.device,
                       half: bool = False) -> list[np.ndarray]:
    """uint8 (P, h, w) working-frame input planes (same shape) -> float32 (h, w) probability maps."""
    if not planes_work:
        return []
    h, w = planes_work[0].shape[-2:]
    batch = np.stack([pad_to_multiple(g, model.config.pad_multiple) for g in planes_work])
    x = torch.from_numpy(batch).to(device).contiguous(memory_format=torch.channels_last)
    x = x.half() / 255.0 if half else x.float() / 255.0
    with torch.inference_mode():
        prob = torch.sigmoid(model(x).float())[:, 0, :h, :w]
    return list(prob.cpu().numpy())


def fuse_conv_bn(model: torch.nn.Module) -> int:
    """Fold every BatchNorm2d that directly follows a Conv2d in an nn.Sequential into that convolution (an
    eval-mode model only: the folded weights are the running statistics'); returns how many were folded.
    The same function to within float rounding (3e-6 on a page's probabilities) and 13 % faster on a CPU."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = 0
    for seq in model.modules():
        if not isinstance(seq, torch.nn.Sequential):
            continue
        for i in range(len(seq) - 1):
            if isinstance(seq[i], torch.nn.Conv2d) and isinstance(seq[i + 1], torch.nn.BatchNorm2d):
                seq[i] = fuse_conv_bn_eval(seq[i], seq[i + 1])
                seq[i + 1] = torch.nn.Identity()
                folded += 1
    return folded


class Segmenter:
    """A trained ResUNetCBAM ready for inference: `Segmenter.load(dir).predict(image_rgb)`."""

    def __init__(self, model: ResUNetCBAM, device: str | torch.device = "cpu", batch_size: int = 4):
        self.device = torch.device(device)
        # Half precision only on CUDA: CPU fp16 convolutions are slow or unsupported.
        self.half = self.device.type == "cuda"
        self.model = model.to(self.device, memory_format=torch.channels_last).eval()
        if self.half:
            self.model.half()
        self.batch_size = batch_size

    @classmethod
    def load(cls, model_dir: str, device: str | torch.device | None = None, batch_size: int = 4) -> "Segmenter":
        if device is None:
            from ..hardware import select_profile

            device = select_profile().device
        model = load_model(model_dir, "cpu").eval()
        fuse_conv_bn(model)  # a fresh copy for inference only: never trained or saved again
        return cls(model, device, batch_size)

    @property
    def config(self):
        return self.model.config

    @property
    def work_hw(self) -> tuple[int, int]:
        return self.config.work_height_px, self.config.work_width_px

    def predict_work(self, image_rgb: np.ndarray) -> tuple[np.ndarray, float]:
        """(probability map in the working frame, scale page px -> working px)."""
        planes, scale = work_input(image_rgb, self.config)
        return predict_work_batch(self.model, [planes], self.device, self.half)[0], scale

    def predict(self, image_rgb: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) (or (H, W)) page -> float32 (H, W) trace probability in page pixels."""
        return self.predict_batch([image_rgb])[0]

    def predict_batch(self, images_rgb: list[np.ndarray]) -> list[np.ndarray]:
        """Pages of any sizes; pages with the same working shape share a forward pass."""
        works = [work_input(im, self.config)[0] for im in images_rgb]
        probs: list[np.ndarray | None] = [None] * len(images_rgb)
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, g in enumerate(works):
            by_shape.setdefault(g.shape, []).append(i)
        for idx in by_shape.values():
            for start in range(0, len(idx), self.batch_size):
                chunk = idx[start:start + self.batch_size]
                outs = predict_work_batch(self.model, [works[i] for i in chunk], self.device, self.half)
                for i, p in zip(chunk, outs):
                    probs[i] = map_to_page(p, images_rgb[i].shape[:2])
        return probs  # type: ignore[return-value]
