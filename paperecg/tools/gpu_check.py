"""Device check for a GPU machine, sized to fit one 10-minute call; writes one JSON report.

    python -m paperecg.tools.gpu_check [--out gpu_check.json] [--train-minutes 3] [--pages 200]
    python -m paperecg.tools.gpu_check --smoke      # every stage on the CPU at toy size (checks this script)
    bash tools/gpu_check.sh [OUT.json]              # the same with a hard time limit

Stages, each recorded in the JSON as it finishes (a killed run leaves the stages before it):
1. environment: torch and its CUDA build, cuDNN, the NVIDIA driver, every device (name, capability, memory);
2. one forward + backward pass of each network at the gpu profile's real sizes under AMP (float16 +
   GradScaler), with its time and peak GPU memory; on out-of-memory the batch is halved until it fits;
3. `train_model.py` with the gpu profile for about --train-minutes on generated records;
4. `run_model.py --jobs <number of GPUs>` on the hidden view of --pages generated records: records/s,
   peak GPU memory (all devices, from NVML), peak RSS of the process tree, outputs checked.
Without a usable CUDA device it says why, writes the JSON saying so and exits 0 (unless --smoke).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _now() -> float:
    return time.perf_counter()


# --- 1. environment ---------------------------------------------------------------------------------------

def nvidia_driver_version() -> str | None:
    """The kernel driver's version from NVML (nvidia-ml-py ships with torch's CUDA wheels), else nvidia-smi."""
    try:
        import pynvml

        pynvml.nvmlInit()
        v = pynvml.nvmlSystemGetDriverVersion()
        return v.decode() if isinstance(v, bytes) else str(v)
    except Exception:
        pass
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                                 text=True, timeout=20)
            return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None
        except (OSError, subprocess.TimeoutExpired, IndexError):
            return None
    return None


def environment() -> dict:
    import torch

    from ..hardware import probe_cuda

    count, problem = probe_cuda()
    env = {"python": platform.python_version(), "torch": torch.__version__, "torch_cuda": torch.version.cuda,
           "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
           "torch_arch_list": torch.cuda.get_arch_list(),  # the GPU generations this build has kernels for
           "driver": nvidia_driver_version(), "cuda_usable": count > 0, "cuda_problem": problem,
           "device_count": count, "cpu_count": os.cpu_count(), "devices": []}
    for i in range(count):
        p = torch.cuda.get_device_properties(i)
        env["devices"].append({"index": i, "name": p.name, "capability": f"{p.major}.{p.minor}",
                               "memory_mb": round(p.total_memory / 2**20)})
    return env


# --- 2. forward + backward at the real sizes -------------------------------------------------------------

def _model_cases(smoke: bool) -> list[dict]:
    """(name, builder, input maker, batch) at the gpu profile's sizes; toy sizes with --smoke."""
    import torch

    from ..classify.model import ClassifierConfig, make_signal_net
    from ..classify.networks import build_image_net
    from ..hardware import CLASSIFIER_RECIPES, PROFILES, detector_recipe
    from ..rectify.detector import DetectorConfig
    from ..segment.model import ResUNetCBAM
    from ..segment.train import crop_shape, default_model_config

    gpu = PROFILES["gpu"]
    cls = CLASSIFIER_RECIPES["gpu"]
    seg_cfg = default_model_config()
    seg_hw = crop_shape(seg_cfg, gpu.segmenter_crop)  # the gpu recipe's crops
    det = DetectorConfig()
    img_px, det_px = cls["image_size_px"], det.crop_px
    seg_batch, img_batch, sig_batch = gpu.batch_size, cls["image_batch"], cls["signal_batch"]
    det_batch = detector_recipe(gpu).batch
    if smoke:
        seg_hw, img_px, det_px = (128, 160), 96, 160
        seg_batch, img_batch, sig_batch, det_batch = 2, 2, 4, 2
    ccfg = ClassifierConfig()

    def detector_net():
        from ..rectify.detector import build_network

        return build_network(det, Path(tempfile.mkdtemp(prefix="gpu_check_yolo_")))

    return [
        {"name": "segmenter", "build": lambda: ResUNetCBAM(seg_cfg), "batch": seg_batch,
         "inputs": lambda b: (torch.rand(b, seg_cfg.input_planes, *seg_hw),),
         "size": f"{seg_hw[1]}x{seg_hw[0]} base {seg_cfg.base_channels}", "channels_last": True},
        {"name": "classifier_image", "build": lambda: build_image_net(ccfg.image_arch, len(ccfg.classes)),
         "batch": img_batch, "inputs": lambda b: (torch.rand(b, 3, img_px, img_px),),
         "size": f"{ccfg.image_arch} {img_px}px"},
        {"name": "classifier_signal", "build": lambda: make_signal_net(ccfg), "batch": sig_batch,
         "inputs": lambda b: _signal_inputs(b), "size": "12x1000 + side features"},
        {"name": "detector", "build": detector_net, "batch": det_batch,
         "inputs": lambda b: (torch.rand(b, 3, det_px, det_px),), "size": f"yolov8n {det_px}px"},
    ]


