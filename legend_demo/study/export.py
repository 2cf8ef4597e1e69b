"""Admin exports: every rating with its unblinded source (CSV), and an iMRMC input file for real vs synthetic with
a key file that maps iMRMC's integer ids back to readers and images.

iMRMC input format (DIDSR/iMRMC, the Java application's "raw study data" format, DataFormat.java; the files its
own simulator writes; RJafroc's ReadImrmc reads the same): free-text lines, then the study size as `NR: <readers>`,
`N0: <signal-absent cases>`, `N1: <signal-present cases>`, `NM: <modalities>`, then a line `BEGIN DATA:` and one
row per observation, `readerID,caseID,modalityID,score`, comma-separated, no spaces. Truth rows have readerID -1
and modalityID 0 with score 0 (signal absent) or 1 (signal present), one per case; reader rows carry a number
where higher means "more likely signal present". IDs are integers (RJafroc refuses non-integer case ids; the
documented format names integer reader and case ids), so readers, images and the modality are numbered 1, 2, …
and the key file says which is which.
"""
from __future__ import annotations

import csv
import io
import re
import sqlite3
from pathlib import Path

from .ratings import LIKERT_ITEMS

CSV_FIELDS = (
    "reader", "position", "side", "case_id", "candidate_id", "source", "is_real", *LIKERT_ITEMS,
    "called_synthetic", "confidence", "correct", "lesion_location", "comment", "time_on_case_s", "submitted_at", "updated_at",
)
IMRMC_MODALITY = 1  # the one modality: the visual Turing test (is this follow-up synthetic?)
IMRMC_MODALITY_NAME = "visual Turing test: synthetic score 1-10 (1 = real, certain ... 10 = synthetic, certain)"
KEY_FIELDS = ("kind", "imrmc_id", "name", "case_id", "source", "is_real", "candidate_id")
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


def csv_text(conn: sqlite3.Connection) -> tuple[str, int]:
    """(the CSV of every rating with its hidden source revealed, number of rows)."""
    rows = _rows(conn)
    handle = io.StringIO(newline="")
    writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
    writer.writeheader()
    for row in rows:
        record = {name: row[name] for name in CSV_FIELDS if name != "correct"}
        record["correct"] = int(bool(row["called_synthetic"]) != bool(row["is_real"]))
        writer.writerow({name: safe_cell(value) for name, value in record.items()})
    return handle.getvalue(), len(rows)


def export_csv(conn: sqlite3.Connection, out: str | Path) -> int:
    """Write one row per rating with the hidden source revealed; return the number of rows."""
    text, count = csv_text(conn)
    Path(out).write_text(text, encoding="utf-8", newline="")
    return count


def synthetic_score(called_synthetic: bool, confidence: int) -> int:
    """Ordinal 'this is synthetic' score 1–10: 'real' with confidence 5 → 1 … 'synthetic' with confidence 5 → 10."""
    return 5 + confidence if called_synthetic else 6 - confidence


def imrmc_texts(conn: sqlite3.Connection) -> tuple[str, str, int]:
    """(iMRMC input text, key CSV text, number of reader score rows) for the real-vs-synthetic task.

    Cases are the rated candidate images (truth 1 = synthetic, signal present; 0 = real), numbered 1…N in
    candidate order; readers are numbered 1…NR by name; one modality (1). Reader scores are synthetic_score()."""
    rows = _rows(conn)
    readers = {name: i for i, name in enumerate(sorted({r["reader"] for r in rows}), start=1)}
    candidates = {}
    for r in sorted(rows, key=lambda r: r["candidate_id"]):
        candidates.setdefault(r["candidate_id"], r)
    case_ids = {candidate: i for i, candidate in enumerate(candidates, start=1)}
    truth = {case_ids[c]: 0 if r["is_real"] else 1 for c, r in candidates.items()}
    lines = [
        "LeGend demo reader study: visual Turing test (is this follow-up synthetic?)",
        "Truth: 1 = synthetic follow-up (signal present), 0 = real follow-up (signal absent).",
        "Score: 1 = real with confidence 5 ... 5 = real with confidence 1, "
        "6 = synthetic with confidence 1 ... 10 = synthetic with confidence 5.",
        "Reader, case and modality ids are numbers; the key file maps them to reader names and images.",
        f"NR: {len(readers)}",
        f"N0: {sum(1 for t in truth.values() if t == 0)}",
        f"N1: {sum(1 for t in truth.values() if t == 1)}",
        f"NM: {1 if rows else 0}",
        "",
        "BEGIN DATA:",
    ]
    lines += [f"-1,{case},0,{label}" for case, label in sorted(truth.items())]
    lines += [f"{readers[r['reader']]},{case_ids[r['candidate_id']]},{IMRMC_MODALITY},"
              f"{synthetic_score(bool(r['called_synthetic']), r['confidence'])}"
              for r in sorted(rows, key=lambda r: (readers[r["reader"]], case_ids[r["candidate_id"]]))]
    key = io.StringIO(newline="")
    writer = csv.DictWriter(key, fieldnames=KEY_FIELDS)
    writer.writeheader()
    for name, number in readers.items():
        writer.writerow({"kind": "reader", "imrmc_id": number, "name": safe_cell(name)})
    for candidate, number in case_ids.items():
        r = candidates[candidate]
        writer.writerow({"kind": "case", "imrmc_id": number, "name": safe_cell(f"{r['case_id']} / {r['source']}"),
                         "case_id": safe_cell(r["case_id"]), "source": safe_cell(r["source"]), "is_real": int(r["is_real"]),
                         "candidate_id": candidate})
    writer.writerow({"kind": "modality", "imrmc_id": IMRMC_MODALITY, "name": IMRMC_MODALITY_NAME})
    text = "\n".join(lines) + "\n"
    problems = check_imrmc(text)
    if problems:  # a bug here, never the user's data: refuse to write a file iMRMC would reject
        raise AssertionError("the iMRMC export breaks the input format: " + "; ".join(problems))
    return text, key.getvalue(), len(rows)


