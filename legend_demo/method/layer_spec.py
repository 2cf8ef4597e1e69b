"""Layer lists: typed by people (CLI flags, UI and API text boxes: '0, 1, 17' → (0, 1, 17)) and checked against a
model's global layer indices (one rule for the diffusion processors, the AR attention and training)."""
from __future__ import annotations

from typing import Iterable


def parse_layers(text: str | None, name: str = "layers") -> tuple[int, ...] | None:
    """Comma- or semicolon-separated whole numbers, sorted and de-duplicated; blank → None (the engine's default)."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return tuple(sorted({int(part) for part in text.replace(";", ",").split(",") if part.strip()}))
    except ValueError:
        raise ValueError(f"{name} must be comma-separated whole numbers, got {text!r}") from None


def check_layers(name: str, layers: Iterable[int], num_layers: int) -> frozenset[int]:
    """Layer indices as a set; a ValueError naming any that is not a whole number (1.7 is refused, never
    truncated to 1; True is not a layer) or lies outside 0 … num_layers−1."""
    layers = list(layers)
    if any(isinstance(layer, bool) or not _whole(layer) for layer in layers):
        raise ValueError(f"{name} must be whole numbers, got {layers}")
    bad = sorted(int(layer) for layer in layers if not 0 <= int(layer) < num_layers)
    if bad:
        raise ValueError(f"{name} {bad} outside this model's layers 0–{num_layers - 1}")
    return frozenset(int(layer) for layer in layers)


def _whole(value) -> bool:
    try:
        return int(value) == value
    except (TypeError, ValueError):
        return False
