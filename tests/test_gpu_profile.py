"""The gpu profile's code path on the CPU at toy size (segmenter crops rendered by loader workers, the
detector's and classifier's gpu recipes, bfloat16 autocast), that it trains the cpu profile's networks on the
same mix, and the fallback when CUDA is present but unusable. The real sizes on a real GPU: `python -m paperecg.tools.gpu_check`."""
import json
import os
import warnings

import numpy as np
import pytest
import torch
from test_harness import run_script

from paperecg import hardware
from paperecg.records.io import find_records
from paperecg.tools.make_demo_data import make_demo_data

# budgets of a few seconds; the recipe's sizes except the classifier's image crop (224 px ResNet50 steps
# take most of a minute on one shared CPU thread)
TOY_CONFIG = {"detector_minutes": 0.1, "segmenter_minutes": 0.1, "classifier_minutes": 0.1, "batch_size": 2,
              "num_workers": 2, "classifier_image_px": 96}
GPU_ON_CPU = {"PAPERECG_PROFILE": "gpu", "PAPERECG_DEVICE": "cpu", "PAPERECG_THREADS": "1",
              "PAPERECG_COMPONENTS": "detector,segmenter,classifier", "PAPERECG_DDP_PROCS": "1"}


@pytest.fixture(scope="module")
def gpu_trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpu_profile")
    data = root / "data"
    make_demo_data(str(data), records=4, seed=5, verbose=False)
    config = root / "toy.json"
    config.write_text(json.dumps(TOY_CONFIG))
    model = root / "model"
    r = run_script(["train_model.py", "-d", str(data), "-m", str(model), "-v"],
                   env_extra={**GPU_ON_CPU, "PAPERECG_CONFIG": str(config)})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return data, model, r.stdout + r.stderr


def test_gpu_recipe_runs_on_the_cpu(gpu_trained):
    _data, model, log = gpu_trained
    assert "Profile gpu on cpu" in log
    # the segmenter trained on the recipe's 256-px crops at the cpu profile's width, in bfloat16 autocast,
    # pages from workers
    seg_line = next(line for line in log.splitlines() if "M parameters" in line)
    assert "amp torch.bfloat16 (grad scaler off)" in seg_line and "workers 2" in seg_line, seg_line
    assert "batch 2x256x256" in seg_line and f"base {hardware.SEGMENTER_BASE_CHANNELS}," in seg_line, seg_line
    for sub in ("detector", "segmenter", "classifier"):
        assert os.path.isfile(model / sub / "config.json"), sub
    assert os.path.isfile(model / "classifier" / "fusion.json")  # the measurement fusion, as on the CPU
    with open(model / "classifier" / "config.json") as f:
        assert json.load(f)["image_size_px"] == TOY_CONFIG["classifier_image_px"]
    with open(model / "segmenter" / "train_history.json") as f:
        hist = json.load(f)
    assert hist["state"]["step"] >= 1 and hist["train_config"]["crop_px"] == -1
    assert np.isfinite([h["loss"] for h in hist["history"]["train"]]).all()


def test_gpu_trained_model_loads_and_runs(gpu_trained, monkeypatch, capsys):
    data, model, _log = gpu_trained
    for k, v in GPU_ON_CPU.items():
        monkeypatch.setenv(k, v)
    import team_code

    digitizer, classifier = team_code.load_models(str(model), False)
    assert digitizer is not None and classifier.model is not None
    record = os.path.join(data, find_records(str(data))[0])
    signal, labels = team_code.run_models(record, digitizer, classifier, False)
    # a few toy steps need not find the trace (NaN leads are valid output); every stage must have run
    assert signal is not None and signal.shape[1] == 12 and not np.isinf(signal).any()
    assert labels and all(isinstance(x, str) for x in labels)
    err = capsys.readouterr().err
    assert "digitization failed" not in err and "classification failed" not in err, err[-2000:]


# --- CUDA present but unusable: the CPU profile with one warning --------------------------------------------

@pytest.fixture
def fresh_probe(monkeypatch):
    for k in ("PAPERECG_PROFILE", "PAPERECG_DEVICE", "PAPERECG_CONFIG", "PAPERECG_BUDGET_SCALE"):
        monkeypatch.delenv(k, raising=False)
    hardware._cuda_once.cache_clear()
    hardware._WARNED.clear()
    yield
    hardware._cuda_once.cache_clear()
    hardware._WARNED.clear()


def _old_driver_is_available():
    warnings.warn("CUDA initialization: The NVIDIA driver on your system is too old (found version 11040).")
    return False


def test_gpu_and_cpu_profiles_differ_only_in_budgets_batches_precision_and_workers():
    """What the organizers train on a GPU is the network this project measures on the CPU, with more steps."""
    import dataclasses

    from paperecg.segment.train import default_model_config

    gpu, cpu = hardware.PROFILES["gpu"], hardware.PROFILES["cpu"]
    for f in dataclasses.fields(hardware.Profile):
        if f.name not in hardware.PROFILE_SCALE_FIELDS:
            assert getattr(gpu, f.name) == getattr(cpu, f.name), f.name  # crops, components, image size
    for part in ("detector", "segmenter", "classifier"):
        assert getattr(gpu, f"{part}_minutes") > getattr(cpu, f"{part}_minutes"), part
    # the classifier: one image crop size; batches, epoch caps and loader workers may differ
    g, c = hardware.classifier_recipe(gpu), hardware.classifier_recipe(cpu)
    assert g.keys() == c.keys()
    differ = {k for k in g if g[k] != c[k]}
    assert differ <= {"image_batch", "signal_batch", "signal_max_epochs", "image_max_epochs", "workers"}, differ
    # the detector: only its batch and loader workers follow the profile
    assert {f.name for f in dataclasses.fields(hardware.DetectorRecipe)} == {"batch", "loader_workers"}
    # the segmenter: one width, whatever the device
    assert default_model_config().base_channels == hardware.SEGMENTER_BASE_CHANNELS
    # the page mixes (layouts, styles, photo shares) are the data modules' constants: none asks the profile
    root = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "paperecg")
    mix_modules = [os.path.join(root, "render", n) for n in os.listdir(os.path.join(root, "render")) if n.endswith(".py")]
    mix_modules += [os.path.join(root, *p) for p in (("segment", "data.py"), ("rectify", "data.py"),
                                                     ("classify", "signal_data.py"), ("classify", "image_data.py"),
                                                     ("classify", "train_data.py"))]
    for path in mix_modules:
        with open(path) as f:
            text = f.read()
        assert "hardware" not in text and "select_profile" not in text, path