def _signal_inputs(batch: int):
    import numpy as np
    import torch

    from ..classify.signal_data import network_input, side_features

    x = np.zeros((12, 1000), np.float32)
    net_in = torch.from_numpy(np.stack([network_input(x)] * batch))
    side = torch.from_numpy(np.stack([side_features(x, None, None)] * batch))
    return net_in, side


def _sum_outputs(out):
    import torch

    if isinstance(out, torch.Tensor):
        return out.float().mean()
    if isinstance(out, dict):
        out = list(out.values())
    parts = [_sum_outputs(o) for o in out if o is not None]
    parts = [p for p in parts if p is not None]
    return sum(parts) if parts else None


def forward_backward(case: dict, device, smoke: bool) -> dict:
    """One timed forward + backward (after one warm-up) under AMP; halves the batch on out-of-memory."""
    import torch

    from ..hardware import amp_dtype, needs_grad_scaler

    batch = case["batch"]
    result = {"size": case["size"], "batch_asked": batch}
    net = case["build"]().to(device)
    if case.get("channels_last"):
        net = net.to(memory_format=torch.channels_last)
    net.train()
    scaler = torch.amp.GradScaler(device.type, enabled=needs_grad_scaler(device.type, True))
    while batch >= 1:
        try:
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            times = []
            for _ in range(2):
                inputs = [t.to(device) for t in case["inputs"](batch)]
                if case.get("channels_last"):
                    inputs[0] = inputs[0].contiguous(memory_format=torch.channels_last)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                t0 = _now()
                with torch.autocast(device.type, dtype=amp_dtype(device.type)):
                    loss = _sum_outputs(net(*inputs))
                net.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                times.append(_now() - t0)
            grads_finite = all(bool(torch.isfinite(p.grad).all()) for p in net.parameters() if p.grad is not None)
            result.update(batch=batch, seconds=round(times[-1], 4), first_seconds=round(times[0], 4),
                          loss=float(loss.detach()), grads_finite=grads_finite,
                          parameters_m=round(sum(p.numel() for p in net.parameters()) / 1e6, 2))
            if device.type == "cuda":
                result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20)
            return result
        except torch.OutOfMemoryError as e:
            result.setdefault("oom_at_batch", []).append(batch)
            result["error"] = f"out of memory at batch {batch}: {str(e).splitlines()[0][:200]}"
            net.zero_grad(set_to_none=True)
            batch //= 2
    return result


# --- 3./4. subprocess runs with memory sampling -----------------------------------------------------------

class Sampler:
    """Peak RSS of a process tree (psutil) and peak used GPU memory over all devices (NVML), every 0.5 s."""

    def __init__(self, pid: int, gpu_count: int):
        self.pid, self.gpu_count = pid, gpu_count
        self.peak_rss_mb, self.peak_gpu_mb = 0.0, 0.0
        self.baseline_gpu_mb = self._gpu_used_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _gpu_used_mb(self) -> float:
        if self.gpu_count == 0:
            return 0.0
        try:
            import pynvml

            pynvml.nvmlInit()
            return sum(pynvml.nvmlDeviceGetMemoryInfo(pynvml.nvmlDeviceGetHandleByIndex(i)).used
                       for i in range(self.gpu_count)) / 2**20
        except Exception:
            return 0.0

    def _rss_mb(self) -> float:
        try:
            import psutil

            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
            total = 0
            for p in procs:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
            return total / 2**20
        except Exception:
            return 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_rss_mb = max(self.peak_rss_mb, self._rss_mb())
            self.peak_gpu_mb = max(self.peak_gpu_mb, self._gpu_used_mb())
            self._stop.wait(0.5)

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join(timeout=5)
        out = {"peak_rss_mb": round(self.peak_rss_mb)}
        if self.gpu_count:
            out.update(peak_gpu_used_mb=round(self.peak_gpu_mb), gpu_baseline_mb=round(self.baseline_gpu_mb))
        return out


def run_measured(cmd: list[str], env: dict, timeout_s: float, gpu_count: int, log_path: Path) -> dict:
    t0 = _now()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, cwd=str(REPO_ROOT), env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        sampler = Sampler(proc.pid, gpu_count)
        try:
            rc = proc.wait(timeout=max(1.0, timeout_s))
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)  # the whole group: torchrun ranks and run_model workers too
            rc, timed_out = proc.wait(), True
    out = {"rc": rc, "timed_out": timed_out, "wall_s": round(_now() - t0, 1), **sampler.stop()}
    text = log_path.read_text(errors="replace")
    out["log_tail"] = text[-2500:]
    return out


