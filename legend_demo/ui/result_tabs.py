"""One result on the page: the follow-up first, everything else when its tab is opened.

A Generate click shows the status line and the results viewer (prior ↔ SYNTHETIC follow-up) as soon as the engine
is done; the prior travels to the browser only once, at upload (the viewer names it by its content key), and the
follow-up as its difference from the prior. The rest — difference maps, the Gaussian prior, the model view, samples,
attention maps, the metrics plot and table, the downloadable files and the report — is made from the `ShownResult`
kept in the session's state when its tab is opened (or right after Generate for the tab that is open), once per
result. So the time from click to picture is the engine's own time plus little else: the Generate click itself updates only
the status line and the viewer; the previous result's tabs are emptied by the event that follows it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gradio as gr
import numpy as np

from ..core.export import SYNTHETIC_LABEL
from ..core.image_io import LoadedImage
from ..core.overlay import heat_overlay
from .downloads import bias_text, bundle_report, write_downloads
from .generation import GenerateClick, GenerationBundle
from .notices import warnings_markdown
from .point_editor import film_region_outline
from .viewer import display_film, film_entry, film_payload, quantize, side_markers, viewer_value, window_presets
from .visuals import (
    attention_peak, difference_map, difference_span, film_view, for_display, gray_rgb, labelled,
    metrics_figure, metrics_table, shrink, std_map, with_colorbar,
)

DIFFERENCE_UNIT = "follow-up minus prior, % of the film's display range (blue darker, red brighter)"
STD_UNIT = "per-pixel std across the samples, % of the display range"
ATTENTION_UNIT = "share of the image attention per token cell (one scale for every layer, GBCA on and off)"
PRIOR_UNIT = "Gaussian prior weight R (eq. 5.5), 0 to 1"
TABS = ("Settings", "Maps", "Samples", "Attention", "Metrics", "Downloads", "Report")
TAB_OUTPUTS = {"Maps": 4, "Samples": 1, "Attention": 1, "Metrics": 2, "Downloads": 1, "Report": 1}  # outputs per tab
REGION_NOTE = "Dashed: the edit region. Window/level, zoom and pan act on every film at once and change only the view."


# --- the prior as the browser has it (made once per film) --------------------------------------------------------


def prior_view(image: LoadedImage) -> dict[str, Any]:
    """The film's viewer payload, side markers and window presets, computed once per loaded film and kept with it
    (the editor shows them at upload; every result names the same payload by its key)."""
    cache = image.__dict__  # LoadedImage caches derived data in its __dict__ (see LoadedImage.intensity_map)
    if "_prior_view" not in cache:
        samples = quantize(display_film(image.array))  # (h, w) 12-bit: the base of every follow-up's payload
        cache["_prior_view"] = {"film": film_payload(image.array), "markers": side_markers(image.dicom_info),
                                "presets": window_presets(image.array, image.dicom_info), "samples": samples}
    return cache["_prior_view"]


def editor_film(image: LoadedImage) -> dict[str, Any]:
    """The editor's `film` property (point_editor.film_props), from the cached prior view."""
    view = prior_view(image)
    return {k: view[k] for k in ("film", "markers", "presets")}


def by_key(payload: dict[str, Any]) -> dict[str, Any]:
    """A payload without its pixels: the browser already decoded this film (the editor's prior)."""
    return {k: payload[k] for k in ("key", "w", "h", "bits")} | {"data": None, "base": None}


# --- the result kept for the tabs ----------------------------------------------------------------------------------


@dataclass
class ShownResult:
    """What one Generate click made, with the tab contents made from it so far (each made at most once)."""

    bundle: GenerationBundle
    click: GenerateClick
    image: LoadedImage
    seconds: float
    warnings: list[str]  # in clinician words (notices.clinical)
    details: list[str] = field(default_factory=list)  # the technical messages behind them
    made: dict[str, tuple] = field(default_factory=dict)
    tabs_emptied: bool = False  # the previous result's tabs were emptied (handlers.on_result_tab)

    def tab(self, name: str) -> tuple:
        """The outputs of tab `name` (TAB_OUTPUTS order), made on first use."""
        if name not in TAB_OUTPUTS:
            return ()
        if name not in self.made:
            self.made[name] = getattr(self, "_" + name.lower())()
        return self.made[name]

    def report(self) -> dict[str, Any]:
        if "report" not in self.made:
            self.made["report"] = bundle_report(self.bundle, self.click, self.warnings, self.details)
        return self.made["report"]

    def _maps(self) -> tuple:
        main = self.bundle.main
        differences = difference_pictures(self.image, self.bundle)
        off = (gr.Image(value=differences[1], visible=True) if len(differences) > 1
               else gr.Image(value=None, visible=False))
        prior = with_colorbar(for_display(heat_overlay(main.prior_image, main.prior_map, peak=1.0)), 0.0, 1.0,
                              PRIOR_UNIT, "jet")
        model_view = labelled(for_display(gray_rgb(main.followup)), [SYNTHETIC_LABEL, "model view: raw engine output"])
        return differences[0], off, prior, model_view

    def _samples(self) -> tuple:
        return (gr.Gallery(value=sample_gallery(self.bundle)),)

    def _attention(self) -> tuple:
        main, off = self.bundle.main, self.bundle.off
        return (attention_gallery(main.prior_image, main.layers, off.layers if off else []),)

    def _metrics(self) -> tuple:
        on, off = self.bundle.main.layers, self.bundle.off.layers if self.bundle.off else []
        headers, rows = metrics_table(on, off)
        return (metrics_figure(on, off) if on else None, gr.Dataframe(value=rows, headers=headers))

    def _downloads(self) -> tuple:
        files, _ = write_downloads(self.bundle, self.click, self.image, report=self.report())
        return (files,)

    def _report(self) -> tuple:
        return (self.report(),)


