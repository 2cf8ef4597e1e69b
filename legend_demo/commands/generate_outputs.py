"""Write a GenerationResult to a folder: followup.png (SYNTHETIC), prior.png, attention maps, report.json."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..engines.base import GenerationResult
from ..export import save_synthetic_dicom, save_synthetic_png
from ..overlay import heat_overlay, to_uint8


def write_outputs(result: GenerationResult, out: Path, *, dicom: bool = False, warnings: list[str] | None = None) -> Path:
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    save_synthetic_png(result.followup, out / "followup.png", engine=result.engine, checkpoint=result.checkpoint)
    if dicom:
        save_synthetic_dicom(result.followup, out / "followup.dcm", engine=result.engine, checkpoint=result.checkpoint)
    Image.fromarray(to_uint8(result.prior_image), mode="L").save(out / "prior.png")
    Image.fromarray(heat_overlay(result.prior_image, result.prior_map)).save(out / "prior_overlay.png")
    for layer in result.layers:
        Image.fromarray(heat_overlay(result.prior_image, layer.heatmap)).save(out / f"attention_layer{layer.layer:02d}.png")
        np.save(out / f"attention_layer{layer.layer:02d}.npy", layer.heatmap)
    report = result.report()
    report["files"] = sorted(p.name for p in out.iterdir())
    report["warnings"] = list(warnings or [])
    (out / "report.json").write_text(json.dumps(report, indent=2, default=_jsonable))
    return out


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot serialise {type(value).__name__}")
