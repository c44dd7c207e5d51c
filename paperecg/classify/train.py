"""Training: k-fold signal-branch ensemble (out-of-fold predictions for thresholds), image branch on
rendered pages, fusion weight and per-class thresholds tuned on held-out training records.

    python -m paperecg.classify.train --data DIR --out DIR [--folds 1-8] [--minutes M]

Time split of the budget: signal branch 55 %, image branch 33 %, the rest for loading, validation and tuning.
Interrupted runs resume (--resume) from the per-fold and image checkpoints in OUT/_work.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ..hardware import classifier_recipe, ddp_rank_world, ddp_setup, select_profile, set_threads
from ..harness import AmpStep, BudgetClock, atomic_torch_save, set_lr, sync_progress, warmup_cosine_lr
from ..log import log_if
from ..records.labels import CLASSES, labels_to_multi_hot
from .image_data import render_training_crop, square_crop_resize, to_tensor_input, validation_crop
from .model import Classifier, ClassifierConfig, make_signal_net, score_probs
from .networks import build_image_net, load_imagenet_backbone
from .signal_data import augment_signal, network_input, side_features
from .thresholds import positive_weights, tune_thresholds
from .train_data import (HIDDEN_DEMOGRAPHICS, TrainRecord, load_training_records, make_folds, predict_signal,
                         validation_signal_view)


def _log(verbose: bool, *msg) -> None:
    """A progress line of the classifier's training (prefixed, as the pipeline's lines are not)."""
    log_if(verbose, "[classify]", *msg)


# ImageNet weights for the image branch, looked for in the model folder and the folder above it, named after
# the architecture: "{arch}_imagenet.safetensors" or "{arch}_imagenet.pth" (e.g. torchvision's
# resnet50-11ad3fa6.pth renamed resnet50_imagenet.pth). Nothing is ever downloaded.
IMAGENET_SUFFIXES = ("_imagenet.safetensors", "_imagenet.pth")
SIGNAL_SHARE, IMAGE_SHARE = 0.55, 0.33


def _masked_bce(pos_weight: torch.Tensor, class_mask: torch.Tensor):
    bce = nn.BCEWithLogitsLoss(pos_weight=pos_weight, reduction="none")

    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # classes absent from training are masked out instead of being taught "never"
        return (bce(logits, target) * class_mask).sum(dim=1).mean() / class_mask.sum().clamp(min=1.0)

    return loss


# --- signal branch --------------------------------------------------------------------------------------

# Hidden (test) headers carry no age or sex (the organizers keep them for training only): half of the
# training draws go without them, so the network works either way instead of leaning on features it will
# not get.
DEMOGRAPHICS_DROP_P = 0.5


class SignalTrainSet(torch.utils.data.Dataset):
    """Augmented (digitization-like) versions of true signals, reproducible per (seed, epoch, index);
    demographics dropped with probability DEMOGRAPHICS_DROP_P."""

    def __init__(self, xs: list[np.ndarray], demo: list[tuple], y: np.ndarray, seed: int):
        self.xs, self.demo, self.y, self.seed, self.epoch = xs, demo, y, seed, 0

    def __len__(self) -> int:
        return len(self.xs)

    def __getitem__(self, i: int):
        rng = np.random.default_rng([self.seed, self.epoch, i])
        x = augment_signal(self.xs[i], rng)
        demo = HIDDEN_DEMOGRAPHICS if rng.random() < DEMOGRAPHICS_DROP_P else self.demo[i]
        return network_input(x), side_features(x, *demo), self.y[i]


def side_feature_stats(views: list[np.ndarray], demo: list[tuple]) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (floored) standard deviation of the side features over the training views."""
    feats = np.stack([side_features(v, *d) for v, d in zip(views, demo)]).astype(np.float64)
    # unknown demographics are NaN (imputed with the mean by the network): statistics over the known ones
    mean = np.nan_to_num(np.nanmean(feats, axis=0), nan=0.0)
    std = np.nan_to_num(np.nanstd(feats, axis=0), nan=1.0)
    return mean.astype(np.float32), np.maximum(std, 0.05).astype(np.float32)


