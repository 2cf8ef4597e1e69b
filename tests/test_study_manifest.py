"""Manifest parsing and up-front validation: formats, path traversal, symlinks, missing text, bad images."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from legend_demo.cli import main
from legend_demo.study.demo import write_demo_study
from legend_demo.study.manifest import ManifestError, read_manifest, validate_manifest

pytestmark = pytest.mark.slow  # reader-study manifests on disk: the slow tier (python -m pytest -m slow)


def _png(path, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (96, 96), dtype=np.uint8)
    Image.fromarray(pixels, mode="L").save(path)
    return path


def _json_manifest(root, cases):
    path = root / "manifest.json"
    path.write_text(json.dumps({"name": "t", "cases": cases}))
    return path


def _case(key, prior="a/prior.png", text="new right lower zone opacity", candidates=None):
    return {"id": key, "prior": prior, "text": text,
            "candidates": candidates or [{"source": "real", "path": "a/real.png"}, {"source": "model", "path": "a/model.png"}]}


@pytest.fixture()
def study_dir(tmp_path):
    root = tmp_path / "study"
    for name in ("prior", "real", "model"):
        _png(root / "a" / f"{name}.png")
    return root


def test_demo_manifest_and_its_pair_folders_validate(tmp_path):
    manifest_path = write_demo_study(tmp_path / "demo")
    manifest = read_manifest(manifest_path)
    validate_manifest(manifest)
    assert all(any(c.is_real for c in case.candidates) and any(not c.is_real for c in case.candidates) for case in manifest.cases)
    manifest_path.unlink()  # the folder alone reads as ICG-CXR-style pair folders
    folders = read_manifest(tmp_path / "demo")
    validate_manifest(folders)
    assert [c.key for c in folders.cases] == [c.key for c in manifest.cases]
    assert all(case.text for case in folders.cases)


def test_valid_json_and_csv_manifests(study_dir):
    validate_manifest(read_manifest(_json_manifest(study_dir, [_case("c1")])))
    csv_path = study_dir / "m.csv"
    csv_path.write_text("case_id,prior,text,source,path\nc1,a/prior.png,worse,real,a/real.png\nc1,a/prior.png,worse,model,a/model.png\n")
    manifest = read_manifest(csv_path)
    validate_manifest(manifest)
    assert [(c.source, c.is_real) for c in manifest.cases[0].candidates] == [("real", True), ("model", False)]


def test_every_problem_is_listed_in_one_error(study_dir, tmp_path):
    outside = _png(tmp_path / "outside.png")
    (study_dir / "a" / "broken.png").write_bytes(b"not an image")
    os.symlink(outside, study_dir / "a" / "link.png")
    cases = [
        _case("dotdot", prior="../outside.png"),
        _case("absolute", prior=str(outside)),
        _case("symlink", prior="a/link.png"),
        _case("no-text", text="   "),
        _case("broken", candidates=[{"source": "real", "path": "a/broken.png"}, {"source": "model", "path": "a/model.png"}]),
        _case("missing", candidates=[{"source": "real", "path": "a/real.png"}, {"source": "model", "path": "a/nope.png"}]),
        _case("untagged", candidates=[{"source": "", "path": "a/real.png"}]),
        _case("no-path", candidates=[{"source": "real", "path": "a/real.png"}, {"source": "model"}]),
    ]
    with pytest.raises(ManifestError) as caught:
        validate_manifest(read_manifest(_json_manifest(study_dir, cases)))
    message = str(caught.value)
    assert "\n" not in message
    for key, hint in [("dotdot", "'..'"), ("absolute", "outside the study folder"), ("symlink", "outside the study folder"),
                      ("no-text", "text is missing"), ("broken", "not a usable image"), ("missing", "not found"),
                      ("untagged", "no source tag"), ("no-path", "--generate")]:
        assert any(key in p and hint in p for p in caught.value.problems), (key, caught.value.problems)


def test_absolute_path_inside_the_study_folder_is_fine(study_dir):
    validate_manifest(read_manifest(_json_manifest(study_dir, [_case("c1", prior=str(study_dir / "a" / "prior.png"))])))


def test_pair_mode_needs_two_candidates_per_case(study_dir):
    three = [{"source": s, "path": f"a/{n}.png"} for s, n in (("real", "real"), ("model", "model"), ("other", "prior"))]
    with pytest.raises(ManifestError, match="exactly 2 candidates, found 3"):
        validate_manifest(read_manifest(_json_manifest(study_dir, [_case("c1", candidates=three)])), pair_mode=True)


def test_pair_folder_without_json_is_reported(tmp_path):
    _png(tmp_path / "p1" / "p1-ref.png")
    with pytest.raises(ManifestError, match="missing p1.json"):
        read_manifest(tmp_path)


def test_cli_rejects_a_bad_manifest_with_one_line_and_exit_2(study_dir, tmp_path, capsys):
    path = _json_manifest(study_dir, [_case("c1", prior="../../etc/passwd", text="")])
    assert main(["study", "create", "--manifest", str(path), "--db", str(tmp_path / "s.db")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: manifest") and len(err.splitlines()) == 1
    assert "'..'" in err and "text is missing" in err
    assert not (tmp_path / "s.db").exists()  # nothing stored when validation fails
