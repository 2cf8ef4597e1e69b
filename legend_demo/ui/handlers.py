"""The UI's callbacks: plain Python in, plain values out; every failure becomes a one-line message.

The uploaded radiograph lives only in the session's gr.State (a LoadedImage: pixels plus non-identifying
technical facts); nothing of it is written anywhere unless the user downloads a result.

Points follow the text: the editor's value records the description its points were found for (`for_text`);
Generate refuses points found for another description (`points_stale`), so a report never pairs points with a
text they were not found for.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any

import gradio as gr
import numpy as np

from ..engines.base import GenerationCancelled
from ..errors import ImageInputError
from ..export import SYNTHETIC_LABEL
from ..grounding import check_frontal_chest, check_text, ground
from ..image_io import LoadedImage, load_image
from ..layer_spec import parse_layers
from ..overlay import heat_overlay
from .config import AppConfig
from .downloads import write_downloads
from .errors import friendly, user_message
from .examples import example_files
from .generation import CancelBoard, GenerateParams, GenerationBundle, run_generation
from .point_editor import editor_points, editor_value, film_props, film_region_outline, points_stale, with_overlay
from .point_labels import clinician_points
from .viewer import film_entry, film_payload, side_markers, viewer_value, window_presets
from .visuals import (
    attention_peak, difference_map, difference_span, film_view, for_display, gray_rgb, labelled,
    metrics_figure, metrics_table, shrink, std_map, with_colorbar,
)

CANCELS = CancelBoard()
log = logging.getLogger("legend_demo.ui")
NO_IMAGE = "No film yet: upload one or pick a synthetic example."
RESULT_COUNT = 12  # status, viewer, difference, GBCA-off difference, prior, model view, samples, attention, plot,
#                   table, report, files (app_ui.RESULT_OUTPUTS, in this order)
DIFFERENCE_UNIT = "follow-up minus prior, % of the film's display range (blue darker, red brighter)"
STD_UNIT = "per-pixel std across the samples, % of the display range"
ATTENTION_UNIT = "share of the image attention per token cell (one scale for every layer, GBCA on and off)"
PRIOR_UNIT = "Gaussian prior weight R (eq. 5.5), 0 to 1"


def points_json(value: Any) -> str:
    """The editor's points as JSON (original pixels): what Generate will use."""
    return json.dumps([p.to_dict() for p in editor_points(value)])


def image_summary(image: LoadedImage) -> str:
    width, height = image.original_size
    notes = f" · {'; '.join(image.notes)}" if image.notes else ""
    return f"Loaded {image.source_format.upper()} {width} × {height} px ({image.bit_depth}-bit){notes}. Kept in this session only."


def cleared_results() -> tuple:
    """Every result output emptied (a new film, a cleared upload): old results never sit beside a new film."""
    return ("", None, None, gr.Image(value=None, visible=False), None, None, gr.Gallery(value=None), None, None,
            None, None, None)


def editor_update(image: LoadedImage | None, value: dict | None) -> gr.HTML:
    """The editor with a new value and, with an image, the film (12-bit pixels, side markers, window presets)."""
    if image is None:
        return gr.HTML(value=None, film=None)
    return gr.HTML(value=value, film=film_props(image))


def make_upload_handler(config: AppConfig):
    def on_upload(upload, sigma_ratio: float, region_scale: float = 1.0):
        """A file dropped or picked → (upload box, state, editor, points JSON, summary, *cleared results).

        A file that cannot be used is removed from the box, with one line saying why (toast and summary)."""
        from .uploads import load_upload

        if upload is None:
            return (None, None, editor_update(None, None), "[]", NO_IMAGE, *cleared_results())
        try:
            image = load_upload(upload, config)
        except (ImageInputError, ValueError) as exc:
            message = user_message(exc)
            log.info("upload refused: %s", message)
            gr.Warning(message)
            return (None, None, editor_update(None, None), "[]", f"**{message}**", *cleared_results())
        value = editor_value(image.array, [], sigma_ratio, region_scale)
        return (gr.skip(), image, editor_update(image, value), "[]", image_summary(image), *cleared_results())

    return on_upload


