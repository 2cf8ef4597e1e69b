"""The downloadable files of one result: SYNTHETIC-labelled PNG, DICOM Secondary Capture and report JSON."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any


from .. import __version__
from ..engines.base import DEFAULT_SOURCE_TEXT, plain_json
from ..core.export import save_film_dicom, save_film_png, save_synthetic_png
from ..core.image_io import LoadedImage
from .generation import GenerateClick, GenerationBundle
from .result_store import result_folder


def bundle_report(bundle: GenerationBundle, click: GenerateClick, warnings: list[str] | None = None,
                  details: list[str] | None = None) -> dict[str, Any]:
    """The main result's report plus every sample's seed and metrics and the GBCA-off comparison; `warnings` in a
    clinician's words (legend_demo.ui.notices), `details` the technical messages behind them."""
    report = bundle.main.report()
    report["warnings"] = list(warnings or [])
    report["warning_details"] = list(details or [])
    report["app"] = {"name": "LeGend demo", "version": __version__}
    request = click.request
    report["request"] = {
        "progression_text": request.progression_text,
        "source_text": None if request.source_text == DEFAULT_SOURCE_TEXT else request.source_text,  # None: not given
        "num_samples": click.num_samples, "compare_gbca_off": click.compare_off,
        "steps": request.steps, "capture_layers": list(request.capture_layers) if request.capture_layers else None,
    }
    if click.points_note:  # which text the points were found for (never another text than progression_text)
        report["request"]["lesion_points"] = dict(click.points_note)
    report["samples"] = [{"seed": seed, "layers": [a.metrics() for a in r.layers]} for seed, r in zip(bundle.seeds, bundle.samples)]
    if bundle.off is not None:
        report["gbca_off"] = {"seed": bundle.seeds[0], "bias_strength": 0.0, "layers": [a.metrics() for a in bundle.off.layers]}
    return plain_json(report)


def write_downloads(bundle: GenerationBundle, click: GenerateClick, prior: LoadedImage,
                    folder: Path | None = None, report: dict | None = None) -> tuple[list[str], dict]:
    """Write the follow-up film (PNG at the film's own resolution and depth, DICOM Secondary Capture), the raw model
    view, the other samples and the GBCA-off film (PNG), and the report JSON, every image labelled below its
    pixels, into a fresh folder of this session (purged when the session ends or after an hour, see result_store);
    return (paths, report). The first path is the main follow-up film PNG; the film's PNG and DICOM carry the same
    label lines, so one band of one height. `report`: the report to write (default: bundle_report without warnings)."""
    folder = Path(folder or result_folder())
    main = bundle.main
    label = {"engine": main.engine, "checkpoint": main.checkpoint}
    extra = [f"seed {bundle.seeds[0]} · sigma {click.request.sigma_ratio:g} · bias {bias_text(click.request.bias_strength)}"
             f" · output {main.film.mode}"]
    paths = [save_film_png(main.film, prior, folder / "synthetic_followup.png", extra_lines=extra, **label),
             save_film_dicom(main.film, prior, folder / "synthetic_followup.dcm", extra_lines=extra, **label),
             save_synthetic_png(main.followup, folder / "synthetic_model_view.png",
                                extra_lines=["model view (raw engine output)"], **label)]
    for seed, result in zip(bundle.seeds[1:], bundle.samples[1:]):
        paths.append(save_film_png(result.film, prior, folder / f"synthetic_followup_seed{seed}.png",
                                   extra_lines=[f"seed {seed}"], **label))
    if bundle.off is not None:
        paths.append(save_film_png(bundle.off.film, prior, folder / "synthetic_followup_gbca_off.png",
                                   extra_lines=[f"GBCA off · seed {bundle.seeds[0]}"], **label))
    report = report if report is not None else bundle_report(bundle, click)
    path = folder / "synthetic_followup_report.json"
    path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return [str(p) for p in paths] + [str(path)], report


def bias_text(value: float | None) -> str:
    """A request's bias strength in words: the trained s(τ), or the fixed value (0 = GBCA off)."""
    return "trained s(τ)" if value is None else f"{value:g}"

