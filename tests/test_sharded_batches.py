"""Batch commands over many processes (issue 21): `generate --jsonl` and `study create --generate` under torchrun
give the same outputs as one process; the batch file is checked before any work."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from legend_demo.cli import main
from legend_demo.commands.generate_batch import read_batch

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "assets" / "examples"


def _batch(tmp_path: Path, lines: list) -> Path:
    path = tmp_path / "cases.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


def test_batch_file_problems_are_all_reported_before_any_work(tmp_path):
    path = _batch(tmp_path, ['{"image": "a.png", "text": "new effusion", "id": "x"}', "{not json",
                             {"image": "b.png", "text": "t", "colour": "red"},
                             {"image": "c.png", "text": "t", "id": "x"},
                             {"image": "d.png", "text": "t", "id": "../up"},
                             {"image": "e.png", "text": "t", "seed": 1.5}])
    with pytest.raises(ValueError) as info:
        read_batch(path)
    message = str(info.value)
    for part in ("line 2 is not JSON", "line 3: unknown field(s) colour", "id '../up' must be",
                 "line 6: seed must be a whole number", "ids used on more than one line: x"):
        assert part in message
    ok = read_batch(_batch(tmp_path, [{"image": "a.png", "text": "t"}, "", {"image": "b.png", "text": "u"}]))
    assert [(n, c["id"]) for n, c in ok] == [(1, "line-00001"), (3, "line-00002")]


def test_generate_needs_image_and_text_or_a_batch(tmp_path, capsys):
    assert main(["generate", "--text", "new effusion", "--out", str(tmp_path / "o")]) == 2
    assert "--image PATH and --text TEXT (or --jsonl FILE)" in capsys.readouterr().err
    batch = _batch(tmp_path, [{"image": "a.png", "text": "t"}])
    assert main(["generate", "--jsonl", str(batch), "--image", "a.png", "--out", str(tmp_path / "o")]) == 2
    assert "not both" in capsys.readouterr().err


def _cases() -> list[dict]:
    images = sorted(EXAMPLES.glob("synthetic_*.png"))[:3]
    return [{"image": str(images[0]), "text": "New right lower lobe consolidation.", "id": "a"},
            {"image": str(images[1]), "text": "Left pleural effusion has increased.", "id": "b", "seed": 3},
            {"image": "missing.png", "text": "New nodule.", "id": "c"},
            {"image": str(images[2]), "text": "New left upper lobe consolidation.", "id": "d",
             "points": [{"x": 170, "y": 80, "confidence": 5}]}]


def _env() -> dict:
    env = {**os.environ, "LEGEND_ENABLE_TEST_ENGINE": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env


def _torchrun() -> list[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
            "--master-port", str(port), "-m", "legend_demo"]


def _results(out: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "out"} for line in (out / "batch.jsonl").read_text().splitlines()]


@pytest.mark.slow  # one process and two torchrun workers, each generating a small batch
def test_sharded_generate_batch_equals_one_process(tmp_path):
    batch = _batch(tmp_path, _cases())
    args = ["generate", "--jsonl", str(batch), "--engine", "tiny-random", "--steps", "2"]
    one = subprocess.run([sys.executable, "-m", "legend_demo", *args, "--out", str(tmp_path / "one")], cwd=REPO,
                         env=_env(), capture_output=True, text=True, timeout=900)
    two = subprocess.run([*_torchrun(), *args, "--out", str(tmp_path / "two")], cwd=REPO, env=_env(),
                         capture_output=True, text=True, timeout=900)
    assert one.returncode == 1, one.stderr[-2000:]  # line 3's image is missing: reported, the others are made
    assert two.returncode != 0, two.stderr[-2000:]  # rank 0 exits 1; torchrun reports the failed worker
    assert [json.loads(line)["id"] for line in one.stdout.splitlines()] == ["a", "b", "c", "d"]
    assert _results(tmp_path / "one") == _results(tmp_path / "two")
    results = _results(tmp_path / "one")
    assert "missing.png" in results[2]["error"] and all("error" not in r for i, r in enumerate(results) if i != 2)
    for cid in ("a", "b", "d"):
        first, second = (tmp_path / run / cid / "followup.png" for run in ("one", "two"))
        assert first.read_bytes() == second.read_bytes(), cid
    assert not (tmp_path / "two" / "c").exists() or not (tmp_path / "two" / "c" / "followup.png").exists()


@pytest.mark.slow  # a reader study whose candidates two torchrun workers generate
def test_sharded_study_generation_stores_one_study(tmp_path):
    import sqlite3

    demo, db = tmp_path / "demo", tmp_path / "s.db"
    assert main(["study", "demo-manifest", "--drawings", "--out", str(demo)]) == 0
    (demo / "manifest.json").unlink()  # pair folders: real follow-up + baseline; add a generated candidate per case
    run = subprocess.run([*_torchrun(), "study", "create", "--manifest", str(demo), "--db", str(db), "--generate",
                          "--engine", "tiny-random", "--generate-source", "tiny-random", "--admin-password",
                          "correct horse battery"], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.count("created study") == 1
    assert run.stderr.count("(rank 0/2)") == 2 and run.stderr.count("(rank 1/2)") == 2  # 4 candidates, 2 per rank
    with sqlite3.connect(db) as conn:
        paths = [r[0] for r in conn.execute("SELECT path FROM candidates WHERE source = 'tiny-random' ORDER BY path")]
    assert len(paths) == 4 and all((demo / p).is_file() for p in paths)
