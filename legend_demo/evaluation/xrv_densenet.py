"""TorchXRayVision's DenseNet-121 chest X-ray classifier ("densenet121-res224-all") in plain torch.

Attribution: the architecture, the input convention, the 18-pathology label list and the operating-point
thresholds are those of TorchXRayVision (J. P. Cohen et al., "TorchXRayVision: A library of chest X-ray datasets
and models", MIDL 2022, arXiv:2111.00595; Apache-2.0; github.com/mlmed/torchxrayvision, `models.py`, version
1.5.7), whose "all" weights (arXiv:2002.02497) were trained on NIH, PadChest, CheXpert, MIMIC-CXR (CH), Google,
OpenI and RSNA; the network is DenseNet-121 (G. Huang et al., CVPR 2017) with one input channel. It is rewritten
here because the torchxrayvision package imports torchvision, which does not load with this project's CPU torch.
The module names are TorchXRayVision's, so its published weights load key for key (thesis §4.3.2 uses them
without fine-tuning for AUC/F1).

Input convention (TorchXRayVision `utils.normalize`, `XRayCenterCrop`, `fix_resolution`): one channel, display
values (dense tissue bright) scaled to [-1024, 1024], centre-cropped to a square, resized to 224×224 (bilinear
with antialiasing). Outputs: `logits` (B, 18); `probabilities` = sigmoid; `operating_point_scores` = the library's
`op_norm` (a sigmoid output equal to its pathology's operating threshold maps to 0.5); `features` (B, 1024) =
ReLU + global average pool of the last dense block (the library's `features2`), used for FID/KID.

Weights: `checkpoints/xrv-densenet121-res224-all/` or LEGEND_XRV_PATH (a folder or a file). Accepted files: the
published `nih-pc-chex-mimic_ch-google-openi-kaggle-densenet121-d121-tw-lr001-rot45-tr15-sc15-seed0-best.pt`
(a whole pickled model: read by a restricted unpickler that rebuilds only torch's own classes, so the
torchxrayvision package is not needed and no other code from the file runs), a plain state dict (.pt/.pth) or a
.safetensors file with the same keys.
"""
from __future__ import annotations

import pickle
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

WEIGHTS_NAME = "densenet121-res224-all"
PUBLISHED_FILE = "nih-pc-chex-mimic_ch-google-openi-kaggle-densenet121-d121-tw-lr001-rot45-tr15-sc15-seed0-best.pt"
PUBLISHED_URL = f"https://github.com/mlmed/torchxrayvision/releases/download/v1/{PUBLISHED_FILE}"
INPUT_SIDE = 224
INPUT_RANGE = 1024.0  # inputs span [-1024, 1024]

# The 18 outputs of "densenet121-res224-all", in order, with their operating-point thresholds (models.py, 1.5.7).
PATHOLOGIES = ("Atelectasis", "Consolidation", "Infiltration", "Pneumothorax", "Edema", "Emphysema", "Fibrosis",
               "Effusion", "Pneumonia", "Pleural_Thickening", "Cardiomegaly", "Nodule", "Mass", "Hernia",
               "Lung Lesion", "Fracture", "Lung Opacity", "Enlarged Cardiomediastinum")
OP_THRESHOLDS = (0.07422872, 0.038290843, 0.09814756, 0.0098118475, 0.023601074, 0.0022490358, 0.010060724,
                 0.103246614, 0.056810737, 0.026791653, 0.050318155, 0.023985857, 0.01939503, 0.042889766,
                 0.053369623, 0.035975814, 0.20204692, 0.05015312)


@dataclass(frozen=True)
class DenseNetConfig:
    """DenseNet hyper-parameters; DENSENET121 is the published network, smaller ones are for tests."""

    growth_rate: int = 32
    block_config: tuple[int, ...] = (6, 12, 24, 16)
    num_init_features: int = 64
    bn_size: int = 4
    num_classes: int = len(PATHOLOGIES)

    @property
    def num_features(self) -> int:
        """Channels after the last dense block (1024 for DenseNet-121)."""
        channels = self.num_init_features
        for i, layers in enumerate(self.block_config):
            channels += layers * self.growth_rate
            if i != len(self.block_config) - 1:
                channels //= 2
        return channels


