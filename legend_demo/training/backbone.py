"""The model being trained, behind one small interface: the embedded model (full weights) or a FluxPipeline.

Both wrap a DualPathEditor (legend_demo/engines/dual_path.py), so training sees exactly what inference uses:
the same codec, text encoder, guidance embedding and transformer call.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..engines.dual_path import DualPathEditor

KINDS = ("embedded", "flux")


@dataclass
class Backbone:
    """editor: the components; kind: "embedded" (trained fully, saved with save_model) or "flux" (LoRA, pipe)."""

    editor: DualPathEditor
    kind: str
    config: Any = None  # EmbeddedConfig for the embedded model
    pipe: Any = None  # the FluxPipeline for kind "flux"
    _ids: dict = field(default_factory=dict, repr=False)

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
        codec, device, dtype = self.editor.codec, self.editor.device, self.editor.dtype
        if hasattr(codec, "encode_batch"):
            return codec.encode_batch(images01.float()).to(device=device, dtype=dtype)
        return torch.cat([codec.encode(image.numpy(), device, dtype) for image in images01.float()])

    @torch.no_grad()
    def encode_text(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """prompts → (embeds (B, T, J), pooled (B, P)) on the model's device and dtype (frozen encoder)."""
        embeds, pooled = self.editor.encode_text(list(prompts))
        device, dtype = self.editor.device, self.editor.dtype
        return embeds.to(device=device, dtype=dtype), pooled.to(device=device, dtype=dtype)

    def velocity(self, x: torch.Tensor, t: torch.Tensor, embeds: torch.Tensor, pooled: torch.Tensor) -> torch.Tensor:
        """v_θ(x_t, t, text): x (B, N_img, C), t (B,) flow times in [0, 1] → (B, N_img, C)."""
        rows = x.shape[0]
        guidance = None
        if self.editor.guidance_scale is not None:  # guidance-distilled FLUX.1-dev needs its guidance embedding
            guidance = torch.full((rows,), self.editor.guidance_scale, device=x.device, dtype=x.dtype)
        return self.transformer(
            hidden_states=x,
            encoder_hidden_states=embeds,
            pooled_projections=pooled,
            timestep=t.to(device=x.device, dtype=x.dtype),
            img_ids=self._image_ids(x.device, x.dtype),
            txt_ids=torch.zeros(embeds.shape[1], 3, device=x.device, dtype=x.dtype),
            guidance=guidance,
            return_dict=False,
        )[0]

    def _image_ids(self, device, dtype) -> torch.Tensor:
        from diffusers import FluxPipeline

        key = (str(device), dtype)
        if key not in self._ids:
            h, w = self.token_grid()
            self._ids[key] = FluxPipeline._prepare_latent_image_ids(1, h, w, device, dtype)  # (N_img, 3)
        return self._ids[key]


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
    """Any FluxPipeline (FLUX.1-dev folder or an in-memory pipe such as legend_demo.tiny's) with an optional LoRA."""
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
