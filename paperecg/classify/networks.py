"""The two branch networks as plain nn.Modules: a compact SE-ResNet-1D for the signal, torchvision's
ResNet50 for the page image."""
from __future__ import annotations

import torch
from torch import nn


class SqueezeExcite1d(nn.Module):
    """Channel attention: reweight channels by a gate computed from their global average."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        hidden = max(4, channels // reduction)
        self.gate = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(inplace=True),
                                  nn.Linear(hidden, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x.mean(dim=-1))[:, :, None]


class ResBlock1d(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, kernel: int, dropout: float):
        super().__init__()
        pad = kernel // 2
        self.body = nn.Sequential(
            nn.Conv1d(c_in, c_out, kernel, stride=stride, padding=pad, bias=False), nn.BatchNorm1d(c_out),
            nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Conv1d(c_out, c_out, kernel, padding=pad, bias=False), nn.BatchNorm1d(c_out),
            SqueezeExcite1d(c_out),
        )
        self.skip = (nn.Identity() if stride == 1 and c_in == c_out else
                     nn.Sequential(nn.Conv1d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm1d(c_out)))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


class SignalNet(nn.Module):
    """(B, 24, T) signal+mask channels and (B, F) side features (rhythm, demographics) -> (B, C) logits."""

    def __init__(self, in_channels: int, num_side: int, num_classes: int, width: int = 32,
                 kernel: int = 9, dropout: float = 0.2):
        super().__init__()
        w = width
        self.stem = nn.Sequential(nn.Conv1d(in_channels, w, 15, stride=2, padding=7, bias=False),
                                  nn.BatchNorm1d(w), nn.ReLU(inplace=True))
        chans = [w, 2 * w, 2 * w, 4 * w]
        blocks, c_in = [], w
        for c in chans:
            blocks.append(ResBlock1d(c_in, c, 2, kernel, dropout))
            c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.side = nn.Sequential(nn.Linear(num_side, 32), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * c_in + 32, num_classes))
        # a direct linear path from rate/regularity to every class: the rhythm classes are nearly linear
        # in these features and have the fewest examples
        self.side_linear = nn.Linear(num_side, num_classes)
        # side features are standardised with training-set statistics (set by the trainer, saved with the
        # weights): raw RR variability differs by ~0.1 between rhythms, too small a step for a few hundred
        # optimiser steps to turn into a decision
        self.register_buffer("side_mean", torch.zeros(num_side))
        self.register_buffer("side_std", torch.ones(num_side))

    def forward(self, x: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
        # unknown side features arrive as NaN and are imputed with the training mean (0 after scaling)
        side = torch.nan_to_num((side - self.side_mean) / self.side_std, nan=0.0)
        h = self.blocks(self.stem(x))
        pooled = torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=1)
        return self.head(torch.cat([pooled, self.side(side)], dim=1)) + self.side_linear(side)


def build_image_net(arch: str, num_classes: int) -> nn.Module:
    """torchvision ResNet (random init; ImageNet weights are loaded by the caller when present)."""
    import torchvision

    if arch not in ("resnet18", "resnet34", "resnet50"):
        raise ValueError(f"unknown image arch {arch!r}")
    return getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)


def load_imagenet_backbone(net: nn.Module, state: dict) -> int:
    """Copy every ImageNet tensor whose name and shape match (the 1000-class fc is skipped); returns the
    number of tensors loaded."""
    own = net.state_dict()
    matched = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    own.update(matched)
    net.load_state_dict(own)
    return len(matched)
