"""Loading page images robustly: any PIL mode or bit depth becomes 8-bit RGB, failures become messages."""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

# File extensions treated as page images wherever images are looked for beside headers.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif", ".webp")
# A page larger than this (pixels, as decoded) is refused rather than allowed to exhaust memory.
MAX_PIXELS = 60_000_000
# A JPEG whose long side is at least twice this is decoded at a reduced scale (1/2, 1/4 or 1/8, the DCT's own
# scaling: the decoder skips the fine coefficients, several times faster and smaller than a full decode) that
# keeps its long side at or above this. The rectifier area-reduces every page to this anyway
# (rectify.MAX_INPUT_SIDE_PX), so nothing it would use is lost; a 48-MP phone photo decodes at 1/2.
DECODE_LONG_SIDE_PX = 3000
JPEG_DECODE_SCALES = (8, 4, 2)


class UnreadableImageError(ValueError):
    """A page image that cannot be used; the message is one line naming the file and the reason."""


@dataclass
class PageImage:
    path: str
    rgb: np.ndarray  # uint8 (H, W, 3)
    # file px per decoded px along each axis (a large JPEG decoded at 1/decode_scale; 1: decoded as stored)
    decode_scale: int = 1

    def to_file_px(self, points_xy: np.ndarray) -> np.ndarray:
        """[x, y] points of `rgb` -> the same points in the file's own pixel grid (pixel centres at integers:
        decoded pixel x covers file pixels [x s, (x + 1) s), so x_file + 0.5 = (x + 0.5) s)."""
        pts = np.asarray(points_xy, dtype=np.float64).reshape(-1, 2)
        s = float(self.decode_scale)
        return pts if s == 1.0 else (pts + 0.5) * s - 0.5


def jpeg_decode_scale(width_px: int, height_px: int, long_side_px: int | None) -> int:
    """The largest DCT reduction (8, 4, 2; else 1) that keeps the long side at or above long_side_px."""
    if not long_side_px:
        return 1
    for s in JPEG_DECODE_SCALES:
        if max(width_px, height_px) // s >= long_side_px:
            return s
    return 1


def _draft(im, long_side_px: int | None) -> int:
    """Ask the JPEG decoder for a reduced decode (PIL's draft) when the image is far larger than needed;
    returns the scale it set (file px per decoded px), 1 when none, 0 when the decoder reduced it in a way
    that is not a plain DCT scaling (the caller then decodes in full)."""
    if getattr(im, "format", None) != "JPEG" or not hasattr(im, "draft"):
        return 1
    w, h = im.size
    s = jpeg_decode_scale(w, h, long_side_px)
    if s == 1:
        return 1
    im.draft(im.mode, (w // s, h // s))  # PIL takes the largest scale whose result is at least this size
    got = round(w / im.size[0])
    # libjpeg's scaled output: ceil(size / scale) on both axes (anything else would break the exact map back)
    return got if got > 1 and im.size == (-(-w // got), -(-h // got)) else 0


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
    if mode == "RGB":  # (convert would copy a photo's 40 MB once more for nothing)
        return np.asarray(image, dtype=np.uint8)
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


def load_page(path: str, reduce_to_px: int | None = DECODE_LONG_SIDE_PX) -> PageImage:
    """Read one image file; raises UnreadableImageError (a ValueError) with a one-line message on anything
    unusable (missing, empty, not an image, truncated, too large or too small). A JPEG whose long side is at
    least twice reduce_to_px is decoded at a reduced scale (PageImage.decode_scale); None: always in full."""
    from PIL import Image, UnidentifiedImageError

    if not os.path.isfile(path):
        raise UnreadableImageError(f"image file not found: {path}")
    if os.path.getsize(path) == 0:
        raise UnreadableImageError(f"image file is empty (0 bytes): {path}")
    try:
        with Image.open(path) as im:
            w, h = im.size
            if w < 2 or h < 2:
                raise UnreadableImageError(f"image too small ({w}x{h} px): {path}")
            decode_scale = _draft(im, reduce_to_px)
            if decode_scale == 0:  # reduced in some other way than the DCT's: decode in full instead
                return load_page(path, None)
            if im.size[0] * im.size[1] > MAX_PIXELS:
                raise UnreadableImageError(f"image too large ({w}x{h} px): {path}")
            im.load()
            rgb = to_rgb_uint8(im)
    except UnreadableImageError:
        raise
    except Exception as e:  # decoders raise many types (OSError, SyntaxError, ImportError via ultralytics...)
        cause = _root_cause(e)
        if isinstance(cause, UnidentifiedImageError):
            raise UnreadableImageError(f"unreadable image {path}: not an image (no known image format)") from e
        raise UnreadableImageError(f"unreadable image {path}: {type(cause).__name__}: {cause}") from e
    return PageImage(path=path, rgb=rgb, decode_scale=decode_scale)


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
