"""The examples gallery: SYNTHETIC images only, never patient data, and every caption says so.

First the held-out cases of the project's synthetic data set shipped in assets/examples/ (rendered from a CT,
see `python -m legend_demo synth`), then cartoon drawings made here with numpy/OpenCV.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT = 448, 512  # deliberately not square: exercises the pad/crop framing
SHIPPED = Path(__file__).resolve().parents[2] / "assets" / "examples"


@dataclass(frozen=True)
class Example:
    name: str
    finding: str  # "opacity-right-lower", "effusion-left", "cardiomegaly", "opacity-left-upper", "normal"
    text: str  # progression description offered with it
    seed: int
    path: str | None = None  # a shipped synthetic render; None = draw the cartoon

    @property
    def caption(self) -> str:
        kind = "render from CT" if self.path else "drawing"
        return f"SYNTHETIC {kind} — {self.name}"


EXAMPLES = (
    Example("right lower zone opacity", "opacity-right-lower", "interval increase of right lower lobe consolidation", 1),
    Example("left pleural effusion", "effusion-left", "new small left pleural effusion", 2),
    Example("enlarged heart", "cardiomegaly", "slight increase in cardiomegaly", 3),
    Example("left upper zone opacity", "opacity-left-upper", "improving left upper zone opacity", 4),
    Example("no finding", "normal", "new right mid zone airspace opacity", 5),
)


def draw_chest(finding: str = "normal", seed: int = 0, size: tuple[int, int] = (WIDTH, HEIGHT)) -> np.ndarray:
    """(H, W) float32 in [0, 1], dense tissue bright: a cartoon PA chest film with one finding."""
    width, height = size
    rng = np.random.default_rng(seed)
    img = np.full((height, width), 0.04, np.float32)
    cx = width // 2
    cv2.ellipse(img, (cx, int(0.53 * height)), (int(0.44 * width), int(0.47 * height)), 0, 0, 360, 0.7, -1)
    lungs = np.zeros_like(img)
    for side in (-1, 1):  # image-left is the patient's right
        centre = (cx + side * int(0.2 * width), int(0.5 * height))
        cv2.ellipse(lungs, centre, (int(0.15 * width), int(0.3 * height)), side * 8, 0, 360, 1.0, -1)
    img = np.where(lungs > 0, 0.2, img).astype(np.float32)
    _draw_ribs(img, lungs, cx, height)
    cv2.rectangle(img, (cx - int(0.035 * width), 0), (cx + int(0.035 * width), height), 0.88, -1)  # spine
    heart_axes = (int(0.17 * width), int(0.12 * height)) if finding == "cardiomegaly" else (int(0.12 * width), int(0.1 * height))
    cv2.ellipse(img, (cx + int(0.05 * width), int(0.66 * height)), heart_axes, 20, 0, 360, 0.82, -1)
    _draw_finding(img, lungs, finding, width, height)
    img = cv2.GaussianBlur(img, (0, 0), 2.0)
    img += rng.normal(0.0, 0.015, img.shape).astype(np.float32)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def _draw_ribs(img: np.ndarray, lungs: np.ndarray, cx: int, height: int) -> None:
    ribs = np.zeros_like(img)
    for k in range(8):
        y = int((0.22 + 0.075 * k) * height)
        cv2.ellipse(ribs, (cx, y), (int(0.42 * img.shape[1]), int(0.06 * height)), 0, 200, 340, 1.0, 3)
    img += 0.08 * ribs * (lungs > 0)


def _draw_finding(img: np.ndarray, lungs: np.ndarray, finding: str, width: int, height: int) -> None:
    blob = np.zeros_like(img)
    if finding.startswith("opacity"):
        x = 0.3 if "right" in finding else 0.7  # patient right = image left
        y = 0.62 if "lower" in finding else 0.32
        cv2.circle(blob, (int(x * width), int(y * height)), int(0.07 * width), 1.0, -1)
        blob = cv2.GaussianBlur(blob, (0, 0), 0.03 * width)
        img += 0.35 * blob * (lungs > 0)
    elif finding == "effusion-left":
        cv2.ellipse(blob, (int(0.72 * width), int(0.76 * height)), (int(0.13 * width), int(0.06 * height)), 0, 0, 360, 1.0, -1)
        img += 0.3 * cv2.GaussianBlur(blob, (0, 0), 6.0)


def example_files(cache_dir: Path | None = None) -> list[tuple[str, Example]]:
    """Write each example once as PNG (file names say 'synthetic') and return [(path, example)]."""
    folder = cache_dir or Path(tempfile.gettempdir()) / "legend_demo_examples"
    folder.mkdir(parents=True, exist_ok=True)
    items = [(example.path, example) for example in shipped_examples()]
    for example in EXAMPLES:
        path = folder / f"synthetic_{example.finding}_{example.seed}.png"
        if not path.exists():
            pixels = (draw_chest(example.finding, example.seed) * 255).round().astype(np.uint8)
            cv2.imwrite(str(path), pixels)
        items.append((str(path), example))
    return items


def shipped_examples(folder: Path = SHIPPED) -> list[Example]:
    """The synthetic test-split cases in assets/examples/examples.json (empty when absent)."""
    manifest = folder / "examples.json"
    if not manifest.is_file():
        return []
    entries = json.loads(manifest.read_text())["examples"]
    return [
        Example(e["name"], e["change"]["type"], e["text"], 0, str(folder / e["file"]))
        for e in entries
        if (folder / e["file"]).is_file()
    ]
