"""Train the trace segmenter on pages rendered on the fly from records (plus ECG-Image-Kit pages found in
the data folder), with a wall-clock budget, pixel-F1 validation, best-weights saving and exact resume.

Random crops of the working page from a pool of rendered pages (each page reused for many crops), on every
profile. CPU: pages rendered in the training process (a fixed share of the wall time). GPU: bigger batches, AMP,
pages rendered by DataLoader workers in the background; several GPUs through `torchrun`
(DistributedDataParallel).

    python -m paperecg.segment.train --data /work/shared/data/ptbxl --folds 1-8 --out model/segmenter --minutes 55
"""
from __future__ import annotations

import argparse
import json
import math
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from ..hardware import SEGMENTER_BASE_CHANNELS, ddp_rank_world, ddp_setup, select_profile
from ..harness import AmpStep, BudgetClock, atomic_torch_save, set_lr, sync_progress, warmup_cosine_factor
from .data import (EikPages, PagePool, RecordPages, RenderSettings, WorkSample, find_eik_pairs, mixed_page_fn)
from .infer import predict_work_batch
from .loss import LossConfig, f1_counts, f1_from_counts, segmentation_loss
from .model import ResUNetCBAM, SegmenterConfig, count_parameters, load_model, save_model

CHECKPOINT_NAME = "checkpoint.pt"
HISTORY_NAME = "train_history.json"
CURVES_NAME = "curves.png"
THRESHOLDS = np.round(np.arange(0.1, 0.91, 0.05), 2)


def default_model_config() -> SegmenterConfig:
    """The recipe's network (`hardware.SEGMENTER_BASE_CHANNELS`, the same on every profile)."""
    return SegmenterConfig(base_channels=SEGMENTER_BASE_CHANNELS)


@dataclass
class TrainConfig:
    minutes: float | None = None  # wall-clock budget over all runs of this output folder; None = profile's
    max_steps: int | None = None  # optional step cap (tests, reproducibility)
    batch_size: int | None = None  # None = profile's
    crop_px: int | None = -1  # square crop of the working page; None = whole page; -1 = profile's
    lr: float = 2e-3  # Adam (figures: docs/tuning.md)
    lr_final_fraction: float = 0.05  # cosine decay to lr * this at the end of the budget
    warmup_steps: int = 50
    loss: LossConfig = field(default_factory=LossConfig)
    render: RenderSettings = field(default_factory=RenderSettings)
    pool_size: int = 64  # pages held for cropping
    min_pool: int = 12  # pages rendered before the first step
    steps_per_page: float | None = None  # None = calibrated so that rendering takes render_fraction of the time
    render_fraction: float = 0.25
    fg_prob: float = 0.8  # share of crops placed on the trace
    photometric: bool = True
    val_fraction: float = 0.05  # records held out for validation
    val_pages: int = 8  # rendered validation pages (plus up to val_eik_pages ECG-Image-Kit pages)
    val_eik_pages: int = 4
    val_minutes: float = 5.0  # validate this often (and at the end)
    val_steps: int | None = None  # or this often in steps (tests)
    checkpoint_minutes: float = 3.0
    # On a shared CPU, multi-thread torch can run many times slower than one thread: every few minutes,
    # time a few steps at 1 thread and at the full count and keep the faster (CPU only).
    auto_threads: bool = True
    thread_probe_minutes: float = 4.0
    seed: int = 0
    num_workers: int | None = None  # page-rendering workers; None = profile's
    amp: bool | None = None  # None = profile's
    device: str | None = None  # None = profile's
    log_every: int = 20
    # a trained segmenter folder to start from (fine-tuning on a new page mix within a CPU budget); its
    # model config wins; ignored when resuming from a checkpoint
    init_from: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


# --- helpers ------------------------------------------------------------------------------------------

