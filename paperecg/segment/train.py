"""Train the trace segmenter on pages rendered on the fly from records (plus ECG-Image-Kit pages found in
the data folder), with a wall-clock budget, pixel-F1 validation, best-weights saving and exact resume.

CPU: random crops of the working page from a pool of pre-rendered pages (each page reused for many crops;
rendering gets a fixed share of the wall time). GPU: whole working pages, AMP, pages rendered by DataLoader
workers in the background; several GPUs through `torchrun` (DistributedDataParallel).

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
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from .data import (EikPages, PagePool, RecordPages, RenderSettings, WorkSample, find_eik_pairs, mixed_page_fn)
from .infer import predict_work_batch
from .loss import LossConfig, f1_counts, f1_from_counts, segmentation_loss
from .model import ResUNetCBAM, SegmenterConfig, count_parameters, load_model, save_model

CHECKPOINT_NAME = "checkpoint.pt"
HISTORY_NAME = "train_history.json"
CURVES_NAME = "curves.png"
THRESHOLDS = np.round(np.arange(0.1, 0.91, 0.05), 2)


CPU_CROP_BATCH = 8


def default_model_config(device_type: str) -> SegmenterConfig:
    """The paper's width (base 32) on GPU; base 16 on CPU, where a wall-clock budget buys more steps with
    the narrower net and inference stays well under the 1.5 s/page target."""
    return SegmenterConfig(base_channels=32 if device_type == "cuda" else 16)


@dataclass
class TrainConfig:
    minutes: float | None = None  # wall-clock budget over all runs of this output folder; None = profile's
    max_steps: int | None = None  # optional step cap (tests, reproducibility)
    batch_size: int | None = None  # None = profile's
    crop_px: int | None = -1  # square crop of the working page; None = whole page; -1 = profile's
    lr: float = 2e-3  # Adam; 3e-3 > 1e-3 > 3e-4 in 150-step CPU trials (the paper used 1e-4 for 100 GPU epochs)
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


def lr_factor(progress: float, step: int, warmup_steps: int, final_fraction: float) -> float:
    """Linear warm-up, then cosine decay over the budget (progress 0..1)."""
    warm = min(1.0, (step + 1) / max(1, warmup_steps))
    p = min(max(progress, 0.0), 1.0)
    return warm * (final_fraction + (1 - final_fraction) * 0.5 * (1 + math.cos(math.pi * p)))


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


def _atomic_torch_save(obj: dict, path: str) -> None:
    tmp = path + ".tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


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

def train_segmenter(record_paths: list[str], out_dir: str, eik_pairs: list[tuple[str, str]] | None = None,
                    model_config: SegmenterConfig | None = None, train_config: TrainConfig | None = None,
                    fresh: bool = False, log=print) -> dict:
    """Train (or resume) into out_dir; the best validation weights end up in out_dir/model.safetensors with
    config.json. Returns a summary dict (steps, minutes, best_f1, threshold, ...)."""
    from ..hardware import amp_dtype, ddp_rank_world, ddp_setup, needs_grad_scaler, select_profile

    tc = train_config or TrainConfig()
    prof = select_profile()
    rank, _local_rank, world = ddp_rank_world()
    minutes = tc.minutes if tc.minutes is not None else prof.segmenter_minutes
    budget_s = minutes * 60.0
    crop_px = prof.segmenter_crop if tc.crop_px == -1 else tc.crop_px
    # crops are small: 8 of them cost about as much as one page-sized batch of 2
    batch = tc.batch_size or (CPU_CROP_BATCH if crop_px is not None else prof.batch_size)
    workers = prof.num_workers if tc.num_workers is None else tc.num_workers
    device = ddp_setup(tc.device or prof.device)  # cuda:LOCAL_RANK under torchrun; joins the process group
    # AMP: float16 + gradient scaler on CUDA; bfloat16 autocast on the CPU (gpu profile run on a CPU: the
    # same code path, no scaler since bfloat16 gradients do not underflow)
    use_amp = bool(prof.amp if tc.amp is None else tc.amp)
    autocast_dtype = amp_dtype(device.type)
    is_main = rank == 0
    if is_main:  # only rank 0 writes the model folder
        os.makedirs(out_dir, exist_ok=True)
    ckpt_path = os.path.join(out_dir, CHECKPOINT_NAME)

    # --- resume or start
    ckpt = None
    if os.path.isfile(ckpt_path) and not fresh:
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        mcfg = SegmenterConfig.from_dict(ckpt["model_config"])
        if model_config is not None and model_config.to_dict() != mcfg.to_dict():
            log(f"segmenter: resuming {ckpt_path}; its model config wins over the one asked for")
    elif tc.init_from:
        mcfg = load_model(tc.init_from).config
        if model_config is not None and model_config.to_dict() != mcfg.to_dict():
            log(f"segmenter: starting from {tc.init_from}; its model config wins over the one asked for")
    else:
        mcfg = model_config or default_model_config(device.type)
    work_hw = (mcfg.work_height_px, mcfg.work_width_px)
    mult = mcfg.pad_multiple
    if crop_px is None:  # whole working page, padded to the network's stride
        crop_hw = (-(-work_hw[0] // mult) * mult, -(-work_hw[1] // mult) * mult)
    else:
        c = max(mult, int(round(crop_px / mult)) * mult)
        crop_hw = (c, c)

    torch.manual_seed(tc.seed + rank)
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

    # validation set: fixed pages, built once
    val_samples: list[WorkSample] = []
    if is_main:
        if val_recs:
            vfn = RecordPages(val_recs, mcfg, tc.seed * 1000 + 3, tc.render)
            val_samples += [vfn(k) for k in range(tc.val_pages)]
        if eik_val:
            ve = EikPages(eik_val, mcfg)
            val_samples += [ve.load(i) for i in range(len(ve))]

    # channels-last runs the oneDNN (CPU) and tensor-core (CUDA) convolutions faster
    model = ResUNetCBAM(mcfg).to(device, memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr)
    scaler = torch.amp.GradScaler(device.type, enabled=needs_grad_scaler(device.type, use_amp))
    rng = np.random.default_rng([tc.seed, rank, 99])
    state = {"step": 0, "elapsed_s": 0.0, "next_page": 0, "page_credit": 0.0, "steps_per_page": tc.steps_per_page,
             "best_f1": -1.0, "best_threshold": mcfg.threshold, "last_val_s": 0.0, "last_val_step": 0}
    history: dict = {"train": [], "val": []}
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        if scaler.is_enabled() and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        state.update(ckpt["state"])
        history = json.loads(ckpt["history"])
        rng.bit_generator.state = json.loads(ckpt["numpy_rng"])
        torch.set_rng_state(ckpt["torch_rng"])
        log(f"segmenter: resumed at step {state['step']} ({state['elapsed_s'] / 60:.1f} min used)")
    elif tc.init_from:
        model.load_state_dict(load_model(tc.init_from).state_dict())
        log(f"segmenter: weights from {tc.init_from}")
    ddp_model = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ddp_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    model.train()
    if is_main:
        log(f"segmenter: {count_parameters(model) / 1e6:.2f} M parameters, base {mcfg.base_channels}, depth "
            f"{mcfg.depth}, device {device}, amp {autocast_dtype if use_amp else False} "
            f"(grad scaler {'on' if scaler.is_enabled() else 'off'}), ranks {world}, "
            f"batch {batch}x{crop_hw[0]}x{crop_hw[1]}, "
            f"{len(train_recs)} train / {len(val_recs)} val records, {len(eik_train)} + {len(eik_val)} EIK pages, "
            f"budget {minutes:g} min, workers {workers}")

    # --- page pool
    pool = PagePool(page_fn, tc.pool_size)
    background = None
    t_render = time.perf_counter()
    if workers > 0:
        # page ids strided over ranks so that every rank sees different pages
        background = _BackgroundPages(page_fn, state["next_page"], world, rank, workers)
        # start once every worker has delivered a page; the pool keeps filling while the model trains
        while pool.filled < min(tc.min_pool, tc.pool_size, max(2, workers)):
            for _pid, sample in background.drain(tc.pool_size):
                pool.push(sample)
            time.sleep(0.05)
    elif state["next_page"] > 0:
        pool.restore(state["next_page"])
    else:
        while pool.next_id < min(tc.min_pool, tc.pool_size):
            pool.add_next()
    render_s_per_page = (time.perf_counter() - t_render) / max(1, pool.filled)

    def save_checkpoint() -> None:
        state["next_page"] = pool.next_id
        _atomic_torch_save({
            "model": model.state_dict(), "optimizer": opt.state_dict(),
            "scaler": scaler.state_dict() if scaler.is_enabled() else {}, "state": dict(state),
            "history": json.dumps(history), "numpy_rng": json.dumps(rng.bit_generator.state),
            "torch_rng": torch.get_rng_state(), "model_config": mcfg.to_dict(),
            "train_config": json.dumps(tc.to_dict()),
        }, ckpt_path)

    def validate() -> None:
        if not val_samples:
            return
        counts = evaluate(model, val_samples, device, half=False)
        f1s = f1_from_counts(counts)
        i = int(np.argmax(f1s))
        i05 = int(np.argmin(np.abs(THRESHOLDS - 0.5)))
        entry = {"step": state["step"], "minutes": round(state["elapsed_s"] / 60, 2), "f1": float(f1s[i]),
                 "threshold": float(THRESHOLDS[i]), "f1_at_0.5": float(f1s[i05])}
        history["val"].append(entry)
        log(f"segmenter: validation at step {state['step']}: pixel F1 {f1s[i]:.4f} at threshold "
            f"{THRESHOLDS[i]:.2f} (F1 {f1s[i05]:.4f} at 0.5)")
        if f1s[i] > state["best_f1"]:
            state["best_f1"] = float(f1s[i])
            state["best_threshold"] = float(THRESHOLDS[i])
            mcfg.threshold = float(THRESHOLDS[i])
            save_model(model, out_dir)

    # --- loop
    from tqdm import tqdm

    t0 = time.perf_counter() - state["elapsed_s"]
    last_ckpt = time.perf_counter()
    loss_sum, loss_n, step_time_sum = 0.0, 0, 0.0
    bar = tqdm(total=int(budget_s), initial=int(state["elapsed_s"]), unit="s", desc="segmenter",
               disable=not is_main, mininterval=5.0)
    last_bar = int(state["elapsed_s"])
    sync = torch.zeros(2, dtype=torch.float64, device=device)  # (stop, progress), all-reduced under DDP
    max_threads = torch.get_num_threads()
    probe = {"due_s": state["elapsed_s"] + 15.0, "plan": [], "times": {}}
    auto_threads = tc.auto_threads and device.type == "cpu" and max_threads > 1 and world == 1
    try:
        while True:
            state["elapsed_s"] = time.perf_counter() - t0
            done = state["elapsed_s"] >= budget_s or (tc.max_steps is not None and state["step"] >= tc.max_steps)
            progress = state["elapsed_s"] / budget_s
            if tc.max_steps:
                progress = max(progress, state["step"] / tc.max_steps)
            if world > 1:
                # every rank stops at the same step and uses the same learning rate (the furthest clock's):
                # rank-local wall-clock schedules would give each rank other updates and split the weights
                sync[0], sync[1] = float(done), progress
                torch.distributed.all_reduce(sync, op=torch.distributed.ReduceOp.MAX)
                done, progress = bool(sync[0].item()), float(sync[1].item())
            if done:
                break
            # refresh the pool
            if background is not None:
                for _pid, sample in background.drain(2):
                    pool.push(sample)
            elif state["steps_per_page"] is not None:
                state["page_credit"] += 1.0 / state["steps_per_page"]
                while state["page_credit"] >= 1.0:
                    pool.add_next()
                    state["page_credit"] -= 1.0
            x_np, y_np = pool.crops(rng, batch, crop_hw, tc.fg_prob, tc.photometric)
            x = torch.from_numpy(x_np).to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            y = torch.from_numpy(y_np).to(device, non_blocking=True)
            for g in opt.param_groups:
                g["lr"] = tc.lr * lr_factor(progress, state["step"], tc.warmup_steps, tc.lr_final_fraction)
            if auto_threads and not probe["plan"] and state["elapsed_s"] >= probe["due_s"]:
                probe["plan"], probe["times"] = [1, 1, max_threads, max_threads], {}
            probing = bool(auto_threads and probe["plan"])
            if probing:
                torch.set_num_threads(probe["plan"][0])
            ts = time.perf_counter()
            with torch.autocast(device_type=device.type, dtype=autocast_dtype, enabled=use_amp):
                logits = ddp_model(x)
            loss = segmentation_loss(logits, y, tc.loss)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            step_s = time.perf_counter() - ts
            step_time_sum += step_s
            if probing:
                probe["times"].setdefault(probe["plan"].pop(0), []).append(step_s)
                if not probe["plan"]:
                    best = min(probe["times"], key=lambda n: float(np.median(probe["times"][n])))
                    torch.set_num_threads(best)
                    probe["due_s"] = state["elapsed_s"] + tc.thread_probe_minutes * 60
                    if is_main and best != probe.get("chosen"):
                        log("segmenter: step time " + ", ".join(
                            f"{float(np.median(v)):.2f} s at {n} thread(s)" for n, v in probe["times"].items())
                            + f" -> using {best}")
                    probe["chosen"] = best
            state["step"] += 1
            loss_sum += float(loss.detach())
            loss_n += 1
            # calibrate the rendering rate once (CPU): rendering gets render_fraction of the time
            if state["steps_per_page"] is None and background is None and state["step"] == 10:
                step_s = step_time_sum / 10
                share = tc.render_fraction / max(1e-6, 1 - tc.render_fraction)
                state["steps_per_page"] = max(1.0, render_s_per_page / (share * max(step_s, 1e-4)))
                if is_main:
                    log(f"segmenter: {step_s:.3f} s/step, {render_s_per_page:.3f} s/page -> a new page every "
                        f"{state['steps_per_page']:.1f} steps")
            if state["step"] % tc.log_every == 0 and is_main:
                history["train"].append({"step": state["step"], "minutes": round(state["elapsed_s"] / 60, 2),
                                         "loss": loss_sum / max(1, loss_n),
                                         "lr": opt.param_groups[0]["lr"]})
                bar.set_postfix(loss=f"{loss_sum / max(1, loss_n):.4f}", step=state["step"],
                                best_f1=f"{state['best_f1']:.3f}")
                loss_sum, loss_n = 0.0, 0
            now = int(time.perf_counter() - t0)
            bar.update(max(0, min(now, int(budget_s)) - last_bar))
            last_bar = max(last_bar, min(now, int(budget_s)))
            if is_main:
                due_val = (state["step"] - state["last_val_step"] >= tc.val_steps if tc.val_steps
                           else state["elapsed_s"] - state["last_val_s"] >= tc.val_minutes * 60)
                if due_val:
                    validate()
                    state["last_val_s"], state["last_val_step"] = state["elapsed_s"], state["step"]
                if time.perf_counter() - last_ckpt >= tc.checkpoint_minutes * 60:
                    save_checkpoint()
                    last_ckpt = time.perf_counter()
    finally:
        bar.close()
        if background is not None:
            background.stop()
    summary = {}
    if is_main:
        if loss_n:
            history["train"].append({"step": state["step"], "minutes": round(state["elapsed_s"] / 60, 2),
                                     "loss": loss_sum / loss_n, "lr": opt.param_groups[0]["lr"]})
        if state["last_val_step"] != state["step"] or not history["val"]:
            validate()
            state["last_val_s"], state["last_val_step"] = state["elapsed_s"], state["step"]
        if not val_samples:  # nothing to validate on: keep the last weights
            save_model(model, out_dir)
        save_checkpoint()
        with open(os.path.join(out_dir, HISTORY_NAME), "w") as f:
            json.dump({"history": history, "state": state, "train_config": tc.to_dict(),
                       "model_config": mcfg.to_dict()}, f, indent=1)
        try:
            save_curves(history, os.path.join(out_dir, CURVES_NAME))
        except Exception as e:  # a plotting failure must not lose a trained model
            log(f"segmenter: could not draw curves: {e}")
        summary = {"steps": state["step"], "minutes": round(state["elapsed_s"] / 60, 2),
                   "best_f1": state["best_f1"], "threshold": state["best_threshold"],
                   "pages_rendered": pool.next_id, "parameters": count_parameters(model)}
        log(f"segmenter: done {json.dumps(summary)}")
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
    ap.add_argument("--base-channels", type=int, default=None, help="default: 32 on GPU, 16 on CPU")
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--work-size", default="1100x850", help="working size WxH (2200x1700 = full resolution)")
    ap.add_argument("--label-width", type=float, default=None,
                    help="trace label width in working pixels (default 1.5 at 1100x850, scaled with the size)")
    ap.add_argument("--crop", type=int, default=-1, help="crop size in working px; 0 = whole page; -1 = profile")
    ap.add_argument("--batch-size", type=int, default=None, help=f"default: {CPU_CROP_BATCH} crops, or the "
                    "profile's batch of whole pages")
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

    from ..hardware import select_profile, set_threads
    from ..records.ptbxl import select_records

    set_threads()
    h, w = _parse_hw(args.work_size)
    device_type = "cuda" if select_profile().device.startswith("cuda") else "cpu"
    base = args.base_channels or default_model_config(device_type).base_channels
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
