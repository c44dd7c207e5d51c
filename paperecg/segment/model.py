"""ResUNet with CBAM attention for trace segmentation (the reference design, width and depth configurable).

Input: a grayscale page at the working size (plus, optionally, a chroma plane), folded by a 2x2
pixel-unshuffle into 4 half-size channels per plane (all pixels kept, half the spatial size for the network). Output: one logit per working-size pixel,
re-assembled from 4 channels by the inverse pixel-shuffle.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields

import torch
from torch import nn
from torch.nn import functional as F

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


@dataclass
class SegmenterConfig:
    base_channels: int = 32  # channels at the first level; doubled per level up to max_channels
    depth: int = 4  # number of 2x down-samplings (32, 64, 128, 256, 512 with the defaults)
    max_channels: int = 512
    unshuffle: int = 2  # pixel-unshuffle factor: 1 gray channel -> unshuffle**2 channels
    cbam_reduction: int = 8  # channel-attention bottleneck ratio
    spatial_kernel: int = 7  # spatial-attention convolution size
    # Working size: the page is scaled (aspect kept) to this many pixels before the network sees it.
    work_width_px: int = 1100
    work_height_px: int = 850
    # Label: trace polyline drawn this wide at the working size (ECG-Image-Kit ink is ~3 px at 200 dpi).
    label_width_px: float = 1.5
    threshold: float = 0.5  # probability cut for a binary mask; tuned on validation by the trainer
    # Input planes: ink (inverted luminance), divided by the local paper level when `flatten`; plus a
    # chroma plane (max - min of RGB) when `chroma`: printed grids are mostly coloured, traces black.
    flatten: bool = True
    chroma: bool = True

    @property
    def input_planes(self) -> int:
        return 2 if self.chroma else 1

    @property
    def in_channels(self) -> int:
        return self.input_planes * self.unshuffle ** 2

    @property
    def pad_multiple(self) -> int:
        """Working-size height and width must be a multiple of this (unshuffle, then depth poolings)."""
        return self.unshuffle * 2 ** self.depth

    def level_channels(self) -> list[int]:
        return [min(self.base_channels * 2 ** k, self.max_channels) for k in range(self.depth + 1)]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SegmenterConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


class ChannelAttention(nn.Module):
    def __init__(self, channels: int, reduction: int):
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(F.adaptive_avg_pool2d(x, 1))
        mx = self.mlp(F.adaptive_max_pool2d(x, 1))
        return x * torch.sigmoid(avg + mx)


class SpatialAttention(nn.Module):
    def __init__(self, kernel: int):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(pooled))


class CBAM(nn.Module):
    """Channel attention, then spatial attention (Woo et al., 2018)."""

    def __init__(self, channels: int, reduction: int, spatial_kernel: int):
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(spatial_kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))


class ResBlock(nn.Module):
    """conv-BN-ReLU-conv-BN, CBAM on the residual branch, identity (or 1x1) shortcut, ReLU."""

    def __init__(self, c_in: int, c_out: int, cfg: SegmenterConfig):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
        )
        self.cbam = CBAM(c_out, cfg.cbam_reduction, cfg.spatial_kernel)
        self.shortcut = (nn.Identity() if c_in == c_out else
                         nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.cbam(self.body(x)) + self.shortcut(x))


class ResUNetCBAM(nn.Module):
    """(B, input_planes, H, W) in [0, 1] (ink bright; see preprocess.work_input) -> (B, 1, H, W) trace
    logits; H, W multiples of config.pad_multiple."""

    def __init__(self, config: SegmenterConfig | None = None):
        super().__init__()
        self.config = cfg = config or SegmenterConfig()
        chans = cfg.level_channels()
        self.unshuffle = nn.PixelUnshuffle(cfg.unshuffle)
        self.shuffle = nn.PixelShuffle(cfg.unshuffle)
        self.encoders = nn.ModuleList()
        c_prev = cfg.in_channels
        for c in chans:
            self.encoders.append(ResBlock(c_prev, c, cfg))
            c_prev = c
        # Decoder: bilinear up-sampling + 1x1 channel reduction (no transposed-conv checkerboards).
        self.reducers = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for k in range(cfg.depth - 1, -1, -1):
            self.reducers.append(nn.Conv2d(chans[k + 1], chans[k], 1))
            self.decoders.append(ResBlock(2 * chans[k], chans[k], cfg))
        self.head = nn.Conv2d(chans[0], cfg.unshuffle ** 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.unshuffle(x)
        skips = []
        for k, enc in enumerate(self.encoders):
            if k > 0:
                h = F.max_pool2d(h, 2)
            h = enc(h)
            skips.append(h)
        h = skips.pop()
        for reduce, dec in zip(self.reducers, self.decoders):
            skip = skips.pop()
            h = reduce(F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False))
            h = dec(torch.cat([h, skip], dim=1))
        return self.shuffle(self.head(h))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def save_model(model: ResUNetCBAM, out_dir: str) -> None:
    """Weights (safetensors, CPU float32) and config.json side by side; written atomically."""
    from safetensors.torch import save_file

    os.makedirs(out_dir, exist_ok=True)
    state = {k: v.detach().to("cpu", torch.float32).contiguous() if v.is_floating_point() else v.detach().cpu()
             for k, v in model.state_dict().items()}
    tmp = os.path.join(out_dir, WEIGHTS_NAME + ".tmp")
    save_file(state, tmp)
    os.replace(tmp, os.path.join(out_dir, WEIGHTS_NAME))
    save_config(model.config, out_dir)


def save_config(config: SegmenterConfig, out_dir: str) -> None:
    tmp = os.path.join(out_dir, CONFIG_NAME + ".tmp")
    with open(tmp, "w") as f:
        json.dump(config.to_dict(), f, indent=2)
    os.replace(tmp, os.path.join(out_dir, CONFIG_NAME))


def load_model(model_dir: str, device: str | torch.device = "cpu") -> ResUNetCBAM:
    from safetensors.torch import load_file

    with open(os.path.join(model_dir, CONFIG_NAME)) as f:
        config = SegmenterConfig.from_dict(json.load(f))
    model = ResUNetCBAM(config)
    model.load_state_dict(load_file(os.path.join(model_dir, WEIGHTS_NAME), device="cpu"))
    return model.to(device).eval()
