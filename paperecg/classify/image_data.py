"""Image branch input: centre-square crop of the page resized to the network size, and training pages
rendered from the training records' signals (or read from the images the records list)."""
from __future__ import annotations

import numpy as np

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def square_crop_resize(image_rgb: np.ndarray, size_px: int, scale: float = 1.0,
                       shift_frac: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Centre square crop (side = scale * shorter page side, moved by shift_frac of the free room) resized
    to size_px x size_px with area averaging, as uint8 (size_px, size_px, 3). The reference design's input."""
    from PIL import Image

    img = np.asarray(image_rgb)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    h, w = img.shape[:2]
    side = max(1, int(round(min(h, w) * min(1.0, scale))))
    room_y, room_x = h - side, w - side
    y0 = int(np.clip(room_y / 2 + shift_frac[0] * room_y / 2, 0, room_y))
    x0 = int(np.clip(room_x / 2 + shift_frac[1] * room_x / 2, 0, room_x))
    crop = Image.fromarray(np.ascontiguousarray(img[y0:y0 + side, x0:x0 + side, :3]))
    return np.asarray(crop.resize((size_px, size_px), Image.BOX if side > size_px else Image.BILINEAR))


def to_tensor_input(crops_uint8: np.ndarray) -> np.ndarray:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) float32 normalised with the ImageNet statistics."""
    x = crops_uint8.astype(np.float32) / 255.0
    x = (x - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def photometric_jitter(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cheap scan/photo look on a small crop: contrast, brightness, colour cast, noise, sometimes grey."""
    x = crop.astype(np.float32)
    x = (x - 128.0) * rng.uniform(0.7, 1.2) + 128.0 + rng.uniform(-25, 20)
    x = x + rng.uniform(-12, 12, size=3)
    if rng.random() < 0.15:
        x = np.repeat(x.mean(axis=2, keepdims=True), 3, axis=2)
    x = x + rng.normal(0.0, rng.uniform(0, 8), size=x.shape)
    return np.clip(x, 0, 255).astype(np.uint8)


def _augment_available():
    try:
        from ..render.augment import augment_page  # the renderer's scan/photo augmentation
        return augment_page
    except Exception:  # renderer without augmentation yet: photometric jitter only
        return None


def render_training_crop(signal_mv: np.ndarray, fs_hz: float, lead_names: list[str], size_px: int,
                         dpi: float, rng: np.random.Generator, augment: bool = True) -> np.ndarray:
    """One random-style page of this record, rendered at `dpi`, optionally augmented, cropped and resized."""
    from ..render.page import random_style, render_page

    style = random_style(rng, dpi=dpi)
    page = render_page(signal_mv, fs_hz, lead_names, style, rng)
    image = page.image
    if augment:
        augment_page = _augment_available()
        if augment_page is not None and rng.random() < 0.7:
            image = augment_page(page, rng, strength=float(rng.uniform(0.3, 1.0)), rotate_max_deg=5.0).image
    scale = rng.uniform(0.9, 1.0) if augment else 1.0
    shift = tuple(rng.uniform(-1, 1, size=2)) if augment else (0.0, 0.0)
    crop = square_crop_resize(image, size_px, scale, shift)
    return photometric_jitter(crop, rng) if augment else crop


def validation_crop(signal_mv: np.ndarray, fs_hz: float, lead_names: list[str], size_px: int, dpi: float,
                    seed: int) -> np.ndarray:
    """A reproducible standard 3x4+1 page in a random style (the challenge's layout), unaugmented."""
    from ..render.page import random_style, render_page

    rng = np.random.default_rng(seed)
    page = render_page(signal_mv, fs_hz, lead_names, random_style(rng, layout="3x4+1", dpi=dpi), rng)
    return square_crop_resize(page.image, size_px)
