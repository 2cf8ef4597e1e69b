"""The UI's callbacks: plain Python in, plain values out; every failure becomes a one-line message.

The uploaded radiograph lives only in the session's gr.State (a LoadedImage: pixels plus non-identifying
technical facts); nothing of it is written anywhere unless the user downloads a result.

Points follow the text: the editor's value records the description its points were found for (`for_text`) and the
grounder's warnings (`warnings`); Generate refuses points found for another description (`points_stale`), so a
report never pairs points with a text they were not found for.

Every click does work or says why not: Generate without points finds them first (and shows them), or refuses at
once when there is nothing to place; a refusal is a line in the status, never model time spent on the unchanged
film. Warnings stay beside the points (the summary under the editor) and in the result's status, in words for a
clinician (notices.py). A Generate shows the follow-up first; its tabs are made when opened (result_tabs.py).
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any

import gradio as gr

from ..method.edit_region import EditRegion
from ..engines.base import GenerationRequest
from ..core.errors import GenerationCancelled, ImageInputError
from ..grounding import check_frontal_chest, check_text, ground
from ..grounding.registry import DEFAULT_GROUNDER
from ..core.image_io import LoadedImage, load_image
from ..method.layer_spec import parse_layers
from ..core.points import as_points
from .config import AppConfig
from .errors import friendly, user_message
from .examples import example_files
from .generation import CancelBoard, GenerateClick, run_generation
from .notices import (
    NO_POINTS_FOUND, clinical_all, editor_warnings, engine_warnings, film_warnings, gather, page_warnings,
)
from .point_editor import editor_points, editor_value, points_stale, with_overlay
from .point_labels import clinician_points, label_from_text
from .result_tabs import (
    TAB_OUTPUTS, ShownResult, editor_film, empty_tabs, result_viewer, status_text, tab_outputs,
)

CANCELS = CancelBoard()
log = logging.getLogger("legend_demo.ui")
NO_IMAGE = "No film yet: upload one or pick a synthetic example."
RESULT_COUNT = 3 + sum(TAB_OUTPUTS.values())  # status, viewer, the result kept for the tabs, then the tabs' outputs
ALL_REMOVED = ("you removed every lesion point, so the follow-up would be your film unchanged: click the film to "
               "place a point, or press Find lesions")


def points_json(value: Any) -> str:
    """The editor's points as JSON (original pixels): what Generate will use."""
    return json.dumps([p.to_dict() for p in editor_points(value)])


def image_summary(image: LoadedImage) -> str:
    width, height = image.original_size
    notes = f" · {'; '.join(image.notes)}" if image.notes else ""
    return f"Loaded {image.source_format.upper()} {width} × {height} px ({image.bit_depth}-bit){notes}. Kept in this session only."


def noted(value: dict, image: LoadedImage | None) -> dict:
    """The editor value with `notices`: every warning about the film and its points in clinician words, shown beside
    the points (the editor's side panel) until the film or the points change."""
    return {**value, "notices": page_warnings(image, value)}


def summary_text(head: str, image: LoadedImage | None, value: Any) -> str:
    """The line under the editor: what film is loaded, and how many warnings stand beside the points."""
    count = len(value.get("notices") or []) if isinstance(value, dict) else 0
    return head + (f" · ⚠ {count} warning{'s' if count > 1 else ''} beside the points." if count else "")


def cleared_results() -> tuple:
    """Every result output emptied (a new film, a cleared upload): old results never sit beside a new film."""
    return ("", None, None, *empty_tabs())


def editor_update(image: LoadedImage | None, value: dict | None) -> gr.HTML:
    """The editor with a new value and, with an image, the film (12-bit pixels, side markers, window presets)."""
    if image is None:
        return gr.HTML(value=None, film=None)
    return gr.HTML(value=value, film=editor_film(image))


