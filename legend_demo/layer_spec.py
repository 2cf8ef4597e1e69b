"""Layer lists typed by people (CLI flags, UI and API text boxes): '0, 1, 17' → (0, 1, 17)."""
from __future__ import annotations


def parse_layers(text: str | None, name: str = "layers") -> tuple[int, ...] | None:
    """Comma- or semicolon-separated whole numbers, sorted and de-duplicated; blank → None (the engine's default)."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return tuple(sorted({int(part) for part in text.replace(";", ",").split(",") if part.strip()}))
    except ValueError:
        raise ValueError(f"{name} must be comma-separated whole numbers, got {text!r}") from None
