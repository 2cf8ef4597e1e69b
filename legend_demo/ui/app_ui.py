"""`create_demo()`: the clinician-facing page (layout and wiring only; callbacks live in handlers.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from ..method.edit_region import SCALE_RANGE
from ..core.limits import MAX_TEXT_CHARS
from ..method.strength import S_MAX
from ..engines.base import SIGMA_RATIO_RANGE
from ..engines.registry import available_engines, load_engine
from ..grounding.registry import DEFAULT_GROUNDER, available_grounders
from .api import add_api_endpoints
from .config import UPLOAD_SUFFIXES, AppConfig
from .examples import gallery_items
from .generation import MAX_SAMPLES
from .handlers import (
    NO_IMAGE, make_upload_handler, on_cancel, on_clear, on_example_select, on_generate, on_ground, on_points_edited,
    on_result_tab, on_sigma, on_tab,
)
from .point_editor import PointEditor
from .result_store import purge_session
from .viewer import FilmViewer

STEPLESS_ENGINES = ("legend-ar",)  # autoregressive decoding: one step per token, the steps setting is not used
HEADER = (
    "<div id='page-header'><h1>LeGend demo <span>— synthetic longitudinal chest X-ray follow-ups with GBCA</span></h1>"
    "<div id='research-notice'><b>Research use only — not for diagnosis.</b> Every image this app makes is "
    "<b>SYNTHETIC</b> and labelled so. <details><summary>What is kept, and for how long</summary>An uploaded file is "
    "deleted from the server as soon as it is read; its pixels stay only in this session's memory. Result files are "
    "deleted when you close the page, and nothing from your session stays on the server more than 75 minutes after "
    "that (state and cache: 1 h, checked every 15 min). Nothing identifying is read from DICOM headers. Do not upload "
    "identifiable patient data to a public deployment.</details></div></div>"
)
NOTICE = HEADER  # the research notice is part of the page header
PAGE_CSS = """
.gradio-container { --layout-gap: 8px; padding-top: 0 !important; padding-bottom: 4px !important; }
.gradio-container .main { padding-top: 2px !important; }
.gradio-container main { padding-top: 0 !important; }
.html-container:has(#page-header) { padding-top: 2px !important; padding-bottom: 0 !important; }
#page-header { display: flex; flex-wrap: wrap; gap: 2px 16px; align-items: center; }
#page-header h1 { font-size: 18px; margin: 0; }
#page-header h1 span { font-weight: 400; font-size: 14px; }
#research-notice { border: 2px solid #b45309; background: #fff7ed; color: #7c2d12; padding: 2px 10px;
  border-radius: 8px; font-size: 13px; flex: 1 1 420px; }
#research-notice details { display: inline; }
#research-notice summary { display: inline; cursor: pointer; text-decoration: underline; }
#examples-box > button { padding-top: 2px; padding-bottom: 2px; }
#input-row { gap: 8px; }
#input-row textarea { font-size: 14px; }
#actions { gap: 6px; }
#actions button { min-height: 32px; padding-top: 3px; padding-bottom: 3px; font-size: 14px; white-space: nowrap; }
#main-sliders { gap: 4px; }
#main-sliders .block { padding-top: 3px; padding-bottom: 3px; }
#point-editor { --lv-stage-h: clamp(240px, calc(100vh - 362px), 1100px); }
#result-viewer { --lv-stage-h: clamp(220px, calc(100vh - 490px), 1000px); }
#status, #image-summary { min-height: 18px; }
#status { max-height: calc(5 * 1.35 * 12px + 2px); overflow-y: auto; }  /* status + warnings: 5 lines, then scroll */
#status, #image-summary, #status .prose, #image-summary .prose, #status p, #image-summary p {
  font-size: 12px !important; line-height: 1.35 !important; margin: 0 !important; }
#upload .upload-container { padding-top: 22px !important; }  /* the drop text starts below the box's label */
#upload [data-testid=upload-icon] { width: 18px !important; height: 18px !important; margin: 0 auto !important; }
#upload [data-testid=upload-text] { font-size: 13px !important; line-height: 1.25 !important; }
#text-column { position: relative; }
#text-count-box { position: absolute !important; top: 9px; right: 14px; width: auto !important; z-index: 3; }
#text-count { font-size: 11px; color: var(--body-text-color-subdued, #555); background: var(--block-background-fill, #fff); }
#text-count.over { color: #b91c1c; font-weight: 600; }
#attention .grid-wrap, #attention .fixed-height { height: auto !important; max-height: none !important; }
#attention .grid-container { grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)) !important;
  grid-template-rows: none !important; grid-auto-rows: auto !important; gap: 6px !important; }
