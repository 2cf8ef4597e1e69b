"""The UI's callbacks: plain Python in, plain values out; every failure becomes a gr.Error message.

The uploaded radiograph lives only in the session's gr.State (a LoadedImage: pixels plus non-identifying
technical facts); nothing of it is written anywhere unless the user downloads a result.
"""
from __future__ import annotations

import json
import time
from typing import Any

import gradio as gr
import numpy as np

from ..grounding import check_frontal_chest, check_text, ground
from ..image_io import LoadedImage
from .config import AppConfig
from .downloads import write_downloads
from .errors import friendly
from ..layer_spec import parse_layers
from .examples import example_files
from .generation import CancelBoard, GenerateParams, GenerationBundle, run_generation
from .point_editor import editor_points, editor_value, with_overlay
from ..export import SYNTHETIC_LABEL
from .visuals import (
    TABLE_HEADERS, difference_map, film_view, for_display, gray_rgb, heatmap_over, labelled, metrics_figure,
    metrics_rows, shrink, std_map,
)

CANCELS = CancelBoard()


def points_json(value: Any) -> str:
    """The editor's points as JSON (original pixels) — what Python received from the browser."""
    return json.dumps([p.to_dict() for p in editor_points(value)])


def image_summary(image: LoadedImage) -> str:
    width, height = image.original_size
    notes = f" · {'; '.join(image.notes)}" if image.notes else ""
    return f"Loaded {image.source_format.upper()} {width} × {height} px ({image.bit_depth}-bit){notes}. Kept in this session only."


def make_upload_handler(config: AppConfig):
    @friendly
    def on_upload(upload, sigma_ratio: float):
        """Validate and load an upload → (state, editor value, points JSON, summary)."""
        if upload is None:
            return None, None, "[]", "No image yet."
        from .uploads import load_upload

        image = load_upload(upload, config)
        value = editor_value(image.array, [], sigma_ratio)
        return image, value, "[]", image_summary(image)

    return on_upload


def on_example_select(evt: gr.SelectData):
    """Gallery click → (file for the upload box, its progression description)."""
    path, example = example_files()[evt.index]
    return path, example.text


@friendly
def on_ground(image: LoadedImage | None, text: str, grounder: str, sigma_ratio: float, region_scale: float = 1.0):
    """Run the grounder → (editor value with points, points JSON); its fallbacks become gr.Warning toasts."""
    if image is None:
        raise gr.Error("Upload a radiograph or pick a synthetic example first.")
    if not (text or "").strip():
        raise gr.Error("Describe the progression first (e.g. 'interval increase of right lower lobe consolidation').")
    result = ground(image, text, grounder)
    for message in result.warnings:
        gr.Warning(message)
    value = editor_value(image.array, result.points, sigma_ratio, region_scale)
    return value, points_json(value)


@friendly
def on_points_edited(value: Any, sigma_ratio: float, region_scale: float = 1.0):
    """Browser moved/added/deleted a point → (overlay refreshed when it changed, points JSON)."""
    if not isinstance(value, dict) or not value.get("image"):
        return gr.skip(), "[]"
    updated = with_overlay(value, sigma_ratio, region_scale)
    same = updated["overlay"] == value.get("overlay") and updated["points"] == value.get("points")
    return (gr.skip() if same else updated), points_json(updated)


@friendly
def on_sigma(value: Any, sigma_ratio: float, region_scale: float = 1.0):
    """Sigma or edit-region slider moved → editor value with the new prior overlay and region outline."""
    if not isinstance(value, dict) or not value.get("image"):
        return gr.skip()
    return with_overlay(value, sigma_ratio, region_scale)


def on_cancel(request: gr.Request):
    if CANCELS.cancel(_session(request)):
        gr.Info("Cancelling after the current step…")


@friendly
def on_generate(
    image: LoadedImage | None, editor: Any, text: str, source_text: str, engine: str | None,
    sigma_ratio: float, use_trained: bool, bias_strength: float, steps: float, seed: float,
    num_samples: float, compare_off: bool, layers: str, output_mode: str, region_scale: float, keep_blend: bool,
    request: gr.Request, progress=gr.Progress(),
):
    """Generate → status, slider, difference, prior overlay, samples, attention maps, plot, table, JSON, files."""
    if image is None:
        raise gr.Error("Upload a radiograph or pick a synthetic example first.")
    check_text(text or "")  # the one text limit, before any work
    for message in check_frontal_chest(image):  # LateralViewError (→ gr.Error) for a lateral view
        gr.Warning(message)
    params = GenerateParams(
        text=text or "", points=editor_points(editor), source_text=source_text or "",
        sigma_ratio=float(sigma_ratio), bias_strength=None if use_trained else float(bias_strength),
        steps=int(steps) or None, seed=int(seed), num_samples=int(num_samples), compare_off=bool(compare_off),
        capture_layers=parse_layers(layers), engine=engine or None,
        output_mode=output_mode, region_scale=float(region_scale), keep_blend=bool(keep_blend),
    )
    if not params.points:
        gr.Warning("No lesion points: the Gaussian bias is off for this run (press Find lesions or click the image).")
    session = _session(request)
    cancel = CANCELS.start(session)
    started = time.perf_counter()
    try:
        progress(0.0, desc="loading the model")
        bundle = run_generation(image, params, lambda f, d: progress(f, desc=d), cancel)
    finally:
        CANCELS.finish(session)
    files, report = write_downloads(bundle, params, image)
    return render_bundle(bundle, params, image, time.perf_counter() - started) + (report, files)


