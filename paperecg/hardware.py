"""Hardware choice in one place: device, threads, AMP, DDP rank and training profile.

Every trainer asks this module; nothing else reads CUDA state or the environment for these choices.
CUDA counts only when it works: a driver too old for the torch build (torch warns, or a tiny CUDA op fails)
means the CPU profile, with one warning on stderr instead of a crash later.

Overrides: environment variables `PAPERECG_DEVICE` (cpu/cuda/cuda:N), `PAPERECG_PROFILE` (cpu/gpu/tiny),
`PAPERECG_THREADS`, `PAPERECG_BUDGET_SCALE` (multiplies every wall-clock budget), `PAPERECG_COMPONENTS`
(comma list of detector/segmenter/classifier to train; empty = prevalence model only), or a JSON file named by
`PAPERECG_CONFIG` whose keys override the profile's fields (e.g. {"segmenter_minutes": 20}), and
`PAPERECG_DDP_PROCS` (training processes for the segmenter and classifier; default: one per usable GPU,
0 or 1 = one process; on the CPU the processes talk through gloo).
"""
from __future__ import annotations

import json
import os
import sys
import warnings
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from functools import lru_cache


@dataclass(frozen=True)
class Profile:
    name: str
    device: str
    amp: bool
    # wall-clock budgets per trainer, minutes (the whole train_models call stays within their sum)
    detector_minutes: float
    segmenter_minutes: float
    classifier_minutes: float
    # sizes
    segmenter_crop: int | None  # the segmenter trains on random crops of this size; None = the whole working page
    batch_size: int  # the segmenter's crops per step (whole pages: a quarter as many)
    num_workers: int
    # which trainable components train_models builds (the prevalence fallback always); PAPERECG_COMPONENTS
    components: tuple[str, ...] = ("detector", "segmenter", "classifier")
    # classifier image-branch crop size in px; None = the recipe's (224 gpu and cpu, 64 tiny). A smaller one
    # lets the gpu recipe be tried out on a CPU in seconds (PAPERECG_CONFIG {"classifier_image_px": 96})
    classifier_image_px: int | None = None
    # minutes train_models spends reading rendered training pages with the trained digitizer, for the
    # classifier's fusion (pipeline/digitized.py); 0 = none
    digitize_minutes: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


_WARNED: set[str] = set()


def _warn_once(msg: str) -> None:
    """select_profile runs many times per process: each hardware warning is printed once."""
    if msg not in _WARNED:
        _WARNED.add(msg)
        print(f"[paperecg] {msg}", file=sys.stderr, flush=True)


def probe_cuda() -> tuple[int, str | None]:
    """(usable CUDA devices, why CUDA is present but unusable or None). Usable means torch sees a device
    without complaint and a tiny kernel runs and returns the right answer on it."""
    try:
        import torch
    except ImportError:
        return 0, None
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            available = torch.cuda.is_available()
        # torch only warns (and answers False) when a driver exists but cannot serve this build
        complaints = [str(w.message) for w in caught if "cuda" in str(w.message).lower()]
        if not available:
            return 0, ("; ".join(complaints) or None)
        count = torch.cuda.device_count()
        if count < 1:
            return 0, "torch.cuda.is_available() is True but no device is visible"
        got = (torch.arange(4, device="cuda:0", dtype=torch.float32) * 2).sum().item()
        if got != 12.0:
            return 0, f"a test kernel on cuda:0 returned {got} instead of 12"
        return count, None
    except Exception as e:  # a runtime or driver error: the CPU it is
        return 0, f"{type(e).__name__}: {e}".strip()


@lru_cache(maxsize=1)
def _cuda_once() -> tuple[int, str | None]:
    count, problem = probe_cuda()
    if problem:
        _warn_once(f"CUDA is present but unusable ({problem.splitlines()[0][:300]}); falling back to the CPU "
              "profile. The pinned torch build needs an NVIDIA driver new enough for its CUDA version "
              "(see README, 'GPU').")
    return count, problem


