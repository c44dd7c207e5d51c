"""Hardware choice in one place: device, threads, AMP, DDP rank and training profile.

Every trainer asks this module; nothing else reads CUDA state or the environment for these choices.
Overrides: environment variables `PAPERECG_DEVICE` (cpu/cuda/cuda:N), `PAPERECG_PROFILE` (cpu/gpu/tiny),
`PAPERECG_THREADS`, `PAPERECG_BUDGET_SCALE` (multiplies every wall-clock budget), `PAPERECG_COMPONENTS`
(comma list of detector/segmenter/classifier to train; empty = prevalence model only), or a JSON file named by
`PAPERECG_CONFIG` whose keys override the profile's fields (e.g. {"segmenter_minutes": 20}).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class Profile:
    name: str
    device: str
    amp: bool
    # wall-clock budgets per trainer, minutes (the whole train_models call stays within their sum)
    detector_minutes: float
    segmenter_minutes: float
    classifier_minutes: float
    # sizes
    segmenter_crop: int | None  # train on random crops of this size on CPU; None = full working page
    batch_size: int
    num_workers: int
    # which trainable components train_models builds (the prevalence fallback always); PAPERECG_COMPONENTS
    components: tuple[str, ...] = ("detector", "segmenter", "classifier")

    def to_dict(self) -> dict:
        return asdict(self)


def cuda_device_count() -> int:
    """Visible CUDA devices; 0 when torch is missing or its CUDA runtime is broken (CPU it is)."""
    try:
        import torch

        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:
        return 0


COMPONENTS = ("detector", "segmenter", "classifier")

PROFILES = {
    "gpu": Profile("gpu", "cuda", True, 120.0, 600.0, 300.0, None, 16, 8),
    "cpu": Profile("cpu", "cpu", False, 25.0, 55.0, 35.0, 256, 4, 0),
    # for tests and the organizer simulation: seconds, not minutes
    "tiny": Profile("tiny", "cpu", False, 0.3, 0.5, 0.5, 96, 2, 0),
}


def select_profile() -> Profile:
    name = os.environ.get("PAPERECG_PROFILE") or ("gpu" if cuda_device_count() > 0 else "cpu")
    if name not in PROFILES:
        raise ValueError(f"PAPERECG_PROFILE={name!r}: choose one of {sorted(PROFILES)}")
    prof = PROFILES[name]
    if os.environ.get("PAPERECG_DEVICE"):
        dev = os.environ["PAPERECG_DEVICE"]
        prof = replace(prof, device=dev, amp=prof.amp and dev.startswith("cuda"))
    scale = float(os.environ.get("PAPERECG_BUDGET_SCALE", "1"))
    if scale != 1:
        prof = replace(prof, detector_minutes=prof.detector_minutes * scale,
                       segmenter_minutes=prof.segmenter_minutes * scale,
                       classifier_minutes=prof.classifier_minutes * scale)
    if os.environ.get("PAPERECG_COMPONENTS") is not None:
        wanted = tuple(c.strip() for c in os.environ["PAPERECG_COMPONENTS"].split(",") if c.strip())
        unknown = set(wanted) - set(COMPONENTS)
        if unknown:
            raise ValueError(f"PAPERECG_COMPONENTS: unknown {sorted(unknown)}; choose from {COMPONENTS}")
        prof = replace(prof, components=wanted)
    path = os.environ.get("PAPERECG_CONFIG")
    if path:
        with open(path) as f:
            overrides = json.load(f)
        unknown = set(overrides) - set(prof.to_dict())
        if unknown:
            raise ValueError(f"{path}: unknown profile keys {sorted(unknown)}")
        prof = replace(prof, **overrides)
    return prof


def set_threads() -> int:
    """Use every core unless PAPERECG_THREADS says otherwise; returns the thread count."""
    import torch

    n = int(os.environ.get("PAPERECG_THREADS", "0")) or (os.cpu_count() or 1)
    torch.set_num_threads(n)
    return n


def ddp_rank_world() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) under torchrun; (0, 0, 1) otherwise."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)),
            int(os.environ.get("WORLD_SIZE", 1)))
