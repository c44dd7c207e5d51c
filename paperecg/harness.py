"""The training machinery the trainers share: the budget clock (with the DDP stop-sync), warm-up/cosine
learning-rate schedules, the AMP step and atomic checkpoint saving.

The segmenter and the classifier's branches train in their own loops (a page pool; k folds and rendered
pages) and take these pieces; the detector trains inside ultralytics and takes only its recipe
(`hardware.detector_recipe`) and budget.
"""
from __future__ import annotations

import math
import os
import time
from contextlib import AbstractContextManager

import torch

from .hardware import amp_dtype, needs_grad_scaler


class BudgetClock:
    """Progress through a wall-clock budget (and an optional step cap): whichever is further ahead.
    `elapsed_before_s` continues a resumed run's clock."""

    def __init__(self, budget_s: float, max_steps: int | None = None, elapsed_before_s: float = 0.0):
        self.budget_s = budget_s
        self.max_steps = max_steps
        self.t0 = time.perf_counter() - elapsed_before_s

    def elapsed_s(self) -> float:
        return time.perf_counter() - self.t0

    def progress(self, step: int, elapsed_s: float | None = None) -> float:
        """0 at the start, 1 or more once the budget or the step cap is reached."""
        p = (self.elapsed_s() if elapsed_s is None else elapsed_s) / self.budget_s
        if self.max_steps is not None:
            p = max(p, step / self.max_steps if self.max_steps > 0 else 1.0)
        return p


def sync_progress(progress: float, world: int, device: torch.device) -> float:
    """Under DDP every rank takes the furthest rank's progress, so all stop at the same step (a rank that
    stops alone leaves the others hanging in all-reduce) and use the same learning rate (rank-local
    wall-clock schedules would give each rank other updates and split the weights)."""
    if world <= 1:
        return progress
    t = torch.tensor([progress], dtype=torch.float64, device=device)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return float(t.item())


def warmup_cosine_factor(progress: float, step: int, warmup_steps: int, final_fraction: float) -> float:
    """Learning-rate factor: linear warm-up over the first steps, times a cosine decay over the budget
    (progress 0..1) down to final_fraction."""
    warm = min(1.0, (step + 1) / max(1, warmup_steps))
    p = min(max(progress, 0.0), 1.0)
    return warm * (final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * p)))


def warmup_cosine_lr(progress: float, base_lr: float, warmup: float = 0.03) -> float:
    """Learning rate: linear warm-up over the first `warmup` share of the budget (from 5 %), then a cosine
    decay to zero over the rest."""
    if progress < warmup:
        return base_lr * max(progress / warmup, 0.05)
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * min(1.0, (progress - warmup) / (1.0 - warmup))))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for g in opt.param_groups:
        g["lr"] = lr


class AmpStep:
    """Mixed precision as the hardware module decides it: float16 autocast with a gradient scaler on CUDA,
    bfloat16 autocast without one on the CPU; off: plain float32 steps (the scaler passes through)."""

    def __init__(self, device: torch.device, enabled: bool):
        self.device_type = device.type
        self.enabled = bool(enabled)
        self.dtype = amp_dtype(device.type)
        self.scaler = torch.amp.GradScaler(device.type, enabled=needs_grad_scaler(device.type, self.enabled))

    def autocast(self) -> AbstractContextManager:
        return torch.autocast(device_type=self.device_type, dtype=self.dtype, enabled=self.enabled)

    def step(self, loss: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        """One optimiser step on `loss` (gradients cleared first)."""
        opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(opt)
        self.scaler.update()

    def describe(self) -> str:
        return (f"amp {self.dtype if self.enabled else False} "
                f"(grad scaler {'on' if self.scaler.is_enabled() else 'off'})")


def atomic_torch_save(obj: dict, path: str) -> None:
    """torch.save through a temporary file and a rename: a run cut off while saving leaves the previous
    checkpoint whole."""
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)
