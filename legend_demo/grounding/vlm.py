"""The VLM grounder: Qwen2.5-VL-7B-Instruct (4-bit NF4 on CUDA) places the points (thesis §4.2.2, §4.6).

Configuration (environment):
  LEGEND_QWEN_PATH            local folder, or a hub id already in the local Hugging Face cache; default
                              checkpoints/qwen2.5-vl-7b-instruct/ when it holds a config.json
  LEGEND_QWEN_TIMEOUT_S       generation time limit, seconds (default 60)
  LEGEND_QWEN_MAX_NEW_TOKENS  answer length bound (default 256)
  LEGEND_QWEN_MAX_PIXELS      processor max_pixels, i.e. the input size the model sees (default 1024·28·28)
  LEGEND_QWEN_4BIT            "0" loads bf16 instead of bitsandbytes NF4 on CUDA (default "1")

Qwen2.5-VL answers in pixels of the image as its processor resized it (sides multiples of patch 14 × merge 2 =
28, within min/max pixels): the size is read from the processor's own `image_grid_thw` and the points are mapped
back to the original pixels by that ratio, never through a 0–1000 scale. Nothing is downloaded at request time:
`require_vlm_weights` (called by `ground` before any work) fails at once with VlmUnavailableError when no
weights are configured or present locally, and loading always uses local files only. Any later failure (no
JSON, points off the image, timeout, CUDA out of memory, a broken checkpoint) falls back to the rules grounder
with a warning.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..core import settings
from ..core.checkpoints import checkpoint_path, default_location
from .image_input import GroundingImage
from .parse import parse_answer
from .postprocess import finish, rescale
from .prompt import chat_text, system_prompt, user_prompt
from .result import GroundingResult

HUB_ID = "Qwen/Qwen2.5-VL-7B-Instruct"
LABEL = "VLM grounder"


def availability() -> tuple[bool, str]:
    """Listed on the page only with its checkpoint installed and a CUDA GPU (4-bit needs one)."""
    path = Path(checkpoint_path("qwen") or default_location("qwen"))
    if not (path.is_file() or (path.is_dir() and any(path.iterdir()))):
        return False, "its weights (Qwen2.5-VL) are not installed on this server"
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if not has_cuda:
        return False, "it needs a CUDA GPU"
    return True, "Qwen2.5-VL-7B-Instruct (4-bit), falls back to the rules"


def require() -> None:
    """Refuse at once (no torch, no network) when no weights are installed: require_vlm_weights."""
    require_vlm_weights()


def ground_picture(picture: GroundingImage, text: str, film: Any = None) -> GroundingResult:
    """The VLM's points on `picture` (standard display), or the rules grounder's with a warning."""
    return ground_with_vlm(picture, text)


@dataclass(frozen=True)
class VlmSettings:
    source: str  # local folder or hub id
    timeout_s: float = 60.0
    max_new_tokens: int = 256
    max_pixels: int = 1024 * 28 * 28
    load_in_4bit: bool = True

    @classmethod
    def from_env(cls) -> "VlmSettings":
        """LEGEND_QWEN_* settings (legend_demo/core/settings.py); the weights through the one checkpoint resolver."""
        return cls(
            source=default_source(),
            timeout_s=settings.get("LEGEND_QWEN_TIMEOUT_S"),
            max_new_tokens=settings.get("LEGEND_QWEN_MAX_NEW_TOKENS"),
            max_pixels=settings.get("LEGEND_QWEN_MAX_PIXELS"),
            load_in_4bit=settings.get("LEGEND_QWEN_4BIT"),
        )


@dataclass(frozen=True)
class VlmAnswer:
    text: str
    seen_size: tuple[int, int]  # (W, H) of the processor-resized image the coordinates refer to


class PointModel(Protocol):
    def ask(self, image: Any, description: str) -> VlmAnswer: ...


class VlmTimeout(RuntimeError):
    """Generation hit its time limit before the answer was complete."""


class VlmUnavailableError(ValueError):
    """grounder='vlm' was asked for but no Qwen2.5-VL weights are configured or present on this machine."""


def default_source() -> str:
    """LEGEND_QWEN_PATH, else <checkpoints root>/qwen2.5-vl-7b-instruct when it holds weights, else the hub id
    (which must already be in the local Hugging Face cache: nothing downloads at request time)."""
    configured = settings.get("LEGEND_QWEN_PATH")
    if configured:
        return configured
    folder = default_location("qwen")
    return str(folder) if (folder / "config.json").is_file() else HUB_ID


def require_vlm_weights() -> None:
    """Raise VlmUnavailableError at once (no import of torch, no network) unless weights are available locally."""
    reason = vlm_unavailable_reason()
    if reason:
        raise VlmUnavailableError(f"the VLM grounder is not available: {reason}. Nothing is downloaded at request "
                                  "time; use grounder 'rules', or ask the administrator to install the weights.")


def vlm_unavailable_reason() -> str:
    """'' when Qwen2.5-VL weights are configured and on disk, else why not (no server paths in the message)."""
    configured = settings.get("LEGEND_QWEN_PATH")
    source = default_source()
    if _looks_local(source):
        if (Path(source).expanduser() / "config.json").is_file():
            return ""
        return ("LEGEND_QWEN_PATH does not point to a folder with Qwen2.5-VL weights (no config.json there)"
                if configured else "no Qwen2.5-VL weights are configured (LEGEND_QWEN_PATH is unset and "
                "checkpoints/qwen2.5-vl-7b-instruct/ is empty)")
    if _in_hub_cache(source):
        return ""
    if configured:
        return f"the hub model {source!r} is not in this machine's Hugging Face cache"
    return ("no Qwen2.5-VL weights are configured (LEGEND_QWEN_PATH is unset and "
            "checkpoints/qwen2.5-vl-7b-instruct/ is empty)")


def _in_hub_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # noqa: BLE001 — an invalid repo id is simply not cached
        return False
    return isinstance(found, str)


def ground_with_vlm(picture: GroundingImage, text: str, model: PointModel | None = None,
                    settings: VlmSettings | None = None) -> GroundingResult:
    """VLM points in the original pixels, or the rules grounder's with a warning saying why."""
    from .rules_grounder import ground_with_rules

    try:
        model = model or get_model(settings or VlmSettings.from_env())
        answer = model.ask(to_pil(picture.array), text)
        parsed = parse_answer(answer.text, answer.seen_size)
    except Exception as exc:  # noqa: BLE001 — every failure means: fall back, visibly
        fallback = ground_with_rules(picture, text)
        warning = f"VLM grounder failed ({_reason(exc)}); used the rules grounder instead"
        return GroundingResult(fallback.points, fallback.image_size, "rules", [warning] + fallback.warnings,
                               fallback.lung_fields)
    points = finish(rescale(parsed.points, answer.seen_size, picture.original_size), picture.original_size)
    notes = [f"VLM answer repaired: {', '.join(parsed.repairs)}"] if parsed.repairs else []
    return GroundingResult(points, picture.original_size, "vlm", notes,
                           {"source": "vlm", "method": "Qwen2.5-VL placed the points on the image itself"})


