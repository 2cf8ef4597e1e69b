"""The admin summary: per source Likert and confidence means with bootstrap intervals inside the 1–5 scale,
lesion-location answers, time per case, Turing-test accuracy, inter-reader agreement, and each reader's progress."""
from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .analysis import MIN_N_FOR_INTERVAL, Estimate, fleiss_kappa, icc_2_1, mean_bootstrap_interval, wilson_interval
from .ratings import LESION_CHOICES, LIKERT_ITEMS

METHODS_NOTE = (f"Means with 95% percentile-bootstrap intervals over ratings (seeded; always inside the 1–5 scale; "
                f"no interval below n = {MIN_N_FOR_INTERVAL}); accuracy with 95% Wilson intervals. Ratings are treated "
                "as independent: use the iMRMC export for reader-clustered inference. Time per case: seconds the case "
                "was on screen in an active study page, summed over reloads (median over timed ratings).")


@dataclass(frozen=True)
class SourceSummary:
    source: str
    is_real: bool
    ratings: int
    likert: dict[str, Estimate]  # item → mean with 95% bootstrap interval
    turing_accuracy: Estimate  # share of correct real/synthetic calls, 95% Wilson interval
    confidence: Estimate = field(default_factory=lambda: Estimate(math.nan, math.nan, math.nan, 0))
    location: dict[str, int] = field(default_factory=dict)  # "yes" / "partly" / "no" → count
    median_time_s: float = math.nan  # over ratings with a measured time (> 0 s)
    timed: int = 0


@dataclass(frozen=True)
class StudySummary:
    readers: int
    ratings: int
    sources: list[SourceSummary]
    turing_accuracy: Estimate
    fleiss_kappa_real_vs_synthetic: float  # over candidates rated by every reader
    icc_2_1: dict[str, float] = field(default_factory=dict)  # Likert item → ICC(2,1), same candidates
    agreement_candidates: int = 0

    def table(self) -> list[dict[str, Any]]:
        """One row per source for display (CLI, admin page): Likert means and Turing-test accuracy."""
        rows = []
        for s in self.sources:
            row = {"source": s.source, "real": "yes" if s.is_real else "no", "ratings": s.ratings}
            row.update({item: s.likert[item].as_text() for item in LIKERT_ITEMS})
            row["turing accuracy"] = s.turing_accuracy.as_text()
            rows.append(row)
        return rows

    def answers_table(self) -> list[dict[str, Any]]:
        """One row per source: confidence in the real/synthetic call, lesion-location answers, time per case."""
        rows = []
        for s in self.sources:
            row = {"source": s.source, "ratings": s.ratings, "confidence": s.confidence.as_text()}
            for choice in LESION_CHOICES:
                count = s.location.get(choice, 0)
                row[f"location {choice}"] = f"{count} ({100 * count / s.ratings:.0f}%)" if s.ratings else "–"
            row["median time per case"] = "–" if math.isnan(s.median_time_s) else f"{s.median_time_s:.1f} s (n={s.timed})"
            rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        def est(e: Estimate) -> dict[str, Any]:
            return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in vars(e).items()}

        def num(x: float) -> float | None:
            return None if math.isnan(x) else x

        return {
            "readers": self.readers,
            "ratings": self.ratings,
            "methods": METHODS_NOTE,
            "turing_accuracy": est(self.turing_accuracy),
            "fleiss_kappa_real_vs_synthetic": num(self.fleiss_kappa_real_vs_synthetic),
            "icc_2_1": {k: num(v) for k, v in self.icc_2_1.items()},
            "agreement_candidates": self.agreement_candidates,
            "sources": [
                {"source": s.source, "is_real": s.is_real, "ratings": s.ratings,
                 "likert": {k: est(v) for k, v in s.likert.items()}, "turing_accuracy": est(s.turing_accuracy),
                 "confidence": est(s.confidence), "location": dict(s.location),
                 "median_time_s": num(s.median_time_s), "timed_ratings": s.timed}
                for s in self.sources
            ],
        }


def _rating_rows(conn: sqlite3.Connection) -> list[sqlite3.Row]:
    return conn.execute(
        f"""SELECT r.reader_id, r.candidate_id, d.source, d.is_real, r.called_synthetic, r.confidence, r.lesion_location,
                   r.time_on_case_s, {', '.join('r.' + i for i in LIKERT_ITEMS)}
            FROM ratings r JOIN candidates d ON d.id = r.candidate_id ORDER BY d.source, r.candidate_id, r.reader_id"""
    ).fetchall()


def _correct(row: sqlite3.Row) -> bool:
    return bool(row["called_synthetic"]) != bool(row["is_real"])


