"""Where the patient's sides are on a film, and whether it is a frontal chest at all (DICOM tags).

PatientOrientation (0020,0020) names the patient direction of the image rows (left → right) and of the
columns (top → bottom). Standard frontal display is L\\F: moving right in the image goes to the patient's LEFT,
moving down to the feet, so the patient's right lung is on the image left. A film stored mirrored (R\\F),
upside down (L\\H) or turned a quarter (F\\L, …) is put into standard display before grounding and the points
are mapped back, so points, prior, composite and export all stay in the film's own stored pixels.
Without the tag (PNG, JPEG, or a DICOM that lacks it) standard display is assumed and the result says so.

ViewPosition LL / RL / LATERAL is a lateral view: LateralViewError (a ValueError) is raised, for grounding and
for generation. BodyPartExamined other than chest and ImageLaterality L / R (one side only) give warnings.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

_DIRECTIONS = re.compile(r"[LRAPHF]+")
LATERAL_VIEWS = ("LL", "RL", "LAT", "LATERAL", "LLAT", "RLAT", "XTABLE LATERAL")
OBLIQUE_VIEWS = ("LAO", "RAO", "LPO", "RPO", "LLO", "RLO", "OBLIQUE")
DECUBITUS_VIEWS = ("LLD", "RLD", "LEFT DECUBITUS", "RIGHT DECUBITUS", "DECUBITUS")
CHEST_PARTS = ("CHEST", "THORAX", "LUNG", "PULM")
NOT_A_CHEST = "this does not look like a frontal chest radiograph"


class LateralViewError(ValueError):
    """A lateral view: lesion points and follow-ups need a frontal (PA/AP) chest film."""


@dataclass(frozen=True)
class Orientation:
    """How to bring stored pixels into standard display (patient right on the image left, head up)."""

    transpose: bool = False  # rows and columns swapped (the film is turned a quarter)
    flip_x: bool = False  # mirror left ↔ right (after any transpose)
    flip_y: bool = False  # mirror top ↔ bottom (after any transpose)
    frontal: bool = True  # False: a direction is anterior/posterior, i.e. a lateral (or axial) projection
    source: str = "no orientation tags: standard display assumed (patient right on the image left)"

    @property
    def is_standard(self) -> bool:
        return not (self.transpose or self.flip_x or self.flip_y)

    def to_standard(self, array: np.ndarray) -> np.ndarray:
        """(H, W) stored pixels → the same pixels in standard display."""
        out = array.T if self.transpose else array
        if self.flip_x:
            out = out[:, ::-1]
        if self.flip_y:
            out = out[::-1, :]
        return np.ascontiguousarray(out)

    def standard_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """(W, H) of the stored image → (W, H) in standard display."""
        return (size[1], size[0]) if self.transpose else size

    def to_stored(self, x: float, y: float, stored_size: tuple[int, int]) -> tuple[float, float]:
        """A point in standard-display pixels → the stored image's pixels (W, H = stored_size)."""
        width, height = self.standard_size(stored_size)
        if self.flip_x:
            x = width - 1 - x
        if self.flip_y:
            y = height - 1 - y
        return (y, x) if self.transpose else (x, y)


def read_orientation(info: Mapping[str, Any] | None) -> tuple[Orientation, list[str]]:
    """Orientation from a DICOM's PatientOrientation (any pydicom rendering: 'L\\F', "['L', 'F']", a list)."""
    value = (info or {}).get("PatientOrientation")
    if value in (None, "", [], ()):
        return Orientation(), []
    tokens = _DIRECTIONS.findall(str(value).upper()) if isinstance(value, str) else [str(v).upper() for v in value]
    shown = "\\".join(tokens)
    if len(tokens) != 2 or not all(tokens):
        return Orientation(), [f"PatientOrientation {shown or value!r} is not two directions; standard display assumed"]
    rows, columns = tokens[0][0], tokens[1][0]
    if rows in "AP" or columns in "AP":
        return Orientation(frontal=False, source=f"PatientOrientation {shown}: not a frontal projection"), []
    transpose = rows in "HF"
    if transpose:
        rows, columns = columns, rows
    if rows not in "LR" or columns not in "HF":
        return Orientation(), [f"PatientOrientation {shown} is not a frontal chest orientation; "
                               "standard display assumed"]
    orientation = Orientation(transpose, rows == "R", columns == "H", True, _describe(shown, transpose, rows, columns))
    return orientation, []


