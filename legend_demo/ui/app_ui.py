"""`create_demo()`: the clinician-facing page (layout and wiring only; callbacks live in handlers.py)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from ..edit_region import SCALE_RANGE
from ..engines.base import SIGMA_RATIO_RANGE
from ..engines.registry import available_engines
from .api import add_api_endpoints
from .config import UPLOAD_SUFFIXES, AppConfig
from .examples import example_files
from .generation import MAX_SAMPLES
from .handlers import (
    make_upload_handler, on_cancel, on_example_select, on_generate, on_ground, on_points_edited, on_sigma,
)
from .point_editor import PointEditor
from .result_store import purge_session

MAX_BIAS_STRENGTH = 10.0  # Engine.max_bias_strength default; the engine re-checks its own bound
NOTICE = (
    "<div id='research-notice' style='border:2px solid #b45309;background:#fff7ed;color:#7c2d12;"
    "padding:8px 12px;border-radius:8px'><b>Research use only — not for diagnosis.</b> Every image this app "
    "makes is <b>SYNTHETIC</b> and labelled so. An uploaded file is deleted from the server as soon as it is read; "
    "its pixels stay only in this session's memory. Result files are deleted when you close the page, and nothing "
    "from your session stays on the server more than 75 minutes after that (state and cache: 1 h, checked every "
    "15 min). Nothing identifying is read from DICOM headers. Do not upload identifiable patient data to a public "
    "deployment.</div>"
)


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
    """Grounders usable here: the rules always; the VLM only with its checkpoint and a CUDA GPU."""
    if not config.has_checkpoint("qwen"):
        return ["rules"], f"VLM grounder unavailable: no Qwen2.5-VL checkpoint in `{config.checkpoint_dir('qwen')}`."
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if not has_cuda:
        return ["rules"], "VLM grounder unavailable: it needs a CUDA GPU."
    return ["rules", "vlm"], "VLM grounder: Qwen2.5-VL-7B-Instruct (4-bit), falls back to the rules."


def launch_kwargs(config: AppConfig) -> dict[str, Any]:
    """Options every launch of this app uses (app.py, tests, benchmark)."""
    return {"show_error": True, "max_file_size": f"{int(config.max_upload_mb)}mb",
            "run_history": False}  # Gradio's run history would keep inputs and results in the browser for good


def create_demo(config: AppConfig | None = None, study_db: str | Path | None = None) -> gr.Blocks:
    """Build (not launch) the Blocks app. A reader study is never embedded here (readers must see only the study):
    serve it with `python app.py --study DB` (legend_demo.ui.study_server)."""
    if study_db:
        raise ValueError("a reader study is served on its own, behind its login: python app.py --study DB")
    config = config or AppConfig.from_env()
    with gr.Blocks(title="LeGend demo — synthetic chest X-ray follow-ups", delete_cache=(900, 3600)) as demo:
        gr.Markdown("# LeGend demo — synthetic longitudinal chest X-ray follow-ups with GBCA")
        gr.HTML(NOTICE, js_on_load=None)
        with gr.Tab("Generate"):
            _generate_tab(config, demo)
        add_api_endpoints(config, None)
        demo.unload(purge_session)  # the session's result files go when its page is closed (result_store)
    demo.queue(max_size=64, default_concurrency_limit=1)
    return demo


def _generate_tab(config: AppConfig, demo: gr.Blocks) -> None:
    state = gr.State(None, time_to_live=3600)
    with gr.Row():
        with gr.Column(scale=1):
            upload = gr.File(label="Prior radiograph (PNG, JPEG, TIFF or DICOM)", file_types=list(UPLOAD_SUFFIXES),
                             elem_id="upload")
            examples = gr.Gallery([(p, e.caption) for p, e in example_files()], label="SYNTHETIC examples "
                                  "(CT renders and drawings made by this project — not patient data)", columns=5, height=150,
                                  allow_preview=False, elem_id="examples", buttons=[])
            text = gr.Textbox(label="Progression description", lines=2, elem_id="text",
                              placeholder="e.g. interval increase of right lower lobe consolidation")
            source = gr.Textbox(label="Source description (optional)", placeholder="a frontal chest radiograph")
            engine = gr.Dropdown([], value=None, label="Engine", interactive=False)
            engine_notes = gr.Markdown("Checking which engines can run here…", elem_id="engine-notes")
            grounders, grounder_note = grounder_choices(config)
            grounder = gr.Radio(grounders, value="rules", label="Grounder")
            gr.Markdown(grounder_note)
            find = gr.Button("Find lesions", elem_id="find")
        with gr.Column(scale=2):
            editor = PointEditor(elem_id="point-editor")
            points_text = gr.Textbox(label="Points received by Python (original image pixels)", interactive=False,
                                     elem_id="points-json", value="[]")
            summary = gr.Markdown("No image yet.", elem_id="image-summary")
    controls = _controls()
    with gr.Row():
        generate = gr.Button("Generate SYNTHETIC follow-up", variant="primary", elem_id="generate")
        cancel = gr.Button("Cancel", variant="stop", elem_id="cancel")
    outputs = _outputs()
    sigma, region = controls[0], controls[-2]
    demo.load(_engine_discovery(config), None, [engine, engine_notes], api_visibility="private", queue=False)
    upload.change(make_upload_handler(config), [upload, sigma], [state, editor, points_text, summary],
                  api_visibility="private")
    examples.select(on_example_select, None, [upload, text], api_visibility="private")
    find.click(on_ground, [state, text, grounder, sigma, region], [editor, points_text], api_visibility="private")
    editor.change(on_points_edited, [editor, sigma, region], [editor, points_text], show_progress="hidden",
                  trigger_mode="always_last", api_visibility="private")
    for slider in (sigma, region):
        slider.change(on_sigma, [editor, sigma, region], editor, show_progress="hidden", trigger_mode="always_last",
                      api_visibility="private")
    job = generate.click(on_generate, [state, editor, text, source, engine, *controls], outputs,
                         concurrency_id="gpu", concurrency_limit=1, api_visibility="private")
    cancel.click(on_cancel, None, None, cancels=[job], queue=False, api_visibility="private")


def _engine_discovery(config: AppConfig):
    """Fill the engine list once the page is up: probing engines imports torch/diffusers (slow on a CPU)."""

    def discover():
        choices, default, text = engine_choices(config.engine)
        return gr.Dropdown(choices=choices, value=default, interactive=bool(choices)), text

    return discover


def _controls() -> list[gr.components.Component]:
    lo, hi = SIGMA_RATIO_RANGE
    with gr.Accordion("Controls", open=True):
        with gr.Row():
            sigma = gr.Slider(lo, hi, value=0.10, step=0.01, label="σ ratio of the Gaussian prior",
                              info="σ = ratio · min(h, w) token cells; thesis default 0.10", elem_id="sigma")
            trained = gr.Checkbox(value=True, label="Use the trained bias strength s(τ)")
            bias = gr.Slider(0.0, MAX_BIAS_STRENGTH, value=1.0, step=0.1, label="Fixed bias strength",
                             info="used when the box is unticked; 0 = GBCA off")
        with gr.Row():
            steps = gr.Slider(0, 100, value=0, step=1, label="Steps (0 = engine default)")
            seed = gr.Number(value=0, precision=0, label="Seed", minimum=0)
            samples = gr.Slider(1, MAX_SAMPLES, value=1, step=1, label="Samples K (seeds seed…seed+K−1)")
            compare = gr.Checkbox(value=False, label="Compare with GBCA off (same seed)")
            layers = gr.Textbox(value="", label="Layers to show", placeholder="blank = vital layers, e.g. 0, 17, 56")
        with gr.Row():
            lo, hi = SCALE_RANGE
            output = gr.Radio([("Change on my film (composite)", "composite"), ("Model view (raw engine output)", "model-view")],
                              value="composite", label="Output", elem_id="output-mode",
                              info="composite: only the described change is added to your film, inside the edit "
                                   "region; elsewhere the film is untouched")
            region = gr.Slider(lo, hi, value=1.0, step=0.05, label="Edit region size (× σ)", elem_id="region-scale",
                               info="the dashed outline in the editor: where the follow-up may differ from the prior")
            keep = gr.Checkbox(value=True, label="Keep-region blending while sampling", elem_id="keep-blend",
                               info="the engine's change stays inside the edit region at every step")
    return [sigma, trained, bias, steps, seed, samples, compare, layers, output, region, keep]


def _outputs() -> list[gr.components.Component]:
    status = gr.Markdown(elem_id="status")
    view_only = ["fullscreen"]  # no built-in download buttons: they would hand out unlabelled webp copies
    with gr.Row():
        slider = gr.ImageSlider(label="Prior film ↔ SYNTHETIC follow-up film", elem_id="slider", buttons=view_only)
        diff = gr.Image(label="Difference (SYNTHETIC − prior): red brighter, blue darker", elem_id="difference",
                        buttons=view_only)
    with gr.Row():
        prior = gr.Image(label="Gaussian prior on the token grid (model view)", elem_id="prior-overlay", buttons=view_only)
        model_view = gr.Image(label="Model view: the engine's raw output", elem_id="model-view", buttons=view_only)
    samples = gr.Gallery(label="SYNTHETIC samples (mean and per-pixel std when K > 1)", columns=4, height=340,
                         elem_id="samples", buttons=view_only)
    attention = gr.Gallery(label="Per-layer attention over the prior (edit queries → source image keys)",
                           columns=5, elem_id="attention", buttons=view_only)
    with gr.Row():
        plot = gr.Plot(label="CBI / EAR / Attn-IoU per layer")
        table = gr.Dataframe(label="Attention metrics per layer", elem_id="metrics-table")
    with gr.Row():
        report = gr.JSON(label="Provenance / report", elem_id="report")
        files = gr.File(label="Downloads: SYNTHETIC PNG, DICOM Secondary Capture, report JSON", file_count="multiple",
                        elem_id="downloads")
    return [status, slider, diff, prior, model_view, samples, attention, plot, table, report, files]
