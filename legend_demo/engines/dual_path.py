"""The diffusion engines' shared Engine: a DualPathEditor (method/dual_path.py) behind the Engine interface.

FLUX.1-dev (flux.py), the embedded model (embedded.py) and the tiny test engine (tiny.py) differ only in how their
components are loaded; vital-layer defaults, one job at a time and provenance are here.
"""
from __future__ import annotations

import threading
from typing import Any

from ..method.dual_path import DualPathEditor, DualPathOutput
from ..method.strength import S_MAX, strength_mode
from .base import Engine, GenerationRequest, GenerationResult, ProgressFn
from .provenance import Provenance

FLUX_DEV_VITAL_LAYERS = (0, 1, 2, 17, 18, 25, 28, 53, 54, 56)  # thesis §5.3.1 (57 layers: 19 double + 38 single)


class DualPathEngine(Engine):
    """An Engine around a DualPathEditor: vital-layer defaults, one job at a time, provenance."""

    max_bias_strength = S_MAX

    def __init__(
        self,
        editor: DualPathEditor,
        *,
        checkpoint: str,
        vital_layers: tuple[int, ...] | None = None,
        default_steps: int = 28,
        fingerprints: dict[str, Any] | None = None,
        load_options: dict[str, Any] | None = None,
    ):
        super().__init__(checkpoint=checkpoint, fingerprints=fingerprints, load_options=load_options)
        self.editor = editor
        self.model_side = editor.model_side
        self.default_steps = default_steps
        self._vital = self._default_vital(vital_layers)

    @property
    def num_layers(self) -> int:
        return self.editor.num_layers

    def text_unread(self, text: str) -> str:
        unread = getattr(self.editor.encode_text, "unread", None)
        return unread(text) if unread else ""

    @property
    def default_vital_layers(self) -> tuple[int, ...]:
        return self._vital

    @property
    def token_grid(self) -> tuple[int, int]:
        return self.editor.codec.token_grid(self.model_side)

    def _generate(self, request: GenerationRequest, progress: ProgressFn | None,
                  cancel: threading.Event | None) -> GenerationResult:
        steps = request.steps or self.default_steps
        vital = tuple(request.vital_layers) if request.vital_layers is not None else self._vital
        out = self.editor.run(request, vital, steps, progress, cancel)
        return self._result(request, followup=out.edit_view, source=out.source_view, prior=out.prior_view,
                            prior_map=out.prior_map, frame=out.frame, layers=out.layers, timings=dict(out.timings_s),
                            provenance=self._provenance(request, steps, out))

    def _default_vital(self, vital_layers: tuple[int, ...] | None) -> tuple[int, ...]:
        if vital_layers is not None:
            return tuple(sorted(vital_layers))
        if self.num_layers == 57:
            return FLUX_DEV_VITAL_LAYERS
        return tuple(range(self.num_layers))  # small models: every layer until a vitality analysis says otherwise

    def _provenance(self, request: GenerationRequest, steps: int, out: DualPathOutput) -> Provenance:
        editor = self.editor
        return Provenance.of(
            self, request, bias_strength_mode=strength_mode(request.bias_strength, editor.strength_mlp),
            vital_layers=out.vital_layers, capture_layers=out.capture_layers, frame=out.frame,
            strength_per_step=out.strength_per_step,
            bias_layers=out.bias_layers,
            inject=request.inject,
            steps=steps,
            sigmas=out.sigmas,
            start=editor.start,
            noise_mix=request.noise_mix if editor.start == "inversion" else None,
            reference_conditioned=editor.reference_conditioned,
            edit_guidance=editor.edit_guidance,
            location_free_text=bool(getattr(editor.encode_text, "location_free", False)),
            guidance_scale=editor.guidance_scale,
        )
