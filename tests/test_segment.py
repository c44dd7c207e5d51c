"""Trace segmenter: model shapes, pixel (un)shuffle, labels, loss, training, exact resume, inference."""
import numpy as np
import pytest
import torch

from paperecg.segment.data import PagePool, RecordPages, RenderSettings, WorkSample, random_crop
from paperecg.segment.infer import Segmenter
from paperecg.segment.loss import LossConfig, f1_counts, f1_from_counts, focal_loss, segmentation_loss
from paperecg.segment.model import ResUNetCBAM, SegmenterConfig, load_model, save_model
from paperecg.segment.preprocess import draw_trace_label, page_to_work, pad_to_multiple, work_scale
from paperecg.segment.train import TrainConfig, train_segmenter

TINY = dict(base_channels=4, depth=2, work_width_px=220, work_height_px=170)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _tiny_render_settings() -> RenderSettings:
    return RenderSettings(dpi_choices=(40.0,), augment_prob=0.0)


def test_unshuffle_then_shuffle_is_identity_and_output_matches_input():
    cfg = SegmenterConfig(base_channels=4, depth=3)
    model = ResUNetCBAM(cfg).eval()
    x = torch.rand(2, 1, 48, 80)
    folded = model.unshuffle(x)
    assert folded.shape == (2, 4, 24, 40)
    # each of the 4 channels is one phase of the 2x2 grid: every other row and column
    assert torch.equal(folded[:, 0], x[:, 0, 0::2, 0::2]) and torch.equal(folded[:, 3], x[:, 0, 1::2, 1::2])
    assert torch.equal(model.shuffle(folded), x)
    planes = torch.rand(2, cfg.input_planes, 48, 80)  # ink + chroma
    with torch.no_grad():
        assert model(planes).shape == x.shape
    gray_only = ResUNetCBAM(SegmenterConfig(base_channels=4, depth=3, chroma=False)).eval()
    with torch.no_grad():
        assert gray_only(x).shape == x.shape
    assert cfg.pad_multiple == 16
    assert cfg.level_channels() == [4, 8, 16, 32]
    assert SegmenterConfig().level_channels() == [32, 64, 128, 256, 512]


def test_padding_reaches_the_network_stride():
    a = np.ones((2, 851, 1099), np.uint8)
    p = pad_to_multiple(a, 32)
    assert p.shape == (2, 864, 1120)
    assert p[:, :851, :1099].all() and not p[:, 851:].any() and not p[:, :, 1099:].any()
    assert work_scale((1700, 2200), (850, 1100)) == pytest.approx(0.5)


def test_label_follows_the_polyline_at_working_scale():
    # a horizontal trace at page row 100 (2x the working size) -> working row ~49.75, width 1.5 px
    line = np.stack([np.full(200, 100.0), np.arange(20, 220, dtype=float)], axis=1)
    lab = draw_trace_label([line], (100, 150), 0.5, 1.5)
    rows = np.flatnonzero(lab.any(axis=1))
    assert 1 <= len(rows) <= 2 and set(rows) <= {49, 50}
    cols = np.flatnonzero(lab.any(axis=0))
    assert cols.min() in (9, 10) and cols.max() in (109, 110)
    # NaN rows break the line instead of joining across the gap
    gap = line.copy()
    gap[80:120] = np.nan
    lab_gap = draw_trace_label([gap], (100, 150), 0.5, 1.5)
    assert not lab_gap[:, 52:58].any() and lab_gap[:, 20:35].any() and lab_gap[:, 65:100].any()