def make_upload_handler(config: AppConfig):
    def on_upload(upload, sigma_ratio: float, region_scale: float = 1.0):
        """A file dropped or picked → (upload box, state, editor, points JSON, summary, *cleared results).

        A file that cannot be used — unreadable, or a lateral view — is removed from the box, with one line saying
        why (toast and summary), as soon as it arrives."""
        from .uploads import load_upload

        if upload is None:
            return (None, None, editor_update(None, None), "[]", NO_IMAGE, *cleared_results())
        try:
            image = load_upload(upload, config)
            check_frontal_chest(image)  # a lateral view is refused when it arrives, not at Find or Generate
        except (ImageInputError, ValueError) as exc:
            message = user_message(exc)
            log.info("upload refused: %s", message)
            gr.Warning(message)
            return (None, None, editor_update(None, None), "[]", f"**{message}**", *cleared_results())
        value = noted(editor_value(image.array, [], sigma_ratio, slider_region(region_scale)), image)
        return (gr.skip(), image, editor_update(image, value), "[]", summary_text(image_summary(image), image, value),
                *cleared_results())

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
    value = noted(editor_value(image.array, points, sigma_ratio, slider_region(region_scale), found=points,
                               for_text=example.text, origin="example"), image)
    summary = f"SYNTHETIC example — {example.name} (not patient data) · {len(points)} stored lesion point(s)."
    return (path, example.text, example.source_text, image, editor_update(image, value), points_json(value),
            summary_text(summary, image, value), *cleared_results())


def slider_region(scale: float) -> EditRegion:
    """The edit region the page's size slider shows (its outline over the film); Generate adds keep-region blending."""
    return EditRegion(scale=float(scale))


def found_points(image: LoadedImage, text: str, grounder: str, sigma_ratio: float, region: EditRegion) -> dict:
    """The editor value for the points the grounder finds for `text`, with its warnings kept beside them."""
    result = ground(image, text, grounder)
    points = clinician_points(result.points)
    value = editor_value(image.array, points, sigma_ratio, region, found=points, for_text=text,
                         origin=f"grounder: {result.grounder}")
    return noted({**value, "warnings": list(result.warnings)}, image)


def on_ground(image: LoadedImage | None, text: str, grounder: str, sigma_ratio: float, region_scale: float = 1.0):
    """Run the grounder → (editor value with points found for `text`, points JSON, summary with its warnings).

    A refusal (no film, no text, a text over the limit) is a line in the summary and a toast, not an error badge
    that would stay on the editor after the cause is fixed."""
    try:
        if image is None:
            raise Refusal("upload a radiograph or pick a synthetic example first")
        if not (text or "").strip():
            raise Refusal("describe the progression first (e.g. “interval increase of right lower lobe "
                          "consolidation”)")
        value = found_points(image, text, grounder, sigma_ratio, slider_region(region_scale))
    except Exception as exc:  # noqa: BLE001 - said beside the film, never a traceback
        message = str(exc) if isinstance(exc, Refusal) else user_message(exc)
        (log.info if isinstance(exc, (Refusal, ValueError)) else log.exception)("on_ground refused: %s", message)
        gr.Warning(message)
        head = image_summary(image) + " " if image is not None else ""
        return gr.skip(), gr.skip(), f"{head}**Find lesions: {message}**"
    return value, points_json(value), summary_text(image_summary(image), image, value)


@friendly
def on_points_edited(value: Any, sigma_ratio: float, region_scale: float = 1.0, image: LoadedImage | None = None,
                     text: str = ""):
    """Browser moved/added/deleted/relabelled a point → (value with its overlay redrawn, points JSON, summary).

    A point added by hand takes its finding from the description (point_labels.label_from_text). The browser never
    sends the overlay back, so an unchanged reply (the echo of this very update) is skipped."""
    if not isinstance(value, dict) or not value.get("width"):
        return gr.skip(), "[]", gr.skip()
    value = with_hand_labels(value, image, text)
    updated = noted(with_overlay(value, sigma_ratio, slider_region(region_scale)), image)
    same = all(updated[k] == value.get(k) for k in ("overlay", "points", "notices"))
    summary = summary_text(image_summary(image), image, updated) if image is not None else gr.skip()
    return (gr.skip() if same else updated), points_json(updated), summary


