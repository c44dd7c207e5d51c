"""Speed of the digitizer on one record: seconds per record, per stage, and peak memory.

    PAPERECG_THREADS=2 python bench/speed.py RECORD [--model model] [--repeat 3]
    python bench/speed.py --make-photo DIR        # writes DIR/big: a 12.9-MP phone photo of a printed page


RECORD is a challenge-format record path without extension (its header names the page images). The digitizer
(`Digitizer.load(model)`, CPU) reads the record once to warm up (lazy imports, first-call allocations), then
`--repeat` more times; every figure is the median over those. Threads: torch gets PAPERECG_THREADS (default 2),
as run_model does.

Stages are the digitizer's own functions, timed exclusively (a stage called inside another is not counted
twice): load (decode the page files), reduce (early reduction of a large photo), turn (quarter turns),
detector (lead-name detector passes), names (their layout decoding), tilt, rotate, trim, frame_fit,
frame_warp, segment, extract, other.

Wall time is inflated when other processes share the CPUs: the line also gives the process CPU time (an upper
bound of the wall time on an otherwise idle machine, since the digitizer never waits on anything but the CPU)
and the 1-minute load average measured at the end, so a reader can judge the contention. With 2 torch threads
on a shared machine, OpenMP's default spin-waiting makes the network passes 3-10x slower (12.9-MP photo at
load ~2.5: 7.9 s); OMP_WAIT_POLICY=PASSIVE avoids it (2.3 s).
Last line: one JSON object.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


class StageClock:
    """Exclusive wall and CPU seconds per stage name, for functions wrapped by `wrap`."""

    def __init__(self):
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._stack: list[list[float]] = []  # per open call: [wall of its children, cpu of its children]

    def wrap(self, fn, stage: str):
        def timed(*args, **kwargs):
            self._stack.append([0.0, 0.0])
            t, c = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                dt, dc = time.perf_counter() - t, time.process_time() - c
                child_t, child_c = self._stack.pop()
                self.wall[stage] = self.wall.get(stage, 0.0) + dt - child_t
                self.cpu[stage] = self.cpu.get(stage, 0.0) + dc - child_c
                if self._stack:
                    self._stack[-1][0] += dt
                    self._stack[-1][1] += dc
        return timed

    def reset(self) -> None:
        self.wall, self.cpu = {}, {}


@contextlib.contextmanager
def patched(clock: StageClock):
    """Wrap the digitizer's stage functions where they are looked up; undone on exit."""
    from paperecg.pipeline import digitizer
    from paperecg.rectify import detector, frame, rectify
    from paperecg.segment import infer

    targets = [
        (digitizer, "load_pages", "load"), (digitizer, "extract_signal", "extract"),
        (rectify, "reduce_large_input", "reduce"), (rectify, "turn_quarters", "turn"),
        (rectify, "read_turn", "detector"), (rectify, "estimate_tilt", "tilt"),
        (rectify, "estimate_tilt_from_lines", "tilt"), (rectify, "rotate_image", "rotate"),
        (rectify, "trim_fill_border", "trim"), (rectify, "find_page_frame", "frame_fit"),
        (detector.LeadNameDetector, "name_boxes", "names"), (frame.PageFrame, "warp_image", "frame_warp"),
        (infer.Segmenter, "predict_work", "segment"),
    ]
    for name in ("reduce_page_image", "decode_reduced"):  # optional helpers of newer versions
        if hasattr(rectify, name):
            targets.append((rectify, name, "reduce"))
    saved = [(obj, attr, getattr(obj, attr)) for obj, attr, _ in targets]
    try:
        for obj, attr, stage in targets:
            setattr(obj, attr, clock.wrap(getattr(obj, attr), stage))
        yield
    finally:
        for obj, attr, fn in saved:
            setattr(obj, attr, fn)


BIG_PHOTO_PX = (4000, 3216)  # width, height: a 12.9-MP phone photo, the size case


