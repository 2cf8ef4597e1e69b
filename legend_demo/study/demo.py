"""A small ready-made study of SYNTHETIC chest drawings, so anyone can try reader-study mode (never patient data)."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..export import with_label_band
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
