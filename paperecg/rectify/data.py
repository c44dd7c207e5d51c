"""Training data for the lead-name detector: rendered pages -> crops at detection scale -> YOLO folders.

Label convention: ECG-Image-Kit's `text_bounding_box` (matplotlib's extent of the text line), since that is
what the benchmark scores against. On its clean pages (DejaVu Sans, 200 dpi, em 30 px) a box spans the
name's advance width (pen origin to pen + advance: 'I' 8-9 px, 'aVR' 60 px) and from the cap top to the
font's descent below the baseline (29 px). Names redrawn in DejaVu Sans get exactly that box. For the
Hershey names of our renderer, which report ink boxes (ink height h), the box is the ink box padded by what
was measured for typical names: 0.13 h further left, 0 h higher, 0.16 h further right and 0.32 h lower.
Augmentation then turns the box with the page, as the generator does.

Font variety: our renderer writes names in a Hershey font, ECG-Image-Kit and most printers in a sans-serif
TrueType face; a share of pages gets its names redrawn with DejaVu Sans (shipped with matplotlib).
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..geometry import Box, LeadNameBox
from ..layouts import canonical_lead_name
from .detector import page_scale
from .yolo import CLASS_NAMES, _font_source

INK_TO_LABEL_PAD = (0.13, 0.0, 0.16, 0.32)  # left, top, right, bottom, in ink heights
# share of augmented training pages photographed instead (render/photo.py: perspective, curl, folds, table,
# light): the detector reads the raw photo when it settles a page's orientation, names small and warped
PHOTO_PAGE_SHARE = 0.3


def label_box_from_ink(ink: Box, pad: tuple[float, float, float, float] = INK_TO_LABEL_PAD) -> Box:
    """ECG-Image-Kit-style text box around an upright name's ink box."""
    h = max(ink.height, 1.0)
    return Box(ink.x0 - pad[0] * h, ink.y0 - pad[1] * h, ink.x1 + pad[2] * h, ink.y1 + pad[3] * h)


def label_quad_from_ink(corners_rc: np.ndarray, pad: tuple[float, float, float, float] = INK_TO_LABEL_PAD
                        ) -> np.ndarray:
    """The same padding for a turned ink box given as 4 [row, col] corners (top-left, top-right,
    bottom-right, bottom-left), done in the box's own frame."""
    c = np.asarray(corners_rc, dtype=np.float64).reshape(4, 2)
    u = c[1] - c[0]
    v = c[3] - c[0]
    h = max(float(np.hypot(*v)), 1.0)
    u = u / max(float(np.hypot(*u)), 1e-9)
    v = v / h
    left, top, right, bottom = (p * h for p in pad)
    return np.array([c[0] - left * u - top * v, c[1] + right * u - top * v,
                     c[2] + right * u + bottom * v, c[3] - left * u + bottom * v])


def eik_page_label_boxes(page) -> list[LeadNameBox]:
    """Label boxes of a page read from JSON: ECG-Image-Kit's boxes as they are; our renderer's JSON (it
    marks itself with pixel_origin 'center') holds ink boxes, which get the padding."""
    if page.meta.get("pixel_origin") != "center":
        return page.lead_name_boxes()
    out = []
    for t in page.leads:
        if t.text_box is None:
            continue
        if t.text_corners is not None:
            out.append(LeadNameBox(t.name, Box.from_points(label_quad_from_ink(t.text_corners))))
        else:
            out.append(LeadNameBox(t.name, label_box_from_ink(t.text_box)))
    return out


def with_label_boxes(page, pad: tuple[float, float, float, float] = INK_TO_LABEL_PAD):
    """The page with every lead's text_box (an ink box) replaced by its label box; pages must be upright."""
    leads = [replace(t, text_box=label_box_from_ink(t.text_box, pad), text_corners=None)
             if t.text_box is not None else t for t in page.leads]
    return replace(page, leads=leads)


def _truetype_font(size_px: int):
    from PIL import ImageFont

    path = _font_source()
    return ImageFont.truetype(path, size_px) if path else ImageFont.load_default()