def train_signal_net(cfg: ClassifierConfig, xs: list[np.ndarray], demo: list[tuple], y: np.ndarray,
                     minutes: float, max_epochs: int, device, seed: int, batch_size: int = 64,
                     lr: float = 2e-3, workers: int = 1, side_stats: tuple[np.ndarray, np.ndarray] | None = None,
                     verbose: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    net = make_signal_net(cfg)
    if side_stats is not None:
        net.side_mean.copy_(torch.from_numpy(side_stats[0]))
        net.side_std.copy_(torch.from_numpy(side_stats[1]))
    net = net.to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-2)
    trained = y.sum(axis=0) > 0
    loss_fn = _masked_bce(torch.tensor(positive_weights(y, cfg.imbalance_power), device=device),
                          torch.tensor(trained.astype(np.float32), device=device))
    ds = SignalTrainSet(xs, demo, y.astype(np.float32), seed)
    bs = max(1, min(batch_size, len(ds)))
    steps_per_epoch = math.ceil(len(ds) / bs)
    clock, step = BudgetClock(minutes * 60.0, max(1, max_epochs * steps_per_epoch)), 0
    for epoch in range(max_epochs):
        ds.epoch = epoch
        loader = torch.utils.data.DataLoader(ds, batch_size=bs, shuffle=True, drop_last=len(ds) > bs,
                                             num_workers=workers, generator=torch.Generator().manual_seed(seed + epoch))
        net.train()
        running = 0.0
        for xb, fb, yb in loader:
            set_lr(opt, warmup_cosine_lr(clock.progress(step), lr))
            loss = loss_fn(net(xb.to(device), fb.to(device)), yb.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += loss.item()
            step += 1
        _log(verbose, f"  signal epoch {epoch + 1}: loss {running / max(1, steps_per_epoch):.4f}, "
                      f"{clock.elapsed_s():.0f}s")
        if clock.elapsed_s() >= clock.budget_s:
            break
    return net.eval()


# --- image branch ---------------------------------------------------------------------------------------

class ImageTrainSet(torch.utils.data.Dataset):
    """A fresh random page per draw: rendered from the record's signal, or (half the time, when the record
    lists images) one of its own images with crop jitter."""

    def __init__(self, records: list[TrainRecord], y: np.ndarray, size_px: int, dpi: float, seed: int):
        self.records, self.y, self.size_px, self.dpi, self.seed, self.epoch = records, y, size_px, dpi, seed, 0

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int):
        from ..records.images import load_page
        from .image_data import photometric_jitter

        rng = np.random.default_rng([self.seed, self.epoch, i, 7])
        r = self.records[i]
        crop = None
        if r.images and (r.signal_mv is None or rng.random() < 0.5):
            try:
                page = load_page(r.images[int(rng.integers(len(r.images)))]).rgb
                crop = photometric_jitter(square_crop_resize(page, self.size_px, rng.uniform(0.9, 1.0),
                                                             tuple(rng.uniform(-1, 1, size=2))), rng)
            except ValueError:
                crop = None
        if crop is None and r.signal_mv is None:  # its only image is unreadable: a blank page teaches priors
            crop = np.full((self.size_px, self.size_px, 3), 255, np.uint8)
        if crop is None:
            crop = render_training_crop(r.signal_mv, r.info.fs_hz, r.info.lead_names, self.size_px, self.dpi, rng)
        return to_tensor_input(crop[None])[0], self.y[i]


def validation_image_crop(r: TrainRecord, size_px: int, dpi: float, seed: int) -> np.ndarray:
    from ..records.images import load_page

    if r.images:
        try:
            return square_crop_resize(load_page(r.images[0]).rgb, size_px)
        except ValueError:
            pass
    return validation_crop(r.signal_mv, r.info.fs_hz, r.info.lead_names, size_px, dpi, seed)


@torch.no_grad()
def predict_image(net: nn.Module, crops: np.ndarray, device, batch: int = 32) -> np.ndarray:
    net.eval()
    out = []
    for s in range(0, len(crops), batch):
        out.append(torch.sigmoid(net(torch.from_numpy(to_tensor_input(crops[s:s + batch])).to(device)))
                   .float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0))


