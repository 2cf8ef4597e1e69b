"""Admin exports: CSV with unblinded sources, and the iMRMC input format (header, BEGIN DATA:, truth rows -1)."""
from __future__ import annotations

import csv
import re

import pytest

from legend_demo.cli import main
from legend_demo.study.db import connect
from legend_demo.study.export import check_imrmc, synthetic_score

pytestmark = pytest.mark.slow  # reader-study database: the slow tier (python -m pytest -m slow)


def _rated_study(tmp_path):
    demo, db = tmp_path / "demo", tmp_path / "s.db"
    assert main(["study", "demo-manifest", "--out", str(demo), "--drawings"]) == 0
    assert main(["study", "create", "--manifest", str(demo / "manifest.json"), "--db", str(db), "--seed", "4"]) == 0
    from legend_demo.study.ratings import Rating, submit_rating
    from legend_demo.study.reading import next_case

    for name in ("r1", "r2", "r3"):
        assert main(["study", "add-reader", "--db", str(db), "--name", name, "--password", "reader-password"]) == 0
    conn = connect(db)
    for reader_id in (1, 2, 3):
        for _ in range(5 + reader_id % 2):  # partial sessions are exported too
            view = next_case(conn, reader_id)
            submit_rating(conn, reader_id, view.position, Rating(3, 3, 3, view.position % 2 == 0, 1 + view.position % 5, "no", "ok, fine"))
    return db, conn


def test_csv_export_reveals_sources_for_every_rating(tmp_path):
    db, conn = _rated_study(tmp_path)
    out = tmp_path / "ratings.csv"
    assert main(["study", "export", "--db", str(db), "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == conn.execute("SELECT COUNT(*) FROM ratings").fetchone()[0] == 17
    truth = {(r["case_key"], r["source"]): r["is_real"] for r in conn.execute(
        "SELECT c.case_key, d.source, d.is_real FROM candidates d JOIN cases c ON c.id = d.case_id")}
    for row in rows:
        assert int(row["is_real"]) == truth[(row["case_id"], row["source"])]
        assert int(row["correct"]) == int(int(row["called_synthetic"]) != int(row["is_real"]))
    assert {r["reader"] for r in rows} == {"r1", "r2", "r3"} and rows[0]["comment"] == "ok, fine"


def test_imrmc_file_follows_the_input_format(tmp_path):
    db, conn = _rated_study(tmp_path)
    out = tmp_path / "vtt.imrmc"
    assert main(["study", "export", "--db", str(db), "--out", str(tmp_path / "r.csv"), "--imrmc", str(out)]) == 0
    text = out.read_text()
    assert check_imrmc(text) == []
    lines = text.splitlines()
    begin = lines.index("BEGIN DATA:")
    header = dict(line.split(":", 1) for line in lines[:begin] if line[:3] in ("NR:", "N0:", "N1:", "NM:"))
    rows = [line.split(",") for line in lines[begin + 1:] if line]
    assert all(len(row) == 4 and all(re.fullmatch(r"-?\d+", cell) for cell in row) for row in rows)  # integers only
    truth = {int(row[1]): int(row[3]) for row in rows if row[0] == "-1"}
    scores = [row for row in rows if row[0] != "-1"]
    assert all(row[2] == "0" for row in rows if row[0] == "-1")  # truth rows: reader -1, modality 0
    assert rows.index(scores[0]) == len(truth)  # truth rows come first
    assert int(header["NR"]) == 3 and int(header["N0"]) + int(header["N1"]) == len(truth) and int(header["NM"]) == 1
    assert len(scores) == 17 and {row[2] for row in scores} == {"1"} and {row[0] for row in scores} == {"1", "2", "3"}
    assert all(int(case) in truth and 1 <= int(score) <= 10 for _, case, _, score in scores)
    assert len({(r, c) for r, c, _, _ in scores}) == len(scores)  # one score per reader and case

    # the key file maps every number back: readers by name, cases to (case, source, truth), the modality
    key = list(csv.DictReader((tmp_path / "vtt.key.csv").open(newline="")))
    readers = {int(k["imrmc_id"]): k["name"] for k in key if k["kind"] == "reader"}
    cases = {int(k["imrmc_id"]): k for k in key if k["kind"] == "case"}
    assert readers == {1: "r1", 2: "r2", 3: "r3"} and set(cases) == set(truth)
    expected = {(r["case_key"], r["source"]): (0 if r["is_real"] else 1, r["id"]) for r in conn.execute(
        "SELECT d.id, c.case_key, d.source, d.is_real FROM candidates d JOIN cases c ON c.id = d.case_id")}
    for number, entry in cases.items():
        label, candidate_id = expected[(entry["case_id"], entry["source"])]
        assert truth[number] == label and int(entry["candidate_id"]) == candidate_id
    stored = {(name, candidate): (synthetic, confidence) for name, candidate, synthetic, confidence in conn.execute(
        "SELECT p.name, r.candidate_id, r.called_synthetic, r.confidence FROM ratings r JOIN readers p ON p.id = r.reader_id")}
    for reader, case, _, score in scores:  # every score is the stored answer of the reader and image the key names
        called, confidence = stored[(readers[int(reader)], int(cases[int(case)]["candidate_id"]))]
        assert int(score) == synthetic_score(bool(called), confidence)
    assert [k["kind"] for k in key].count("modality") == 1


def test_the_imrmc_format_check_catches_what_imrmc_refuses():
    good = "study\nNR: 1\nN0: 1\nN1: 1\nNM: 1\nBEGIN DATA:\n-1,1,0,0\n-1,2,0,1\n1,1,1,3\n1,2,1,7.5\n"
    assert check_imrmc(good) == []
    assert check_imrmc(good.replace("BEGIN DATA:", "BEGIN")) == ["no 'BEGIN DATA:' line"]
    assert any("integers" in p for p in check_imrmc(good.replace("1,1,1,3", "reader1,1,visual_turing_test,3")))
    assert any("NR: 2" in p for p in check_imrmc(good.replace("NR: 1", "NR: 2")))
    assert any("no truth row" in p for p in check_imrmc(good.replace("-1,2,0,1\n", "")))
    assert any("second truth row" in p for p in check_imrmc(good + "-1,2,0,1\n"))
    assert any("second score" in p for p in check_imrmc(good + "1,2,1,4\n"))
    assert any("modality 0" in p for p in check_imrmc(good.replace("-1,2,0,1", "-1,2,1,1")))
    assert any("lacks 'NM:'" in p for p in check_imrmc(good.replace("NM: 1\n", "")))


def test_synthetic_score_is_monotone_in_belief():
    ladder = [synthetic_score(False, c) for c in (5, 4, 3, 2, 1)] + [synthetic_score(True, c) for c in (1, 2, 3, 4, 5)]
    assert ladder == list(range(1, 11))
