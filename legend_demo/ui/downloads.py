"""The downloadable files of one result: SYNTHETIC-labelled PNG, DICOM Secondary Capture and report JSON."""
from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..export import save_synthetic_dicom, save_synthetic_png
from .generation import GenerationBundle, GenerateParams


def bundle_report(bundle: GenerationBundle, params: GenerateParams) -> dict[str, Any]:
    """The main result's report plus every sample's seed and metrics and the GBCA-off comparison."""
    report = bundle.main.report()
    report["app"] = {"name": "LeGend demo", "version": __version__}
    report["request"] = {
        "progression_text": params.text, "source_text": params.source_text or None,
        "num_samples": params.num_samples, "compare_gbca_off": params.compare_off,
        "steps": params.steps, "capture_layers": list(params.capture_layers) if params.capture_layers else None,
    }
    report["samples"] = [{"seed": seed, "layers": [a.metrics() for a in r.layers]} for seed, r in zip(bundle.seeds, bundle.samples)]
    if bundle.off is not None:
        report["gbca_off"] = {"seed": bundle.seeds[0], "bias_strength": 0.0, "layers": [a.metrics() for a in bundle.off.layers]}
    return json.loads(json.dumps(report, default=_plain))


def write_downloads(bundle: GenerationBundle, params: GenerateParams, folder: Path | None = None) -> tuple[list[str], dict]:
    """Write PNG, DICOM SC and report JSON into a fresh temporary folder; return (paths, report)."""
    folder = Path(folder or tempfile.mkdtemp(prefix="legend_result_"))
    main = bundle.main
    extra = [f"seed {bundle.seeds[0]} · sigma {params.sigma_ratio:g} · bias {_bias_text(params.bias_strength)}"]
    png = save_synthetic_png(main.followup, folder / "synthetic_followup.png", engine=main.engine,
                             checkpoint=main.checkpoint, extra_lines=extra)
    dcm = save_synthetic_dicom(main.followup, folder / "synthetic_followup.dcm", engine=main.engine,
                               checkpoint=main.checkpoint)
    report = bundle_report(bundle, params)
    path = folder / "synthetic_followup_report.json"
    path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return [str(png), str(dcm), str(path)], report


def _bias_text(value: float | None) -> str:
    return "trained s(τ)" if value is None else f"{value:g}"


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return str(value)