def on_clear():
    """The upload box was cleared → no film, no points, no results."""
    return (None, editor_update(None, None), "[]", NO_IMAGE, *cleared_results())


@friendly
def on_example_select(evt: gr.SelectData, sigma_ratio: float, region_scale: float = 1.0):
    """Gallery click → (upload box, description, source text, state, editor with the example's stored points,
    points JSON, summary, *cleared results)."""
    path, example = example_files()[evt.index]
    image = load_image(path)
    points = example.lesion_points()
    value = editor_value(image.array, points, sigma_ratio, region_scale, found=points, for_text=example.text,
                         origin="example")
    summary = f"SYNTHETIC example — {example.name} (not patient data) · {len(points)} stored lesion point(s)."
    return (path, example.text, example.source_text, image, editor_update(image, value), points_json(value), summary,
            *cleared_results())


@friendly
def on_ground(image: LoadedImage | None, text: str, grounder: str, sigma_ratio: float, region_scale: float = 1.0):
    """Run the grounder → (editor value with points found for `text`, points JSON); fallbacks become warnings."""
    if image is None:
        raise gr.Error("Upload a radiograph or pick a synthetic example first.")
    if not (text or "").strip():
        raise gr.Error("Describe the progression first (e.g. 'interval increase of right lower lobe consolidation').")
    result = ground(image, text, grounder)
    for message in result.warnings:
        gr.Warning(message)
    points = clinician_points(result.points)
    value = editor_value(image.array, points, sigma_ratio, region_scale, found=points, for_text=text,
                         origin=f"grounder: {result.grounder}")
    return value, points_json(value)


@friendly
def on_points_edited(value: Any, sigma_ratio: float, region_scale: float = 1.0):
    """Browser moved/added/deleted/relabelled a point → (value with its overlay redrawn, points JSON).

    The browser never sends the overlay back, so an unchanged reply (the echo of this very update) is skipped."""
    if not isinstance(value, dict) or not value.get("width"):
        return gr.skip(), "[]"
    updated = with_overlay(value, sigma_ratio, region_scale)
    same = updated["overlay"] == value.get("overlay") and updated["points"] == value.get("points")
    return (gr.skip() if same else updated), points_json(updated)


@friendly
def on_sigma(value: Any, sigma_ratio: float, region_scale: float = 1.0):
    """Sigma or edit-region slider moved → editor value with the new prior overlay and region outline."""
    if not isinstance(value, dict) or not value.get("width"):
        return gr.skip()
    return with_overlay(value, sigma_ratio, region_scale)


def on_cancel(request: gr.Request):
    """Cancel → the status says so (a cancel is not an error); nothing running → nothing changes."""
    if CANCELS.cancel(_session(request)):
        return "Generation cancelled at your request; nothing new was made (an earlier result, if any, is kept)."
    return gr.skip()


def stale_message(value: dict, text: str) -> str:
    return (f"The lesion points were found for “{value.get('for_text')}”, not for the description now in the box. "
            "Press Find lesions for the new description, or press “keep these points for the new text” in the "
            "editor, then Generate.")