def redraw_names_truetype(page, plain_image: np.ndarray, rng: np.random.Generator):
    """Replace the page's Hershey names with DejaVu Sans names of about the same cap height.

    `plain_image` is the same page rendered without names (the renderer is deterministic), so nothing of the
    old glyphs is left. Each name's ink top-left stays where it was; text_box becomes the new name's label box
    in ECG-Image-Kit's convention (advance width, cap top to descent), so it needs no padding."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(plain_image)
    draw = ImageDraw.Draw(img)
    color = tuple(int(c) for c in page.meta.get("ecg_plot_color", (20, 20, 20)))[:3]
    if page.meta.get("bw"):
        color = (int(np.mean(color)),) * 3
    leads = []
    for t in page.leads:
        if t.text_box is None:
            leads.append(t)
            continue
        cap_px = max(4.0, t.text_box.height * rng.uniform(0.85, 1.2))
        font = _truetype_font(max(5, int(round(cap_px / 0.73))))  # DejaVu cap height = 0.73 em
        # PIL's horizontal extent runs from the pen origin to the advance, as matplotlib's does
        left, cap_top, _, _ = font.getbbox(t.name, anchor="ls")  # cap_top < 0: above the baseline
        x, baseline = t.text_box.x0 - left, t.text_box.y0 - cap_top
        draw.text((x, baseline), t.name, fill=color, font=font, anchor="ls")
        descent = font.getmetrics()[1]
        label = Box(float(x - 0.5), float(baseline + cap_top - 0.5), float(x + font.getlength(t.name) - 0.5),
                    float(baseline + descent - 0.5))
        leads.append(replace(t, text_box=label, text_corners=None))
    return replace(page, image=np.asarray(img, dtype=np.uint8).copy(), leads=leads)


def rotated_label_boxes(boxes: list[LeadNameBox], angle_deg: float, image_shape: tuple[int, int]
                        ) -> list[LeadNameBox]:
    """Bounding boxes of label boxes turned with the page about its centre (ECG-Image-Kit's convention for
    a rotated page: the axis-aligned box around the turned corners)."""
    from ..geometry import rotate_points
    from ..render.labels import box_corners

    h, w = image_shape[:2]
    centre = ((h - 1) / 2.0, (w - 1) / 2.0)
    return [LeadNameBox(b.name, Box.from_points(rotate_points(box_corners(b.box), angle_deg, centre)), b.score)
            for b in boxes]


def render_training_page(signal_mv: np.ndarray, fs_hz: float, lead_names: list[str], rng: np.random.Generator,
                         truetype_prob: float = 0.5, augment: bool = True, rotate_max_deg: float = 10.0,
                         photo_prob: float = PHOTO_PAGE_SHARE) -> tuple[np.ndarray, list[LeadNameBox], float]:
    """One random page (random style, font, augmentation, or with `photo_prob` a photograph of it): image,
    label boxes in ECG-Image-Kit's convention, and the rotation applied (deg)."""
    from ..render.page import random_style, render_page

    style = random_style(rng)
    page = render_page(signal_mv, fs_hz, lead_names, style)
    if style.lead_names and rng.random() < truetype_prob:
        plain = render_page(signal_mv, fs_hz, lead_names, replace(style, lead_names=False))
        page = redraw_names_truetype(page, plain.image, rng)  # its boxes are label boxes already
    else:
        page = with_label_boxes(page)
    if not augment:
        return page.image, page.lead_name_boxes(), 0.0
    if photo_prob > 0 and rng.random() < photo_prob:
        from ..render.photo import photograph_page

        photo = photograph_page(page, rng, strength=float(rng.uniform(0.5, 1.0))).page  # boxes move with the paper
        return photo.image, photo.lead_name_boxes(), float(photo.angle_deg)
    try:
        from ..render.augment import augment_page
    except ImportError:  # renderer without augmentations yet: rotation only
        from .rectify import rotate_image

        angle = float(rng.uniform(-rotate_max_deg, rotate_max_deg))
        return (rotate_image(page.image, angle), rotated_label_boxes(page.lead_name_boxes(), angle,
                                                                     page.image.shape), angle)
    page = augment_page(page, rng, strength=float(rng.uniform(0.5, 1.0)), rotate_max_deg=rotate_max_deg)
    return page.image, page.lead_name_boxes(), float(page.angle_deg)


def _clip_fraction(box: Box, x0: float, y0: float, x1: float, y1: float) -> tuple[Box, float]:
    cb = Box(max(box.x0, x0), max(box.y0, y0), min(box.x1, x1), min(box.y1, y1))
    area = max(box.width, 1e-6) * max(box.height, 1e-6)
    vis = max(cb.width, 0.0) * max(cb.height, 0.0)
    return cb, vis / area


