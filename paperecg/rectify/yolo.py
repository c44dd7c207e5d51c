"""Offline ultralytics (YOLOv8) plumbing: settings kept in a folder we own, no downloads, threads restored.

ultralytics reads YOLO_CONFIG_DIR and YOLO_OFFLINE when it is first imported, and tries to fetch a font on
every train() unless one is present in its settings folder, so `import_ultralytics` must be the only way this
package imports it.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

# Class ids of the detector: one per canonical lead name (paperecg.layouts.STANDARD_LEADS order).
from ..layouts import STANDARD_LEADS

CLASS_NAMES: tuple[str, ...] = STANDARD_LEADS
MODEL_YAML = "yolov8n.yaml"
SETTINGS_SUBDIR = "yolo_settings"


def _font_source() -> str | None:
    """A TrueType font that ships with matplotlib (ultralytics only needs some font for its plots)."""
    try:
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        return str(path) if path.is_file() else None
    except Exception:  # matplotlib missing: ultralytics then fails only if it plots, which we switch off
        return None


def prepare_settings_dir(settings_dir: str | os.PathLike) -> str:
    """Create the ultralytics settings folder with the font it would otherwise download."""
    settings_dir = Path(settings_dir).resolve()
    font_dir = settings_dir / "Ultralytics"
    font_dir.mkdir(parents=True, exist_ok=True)
    src = _font_source()
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        dst = font_dir / name
        if src and not dst.exists():
            shutil.copyfile(src, dst)
    return str(settings_dir)


_IMPORTED = None


def import_ultralytics(settings_dir: str | os.PathLike | None = None):
    """Import ultralytics offline with its settings in `settings_dir` (a temp folder if None)."""
    global _IMPORTED
    if _IMPORTED is not None:
        return _IMPORTED
    import sys

    if "ultralytics" not in sys.modules:
        if settings_dir is None:
            settings_dir = os.environ.get("YOLO_CONFIG_DIR") or tempfile.mkdtemp(prefix="paperecg_yolo_")
        os.environ["YOLO_CONFIG_DIR"] = prepare_settings_dir(settings_dir)
        os.environ["YOLO_OFFLINE"] = "1"
        os.environ.setdefault("YOLO_VERBOSE", "False")
        # Under torchrun the detector trains on rank 0 alone; ultralytics reads RANK/WORLD_SIZE at import and
        # would then act as a DDP worker (DistributedSampler without a process group). Hide them for the import.
        hidden = {k: os.environ.pop(k) for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE") if k in os.environ}
        try:
            import ultralytics
        finally:
            os.environ.update(hidden)
    else:  # imported elsewhere first: still make sure its settings folder has the font
        prepare_settings_dir(os.environ.get("YOLO_CONFIG_DIR") or tempfile.mkdtemp(prefix="paperecg_yolo_"))
        import ultralytics
    import ultralytics.engine.trainer as trainer

    # ultralytics' own AMP check downloads a reference network on CUDA; ours compares the model with itself
    trainer.check_amp = offline_check_amp
    _IMPORTED = ultralytics
    return ultralytics


def _first_tensor(out):
    """The first tensor of a (nested) model output: the decoded predictions of a YOLO model in eval mode."""
    import torch

    if isinstance(out, torch.Tensor):
        return out
    for item in out if isinstance(out, (list, tuple)) else ():
        t = _first_tensor(item)
        if t is not None:
            return t
    return None


def offline_check_amp(model) -> bool:
    """Whether to train this YOLO model with AMP, decided without a download: never off CUDA; on CUDA only
    if float16 autocast gives finite predictions within 0.5 px (+1 %) of float32 ones on a random batch
    (ultralytics' check uses the same 0.5 tolerance on a downloaded model). Any failure: AMP off."""
    import copy

    import torch

    device = next(model.parameters()).device
    if device.type != "cuda":
        return False
    try:
        probe = copy.deepcopy(model).eval()
        x = torch.rand(2, 3, 256, 256, device=device)
        with torch.no_grad():
            ref = _first_tensor(probe(x)).float()
            with torch.autocast("cuda", dtype=torch.float16):
                half = _first_tensor(probe(x)).float()
        ok = bool(torch.isfinite(half).all()) and float((ref - half).abs().max()) <= 0.5 + 0.01 * float(
            ref.abs().max())
    except Exception as e:  # noqa: BLE001 - an odd model or driver: train in float32 rather than fail
        print(f"[paperecg] detector AMP check failed ({e}); training in float32", flush=True)
        return False
    if not ok:
        print("[paperecg] detector AMP check: float16 predictions differ from float32; training in float32",
              flush=True)
    return ok


def restore_threads(num_threads: int) -> None:
    """ultralytics leaves torch at one thread after train/predict; put the count back."""
    import torch

    if num_threads > 0 and torch.get_num_threads() != num_threads:
        torch.set_num_threads(num_threads)
