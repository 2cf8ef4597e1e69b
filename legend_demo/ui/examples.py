"""The examples gallery: SYNTHETIC images only, never patient data, and every caption says so.

First the held-out cases of the project's synthetic data set shipped in assets/examples/ (rendered from a CT,
see `python -m legend_demo synth`), then cartoon drawings made here with numpy/OpenCV. Each example carries its
lesion points (stored in examples.json for the renders, where the finding was drawn for the drawings), so
picking one loads its film, its description and its points. The gallery shows labelled thumbnails (the
SYNTHETIC band below each picture); the film loaded is the example itself.
"""
from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..points import LesionPoint
from .point_labels import clinician_label

WIDTH, HEIGHT = 448, 512  # deliberately not square: exercises the pad/crop framing
THUMB_SIDE = 256  # gallery thumbnails (the band below is drawn at this width)
SHIPPED = Path(__file__).resolve().parents[2] / "assets" / "examples"


@dataclass(frozen=True)
class Example:
    name: str
    finding: str  # "opacity-right-lower", "effusion-left", "cardiomegaly", "opacity-left-upper", "normal"
    text: str  # progression description offered with it
    seed: int
    path: str | None = None  # a shipped synthetic render; None = draw the cartoon
    points: tuple[LesionPoint, ...] = ()  # lesion points in the example's pixels (labelled "finding, change (zone)")
    source_text: str = ""

    @property
    def kind(self) -> str:
        return "CT render" if self.path else "drawing"

    @property
    def caption(self) -> str:
        return f"SYNTHETIC {self.kind}: {self.name}"

    def lesion_points(self) -> list[LesionPoint]:
        """Its stored points; for a drawing, where its finding was drawn (at WIDTH × HEIGHT)."""
        if self.path is not None:
            return list(self.points)
        return [LesionPoint(fx * WIDTH, fy * HEIGHT, 5, label) for fx, fy, label in DRAWN_POINTS[self.finding]]


EXAMPLES = (
    Example("right lower zone opacity", "opacity-right-lower", "interval increase of right lower lobe consolidation", 1),
    Example("left pleural effusion", "effusion-left", "new small left pleural effusion", 2),
    Example("enlarged heart", "cardiomegaly", "slight increase in cardiomegaly", 3),
    Example("left upper zone opacity", "opacity-left-upper", "improving left upper zone opacity", 4),
    Example("no finding", "normal", "new right mid zone airspace opacity", 5),
)


# Where each drawing's finding is (fractions of W, H), and its label; "normal" marks where its text's change goes.
DRAWN_POINTS = {
    "opacity-right-lower": ((0.30, 0.62, "consolidation, increased (right lower lobe)"),),
    "effusion-left": ((0.72, 0.76, "pleural effusion, new (left costophrenic angle)"),),
    "cardiomegaly": ((0.55, 0.66, "cardiomegaly, increased (heart)"),),
    "opacity-left-upper": ((0.70, 0.32, "opacity, decreased (left upper zone)"),),
    "normal": ((0.30, 0.45, "airspace opacity, new (right mid zone)"),),
}


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
        x, y, _ = DRAWN_POINTS[finding][0]  # patient right = image left
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
        Example(e["name"].removesuffix(" (none)"), e["change"]["type"], e["text"], 0, str(folder / e["file"]),
                tuple(_stored_points(e)), e.get("source_text", ""))
        for e in entries
        if (folder / e["file"]).is_file()
    ]


def _stored_points(entry: dict) -> list[LesionPoint]:
    """An examples.json entry's lesion points, labelled from its change (type, direction, side, lobe/zone)."""
    change = entry.get("change", {})
    label = clinician_label(f"{change.get('type', 'finding')}, {change.get('direction', 'no stated change')} "
                            f"({_site(change)})")
    return [LesionPoint(float(p["x"]), float(p["y"]), int(p.get("confidence", 5)), label)
            for p in entry.get("lesion_points", [])]


def _site(change: dict) -> str:
    """The grounder's compact site for a stored change: "RLL", "R costophrenic", "cardiac"."""
    from ..grounding.rules import LOBE_CODES

    side, lobe, zone = change.get("side"), change.get("lobe"), change.get("zone")
    if side in ("right", "left"):
        if lobe and (side, lobe) in LOBE_CODES:
            return LOBE_CODES[(side, lobe)]
        return f"{side[0].upper()} {zone or 'lung'}"
    return zone or "lung"


def gallery_items(cache_dir: Path | None = None) -> list[tuple[str, str]]:
    """(thumbnail path, caption) per example: each thumbnail carries the SYNTHETIC band below its pixels."""
    from ..export import SYNTHETIC_LABEL, with_label_band
    from ..image_io import load_image

    folder = cache_dir or Path(tempfile.gettempdir()) / "legend_demo_examples"
    items = []
    for path, example in example_files(cache_dir):
        lines = [SYNTHETIC_LABEL, f"{example.kind}, not patient data"]
        tag = hashlib.sha1(repr((THUMB_SIDE, lines)).encode()).hexdigest()[:8]  # a new label gives a new file
        thumb = folder / f"labelled_{Path(path).stem}_{tag}.png"
        if not thumb.exists():
            image = load_image(path).array
            scale = THUMB_SIDE / max(image.shape)
            small = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                               interpolation=cv2.INTER_AREA)
            banded = with_label_band(small, lines)
            cv2.imwrite(str(thumb), (np.clip(banded, 0, 1) * 255).round().astype(np.uint8))
        items.append((str(thumb), example.caption))
    return items
