"""Hand-marked lung landmarks on pydicom-data's RG1_UNCI.dcm and transformed copies of it, to measure the
lung-field fit (tests/test_grounding_landmarks.py, benchmarks/bench_grounding.py).

RG1_UNCI.dcm: a real PA chest CR, 1841 × 1955 px (W × H), MONOCHROME1, PatientOrientation L\\F, many round
nodules. The six landmarks were marked by hand (this project, on a CLAHE-enhanced view with a 25 px grid,
uncertainty about ±20 px ≈ 0.01 H): the apex is the top of the aerated lung above the clavicle, the dome the
top of the hemidiaphragm, the costophrenic angle the tip of the lateral recess.
Every transform maps the landmarks with it, so errors are always against the hand marks, in fractions of the
height of the image that was analysed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# (x, y) pixels of RG1_UNCI.dcm as stored; "right"/"left" are the patient's sides (right = image left).
RG1_LANDMARKS: dict[str, tuple[float, float]] = {
    "right apex": (700.0, 175.0),
    "right dome": (420.0, 1405.0),
    "right costophrenic": (115.0, 1560.0),
    "left apex": (1140.0, 155.0),
    "left dome": (1460.0, 1452.0),
    "left costophrenic": (1650.0, 1600.0),
}

Points = dict[str, tuple[float, float]]


@dataclass(frozen=True)
class Variant:
    """A transformed copy of a film: the new pixels and the landmarks moved with them."""

    name: str
    array: np.ndarray  # (H', W') float32 in [0, 1]
    landmarks: Points
    orientation: tuple[str, str] = ("L", "F")  # PatientOrientation the copy would carry


def rg1_array() -> np.ndarray:
    """RG1_UNCI.dcm through the app's own loader: (1955, 1841) float32, lungs dark."""
    from pydicom.data import get_testdata_file

    from ..image_io import load_image

    return load_image(get_testdata_file("RG1_UNCI.dcm")).array


def variants(array: np.ndarray, marks: Points = RG1_LANDMARKS) -> list[Variant]:
    """The film and copies cropped, padded, scaled, gamma-changed, mirrored (with R\\F), rotated, marked, noisy."""
    import cv2

    h, w = array.shape
    out = [Variant("original", array, dict(marks))]
    out.append(_resized("1024x1024 8-bit PNG", array, marks, (1024, 1024), quantise=True))
    out.append(_resized("quarter size", array, marks, (w // 4, h // 4)))
    out.append(_cropped("tight crop", array, marks, (0.03, 0.04, 0.97, 0.90)))
    out.append(_cropped("off-centre crop", array, marks, (0.0, 0.0, 0.93, 0.86)))
    out.append(_padded("wide black pads", array, marks, (int(0.3 * w), 0), 0.0))
    out.append(_padded("tall white pads", array, marks, (0, int(0.2 * h)), 1.0))
    out.append(_mapped("gamma 0.5", array ** 0.5, marks))
    out.append(_mapped("gamma 2.0", array ** 2.0, marks))
    out.append(_mapped("low contrast", 0.3 + 0.3 * array, marks))
    noise = np.random.default_rng(0).normal(0.0, 0.04, array.shape).astype(np.float32)
    out.append(_mapped("noise sigma 0.04", np.clip(array + noise, 0, 1), marks))
    out.append(_mapped("markers and a tube", _with_markers(array), marks))
    out.append(Variant("mirrored, R\\F", np.ascontiguousarray(array[:, ::-1]),
                       {k: (w - 1 - x, y) for k, (x, y) in marks.items()}, ("R", "F")))
    angle = 5.0
    matrix = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
    rotated = cv2.warpAffine(array, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    out.append(Variant("rotated 5 degrees", rotated, {k: tuple(matrix @ np.array([x, y, 1.0]))
                                                       for k, (x, y) in marks.items()}))
    return out


def landmark_errors(found: Points, truth: Points, height: int) -> dict[str, tuple[float, float]]:
    """Per landmark: (distance, vertical distance) between found and true points, in fractions of `height`."""
    errors = {}
    for name, (tx, ty) in truth.items():
        if name in found:
            fx, fy = found[name]
            errors[name] = (float(np.hypot(fx - tx, fy - ty) / height), float(abs(fy - ty) / height))
    return errors


def _mapped(name: str, array: np.ndarray, marks: Points) -> Variant:
    return Variant(name, np.clip(array, 0, 1).astype(np.float32), dict(marks))


def _resized(name: str, array: np.ndarray, marks: Points, size: tuple[int, int], quantise: bool = False) -> Variant:
    import cv2

    h, w = array.shape
    out = cv2.resize(array, size, interpolation=cv2.INTER_AREA)
    if quantise:
        out = np.round(out * 255) / 255
    sx, sy = size[0] / w, size[1] / h
    return Variant(name, out.astype(np.float32), {k: ((x + 0.5) * sx - 0.5, (y + 0.5) * sy - 0.5)
                                                  for k, (x, y) in marks.items()})


def _cropped(name: str, array: np.ndarray, marks: Points, box: tuple[float, float, float, float]) -> Variant:
    h, w = array.shape
    x0, y0, x1, y1 = int(box[0] * w), int(box[1] * h), int(box[2] * w), int(box[3] * h)
    return Variant(name, np.ascontiguousarray(array[y0:y1, x0:x1]),
                   {k: (x - x0, y - y0) for k, (x, y) in marks.items()})


def _padded(name: str, array: np.ndarray, marks: Points, pad: tuple[int, int], value: float) -> Variant:
    px, py = pad
    out = np.pad(array, ((py, py), (px, px)), constant_values=value)
    return Variant(name, out.astype(np.float32), {k: (x + px, y + py) for k, (x, y) in marks.items()})


def _with_markers(array: np.ndarray) -> np.ndarray:
    """Burned-in text, a bright side marker with a dark letter, and a white line like a catheter."""
    import cv2

    h, w = array.shape
    white = np.zeros((h, w), np.uint8)  # drawn in 8 bits (OpenCV text needs it), then laid over the film
    black = np.zeros((h, w), np.uint8)
    cv2.putText(white, "PA ERECT 120kV", (int(0.05 * w), int(0.05 * h)), cv2.FONT_HERSHEY_SIMPLEX, w / 800, 255, 4)
    cv2.rectangle(white, (int(0.85 * w), int(0.1 * h)), (int(0.92 * w), int(0.17 * h)), 255, -1)
    cv2.putText(black, "L", (int(0.86 * w), int(0.16 * h)), cv2.FONT_HERSHEY_SIMPLEX, w / 500, 255, 6)
    points = np.array([[0.38 * w, 0.02 * h], [0.45 * w, 0.3 * h], [0.47 * w, 0.55 * h]], np.int32)
    cv2.polylines(white, [points], False, 255, max(2, w // 300))
    out = np.where(white > 0, 1.0, array)
    return np.where(black > 0, 0.0, out).astype(np.float32)