def with_hand_labels(value: dict, image: LoadedImage | None, text: str) -> dict:
    """Points the browser marked `ask` (just placed by hand) labelled from the description's mentions."""
    asked = [i for i, p in enumerate(value.get("points") or []) if isinstance(p, dict) and p.get("ask")]
    if not asked:
        return value
    mentions = []
    if image is not None and (text or "").strip():
        try:
            mentions = clinician_points(ground(image, text, DEFAULT_GROUNDER).points)
        except ValueError:  # a text over the limit: the point asks for its finding
            mentions = []
    points = [dict(p) for p in value["points"]]
    for i in asked:
        others = as_points([p for k, p in enumerate(points) if k != i])
        labelled = label_from_text(as_points([points[i]])[0], mentions, others)
        points[i] = {"x": points[i]["x"], "y": points[i]["y"], "confidence": labelled.confidence,
                     "label": labelled.label}
    return {**value, "points": points}


@friendly
def on_sigma(value: Any, sigma_ratio: float, region_scale: float = 1.0):
    """Sigma or edit-region slider moved → editor value with the new prior overlay and region outline."""
    if not isinstance(value, dict) or not value.get("width"):
        return gr.skip()
    return with_overlay(value, sigma_ratio, slider_region(region_scale))


def on_cancel(request: gr.Request):
    """Cancel → the status says so (a cancel is not an error); nothing running → nothing changes."""
    if CANCELS.cancel(_session(request)):
        return "Generation cancelled at your request; nothing new was made (an earlier result, if any, is kept)."
    return gr.skip()


def stale_message(value: dict, text: str) -> str:
    return (f"The lesion points were found for “{value.get('for_text')}”, not for the description now in the box. "
            "Press Find lesions for the new description, or press “keep these points for the new text” in the "
            "editor, then Generate.")


class Refusal(Exception):
    """Generate cannot do useful work: said in the status line at once (no model time, no error badge)."""


def refused(message: str, shown: Any = None) -> tuple:
    """Generate's outputs for a refusal: the status says why; everything else stays as it is."""
    earlier = " The result below is from the previous Generate." if shown is not None else ""
    gr.Warning(message)
    status = f"**Not generated:** {message}{earlier}"
    return (status,) + (gr.skip(),) * (RESULT_COUNT - 1) + (gr.skip(),) * 3


def on_generate(
    image: LoadedImage | None, editor: Any, text: str, source_text: str, engine: str | None, grounder: str,
    shown: ShownResult | None, sigma_ratio: float, use_trained: bool, bias_strength: float, steps: float, seed: float,
    num_samples: float, compare_off: bool, layers: str, output_mode: str, region_scale: float, keep_blend: bool,
    request: gr.Request, progress=gr.Progress(),
):
    """Generate → (status, viewer, the result kept for the tabs, *emptied tabs, editor, points JSON, summary).

    Refused at once (a line in the status, nothing else changes) without a film, with points found for another
    description, with a bad setting, or with no points to place; without points it first finds them for the text
    and shows them. A cancel keeps the previous result and says so (not an error). The tabs are filled when opened."""
    try:
        return _generate(image, editor, text, source_text, engine, grounder, sigma_ratio, use_trained,
                         bias_strength, steps, seed, num_samples, compare_off, layers, output_mode, region_scale,
                         keep_blend, request, progress)
    except Refusal as exc:
        log.info("on_generate refused: %s", exc)
        return refused(str(exc), shown)
    except GenerationCancelled:
        gr.Info("Generation cancelled; nothing new was made.")
        log.info("on_generate: cancelled by the user")
        return ("Generation cancelled at your request; nothing new was made.",) + (gr.skip(),) * (RESULT_COUNT + 2)
    except Exception as exc:  # noqa: BLE001 - said in the status line, never a traceback
        message = user_message(exc)
        if isinstance(exc, ValueError):
            log.info("on_generate refused: %s", message)
        else:
            log.exception("on_generate failed")
        return refused(message, shown)


