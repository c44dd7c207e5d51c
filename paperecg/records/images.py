"""Loading page images robustly: any PIL mode or bit depth becomes 8-bit RGB, failures become messages."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

# File extensions treated as page images wherever images are looked for beside headers.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp")
# A page larger than this (pixels) is refused rather than allowed to exhaust memory.
MAX_PIXELS = 60_000_000


class UnreadableImageError(ValueError):
    """A page image that cannot be used; the message is one line naming the file and the reason."""


@dataclass
class PageImage:
    path: str
    rgb: np.ndarray  # uint8 (H, W, 3)


def to_rgb_uint8(image) -> np.ndarray:
    """PIL image of any mode (1, L, P, RGBA, I;16, I, F, CMYK, LA, ...) -> uint8 (H, W, 3).

    Transparent pixels are composited over white (ECG-Image-Kit writes RGBA pages); 16/32-bit and float
    images are rescaled by their own range.
    """
    from PIL import Image

    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(image, dtype=np.float64)
        lo, hi = np.nanmin(arr), np.nanmax(arr)
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        gray = np.clip((arr - lo) * scale, 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"), dtype=np.uint8)
    return np.asarray(image.convert("RGB"), dtype=np.uint8)


def _root_cause(error: BaseException) -> BaseException:
    """The first exception in `error`'s chain (cause or context) that says why the file could not be read.

    ultralytics patches PIL's `Image.open` on import: an unidentifiable file then surfaces as
    `ModuleNotFoundError: No module named 'pi_heif'` (its HEIF fallback), raised while handling PIL's
    `UnidentifiedImageError`; the message must name PIL's reason, not the missing plug-in.
    """
    from PIL import UnidentifiedImageError

    seen, e = set(), error
    while e is not None and id(e) not in seen:
        if isinstance(e, UnidentifiedImageError):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return error


def load_page(path: str) -> PageImage:
    """Read one image file; raises UnreadableImageError (a ValueError) with a one-line message on anything
    unusable (missing, empty, not an image, truncated, too large or too small)."""
    from PIL import Image, UnidentifiedImageError

    if not os.path.isfile(path):
        raise UnreadableImageError(f"image file not found: {path}")
    if os.path.getsize(path) == 0:
        raise UnreadableImageError(f"image file is empty (0 bytes): {path}")
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w * h > MAX_PIXELS:
                raise UnreadableImageError(f"image too large ({w}x{h} px): {path}")
            if w < 2 or h < 2:
                raise UnreadableImageError(f"image too small ({w}x{h} px): {path}")
            im.load()
            rgb = to_rgb_uint8(im)
    except UnreadableImageError:
        raise
    except Exception as e:  # decoders raise many types (OSError, SyntaxError, ImportError via ultralytics...)
        cause = _root_cause(e)
        if isinstance(cause, UnidentifiedImageError):
            raise UnreadableImageError(f"unreadable image {path}: not an image (no known image format)") from e
        raise UnreadableImageError(f"unreadable image {path}: {type(cause).__name__}: {cause}") from e
    return PageImage(path=path, rgb=rgb)


def load_pages(paths: list[str], log=None) -> list[PageImage]:
    """Every readable page among `paths`, each decoded once; each failure is reported through `log` (a
    callable) as one line and skipped, so one bad file never costs the good pages beside it."""
    pages = []
    for p in paths:
        try:
            pages.append(load_page(p))
        except ValueError as e:
            if log is not None:
                log(str(e))
    return pages
