"""The shared training machinery (paperecg/harness.py): budget clock, schedules, AMP step, atomic save."""
import os

import pytest
import torch

from paperecg.hardware import PROFILES, classifier_recipe, detector_recipe
from paperecg.harness import (AmpStep, BudgetClock, atomic_torch_save, sync_progress, warmup_cosine_factor,
                              warmup_cosine_lr)


def test_clock_takes_whichever_of_time_and_steps_is_further_and_continues_a_resumed_run():
    clock = BudgetClock(budget_s=1e9, max_steps=10)
    assert clock.progress(0) < 1e-6 and clock.progress(5) == 0.5 and clock.progress(10) >= 1.0
    resumed = BudgetClock(budget_s=100.0, elapsed_before_s=60.0)
    assert 0.6 <= resumed.progress(0) < 0.7 and resumed.elapsed_s() >= 60.0
    assert BudgetClock(budget_s=1e9, max_steps=0).progress(0) >= 1.0  # a zero step cap stops at once
    assert sync_progress(0.25, world=1, device=torch.device("cpu")) == 0.25


def test_schedules_warm_up_then_decay():
    # step warm-up times a cosine over the budget, ending at the final fraction
    assert warmup_cosine_factor(0.0, 0, warmup_steps=4, final_fraction=0.05) == pytest.approx(0.25)
    assert warmup_cosine_factor(0.0, 10, warmup_steps=4, final_fraction=0.05) == pytest.approx(1.0)
    assert warmup_cosine_factor(1.0, 10, warmup_steps=4, final_fraction=0.05) == pytest.approx(0.05)
    assert warmup_cosine_factor(0.5, 10, 4, 0.05) == pytest.approx(0.525)
    # warm-up over a share of the budget (from 5 %), then cosine to zero
    assert warmup_cosine_lr(0.0, 1.0) == pytest.approx(0.05)
    assert warmup_cosine_lr(0.015, 1.0) == pytest.approx(0.5)
    assert warmup_cosine_lr(0.03, 1.0) == pytest.approx(1.0)
    assert warmup_cosine_lr(1.0, 1.0) == pytest.approx(0.0, abs=1e-12)


def test_amp_step_off_is_a_plain_step_and_on_the_cpu_runs_bfloat16_without_a_scaler():
    def run(amp: AmpStep | None) -> torch.Tensor:
        torch.manual_seed(0)
        net = torch.nn.Linear(4, 2)
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        x = torch.randn(8, 4)
        if amp is None:
            loss = net(x).square().mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        else:
            with amp.autocast():
                out = net(x)
            amp.step(out.float().square().mean(), opt)
        return net.weight.detach().clone()

    cpu = torch.device("cpu")
    assert torch.equal(run(None), run(AmpStep(cpu, enabled=False)))
    amp = AmpStep(cpu, enabled=True)
    assert amp.dtype == torch.bfloat16 and not amp.scaler.is_enabled()
    assert "bfloat16" in amp.describe() and "grad scaler off" in amp.describe()
    assert torch.allclose(run(amp), run(None), atol=0.02)


def test_atomic_save_replaces_the_checkpoint_and_leaves_no_temporary(tmp_path):
    path = str(tmp_path / "ckpt.pt")
    atomic_torch_save({"step": 1}, path)
    atomic_torch_save({"step": 2}, path)
    assert torch.load(path, weights_only=True) == {"step": 2}
    assert os.listdir(tmp_path) == ["ckpt.pt"]


def test_recipes_follow_the_profile():
    gpu = PROFILES["gpu"]
    assert detector_recipe(gpu).batch > detector_recipe(PROFILES["cpu"]).batch
    assert detector_recipe(PROFILES["cpu"]).loader_workers == 0
    capped = classifier_recipe(gpu.__class__(**{**gpu.to_dict(), "num_workers": 2}))
    assert capped["workers"] == 2 and capped["image_size_px"] == 224
    assert classifier_recipe(PROFILES["tiny"])["image_size_px"] < classifier_recipe(PROFILES["cpu"])["image_size_px"]
