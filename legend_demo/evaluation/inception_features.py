"""Inception-v3 pool features for the usual (ImageNet-feature) FID, where torchvision is importable.

torchvision does not load with this project's CPU torch, so this is an optional extra of GPU machines
(requirements-gpu.txt). Weights come from a local file (LEGEND_INCEPTION_PATH or <checkpoints>/inception-v3/:
torchvision's `inception_v3_google-0cc3c7bd.pth`); nothing is downloaded. These are torchvision's ImageNet weights,
not the TensorFlow FID graph of pytorch-fid / clean-fid, so the values are comparable only with each other;
the table names them "Inception-v3 pool". Input: grey replicated to RGB, 299² bilinear, ImageNet normalisation.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class InceptionFeatures:
    name: str
    embed: Callable[[list[np.ndarray]], np.ndarray]

    def features(self, images: list[np.ndarray]) -> np.ndarray:
        """(B, 2048) float32 pool features."""
        return self.embed(images)


def load_inception(path: str | Path | None = None, random_weights: bool = False) -> tuple[InceptionFeatures | None, str | None]:
    """(extractor, None), or (None, the one line saying why Inception FID is skipped)."""
    try:
        import torchvision
    except Exception as exc:  # ImportError, or "operator torchvision::nms does not exist" with a mismatched torch
        return None, (f"Inception FID skipped: torchvision cannot be imported here ({type(exc).__name__}: "
                      f"{str(exc).splitlines()[0][:100]}); the XRV-DenseNet121 FID is reported")
    import torch
    import torch.nn.functional as F

    from ..core import settings
    from ..core.checkpoints import default_location

    location = Path(path) if path else settings.get("LEGEND_INCEPTION_PATH") or default_location("inception")
    files = [location] if location.is_file() else sorted(location.glob("*.pth")) if location.is_dir() else []
    if not random_weights and len(files) != 1:
        return None, ("Inception FID skipped: put torchvision's inception_v3_google-0cc3c7bd.pth in "
                      "checkpoints/inception-v3/ (or set LEGEND_INCEPTION_PATH)")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=random_weights)
    if not random_weights:
        model.load_state_dict(torch.load(files[0], map_location="cpu", weights_only=True))
    model.fc = torch.nn.Identity()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model.eval().to(device)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)

    def embed(images: list[np.ndarray]) -> np.ndarray:
        batch = [F.interpolate(torch.from_numpy(np.asarray(im, dtype=np.float32))[None, None], size=(299, 299),
                               mode="bilinear", align_corners=False, antialias=True) for im in images]
        x = (torch.cat(batch).repeat(1, 3, 1, 1) - mean) / std  # (B, 3, 299, 299)
        with torch.no_grad():
            return model(x.to(device)).float().cpu().numpy()  # (B, 2048)

    kind = "RANDOM-weight Inception-v3" if random_weights else "Inception-v3 (torchvision ImageNet weights)"
    return InceptionFeatures(f"{kind} pool, 2048-d", embed), None