def is_lateral(info: Mapping[str, Any] | None) -> bool:
    """ViewPosition names a lateral view, or PatientOrientation has an anterior/posterior direction."""
    info = info or {}
    view = str(info.get("ViewPosition") or "").strip().upper()
    if view in LATERAL_VIEWS or (view.startswith("LAT") and "DECUB" not in view):
        return True
    return not read_orientation(info)[0].frontal


def check_frontal_chest(image: Any) -> list[str]:
    """Raise LateralViewError for a lateral view; otherwise warnings about view, body part and side tags.

    `image`: a LoadedImage (anything with .dicom_info) or the dicom_info mapping itself. Call it wherever
    grounding or generation starts (ground(), /generate, the CLI, the UI) so a lateral never gets points.
    """
    info = _info(image)
    view = str(info.get("ViewPosition") or "").strip().upper()
    if is_lateral(info):
        raise LateralViewError(
            f"this is a lateral view (ViewPosition {view or '?'}, PatientOrientation "
            f"{_shown(info.get('PatientOrientation'))}); lesion points and follow-ups need a frontal PA or AP chest "
            "film. Upload the frontal view of the study.")
    warnings = []
    if view in OBLIQUE_VIEWS:
        warnings.append(f"ViewPosition {view} is an oblique view; the patient's sides may be misplaced")
    elif view in DECUBITUS_VIEWS:
        warnings.append(f"ViewPosition {view} is a decubitus film; check that the image is shown head up")
    part = str(info.get("BodyPartExamined") or "").strip().upper()
    if part and not any(word in part for word in CHEST_PARTS):
        warnings.append(f"BodyPartExamined is {part!r}, not the chest: {NOT_A_CHEST}; the points may be meaningless")
    side = str(info.get("ImageLaterality") or "").strip().upper()
    if side in ("L", "R"):
        warnings.append(f"ImageLaterality {side} says only the patient's {'left' if side == 'L' else 'right'} "
                        "side is imaged; a frontal chest film shows both")
    warnings += read_orientation(info)[1]
    return warnings


def patient_sides(image: Any) -> dict[str, str]:
    """Where each patient side lies on the film AS STORED: {"right": "image left", "left": "image right"} on a
    standard film, swapped on a mirrored one (R\\F), "image top"/"image bottom" on a film turned a quarter."""
    orientation, _ = read_orientation(_info(image))
    size = (100, 100)
    out = {}
    for side, x in (("right", 25.0), ("left", 75.0)):  # the lungs' centres in standard display
        sx, sy = orientation.to_stored(x, 50.0, size)
        if orientation.transpose:
            out[side] = "image top" if sy < 50 else "image bottom"
        else:
            out[side] = "image left" if sx < 50 else "image right"
    return out


def _info(image: Any) -> Mapping[str, Any]:
    if isinstance(image, Mapping):
        return image
    return getattr(image, "dicom_info", None) or {}


def _shown(value: Any) -> str:
    if value in (None, "", [], ()):
        return "absent"
    tokens = _DIRECTIONS.findall(str(value).upper()) if isinstance(value, str) else [str(v) for v in value]
    return "\\".join(tokens) or str(value)


def _describe(shown: str, transpose: bool, rows: str, columns: str) -> str:
    if not transpose and rows == "L" and columns == "F":
        return f"PatientOrientation {shown}: standard display (patient right on the image left)"
    steps = []
    if transpose:
        steps.append("turned a quarter")
    if rows == "R":
        steps.append("mirrored left-right")
    if columns == "H":
        steps.append("upside down")
    return f"PatientOrientation {shown}: film stored {' and '.join(steps)}; sides mapped to the patient's"