def split_records(records: list[str], val_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """(train, validation) record lists; at least one validation record once there are two records."""
    records = sorted(records)
    if len(records) < 2 or val_fraction <= 0:
        return records, []
    n_val = max(1, int(round(len(records) * val_fraction)))
    order = np.random.default_rng(seed).permutation(len(records))
    val = sorted(records[i] for i in order[:n_val])
    train = sorted(records[i] for i in order[n_val:])
    return train, val


def evaluate(model: ResUNetCBAM, samples: list[WorkSample], device: torch.device, half: bool = False,
             thresholds: np.ndarray = THRESHOLDS) -> np.ndarray:
    """Summed (tp, fp, fn) per threshold over whole validation pages."""
    counts = np.zeros((len(thresholds), 3), np.int64)
    was_training = model.training
    model.eval()
    for s in samples:
        prob = predict_work_batch(model, [s.planes], device, half)[0]
        counts += f1_counts(prob, s.label, thresholds)
    model.train(was_training)
    return counts


def save_curves(history: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax1 = plt.subplots(figsize=(7, 4))
    tr = history.get("train", [])
    if tr:
        ax1.plot([h["step"] for h in tr], [h["loss"] for h in tr], color="tab:blue", label="train loss")
    ax1.set_xlabel("step")
    ax1.set_ylabel("loss", color="tab:blue")
    ax1.set_yscale("log")
    ax2 = ax1.twinx()
    va = history.get("val", [])
    if va:
        ax2.plot([h["step"] for h in va], [h["f1"] for h in va], "o-", color="tab:red", label="val pixel F1")
    ax2.set_ylabel("validation pixel F1", color="tab:red")
    ax2.set_ylim(0, 1)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


class _BackgroundPages:
    """Renders pages in DataLoader workers and hands them over through a queue (GPU recipe)."""

    def __init__(self, page_fn, first_id: int, stride: int, offset: int, num_workers: int):
        from torch.utils.data import DataLoader, IterableDataset

        class _Ids(IterableDataset):
            def __iter__(self_inner):
                info = torch.utils.data.get_worker_info()
                wid, nw = (info.id, info.num_workers) if info else (0, 1)
                k = first_id + wid
                while True:
                    pid = k * stride + offset
                    yield pid, page_fn(pid)
                    k += nw

        # not persistent: the iterator must live only in the thread below, so that it (and with it every
        # worker process) is shut down when the thread ends
        self.loader = DataLoader(_Ids(), batch_size=None, num_workers=num_workers, persistent_workers=False,
                                 prefetch_factor=4)
        self.queue: queue.Queue = queue.Queue(maxsize=4 * num_workers)
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for item in self.loader:
            while not self._stop.is_set():
                try:
                    self.queue.put(item, timeout=0.5)
                    break
                except queue.Full:
                    continue
            if self._stop.is_set():
                return

    def drain(self, limit: int) -> list[tuple[int, WorkSample]]:
        out = []
        while len(out) < limit:
            try:
                out.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return out

    def stop(self, timeout_s: float = 60.0) -> None:
        """Stop rendering and end the worker processes. Without this they kept rendering pages through the
        classifier's training (the iterator outlived train_segmenter), and the classifier's forked loader
        workers inherited it ('AssertionError: can only test a child process' at their exit)."""
        self._stop.set()
        self.thread.join(timeout_s)  # the thread's exit drops the loader iterator, which ends the workers


# --- training -----------------------------------------------------------------------------------------

@dataclass
class _TrainingData:
    """The records and ECG-Image-Kit pages split for training and validation, the training page source and
    the fixed validation pages (rank 0 only)."""

    train_recs: list[str]
    val_recs: list[str]
    eik_train: list[tuple[str, str]]
    eik_val: list[tuple[str, str]]
    page_fn: Callable[[int], WorkSample]
    val_samples: list[WorkSample]


def _model_config(ckpt_path: str, fresh: bool, model_config: SegmenterConfig | None, init_from: str | None,
                  log) -> tuple[dict | None, SegmenterConfig]:
    """(checkpoint to resume or None, the model config): a checkpoint's config wins, then init_from's."""
    ckpt = None
    if os.path.isfile(ckpt_path) and not fresh:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        mcfg = SegmenterConfig.from_dict(ckpt["model_config"])
        if model_config is not None and model_config.to_dict() != mcfg.to_dict():
            log(f"segmenter: resuming {ckpt_path}; its model config wins over the one asked for")
    elif init_from:
        mcfg = load_model(init_from).config
        if model_config is not None and model_config.to_dict() != mcfg.to_dict():
            log(f"segmenter: starting from {init_from}; its model config wins over the one asked for")
    else:
        mcfg = model_config or default_model_config()
    return ckpt, mcfg


def crop_shape(mcfg: SegmenterConfig, crop_px: int | None) -> tuple[int, int]:
    """Training input (h, w): the whole working page padded to the network's stride, or a square crop."""
    mult = mcfg.pad_multiple
    if crop_px is None:
        return (-(-mcfg.work_height_px // mult) * mult, -(-mcfg.work_width_px // mult) * mult)
    c = max(mult, int(round(crop_px / mult)) * mult)
    return (c, c)


def _training_data(record_paths: list[str], eik_pairs: list[tuple[str, str]] | None, mcfg: SegmenterConfig,
                   tc: TrainConfig, is_main: bool) -> _TrainingData:
    train_recs, val_recs = split_records(record_paths, tc.val_fraction, tc.seed)
    eik_pairs = list(eik_pairs or [])
    eik_train, eik_val = eik_pairs, []
    if eik_pairs and tc.val_eik_pages > 0 and len(eik_pairs) >= 2:
        order = np.random.default_rng(tc.seed + 1).permutation(len(eik_pairs))
        n_val = min(tc.val_eik_pages, max(1, len(eik_pairs) // 10))
        eik_val = [eik_pairs[i] for i in sorted(order[:n_val])]
        eik_train = [eik_pairs[i] for i in sorted(order[n_val:])]
    if not train_recs and not eik_train:
        raise ValueError("segmenter: no training data (no records with signals, no ECG-Image-Kit pages)")
    render_fn = RecordPages(train_recs, mcfg, tc.seed * 1000 + 1, tc.render) if train_recs else None
    eik_src = EikPages(eik_train, mcfg) if eik_train else None
    page_fn = mixed_page_fn(render_fn, eik_src, tc.render.eik_fraction, tc.seed * 1000 + 2)
    val_samples: list[WorkSample] = []  # fixed pages, built once
    if is_main:
        if val_recs:
            vfn = RecordPages(val_recs, mcfg, tc.seed * 1000 + 3, tc.render)
            val_samples += [vfn(k) for k in range(tc.val_pages)]
        if eik_val:
            ve = EikPages(eik_val, mcfg)
            val_samples += [ve.load(i) for i in range(len(ve))]
    return _TrainingData(train_recs, val_recs, eik_train, eik_val, page_fn, val_samples)


class _ThreadProbe:
    """On a shared CPU, multi-thread torch can run many times slower than one thread: every few minutes,
    time a few steps at 1 thread and at the full count and keep the faster."""

    def __init__(self, enabled: bool, first_due_s: float, every_s: float, log):
        self.enabled, self.due_s, self.every_s, self.log = enabled, first_due_s, every_s, log
        self.max_threads = torch.get_num_threads()
        self.plan: list[int] = []
        self.times: dict[int, list[float]] = {}
        self.chosen: int | None = None

    def before_step(self, elapsed_s: float) -> bool:
        """Sets this step's thread count; True while probing."""
        if self.enabled and not self.plan and elapsed_s >= self.due_s:
            self.plan, self.times = [1, 1, self.max_threads, self.max_threads], {}
        probing = bool(self.enabled and self.plan)
        if probing:
            torch.set_num_threads(self.plan[0])
        return probing

    def after_step(self, step_s: float, elapsed_s: float, is_main: bool) -> None:
        self.times.setdefault(self.plan.pop(0), []).append(step_s)
        if self.plan:
            return
        best = min(self.times, key=lambda n: float(np.median(self.times[n])))
        torch.set_num_threads(best)
        self.due_s = elapsed_s + self.every_s
        if is_main and best != self.chosen:
            self.log("segmenter: step time " + ", ".join(
                f"{float(np.median(v)):.2f} s at {n} thread(s)" for n, v in self.times.items()) + f" -> using {best}")
        self.chosen = best


class _SegmenterRun:
    """One training run: model, optimiser, AMP, counters, history and page pool, with what the loop does to
    them (a step, validation, a checkpoint, the final save)."""

    def __init__(self, mcfg: SegmenterConfig, tc: TrainConfig, out_dir: str, device: torch.device, amp: AmpStep,
                 rank: int, world: int, log):
        self.mcfg, self.tc, self.out_dir, self.device, self.amp = mcfg, tc, out_dir, device, amp
        self.rank, self.world, self.is_main, self.log = rank, world, rank == 0, log
        self.ckpt_path = os.path.join(out_dir, CHECKPOINT_NAME)
        # channels-last runs the oneDNN (CPU) and tensor-core (CUDA) convolutions faster
        self.model = ResUNetCBAM(mcfg).to(device, memory_format=torch.channels_last)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=tc.lr)
        self.rng = np.random.default_rng([tc.seed, rank, 99])
        self.state = {"step": 0, "elapsed_s": 0.0, "next_page": 0, "page_credit": 0.0,
                      "steps_per_page": tc.steps_per_page, "best_f1": -1.0, "best_threshold": mcfg.threshold,
                      "last_val_s": 0.0, "last_val_step": 0}
        self.history: dict = {"train": [], "val": []}
        self.ddp_model: torch.nn.Module = self.model
        self.pool: PagePool | None = None
        self.background: _BackgroundPages | None = None
        self.render_s_per_page = 0.0
        self.loss_sum, self.loss_n, self.step_time_sum = 0.0, 0, 0.0

    def start(self, ckpt: dict | None, val_samples: list[WorkSample]) -> None:
        """Resume from the checkpoint (weights, optimiser, scaler, counters, history, random states) or start
        from init_from's weights; wrap for DDP."""
        self.val_samples = val_samples
        tc, model = self.tc, self.model
        if ckpt is not None:
            model.load_state_dict(ckpt["model"])
            self.opt.load_state_dict(ckpt["optimizer"])
            if self.amp.scaler.is_enabled() and ckpt.get("scaler"):
                self.amp.scaler.load_state_dict(ckpt["scaler"])
            self.state.update(ckpt["state"])
            self.history = json.loads(ckpt["history"])
            self.rng.bit_generator.state = json.loads(ckpt["numpy_rng"])
            torch.set_rng_state(ckpt["torch_rng"])
            self.log(f"segmenter: resumed at step {self.state['step']} ({self.state['elapsed_s'] / 60:.1f} min used)")
        elif tc.init_from:
            model.load_state_dict(load_model(tc.init_from).state_dict())
            self.log(f"segmenter: weights from {tc.init_from}")
        if self.world > 1:
            from torch.nn.parallel import DistributedDataParallel

            self.ddp_model = DistributedDataParallel(
                model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        model.train()

    def fill_pool(self, page_fn: Callable[[int], WorkSample], workers: int) -> None:
        """The first pages of the pool: from background workers (page ids strided over ranks so that every
        rank sees different pages), restored after a resume, or rendered here."""
        tc = self.tc
        self.pool = pool = PagePool(page_fn, tc.pool_size)
        t_render = time.perf_counter()
        if workers > 0:
            self.background = _BackgroundPages(page_fn, self.state["next_page"], self.world, self.rank, workers)
            # start once every worker has delivered a page; the pool keeps filling while the model trains
            while pool.filled < min(tc.min_pool, tc.pool_size, max(2, workers)):
                for _pid, sample in self.background.drain(tc.pool_size):
                    pool.push(sample)
                time.sleep(0.05)
        elif self.state["next_page"] > 0:
            pool.restore(self.state["next_page"])
        else:
            while pool.next_id < min(tc.min_pool, tc.pool_size):
                pool.add_next()
        self.render_s_per_page = (time.perf_counter() - t_render) / max(1, pool.filled)

    def save_checkpoint(self) -> None:
        self.state["next_page"] = self.pool.next_id
        atomic_torch_save({
            "model": self.model.state_dict(), "optimizer": self.opt.state_dict(),
            "scaler": self.amp.scaler.state_dict() if self.amp.scaler.is_enabled() else {},
            "state": dict(self.state), "history": json.dumps(self.history),
            "numpy_rng": json.dumps(self.rng.bit_generator.state), "torch_rng": torch.get_rng_state(),
            "model_config": self.mcfg.to_dict(), "train_config": json.dumps(self.tc.to_dict()),
        }, self.ckpt_path)

    def validate(self) -> None:
        """Pixel F1 over the validation pages at every threshold; the best weights so far are saved."""
        if not self.val_samples:
            return
        state = self.state
        counts = evaluate(self.model, self.val_samples, self.device, half=False)
        f1s = f1_from_counts(counts)
        i = int(np.argmax(f1s))
        i05 = int(np.argmin(np.abs(THRESHOLDS - 0.5)))
        entry = {"step": state["step"], "minutes": round(state["elapsed_s"] / 60, 2), "f1": float(f1s[i]),
                 "threshold": float(THRESHOLDS[i]), "f1_at_0.5": float(f1s[i05])}
        self.history["val"].append(entry)
        self.log(f"segmenter: validation at step {state['step']}: pixel F1 {f1s[i]:.4f} at threshold "
                 f"{THRESHOLDS[i]:.2f} (F1 {f1s[i05]:.4f} at 0.5)")
        if f1s[i] > state["best_f1"]:
            state["best_f1"] = float(f1s[i])
            state["best_threshold"] = float(THRESHOLDS[i])
            self.mcfg.threshold = float(THRESHOLDS[i])
            save_model(self.model, self.out_dir)

    def refresh_pool(self) -> None:
        """New pages into the pool: what the workers rendered, or (CPU) one every steps_per_page steps."""
        state = self.state
        if self.background is not None:
            for _pid, sample in self.background.drain(2):
                self.pool.push(sample)
        elif state["steps_per_page"] is not None:
            state["page_credit"] += 1.0 / state["steps_per_page"]
            while state["page_credit"] >= 1.0:
                self.pool.add_next()
                state["page_credit"] -= 1.0

    def train_step(self, batch: int, crop_hw: tuple[int, int], progress: float, probe: _ThreadProbe) -> None:
        tc, state, device = self.tc, self.state, self.device
        self.refresh_pool()
        x_np, y_np = self.pool.crops(self.rng, batch, crop_hw, tc.fg_prob, tc.photometric)
        x = torch.from_numpy(x_np).to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
        y = torch.from_numpy(y_np).to(device, non_blocking=True)
        set_lr(self.opt, tc.lr * warmup_cosine_factor(progress, state["step"], tc.warmup_steps,
                                                      tc.lr_final_fraction))
        probing = probe.before_step(state["elapsed_s"])
        ts = time.perf_counter()
        with self.amp.autocast():
            logits = self.ddp_model(x)
        loss = segmentation_loss(logits, y, tc.loss)
        self.amp.step(loss, self.opt)
        step_s = time.perf_counter() - ts
        self.step_time_sum += step_s
        if probing:
            probe.after_step(step_s, state["elapsed_s"], self.is_main)
        state["step"] += 1
        self.loss_sum += float(loss.detach())
        self.loss_n += 1
        # calibrate the rendering rate once (CPU): rendering gets render_fraction of the time
        if state["steps_per_page"] is None and self.background is None and state["step"] == 10:
            step_s = self.step_time_sum / 10
            share = tc.render_fraction / max(1e-6, 1 - tc.render_fraction)
            state["steps_per_page"] = max(1.0, self.render_s_per_page / (share * max(step_s, 1e-4)))
            if self.is_main:
                self.log(f"segmenter: {step_s:.3f} s/step, {self.render_s_per_page:.3f} s/page -> a new page "
                         f"every {state['steps_per_page']:.1f} steps")

    def note_loss(self) -> None:
        """The mean training loss since the last note, into the history."""
        state = self.state
        self.history["train"].append({"step": state["step"], "minutes": round(state["elapsed_s"] / 60, 2),
                                      "loss": self.loss_sum / max(1, self.loss_n),
                                      "lr": self.opt.param_groups[0]["lr"]})
        self.loss_sum, self.loss_n = 0.0, 0

    def loop(self, batch: int, crop_hw: tuple[int, int], budget_s: float) -> None:
        """Steps until the budget or the step cap (the same step on every rank); rank 0 validates and
        checkpoints on the way."""
        from tqdm import tqdm

        tc, state = self.tc, self.state
        clock = BudgetClock(budget_s, tc.max_steps, state["elapsed_s"])
        last_ckpt = time.perf_counter()
        bar = tqdm(total=int(budget_s), initial=int(state["elapsed_s"]), unit="s", desc="segmenter",
                   disable=not self.is_main, mininterval=5.0)
        last_bar = int(state["elapsed_s"])
        probe = _ThreadProbe(tc.auto_threads and self.device.type == "cpu" and torch.get_num_threads() > 1
                             and self.world == 1, state["elapsed_s"] + 15.0, tc.thread_probe_minutes * 60, self.log)
        try:
            while True:
                state["elapsed_s"] = clock.elapsed_s()
                progress = sync_progress(clock.progress(state["step"], state["elapsed_s"]), self.world, self.device)
                if progress >= 1.0:
                    break
                self.train_step(batch, crop_hw, progress, probe)
                if state["step"] % tc.log_every == 0 and self.is_main:
                    mean_loss = self.loss_sum / max(1, self.loss_n)
                    self.note_loss()
                    bar.set_postfix(loss=f"{mean_loss:.4f}", step=state["step"], best_f1=f"{state['best_f1']:.3f}")
                now = int(clock.elapsed_s())
                bar.update(max(0, min(now, int(budget_s)) - last_bar))
                last_bar = max(last_bar, min(now, int(budget_s)))
                if self.is_main:
                    due_val = (state["step"] - state["last_val_step"] >= tc.val_steps if tc.val_steps
                               else state["elapsed_s"] - state["last_val_s"] >= tc.val_minutes * 60)
                    if due_val:
                        self.validate()
                        state["last_val_s"], state["last_val_step"] = state["elapsed_s"], state["step"]
                    if time.perf_counter() - last_ckpt >= tc.checkpoint_minutes * 60:
                        self.save_checkpoint()
                        last_ckpt = time.perf_counter()
        finally:
            bar.close()
            if self.background is not None:
                self.background.stop()

    def finish(self) -> dict:
        """Rank 0: last validation, weights, checkpoint, history and curves; the run's summary."""
        state, out_dir = self.state, self.out_dir
        if self.loss_n:
            self.note_loss()
        if state["last_val_step"] != state["step"] or not self.history["val"]:
            self.validate()
            state["last_val_s"], state["last_val_step"] = state["elapsed_s"], state["step"]
        if not self.val_samples:  # nothing to validate on: keep the last weights
            save_model(self.model, out_dir)
        self.save_checkpoint()
        with open(os.path.join(out_dir, HISTORY_NAME), "w") as f:
            json.dump({"history": self.history, "state": state, "train_config": self.tc.to_dict(),
                       "model_config": self.mcfg.to_dict()}, f, indent=1)
        try:
            save_curves(self.history, os.path.join(out_dir, CURVES_NAME))
        except Exception as e:  # a plotting failure must not lose a trained model
            self.log(f"segmenter: could not draw curves: {e}")
        summary = {"steps": state["step"], "minutes": round(state["elapsed_s"] / 60, 2),
                   "best_f1": state["best_f1"], "threshold": state["best_threshold"],
                   "pages_rendered": self.pool.next_id, "parameters": count_parameters(self.model)}
        self.log(f"segmenter: done {json.dumps(summary)}")
        return summary


def train_segmenter(record_paths: list[str], out_dir: str, eik_pairs: list[tuple[str, str]] | None = None,
                    model_config: SegmenterConfig | None = None, train_config: TrainConfig | None = None,
                    fresh: bool = False, log=print) -> dict:
    """Train (or resume) into out_dir; the best validation weights end up in out_dir/model.safetensors with
    config.json. Returns a summary dict (steps, minutes, best_f1, threshold, ...)."""
    tc = train_config or TrainConfig()
    prof = select_profile()
    rank, _local_rank, world = ddp_rank_world()
    minutes = tc.minutes if tc.minutes is not None else prof.segmenter_minutes
    crop_px = prof.segmenter_crop if tc.crop_px == -1 else tc.crop_px
    # a whole working page costs about as much as four 256-px crops
    batch = tc.batch_size or (prof.batch_size if crop_px is not None else max(1, prof.batch_size // 4))
    workers = prof.num_workers if tc.num_workers is None else tc.num_workers
    device = ddp_setup(tc.device or prof.device)  # cuda:LOCAL_RANK under torchrun; joins the process group
    amp = AmpStep(device, prof.amp if tc.amp is None else tc.amp)
    if rank == 0:  # only rank 0 writes the model folder
        os.makedirs(out_dir, exist_ok=True)
    ckpt, mcfg = _model_config(os.path.join(out_dir, CHECKPOINT_NAME), fresh, model_config, tc.init_from, log)
    crop_hw = crop_shape(mcfg, crop_px)
    torch.manual_seed(tc.seed + rank)
    data = _training_data(record_paths, eik_pairs, mcfg, tc, rank == 0)
    run = _SegmenterRun(mcfg, tc, out_dir, device, amp, rank, world, log)
    run.start(ckpt, data.val_samples)
    if rank == 0:
        log(f"segmenter: {count_parameters(run.model) / 1e6:.2f} M parameters, base {mcfg.base_channels}, depth "
            f"{mcfg.depth}, device {device}, {amp.describe()}, ranks {world}, "
            f"batch {batch}x{crop_hw[0]}x{crop_hw[1]}, "
            f"{len(data.train_recs)} train / {len(data.val_recs)} val records, {len(data.eik_train)} + "
            f"{len(data.eik_val)} EIK pages, budget {minutes:g} min, workers {workers}")
    run.fill_pool(data.page_fn, workers)
    run.loop(batch, crop_hw, minutes * 60.0)
    summary = run.finish() if rank == 0 else {}
    if world > 1:
        torch.distributed.barrier()
    return summary


# --- command line ------------------------------------------------------------------------------------

def _parse_hw(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(h), int(w)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m paperecg.segment.train", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="folder of WFDB records (and/or ECG-Image-Kit images + JSON)")
    ap.add_argument("--out", required=True, help="model folder (weights, config.json, checkpoint, curves)")
    ap.add_argument("--folds", default=None, help="PTB-XL strat_fold selection, e.g. 1-8 (needs ptbxl_database.csv)")
    ap.add_argument("--minutes", type=float, default=None, help="wall-clock budget (default: hardware profile)")
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--base-channels", type=int, default=None, help=f"default: {SEGMENTER_BASE_CHANNELS}")
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--work-size", default="1100x850", help="working size WxH (2200x1700 = full resolution)")
    ap.add_argument("--label-width", type=float, default=None,
                    help="trace label width in working pixels (default 1.5 at 1100x850, scaled with the size)")
    ap.add_argument("--crop", type=int, default=-1, help="crop size in working px; 0 = whole page; -1 = profile")
    ap.add_argument("--batch-size", type=int, default=None, help="default: the profile's crops per step "
                    "(a quarter as many whole pages)")
    ap.add_argument("--lr", type=float, default=TrainConfig.lr)
    ap.add_argument("--alpha", type=float, default=LossConfig.alpha, help="focal loss weight of the trace class")
    ap.add_argument("--gamma", type=float, default=LossConfig.gamma)
    ap.add_argument("--dice", type=float, default=LossConfig.dice_weight, help="weight of the soft-Dice term")
    ap.add_argument("--pool-size", type=int, default=TrainConfig.pool_size)
    ap.add_argument("--workers", type=int, default=None, help="page-rendering workers (default: profile)")
    ap.add_argument("--val-pages", type=int, default=TrainConfig.val_pages)
    ap.add_argument("--val-minutes", type=float, default=TrainConfig.val_minutes)
    ap.add_argument("--no-eik", action="store_true", help="ignore ECG-Image-Kit images in --data")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint in --out")
    ap.add_argument("--init-from", default=None, help="segmenter folder whose weights and model config to "
                    "start from (fine-tuning); ignored when --out holds a checkpoint")
    args = ap.parse_args(argv)

    from ..hardware import set_threads
    from ..records.ptbxl import select_records

    set_threads()
    h, w = _parse_hw(args.work_size)
    base = args.base_channels or default_model_config().base_channels
    # ECG-Image-Kit ink is ~3 px at 200 dpi: 1.5 px at the default working size, proportionally more above it
    label_width = args.label_width or SegmenterConfig.label_width_px * math.sqrt(
        h * w / (SegmenterConfig.work_height_px * SegmenterConfig.work_width_px))
    mcfg = SegmenterConfig(base_channels=base, depth=args.depth, work_width_px=w, work_height_px=h,
                           label_width_px=round(label_width, 3))
    tc = TrainConfig(minutes=args.minutes, max_steps=args.max_steps, batch_size=args.batch_size,
                     crop_px=None if args.crop == 0 else args.crop, lr=args.lr,
                     loss=LossConfig(args.alpha, args.gamma, args.dice), pool_size=args.pool_size,
                     num_workers=args.workers, val_pages=args.val_pages, val_minutes=args.val_minutes,
                     seed=args.seed, init_from=args.init_from)
    records = select_records(args.data, args.folds)
    from ..records.io import signal_files_exist

    records = [r for r in records if signal_files_exist(r)]
    eik = [] if args.no_eik else find_eik_pairs(args.data)
    train_segmenter(records, args.out, eik, mcfg, tc, fresh=args.fresh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