def _make_shard(args: tuple[str, int, int]) -> int:
    from .make_demo_data import make_demo_data

    folder, n, seed = args
    os.environ["OMP_NUM_THREADS"] = "1"
    return len(make_demo_data(folder, records=n, seed=seed, verbose=False))


def make_data(root: Path, pages: int, workers: int) -> tuple[Path, Path, float]:
    """`pages` generated records in shards made in parallel, and their hidden view; returns (data, hidden, s)."""
    from .hidden_view import make_hidden_view

    t0 = _now()
    data, hidden = root / "data", root / "hidden"
    shards = max(1, min(workers, pages))
    sizes = [pages // shards + (1 if i < pages % shards else 0) for i in range(shards)]
    jobs = [(str(data / f"shard{i:02d}"), n, 1000 + i) for i, n in enumerate(sizes) if n > 0]
    with ProcessPoolExecutor(max_workers=shards) as pool:
        made = sum(pool.map(_make_shard, jobs))
    if made != pages:
        raise RuntimeError(f"made {made} of {pages} records")
    make_hidden_view(str(data), str(hidden))
    return data, hidden, _now() - t0


def check_outputs(hidden: Path, out: Path) -> dict:
    """How many records got an output, and whether every output signal is valid (no Inf, in range)."""
    import numpy as np

    from ..records.io import find_records, load_signal

    records = find_records(str(hidden))
    written, bad = 0, []
    for rel in records:
        if not (out / f"{rel}.hea").is_file():
            continue
        written += 1
        try:
            sig, _ = load_signal(str(out / rel))
            if sig is not None and (np.isinf(sig).any() or np.nanmax(np.abs(sig), initial=0) > 32.767):
                bad.append(rel)
        except Exception as e:  # noqa: BLE001 - count it, keep checking
            bad.append(f"{rel}: {e}")
    return {"records": len(records), "outputs_written": written, "invalid_outputs": bad[:10]}


# --- main ------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m paperecg.tools.gpu_check", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="gpu_check.json", help="the JSON report")
    ap.add_argument("--work", default=None, help="scratch folder (default: a temp folder, removed)")
    ap.add_argument("--train-minutes", type=float, default=3.0)
    ap.add_argument("--pages", type=int, default=200, help="generated records for the inference run")
    ap.add_argument("--deadline-s", type=float, default=560.0,
                    help="the whole check stops its stages by then (inference gets what is left)")
    ap.add_argument("--smoke", action="store_true", help="CPU, toy sizes: check the script without a GPU")
    a = ap.parse_args(argv)
    if a.smoke:
        a.train_minutes = min(a.train_minutes, 0.3)
        a.pages = min(a.pages, 4)
    t_start = _now()
    report: dict = {"tool": "paperecg.tools.gpu_check", "smoke": a.smoke, "errors": []}
    out_path = Path(a.out).resolve()

    def save() -> None:
        report["wall_s"] = round(_now() - t_start, 1)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(report, indent=1))

    import torch

    env = environment()
    report["environment"] = env
    print(f"torch {env['torch']} (CUDA build {env['torch_cuda']}, cuDNN {env['cudnn']}), driver {env['driver']}, "
          f"{env['device_count']} usable CUDA device(s): "
          + (", ".join(f"{d['name']} sm_{d['capability'].replace('.', '')} {d['memory_mb']} MB"
                       for d in env["devices"]) or "none"), flush=True)
    if not env["cuda_usable"] and not a.smoke:
        report["cuda"] = False
        report["summary"] = ((f"CUDA present but unusable: {env['cuda_problem']}" if env["cuda_problem"]
                              else "no CUDA device (torch.cuda.is_available() is False)")
                             + "; nothing measured, exit 0")
        save()
        print(report["summary"], flush=True)
        print(f"report: {out_path}", flush=True)
        return 0
    report["cuda"] = env["cuda_usable"]
    gpus = env["device_count"]
    device = torch.device("cuda:0" if gpus and not a.smoke else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(int(os.environ.get("PAPERECG_THREADS", "0")) or (os.cpu_count() or 1))
    else:
        torch.backends.cudnn.benchmark = True

    # 2. forward + backward
    report["forward_backward"] = {}
    for case in _model_cases(a.smoke):
        try:
            r = forward_backward(case, device, a.smoke)
        except Exception as e:  # noqa: BLE001 - report and go on to the next network
            r = {"size": case["size"], "error": f"{type(e).__name__}: {e}"[:500]}
        if r.get("error"):
            report["errors"].append(f"forward_backward {case['name']}: {r['error']}")
        report["forward_backward"][case["name"]] = r
        print(f"forward+backward {case['name']}: {json.dumps(r)}", flush=True)
        save()
    if device.type == "cuda":
        torch.cuda.empty_cache()

    work = Path(a.work).resolve() if a.work else Path(tempfile.mkdtemp(prefix="gpu_check_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        # 3. data, then training
        data, hidden, gen_s = make_data(work, a.pages, os.cpu_count() or 1)
        report["data"] = {"records": a.pages, "seconds": round(gen_s, 1)}
        print(f"generated {a.pages} records in {gen_s:.0f} s", flush=True)
        save()
        minutes = a.train_minutes
        budgets = {"detector_minutes": round(0.2 * minutes, 3), "segmenter_minutes": round(0.5 * minutes, 3),
                   "classifier_minutes": round(0.3 * minutes, 3)}
        config = work / "profile.json"
        if a.smoke:
            budgets.update(batch_size=2, num_workers=2, classifier_image_px=96)
        config.write_text(json.dumps(budgets))
        run_env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PAPERECG_PROFILE": "gpu",
                   "PAPERECG_CONFIG": str(config), "PAPERECG_COMPONENTS": "detector,segmenter,classifier"}
        if a.smoke:
            run_env.update(PAPERECG_DEVICE="cpu", PAPERECG_DDP_PROCS="1")
        model = work / "model"
        left = a.deadline_s - (_now() - t_start)
        train = run_measured([sys.executable, "train_model.py", "-d", str(data), "-m", str(model), "-v"], run_env,
                             # a GPU run must leave time for inference; a smoke run on a busy CPU may be slow
                             left - 60 if a.smoke else min(left - 60, minutes * 60 * 1.5 + 90), gpus,
                             work / "train.log")
        train["budgets"] = budgets
        train["components"] = sorted(p.name for p in model.iterdir() if (p / "config.json").is_file()) \
            if model.is_dir() else []
        report["train"] = train
        if train["rc"] != 0:
            report["errors"].append(f"train_model.py exited with {train['rc']}"
                                    + (" (timed out)" if train["timed_out"] else ""))
        print(f"training: rc {train['rc']}, {train['wall_s']} s, components {train['components']}", flush=True)
        save()

        # 4. inference, one job per GPU
        if (model / "prevalence.json").is_file():
            out = work / "outputs"
            jobs = max(1, gpus) if not a.smoke else 2
            left = a.deadline_s - (_now() - t_start)
            inf_env = {k: v for k, v in run_env.items() if k not in ("PAPERECG_CONFIG", "PAPERECG_COMPONENTS")}
            inf = run_measured([sys.executable, "run_model.py", "-d", str(hidden), "-m", str(model), "-o", str(out),
                                "--jobs", str(jobs)], inf_env, left - 10, gpus, work / "run.log")
            inf.update(jobs=jobs, **check_outputs(hidden, out))
            inf["records_per_s"] = round(inf["outputs_written"] / max(inf["wall_s"], 1e-6), 3)
            report["inference"] = inf
            if inf["rc"] != 0 or inf["invalid_outputs"] or inf["outputs_written"] < inf["records"]:
                report["errors"].append(f"run_model.py: rc {inf['rc']}, {inf['outputs_written']}/{inf['records']} "
                                        f"outputs, {len(inf['invalid_outputs'])} invalid"
                                        + (" (timed out)" if inf["timed_out"] else ""))
            print(f"inference: {inf['outputs_written']}/{inf['records']} records in {inf['wall_s']} s = "
                  f"{inf['records_per_s']} records/s with --jobs {jobs}; peak RSS {inf['peak_rss_mb']} MB"
                  + (f", peak GPU {inf.get('peak_gpu_used_mb')} MB" if gpus else ""), flush=True)
        else:
            report["errors"].append("no model folder to run: inference skipped")
    except Exception as e:  # noqa: BLE001 - the report must still be written
        report["errors"].append(f"{type(e).__name__}: {e}"[:1000])
    finally:
        if not a.work:
            shutil.rmtree(work, ignore_errors=True)
    inf = report.get("inference", {})
    report["summary"] = (f"{env['devices'][0]['name'] if env['devices'] else 'CPU (smoke)'}: "
                         f"{inf.get('records_per_s')} records/s, peak GPU {inf.get('peak_gpu_used_mb')} MB, "
                         f"peak RSS {inf.get('peak_rss_mb')} MB, {len(report['errors'])} error(s)")
    save()
    print(report["summary"], flush=True)
    print(f"report: {out_path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
