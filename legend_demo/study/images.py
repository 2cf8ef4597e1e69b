"""Image reading for studies through the project's loader (legend_demo.image_io.load_image)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..image_io import load_image


def read_gray(path: str | Path) -> np.ndarray:
    """(H, W) float32 in [0, 1], dense tissue bright; ImageInputError when the file is not a usable radiograph."""
    return np.asarray(load_image(str(path)).array, dtype=np.float32)
