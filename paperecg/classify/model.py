"""The trained classifier: config (config.json), branch weights (safetensors), and inference."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields

import numpy as np
import torch

from ..records.labels import CLASSES
from .image_data import square_crop_resize, to_tensor_input
from .networks import SignalNet, build_image_net
from .signal_data import NUM_LEADS, NUM_SIDE_FEATURES, network_input, side_features, to_internal
from .thresholds import macro_f

CONFIG_FILE = "config.json"


@dataclass
class ClassifierConfig:
    classes: list[str] = field(default_factory=lambda: list(CLASSES))
    # signal branch
    signal_width: int = 32
    signal_kernel: int = 9
    signal_dropout: float = 0.2
    num_signal_models: int = 0  # a k-fold ensemble: signal_0.safetensors ... signal_{k-1}
    # image branch
    image_arch: str = "resnet50"
    image_size_px: int = 224
    render_dpi: float = 100.0
    has_image_model: bool = False
    imagenet_init: bool = False
    # decisions
    trained_classes: list[bool] = field(default_factory=lambda: [True] * len(CLASSES))
    fusion_weight_signal: float = 1.0  # fused = w * p_signal + (1 - w) * p_image
    thresholds_fused: list[float] = field(default_factory=lambda: [0.5] * len(CLASSES))
    thresholds_signal: list[float] = field(default_factory=lambda: [0.5] * len(CLASSES))
    thresholds_image: list[float] = field(default_factory=lambda: [0.5] * len(CLASSES))
    at_least_one: bool = True  # every scored record has a label: an empty answer can only lose
    imbalance_power: float = 0.5
    notes: dict = field(default_factory=dict)  # training facts: records, minutes, validation scores

    def to_json(self) -> dict:
        d = asdict(self)
        for k in ("thresholds_fused", "thresholds_signal", "thresholds_image"):
            d[k] = [float(v) if np.isfinite(v) else None for v in d[k]]  # JSON has no infinity
        return d

    @classmethod
    def from_json(cls, d: dict) -> "ClassifierConfig":
        known = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in known}
        for k in ("thresholds_fused", "thresholds_signal", "thresholds_image"):
            if k in d:
                d[k] = [float("inf") if v is None else float(v) for v in d[k]]
        return cls(**d)


def make_signal_net(cfg: ClassifierConfig) -> SignalNet:
    return SignalNet(2 * NUM_LEADS, NUM_SIDE_FEATURES, len(cfg.classes), cfg.signal_width, cfg.signal_kernel,
                     cfg.signal_dropout)


def decide(probs: np.ndarray, thresholds, trained, at_least_one: bool = True) -> np.ndarray:
    """0/1 decisions for one record's probabilities: p >= threshold for trained classes; with at_least_one,
    the trained class with the highest p/threshold when none passes."""
    probs = np.asarray(probs, dtype=np.float64)
    thr = np.asarray(thresholds, dtype=np.float64)
    trained = np.asarray(trained, dtype=bool) & np.isfinite(thr)
    out = (probs >= thr) & trained
    if at_least_one and not out.any() and trained.any():
        ratio = np.where(trained, probs / np.maximum(thr, 1e-6), -np.inf)
        out[int(np.argmax(ratio))] = True
    return out


def score_probs(probs: np.ndarray, y: np.ndarray, thresholds, trained, at_least_one: bool = True,
                classes: list[str] | None = None) -> tuple[float | None, dict]:
    """Macro F (None when no class counts) and per-class F of the `decide` decisions on (records, classes)
    probabilities against 0/1 truth `y`, the organizers' way (thresholds.macro_f)."""
    pred = np.stack([decide(p, thresholds, trained, at_least_one) for p in probs])
    f, per = macro_f(pred, y)
    names = list(classes) if classes is not None else list(CLASSES)
    return (round(float(f), 4) if np.isfinite(f) else None,
            {c: round(float(v), 3) for c, v in zip(names, per) if np.isfinite(v)})