DENSENET121 = DenseNetConfig()


class _DenseLayer(nn.Module):
    """BN-ReLU-conv1×1 (bn_size·k) → BN-ReLU-conv3×3 (k); the k new channels are appended to the input."""

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, bn_size * growth_rate, kernel_size=1, bias=False)
        self.norm2 = nn.BatchNorm2d(bn_size * growth_rate)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(bn_size * growth_rate, growth_rate, kernel_size=3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new = self.conv1(self.relu1(self.norm1(x)))  # (B, bn_size·k, h, w)
        new = self.conv2(self.relu2(self.norm2(new)))  # (B, k, h, w)
        return torch.cat([x, new], dim=1)  # (B, C + k, h, w)


def _dense_block(layers: int, in_channels: int, config: DenseNetConfig) -> nn.Sequential:
    return nn.Sequential(OrderedDict(
        (f"denselayer{i + 1}", _DenseLayer(in_channels + i * config.growth_rate, config.growth_rate, config.bn_size))
        for i in range(layers)))


def _transition(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict([
        ("norm", nn.BatchNorm2d(in_channels)), ("relu", nn.ReLU(inplace=True)),
        ("conv", nn.Conv2d(in_channels, out_channels, kernel_size=1, bias=False)),
        ("pool", nn.AvgPool2d(kernel_size=2, stride=2))]))


class XRVDenseNet(nn.Module):
    """DenseNet with TorchXRayVision's module names (`features.*`, `classifier.*`) and one input channel."""

    def __init__(self, config: DenseNetConfig = DENSENET121):
        super().__init__()
        self.config = config
        stem = [("conv0", nn.Conv2d(1, config.num_init_features, kernel_size=7, stride=2, padding=3, bias=False)),
                ("norm0", nn.BatchNorm2d(config.num_init_features)), ("relu0", nn.ReLU(inplace=True)),
                ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1))]
        self.features = nn.Sequential(OrderedDict(stem))
        channels = config.num_init_features
        for i, layers in enumerate(config.block_config):
            self.features.add_module(f"denseblock{i + 1}", _dense_block(layers, channels, config))
            channels += layers * config.growth_rate
            if i != len(config.block_config) - 1:
                self.features.add_module(f"transition{i + 1}", _transition(channels, channels // 2))
                channels //= 2
        self.features.add_module("norm5", nn.BatchNorm2d(channels))
        self.classifier = nn.Linear(channels, config.num_classes)
        self.register_buffer("op_thresholds", torch.tensor(OP_THRESHOLDS[: config.num_classes]), persistent=False)
        self._init_like_torchxrayvision()

    def _init_like_torchxrayvision(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, 224, 224) in [-1024, 1024] → (B, 1024): ReLU + global average pool (TorchXRayVision features2)."""
        maps = F.relu(self.features(x))  # (B, 1024, 7, 7)
        return F.adaptive_avg_pool2d(maps, 1).flatten(1)  # (B, 1024)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(features)  # (B, 18)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.pooled_features(x))


def operating_point_scores(probabilities: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """TorchXRayVision's op_norm: p < t → p / (2t); else 1 − (1 − p) / (2(1 − t)); so p = t maps to 0.5."""
    t = thresholds.to(probabilities).expand_as(probabilities)  # (B, P)
    below = probabilities / (2 * t)
    above = 1.0 - (1.0 - probabilities) / (2 * (1.0 - t))
    return torch.where(probabilities < t, below, above)


def to_model_input(images: list[np.ndarray], side: int = INPUT_SIDE) -> torch.Tensor:
    """(H, W) display images in [0, 1] → (B, 1, side, side) in [-1024, 1024]: centre crop, scale, resize."""
    batch = []
    for image in images:
        image = np.asarray(image, dtype=np.float32)
        if image.ndim != 2:
            raise ValueError(f"expected a single-channel (H, W) image, got shape {image.shape}")
        low, high = float(image.min()), float(image.max())
        if low < 0.0 or high > 1.0 or not np.isfinite([low, high]).all():
            raise ValueError(f"display values must lie in [0, 1], got [{low:.4g}, {high:.4g}]")
        h, w = image.shape
        crop = min(h, w)
        top, left = h // 2 - crop // 2, w // 2 - crop // 2
        square = image[top: top + crop, left: left + crop]
        tensor = torch.from_numpy((2.0 * square - 1.0) * INPUT_RANGE)[None, None]  # (1, 1, crop, crop)
        if crop != side:
            tensor = F.interpolate(tensor, size=(side, side), mode="bilinear", antialias=True, align_corners=False)
        batch.append(tensor)
    return torch.cat(batch)  # (B, 1, side, side)


def random_densenet(config: DenseNetConfig = DENSENET121, seed: int = 0) -> XRVDenseNet:
    """The network with random weights from a fixed seed (tests and smoke runs; its numbers mean nothing).

    Its batch-norm statistics are then measured on a seeded batch of smooth noise images in the input range (noise
    on 4², 16² and 64² grids, upsampled: radiographs are smooth), so the activations stay near unit scale on films
    (with the initial mean 0 / variance 1 statistics the ±1024 inputs give features of order 10³, and KID's cubic
    kernel loses every digit to cancellation)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = XRVDenseNet(config)
        noise = torch.cat([F.interpolate((torch.rand(2, 1, grid, grid) * 2.0 - 1.0) * INPUT_RANGE,
                                         size=(INPUT_SIDE, INPUT_SIDE), mode="bilinear", align_corners=False)
                           for grid in (4, 16, 64)])  # (6, 1, 224, 224)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # cumulative average: one batch sets the statistics exactly
    model.train()
    with torch.no_grad():
        model.pooled_features(noise)
    return model.eval()


class WeightsMissingError(ValueError):
    """No weight file where the settings point; the message is one line saying where to put it."""


def weights_location(path: str | Path | None = None) -> Path:
    """An explicit path, else LEGEND_XRV_PATH, else <checkpoints>/xrv-densenet121-res224-all."""
    from ..core.checkpoints import default_location
    from ..core import settings

    if path is not None:
        return Path(path).expanduser()
    return settings.get("LEGEND_XRV_PATH") or default_location("xrv_densenet")


def find_weight_file(location: Path) -> Path:
    """The weight file at `location` (a file, or a folder holding the published file or one .safetensors/.pt/.pth)."""
    hint = (f"put TorchXRayVision's {WEIGHTS_NAME} weights ({PUBLISHED_FILE}, from {PUBLISHED_URL}) there or set "
            "LEGEND_XRV_PATH, or run with --random-feature-weights for a smoke run whose numbers mean nothing")
    if location.is_file():
        return location
    if not location.is_dir():
        raise WeightsMissingError(f"no TorchXRayVision weights at {location.name!r}: {hint}")
    if (location / PUBLISHED_FILE).is_file():
        return location / PUBLISHED_FILE
    candidates = sorted(p for p in location.iterdir() if p.suffix in (".safetensors", ".pt", ".pth") and p.is_file())
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise WeightsMissingError(f"the folder {location.name!r} holds no weight file: {hint}")
    raise ValueError(f"the folder {location.name!r} holds {len(candidates)} weight files "
                     f"({', '.join(p.name for p in candidates)}); keep one, or point LEGEND_XRV_PATH at it")


def load_densenet(path: str | Path | None = None) -> tuple[XRVDenseNet, Path]:
    """The published network from a local file (see the module docstring) in eval mode, and the file it came from."""
    file = find_weight_file(weights_location(path))
    state = read_state_dict(file)
    model = XRVDenseNet(DENSENET121)
    load_published_state(model, state, file.name)
    return model.eval(), file


def read_state_dict(file: Path) -> dict[str, torch.Tensor]:
    """Tensors by key from a .safetensors file, a saved state dict, or a whole pickled TorchXRayVision model."""
    if file.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(file))
    try:
        loaded = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        with warnings.catch_warnings():  # the stand-ins' "source code changed" notes are expected
            warnings.simplefilter("ignore")
            loaded = torch.load(file, map_location="cpu", weights_only=False, pickle_module=_RestrictedPickle)
    except (RuntimeError, EOFError, OSError) as exc:
        raise ValueError(f"cannot read the weight file {file.name!r}: {str(exc).splitlines()[0]}") from None
    if isinstance(loaded, nn.Module):
        return loaded.state_dict()
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise ValueError(f"the weight file {file.name!r} holds neither a model nor a state dict")
    return loaded


def load_published_state(model: XRVDenseNet, state: dict[str, torch.Tensor], source: str) -> None:
    """Copy a state dict in the published key layout into `model`; ValueError naming missing/unexpected keys."""
    state = {k.removeprefix("module."): v for k, v in state.items() if k.removeprefix("module.") != "op_threshs"}
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [k for k in expected if k in state and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or wrong:
        parts = [f"{len(keys)} {what} (first: {keys[0]})" for what, keys in
                 (("missing keys", missing), ("unexpected keys", unexpected), ("keys of another shape", wrong)) if keys]
        raise ValueError(f"{source!r} is not TorchXRayVision's DenseNet-121 ({WEIGHTS_NAME}): {'; '.join(parts)}")
    model.load_state_dict({k: state[k].to(expected[k].dtype) for k in expected})


# --- reading the published file (a whole model pickled by torch.save) without the torchxrayvision package ----------

_TORCH_HELPERS = {("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"),
                  ("torch._utils", "_rebuild_tensor"), ("torch._utils", "_rebuild_parameter"),
                  ("torch._utils", "_rebuild_parameter_with_state"), ("torch.nn.parameter", "Parameter"),
                  ("torch", "Size"), ("torch", "device"), ("builtins", "set"), ("__builtin__", "set"),
                  ("copyreg", "_reconstructor"), ("copy_reg", "_reconstructor"), ("builtins", "object"),
                  ("__builtin__", "object")}


class _StandIn(nn.Module):
    """Takes the place of a pickled class that is not torch's own (TorchXRayVision's DenseNet, _DenseLayer, …):
    it keeps the pickled submodules, parameters and buffers, so `state_dict()` reads them; it runs nothing."""

    def forward(self, *args, **kwargs):  # pragma: no cover - never called
        raise RuntimeError("a stand-in for a pickled class cannot run")


class _RestrictedUnpickler(pickle.Unpickler):
    """Rebuilds torch.nn layers, tensors and storages; every other class becomes `_StandIn`; no other callable."""

    def find_class(self, module: str, name: str):
        if (module, name) in _TORCH_HELPERS or (module == "torch" and name.endswith("Storage")):
            return super().find_class(module, name)
        if module.startswith("torch.nn.modules."):
            found = super().find_class(module, name)
            if isinstance(found, type) and issubclass(found, nn.Module):
                return found
            raise pickle.UnpicklingError(f"refusing {module}.{name} in a weight file")
        if module in ("torch", "builtins", "__builtin__", "os", "posix", "nt", "subprocess", "sys") \
                or module.startswith("torch."):
            raise pickle.UnpicklingError(f"refusing {module}.{name} in a weight file")
        return _StandIn


class _RestrictedPickle:
    """A pickle module for torch.load(pickle_module=...) whose Unpickler is `_RestrictedUnpickler`."""

    Unpickler = _RestrictedUnpickler
    UnpicklingError = pickle.UnpicklingError
    load = staticmethod(lambda file, **kw: _RestrictedUnpickler(file, **kw).load())
    __name__ = "legend_demo_restricted_pickle"