def cuda_device_count() -> int:
    """Usable CUDA devices; 0 when torch is missing, there is no GPU, or CUDA is broken (one warning)."""
    return _cuda_once()[0]


COMPONENTS = ("detector", "segmenter", "classifier")

# The gpu and cpu profiles train the same networks at the same sizes on the same page mix: they differ only in
# budgets, batch sizes, precision and loader workers (tests/test_gpu_profile.py holds them to it). So what the
# organizers train on their GPU is the model this project measures, given more steps, and its inference costs
# what bench/speed.py measures.
PROFILES = {
    "gpu": Profile("gpu", "cuda", True, 120.0, 600.0, 300.0, 256, 64, 8, digitize_minutes=60.0),
    "cpu": Profile("cpu", "cpu", False, 25.0, 55.0, 35.0, 256, 8, 0, digitize_minutes=8.0),
    # for tests and the organizer simulation: seconds, not minutes
    "tiny": Profile("tiny", "cpu", False, 0.3, 0.5, 0.5, 96, 8, 0, digitize_minutes=0.05),
}
# Profile fields in which the gpu and cpu profiles may differ (the rest must be equal)
PROFILE_SCALE_FIELDS = ("name", "device", "amp", "detector_minutes", "segmenter_minutes", "classifier_minutes",
                        "digitize_minutes", "batch_size", "num_workers")


# --- recipes: each trainer's settings that follow the profile (the budgets are the profile's fields) --------

# segmenter width: base 16 (the paper's is 32) on every profile: a CPU's wall-clock budget buys more steps with
# the narrower net, and a page's inference stays well under the 1.5 s/page target wherever the model runs.
SEGMENTER_BASE_CHANNELS = 16


@dataclass(frozen=True)
class DetectorRecipe:
    batch: int  # crops per step
    loader_workers: int  # ultralytics data-loader processes


def detector_recipe(prof: Profile) -> DetectorRecipe:
    """The gpu recipe: big batches and loader workers (also when the gpu profile is tried out on a CPU);
    CPU recipes: small batches, more steps in the budget, rendering in the main process."""
    if prof.name == "gpu":
        return DetectorRecipe(64, min(4, prof.num_workers))
    return DetectorRecipe(8, 0)


# the image branch's crop is 224 px on both profiles (one network input); the gpu recipe differs in batches,
# epoch caps (a budget) and loader workers only
CLASSIFIER_RECIPES = {
    "gpu": dict(image_size_px=224, image_batch=32, signal_batch=128, signal_max_epochs=150, image_max_epochs=60,
                workers=6),
    "tiny": dict(image_size_px=64, image_batch=4, signal_batch=16, signal_max_epochs=2, image_max_epochs=1,
                 workers=0),
    "cpu": dict(image_size_px=224, image_batch=16, signal_batch=32, signal_max_epochs=80, image_max_epochs=40,
                workers=1),
}


def classifier_recipe(prof: Profile) -> dict:
    """Crop size, batches, epoch caps and loader workers of the classifier's two branches; on the gpu recipe
    the profile's worker count caps the loader workers (PAPERECG_CONFIG tests)."""
    recipe = dict(CLASSIFIER_RECIPES.get(prof.name, CLASSIFIER_RECIPES["cpu"]))
    if prof.name == "gpu":
        recipe["workers"] = min(recipe["workers"], prof.num_workers)
    return recipe