def test_page_to_work_keeps_aspect_makes_ink_bright_and_removes_shading():
    page = np.full((340, 440, 3), 255, np.uint8)
    page[170, :] = 0  # a black line on white paper
    page[:, 300:, 1:] = 0  # a saturated red patch: chroma, not ink
    planes, scale = page_to_work(page, (170, 220), chroma=True)
    assert planes.shape == (2, 170, 220) and scale == pytest.approx(0.5)
    gray, chroma = planes
    assert gray[85, :100].mean() > 50 and gray[10, :100].max() == 0
    assert chroma[10, 160:].min() == 255 and chroma[10, :140].max() == 0
    # a dark trace on paper shaded from white to mid-gray: flattening makes it equally strong everywhere
    shaded = np.repeat(np.linspace(255, 110, 440)[None, :, None], 340, axis=0).repeat(3, axis=2)
    shaded[170:172] *= 0.15  # two page rows = one working row
    flat, _ = page_to_work(shaded.astype(np.uint8), (170, 220), flatten=True)
    line = flat[0, 85, 20:200].astype(float)
    assert line.min() > 180 and line.max() - line.min() < 30
    assert flat[0, 40, 20:200].max() < 20  # plain (shaded) paper reads as no ink


def test_focal_loss_is_weighted_bce_at_gamma_zero_and_discounts_easy_pixels():
    logits = torch.tensor([[-3.0, 0.5, 2.0, -0.2]])
    target = torch.tensor([[0.0, 1.0, 1.0, 0.0]])
    alpha = 0.75
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    w = alpha * target + (1 - alpha) * (1 - target)
    assert focal_loss(logits, target, alpha, 0.0).item() == pytest.approx((w * bce).mean().item(), rel=1e-6)
    assert focal_loss(logits, target, alpha, 2.0).item() < focal_loss(logits, target, alpha, 0.0).item()
    # a confident correct prediction costs less than a wrong one
    good = segmentation_loss(torch.tensor([[4.0, -4.0]]), torch.tensor([[1.0, 0.0]]), LossConfig())
    bad = segmentation_loss(torch.tensor([[-4.0, 4.0]]), torch.tensor([[1.0, 0.0]]), LossConfig())
    assert good.item() < 0.1 * bad.item()


def test_f1_counts():
    label = np.array([1, 1, 0, 0, 1], bool)
    prob = np.array([0.9, 0.4, 0.6, 0.1, 0.8], np.float32)
    c = f1_counts(prob, label, np.array([0.5, 0.3]))
    assert c.tolist() == [[2, 1, 1], [3, 1, 0]]
    assert f1_from_counts(c) == pytest.approx([4 / 6, 6 / 7])


def test_crops_prefer_the_trace_and_pad_beyond_the_page():
    planes = np.zeros((2, 50, 60), np.uint8)
    label = np.zeros((50, 60), bool)
    label[40, 50] = True
    s = WorkSample(planes, label)
    rng = np.random.default_rng(0)
    hits = sum(random_crop(s, np.argwhere(label), rng, (16, 16), 1.0)[1].any() for _ in range(20))
    assert hits == 20
    g, lab = random_crop(s, np.argwhere(label), rng, (64, 96), 0.0)
    assert g.shape == (2, 64, 96) and lab.sum() == 1 and not g[:, 50:].any()


def _tiny_pool(records, size=4) -> PagePool:
    fn = RecordPages(records, SegmenterConfig(**TINY), seed=3, settings=_tiny_render_settings())
    pool = PagePool(fn, size)
    for _ in range(size):
        pool.add_next()
    return pool