def page_crops(image_rgb: np.ndarray, boxes: list[LeadNameBox], rng: np.random.Generator, long_side_px: int,
               crop_px: int, num_crops: int, scale_jitter: float = 0.15, name_centered_frac: float = 0.75,
               min_visible: float = 0.9) -> list[tuple[np.ndarray, list[LeadNameBox]]]:
    """Crops of the page at detection scale (long side = long_side_px, jittered), most of them around a
    name; boxes are shifted into each crop, and names less than `min_visible` inside it are dropped."""
    import cv2

    h, w = image_rgb.shape[:2]
    scale = page_scale(h, w, long_side_px) * float(rng.uniform(1 - scale_jitter, 1 + scale_jitter))
    sh, sw = max(1, round(h * scale)), max(1, round(w * scale))
    small = cv2.resize(image_rgb, (sw, sh), interpolation=cv2.INTER_AREA)
    if sh < crop_px or sw < crop_px:  # pad small pages with paper-ish grey
        canvas = np.full((max(sh, crop_px), max(sw, crop_px), 3), 200, np.uint8)
        canvas[:sh, :sw] = small
        small = canvas
    sboxes = [LeadNameBox(b.name, Box(b.box.x0 * scale, b.box.y0 * scale, b.box.x1 * scale, b.box.y1 * scale))
              for b in boxes]
    out = []
    H, W = small.shape[:2]
    for _ in range(num_crops):
        if sboxes and rng.random() < name_centered_frac:
            b = sboxes[rng.integers(len(sboxes))].box
            cx = b.cx + rng.uniform(-0.35, 0.35) * crop_px
            cy = b.cy + rng.uniform(-0.35, 0.35) * crop_px
        else:
            cx, cy = rng.uniform(0, W), rng.uniform(0, H)
        x0 = int(np.clip(round(cx - crop_px / 2), 0, W - crop_px))
        y0 = int(np.clip(round(cy - crop_px / 2), 0, H - crop_px))
        crop = small[y0:y0 + crop_px, x0:x0 + crop_px]
        kept = []
        for b in sboxes:
            cb, frac = _clip_fraction(b.box, x0, y0, x0 + crop_px, y0 + crop_px)
            if frac >= min_visible:
                kept.append(LeadNameBox(b.name, Box(cb.x0 - x0, cb.y0 - y0, cb.x1 - x0, cb.y1 - y0)))
        out.append((np.ascontiguousarray(crop), kept))
    return out


def yolo_label_lines(boxes: list[LeadNameBox], width_px: int, height_px: int,
                     class_names: tuple[str, ...] = CLASS_NAMES) -> list[str]:
    lines = []
    for b in boxes:
        name = canonical_lead_name(b.name)
        if name not in class_names or b.box.width <= 0 or b.box.height <= 0:
            continue
        lines.append(f"{class_names.index(name)} {b.box.cx / width_px:.6f} {b.box.cy / height_px:.6f} "
                     f"{b.box.width / width_px:.6f} {b.box.height / height_px:.6f}")
    return lines


def write_yolo_sample(root: str | os.PathLike, split: str, stem: str, image_rgb: np.ndarray,
                      boxes: list[LeadNameBox], class_names: tuple[str, ...] = CLASS_NAMES) -> None:
    import cv2

    root = Path(root)
    (root / "images" / split).mkdir(parents=True, exist_ok=True)
    (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    # label first, image last and atomically: a job killed at the deadline leaves no image without labels
    lines = yolo_label_lines(boxes, image_rgb.shape[1], image_rgb.shape[0], class_names)
    (root / "labels" / split / f"{stem}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95])
    tmp = root / "images" / split / f".{stem}.tmp"
    tmp.write_bytes(buf.tobytes())
    os.replace(tmp, root / "images" / split / f"{stem}.jpg")


def write_data_yaml(root: str | os.PathLike, class_names: tuple[str, ...] = CLASS_NAMES) -> str:
    root = Path(root).resolve()
    names = "\n".join(f"  {i}: {n}" for i, n in enumerate(class_names))
    path = root / "data.yaml"
    path.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n{names}\n")
    return str(path)


def count_samples(root: str | os.PathLike, split: str) -> int:
    d = Path(root) / "images" / split
    return len(list(d.glob("*.jpg"))) if d.is_dir() else 0


# --- one job per page (picklable for a process pool) -------------------------------------------------------

def record_page_job(args: tuple) -> int:
    """Render one page of a WFDB record (or load one ECG-Image-Kit page) and write its crops; returns the
    number of crops written (0 if the record could not be used). Skips work already on disk (resume)."""
    kind, source, seed, root, split, long_side_px, crop_px, num_crops = args
    stem = f"{kind}_{Path(str(source[0] if kind == 'eik' else source)).stem}_{seed}"
    done = Path(root) / "images" / split / f"{stem}_{num_crops - 1}.jpg"
    if done.exists():
        return num_crops
    rng = np.random.default_rng(seed)
    try:
        if kind == "eik":
            from ..render.eik import load_eik_page

            page = load_eik_page(source[0], source[1], fit_baselines=False)
            image, boxes = page.image, eik_page_label_boxes(page)
        else:
            from ..records.io import load_header_info, load_signal

            signal, _ = load_signal(source)
            info = load_header_info(source)
            if signal is None:
                return 0
            image, boxes, _ = render_training_page(signal, info.fs_hz, info.lead_names, rng)
    except Exception as e:  # one bad record must not stop a long data build
        print(f"skipped {source}: {e}", flush=True)
        return 0
    crops = page_crops(image, boxes, rng, long_side_px, crop_px, num_crops)
    for k, (img, boxes) in enumerate(crops):
        write_yolo_sample(root, split, f"{stem}_{k}", img, boxes)
    return len(crops)