#attention .thumbnail-item { aspect-ratio: auto !important; height: auto !important; display: flex; flex-direction: column; }
#attention .thumbnail-item img { width: 100% !important; height: auto !important; object-fit: contain !important; }
#attention .caption-label { position: static !important; max-width: 100% !important; white-space: normal !important;
  overflow: visible !important; opacity: 1 !important; border: 0 !important; background: transparent !important;
  font-size: 11px !important; line-height: 1.25 !important; padding: 2px 3px !important; text-align: left; }
#examples .grid-wrap, #examples .fixed-height { height: auto !important; min-height: 0 !important; max-height: none !important; }
#examples .grid-container { grid-template-columns: repeat(auto-fill, minmax(108px, 1fr)) !important;
  grid-template-rows: none !important; grid-auto-rows: auto !important; gap: 6px !important; }
#examples .thumbnail-item { aspect-ratio: auto !important; height: auto !important; display: flex; flex-direction: column; }
#examples .thumbnail-item img { width: 100% !important; height: 112px !important; object-fit: contain !important; }
#examples .caption-label { position: static !important; max-width: 100% !important; white-space: normal !important;
  overflow: visible !important; opacity: 1 !important; border: 0 !important; background: transparent !important;
  font-size: 11px !important; line-height: 1.2 !important; padding: 2px 3px !important; }
