"""Ready-made demo studies (never patient data).

* write_rendered_demo — the demo a reader can take seriously: pairs rendered by the synthetic-data generator
  (legend_demo.synth: digitally reconstructed radiographs of one real chest CT with a change inserted in 3D) give
  each case its prior and its "real" follow-up, and the app's default engine makes the "synthetic" follow-up from
  the same prior and progression text, exactly as `study create --generate` does (saved marked SYNTHETIC).
* write_demo_study — a seconds-fast study of drawn chest cartoons with a blurred "baseline" candidate, for tests
  and a first look at the pages (`demo-manifest --drawings`).
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..core.export import with_label_band
from ..synth.drawing import draw_chest

DEMO_LABEL = "SYNTHETIC DEMO IMAGE - not a patient"
DEMO_CASES = (  # (case id, finding on the prior, finding on the follow-up, progression text)
    ("demo01", "normal", "opacity-right-lower", "new right lower zone airspace opacity"),
    ("demo02", "effusion-left", "normal", "interval resolution of the left pleural effusion"),
    ("demo03", "normal", "cardiomegaly", "interval enlargement of the cardiac silhouette"),
    ("demo04", "opacity-left-upper", "normal", "improving left upper zone opacity"),
)
SIDE = 256


def _draw(finding: str, seed: int) -> np.ndarray:
    """The project's drawn chest (legend_demo.synth.drawing) with `finding`, at SIDE × SIDE; (H, W) in [0, 1]."""
    return draw_chest(SIDE, SIDE, seed, finding=finding)[0]


def _save(image: np.ndarray, path: Path) -> str:
    """Every demo image carries the same label band below it, so the label itself gives nothing away."""
    pixels = np.round(with_label_band(np.clip(image, 0.0, 1.0), [DEMO_LABEL]) * 255).astype(np.uint8)
    Image.fromarray(pixels, mode="L").save(path)
    return path.name


def write_demo_study(out_dir: str | Path) -> Path:
    """Write pair folders plus manifest.json (a 'real' stand-in and a 'baseline' candidate per case); return the manifest."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cases = []
    for index, (key, before, after, text) in enumerate(DEMO_CASES):
        folder = out / key
        folder.mkdir(exist_ok=True)
        seed = 100 + index
        _save(_draw(before, seed), folder / f"{key}-ref.png")
        _save(_draw(after, seed + 50), folder / f"{key}-flu.png")
        blurred = cv2.GaussianBlur(_draw(after, seed + 50), (0, 0), 3.0)  # a deliberately weak "baseline" candidate
        _save(blurred, folder / f"{key}-cand-baseline-blur.png")
        (folder / f"{key}.json").write_text(json.dumps({"progression-description": text, "synthetic": True}, indent=2))
        cases.append({
            "id": key, "prior": f"{key}/{key}-ref.png", "text": text,
            "candidates": [
                {"source": "real", "path": f"{key}/{key}-flu.png"},
                {"source": "baseline-blur", "path": f"{key}/{key}-cand-baseline-blur.png"},
            ],
        })
    manifest = {
        "name": "LeGend demo reader study (synthetic drawings)",
        "note": "Every image here is a SYNTHETIC drawing; 'real' marks the stand-in for a real follow-up.",
        "cases": cases,
    }
    path = out / "manifest.json"
    path.write_text(json.dumps(manifest, indent=2))
    return path


RENDERED_NAME = "LeGend demo reader study (rendered pairs vs the default engine)"
PAIRS_DIR = "pairs"  # the generator's pair folders (with its own manifest.json, masks and change records)
RENDERED_SOURCE_REAL = "real"  # the generator's own follow-up: the change as it was inserted in 3D


def write_rendered_demo(out_dir: str | Path, *, cases: int = 4, size: int = 256, seed: int = 0, engine: str | None = None,
                        log=lambda line: None) -> Path:
    """Render `cases` reference/follow-up pairs (legend_demo.synth, every kind of change, none unchanged), then make a
    synthetic follow-up of each prior with `engine` (default: the app's default engine); return manifest.json.

    Each case has two candidates — the rendered follow-up as "real" and the engine's as "synthetic" — so a reader
    judges a generated change against a physically rendered one of the same prior and text. The study's reading
    order keeps the two follow-ups of one prior far apart (legend_demo.study.assignment); `--pair-mode` shows them
    side by side instead."""
    from ..engines.registry import default_engine_name, load_engine
    from ..synth.dataset import SynthConfig, generate_dataset
    from .generate import generate_missing
    from .manifest import CandidateSpec, CaseSpec, Manifest

    if not 1 <= cases <= 200:
        raise ValueError(f"--cases must be from 1 to 200, got {cases}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    engine_name = engine or default_engine_name()
    if engine_name is None:
        load_engine(None)  # raises EngineUnavailableError with every engine's reason
    log(f"rendering {cases} pair(s) at {size} px with the synthetic-data generator (seed {seed})")
    pairs = generate_dataset(out / PAIRS_DIR, SynthConfig(n=cases, seed=seed, size=size, p_unchanged=0.0), workers=1,
                             progress=False)["pairs"]
    folder = {p["id"]: f"{PAIRS_DIR}/{p['folder']}" for p in pairs}
    specs = tuple(
        CaseSpec(p["id"], f"{folder[p['id']]}/{p['id']}-ref.png", p["description"], (
            CandidateSpec(RENDERED_SOURCE_REAL, f"{folder[p['id']]}/{p['id']}-flu.png", True),
            CandidateSpec(engine_name, None, False),
        )) for p in pairs)
    manifest = generate_missing(Manifest(RENDERED_NAME, out, specs, str(out)), engine_name, seed=seed, log=log)
    data = {
        "name": RENDERED_NAME,
        "note": (f"Every image is SYNTHETIC: priors and 'real' follow-ups are rendered by legend_demo.synth from one "
                 f"chest CT (seed {seed}); the '{engine_name}' follow-ups were made by that engine from the same priors "
                 "and texts. Not patient data."),
        "cases": [{"id": c.key, "prior": c.prior, "text": c.text,
                   "candidates": [{"source": d.source, "path": d.path, "real": d.is_real} for d in c.candidates]}
                  for c in manifest.cases],
    }
    path = out / "manifest.json"
    path.write_text(json.dumps(data, indent=2))
    return path
