"""Location-free text for the embedded model: where a change is comes from the lesion points, not the words.

MiniLM barely separates "left" from "right" (sentence cosines ≈ 0.98, issue 10), and a model that reads location from
the text learns this one CT's anatomy instead of following the points. With `location_free_text` in its config the
model is trained and run on texts with side, lobe and zone words removed, so the Gaussian prior of the points (GBCA)
is its only location signal; the finding and its direction stay in the text.
"""
from __future__ import annotations

import re

import torch

LOCATION_WORDS = (
    "right", "left", "bilateral", "bilaterally", "both", "upper", "middle", "mid", "lower", "lobe", "lobes", "lobar",
    "zone", "zones", "lingula", "lingular", "apex", "apices", "apical", "base", "bases", "basal", "basilar",
    "perihilar", "hilar", "retrocardiac", "costophrenic", "angle", "lung", "lungs", "hemithorax",
)
_PATTERN = re.compile(r"\b(?:" + "|".join(LOCATION_WORDS) + r")\b", re.IGNORECASE)
_SPACES = re.compile(r"\s{2,}")


def without_location(text: str) -> str:
    """`text` with side, lobe and zone words removed ("New right lower lobe consolidation." → "New consolidation.")."""
    stripped = _SPACES.sub(" ", _PATTERN.sub("", text))
    return re.sub(r"\s+([.,;:])", r"\1", stripped).strip()


class LocationFreeText:
    """A text encoder that sees every prompt without its location words (same call and outputs as the one it wraps)."""

    location_free = True

    def __init__(self, encoder):
        self.encoder = encoder
        self.source = getattr(encoder, "source", None)

    def __call__(self, prompts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder([without_location(p) for p in prompts])

    def unread(self, prompt: str) -> str:
        """What the wrapped encoder cuts off of the prompt it is given (the text without its location words)."""
        unread = getattr(self.encoder, "unread", None)
        return unread(without_location(prompt)) if unread else ""
