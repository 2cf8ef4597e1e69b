"""Write a GenerationResult to a folder, every synthetic image labelled below its pixels:

followup.png (the film: the prior with the change composited in, at its own resolution and bit depth),
followup.dcm (with --dicom: Secondary Capture keeping the prior's columns, spacing, depth and window),
model_view.png (the engine's raw edit row at the model view), prior.png and prior_overlay.png (the model's view of
the input and its Gaussian prior), attention maps (PNG + .npy) and report.json.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..engines.base import GenerationResult
from ..core.export import save_film_dicom, save_film_png, save_synthetic_png
from ..core.overlay import heat_overlay, to_uint8


def write_outputs(result: GenerationResult, prior, out: Path, *, dicom: bool = False,
                  warnings: list[str] | None = None) -> Path:
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    label = {"engine": result.engine, "checkpoint": result.checkpoint}
    mode = f"output: {result.film.mode}"
    save_film_png(result.film, prior, out / "followup.png", extra_lines=[mode], **label)
    if dicom:
        save_film_dicom(result.film, prior, out / "followup.dcm", **label)
    save_synthetic_png(result.followup, out / "model_view.png", extra_lines=["model view (raw engine output)"], **label)
    Image.fromarray(to_uint8(result.prior_image), mode="L").save(out / "prior.png")
    Image.fromarray(heat_overlay(result.prior_image, result.prior_map)).save(out / "prior_overlay.png")
    for layer in result.layers:
        Image.fromarray(heat_overlay(result.prior_image, layer.heatmap)).save(out / f"attention_layer{layer.layer:02d}.png")
        np.save(out / f"attention_layer{layer.layer:02d}.npy", layer.heatmap)
    report = result.report()
    report["files"] = sorted(p.name for p in out.iterdir())
    report["warnings"] = list(warnings or [])
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return out
