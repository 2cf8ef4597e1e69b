"""The model being trained, behind one small interface: the embedded model (full weights) or a FluxPipeline.

Both wrap a DualPathEditor (legend_demo/method/dual_path.py), so training sees exactly what inference uses:
the same codec, text encoder, guidance embedding and transformer call.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..method.dual_path import DualPathEditor

@dataclass
class Backbone:
    """editor: the components; kind: "embedded" (trained fully, saved with save_model) or "flux" (LoRA, pipe)."""

    editor: DualPathEditor
    kind: str
    config: Any = None  # EmbeddedConfig for the embedded model
    pipe: Any = None  # the FluxPipeline for kind "flux"

    @property
    def transformer(self):
        return self.editor.transformer

    @property
    def side(self) -> int:
        return self.editor.model_side

    @property
    def num_layers(self) -> int:
        return self.editor.num_layers

    def token_grid(self) -> tuple[int, int]:
        return self.editor.codec.token_grid(self.side)

    @torch.no_grad()
    def encode_images(self, images01: torch.Tensor) -> torch.Tensor:
        """(B, side, side) in [0, 1] → packed model-space latents (B, N_img, C) on the model's device and dtype."""
        return self.editor.codec.encode(images01.float(), self.editor.device, self.editor.dtype)

    @torch.no_grad()
    def encode_text(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """prompts → (embeds (B, T, J), pooled (B, P)) on the model's device and dtype (frozen encoder)."""
        embeds, pooled = self.editor.encode_text(list(prompts))
        device, dtype = self.editor.device, self.editor.dtype
        return embeds.to(device=device, dtype=dtype), pooled.to(device=device, dtype=dtype)

    def velocity(self, x: torch.Tensor, t: torch.Tensor, embeds: torch.Tensor, pooled: torch.Tensor,
                 reference: torch.Tensor | None = None) -> torch.Tensor:
        """v_θ(x_t, t, text[, prior tokens]) through the editor's own call: x (B, N_img, C), t (B,) → (B, N_img, C)."""
        return self.editor.velocity(x, t, embeds, pooled, reference)


def embedded_backbone(init: str | Path | None = None, config=None, seed: int = 0, text_encoder=None) -> Backbone:
    """The embedded model: from a saved folder (`init`) or new random weights for `config` (default config)."""
    from ..embedded.model import EmbeddedConfig, MiniLMTextEncoder, build_editor, load_model, new_transformer

    strength = None
    if init is not None:
        _require_model_folder(init)
        transformer, config, strength = load_model(init)
    else:
        config = config or EmbeddedConfig()
        transformer = new_transformer(config, seed)
    text_encoder = text_encoder or MiniLMTextEncoder(max_tokens=config.text_tokens)
    editor = build_editor(transformer, text_encoder, config, strength)
    return Backbone(editor=editor, kind="embedded", config=config)


def flux_backbone(pipe_or_path, side: int = 256, lora: str | Path | None = None, device: str | None = None) -> Backbone:
    """Any FluxPipeline (FLUX.1-dev folder or an in-memory pipe such as legend_demo.core.tiny's) with an optional LoRA."""
    from ..engines.flux import LeGendDiffusionEngine

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    pipe = _load_pipe(pipe_or_path, device) if isinstance(pipe_or_path, (str, Path)) else pipe_or_path
    if lora is not None:
        if not Path(lora).exists():
            raise FileNotFoundError(f"stage-1 LoRA not found: {lora}")
        pipe.load_lora_weights(str(lora))
    pipe.to(device)
    engine = LeGendDiffusionEngine(pipe, checkpoint=str(pipe_or_path), model_side=side)
    engine.editor.codec.token_grid(side)  # raises for a side the VAE and packing cannot tile
    return Backbone(editor=engine.editor, kind="flux", pipe=pipe)


def _load_pipe(path: str | Path, device: str):
    from diffusers import FluxPipeline

    if not Path(path).is_dir():
        raise FileNotFoundError(f"FLUX checkpoint folder not found: {path}")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    return FluxPipeline.from_pretrained(str(path), dtype=dtype)


def _require_model_folder(folder: str | Path) -> None:
    folder = Path(folder)
    if not (folder / "config.json").is_file() or not (folder / "transformer").is_dir():
        raise FileNotFoundError(f"{folder} is not an embedded model folder (needs config.json and transformer/)")