class Classifier:
    """Inference object: `Classifier.load(dir).predict(images_rgb, signal, header) -> list[str]`."""

    def __init__(self, cfg: ClassifierConfig, signal_nets: list[torch.nn.Module],
                 image_net: torch.nn.Module | None, device: str = "cpu", fusion=None):
        self.cfg = cfg
        self.fusion = fusion  # classify.fusion.FusionModel (fusion.json) or None: CNN-only decisions
        self.device = torch.device(device)
        self.signal_nets = [n.to(self.device).eval() for n in signal_nets]
        self.image_net = image_net.to(self.device).eval() if image_net is not None else None

    # --- persistence ------------------------------------------------------------------------------------
    def save(self, folder: str) -> None:
        from safetensors.torch import save_file

        os.makedirs(folder, exist_ok=True)
        self.cfg.num_signal_models = len(self.signal_nets)
        self.cfg.has_image_model = self.image_net is not None
        for k, net in enumerate(self.signal_nets):
            save_file({n: t.detach().cpu().contiguous() for n, t in net.state_dict().items()},
                      os.path.join(folder, f"signal_{k}.safetensors"))
        if self.image_net is not None:
            # Half precision halves the shipped ResNet50 (94 -> 47 MB); loading casts back to float32.
            save_file({n: (t.half() if t.is_floating_point() else t).detach().cpu().contiguous()
                       for n, t in self.image_net.state_dict().items()},
                      os.path.join(folder, "image.safetensors"))
        with open(os.path.join(folder, CONFIG_FILE), "w") as f:
            json.dump(self.cfg.to_json(), f, indent=1)
        if self.fusion is not None:
            self.fusion.save(folder)

    @classmethod
    def load(cls, folder: str, device: str | None = None) -> "Classifier":
        from safetensors.torch import load_file

        with open(os.path.join(folder, CONFIG_FILE)) as f:
            cfg = ClassifierConfig.from_json(json.load(f))
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        nets = []
        for k in range(cfg.num_signal_models):
            net = make_signal_net(cfg)
            net.load_state_dict(load_file(os.path.join(folder, f"signal_{k}.safetensors")))
            nets.append(net)
        image_net = None
        if cfg.has_image_model:
            image_net = build_image_net(cfg.image_arch, len(cfg.classes))
            image_net.load_state_dict(load_file(os.path.join(folder, "image.safetensors")))
        from .fusion import FusionModel

        return cls(cfg, nets, image_net, device, FusionModel.load(folder))

    # --- probabilities ----------------------------------------------------------------------------------
    @torch.no_grad()
    def signal_probs(self, signal: np.ndarray | None, fs_hz: float, lead_names: list[str],
                     age: float | None = None, sex: str | None = None) -> np.ndarray | None:
        """Ensemble-mean class probabilities from a header-ordered mV signal; None without usable signal."""
        if not self.signal_nets or signal is None:
            return None
        x = to_internal(signal, fs_hz, lead_names)
        if not np.isfinite(x).any():
            return None
        inp = torch.from_numpy(network_input(x))[None].to(self.device)
        side = torch.from_numpy(side_features(x, age, sex))[None].to(self.device)
        probs = [torch.sigmoid(net(inp, side)).cpu().numpy()[0] for net in self.signal_nets]
        return np.mean(probs, axis=0)

    @torch.no_grad()
    def image_probs(self, images_rgb: list[np.ndarray]) -> np.ndarray | None:
        """Class probabilities averaged over a record's images; None without images or image model."""
        if self.image_net is None or not images_rgb:
            return None
        crops = np.stack([square_crop_resize(im, self.cfg.image_size_px) for im in images_rgb])
        x = torch.from_numpy(to_tensor_input(crops)).to(self.device)
        return torch.sigmoid(self.image_net(x)).cpu().numpy().mean(axis=0)

    def fusion_probs(self, p_signal: np.ndarray | None, signal: np.ndarray | None, fs_hz: float,
                     lead_names: list[str]) -> np.ndarray | None:
        """Class probabilities of the measurement + CNN fusion; None without fusion model or CNN scores."""
        if self.fusion is None or p_signal is None or signal is None:
            return None
        from .measure import measure

        return self.fusion.probs(p_signal[None], measure(signal, fs_hz, lead_names)[None])[0]

    def branch_probs(self, images_rgb: list[np.ndarray], signal: np.ndarray | None, header) -> dict:
        p_signal = self.signal_probs(signal, header.fs_hz, header.lead_names, header.age, header.sex)
        return {
            "signal": p_signal,
            "image": self.image_probs(images_rgb or []),
            "fusion": self.fusion_probs(p_signal, signal, header.fs_hz, header.lead_names),
        }

    # --- decisions --------------------------------------------------------------------------------------
    def decide_probs(self, p_signal: np.ndarray | None, p_image: np.ndarray | None,
                     p_fusion: np.ndarray | None = None) -> list[str]:
        """Labels from whichever branches answered: the measurement fusion when it answered, else the
        CNN/image blend when both, else the one present."""
        cfg = self.cfg
        if p_fusion is not None:
            probs, thr = p_fusion, self.fusion.thresholds_array()
        elif p_signal is not None and p_image is not None:
            w = cfg.fusion_weight_signal
            probs, thr = w * p_signal + (1.0 - w) * p_image, cfg.thresholds_fused
        elif p_signal is not None:
            probs, thr = p_signal, cfg.thresholds_signal
        elif p_image is not None:
            probs, thr = p_image, cfg.thresholds_image
        else:
            return []
        chosen = decide(probs, thr, cfg.trained_classes, cfg.at_least_one)
        return [c for c, on in zip(cfg.classes, chosen) if on]

    def predict(self, images_rgb: list[np.ndarray], signal: np.ndarray | None, header) -> list[str]:
        """Labels for one record: page images (uint8 RGB, several are averaged), the digitized signal
        (num_samples, num_leads) mV in header order with NaN where not drawn, and its HeaderInfo."""
        p_signal = self.signal_probs(signal, header.fs_hz, header.lead_names, header.age, header.sex)
        # the image branch is read only when it counts: fused in, or standing in for a missing signal
        p_fusion = self.fusion_probs(p_signal, signal, header.fs_hz, header.lead_names)
        needed = p_signal is None or (p_fusion is None and self.cfg.fusion_weight_signal < 1.0)
        return self.decide_probs(p_signal, self.image_probs(images_rgb or []) if needed else None, p_fusion)
