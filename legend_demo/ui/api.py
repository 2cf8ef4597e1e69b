"""The public API endpoints `/ground` and `/generate` (gradio_client: `Client(url).predict(..., api_name=...)`)."""
from __future__ import annotations

import json
from typing import Any

import gradio as gr

from ..grounding import ground
from ..points import as_points, check_inside
from .config import AppConfig
from .downloads import write_downloads
from .errors import friendly
from .generation import GenerateParams, run_generation
from ..layer_spec import parse_layers
from .uploads import load_upload


def parse_points(points: Any) -> list | None:
    """None/"" → None (ground automatically); a list, {"points": [...]} or their JSON text → the list."""
    if points is None or (isinstance(points, str) and not points.strip()):
        return None
    if isinstance(points, str):
        try:
            points = json.loads(points)
        except json.JSONDecodeError as exc:
            raise ValueError(f"points are not valid JSON: {exc}") from None
    if isinstance(points, dict):
        points = points.get("points")
    if not isinstance(points, list):
        raise ValueError('points must be a list like [{"x": 120, "y": 300, "confidence": 5}] or {"points": [...]}')
    return points


def make_api(config: AppConfig):
    """The two endpoint functions, bound to this app's upload limits."""

    @friendly
    def api_ground(image, text: str, grounder: str = "rules") -> dict:
        """Image + progression text → {"points": [...], "image_size": [W, H], "grounder", "warnings"}."""
        loaded = load_upload(image, config)
        return ground(loaded, text or "", grounder or "rules").to_dict()

    @friendly
    def api_generate(
        image, text: str, points: Any = None, sigma_ratio: float = 0.10, bias_strength: float = -1.0,
        seed: float = 0, steps: float = 0, num_samples: float = 1, compare_gbca_off: bool = False,
        source_text: str = "", engine: str = "", layers: str = "",
    ):
        """Image + text (+ options) → (SYNTHETIC follow-up PNG, report JSON, [PNG, DICOM, report] files)."""
        loaded = load_upload(image, config)
        raw = parse_points(points)
        if raw is None:
            found = as_points(ground(loaded, text or "", "rules").points)
        else:
            found = as_points(raw)
            check_inside(found, loaded.original_size)
        params = GenerateParams(
            text=text or "", points=found, source_text=source_text or "", sigma_ratio=float(sigma_ratio),
            bias_strength=None if bias_strength is None or float(bias_strength) < 0 else float(bias_strength),
            steps=int(steps or 0) or None, seed=int(seed or 0), num_samples=int(num_samples or 1),
            compare_off=bool(compare_gbca_off), capture_layers=parse_layers(layers),
            engine=engine or config.engine or None,  # '' = the engine this app was started with
        )
        bundle = run_generation(loaded.array, params)
        files, report = write_downloads(bundle, params)
        return files[0], report, files

    return api_ground, api_generate


def add_api_endpoints(config: AppConfig, default_engine: str | None) -> None:
    """Hidden components wired to `/ground` and `/generate` (call inside the Blocks context)."""
    api_ground, api_generate = make_api(config)
    with gr.Column(visible=False):
        image = gr.File(label="image (PNG/JPEG/TIFF/DICOM)")
        text = gr.Textbox(label="text (progression description)")
        grounder = gr.Textbox(value="rules", label="grounder ('rules' or 'vlm')")
        points_out = gr.JSON(label="points JSON")
        ground_btn = gr.Button("ground")
        points = gr.JSON(value=None, label="points (None: ground with the rules)")
        sigma = gr.Number(value=0.10, label="sigma_ratio (0.02–0.30)")
        bias = gr.Number(value=-1.0, label="bias_strength (<0: trained s(τ); 0: GBCA off)")
        seed = gr.Number(value=0, precision=0, label="seed")
        steps = gr.Number(value=0, precision=0, label="steps (0: engine default)")
        samples = gr.Number(value=1, precision=0, label="num_samples (1–8)")
        compare = gr.Checkbox(value=False, label="compare_gbca_off")
        source = gr.Textbox(value="", label="source_text")
        engine = gr.Textbox(value=default_engine or "", label="engine ('' = default)")
        layers = gr.Textbox(value="", label="layers ('' = vital layers)")
        followup = gr.Image(type="filepath", label="SYNTHETIC follow-up")
        report = gr.JSON(label="report")
        files = gr.File(file_count="multiple", label="files")
        generate_btn = gr.Button("generate")
    ground_btn.click(api_ground, [image, text, grounder], points_out, api_name="ground",
                     concurrency_id="gpu", concurrency_limit=1)
    generate_btn.click(
        api_generate, [image, text, points, sigma, bias, seed, steps, samples, compare, source, engine, layers],
        [followup, report, files], api_name="generate", concurrency_id="gpu", concurrency_limit=1,
    )
