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
    else:  # imported elsewhere first: still make sure its settings folder has the font
        prepare_settings_dir(os.environ.get("YOLO_CONFIG_DIR") or tempfile.mkdtemp(prefix="paperecg_yolo_"))
    import ultralytics

    _IMPORTED = ultralytics
    return ultralytics


def restore_threads(num_threads: int) -> None:
    """ultralytics leaves torch at one thread after train/predict; put the count back."""
    import torch

    if num_threads > 0 and torch.get_num_threads() != num_threads:
        torch.set_num_threads(num_threads)
