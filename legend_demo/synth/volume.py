"""The chest CT as an image-aligned, isotropic volume: axes (y: superior→inferior, x: patient right→left, d: P→A).

With these axes a parallel projection along d is a PA radiograph in display orientation: row 0 is the head end
and column 0 is the patient's RIGHT, which a PA film shows on the image LEFT.
Contrast medium is removed (the source CT is contrast-enhanced; a radiograph shows blood as soft tissue) and the
scanner table is cut away (everything outside the largest body component becomes air).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .ct_source import CTFiles, fetch_ct, read_structures

IMAGE_AXCODES = ("I", "L", "A")  # array axis i points towards these patient directions
CACHE_VERSION = 1
AIR_HU = -1000.0
LOBE_STRUCTURES = {
    ("right", "upper"): "lung_upper_lobe_right",
    ("right", "middle"): "lung_middle_lobe_right",
    ("right", "lower"): "lung_lower_lobe_right",
    ("left", "upper"): "lung_upper_lobe_left",
    ("left", "lower"): "lung_lower_lobe_left",
}
BLOOD_MAX_HU = 50.0  # contrast-enhanced vessels and heart → unenhanced blood
ORGAN_MAX_HU = 80.0


@dataclass
class ChestVolume:
    """HU and label volumes (Y, X, D) on an isotropic grid of `voxel_mm`, with the label table."""

    hu: np.ndarray  # (Y, X, D) float32
    labels: np.ndarray  # (Y, X, D) uint8
    voxel_mm: float
    structures: dict[str, tuple[int, str]]
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.hu.shape)  # type: ignore[return-value]

    def label_id(self, name: str) -> int:
        if name not in self.structures:
            raise ValueError(f"structure {name!r} not in the label table ({len(self.structures)} names)")
        return self.structures[name][0]

    def lobe_id(self, side: str, lobe: str) -> int:
        if (side, lobe) not in LOBE_STRUCTURES:
            raise ValueError(f"no {side} {lobe} lobe; known: {sorted(LOBE_STRUCTURES)}")
        return self.label_id(LOBE_STRUCTURES[(side, lobe)])

    def lung_mask(self, side: str) -> np.ndarray:
        """(Y, X, D) bool: all lobes of one side ("right"/"left"), or both ("bilateral")."""
        key = ("lung", side)
        if key not in self._cache:
            sides = ("right", "left") if side == "bilateral" else (side,)
            ids = [self.label_id(name) for (s, _), name in LOBE_STRUCTURES.items() if s in sides]
            if not ids:
                raise ValueError(f"side must be right, left or bilateral, got {side!r}")
            self._cache[key] = np.isin(self.labels, ids)
        return self._cache[key]


def _reorient(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reorder/flip array axes to IMAGE_AXCODES; return the array and its voxel sizes in the new order."""
    import nibabel as nib

    current = nib.orientations.io_orientation(affine)
    transform = nib.orientations.ornt_transform(current, nib.orientations.axcodes2ornt(IMAGE_AXCODES))
    zooms = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))  # (3,) voxel sizes of the source axes
    new_zooms = np.empty(3)
    new_zooms[transform[:, 0].astype(int)] = zooms
    return nib.orientations.apply_orientation(data, transform), new_zooms


def _resample(volume: np.ndarray, zooms: np.ndarray, voxel_mm: float, mode: str) -> np.ndarray:
    """Resample (Y, X, D) to isotropic `voxel_mm` (trilinear for HU, nearest for labels)."""
    import torch
    import torch.nn.functional as F

    size = [max(1, int(round(n * z / voxel_mm))) for n, z in zip(volume.shape, zooms)]
    tensor = torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))[None, None]  # (1, 1, Y, X, D)
    kwargs = {"align_corners": False} if mode == "trilinear" else {}
    return F.interpolate(tensor, size=size, mode=mode, **kwargs)[0, 0].numpy()


def _remove_contrast(hu: np.ndarray, labels: np.ndarray, structures: dict[str, tuple[int, str]]) -> None:
    """Clamp enhanced blood pools and organs in place to unenhanced soft-tissue HU."""
    cardiac = [i for i, group in structures.values() if group == "cardiac"]
    organs = [i for i, group in structures.values() if group == "organs"]
    np.minimum(hu, BLOOD_MAX_HU, out=hu, where=np.isin(labels, cardiac))
    np.minimum(hu, ORGAN_MAX_HU, out=hu, where=np.isin(labels, organs))


def _body_mask(hu: np.ndarray) -> np.ndarray:
    """(Y, X, D) bool: largest connected component above -400 HU with axial holes (lungs) filled."""
    from scipy import ndimage

    dense = hu > -400.0
    components, count = ndimage.label(dense)
    if count == 0:
        raise ValueError("CT holds no voxel above -400 HU; not a body CT")
    sizes = np.bincount(components.ravel())[1:]
    body = components == (1 + int(np.argmax(sizes)))
    for row in range(body.shape[0]):  # axial slices are rows (Y) here
        body[row] = ndimage.binary_fill_holes(body[row])
    return body


def build_volume(files: CTFiles, voxel_mm: float) -> ChestVolume:
    """Load the NIfTI pair with nibabel and produce the image-aligned isotropic volume."""
    import nibabel as nib

    if not 0.5 <= voxel_mm <= 5.0:
        raise ValueError(f"voxel_mm must be within [0.5, 5] mm, got {voxel_mm}")
    structures = read_structures(files.structures)
    ct_image, label_image = nib.load(str(files.ct)), nib.load(str(files.labels))
    if ct_image.shape != label_image.shape:
        raise ValueError(f"CT shape {ct_image.shape} differs from label shape {label_image.shape}")
    hu, zooms = _reorient(np.asarray(ct_image.dataobj, dtype=np.float32), ct_image.affine)
    labels, _ = _reorient(np.asarray(label_image.dataobj, dtype=np.uint8), label_image.affine)
    hu = _resample(hu, zooms, voxel_mm, "trilinear")  # (Y, X, D)
    labels = _resample(labels, zooms, voxel_mm, "nearest").round().astype(np.uint8)  # (Y, X, D)
    _remove_contrast(hu, labels, structures)
    body = _body_mask(hu)
    hu[~body] = AIR_HU
    labels[~body] = 0
    return ChestVolume(hu=hu.astype(np.float32), labels=labels, voxel_mm=float(voxel_mm), structures=structures)


def load_volume(voxel_mm: float = 1.4, source: str | Path | None = None,
                cache_dir: str | Path | None = None) -> ChestVolume:
    """The prepared volume, built once per voxel size and cached as .npz beside the CT files."""
    files = fetch_ct(source, cache_dir)
    cache_file = files.ct.parent / f"volume_v{CACHE_VERSION}_{voxel_mm:.3f}mm.npz"
    structures = read_structures(files.structures)
    if cache_file.is_file():
        with np.load(cache_file) as data:
            return ChestVolume(hu=data["hu"].astype(np.float32), labels=data["labels"],
                               voxel_mm=float(data["voxel_mm"]), structures=structures)
    volume = build_volume(files, voxel_mm)
    partial = cache_file.with_name(cache_file.name + ".part.npz")
    np.savez(partial, hu=volume.hu.astype(np.int16), labels=volume.labels, voxel_mm=volume.voxel_mm)
    partial.replace(cache_file)
    return volume
