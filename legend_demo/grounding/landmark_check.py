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

# Hand-traced on the same view (issue 19, ±25 px): each hemidiaphragm from its cardiophrenic end to the tip of the
# costophrenic angle, and the lateral lung borders (the inner chest wall) from the apex region down to the angle.
RG1_DIAPHRAGM: dict[str, list[tuple[float, float]]] = {
    "right": [(620.0, 1420.0), (500.0, 1405.0), (400.0, 1400.0), (300.0, 1420.0), (250.0, 1440.0), (200.0, 1465.0),
              (150.0, 1500.0), (120.0, 1540.0), (105.0, 1560.0)],
    "left": [(1440.0, 1450.0), (1500.0, 1450.0), (1560.0, 1455.0), (1600.0, 1478.0), (1640.0, 1515.0),
             (1665.0, 1555.0), (1680.0, 1600.0)],
}
RG1_CHEST_WALL: dict[str, list[tuple[float, float]]] = {
    "right": [(300.0, 300.0), (230.0, 450.0), (190.0, 600.0), (160.0, 800.0), (140.0, 1000.0), (125.0, 1200.0),
              (115.0, 1400.0), (105.0, 1560.0)],
    "left": [(1450.0, 300.0), (1530.0, 400.0), (1580.0, 600.0), (1620.0, 800.0), (1650.0, 1000.0), (1665.0, 1200.0),
             (1675.0, 1400.0), (1680.0, 1600.0)],
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

    from ..core.image_io import load_image

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


@dataclass(frozen=True)
class Export:
    """RG1 (or any film) as a user would export it from a viewer: the file's bytes and the hand marks moved with it.

    lines: the hand-traced hemidiaphragms and chest walls ("right diaphragm", "left chest wall", …) as point lists.
    """

    name: str
    data: bytes
    landmarks: Points
    lines: dict[str, list[tuple[float, float]]]


def viewer_export(array: np.ndarray, name: str, *, size: tuple[int, int] | None = None, angle: float = 0.0,
                  pad: int | tuple[int, int] = 0, border: float = 0.0, text: bool = False, fmt: str = "png",
                  quality: int = 85, marks: Points = RG1_LANDMARKS,
                  lines: dict[str, list[tuple[float, float]]] | None = None) -> Export:
    """An 8-bit PNG or JPEG of the displayed film (H, W) in [0, 1], optionally resized to `size` (W, H) — a changed
    aspect when it differs from the film's —, rotated by `angle` degrees with `border`-filled corners, padded with
    `border` bars, with burned-in text (name, date, technique, a side marker), as viewers export."""
    import io

    import cv2
    from PIL import Image

    if lines is None:
        lines = {f"{side} diaphragm": RG1_DIAPHRAGM[side] for side in ("right", "left")}
        lines.update({f"{side} chest wall": RG1_CHEST_WALL[side] for side in ("right", "left")})
    h, w = array.shape
    matrix = np.eye(3)
    out = np.asarray(array, np.float32)
    if size is not None:
        sx, sy = size[0] / w, size[1] / h
        out = cv2.resize(out, size, interpolation=cv2.INTER_AREA)
        matrix = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]]) @ matrix
    if angle:
        hh, ww = out.shape
        rotation = cv2.getRotationMatrix2D(((ww - 1) / 2, (hh - 1) / 2), angle, 1.0)
        out = cv2.warpAffine(out, rotation, (ww, hh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                             borderValue=border)
        matrix = np.vstack([rotation, [0, 0, 1]]) @ matrix
    px, py = pad if isinstance(pad, tuple) else (pad, pad)
    if px or py:
        out = np.pad(out, ((py, py), (px, px)), constant_values=border)
        matrix = np.array([[1, 0, px], [0, 1, py], [0, 0, 1]]) @ matrix
    u8 = np.round(np.clip(out, 0, 1) * 255).astype(np.uint8)
    if text:
        _burn_in_text(u8)
    buffer = io.BytesIO()
    Image.fromarray(u8).save(buffer, format="PNG" if fmt == "png" else "JPEG", **({} if fmt == "png" else {"quality": quality}))

    def move(x: float, y: float) -> tuple[float, float]:
        mx, my, _ = matrix @ np.array([x, y, 1.0])
        return float(mx), float(my)

    return Export(name, buffer.getvalue(), {k: move(*v) for k, v in marks.items()},
                  {k: [move(*p) for p in line] for k, line in lines.items()})


def rg1_exports(array: np.ndarray | None = None) -> list[Export]:
    """The exports the real-film checks use: a same-size PNG, a square letterboxed PNG with burned-in text, a
    stretched JPEG, a slightly rotated PNG with black corners, and a small JPEG with white bars."""
    array = rg1_array() if array is None else array
    h, w = array.shape
    side = 1024
    fitted = (round(side * w / h), side)
    return [
        viewer_export(array, "8-bit PNG, same size"),
        viewer_export(array, "8-bit PNG, 1024² letterbox, dark bars, burned-in text", size=fitted,
                      pad=((side - fitted[0]) // 2, 0), text=True),
        viewer_export(array, "JPEG q85, stretched 1.3× wide", size=(round(1.3 * 900), 956), fmt="jpeg"),
        viewer_export(array, "8-bit PNG, rotated 6°, black corners, text", size=(900, 956), angle=6.0, text=True),
        viewer_export(array, "JPEG q70, 600 px, white bars", size=(564, 600), pad=(40, 30), border=1.0, fmt="jpeg",
                      quality=70),
    ]


def _burn_in_text(u8: np.ndarray) -> None:
    """White overlay text in the corners, as a viewer burns in patient name, date, technique and a side marker."""
    import cv2

    hh, ww = u8.shape
    scale, thick = ww / 1000, max(2, ww // 450)
    for words, (fx, fy) in (("NAME^PATIENT  ID 00012345", (0.02, 0.035)), ("PA ERECT  120 kV  2.5 mAs", (0.02, 0.985)),
                            ("2024-03-05 08:41", (0.66, 0.035)), ("W 30000 L 15000", (0.70, 0.985))):
        cv2.putText(u8, words, (int(fx * ww), int(fy * hh)), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thick, cv2.LINE_AA)
    cv2.putText(u8, "R", (int(0.06 * ww), int(0.16 * hh)), cv2.FONT_HERSHEY_SIMPLEX, 3 * scale, 255, 2 * thick,
                cv2.LINE_AA)