def test_old_driver_falls_back_to_the_cpu_profile(fresh_probe, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", _old_driver_is_available)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's own warning must not leak out: ours replaces it
        prof = hardware.select_profile()
        hardware.select_profile()
    assert prof.name == "cpu" and prof.device == "cpu" and not prof.amp
    err = capsys.readouterr().err
    assert err.count("CUDA is present but unusable") == 1 and "too old" in err and "README" in err


def test_failing_cuda_kernel_falls_back_to_the_cpu_profile(fresh_probe, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    real_arange = torch.arange

    def arange(*args, **kwargs):
        if str(kwargs.get("device", "")).startswith("cuda"):
            raise RuntimeError("CUDA error: no kernel image is available for execution on the device")
        return real_arange(*args, **kwargs)

    monkeypatch.setattr(torch, "arange", arange)
    assert hardware.cuda_device_count() == 0
    assert hardware.select_profile().name == "cpu"
    assert hardware.ddp_procs_wanted(hardware.PROFILES["gpu"]) == 1  # no torchrun for broken GPUs
    err = capsys.readouterr().err
    assert err.count("CUDA is present but unusable") == 1 and "no kernel image" in err


def test_gpu_profile_without_cuda_becomes_cpu(fresh_probe, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("PAPERECG_PROFILE", "gpu")
    assert hardware.select_profile().name == "cpu"
    monkeypatch.setenv("PAPERECG_DEVICE", "cpu")  # asked for explicitly: the gpu recipe on the CPU, AMP in bf16
    prof = hardware.select_profile()
    assert prof.name == "gpu" and prof.device == "cpu" and prof.amp
    assert hardware.amp_dtype("cpu") == torch.bfloat16 and not hardware.needs_grad_scaler("cpu", True)
    assert hardware.amp_dtype("cuda") == torch.float16 and hardware.needs_grad_scaler("cuda", True)
    assert capsys.readouterr().err.count("no CUDA device") == 1


def test_ddp_procs_wanted(fresh_probe, monkeypatch):
    monkeypatch.setattr(hardware, "cuda_device_count", lambda: 4)
    monkeypatch.delenv("PAPERECG_DDP_PROCS", raising=False)
    assert hardware.ddp_procs_wanted(hardware.PROFILES["gpu"]) == 4
    assert hardware.ddp_procs_wanted(hardware.PROFILES["cpu"]) == 1
    monkeypatch.setenv("PAPERECG_DDP_PROCS", "1")
    assert hardware.ddp_procs_wanted(hardware.PROFILES["gpu"]) == 1


def test_detector_amp_check_is_offline(monkeypatch):
    """ultralytics' AMP check downloads a network on CUDA; ours replaces it and says no off CUDA."""
    from paperecg.rectify.yolo import import_ultralytics, offline_check_amp

    import_ultralytics()
    import ultralytics.engine.trainer as trainer

    assert trainer.check_amp is offline_check_amp
    assert offline_check_amp(torch.nn.Conv2d(3, 4, 3)) is False


# --- the device check script -------------------------------------------------------------------------------

def test_gpu_check_without_cuda_reports_and_exits_zero(tmp_path):
    out = tmp_path / "check.json"
    r = run_script(["-m", "paperecg.tools.gpu_check", "--out", str(out)], env_extra={"CUDA_VISIBLE_DEVICES": ""})
    assert r.returncode == 0, r.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["cuda"] is False and "nothing measured" in report["summary"]
    env = report["environment"]
    assert env["torch"] == torch.__version__ and env["torch_cuda"] == torch.version.cuda and env["devices"] == []


def test_gpu_check_forward_backward_of_every_network_under_cpu_autocast():
    """The check's stage 2 at toy sizes on the CPU: every network's bfloat16 forward and backward run and
    give finite gradients (on a GPU the same code runs float16 with the scaler at the real sizes)."""
    from paperecg.tools.gpu_check import _model_cases, forward_backward

    cases = _model_cases(smoke=True)
    assert [c["name"] for c in cases] == ["segmenter", "classifier_image", "classifier_signal", "detector"]
    for case in cases:
        r = forward_backward(case, torch.device("cpu"), smoke=True)
        assert "error" not in r and r["grads_finite"] and r["batch"] == case["batch"], (case["name"], r)


def test_ddp_setup_gives_an_indexed_cuda_device(monkeypatch):
    """torch.cuda.set_device(torch.device('cuda')) raises; the trainers' device setup must pass an index."""
    from torch.cuda import _get_device_index

    chosen = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: chosen.append(_get_device_index(d)))
    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(k, raising=False)
    assert hardware.ddp_setup("cuda") == torch.device("cuda", 0)
    assert hardware.ddp_setup("cuda:1") == torch.device("cuda", 1)
    assert hardware.ddp_setup("cpu") == torch.device("cpu")
    assert chosen == [0, 1]