def to_pil(array: np.ndarray):
    """(H, W) float in [0, 1] → 8-bit RGB PIL image, the input Qwen2.5-VL expects."""
    from PIL import Image

    gray = (np.clip(array, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)  # (H, W)
    return Image.fromarray(gray).convert("RGB")


class QwenPointModel:
    """Tokenizer + slow (PIL) image processor + Qwen2.5-VL, asked with greedy decoding and a time limit."""

    def __init__(self, tokenizer: Any, image_processor: Any, model: Any, settings: VlmSettings):
        self.tokenizer, self.image_processor, self.model, self.settings = tokenizer, image_processor, model, settings

    @classmethod
    def load(cls, settings: VlmSettings) -> "QwenPointModel":
        source = settings.source
        local = _looks_local(source)
        if local and not (Path(source).expanduser() / "config.json").is_file():  # checked before importing torch
            raise FileNotFoundError(f"no Qwen2.5-VL weights in {source} (expected config.json there)")
        source = str(Path(source).expanduser()) if local else source

        import torch
        from transformers import AutoTokenizer, Qwen2_5_VLForConditionalGeneration

        kwargs: dict[str, Any] = {"local_files_only": True}  # never download at request time
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        image_processor = _image_processor_class().from_pretrained(source, max_pixels=settings.max_pixels, **kwargs)
        if torch.cuda.is_available():
            kwargs.update(dtype=torch.bfloat16, device_map={"": 0})
            if settings.load_in_4bit:
                from transformers import BitsAndBytesConfig

                kwargs["quantization_config"] = BitsAndBytesConfig(
                    load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
        else:
            kwargs["dtype"] = torch.float32
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(source, **kwargs).eval()
        return cls(tokenizer, image_processor, model, settings)

    def ask(self, image: Any, description: str) -> VlmAnswer:
        import torch

        features = self.image_processor(images=[image], return_tensors="pt")
        grid_t, grid_h, grid_w = (int(v) for v in features["image_grid_thw"][0])
        patch, merge = int(self.image_processor.patch_size), int(self.image_processor.merge_size)
        seen_size = (grid_w * patch, grid_h * patch)  # the processor's own smart_resize result
        prompt = chat_text(system_prompt(*seen_size), user_prompt(description), grid_t * grid_h * grid_w // merge ** 2)
        inputs = self.tokenizer(prompt, return_tensors="pt")
        device = self.model.device
        started = time.monotonic()
        try:
            with torch.inference_mode():
                output = self.model.generate(
                    input_ids=inputs["input_ids"].to(device),
                    attention_mask=inputs["attention_mask"].to(device),
                    pixel_values=features["pixel_values"].to(device, self.model.dtype),
                    image_grid_thw=features["image_grid_thw"].to(device),
                    do_sample=False,
                    max_new_tokens=self.settings.max_new_tokens,
                    max_time=self.settings.timeout_s,
                )
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            raise
        if time.monotonic() - started >= self.settings.timeout_s:
            raise VlmTimeout(f"no complete answer within {self.settings.timeout_s:g} s")
        new_tokens = output[0, inputs["input_ids"].shape[1]:]
        return VlmAnswer(self.tokenizer.decode(new_tokens, skip_special_tokens=True), seen_size)


_models: dict[VlmSettings, QwenPointModel] = {}
_failures: dict[VlmSettings, str] = {}
_lock = threading.Lock()


def get_model(settings: VlmSettings) -> QwenPointModel:
    """Load once per settings (lazy singleton); a failed load is remembered so later calls fall back at once."""
    with _lock:
        if settings in _failures:
            raise RuntimeError(_failures[settings])
        if settings not in _models:
            try:
                _models[settings] = QwenPointModel.load(settings)
            except Exception as exc:  # noqa: BLE001
                _failures[settings] = f"could not load {settings.source}: {_reason(exc)}"
                raise RuntimeError(_failures[settings]) from exc
        return _models[settings]


def forget_models() -> None:
    """Drop loaded models and remembered failures (tests; freeing GPU memory)."""
    with _lock:
        _models.clear()
        _failures.clear()


def _looks_local(source: str) -> bool:
    """A folder path rather than a hub id ("org/name"): absolute, ~, ./, more than one slash, or existing."""
    return (Path(source).expanduser().exists() or source.startswith(("/", "~", ".", "\\"))
            or source.count("/") > 1 or ":" in source[:3])


def _image_processor_class():
    """The slow, PIL-only Qwen2-VL image processor (transformers 5 name first, then the 4.x name)."""
    try:
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        return Qwen2VLImageProcessorPil
    except ImportError:
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor

        return Qwen2VLImageProcessor


def _reason(exc: BaseException) -> str:
    if type(exc).__name__ == "OutOfMemoryError":
        return "out of GPU memory"
    message = " ".join(str(exc).split()) or type(exc).__name__
    return message if len(message) <= 200 else message[:200] + "…"
