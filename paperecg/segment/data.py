"""Training data for the segmenter: pages (rendered from records, or ECG-Image-Kit pages) in the working
frame, a pool that reuses each page for many random crops, and cheap photometric augmentation.

Determinism: page `k` is a pure function of (seed, k), and the pool's content is a pure function of the
number of pages drawn so far, so a run resumed from a checkpoint sees exactly the pages it would have seen.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

from .preprocess import draw_trace_label, work_input


@dataclass
class WorkSample:
    planes: np.ndarray  # uint8 (P, h, w) network input planes (preprocess.page_to_work), working frame
    label: np.ndarray  # bool (h, w), trace pixels


PageFn = Callable[[int], WorkSample]


def sample_from_page(image: np.ndarray, polylines_rc: list[np.ndarray], config) -> WorkSample:
    """A page image and its plotted trace points (page px) -> working-frame input planes and label
    (config: a SegmenterConfig)."""
    planes, scale = work_input(image, config)
    return WorkSample(planes, draw_trace_label(polylines_rc, planes.shape[1:], scale, config.label_width_px))


def sample_from_rendered(page, config) -> WorkSample:
    """`paperecg.render` RenderedPage (ours or ECG-Image-Kit's) -> WorkSample."""
    return sample_from_page(page.image, [t.pixels for t in page.leads], config)


# --- sources ------------------------------------------------------------------------------------------

@dataclass
class RenderSettings:
    # rendered, then scaled to the working size; 50 and 75 dpi pages (trace ~1 px, anti-aliased) reach the
    # segmenter upsampled, as low-resolution scans do after the page frame brings them to 200 dpi
    dpi_choices: tuple[float, ...] = (50.0, 75.0, 100.0, 150.0, 200.0, 200.0)
    augment_prob: float = 0.7
    # share of augmented pages photographed instead (render/photo.py: perspective, curl, folds, shading,
    # table, blur, noise, JPEG, faint steep strokes; the mask moves with the paper). Rectification flattens a
    # photo before the segmenter sees it, but what remains is its light, blur, creases and faded QRS strokes:
    # real phone photos score far below flat pages, so they are a large share.
    photo_prob: float = 0.45
    # a phone photographs a printed page: a 12-MP photo of a letter page holds it at 250-330 dpi (real
    # photos' strokes are 0.36-0.45 mm wide at half darkness, blur included), never at a 50-dpi scan's
    photo_dpi_choices: tuple[float, ...] = (200.0, 250.0, 300.0)
    augment_strength: float = 1.0
    rotate_max_deg: float = 5.0
    eik_fraction: float = 0.3  # share of pages taken from ECG-Image-Kit images when a folder has them


class RecordPages:
    """page_id -> WorkSample rendered by the renderer from one of `record_paths` (random style and layout,
    random resolution, augmented with probability augment_prob)."""

    def __init__(self, record_paths: list[str], config, seed: int, settings: RenderSettings | None = None):
        if not record_paths:
            raise ValueError("no training records")
        self.records = list(record_paths)
        self.config = config
        self.seed = seed
        self.settings = settings or RenderSettings()

    def __call__(self, page_id: int) -> WorkSample:
        from ..render.dataset import render_training_page

        rng = np.random.default_rng([self.seed, page_id])
        s = self.settings
        record = self.records[int(rng.integers(len(self.records)))]
        augment = bool(rng.random() < s.augment_prob)
        photo = augment and bool(rng.random() < s.photo_prob)
        dpi = float(rng.choice(s.photo_dpi_choices if photo else s.dpi_choices))
        page = render_training_page(record, rng, augment=augment, dpi=dpi, strength=s.augment_strength,
                                    rotate_max_deg=s.rotate_max_deg, photo_prob=1.0 if photo else 0.0)
        return sample_from_rendered(page, self.config)


class EikPages:
    """ECG-Image-Kit images (with their JSON) as WorkSamples, loaded once and cached in the working frame."""

    def __init__(self, pairs: list[tuple[str, str]], config):
        self.pairs = list(pairs)
        self.config = config
        self._cache: dict[int, WorkSample] = {}

    def __len__(self) -> int:
        return len(self.pairs)

    def load(self, index: int) -> WorkSample:
        if index not in self._cache:
            from ..render.eik import load_eik_page

            image_path, json_path = self.pairs[index]
            page = load_eik_page(image_path, json_path, fit_baselines=False)
            self._cache[index] = sample_from_rendered(page, self.config)
        return self._cache[index]


def find_eik_pairs(folder: str) -> list[tuple[str, str]]:
    """ECG-Image-Kit (image, JSON) pairs under a folder."""
    from ..render.dataset import find_eik_pages

    return list(find_eik_pages(folder))


def mixed_page_fn(render_fn: PageFn | None, eik: EikPages | None, eik_fraction: float, seed: int) -> PageFn:
    """page_id -> an ECG-Image-Kit page with probability eik_fraction (when any), else a rendered page."""
    if render_fn is None and (eik is None or len(eik) == 0):
        raise ValueError("no data: neither records to render nor ECG-Image-Kit pages")

    def page_fn(page_id: int) -> WorkSample:
        rng = np.random.default_rng([seed, page_id, 7])
        use_eik = eik is not None and len(eik) > 0 and (render_fn is None or rng.random() < eik_fraction)
        if use_eik:
            return eik.load(int(rng.integers(len(eik))))  # type: ignore[union-attr]
        return render_fn(page_id)  # type: ignore[misc]

    return page_fn


# --- pool and crops -----------------------------------------------------------------------------------

class PagePool:
    """`size` slots; page k goes to slot k % size. Content depends only on `next_id` (restorable)."""

    def __init__(self, page_fn: PageFn, size: int):
        self.page_fn = page_fn
        self.size = size
        self.slots: list[WorkSample | None] = [None] * size
        self.trace_rc: list[np.ndarray | None] = [None] * size  # trace pixel coordinates per slot
        self.next_id = 0

    @property
    def filled(self) -> int:
        return min(self.next_id, self.size)

    def put(self, page_id: int, sample: WorkSample) -> None:
        slot = page_id % self.size
        self.slots[slot] = sample
        self.trace_rc[slot] = np.argwhere(sample.label).astype(np.int32)

    def push(self, sample: WorkSample) -> None:
        """Add a page made elsewhere (background workers) as the next page."""
        self.put(self.next_id, sample)
        self.next_id += 1

    def add_next(self) -> None:
        self.put(self.next_id, self.page_fn(self.next_id))
        self.next_id += 1

    def restore(self, next_id: int) -> None:
        """Rebuild the pool as it was after `next_id` pages had been drawn."""
        self.slots = [None] * self.size
        self.trace_rc = [None] * self.size
        for k in range(max(0, next_id - self.size), next_id):
            self.put(k, self.page_fn(k))
        self.next_id = next_id

    def crops(self, rng: np.random.Generator, batch: int, crop_hw: tuple[int, int], fg_prob: float,
              photometric: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """(B, P, ch, cw) float32 inputs in [0, 1] and (B, 1, ch, cw) labels in {0, 1}, cropped from random
        filled slots; a crop at least the page's size takes the whole page (zero-padded)."""
        xs, ys = [], []
        for _ in range(batch):
            slot = int(rng.integers(self.filled))
            sample = self.slots[slot]
            assert sample is not None
            g, lab = random_crop(sample, self.trace_rc[slot], rng, crop_hw, fg_prob)
            xs.append(photometric_augment(g, rng) if photometric else g.astype(np.float32) / 255.0)
            ys.append(lab.astype(np.float32))
        return np.stack(xs), np.stack(ys)[:, None]


def random_crop(sample: WorkSample, trace_rc: np.ndarray | None, rng: np.random.Generator,
                crop_hw: tuple[int, int], fg_prob: float) -> tuple[np.ndarray, np.ndarray]:
    """A crop of crop_hw; with probability fg_prob placed around a random trace pixel (trace is sparse, and
    crops of blank margin teach little). Parts beyond the page are zero (blank paper, no trace)."""
    h, w = sample.label.shape
    ch, cw = crop_hw
    if trace_rc is not None and len(trace_rc) and rng.random() < fg_prob:
        r, c = trace_rc[int(rng.integers(len(trace_rc)))]
        r0 = int(r) - ch // 2 + int(rng.integers(-(ch // 4), ch // 4 + 1))
        c0 = int(c) - cw // 2 + int(rng.integers(-(cw // 4), cw // 4 + 1))
    else:
        r0 = int(rng.integers(0, max(1, h - ch + 1)))
        c0 = int(rng.integers(0, max(1, w - cw + 1)))
    r0 = int(np.clip(r0, 0, max(0, h - ch)))
    c0 = int(np.clip(c0, 0, max(0, w - cw)))
    g = np.zeros((sample.planes.shape[0], ch, cw), np.uint8)
    lab = np.zeros((ch, cw), bool)
    gh, gw = min(ch, h - r0), min(cw, w - c0)
    g[:, :gh, :gw] = sample.planes[:, r0:r0 + gh, c0:c0 + gw]
    lab[:gh, :gw] = sample.label[r0:r0 + gh, c0:c0 + gw]
    return g, lab


def photometric_augment(planes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 (P, h, w) crop -> float32 [0, 1] with random contrast, gamma, blur and noise on the ink plane
    and a random gain on the chroma plane (labels unchanged: none of these moves a pixel)."""
    out = planes.astype(np.float32) / 255.0
    x = out[0]
    if rng.random() < 0.3:
        x = cv2.GaussianBlur(x, (0, 0), float(rng.uniform(0.3, 0.9)))
    if rng.random() < 0.7:
        lo = rng.uniform(0.0, 0.15)
        x = np.clip(lo + x * rng.uniform(0.6, 1.2), 0.0, 1.0) ** rng.uniform(0.7, 1.4)
    if rng.random() < 0.4:
        x = x + rng.normal(0.0, rng.uniform(0.01, 0.06), size=x.shape).astype(np.float32)
    out[0] = np.clip(x, 0.0, 1.0)
    if len(out) > 1 and rng.random() < 0.5:
        out[1:] = np.clip(out[1:] * rng.uniform(0.5, 1.5), 0.0, 1.0)
    return out
