"""`python -m legend_demo generate`: one synthetic follow-up with its prior, attention maps and report.json."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..grounding.registry import DEFAULT_GROUNDER, GROUNDERS
from ..method.layer_spec import parse_layers
from ..core.points import as_points, points_json


def register(subparsers) -> None:
    p = subparsers.add_parser("generate", help="generate a synthetic follow-up radiograph")
    p.add_argument("--image", help="prior radiograph: PNG, JPEG, TIFF or DICOM")
    p.add_argument("--text", help="progression description, e.g. 'new right lower lobe consolidation'")
    p.add_argument("--jsonl", default=None,
                   help="batch: one {\"image\", \"text\"[, \"id\", \"points\", \"source_text\", \"seed\"]} per line; each "
                        "case goes to OUT/<id>/; shards by rank under torchrun (commands/generate_batch.py)")
    p.add_argument("--source-text", default=None, help="description of the prior (source prompt)")
    p.add_argument("--points", default=None, help="lesion points: a JSON list or a JSON file; default: ground the text")
    p.add_argument("--grounder", default=DEFAULT_GROUNDER, choices=GROUNDERS, help="grounder used when --points is absent")
    p.add_argument("--sigma-ratio", type=float, default=0.10)
    p.add_argument("--bias-strength", type=float, default=None, help="fixed GBCA strength; 0 = off; default: trained s(τ)")
    p.add_argument("--vital-layers", default=None, help="comma-separated global layer indices (default: the engine's)")
    p.add_argument("--no-inject", action="store_true", help="switch off vital-layer K/V injection")
    p.add_argument("--capture-layers", default=None, help="comma-separated layers to capture (default: vital layers)")
    p.add_argument("--engine", default=None, help="engine name (default: the first available)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise-mix", type=float, default=0.0, help="η of fresh seed noise mixed into the inverted noise")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--output", choices=("composite", "model-view"), default="composite",
                   help="composite (default): only the change, added to the prior film at its own resolution inside "
                        "the edit region; model-view: the raw engine output upsampled to the film (thesis reproduction)")
    p.add_argument("--region-scale", type=float, default=1.0,
                   help="edit region size, × the Gaussian prior's σ (0.25–4, default 1)")
    p.add_argument("--no-keep-blend", action="store_true",
                   help="switch off keep-region blending (edit row replaced by the source row outside the region)")
    p.add_argument("--dicom", action="store_true", help="also write followup.dcm (Secondary Capture, SYNTHETIC)")
    p.add_argument("--out", required=True, help="output folder (with --jsonl: the batch's root folder)")
    p.set_defaults(func=run)


def _read_points(spec: str):
    """--points: a JSON file or JSON text (points.points_json)."""
    if spec.lstrip()[:1] in ("[", "{"):  # JSON text (a long list is no file name)
        return as_points(points_json(spec, "--points") or [])
    path = Path(spec)
    return as_points(points_json(path.read_text() if path.is_file() else spec, "--points") or [])


def _check_out(out: Path) -> None:
    """ValueError unless --out is an existing folder or can be made as one."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {str(out)!r} is an existing file; give a folder for the outputs")
    parent = next((p for p in (out, *out.parents) if p.exists()), None)
    if parent is not None and not parent.is_dir():
        raise ValueError(f"--out {str(out)!r} lies under the file {str(parent)!r}; give a folder for the outputs")


def run(args: argparse.Namespace) -> int:
    if args.jsonl:
        if args.image or args.text or args.points:
            raise ValueError("give either --jsonl or --image with --text (and --points), not both")
        from .generate_batch import run_batch

        return run_batch(args, generate_one)
    if not args.image or args.text is None:
        raise ValueError("generate needs --image PATH and --text TEXT (or --jsonl FILE)")
    print(json.dumps(generate_one(args)))
    return 0


def generate_one(args: argparse.Namespace) -> dict:
    """One follow-up from the parsed options, written to args.out; returns {"out", "engine", "warnings"}."""
    from ..method.edit_region import EditRegion
    from ..engines.base import GenerationRequest
    from ..engines.registry import load_engine
    from ..grounding import check_frontal_chest, check_request
    from ..core.image_io import load_image
    from .generate_outputs import write_outputs

    _check_out(Path(args.out))  # before any work: a bad --out must not cost a whole generation
    check_request(args.text, args.grounder if args.points is None else DEFAULT_GROUNDER)  # text limit, VLM weights
    image = load_image(args.image)
    view_warnings = check_frontal_chest(image)  # LateralViewError for a lateral view
    warnings: list[str] = []
    if args.points is not None:
        points = _read_points(args.points)
        warnings.extend(view_warnings)  # (grounding reports them itself otherwise)
    else:
        import warnings as warnings_module

        from ..grounding import predict_points

        with warnings_module.catch_warnings(record=True) as caught:
            warnings_module.simplefilter("always")
            points = predict_points(image, args.text, grounder=args.grounder)
        warnings.extend(str(w.message) for w in caught)
    request = GenerationRequest(
        image=image,
        progression_text=args.text,
        source_text=args.source_text or "",
        points=points,
        sigma_ratio=args.sigma_ratio,
        bias_strength=args.bias_strength,
        vital_layers=parse_layers(args.vital_layers, "--vital-layers"),
        inject=not args.no_inject,
        steps=args.steps,
        seed=args.seed,
        noise_mix=args.noise_mix,
        capture_layers=parse_layers(args.capture_layers, "--capture-layers"),
        output_mode=args.output,
        edit_region=EditRegion(scale=args.region_scale, keep_blend=not args.no_keep_blend),
    )
    if not request.points:
        warnings.append("no lesion points: GBCA adds no bias (the text named nothing localisable)")
    engine = load_engine(args.engine)
    result = engine.generate(request, progress=_print_progress)
    out = write_outputs(result, image, Path(args.out), dicom=args.dicom, warnings=warnings)
    return {"out": str(out), "engine": result.engine, "warnings": warnings}


def _print_progress(phase: str, step: int, total: int) -> None:
    print(f"\r{phase} {step}/{total}", end="" if step < total else "\n", file=sys.stderr, flush=True)