@friendly
def on_generate(
    image: LoadedImage | None, editor: Any, text: str, source_text: str, engine: str | None,
    sigma_ratio: float, use_trained: bool, bias_strength: float, steps: float, seed: float,
    num_samples: float, compare_off: bool, layers: str, output_mode: str, region_scale: float, keep_blend: bool,
    request: gr.Request, progress=gr.Progress(),
):
    """Generate → status, viewer, difference maps, prior, model view, samples, attention, plot, table, JSON, files.

    Refused (one message, nothing else changes) without a film, with points found for another description or with
    a bad setting; a cancel keeps the previous result and says so (not an error)."""
    if image is None:
        raise gr.Error("Upload a radiograph or pick a synthetic example first.")
    check_text(text or "")  # the one text limit, before any work
    if points_stale(editor, text):
        raise gr.Error(stale_message(editor, text), title="Points are for another description")
    for message in check_frontal_chest(image):  # LateralViewError (→ gr.Error) for a lateral view
        gr.Warning(message)
    params = GenerateParams(
        text=text or "", points=editor_points(editor), source_text=source_text or "",
        sigma_ratio=float(sigma_ratio), bias_strength=None if use_trained else float(bias_strength),
        steps=int(steps) or None, seed=int(seed), num_samples=int(num_samples), compare_off=bool(compare_off),
        capture_layers=parse_layers(layers), engine=engine or None,
        output_mode=output_mode, region_scale=float(region_scale), keep_blend=bool(keep_blend),
        points_note=points_note(editor, text),
    )
    if not params.points:
        gr.Warning("No lesion points: the Gaussian bias is off for this run (press Find lesions or click the film).")
    session = _session(request)
    cancel = CANCELS.start(session)
    started = time.perf_counter()
    try:
        progress(0.0, desc="loading the model")
        bundle = run_generation(image, params, lambda f, d: progress(f, desc=d), cancel)
    except GenerationCancelled:
        gr.Info("Generation cancelled; nothing new was made.")
        log.info("on_generate: cancelled by the user")
        return ("Generation cancelled at your request; nothing new was made.",) + (gr.skip(),) * (RESULT_COUNT - 1)
    finally:
        CANCELS.finish(session)
    files, report = write_downloads(bundle, params, image)
    return render_bundle(bundle, params, image, time.perf_counter() - started) + (report, files)


def points_note(editor: Any, text: str) -> dict[str, Any]:
    """How the points of a Generate were made, for the report: by whom and for which description."""
    value = editor if isinstance(editor, dict) else {}
    found_for = value.get("for_text")
    return {"count": len(editor_points(editor)), "by": value.get("origin") or "placed by hand",
            "found_for": found_for, "edited": value.get("points") != value.get("found") if found_for else None,
            "text": " ".join((text or "").split())}


def render_bundle(bundle: GenerationBundle, params: GenerateParams, image: LoadedImage, seconds: float) -> tuple:
    """The display outputs of one click (everything but the report JSON and the files)."""
    main = bundle.main
    before = main.prior_image
    off_layers = bundle.off.layers if bundle.off else []
    headers, rows = metrics_table(main.layers, off_layers)
    differences = difference_pictures(image, bundle)
    return (
        status_text(bundle, params, seconds),
        result_viewer(image, bundle),
        differences[0],
        gr.Image(value=differences[1], visible=True) if len(differences) > 1 else gr.Image(value=None, visible=False),
        with_colorbar(for_display(heat_overlay(before, main.prior_map, peak=1.0)), 0.0, 1.0, PRIOR_UNIT, "jet"),
        labelled(for_display(gray_rgb(main.followup)), [SYNTHETIC_LABEL, "model view: raw engine output"]),
        sample_gallery_update(bundle),
        attention_gallery(before, main.layers, off_layers),
        metrics_figure(main.layers, off_layers) if main.layers else None,
        gr.Dataframe(value=rows, headers=headers),
    )


def result_viewer(image: LoadedImage, bundle: GenerationBundle) -> dict[str, Any]:
    """The results viewer: prior and follow-up films (and GBCA off), 12-bit, synthetic ones labelled below."""
    main = bundle.main
    prior = film_payload(image.array)
    films = [film_entry("prior", "PRIOR — your film (not generated)", prior,
                        ["PRIOR: the uploaded film (not generated)", "as loaded; window/level changes only the view"],
                        synthetic=False),
             film_entry("on", f"SYNTHETIC follow-up · GBCA on · seed {bundle.seeds[0]}",
                        film_payload(main.film.display, image.array, prior["key"]), synthetic_lines(main), synthetic=True)]
    pairs = [("prior", "on", "Prior ↔ SYNTHETIC follow-up")]
    if bundle.off is not None:
        films.append(film_entry("off", f"SYNTHETIC follow-up · GBCA off · seed {bundle.seeds[0]}",
                                film_payload(bundle.off.film.display, image.array, prior["key"]),
                                [*synthetic_lines(bundle.off), "GBCA off (bias 0), same seed"], synthetic=True))
        pairs += [("on", "off", "GBCA on ↔ GBCA off"), ("prior", "off", "Prior ↔ GBCA off")]
    note = "Dashed: the edit region. Window/level, zoom and pan act on every film at once and change only the view."
    return viewer_value(films, pairs, markers=side_markers(image.dicom_info),
                        presets=window_presets(image.array, image.dicom_info),
                        region=film_region_outline(main.film.region_mask()), note=note)