@media (max-width: 640px) {
  #point-editor, #result-viewer { --lv-stage-h: 300px; }
}
"""


def engine_choices(preferred: str | None = None) -> tuple[list[tuple[str, str]], str | None, str]:
    """(dropdown choices of engines that can run here, default, one line per engine saying why/why not)."""
    infos = available_engines()
    choices = [(i.label, i.name) for i in infos if i.available]
    if preferred and any(name == preferred for _, name in choices):
        return choices, preferred, _engine_lines(infos)
    return choices, (choices[0][1] if choices else None), _engine_lines(infos)


def _engine_lines(infos) -> str:
    lines = [f"- {'✅' if i.available else '⛔'} **{i.label}** — {i.reason}" for i in infos]
    if not any(i.available for i in infos):
        lines.insert(0, "**No generation engine can run here**, so Generate will explain why and stop. "
                        "Grounding and the point editor still work.")
    return "\n".join(lines)


def grounder_choices(config: AppConfig) -> tuple[list[str], str]:
    """Grounders usable here (the registry's: the rules always; the VLM only with its checkpoint and a CUDA GPU),
    and a note on the others. `config` has been applied: the registry resolves checkpoints under its root."""
    infos = available_grounders()
    notes = [f"{i.label}: {i.reason}." if i.available else f"{i.label} unavailable: {i.reason}."
             for i in infos if i.name != DEFAULT_GROUNDER]
    return [i.name for i in infos if i.available], " ".join(notes)


def launch_kwargs(config: AppConfig) -> dict[str, Any]:
    """Options every launch of this app uses (app.py, tests, benchmark)."""
    from starlette.middleware import Middleware

    from .uploads import UploadCounter

    return {"show_error": True, "max_file_size": f"{int(config.max_upload_mb)}mb", "css": PAGE_CSS,
            "run_history": False,  # Gradio's run history would keep inputs and results in the browser for good
            "app_kwargs": {"middleware": [Middleware(UploadCounter)]}}  # identical uploads: one file, counted


def create_demo(config: AppConfig | None = None, study_db: str | Path | None = None) -> gr.Blocks:
    """Build (not launch) the Blocks app. A reader study is never embedded here (readers must see only the study):
    serve it with `python app.py --study DB` (legend_demo.ui.study_server)."""
    if study_db:
        raise ValueError("a reader study is served on its own, behind its login: python app.py --study DB")
    config = config or AppConfig.from_env()
    configure_logging()
    with gr.Blocks(title="LeGend demo — synthetic chest X-ray follow-ups", delete_cache=(900, 3600),
                   fill_width=True) as demo:
        gr.HTML(HEADER, js_on_load=None)
        _generate_page(config, demo)
        add_api_endpoints(config, None)
        demo.unload(purge_session)  # the session's result files go when its page is closed (result_store)
    demo.queue(max_size=64, default_concurrency_limit=1)
    return demo


def configure_logging() -> None:
    """One line per refused input on the console (legend_demo.core.logs, at LEGEND_LOG_LEVEL); tracebacks of refusals only
    at DEBUG. Idempotent: app.py configures the same loggers."""
    from ..core import logs

    logs.configure()


def _generate_page(config: AppConfig, demo: gr.Blocks) -> None:
    """One laptop screen: inputs in a row, the point editor and the results viewer side by side below it,
    secondary outputs and settings in tabs underneath."""
    state = gr.State(None, time_to_live=3600)
    with gr.Accordion("Synthetic examples — click one to load its film, description and lesion points",
                      open=True, elem_id="examples-box") as examples_box:
        examples = gr.Gallery(gallery_items(), label="SYNTHETIC examples (CT renders and drawings made by this "
                              "project — not patient data)", show_label=False, columns=11, height="auto",
                              allow_preview=False, object_fit="contain", elem_id="examples", buttons=[])
    with gr.Row(elem_id="input-row", equal_height=False):
        with gr.Column(scale=3, min_width=220):
            upload = gr.File(label="Prior film: DICOM, PNG, JPEG, TIFF", file_types=list(UPLOAD_SUFFIXES),
                             elem_id="upload", height=110)
        with gr.Column(scale=5, min_width=280, elem_id="text-column"):
            text = gr.Textbox(label=f"Progression description (up to {MAX_TEXT_CHARS:,} characters)", lines=2,
                              max_lines=5, elem_id="text",
                              placeholder="e.g. interval increase of right lower lobe consolidation")
            gr.HTML(f"<div id='text-count' aria-live='polite'>0 / {MAX_TEXT_CHARS:,} characters</div>",
                    padding=False, container=False, elem_id="text-count-box")  # on the box's label line
        with gr.Column(scale=3, min_width=240, elem_id="actions"):
            with gr.Row():
                find = gr.Button("Find lesions", elem_id="find", size="md", scale=2)
                cancel = gr.Button("Cancel", variant="stop", elem_id="cancel", size="md", scale=1, min_width=70)
            generate = gr.Button("Generate SYNTHETIC follow-up", variant="primary", elem_id="generate", size="md")
            compare = gr.Checkbox(value=False, label="Compare with GBCA off", elem_id="compare",
                                  container=False)
        with gr.Column(scale=4, min_width=240, elem_id="main-sliders"):
            sigma, region = _main_controls()
    with gr.Row(elem_id="film-row"):
        with gr.Column(scale=1, min_width=320):
            editor = PointEditor(elem_id="point-editor")
            summary = gr.Markdown(NO_IMAGE, elem_id="image-summary")
        with gr.Column(scale=1, min_width=320):
            status = gr.Markdown(elem_id="status")  # above the films: never pushed below the fold
            viewer = FilmViewer(elem_id="result-viewer")
    with gr.Tabs(elem_id="secondary"):
        with gr.Tab("Settings") as settings_tab:  # first, so rendered at load (the points box is read by the tests)
            settings = _settings(config)
        tabs, tab_blocks = _outputs()
    engine, engine_notes, source, grounder, trained, bias, steps, seed, samples, layers, output, keep, points_text = settings
    controls = [sigma, trained, bias, steps, seed, samples, compare, layers, output, region, keep]
    shown = gr.State(None, time_to_live=3600)  # the last result, for its tabs (made when opened)
    open_tab = gr.State("Settings")
    results = [status, viewer, shown, *tabs]
    upload_outputs = [state, editor, points_text, summary, *results]
    demo.load(_engine_discovery(config), None, [engine, engine_notes], api_visibility="private", queue=False).then(
        steps_control, engine, steps, api_visibility="private")
    engine.change(steps_control, engine, steps, api_visibility="private")
    trained.change(lambda t: gr.Slider(interactive=not t), trained, bias, api_visibility="private", queue=False)
    for box in (output, keep):
        box.change(region_control, [output, keep], region, api_visibility="private", queue=False)
    text.change(None, text, None, js=TEXT_TO_EDITOR)  # the editor marks points found for another text (browser only)
    upload.upload(make_upload_handler(config), [upload, sigma, region], [upload, *upload_outputs],
                  api_visibility="private").then(_close, None, examples_box, api_visibility="private", queue=False
                                                 ).then(None, None, None, js=FILM_INTO_VIEW)
    upload.clear(on_clear, None, upload_outputs, api_visibility="private")
    examples.select(on_example_select, [sigma, region], [upload, text, source, *upload_outputs],
                    api_visibility="private").then(_close, None, examples_box, api_visibility="private", queue=False
                                                   ).then(None, None, None, js=FILM_INTO_VIEW)
    find.click(on_ground, [state, text, grounder, sigma, region], [editor, points_text, summary],
               api_visibility="private")
    editor.change(on_points_edited, [editor, sigma, region, state, text], [editor, points_text, summary],
                  show_progress="hidden", trigger_mode="always_last", api_visibility="private")
    for slider in (sigma, region):
        slider.change(on_sigma, [editor, sigma, region], editor, show_progress="hidden", trigger_mode="always_last",
                      api_visibility="private")
    job = generate.click(on_generate, [state, editor, text, source, engine, grounder, shown, *controls],
                         [*results, editor, points_text, summary], concurrency_id="gpu", concurrency_limit=1,
                         show_progress_on=[viewer], api_visibility="private")  # progress on the viewer only
    job.then(on_result_tab, [shown, open_tab], tabs, show_progress="hidden", api_visibility="private")
    cancel.click(on_cancel, None, status, cancels=[job], queue=False, api_visibility="private")
    settings_tab.select(lambda: "Settings", None, open_tab, queue=False, api_visibility="private")
    for name, tab in tab_blocks.items():  # a result tab is made when it is opened (result_tabs.py)
        tab.select(on_tab(name), shown, [open_tab, *tabs], api_visibility="private")


TEXT_TO_EDITOR = ("(text) => { window.__legendText = text; "
                  "window.dispatchEvent(new CustomEvent('legend:text', {detail: text})); "
                  "const count = document.querySelector('#text-count'); const n = (text || '').length; "
                  f"if (count) {{ count.classList.toggle('over', n > {MAX_TEXT_CHARS}); "
                  f"count.textContent = n.toLocaleString('en') + ' / {MAX_TEXT_CHARS:,} characters' + "
                  f"(n > {MAX_TEXT_CHARS} ? ' — too long: Find lesions and Generate will refuse it' : ''); }} "
                  "return []; }")
FILM_INTO_VIEW = ("() => { if (window.innerWidth <= 640) setTimeout(() => { const el = document.querySelector("
                  "'#point-editor'); if (el) el.scrollIntoView({block: 'start', behavior: 'instant'}); }, 250); "
                  "return []; }")  # a phone: the film, not the form above it, after a film is loaded


def _close():
    return gr.Accordion(open=False)


def steps_control(engine: str | None):
    """The steps slider says the chosen engine's default (loading the engine if needed) and is disabled for
    engines without denoising steps."""
    if engine in STEPLESS_ENGINES:
        return gr.Slider(interactive=False, label="Steps (not used: this engine decodes token by token)")
    try:
        default = load_engine(engine).default_steps if engine else None
    except Exception:  # noqa: BLE001 - Generate reports why the engine cannot run
        default = None
    label = f"Steps (0 = the engine's default, {default})" if default else "Steps (0 = the engine's default)"
    return gr.Slider(interactive=True, label=label)


def region_control(output: str, keep: bool):
    """The edit-region size is used by the composite and by keep-region blending; with neither it is disabled."""
    return gr.Slider(interactive=output == "composite" or bool(keep))


def _engine_discovery(config: AppConfig):
    """Fill the engine list once the page is up: probing engines imports torch/diffusers (slow on a CPU)."""

    def discover():
        choices, default, text = engine_choices(config.engine)
        return gr.Dropdown(choices=choices, value=default, interactive=bool(choices)), text

    return discover


def _main_controls() -> tuple[gr.Slider, gr.Slider]:
    lo, hi = SIGMA_RATIO_RANGE
    sigma = gr.Slider(lo, hi, value=0.10, step=0.01, label="σ ratio of the prior (default 0.10)",
                      elem_id="sigma")
    lo, hi = SCALE_RANGE
    region = gr.Slider(lo, hi, value=1.0, step=0.05, label="Edit region size (× σ, dashed)",
                       elem_id="region-scale")
    return sigma, region


def _settings(config: AppConfig) -> list[gr.components.Component]:
    with gr.Row():
        with gr.Column(scale=2):
            start = [config.engine] if config.engine else []  # the configured engine until the list is filled
            engine = gr.Dropdown(start, value=config.engine, label="Engine", interactive=False, elem_id="engine")
            engine_notes = gr.Markdown("Checking which engines can run here…", elem_id="engine-notes")
        with gr.Column(scale=2):
            grounders, grounder_note = grounder_choices(config)
            grounder = gr.Radio(grounders, value=DEFAULT_GROUNDER, label="Grounder", info=grounder_note)
            source = gr.Textbox(label="Source description (optional)", placeholder="a frontal chest radiograph")
    with gr.Row():
        trained = gr.Checkbox(value=True, label="Use the trained bias strength s(τ)", elem_id="trained")
        bias = gr.Slider(0.0, S_MAX, value=1.0, step=0.1, label="Fixed bias strength", interactive=False,
                         info="used only when 'Use the trained bias strength' is unticked; 0 = GBCA off", elem_id="bias")
        steps = gr.Slider(0, 100, value=0, step=1, label="Steps (0 = the engine's default)", elem_id="steps")
        seed = gr.Number(value=0, precision=0, label="Seed", minimum=0)
        samples = gr.Slider(1, MAX_SAMPLES, value=1, step=1, label="Samples K (seeds seed…seed+K−1)", elem_id="samples-k")
    with gr.Row():
        layers = gr.Textbox(value="", label="Layers to show", placeholder="blank = vital layers, e.g. 0, 17, 56")
        output = gr.Radio([("Change on my film (composite)", "composite"), ("Model view (raw engine output)", "model-view")],
                          value="composite", label="Output", elem_id="output-mode",
                          info="composite: only the described change is added to your film, inside the edit "
                               "region; elsewhere the film is untouched")
        keep = gr.Checkbox(value=True, label="Keep-region blending while sampling", elem_id="keep-blend",
                           info="the engine's change stays inside the edit region at every step")
    points_text = gr.Textbox(label="Lesion points Generate will use (film pixels, read-only)", interactive=False,
                             elem_id="points-json", value="[]", max_lines=4)
    return [engine, engine_notes, source, grounder, trained, bias, steps, seed, samples, layers, output, keep, points_text]


def _outputs() -> tuple[list[gr.components.Component], dict[str, gr.Tab]]:
    """The result tabs: (their outputs in result_tabs.TAB_OUTPUTS order, {tab name: tab})."""
    view_only = ["fullscreen"]  # no built-in download buttons: they would hand out unlabelled webp copies
    with gr.Tab("Maps") as maps:
        with gr.Row():
            diff = gr.Image(label="Difference: SYNTHETIC follow-up − prior (shared scale, colour bar below)",
                            elem_id="difference", buttons=view_only)
            diff_off = gr.Image(label="Difference: GBCA off − prior (same scale)", elem_id="difference-off",
                                buttons=view_only, visible=False)
            prior = gr.Image(label="Gaussian prior on the token grid (model view)", elem_id="prior-overlay",
                             buttons=view_only)
            model_view = gr.Image(label="Model view: the engine's raw output", elem_id="model-view", buttons=view_only)
    with gr.Tab("Samples") as samples_tab:
        samples = gr.Gallery(label="SYNTHETIC samples (mean and per-pixel std when K > 1)", columns=4, height=440,
                             object_fit="contain", elem_id="samples", buttons=view_only)
    with gr.Tab("Attention") as attention_tab:
        attention = gr.Gallery(label="Per-layer attention over the prior (edit queries → source image keys); colour "
                               "bar: share of the image attention per token cell, one scale for all layers",
                               columns=6, height="auto", object_fit="contain", elem_id="attention", buttons=view_only)
    with gr.Tab("Metrics") as metrics_tab:
        plot = gr.Plot(label="CBI / EAR / Attn-IoU per layer")
        table = gr.Dataframe(label="Attention metrics per layer", elem_id="metrics-table")
    with gr.Tab("Downloads") as downloads_tab:
        files = gr.File(label="Downloads: SYNTHETIC film PNG and DICOM Secondary Capture, model view, report JSON "
                        "(every image labelled below its pixels)", file_count="multiple", elem_id="downloads")
    with gr.Tab("Report") as report_tab:
        report = gr.JSON(label="Provenance / report", elem_id="report")
    blocks = {"Maps": maps, "Samples": samples_tab, "Attention": attention_tab, "Metrics": metrics_tab,
              "Downloads": downloads_tab, "Report": report_tab}
    return [diff, diff_off, prior, model_view, samples, attention, plot, table, files, report], blocks