def empty_tabs() -> tuple:
    """Every tab output emptied (a new result, a new film): old pictures never sit beside a new film."""
    return (None, gr.Image(value=None, visible=False), None, None, gr.Gallery(value=None), None, None, None, None,
            None)


def tab_outputs(result: ShownResult | None, name: str) -> tuple:
    """All tab outputs for the opened tab `name`: its contents, gr.skip() for the others (left as they are)."""
    out: list = []
    for tab, count in TAB_OUTPUTS.items():
        if tab == name and result is not None:
            out += list(result.tab(tab))
        else:
            out += [gr.skip()] * count
    return tuple(out)


# --- the first things shown ----------------------------------------------------------------------------------------


def result_viewer(image: LoadedImage, bundle: GenerationBundle) -> dict[str, Any]:
    """The results viewer: prior (named by key: the browser has it) and follow-up films (and GBCA off), 12-bit,
    synthetic ones labelled below."""
    main = bundle.main
    view = prior_view(image)
    prior = view["film"]
    films = [film_entry("prior", "PRIOR — your film (not generated)", by_key(prior),
                        ["PRIOR: the uploaded film (not generated)", "as loaded; window/level changes only the view"],
                        synthetic=False),
             film_entry("on", f"SYNTHETIC follow-up · GBCA on · seed {bundle.seeds[0]}",
                        film_payload(main.film.display, image.array, prior["key"], base_samples=view["samples"]),
                        synthetic_lines(main), synthetic=True)]
    pairs = [("prior", "on", "Prior ↔ SYNTHETIC follow-up")]
    if bundle.off is not None:
        films.append(film_entry("off", f"SYNTHETIC follow-up · GBCA off · seed {bundle.seeds[0]}",
                                film_payload(bundle.off.film.display, image.array, prior["key"],
                                             base_samples=view["samples"]),
                                [*synthetic_lines(bundle.off), "GBCA off (bias 0), same seed"], synthetic=True))
        pairs += [("on", "off", "GBCA on ↔ GBCA off"), ("prior", "off", "Prior ↔ GBCA off")]
    region = film_region_outline(main.film.region_mask())
    return viewer_value(films, pairs, markers=view["markers"], presets=view["presets"], region=region,
                        note=REGION_NOTE if region else "Window/level, zoom and pan act on every film at once and "
                                                         "change only the view.")


def synthetic_lines(result) -> list[str]:
    return [SYNTHETIC_LABEL, f"engine: {result.engine} | output: {result.film.mode}"]


def status_text(shown: ShownResult) -> str:
    """The result's status line: what was made, with which σ ratio and how long it took, then every warning."""
    bundle, request = shown.bundle, shown.click.request
    main = bundle.main
    seeds = ", ".join(str(s) for s in bundle.seeds)
    note = shown.click.points_note or {}
    found = f" found for “{_short(note['found_for'], 40)}”" if note.get("found_for") else ""
    engine_s = sum(r.timings_s.get("total", 0.0) for r in [*bundle.samples, *([bundle.off] if bundle.off else [])])
    line = (f"**SYNTHETIC follow-up — research use only, not for diagnosis.** Engine **{main.engine}** · "
            f"seed {seeds} · σ ratio {request.sigma_ratio:g} · bias {bias_text(request.bias_strength)} · "
            f"{len(main.points)} point(s){found} · "
            f"{shown.seconds:.2f} s (model {engine_s:.2f} s)")
    return line + ("\n\n" + warnings_markdown(shown.warnings) if shown.warnings else "")


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- tab pictures ---------------------------------------------------------------------------------------------------


def difference_pictures(image: LoadedImage, bundle: GenerationBundle) -> list[np.ndarray]:
    """follow-up − prior (and GBCA off − prior) on one shared symmetric scale, colour bar and label below."""
    prior = shrink(image.array)
    runs = [("GBCA on", bundle.main)] + ([("GBCA off", bundle.off)] if bundle.off is not None else [])
    pairs = [(prior, shrink(result.film.display)) for _, result in runs]
    span = difference_span(pairs)
    return [labelled(with_colorbar(difference_map(b, a, span), -span, span, DIFFERENCE_UNIT, percent=True),
                     [f"difference: SYNTHETIC follow-up ({name}) - prior"]) for (name, _), (b, a) in zip(runs, pairs)]


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