def render_bundle(bundle: GenerationBundle, params: GenerateParams, image: LoadedImage, seconds: float) -> tuple:
    """The display outputs of one click (everything but the report JSON and the files)."""
    main = bundle.main
    before = main.prior_image
    off_layers = bundle.off.layers if bundle.off else []
    return (
        status_text(bundle, params, seconds),
        film_pair(image.array, main.film.display, synthetic_lines(main)),
        labelled(difference_map(shrink(image.array), shrink(main.film.display)),
                 ["difference: SYNTHETIC follow-up - prior (red brighter, blue darker)"]),
        for_display(heatmap_over(before, main.prior_map)),
        labelled(for_display(gray_rgb(main.followup)), [SYNTHETIC_LABEL, "model view: raw engine output"]),
        sample_gallery(bundle),
        attention_gallery(before, main.layers, off_layers),
        metrics_figure(main.layers, off_layers) if main.layers else None,
        gr.Dataframe(value=metrics_rows(main.layers, off_layers), headers=TABLE_HEADERS),
    )


def synthetic_lines(result) -> list[str]:
    return [SYNTHETIC_LABEL, f"engine: {result.engine} | output: {result.film.mode}"]


def film_pair(prior01: np.ndarray, followup01: np.ndarray, lines: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Prior and follow-up films for the slider: same size, each with its band (equal heights) below."""
    synthetic = film_view(followup01, lines)
    original = film_view(prior01, ["PRIOR: the uploaded film (not generated)"])
    rows = max(synthetic.shape[0], original.shape[0])
    pad = lambda rgb: np.pad(rgb, ((0, rows - rgb.shape[0]), (0, 0), (0, 0)), constant_values=13)  # noqa: E731
    return pad(original), pad(synthetic)


def status_text(bundle: GenerationBundle, params: GenerateParams, seconds: float) -> str:
    main = bundle.main
    bias = "trained s(τ)" if params.bias_strength is None else f"{params.bias_strength:g}"
    seeds = ", ".join(str(s) for s in bundle.seeds)
    return (
        f"**SYNTHETIC follow-up — research use only, not for diagnosis.** Engine **{main.engine}** · "
        f"checkpoint `{main.checkpoint}` · seed(s) {seeds} · σ ratio {params.sigma_ratio:g} · bias {bias} · "
        f"{len(main.points)} point(s) · {seconds:.1f} s"
    )


def sample_gallery(bundle: GenerationBundle) -> list[tuple[np.ndarray, str]]:
    """Each follow-up film, their mean and the per-pixel std map (K > 1); every picture labelled below its pixels."""
    films = [shrink(r.film.display) for r in bundle.samples]  # display resolution: K full films would be heavy
    items = [(film_view(f, [SYNTHETIC_LABEL, f"seed {s}"]), f"SYNTHETIC · seed {s}") for s, f in zip(bundle.seeds, films)]
    if len(films) > 1:
        mean = np.mean(films, axis=0).astype(np.float32)
        items.append((film_view(mean, [SYNTHETIC_LABEL, f"mean of {len(films)}"]), f"SYNTHETIC · mean of {len(films)}"))
        items.append((labelled(std_map(films), [f"per-pixel std of {len(films)} SYNTHETIC samples"]),
                      "per-pixel std (bright = model unsure)"))
    if bundle.off is not None:
        off = film_view(bundle.off.film.display, [SYNTHETIC_LABEL, f"GBCA off, seed {bundle.seeds[0]}"])
        items.append((off, f"SYNTHETIC · GBCA off · seed {bundle.seeds[0]}"))
    return items


def attention_gallery(image01: np.ndarray, on: list, off: list) -> list[tuple[np.ndarray, str]]:
    items = [(for_display(heatmap_over(image01, a.heatmap)), _caption(a, "GBCA on")) for a in on]
    items += [(for_display(heatmap_over(image01, a.heatmap)), _caption(a, "GBCA off")) for a in off]
    return items


def _caption(a, mode: str) -> str:
    return f"layer {a.layer} · {mode} · CBI {a.cbi:.3f} · EAR {a.ear:.3f} · IoU {a.attn_iou:.3f}"


def _session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "anonymous"
