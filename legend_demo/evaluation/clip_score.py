"""CLIP-T (thesis §4.3.2): 100 · cos(image embedding, progression-text embedding), with an installed CLIP model.

The thesis uses BiomedCLIP (open_clip; its folder holds open_clip_config.json + open_clip_pytorch_model.bin).
open_clip imports torchvision, so BiomedCLIP is an optional extra of GPU machines (requirements-gpu.txt); its
text tokenizer (PubMedBERT) must be in the local Hugging Face cache. A transformers CLIP folder (config.json with a
CLIPModel) works too, without torchvision. Nothing is downloaded: without a model, CLIP-T is skipped with one line.
Folder: LEGEND_CLIP_PATH or <checkpoints>/biomedclip.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

NOT_INSTALLED = ("CLIP-T skipped: no CLIP model installed (put BiomedCLIP in checkpoints/biomedclip/ or set "
                 "LEGEND_CLIP_PATH; BiomedCLIP needs open_clip_torch and torchvision from requirements-gpu.txt)")
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class ClipScorer:
    """Embeds images and texts with one CLIP model; `scores` gives 100 · cos per (image, text) pair."""

    name: str
    embed_images: Callable[[list[np.ndarray]], "object"]  # → (B, D) tensor
    embed_texts: Callable[[list[str]], "object"]  # → (B, D) tensor

    def scores(self, images: list[np.ndarray], texts: list[str]) -> list[float]:
        import torch
        import torch.nn.functional as F

        if len(images) != len(texts):
            raise ValueError(f"{len(images)} images but {len(texts)} texts")
        with torch.no_grad():
            a = F.normalize(self.embed_images(images).float(), dim=-1)  # (B, D)
            b = F.normalize(self.embed_texts(texts).float(), dim=-1)  # (B, D)
        return [float(v) for v in 100.0 * (a * b).sum(-1).cpu()]


def clip_location(path: str | Path | None = None) -> Path:
    from ..core import settings
    from ..core.checkpoints import default_location

    return Path(path).expanduser() if path else settings.get("LEGEND_CLIP_PATH") or default_location("clip")


def load_clip(path: str | Path | None = None, random_weights: bool = False) -> tuple[ClipScorer | None, str | None]:
    """(scorer, None), or (None, the one line saying why CLIP-T is skipped)."""
    folder = clip_location(path)
    if not folder.is_dir():
        return None, NOT_INSTALLED
    if (folder / "open_clip_config.json").is_file():
        return _open_clip(folder)
    if (folder / "config.json").is_file():
        return _transformers_clip(folder, random_weights), None
    return None, (f"CLIP-T skipped: the folder {folder.name!r} holds neither open_clip_config.json (BiomedCLIP) "
                  "nor config.json (a transformers CLIP model)")


def _image_batch(images: list[np.ndarray], side: int, mean, std):
    """(H, W) display images in [0, 1] → (B, 3, side, side) normalised RGB (grey replicated), bicubic resize."""
    import torch
    import torch.nn.functional as F

    batch = [F.interpolate(torch.from_numpy(np.asarray(im, dtype=np.float32))[None, None], size=(side, side),
                           mode="bicubic", align_corners=False, antialias=True).clamp(0, 1) for im in images]
    x = torch.cat(batch).repeat(1, 3, 1, 1)  # (B, 3, side, side)
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def _transformers_clip(folder: Path, random_weights: bool) -> ClipScorer:
    import torch
    from transformers import AutoConfig, AutoTokenizer, CLIPModel

    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    if random_weights:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = CLIPModel(config)
    else:
        model = CLIPModel.from_pretrained(folder, local_files_only=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model.eval().to(device)
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    preprocess = {}
    if (folder / "preprocessor_config.json").is_file():
        preprocess = json.loads((folder / "preprocessor_config.json").read_text())
    mean, std = preprocess.get("image_mean", OPENAI_MEAN), preprocess.get("image_std", OPENAI_STD)
    side = config.vision_config.image_size
    limit = config.text_config.max_position_embeddings

    def images(batch):
        out = model.get_image_features(pixel_values=_image_batch(batch, side, mean, std).to(device))
        return getattr(out, "pooler_output", out)

    def texts(batch):
        tokens = tokenizer(batch, padding=True, truncation=True, max_length=limit, return_tensors="pt").to(device)
        out = model.get_text_features(**tokens)
        return getattr(out, "pooler_output", out)

    kind = "RANDOM-weight CLIP" if random_weights else "CLIP"
    return ClipScorer(f"{kind} (transformers, {folder.name})", images, texts)


def _open_clip(folder: Path) -> tuple[ClipScorer | None, str | None]:
    """BiomedCLIP from a local open_clip folder (GPU extra; not runnable where torchvision does not import)."""
    try:
        import open_clip
        from open_clip.factory import _MODEL_CONFIGS
    except Exception as exc:  # ImportError, or torchvision's RuntimeError at import
        return None, (f"CLIP-T skipped: open_clip cannot be imported here ({type(exc).__name__}: "
                      f"{str(exc).splitlines()[0][:120]}); install requirements-gpu.txt on a GPU machine")
    import torch

    config = json.loads((folder / "open_clip_config.json").read_text())
    weights = next((p for p in (folder / "open_clip_pytorch_model.bin", folder / "open_clip_model.safetensors")
                    if p.is_file()), None)
    if weights is None:
        return None, f"CLIP-T skipped: no open_clip_pytorch_model.bin in {folder.name!r}"
    name = f"legend-local-{folder.name}"
    _MODEL_CONFIGS[name] = config["model_cfg"]
    model, _, _ = open_clip.create_model_and_transforms(name, pretrained=str(weights))
    tokenizer = open_clip.get_tokenizer(name)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = model.eval().to(device)
    pre = config.get("preprocess_cfg", {})
    side = model.visual.image_size if isinstance(model.visual.image_size, int) else model.visual.image_size[0]
    mean, std = pre.get("mean", OPENAI_MEAN), pre.get("std", OPENAI_STD)
    context = config["model_cfg"].get("text_cfg", {}).get("context_length", 256)

    def images(batch):
        return model.encode_image(_image_batch(batch, side, mean, std).to(device))

    def texts(batch):
        return model.encode_text(tokenizer(batch, context_length=context).to(device))

    return ClipScorer(f"BiomedCLIP (open_clip, {folder.name})", images, texts), None