def difference_pictures(image: LoadedImage, bundle: GenerationBundle) -> list[np.ndarray]:
    """follow-up − prior (and GBCA off − prior) on one shared symmetric scale, colour bar and label below."""
    prior = shrink(image.array)
    runs = [("GBCA on", bundle.main)] + ([("GBCA off", bundle.off)] if bundle.off is not None else [])
    pairs = [(prior, shrink(result.film.display)) for _, result in runs]
    span = difference_span(pairs)
    return [labelled(with_colorbar(difference_map(b, a, span), -span, span, DIFFERENCE_UNIT, percent=True),
                     [f"difference: SYNTHETIC follow-up ({name}) - prior"]) for (name, _), (b, a) in zip(runs, pairs)]


def synthetic_lines(result) -> list[str]:
    return [SYNTHETIC_LABEL, f"engine: {result.engine} | output: {result.film.mode}"]


def status_text(bundle: GenerationBundle, params: GenerateParams, seconds: float) -> str:
    main = bundle.main
    bias = "trained s(τ)" if params.bias_strength is None else f"{params.bias_strength:g}"
    seeds = ", ".join(str(s) for s in bundle.seeds)
    note = params.points_note or {}
    found = f" found for “{_short(note['found_for'])}”" if note.get("found_for") else ""
    return (
        f"**SYNTHETIC follow-up — research use only, not for diagnosis.** Engine **{main.engine}** · "
        f"seed {seeds} · σ ratio {params.sigma_ratio:g} · bias {bias} · {len(main.points)} point(s){found} · "
        f"{seconds:.1f} s · files: *Downloads* tab below"
    )


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sample_gallery(bundle: GenerationBundle) -> list[tuple[np.ndarray, str]]:
    """Each follow-up film, their mean and the per-pixel std map (K > 1); every picture labelled below its pixels.
    (GBCA off is in the viewer, beside GBCA on.)"""
    films = [shrink(r.film.display) for r in bundle.samples]  # display resolution: K full films would be heavy
    items = [(film_view(f, [SYNTHETIC_LABEL, f"seed {s}"]), f"SYNTHETIC · seed {s}") for s, f in zip(bundle.seeds, films)]
    if len(films) > 1:
        mean = np.mean(films, axis=0).astype(np.float32)
        items.append((film_view(mean, [SYNTHETIC_LABEL, f"mean of {len(films)}"]), f"SYNTHETIC · mean of {len(films)}"))
        peak = float(np.std(np.stack(films), axis=0).max())
        std = with_colorbar(for_display(std_map(films, peak)), 0.0, peak, STD_UNIT, "inferno", percent=True)
        items.append((labelled(std, [f"per-pixel std of {len(films)} SYNTHETIC samples"]),
                      "per-pixel std (bright = model unsure)"))
    return items


def sample_gallery_update(bundle: GenerationBundle) -> gr.Gallery:
    return gr.Gallery(value=sample_gallery(bundle))  # fixed columns and height: one sample is not stretched


def attention_gallery(image01: np.ndarray, on: list, off: list) -> list[tuple[np.ndarray, str]]:
    """Attention maps over the prior's model view, all on one [0, peak] scale with a colour bar."""
    peak = attention_peak(on, off)
    picture = lambda a: with_colorbar(for_display(heat_overlay(image01, a.heatmap, peak=peak)), 0.0, peak,  # noqa: E731
                                      ATTENTION_UNIT, "jet", percent=True)
    items = [(picture(a), _caption(a, "GBCA on")) for a in on]
    items += [(picture(a), _caption(a, "GBCA off")) for a in off]
    return items


def _caption(a, mode: str) -> str:
    iou = "" if a.attn_iou is None else f" · IoU {a.attn_iou:.3f}"
    return f"layer {a.layer} · {mode} · CBI {a.cbi:.3f} · EAR {a.ear:.3f}{iou}"


def _session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "anonymous"
