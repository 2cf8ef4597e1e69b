"""A drawn chest-like radiograph (no patient data) for grounding tests and the benchmark.

Bright body ellipse, two dark lung ellipses, bright mediastinum and spine, a heart shadow, mild noise.
The true lung ellipses are returned so tests can check where points land.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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


def synthetic_chest(width: int = 400, height: int = 480, seed: int = 0, shift_x: float = 0.0
                    ) -> tuple[np.ndarray, Ellipse, Ellipse]:
    """(H, W) float32 in [0, 1] and the image-left and image-right lung ellipses. shift_x moves the patient."""
    import cv2

    image = np.full((height, width), 0.05, np.float32)  # (H, W) air around the patient
    mid = width * (0.5 + shift_x)
    cv2.ellipse(image, (round(mid), round(height * 0.53)), (round(width * 0.44), round(height * 0.47)),
                0, 0, 360, 0.75, -1)
    lungs = []
    for dx in (-0.20, 0.20):
        lung = Ellipse((mid + dx * width, 0.50 * height), (0.14 * width, 0.32 * height))
        cv2.ellipse(image, (round(lung.centre[0]), round(lung.centre[1])),
                    (round(lung.axes[0]), round(lung.axes[1])), 0, 0, 360, 0.22, -1)
        lungs.append(lung)
    cv2.ellipse(image, (round(mid + 0.03 * width), round(0.68 * height)), (round(0.09 * width),
                round(0.11 * height)), 0, 0, 360, 0.85, -1)  # heart shadow
    cv2.rectangle(image, (round(mid - 0.03 * width), 0), (round(mid + 0.03 * width), height), 0.9, -1)  # spine
    noise = np.random.default_rng(seed).normal(0.0, 0.02, image.shape).astype(np.float32)
    return np.clip(image + noise, 0.0, 1.0), lungs[0], lungs[1]