def default_key_path(imrmc_path: str | Path) -> Path:
    """Where the key file goes when none is named: beside the iMRMC file, `<name>.key.csv`."""
    path = Path(imrmc_path)
    return path.with_name(path.stem + ".key.csv")


def export_imrmc(conn: sqlite3.Connection, out: str | Path, key_out: str | Path | None = None) -> int:
    """Write the iMRMC input file and its key file (default: default_key_path); return the reader score rows."""
    text, key, count = imrmc_texts(conn)
    Path(out).write_text(text, encoding="utf-8")
    Path(key_out or default_key_path(out)).write_text(key, encoding="utf-8", newline="")
    return count


_HEADER = re.compile(r"^(NR|N0|N1|NM):\s*(\S+)\s*$")
_INTEGER = re.compile(r"^-?\d+$")
_NUMBER = re.compile(r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def check_imrmc(text: str) -> list[str]:
    """Problems that break iMRMC's documented input format (module docstring); [] when the file is valid."""
    lines = [line.strip() for line in text.splitlines()]
    if "BEGIN DATA:" not in lines:
        return ["no 'BEGIN DATA:' line"]
    begin = lines.index("BEGIN DATA:")
    header, problems = {}, []
    for line in lines[:begin]:
        match = _HEADER.match(line)
        if match:
            if not _INTEGER.match(match.group(2)):
                problems.append(f"{match.group(1)} is not an integer: {match.group(2)!r}")
            else:
                header[match.group(1)] = int(match.group(2))
    problems += [f"the header lacks '{name}:'" for name in ("NR", "N0", "N1", "NM") if name not in header]
    truth, scores = {}, set()
    for number, line in enumerate(lines[begin + 1:], start=begin + 2):
        if not line:
            continue
        fields = line.split(",")
        if len(fields) != 4:
            problems.append(f"line {number}: {len(fields)} fields, not 4")
            continue
        reader, case, modality, score = fields
        if not all(_INTEGER.match(v) for v in (reader, case, modality)):
            problems.append(f"line {number}: reader, case and modality ids must be integers: {line!r}")
            continue
        if not _NUMBER.match(score):
            problems.append(f"line {number}: the score is not a number: {score!r}")
            continue
        if reader == "-1":
            if modality != "0" or score not in ("0", "1"):
                problems.append(f"line {number}: a truth row needs modality 0 and score 0 or 1: {line!r}")
            elif case in truth:
                problems.append(f"line {number}: a second truth row for case {case}")
            truth[case] = int(score)
        else:
            if int(reader) < 1 or int(modality) < 1:
                problems.append(f"line {number}: reader and modality ids of a score row must be ≥ 1: {line!r}")
            if (reader, case, modality) in scores:
                problems.append(f"line {number}: a second score of reader {reader} for case {case}, modality {modality}")
            scores.add((reader, case, modality))
    problems += [f"case {case} is scored but has no truth row" for case in sorted({c for _, c, _ in scores} - set(truth))]
    counts = {"NR": len({r for r, _, _ in scores}), "NM": len({m for _, _, m in scores}),
              "N0": sum(1 for t in truth.values() if t == 0), "N1": sum(1 for t in truth.values() if t == 1)}
    problems += [f"{name}: {header[name]} but the data hold {counts[name]}" for name in counts
                 if name in header and header[name] != counts[name]]
    return problems