def find_imagenet_weights(folders: list[str], arch: str) -> str | None:
    for folder in folders:
        for suffix in IMAGENET_SUFFIXES:
            p = os.path.join(folder, arch + suffix)
            if os.path.isfile(p):
                return p
    return None


def _load_state(path: str) -> dict:
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file
        return load_file(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    # training checkpoints often wrap the weights: {"state_dict": {...}}
    return state["state_dict"] if isinstance(state.get("state_dict"), dict) else state


def train_image_net(cfg: ClassifierConfig, records: list[TrainRecord], y: np.ndarray, minutes: float,
                    max_epochs: int, device, seed: int, batch_size: int, amp: bool, workers: int,
                    work_dir: str, imagenet_path: str | None, resume: bool, verbose: bool = False) -> nn.Module:
    """ResNet on rendered pages; time-budgeted; checkpoints every few minutes to work_dir/image_ckpt.pt."""
    from tqdm import tqdm

    rank, _local_rank, world = ddp_rank_world()
    torch.manual_seed(seed)
    net = build_image_net(cfg.image_arch, len(cfg.classes))
    lr = 1e-3
    if imagenet_path:
        n = load_imagenet_backbone(net, _load_state(imagenet_path))
        if n == 0:  # a file of another network: random init would pass silently for fine-tuning
            raise ValueError(f"{imagenet_path}: no tensor matches torchvision's {cfg.image_arch}; remove the file "
                             f"or supply {cfg.image_arch} ImageNet weights")
        cfg.imagenet_init, lr = True, 3e-4
        _log(verbose, f"image branch: fine-tuning from ImageNet weights {imagenet_path} ({n} tensors)")
    net = net.to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    ckpt = os.path.join(work_dir, "image_ckpt.pt")
    step, elapsed_before, epoch0 = 0, 0.0, 0
    if resume and os.path.isfile(ckpt):
        state = torch.load(ckpt, map_location="cpu", weights_only=True)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        step, elapsed_before, epoch0 = int(state["step"]), float(state["elapsed_s"]), int(state["epoch"])
        _log(verbose, f"image branch: resumed at step {step}")
    model = net
    if world > 1:
        model = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    trained = y.sum(axis=0) > 0
    loss_fn = _masked_bce(torch.tensor(positive_weights(y, cfg.imbalance_power), device=device),
                          torch.tensor(trained.astype(np.float32), device=device))
    ds = ImageTrainSet(records, y.astype(np.float32), cfg.image_size_px, cfg.render_dpi, seed + 1000 * rank)
    bs = max(1, min(batch_size, len(ds)))
    amp_step = AmpStep(device, amp)  # float16 + scaler on CUDA; bfloat16 autocast without a scaler on the CPU
    budget_s = minutes * 60.0
    clock = BudgetClock(budget_s, max(1, max_epochs * math.ceil(len(ds) / bs)), elapsed_before)
    last_ckpt = time.time()
    bar = tqdm(total=int(budget_s), unit="s", desc="image branch", disable=not verbose or rank != 0)
    done = False
    for epoch in range(epoch0, max_epochs):
        ds.epoch = epoch
        loader = torch.utils.data.DataLoader(ds, batch_size=bs, shuffle=True, drop_last=len(ds) > bs,
                                             num_workers=workers, persistent_workers=False,
                                             generator=torch.Generator().manual_seed(seed + epoch + 1000 * rank))
        model.train()
        for xb, yb in loader:
            progress = sync_progress(clock.progress(step), world, device)
            if progress >= 1.0:
                done = True
                break
            set_lr(opt, warmup_cosine_lr(progress, lr))
            with amp_step.autocast():
                logits = model(xb.to(device, non_blocking=True))
            loss = loss_fn(logits.float(), yb.to(device))
            amp_step.step(loss, opt)
            step += 1
            bar.n = min(int(clock.elapsed_s()), int(budget_s))
            bar.set_postfix(step=step, epoch=epoch, loss=f"{loss.item():.3f}")
            if rank == 0 and time.time() - last_ckpt > 300:
                atomic_torch_save({"net": net.state_dict(), "opt": opt.state_dict(), "step": step,
                                   "elapsed_s": clock.elapsed_s(), "epoch": epoch}, ckpt)
                last_ckpt = time.time()
        if done:
            break
    bar.close()
    _log(verbose, f"image branch: {step} steps in {clock.elapsed_s():.0f}s")
    return net.eval()


# --- orchestration --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Run:
    """This training process: its device and place in a DDP group (rank 0 alone writes), where checkpoints go."""

    device: torch.device
    rank: int
    world: int
    work_dir: str  # OUT/_work: the per-fold and image checkpoints
    resume: bool  # take a fold's checkpoint when it is there
    verbose: bool


def _train_signal_folds(cfg: ClassifierConfig, settings: dict, run: _Run, records: list[TrainRecord], y: np.ndarray,
                        folds_all: np.ndarray, k: int, minutes: float, seed: int
                        ) -> tuple[list[nn.Module], np.ndarray]:
    """The signal branch: k fold models of the records with a signal (one on all of them for k = 1) and their
    out-of-fold scores (records x classes, NaN where a record has none). Under torchrun fold f is trained by
    rank f % world and sent to the others; rank 0 alone checkpoints every fold to run.work_dir."""
    from safetensors.torch import load_file, save_file

    device, rank, world = run.device, run.rank, run.world
    sig_idx = np.array([i for i, r in enumerate(records) if r.x is not None])
    xs = [r.x for r in records]
    demo = [(r.info.age, r.info.sex) for r in records]
    views = [validation_signal_view(x, seed + i) if x is not None else None for i, x in enumerate(xs)]
    side_stats = side_feature_stats([views[i] for i in sig_idx], [demo[i] for i in sig_idx]) if len(sig_idx) else None
    signal_nets: list[nn.Module] = []
    oof = np.full((len(records), len(CLASSES)), np.nan, dtype=np.float64)
    n_folds = k if len(sig_idx) else 0
    fold_states: dict[int, dict] = {}
    for f in range(n_folds):
        path = os.path.join(run.work_dir, f"signal_{f}.safetensors")
        if f % world != rank:
            continue
        if run.resume and os.path.isfile(path):
            fold_states[f] = load_file(path)
            continue
        tr = [i for i in sig_idx if folds_all[i] != f or k == 1]
        _log(run.verbose, f"signal fold {f + 1}/{k}: {len(tr)} training records")
        net = train_signal_net(cfg, [xs[i] for i in tr], [demo[i] for i in tr], y[tr], minutes / k,
                               settings["signal_max_epochs"], device, seed + f, settings["signal_batch"],
                               workers=settings["workers"], side_stats=side_stats, verbose=run.verbose)
        fold_states[f] = {n: t.detach().cpu().contiguous() for n, t in net.state_dict().items()}
    if world > 1:
        for f in range(n_folds):
            box = [fold_states.get(f)]
            torch.distributed.broadcast_object_list(box, src=f % world)
            fold_states[f] = box[0]
    for f in range(n_folds):
        path = os.path.join(run.work_dir, f"signal_{f}.safetensors")
        if rank == 0 and not (run.resume and os.path.isfile(path)):
            save_file(fold_states[f], path)
        net = make_signal_net(cfg)
        net.load_state_dict(fold_states[f])
        net = net.to(device).eval()
        signal_nets.append(net)
        va = [i for i in sig_idx if folds_all[i] == f] if k > 1 else []
        if va:
            oof[va] = predict_signal(net, [views[i] for i in va], [HIDDEN_DEMOGRAPHICS] * len(va), device)
    return signal_nets, oof


def train_classifier(record_paths: list[str], out_dir: str, minutes: float | None = None,
                     signal_folds: int = 4, use_image: bool = True, image_arch: str = "resnet50",
                     image_size_px: int | None = None, seed: int = 0, resume: bool = False,
                     verbose: bool = True, digitized_dir: str | None = None) -> Classifier:
    """Train both branches on the labelled records among `record_paths`, tune fusion and thresholds on
    held-out training records, fit the measurement fusion (with the digitizer's cached readings of rendered
    pages when `digitized_dir` holds them: paperecg.tools.digitize_training), save to out_dir and return it."""
    t_start = time.time()
    profile = select_profile()
    settings = classifier_recipe(profile)
    minutes = float(profile.classifier_minutes if minutes is None else minutes)
    device = ddp_setup(profile.device)  # cuda:LOCAL_RANK under torchrun; joins the process group
    if device.type == "cpu":
        # the loader worker (augmentation, rendering) needs a core of its own: torch threads that compete
        # with it for the cores slow down many-fold
        torch.set_num_threads(max(1, set_threads() - settings["workers"]))
    rank, _local_rank, world = ddp_rank_world()
    run = _Run(device, rank, world, os.path.join(out_dir, "_work"), resume, verbose)
    if rank == 0:  # only rank 0 writes the model folder
        os.makedirs(run.work_dir, exist_ok=True)

    records = load_training_records(record_paths, verbose and rank == 0)
    y = labels_to_multi_hot([r.info.labels for r in records], CLASSES)
    if len(records) == 0 or y.sum() == 0:
        raise ValueError(f"no labelled training records among {len(record_paths)} records: the classifier "
                         "needs '# Labels:' lines naming at least one of " + ", ".join(CLASSES))
    trained = y.sum(axis=0) > 0
    image_size_px = image_size_px or profile.classifier_image_px or settings["image_size_px"]
    cfg = ClassifierConfig(image_arch=image_arch, image_size_px=image_size_px,
                           trained_classes=[bool(t) for t in trained])
    missing = [c for c, t in zip(CLASSES, trained) if not t]
    _log(verbose and rank == 0, f"class counts: " + ", ".join(f"{c} {int(n)}" for c, n in zip(CLASSES, y.sum(0)))
         + (f"; never predicted (absent): {missing}" if missing else ""))

    sig_idx = np.array([i for i, r in enumerate(records) if r.x is not None])
    has_renderable = any(r.signal_mv is not None or r.images for r in records)
    use_image = use_image and has_renderable and _renderer_available()
    image_share = IMAGE_SHARE if use_image else 0.0
    signal_minutes = minutes * (SIGNAL_SHARE if use_image else SIGNAL_SHARE + IMAGE_SHARE)

    k = int(min(max(2, signal_folds), len(sig_idx))) if len(sig_idx) >= 2 else 1
    folds_all = make_folds(y, k, seed) if k > 1 else np.zeros(len(records), dtype=int)
    signal_nets, oof = _train_signal_folds(cfg, settings, run, records, y, folds_all, k, signal_minutes, seed)
    n_folds = len(signal_nets)

    # image branch: trained on every record outside fold 0, validated on fold 0
    image_net, image_init = None, None
    val = np.array([i for i in range(len(records)) if folds_all[i] == 0]) if k > 1 else np.zeros(0, int)
    p_img_val = None
    if use_image:
        tr = [i for i in range(len(records)) if folds_all[i] != 0 or k == 1]
        elapsed_min = (time.time() - t_start) / 60.0
        image_minutes = max(0.05, min(minutes * image_share, minutes * 0.88 - elapsed_min))
        imagenet = find_imagenet_weights([out_dir, os.path.dirname(os.path.abspath(out_dir))], cfg.image_arch)
        image_init = imagenet or "random"
        _log(verbose and rank == 0, f"image branch: {len(tr)} records, {image_minutes:.1f} min, "
                                    f"{cfg.image_arch} at {cfg.image_size_px}px")
        image_net = train_image_net(cfg, [records[i] for i in tr], y[tr], image_minutes,
                                    settings["image_max_epochs"], device, seed, settings["image_batch"],
                                    profile.amp, settings["workers"], run.work_dir,
                                    imagenet, resume, verbose and rank == 0)
        if device.type == "cpu":
            torch.set_num_threads(set_threads())  # the loader worker is gone: inference gets every core
        if len(val):
            crops = np.stack([validation_image_crop(records[i], cfg.image_size_px, cfg.render_dpi, seed + int(i))
                              for i in val])
            p_img_val = predict_image(image_net, crops, device)

    # decisions: signal thresholds on all out-of-fold scores; image and fused on fold 0
    notes: dict = {"records": len(records), "signal_folds": k, "minutes_budget": minutes,
                   "class_counts": {c: int(n) for c, n in zip(CLASSES, y.sum(0))}, "image_init": image_init}
    notes.update(tune_decisions(cfg, oof, p_img_val, y, val, trained, seed))
    if p_img_val is not None and rank == 0:
        np.savez_compressed(os.path.join(run.work_dir, "val_probs.npz"), oof=oof, image_val=p_img_val, val_index=val,
                            y=y)
    # measurement + CNN fusion (classify/fusion.py; rank 0, from the fold models' out-of-fold scores)
    fusion = None
    if rank == 0 and n_folds > 1:
        from .fusion_train import fusion_for_training

        fusion = fusion_for_training(records, y, folds_all, signal_nets, device, cfg.thresholds_signal, trained,
                                     digitized_dir, seed, max(1, settings["workers"]), verbose)
        notes["fusion_oof"] = {v: r["oof_macro_f_fusion"] for v, r in fusion.notes["oof"].items()}
    notes["wall_minutes"] = round((time.time() - t_start) / 60.0, 2)
    cfg.notes = notes
    clf = Classifier(cfg, signal_nets, image_net, str(device), fusion)
    if rank == 0:
        clf.save(out_dir)
        _log(verbose, "saved to", out_dir, json.dumps(notes))
    return clf


def tune_decisions(cfg: ClassifierConfig, oof: np.ndarray, p_img_val: np.ndarray | None, y: np.ndarray,
                   val: np.ndarray, trained: np.ndarray, seed: int) -> dict:
    """Per-class thresholds (signal on every out-of-fold score; image and fused on fold 0) and the fusion
    weight, set on cfg; classes absent from training get infinite thresholds. Returns the validation notes."""
    notes: dict = {}
    has_oof = np.isfinite(oof).all(axis=1)
    if has_oof.any():
        cfg.thresholds_signal = tune_thresholds(oof[has_oof], y[has_oof], trained).tolist()
        notes["val_macro_f_signal_oof"] = _score(oof[has_oof], y[has_oof], cfg.thresholds_signal, cfg)
        notes["val_per_class_signal_oof"] = _per_class(oof[has_oof], y[has_oof], cfg.thresholds_signal, cfg)
    if p_img_val is not None:
        cfg.thresholds_image = tune_thresholds(p_img_val, y[val], trained).tolist()
        notes["val_macro_f_image"] = _score(p_img_val, y[val], cfg.thresholds_image, cfg)
        notes["val_per_class_image"] = _per_class(p_img_val, y[val], cfg.thresholds_image, cfg)
        both = has_oof[val]
        if both.any():
            w, thr, f = choose_fusion(oof[val][both], p_img_val[both], y[val][both], trained,
                                      np.asarray(cfg.thresholds_signal), cfg, seed=seed)
            cfg.fusion_weight_signal, cfg.thresholds_fused = w, thr.tolist()
            notes["val_macro_f_fused"] = f
            notes["val_macro_f_signal_fold0"] = _score(oof[val][both], y[val][both], cfg.thresholds_signal, cfg)
    else:
        cfg.thresholds_fused = list(cfg.thresholds_signal)
        cfg.fusion_weight_signal = 1.0
    for name in ("thresholds_signal", "thresholds_image", "thresholds_fused"):
        setattr(cfg, name, [t if tr_ else float("inf") for t, tr_ in zip(getattr(cfg, name), trained)])
    return notes


def choose_fusion(p_signal: np.ndarray, p_image: np.ndarray, y: np.ndarray, trained: np.ndarray,
                  thresholds_signal: np.ndarray, cfg: ClassifierConfig, min_positives: int = 10,
                  min_gain: float = 0.01, seed: int = 0) -> tuple[float, np.ndarray, float]:
    """Signal weight w and fused thresholds, chosen on the held-out fold.

    Every w in 0, 0.1, ..., 1 is scored by cross-fitting on the fold (thresholds tuned on one half, F measured
    on the other, and back), so no candidate is judged on the records its thresholds were tuned on. Fusion
    (w < 1) is kept only if it beats w = 1 by `min_gain`; then its thresholds are tuned on the whole fold,
    except for classes with fewer than `min_positives` positives there, which keep the signal branch's
    out-of-fold thresholds (a handful of positives gives a noise cut). Returns (w, thresholds, score)."""
    rare = y.sum(axis=0) < min_positives
    halves = np.random.default_rng(seed).permutation(len(y)) % 2

    def tuned(probs: np.ndarray, rows: np.ndarray) -> np.ndarray:
        thr = tune_thresholds(probs[rows], y[rows], trained)
        thr[rare] = thresholds_signal[rare]
        return thr

    def cross_fitted(probs: np.ndarray) -> float:
        scores = []
        for h in (0, 1):
            fit, held = halves != h, halves == h
            if fit.any() and held.any():
                f = _score(probs[held], y[held], tuned(probs, fit), cfg)
                scores.append(-1.0 if f is None else f)
        return float(np.mean(scores)) if scores else -1.0

    scored = [(float(w), cross_fitted(w * p_signal + (1.0 - w) * p_image)) for w in np.linspace(0.0, 1.0, 11)]
    signal_only = scored[-1][1]
    w_best, f_best = max(scored, key=lambda t: (t[1], t[0]))
    if w_best < 1.0 and f_best >= signal_only + min_gain:
        fused = w_best * p_signal + (1.0 - w_best) * p_image
        return w_best, tuned(fused, np.ones(len(y), bool)), f_best
    return 1.0, thresholds_signal.copy(), signal_only


def _score(probs: np.ndarray, y: np.ndarray, thresholds, cfg: ClassifierConfig) -> float | None:
    return score_probs(probs, y, thresholds, cfg.trained_classes, cfg.at_least_one, cfg.classes)[0]


def _per_class(probs: np.ndarray, y: np.ndarray, thresholds, cfg: ClassifierConfig) -> dict:
    return score_probs(probs, y, thresholds, cfg.trained_classes, cfg.at_least_one, cfg.classes)[1]


def _renderer_available() -> bool:
    try:
        from ..render.page import render_page  # noqa: F401
        return True
    except Exception:
        return False


def main(argv: list[str] | None = None) -> None:
    from ..records.ptbxl import select_records

    ap = argparse.ArgumentParser(description="Train the ECG classifier (signal + image branches, fusion).")
    ap.add_argument("--data", required=True, nargs="+", help="folder(s) of WFDB records with '# Labels:'")
    ap.add_argument("--out", required=True, help="model folder to write (config.json + safetensors)")
    ap.add_argument("--folds", default=None, help="PTB-XL strat folds to use, e.g. 1-8 (needs ptbxl_database.csv)")
    ap.add_argument("--minutes", type=float, default=None, help="wall-clock budget (default: hardware profile)")
    ap.add_argument("--signal-folds", type=int, default=4, help="k of the signal-branch k-fold ensemble")
    ap.add_argument("--no-image", action="store_true", help="signal branch only")
    ap.add_argument("--image-arch", default="resnet50", choices=["resnet18", "resnet34", "resnet50"])
    ap.add_argument("--image-size", type=int, default=None, help="crop size in px (default: the profile's, 224)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resume", action="store_true", help="reuse finished folds / image checkpoint in OUT/_work")
    ap.add_argument("--digitized", default=None, help="cache of digitized training pages (tools.digitize_training)")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args(argv)
    paths: list[str] = []
    for d in a.data:
        paths += select_records(d, a.folds)
    train_classifier(paths, a.out, a.minutes, a.signal_folds, not a.no_image, a.image_arch, a.image_size,
                     a.seed, a.resume, not a.quiet, a.digitized)


if __name__ == "__main__":
    main()