def make_big_photo(folder: str, seed: int = 0) -> str:
    """A challenge-format record `folder/big`: a synthetic 500-Hz record printed as a 3x4 page at 400 dpi
    and photographed on a table (render/photo.py), fitted into BIG_PHOTO_PX and saved as a JPEG (quality 92),
    with a header as the hidden set writes it. Deterministic for a seed; returns the record path."""
    import cv2
    from PIL import Image

    from paperecg.records.synthetic import synthetic_ecg
    from paperecg.render.page import random_style, render_page
    from paperecg.render.photo import photograph_page
    from paperecg.tools.bad_inputs import hidden_header

    leads = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]
    fs_hz = 500.0
    rng = np.random.default_rng(seed)
    signal = synthetic_ecg(fs_hz, 10.0, "NORM", seed)
    page = render_page(signal, fs_hz, leads, random_style(rng, layout="3x4", dpi=400.0))
    photo = photograph_page(page, rng, strength=0.8).page.image
    # one scale that fits the photo inside (no stretch), then the table's colour (a corner's) out to the full size
    w, h = BIG_PHOTO_PX
    k = min(w / photo.shape[1], h / photo.shape[0])
    photo = cv2.resize(photo, (min(w, round(photo.shape[1] * k)), min(h, round(photo.shape[0] * k))),
                       interpolation=cv2.INTER_CUBIC)
    dy, dx = h - photo.shape[0], w - photo.shape[1]
    table_rgb = [int(v) for v in np.median(photo[:16, -16:].reshape(-1, 3), axis=0)]
    photo = cv2.copyMakeBorder(photo, dy // 2, dy - dy // 2, dx // 2, dx - dx // 2, cv2.BORDER_CONSTANT,
                               value=table_rgb)
    os.makedirs(folder, exist_ok=True)
    Image.fromarray(photo).save(os.path.join(folder, "big-0.jpg"), quality=92)
    with open(os.path.join(folder, "big.hea"), "w") as f:
        f.write(hidden_header("big", fs_hz, int(10 * fs_hz), leads, ["big-0.jpg"]))
    return os.path.join(folder, "big")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("record", nargs="?", help="record path without extension")
    p.add_argument("--make-photo", metavar="DIR", help="write the 12.9-MP photo record DIR/big and exit")
    p.add_argument("--model", default=os.path.join(ROOT, "model"))
    p.add_argument("--repeat", type=int, default=3, help="timed reads after the warm-up (median reported)")
    a = p.parse_args(argv)
    if a.make_photo:
        print(make_big_photo(a.make_photo))
        return 0
    if not a.record:
        p.error("a RECORD (or --make-photo DIR) is needed")

    # paperecg first: it sets OMP_WAIT_POLICY, which OpenMP reads when torch loads (as run_model.py's order has it)
    from paperecg.pipeline.digitizer import Digitizer
    from paperecg.records.io import image_paths, load_header_info

    import torch

    threads = int(os.environ.get("PAPERECG_THREADS", "2"))
    torch.set_num_threads(threads)
    digitizer = Digitizer.load(a.model, device="cpu", log=lambda m: None)
    header = load_header_info(a.record)
    quiet = lambda m: None  # noqa: E731
    digitizer.digitize(a.record, header, log=quiet)  # warm-up
    clock = StageClock()
    walls, cpus, stages_wall, stages_cpu = [], [], [], []
    with patched(clock):
        for _ in range(max(1, a.repeat)):
            clock.reset()
            t, c = time.perf_counter(), time.process_time()
            clock._stack.append([0.0, 0.0])
            result = digitizer.digitize_record(a.record, header, log=quiet)
            inner_t, inner_c = clock._stack.pop()
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
            clock.wall["other"] = walls[-1] - inner_t
            clock.cpu["other"] = cpus[-1] - inner_c
            stages_wall.append(dict(clock.wall))
            stages_cpu.append(dict(clock.cpu))
    names = sorted({k for s in stages_wall for k in s}, key=lambda k: -np.median([s.get(k, 0) for s in stages_cpu]))
    first = result.pages[0] if result.pages else None
    rect = first.rectified if first is not None else None
    from PIL import Image

    paths = image_paths(a.record, header)
    with Image.open(paths[0]) as im:
        size = list(im.size)
    result = {
        "record": os.path.basename(a.record),
        "image_px": size,
        "threads": threads,
        "s_per_record": round(float(np.median(walls)), 3),
        "cpu_s_per_record": round(float(np.median(cpus)), 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
        "load_avg_1min": round(os.getloadavg()[0], 2),
        "cpu_s_by_stage": {k: round(float(np.median([s.get(k, 0.0) for s in stages_cpu])), 3) for k in names},
        "wall_s_by_stage": {k: round(float(np.median([s.get(k, 0.0) for s in stages_wall])), 3) for k in names},
        "leads_read": int(np.isfinite(result.signal).any(axis=0).sum()),
        "frame": rect.frame.method if rect is not None and rect.frame is not None else None,
        "input_scale": round(float(getattr(rect, "input_scale", 1.0)), 4) if rect is not None else None,
        "repeat": len(walls),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