def select_profile() -> Profile:
    name = os.environ.get("PAPERECG_PROFILE") or ("gpu" if cuda_device_count() > 0 else "cpu")
    if name not in PROFILES:
        raise ValueError(f"PAPERECG_PROFILE={name!r}: choose one of {sorted(PROFILES)}")
    prof = PROFILES[name]
    if os.environ.get("PAPERECG_DEVICE"):
        # AMP stays on for the gpu profile on the CPU: autocast runs in bfloat16 there (see amp_dtype)
        prof = replace(prof, device=os.environ["PAPERECG_DEVICE"])
    elif prof.device.startswith("cuda") and cuda_device_count() == 0:
        # the gpu profile asked for without a usable GPU: the CPU recipe instead of a crash at the first tensor
        if _cuda_once()[1] is None:
            _warn_once(f"PAPERECG_PROFILE={name} but no CUDA device: using the CPU profile")
        prof = PROFILES["cpu"]
    scale = float(os.environ.get("PAPERECG_BUDGET_SCALE", "1"))
    if scale != 1:
        prof = replace(prof, detector_minutes=prof.detector_minutes * scale,
                       segmenter_minutes=prof.segmenter_minutes * scale,
                       classifier_minutes=prof.classifier_minutes * scale,
                       digitize_minutes=prof.digitize_minutes * scale)
    if os.environ.get("PAPERECG_COMPONENTS") is not None:
        wanted = tuple(c.strip() for c in os.environ["PAPERECG_COMPONENTS"].split(",") if c.strip())
        unknown = set(wanted) - set(COMPONENTS)
        if unknown:
            raise ValueError(f"PAPERECG_COMPONENTS: unknown {sorted(unknown)}; choose from {COMPONENTS}")
        prof = replace(prof, components=wanted)
    path = os.environ.get("PAPERECG_CONFIG")
    if path:
        with open(path) as f:
            overrides = json.load(f)
        unknown = set(overrides) - set(prof.to_dict())
        if unknown:
            raise ValueError(f"{path}: unknown profile keys {sorted(unknown)}")
        prof = replace(prof, **overrides)
    return prof


def set_threads() -> int:
    """Use every core unless PAPERECG_THREADS says otherwise; returns the thread count."""
    import torch

    n = int(os.environ.get("PAPERECG_THREADS", "0")) or (os.cpu_count() or 1)
    torch.set_num_threads(n)
    return n


def ddp_rank_world() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) under torchrun; (0, 0, 1) otherwise."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0)),
            int(os.environ.get("WORLD_SIZE", 1)))


def amp_dtype(device_type: str) -> "torch.dtype":
    """Autocast dtype: float16 on CUDA (tensor cores on every card since the T4; needs the gradient scaler),
    bfloat16 on the CPU (the only dtype CPU autocast supports well; it has float32's exponent range, so
    gradients cannot underflow and the scaler stays off)."""
    import torch

    return torch.float16 if device_type == "cuda" else torch.bfloat16


def needs_grad_scaler(device_type: str, amp: bool) -> bool:
    """The GradScaler guards float16 gradients against underflow; with bfloat16 (CPU) it has nothing to do."""
    return amp and device_type == "cuda"


def is_main_process() -> bool:
    """True outside torchrun and on rank 0: the only process that writes the model folder."""
    return ddp_rank_world()[0] == 0


def ddp_timeout(prof: Profile) -> timedelta:
    """Collective timeout: a rank may wait for another through a whole component (rank 0 trains the
    detector alone; folds of the signal ensemble are split unevenly), so the budgets plus a margin."""
    return timedelta(minutes=30 + prof.detector_minutes + prof.segmenter_minutes + prof.classifier_minutes)


def ddp_setup(device_name: str) -> "torch.device":
    """This process's device; under torchrun also joins the process group (nccl on CUDA, gloo on the CPU)
    and pins this rank's GPU (cuda:LOCAL_RANK)."""
    import torch

    rank, local_rank, world = ddp_rank_world()
    device = torch.device(device_name)
    if device.type == "cuda":
        # an explicit index: torch.cuda.set_device rejects a bare "cuda" (ValueError), which used to end the
        # segmenter's training at its first line on every GPU
        device = torch.device("cuda", local_rank if world > 1 else (device.index or 0))
        torch.cuda.set_device(device)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                             timeout=ddp_timeout(select_profile()))
    return device


def ddp_procs_wanted(prof: Profile) -> int:
    """Training processes for the segmenter and classifier: PAPERECG_DDP_PROCS, else one per usable GPU
    when the profile runs on CUDA (1 = no torchrun)."""
    text = os.environ.get("PAPERECG_DDP_PROCS", "").strip()
    if text:
        return max(1, int(text))
    return max(1, cuda_device_count()) if prof.device.startswith("cuda") else 1