def test_a_few_training_steps_lower_the_loss_on_rendered_pages(record_factory):
    records = [record_factory(f"0000{i}_lr", seed=i) for i in range(2)]
    pool = _tiny_pool(records)
    assert all(s is not None and s.label.mean() > 0.005 for s in pool.slots)
    torch.manual_seed(0)
    model = ResUNetCBAM(SegmenterConfig(**TINY))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    cfg = LossConfig()
    x_eval, y_eval = pool.crops(np.random.default_rng(123), 8, (64, 64), 0.8, photometric=False)
    x_eval, y_eval = torch.from_numpy(x_eval), torch.from_numpy(y_eval)

    def eval_loss() -> float:
        model.eval()
        with torch.no_grad():
            out = segmentation_loss(model(x_eval), y_eval, cfg).item()
        model.train()
        return out

    before = eval_loss()
    rng = np.random.default_rng(0)
    for _ in range(60):
        x, y = pool.crops(rng, 4, (64, 64), 0.8)
        loss = segmentation_loss(model(torch.from_numpy(x)), torch.from_numpy(y), cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = eval_loss()
    assert after < 0.7 * before, (before, after)


def _train_cfg(max_steps: int) -> TrainConfig:
    return TrainConfig(minutes=30.0, max_steps=max_steps, batch_size=2, crop_px=32, lr=2e-3, warmup_steps=0,
                       lr_final_fraction=1.0, render=_tiny_render_settings(), pool_size=3, min_pool=2,
                       steps_per_page=2.0, val_pages=1, val_eik_pages=0, val_steps=3, val_fraction=0.34,
                       checkpoint_minutes=100.0, seed=5, num_workers=0, device="cpu")


def test_resume_from_checkpoint_gives_identical_weights(record_factory, tmp_path):
    records = [record_factory(f"0001{i}_lr", seed=10 + i) for i in range(3)]
    mcfg = SegmenterConfig(**TINY)
    quiet = lambda *a: None  # noqa: E731
    straight, split = str(tmp_path / "straight"), str(tmp_path / "split")
    s1 = train_segmenter(records, straight, None, mcfg, _train_cfg(6), log=quiet)
    train_segmenter(records, split, None, SegmenterConfig(**TINY), _train_cfg(3), log=quiet)
    s2 = train_segmenter(records, split, None, SegmenterConfig(**TINY), _train_cfg(6), log=quiet)
    assert s1["steps"] == s2["steps"] == 6
    a = torch.load(f"{straight}/checkpoint.pt", weights_only=True)["model"]
    b = torch.load(f"{split}/checkpoint.pt", weights_only=True)["model"]
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    # the best weights and their config are saved for inference
    model = load_model(straight)
    assert model.config.base_channels == 4 and 0.0 < model.config.threshold < 1.0


def test_inference_on_an_odd_sized_page(tmp_path):
    torch.manual_seed(0)
    model = ResUNetCBAM(SegmenterConfig(**TINY))
    save_model(model, str(tmp_path / "m"))
    seg = Segmenter.load(str(tmp_path / "m"), device="cpu")
    rng = np.random.default_rng(0)
    page = rng.integers(0, 256, size=(301, 457, 3), dtype=np.uint8)
    prob = seg.predict(page)
    assert prob.shape == (301, 457) and prob.dtype == np.float32
    assert np.all((prob >= 0) & (prob <= 1)) and np.isfinite(prob).all()
    # batched pages of different sizes come back in page pixels, and batching does not change the result
    other = rng.integers(0, 256, size=(120, 90), dtype=np.uint8)
    both = seg.predict_batch([page, other, page])
    assert [p.shape for p in both] == [(301, 457), (120, 90), (301, 457)]
    np.testing.assert_allclose(both[0], prob, atol=1e-5)
    np.testing.assert_allclose(both[2], prob, atol=1e-5)


def test_photographed_training_pages_are_printed_at_a_phone_photos_resolution(record_factory, monkeypatch):
    """A phone photographs a printout (150-250 dpi of paper), never a 50-dpi scan: photographed pages draw
    their resolution from photo_dpi_choices, the others from dpi_choices."""
    import paperecg.render.dataset as dataset

    calls = []

    def fake(record, rng, augment=True, dpi=None, photo_prob=0.0, **kw):
        calls.append((dpi, photo_prob))
        raise RuntimeError("stop")

    monkeypatch.setattr(dataset, "render_training_page", fake)
    records = [record_factory("00001_lr", seed=1)]
    settings = RenderSettings(dpi_choices=(40.0,), photo_dpi_choices=(222.0,), augment_prob=1.0, photo_prob=0.5)
    fn = RecordPages(records, SegmenterConfig(**TINY), seed=3, settings=settings)
    for k in range(40):
        with pytest.raises(RuntimeError):
            fn(k)
    assert set(calls) == {(40.0, 0.0), (222.0, 1.0)}
