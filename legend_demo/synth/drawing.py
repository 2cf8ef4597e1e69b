"""The one drawn chest-like radiograph (no patient data): grounding tests, the app's example drawings, the demo
reader study and benchmarks all use it.

Bright body ellipse, two dark lung ellipses (returned, so tests can check where points land), bright spine, a heart
shadow, mild noise, and optionally one finding drawn where FINDINGS says (fractions of the width and height;
patient right = image left).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# finding → (x, y) of its centre as fractions of (W, H), and the label of a point placed there
FINDINGS = {
    "opacity-right-lower": (0.30, 0.62, "consolidation, increased (right lower lobe)"),
    "effusion-left": (0.70, 0.78, "pleural effusion, new (left costophrenic angle)"),
    "cardiomegaly": (0.53, 0.68, "cardiomegaly, increased (heart)"),
    "opacity-left-upper": (0.70, 0.30, "opacity, decreased (left upper zone)"),
    "normal": (0.30, 0.45, "airspace opacity, new (right mid zone)"),  # where a "new" change would go
}


@dataclass(frozen=True)
class Ellipse:
    centre: tuple[float, float]  # (x, y) pixels
    axes: tuple[float, float]  # (semi-axis x, semi-axis y) pixels

    def contains(self, x: float, y: float) -> bool:
        return ((x - self.centre[0]) / self.axes[0]) ** 2 + ((y - self.centre[1]) / self.axes[1]) ** 2 <= 1.0

    @property
    def top(self) -> float:
        return self.centre[1] - self.axes[1]

    @property
    def height(self) -> float:
        return 2 * self.axes[1]


def draw_chest(width: int = 400, height: int = 480, seed: int = 0, shift_x: float = 0.0, finding: str = "normal",
               ) -> tuple[np.ndarray, Ellipse, Ellipse]:
    """(H, W) float32 in [0, 1] and the image-left and image-right lung ellipses. shift_x moves the patient."""
    import cv2

    if finding not in FINDINGS:
        raise ValueError(f"finding={finding!r}; choose one of {', '.join(FINDINGS)}")
    image = np.full((height, width), 0.05, np.float32)  # (H, W) air around the patient
    mid = width * (0.5 + shift_x)
    cv2.ellipse(image, (round(mid), round(height * 0.53)), (round(width * 0.44), round(height * 0.47)),
                0, 0, 360, 0.75, -1)
    lungs, lung_mask = [], np.zeros_like(image)
    for dx in (-0.20, 0.20):
        lung = Ellipse((mid + dx * width, 0.50 * height), (0.14 * width, 0.32 * height))
        for canvas, value in ((image, 0.22), (lung_mask, 1.0)):
            cv2.ellipse(canvas, (round(lung.centre[0]), round(lung.centre[1])),
                        (round(lung.axes[0]), round(lung.axes[1])), 0, 0, 360, value, -1)
        lungs.append(lung)
    heart = (0.13, 0.13) if finding == "cardiomegaly" else (0.09, 0.11)
    cv2.ellipse(image, (round(mid + 0.03 * width), round(0.68 * height)), (round(heart[0] * width),
                round(heart[1] * height)), 0, 0, 360, 0.85, -1)  # heart shadow
    cv2.rectangle(image, (round(mid - 0.03 * width), 0), (round(mid + 0.03 * width), height), 0.9, -1)  # spine
    _draw_finding(image, lung_mask, finding, width, height, mid - width / 2)
    noise = np.random.default_rng(seed).normal(0.0, 0.02, image.shape).astype(np.float32)
    return np.clip(image + noise, 0.0, 1.0), lungs[0], lungs[1]


def _draw_finding(image: np.ndarray, lungs: np.ndarray, finding: str, width: int, height: int, dx: float) -> None:
    """An opacity blob inside the lung, or an effusion at the costophrenic angle (the others: the heart's size)."""
    import cv2

    if not (finding.startswith("opacity") or finding == "effusion-left"):
        return
    fx, fy, _ = FINDINGS[finding]
    centre = (round(fx * width + dx), round(fy * height))
    blob = np.zeros_like(image)
    if finding == "effusion-left":
        cv2.ellipse(blob, centre, (round(0.13 * width), round(0.06 * height)), 0, 0, 360, 1.0, -1)
        image += 0.3 * cv2.GaussianBlur(blob, (0, 0), 6.0)
        return
    cv2.circle(blob, centre, round(0.07 * width), 1.0, -1)
    image += 0.35 * cv2.GaussianBlur(blob, (0, 0), 0.03 * width) * (lungs > 0)