def _generate(image, editor, text, source_text, engine, grounder, sigma_ratio, use_trained, bias_strength, steps,
              seed, num_samples, compare_off, layers, output_mode, region_scale, keep_blend, request, progress):
    started = time.perf_counter()  # the status line's seconds: the whole click on the server, grounding included
    if image is None:
        raise Refusal("upload a radiograph or pick a synthetic example first")
    check_text(text or "")  # the one text limit, before any work
    if points_stale(editor, text):
        raise Refusal(stale_message(editor, text))
    check_frontal_chest(image)  # LateralViewError for a lateral view (refused at upload already)
    region = EditRegion(scale=float(region_scale), keep_blend=bool(keep_blend))
    editor, new_points = points_for_generate(image, editor, text, grounder, sigma_ratio, region)
    click = GenerateClick(
        GenerationRequest(
            image=image, progression_text=text or "", source_text=source_text or "", points=editor_points(editor),
            sigma_ratio=float(sigma_ratio), bias_strength=None if use_trained else float(bias_strength),
            steps=int(steps) or None, seed=int(seed), capture_layers=parse_layers(layers), output_mode=output_mode,
            edit_region=region),
        num_samples=int(num_samples), compare_off=bool(compare_off), engine=engine or None,
        points_note=points_note(editor, text),
    )
    click.check()
    session = _session(request)
    cancel = CANCELS.start(session)
    try:
        progress(0.0, desc="loading the model")
        bundle = run_generation(click, lambda f, d: progress(f, desc=d), cancel)
    finally:
        CANCELS.finish(session)
    warnings, details = gather(film_warnings(image), editor_warnings(editor), engine_warnings(bundle))
    viewer = result_viewer(image, bundle)
    shown = ShownResult(bundle, click, image, time.perf_counter() - started, warnings, details)
    editor_out = (editor, points_json(editor), summary_text(image_summary(image), image, editor)) if new_points \
        else (gr.skip(),) * 3
    skip_tabs = (gr.skip(),) * sum(TAB_OUTPUTS.values())  # emptied (or filled) right after: on_result_tab
    return (status_text(shown), viewer, shown, *skip_tabs, *editor_out)


def points_for_generate(image: LoadedImage, editor: Any, text: str, grounder: str, sigma_ratio: float,
                        region: EditRegion) -> tuple[Any, bool]:
    """The editor value Generate uses, and whether it is new: points never found → found now for the text (as the
    API does); none found, or every found point removed by hand → Refusal (the follow-up would be the prior)."""
    if editor_points(editor):
        return editor, False
    if isinstance(editor, dict) and editor.get("for_text") is not None and editor.get("found"):
        raise Refusal(ALL_REMOVED)
    if not (text or "").strip():
        raise Refusal("describe the change (e.g. “new right lower lobe consolidation”) or click the film to place a "
                      "point, then Generate")
    value = found_points(image, text, grounder or DEFAULT_GROUNDER, sigma_ratio, region)
    if not value["points"]:
        reasons = [w for w in clinical_all(value["warnings"]) if w != NO_POINTS_FOUND]
        raise Refusal(NO_POINTS_FOUND + (" " + " ".join(reasons) if reasons else ""))
    return value, True


def on_tab(name: str):
    """A result tab was opened → (its name, kept as the open tab, *the tabs' outputs: this one's filled)."""

    @friendly
    def fill(shown: ShownResult | None):
        return (name, *tab_outputs(shown, name))

    fill.__name__ = f"on_tab_{name.lower()}"
    return fill


@friendly
def on_result_tab(shown: ShownResult | None, open_tab: str):
    """Right after a Generate (the follow-up is on screen by then): the open tab filled with the new result and, the
    first time for this result, the other tabs emptied until they are opened (a refused click changes nothing)."""
    filled = tab_outputs(shown, open_tab or "")
    if shown is None or shown.tabs_emptied:
        return filled
    shown.tabs_emptied = True
    return tuple(empty if _is_skip(new) else new for new, empty in zip(filled, empty_tabs()))


def _is_skip(value: Any) -> bool:
    return isinstance(value, dict) and value == {"__type__": "update"}  # gr.skip()


def points_note(editor: Any, text: str) -> dict[str, Any]:
    """How the points of a Generate were made, for the report: by whom and for which description."""
    value = editor if isinstance(editor, dict) else {}
    found_for = value.get("for_text")
    return {"count": len(editor_points(editor)), "by": value.get("origin") or "placed by hand",
            "found_for": found_for, "edited": value.get("points") != value.get("found") if found_for else None,
            "text": " ".join((text or "").split())}


def _session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "anonymous"
