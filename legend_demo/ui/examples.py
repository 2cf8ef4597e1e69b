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

from ..core.points import LesionPoint
from ..synth.drawing import FINDINGS, draw_chest
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
        """A render is captioned by its own description (two renders may show the same kind of change)."""
        what = self.text.rstrip(". ") if self.path else self.name
        return f"SYNTHETIC {self.kind}: {what}"

    def lesion_points(self) -> list[LesionPoint]:
        """Its stored points; for a drawing, where its finding was drawn (at WIDTH × HEIGHT)."""
        if self.path is not None:
            return list(self.points)
        fx, fy, label = FINDINGS[self.finding]
        return [LesionPoint(fx * WIDTH, fy * HEIGHT, 5, label)]


EXAMPLES = (
    Example("right lower zone opacity", "opacity-right-lower", "interval increase of right lower lobe consolidation", 1),
    Example("left pleural effusion", "effusion-left", "new small left pleural effusion", 2),
    Example("enlarged heart", "cardiomegaly", "slight increase in cardiomegaly", 3),
    Example("left upper zone opacity", "opacity-left-upper", "improving left upper zone opacity", 4),
    Example("no finding", "normal", "new right mid zone airspace opacity", 5),
)


def example_files(cache_dir: Path | None = None) -> list[tuple[str, Example]]:
    """Write each example once as PNG (file names say 'synthetic') and return [(path, example)]."""
    folder = cache_dir or Path(tempfile.gettempdir()) / "legend_demo_examples"
    folder.mkdir(parents=True, exist_ok=True)
    items = [(example.path, example) for example in shipped_examples()]
    for example in EXAMPLES:
        path = folder / f"synthetic_{example.finding}_{example.seed}.png"
        if not path.exists():
            pixels = (draw_chest(WIDTH, HEIGHT, example.seed, finding=example.finding)[0] * 255).round().astype(np.uint8)
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
    from ..core.export import SYNTHETIC_LABEL, with_label_band
    from ..core.image_io import load_image

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
