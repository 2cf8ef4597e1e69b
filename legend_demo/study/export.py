"""Admin exports: every rating with its unblinded source (CSV), and an iMRMC input file for real vs synthetic."""
from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

from .ratings import LIKERT_ITEMS

CSV_FIELDS = (
    "reader", "position", "side", "case_id", "candidate_id", "source", "is_real", *LIKERT_ITEMS,
    "called_synthetic", "confidence", "correct", "lesion_location", "comment", "time_on_case_s", "submitted_at", "updated_at",
)
IMRMC_MODALITY = "visual_turing_test"
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")  # OWASP CSV injection: a cell starting so is run as a formula


def safe_cell(value):
    """Text starting with = + - @ TAB or CR gets a leading apostrophe so a spreadsheet shows it as text (OWASP);
    numbers and other text pass unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def _rows(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute(
        """SELECT p.name AS reader, r.position, r.side, c.case_key AS case_id, r.candidate_id, d.source, d.is_real,
                  r.realism, r.faithfulness, r.anatomy, r.called_synthetic, r.confidence, r.lesion_location,
                  r.comment, r.time_on_case_s, r.submitted_at, r.updated_at, p.id AS reader_id
           FROM ratings r JOIN readers p ON p.id = r.reader_id JOIN candidates d ON d.id = r.candidate_id
           JOIN cases c ON c.id = d.case_id ORDER BY p.name, r.position, r.side"""
    ).fetchall()


def export_csv(conn: sqlite3.Connection, out: str | Path) -> int:
    """Write one row per rating with the hidden source revealed; return the number of rows."""
    rows = _rows(conn)
    with Path(out).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for row in rows:
            record = {name: row[name] for name in CSV_FIELDS if name != "correct"}
            record["correct"] = int(bool(row["called_synthetic"]) != bool(row["is_real"]))
            writer.writerow({name: safe_cell(value) for name, value in record.items()})
    return len(rows)


def synthetic_score(called_synthetic: bool, confidence: int) -> int:
    """Ordinal 'this is synthetic' score 1–10: 'real' with confidence 5 → 1 … 'synthetic' with confidence 5 → 10."""
    return 5 + confidence if called_synthetic else 6 - confidence


def export_imrmc(conn: sqlite3.Connection, out: str | Path) -> int:
    """iMRMC input for the real-vs-synthetic task; return the number of reader score rows.

    Free-text header, NR/N0/N1/NM lines, then `BEGIN DATA:` and comma-separated `readerID,caseID,modalityID,score`
    rows. Truth rows come first with readerID -1: score 1 = signal present (synthetic), 0 = absent (real).
    Cases are candidate images (integer ids), one modality; reader scores are synthetic_score() (1–10).
    """
    rows = _rows(conn)
    truth = {r["candidate_id"]: 0 if r["is_real"] else 1 for r in rows}
    readers = sorted({r["reader_id"] for r in rows})
    lines = [
        "LeGend demo reader study: visual Turing test (is this follow-up synthetic?)",
        "Truth: 1 = synthetic (signal present), 0 = real follow-up (signal absent).",
        "Score: 1 = real with confidence 5 ... 5 = real with confidence 1, 6 = synthetic with confidence 1 ... 10 = synthetic with confidence 5.",
        f"NR: {len(readers)}",
        f"N0: {sum(1 for t in truth.values() if t == 0)}",
        f"N1: {sum(1 for t in truth.values() if t == 1)}",
        "NM: 1",
        "",
        "BEGIN DATA:",
    ]
    lines += [_imrmc_row(-1, case, 0, label) for case, label in sorted(truth.items())]
    lines += [
        _imrmc_row(f"reader{r['reader_id']}", r["candidate_id"], IMRMC_MODALITY,
                   synthetic_score(bool(r["called_synthetic"]), r["confidence"]))
        for r in sorted(rows, key=lambda r: (r["reader_id"], r["candidate_id"]))
    ]
    Path(out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(rows)


def _imrmc_row(*cells) -> str:
    """One comma-separated iMRMC data row; text cells are neutralised like the CSV's (numbers stay numbers)."""
    return ",".join(str(safe_cell(cell)) for cell in cells)
