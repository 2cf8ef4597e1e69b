"""Loading a full-size backbone (FLUX.1-dev, Emu3-Gen): the choices and checks both engines make, written once.

`plan_loading` picks the device, the quantization ("auto" = NF4 on CUDA, full precision on the CPU) and the dtype,
and refuses — before any weight is read — a quantization without CUDA or without bitsandbytes; `LoadPlan.check_free_vram`
refuses a GPU without room. `weights_record` says what a result says about the weights: a public label (never a
server path), a fingerprint per file or folder, and how they were loaded.
"""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

from ..core.checkpoints import fingerprint, public_name
from ..core.errors import EngineUnavailableError
from .cuda import require_free_vram

QUANTIZATIONS = ("nf4", "int8", None)


def check_quantization(kind: str | None) -> None:
    """ValueError for anything but nf4, int8 or None (full precision)."""
    if kind not in QUANTIZATIONS:
        raise ValueError(f"quantization={kind!r}; choose one of nf4, int8 or None")


def check_free_vram(needed_gib: dict[str | None, float], quantization: str | None, what: str) -> None:
    """EngineUnavailableError with the numbers when the GPU has less than `needed_gib[quantization]` GiB free."""
    require_free_vram(needed_gib[quantization], f"{what} ({quantization or 'bf16'})")


@dataclass(frozen=True)
class LoadPlan:
    """Where and how a backbone is loaded."""

    device: str
    quantization: str | None
    dtype: Any  # torch.dtype

    @property
    def on_cuda(self) -> bool:
        return self.device.startswith("cuda")

    def check_free_vram(self, needed_gib: dict[str | None, float], what: str) -> None:
        """On CUDA: refuse to start loading when the GPU lacks the memory the backbone needs (check_free_vram)."""
        if self.on_cuda:
            check_free_vram(needed_gib, self.quantization, what)

    def record(self, source: str, **extra: Any) -> dict[str, Any]:
        """The `load` block of provenance: public source name, quantization, device, dtype (+ the engine's extras)."""
        return {"source": public_name(source), "quantization": self.quantization, "device": self.device,
                "dtype": str(self.dtype).replace("torch.", ""), **extra}


def plan_loading(device: str | None, quantization: str | None, dtype=None) -> LoadPlan:
    """Device (CUDA when visible), quantization ("auto": NF4 on CUDA, None on the CPU) and dtype (bf16 on CUDA,
    float32 on the CPU); refuses a 4-/8-bit load without CUDA or without bitsandbytes."""
    import torch

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if quantization == "auto":
        quantization = "nf4" if device.startswith("cuda") else None
    check_quantization(quantization)
    if quantization is not None:
        if not device.startswith("cuda"):
            raise EngineUnavailableError(f"{quantization} loading needs a CUDA GPU (device={device})")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise EngineUnavailableError("4-/8-bit loading needs bitsandbytes: pip install -r requirements.txt")
    dtype = dtype or (torch.bfloat16 if device.startswith("cuda") else torch.float32)
    return LoadPlan(device, quantization, dtype)


def weights_record(sources: dict[str, str | None], backbone: str, lora: str | None,
                   gbca_weights: str | None) -> tuple[str, dict[str, Any]]:
    """(public label "backbone + LoRA … + GBCA …", {name: fingerprint or None}) of the weights a backbone uses."""
    prints = {name: (fp.to_dict() if fp else None) for name, fp in ((n, fingerprint(v)) for n, v in sources.items())}
    label = public_name(backbone) + (f" + LoRA {public_name(lora)}" if lora else "")
    label += f" + GBCA {public_name(gbca_weights)}" if gbca_weights else ""
    return label, prints


class PretrainedLoading:
    """`from_pretrained` of an engine on a full-size backbone (FLUX.1-dev, Emu3-Gen), written once: plan the load,
    refuse missing weights (`_check_sources`) and a GPU without room, let the engine load its backbone
    (`_load_backbone`), then record the weights (public label, fingerprints, load block) on the engine."""

    free_vram_gb: dict[str | None, float]  # GiB the backbone needs free, per quantization
    memory_name: str  # how the memory check names the engine
    weight_names: tuple[str, str, str]  # fingerprint keys of the backbone, the LoRA and the GBCA weights

    @classmethod
    def from_pretrained(cls, path: str, *, quantization: str | None = "auto", lora: str | None = None,
                        gbca_weights: str | None = None, device: str | None = None, dtype=None, **options):
        """Load the backbone at `path` (a local folder or a hub id) with an optional LoRA and GBCA weights;
        quantization "auto" = NF4 on CUDA, full precision on the CPU. EngineUnavailableError says why it cannot
        load (missing or unreadable weights, no CUDA for 4/8-bit, no bitsandbytes, too little free GPU memory, OOM)."""
        plan = plan_loading(device, quantization, dtype)
        cls._check_sources(lora, gbca_weights)
        plan.check_free_vram(cls.free_vram_gb, cls.memory_name)
        backbone, strength, extra = cls._load_backbone(path, plan, lora, gbca_weights, options)
        sources = dict(zip(cls.weight_names, (path, lora, gbca_weights)))
        label, prints = weights_record(sources, path, lora, gbca_weights)
        return cls(backbone, checkpoint=label, strength=strength, fingerprints=prints,
                   load_options=plan.record(path, **extra), **options)

    @classmethod
    def _check_sources(cls, lora: str | None, gbca_weights: str | None) -> None:
        """Refuse missing weights before anything is loaded (the engine's own rule; none by default)."""

    @classmethod
    def _load_backbone(cls, path: str, plan: LoadPlan, lora: str | None, gbca_weights: str | None,
                       options: dict[str, Any]) -> tuple[Any, Any, dict[str, Any]]:
        """(backbone for the engine's constructor, StrengthMLP or None, extra load facts); may set defaults in `options`."""
        raise NotImplementedError
