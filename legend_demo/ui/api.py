"""The public API endpoints `/ground` and `/generate` (gradio_client: `Client(url).predict(..., api_name=...)`)."""
from __future__ import annotations

from typing import Any

import gradio as gr

from ..grounding import check_frontal_chest, check_request, check_text, ground
from ..grounding.registry import DEFAULT_GROUNDER, GROUNDERS
from ..method.composite import OUTPUT_MODES
from ..method.edit_region import EditRegion
from ..engines.base import SIGMA_RATIO_RANGE, GenerationRequest
from ..core.points import as_points, points_json, check_inside, real_number, whole_number
from .config import AppConfig
from .downloads import bundle_report, write_downloads
from .errors import friendly
from .generation import MAX_SAMPLES, GenerateClick, NoPointsError, run_generation
from .notices import NO_POINTS_FOUND, clinical_all, engine_warnings, film_warnings, gather
from .point_labels import clinician_points
from ..method.layer_spec import parse_layers
from .uploads import load_upload, released_if_refused


def check_options(sigma_ratio: Any, bias_strength: Any, seed: Any, steps: Any, num_samples: Any,
                  compare_gbca_off: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The numeric /generate options, checked strictly: whole numbers stay whole, ranges are enforced, nothing is
    rounded or replaced by a default (steps=0 is the documented 'engine default', bias_strength < 0 'trained s(τ)').
    Returns (the request's values, the click's: num_samples and compare_off)."""
    seed, steps, num_samples = (whole_number(n, v) for n, v in (("seed", seed), ("steps", steps), ("num_samples", num_samples)))
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed={seed} is outside [0, 2^32)")
    if steps < 0:
        raise ValueError(f"steps={steps} must be 0 (the engine's default) or a positive whole number")
    if not 1 <= num_samples <= MAX_SAMPLES:
        raise ValueError(f"num_samples={num_samples} is outside [1, {MAX_SAMPLES}]")
    if not isinstance(compare_gbca_off, bool):
        raise ValueError(f"compare_gbca_off must be true or false, got {type(compare_gbca_off).__name__} {compare_gbca_off!r}")
    sigma, bias = real_number("sigma_ratio", sigma_ratio), real_number("bias_strength", bias_strength)
    lo, hi = SIGMA_RATIO_RANGE
    if not lo <= sigma <= hi:
        raise ValueError(f"sigma_ratio={sigma_ratio!r} is outside [{lo}, {hi}]")
    request = {"sigma_ratio": sigma, "bias_strength": None if bias < 0 else bias, "seed": seed, "steps": steps or None}
    return request, {"num_samples": num_samples, "compare_off": compare_gbca_off}


def check_output_options(output_mode: Any, region_scale: Any, keep_blend: Any) -> dict[str, Any]:
    """How the follow-up becomes a film: 'composite' or 'model-view', and the edit region (its size, keep-region
    blending) as one EditRegion."""
    if output_mode not in OUTPUT_MODES:
        raise ValueError(f"output_mode={output_mode!r}; choose one of {', '.join(OUTPUT_MODES)}")
    if not isinstance(keep_blend, bool):
        raise ValueError(f"keep_blend must be true or false, got {type(keep_blend).__name__} {keep_blend!r}")
    region = EditRegion(scale=real_number("region_scale", region_scale), keep_blend=keep_blend)
    region.check()
    return {"output_mode": output_mode, "edit_region": region}


def make_api(config: AppConfig):
    """The two endpoint functions, bound to this app's upload limits."""

    @friendly
    def api_ground(image, text: str, grounder: str = DEFAULT_GROUNDER) -> dict:
        """Image + progression text → {"points": [...], "image_size": [W, H], "grounder", "warnings", ...}: labels and
        warnings in the page's words ("consolidation, new (right lower lobe)"); `warning_details` the technical
        messages behind the warnings."""
        with released_if_refused(image):  # refused unread: this request is done with its upload (issue 26)
            check_request(text or "", grounder or DEFAULT_GROUNDER)  # text limit, grounder, weights: before reading
        loaded = load_upload(image, config)
        result = ground(loaded, text or "", grounder or DEFAULT_GROUNDER)
        answer = result.to_dict()
        answer["points"] = [p.to_dict() for p in clinician_points(result.points)]  # the page's wording
        answer["warnings"], answer["warning_details"] = gather(film_warnings(loaded), result.warnings)
        return answer

    @friendly
    def api_generate(
        image, text: str, points: Any = None, sigma_ratio: float = 0.10, bias_strength: float = -1.0,
        seed: float = 0, steps: float = 0, num_samples: float = 1, compare_gbca_off: bool = False,
        source_text: str = "", engine: str = "", layers: str = "", output_mode: str = "composite",
        region_scale: float = 1.0, keep_blend: bool = True,
    ):
        """Image + text (+ options) → (SYNTHETIC follow-up film PNG, report JSON, [film PNG, DICOM, model view PNG, …,
        report] files); every image is labelled SYNTHETIC in a band below its pixels."""
        with released_if_refused(image):  # refused unread: this request is done with its upload (issue 26)
            check_text(text or "")  # the one text limit, before the upload is read or anything is grounded
        loaded = load_upload(image, config)
        check_frontal_chest(loaded)  # a lateral view is refused (LateralViewError) before grounding or generating
        raw = points_json(points)
        point_warnings: list[str] = []
        if raw is None:
            grounded = ground(loaded, text or "", DEFAULT_GROUNDER)
            found, point_warnings = clinician_points(grounded.points), grounded.warnings
            note = {"count": len(found), "by": "grounder: rules", "found_for": " ".join((text or "").split())}
            if not found:  # nothing to change: refused before any model time (never the prior handed back)
                raise NoPointsError(f"{NO_POINTS_FOUND} ({'; '.join(clinical_all(point_warnings)) or 'no finding'})")
        else:
            found = as_points(raw)
            check_inside(found, loaded.original_size)
            note = {"count": len(found), "by": "the API caller", "found_for": None}
        options, per_click = check_options(sigma_ratio, bias_strength, seed, steps, num_samples, compare_gbca_off)
        click = GenerateClick(
            GenerationRequest(image=loaded, progression_text=text or "", source_text=source_text or "", points=found,
                              capture_layers=parse_layers(layers), **options,
                              **check_output_options(output_mode, region_scale, keep_blend)),
            engine=engine or config.engine or None,  # '' = the engine this app was started with
            points_note=note, **per_click,
        )
        bundle = run_generation(click)
        warnings, details = gather(film_warnings(loaded), point_warnings, engine_warnings(bundle))
        files, report = write_downloads(bundle, click, loaded, report=bundle_report(bundle, click, warnings, details))
        return files[0], report, files

    return api_ground, api_generate


def add_api_endpoints(config: AppConfig, default_engine: str | None) -> None:
    """Hidden components wired to `/ground` and `/generate` (call inside the Blocks context)."""
    api_ground, api_generate = make_api(config)
    with gr.Column(visible=False):
        image = gr.File(label="image (PNG/JPEG/TIFF/DICOM)")
        text = gr.Textbox(label="text (progression description)")
        grounder = gr.Textbox(value=DEFAULT_GROUNDER, label=f"grounder ({' or '.join(map(repr, GROUNDERS))})")
        points_out = gr.JSON(label="points JSON")
        ground_btn = gr.Button("ground")
        points = gr.JSON(value=None, label="points (None: ground with the rules)")
        sigma = gr.Number(value=0.10, label="sigma_ratio (0.02–0.30)")
        bias = gr.Number(value=-1.0, label="bias_strength (<0: trained s(τ); 0: GBCA off)")
        seed = gr.Number(value=0, label="seed (whole number ≥ 0)")  # no precision: 3.7 is refused, not rounded
        steps = gr.Number(value=0, label="steps (0: engine default)")
        samples = gr.Number(value=1, label=f"num_samples (1–{MAX_SAMPLES})")
        compare = gr.Checkbox(value=False, label="compare_gbca_off")
        source = gr.Textbox(value="", label="source_text")
        engine = gr.Textbox(value=default_engine or "", label="engine ('' = default)")
        layers = gr.Textbox(value="", label="layers ('' = vital layers)")
        output_mode = gr.Textbox(value="composite", label="output_mode ('composite' or 'model-view')")
        region_scale = gr.Number(value=1.0, label="region_scale (0.25–4 × σ)")
        keep_blend = gr.Checkbox(value=True, label="keep_blend")
        followup = gr.File(label="SYNTHETIC follow-up film (PNG, labelled below the film)")
        report = gr.JSON(label="report")
        files = gr.File(file_count="multiple", label="files")
        generate_btn = gr.Button("generate")
    ground_btn.click(api_ground, [image, text, grounder], points_out, api_name="ground",
                     concurrency_id="gpu", concurrency_limit=1)
    generate_btn.click(
        api_generate, [image, text, points, sigma, bias, seed, steps, samples, compare, source, engine, layers,
                       output_mode, region_scale, keep_blend],
        [followup, report, files], api_name="generate", concurrency_id="gpu", concurrency_limit=1,
    )