def _source_summary(source: str, group: list[sqlite3.Row]) -> SourceSummary:
    times = [r["time_on_case_s"] for r in group if r["time_on_case_s"] > 0]
    return SourceSummary(
        source=source, is_real=bool(group[0]["is_real"]), ratings=len(group),
        likert={item: mean_bootstrap_interval([r[item] for r in group]) for item in LIKERT_ITEMS},
        turing_accuracy=wilson_interval(sum(_correct(r) for r in group), len(group)),
        confidence=mean_bootstrap_interval([r["confidence"] for r in group]),
        location={choice: sum(r["lesion_location"] == choice for r in group) for choice in LESION_CHOICES},
        median_time_s=float(np.median(times)) if times else math.nan, timed=len(times),
    )


def summarise(conn: sqlite3.Connection) -> StudySummary:
    """Compute the study summary from every stored rating (read in one snapshot)."""
    conn.execute("BEGIN")  # one consistent read snapshot while readers keep submitting
    try:
        rows = _rating_rows(conn)
        readers = conn.execute("SELECT COUNT(*) FROM readers").fetchone()[0]
    finally:
        conn.execute("COMMIT")
    by_source: dict[str, list[sqlite3.Row]] = {}
    for row in rows:
        by_source.setdefault(row["source"], []).append(row)
    sources = [_source_summary(source, group)
               for source, group in sorted(by_source.items(), key=lambda kv: (not kv[1][0]["is_real"], kv[0]))]
    kappa, iccs, n_common = _agreement(rows)
    return StudySummary(
        readers=readers, ratings=len(rows), sources=sources,
        turing_accuracy=wilson_interval(sum(_correct(r) for r in rows), len(rows)),
        fleiss_kappa_real_vs_synthetic=kappa, icc_2_1=iccs, agreement_candidates=n_common,
    )


def reader_progress(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Per reader: cases rated, cases left, withdrawn (flagged) cases, last activity (a rating, a draft answer
    or a time report; UTC), and the median time per rated case."""
    from datetime import datetime, timezone

    from .reading import progress

    result = []
    for reader in conn.execute("SELECT id, name FROM readers ORDER BY name").fetchall():
        done, total = progress(conn, reader["id"])
        slots = conn.execute("SELECT COUNT(*) FROM slots WHERE reader_id = ?", (reader["id"],)).fetchone()[0]
        stamps = [conn.execute("SELECT MAX(COALESCE(updated_at, submitted_at)) FROM ratings WHERE reader_id = ?",
                               (reader["id"],)).fetchone()[0],
                  conn.execute("SELECT MAX(updated_at) FROM drafts WHERE reader_id = ?", (reader["id"],)).fetchone()[0]]
        reported = conn.execute("SELECT MAX(last_report) FROM case_time WHERE reader_id = ? AND reports > 0",
                                (reader["id"],)).fetchone()[0]
        if reported is not None:
            stamps.append(datetime.fromtimestamp(reported, timezone.utc).isoformat(timespec="microseconds"))
        last = max((s for s in stamps if s), default=None)
        times = [r[0] for r in conn.execute(
            "SELECT time_on_case_s FROM ratings WHERE reader_id = ? AND time_on_case_s > 0 GROUP BY position",
            (reader["id"],)).fetchall()]
        result.append({
            "reader": reader["name"], "done": done, "left": total - done, "withdrawn": slots - total,
            "last activity (UTC)": last[:19].replace("T", " ") if last else "never",
            "median time per case": f"{float(np.median(times)):.1f} s" if times else "–",
        })
    return result


def _agreement(rows: list[sqlite3.Row]) -> tuple[float, dict[str, float], int]:
    """Fleiss' κ of the real/synthetic call and ICC(2,1) per Likert item over candidates every rater rated."""
    raters = sorted({r["reader_id"] for r in rows})
    by_candidate: dict[int, dict[int, sqlite3.Row]] = {}
    for r in rows:
        by_candidate.setdefault(r["candidate_id"], {})[r["reader_id"]] = r
    common = [c for c, ratings in sorted(by_candidate.items()) if len(ratings) == len(raters)]
    nan_iccs = {item: math.nan for item in LIKERT_ITEMS}
    if len(raters) < 2 or not common:
        return math.nan, nan_iccs, len(common)
    synthetic_calls = np.array([[by_candidate[c][r]["called_synthetic"] for r in raters] for c in common])  # (cands, raters)
    counts = np.stack([(synthetic_calls == 0).sum(axis=1), (synthetic_calls == 1).sum(axis=1)], axis=1)  # (cands, 2)
    kappa = fleiss_kappa(counts)
    if len(common) < 2:
        return kappa, nan_iccs, len(common)
    iccs = {item: icc_2_1(np.array([[by_candidate[c][r][item] for r in raters] for c in common])) for item in LIKERT_ITEMS}
    return kappa, iccs, len(common)
