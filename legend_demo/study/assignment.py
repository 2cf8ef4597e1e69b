"""Each reader's blinded reading order: seeded per reader and study, with real and synthetic evenly spread."""
from __future__ import annotations

import hashlib
import random
import sqlite3
from dataclasses import dataclass


@dataclass(frozen=True)
class Slot:
    """One screen of the session: a case and the candidate(s) shown, left to right."""

    case_id: int
    candidate_ids: tuple[int, ...]


def reader_seed(study_seed: int, reader_name: str) -> int:
    """Deterministic 64-bit seed from the study seed and the reader's name (stable across Python runs)."""
    digest = hashlib.sha256(f"{study_seed}\x00{reader_name}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def balanced_shuffle(real: list, synthetic: list, rng: random.Random) -> list:
    """Permuted-block randomisation: each block mixes real and synthetic in the study's overall ratio.

    Every block holds about two real items, so any prefix of the session is close to the overall mix
    while the order inside a block stays unpredictable.
    """
    real, synthetic = real[:], synthetic[:]
    rng.shuffle(real)
    rng.shuffle(synthetic)
    blocks = max(1, min(len(real), len(synthetic)) // 2)
    order = []
    for b in range(blocks):
        block = _chunk(real, b, blocks) + _chunk(synthetic, b, blocks)
        rng.shuffle(block)
        order += block
    return order


def _chunk(items: list, index: int, count: int) -> list:
    """The index-th of `count` nearly equal consecutive chunks."""
    return items[len(items) * index // count: len(items) * (index + 1) // count]


def single_slots(candidates: list[sqlite3.Row], seed: int) -> list[Slot]:
    """One slot per candidate; order balanced between real and synthetic."""
    real = [(c["case_id"], c["id"]) for c in candidates if c["is_real"]]
    synthetic = [(c["case_id"], c["id"]) for c in candidates if not c["is_real"]]
    order = balanced_shuffle(real, synthetic, random.Random(seed))
    return [Slot(case_id, (candidate_id,)) for case_id, candidate_id in order]


def pair_slots(candidates: list[sqlite3.Row], seed: int) -> list[Slot]:
    """One slot per case with its two candidates side by side; the real one is on the left in half the cases."""
    rng = random.Random(seed)
    by_case: dict[int, list[sqlite3.Row]] = {}
    for c in candidates:
        by_case.setdefault(c["case_id"], []).append(c)
    case_ids = sorted(by_case)
    rng.shuffle(case_ids)
    left_first = [i % 2 == 0 for i in range(len(case_ids))]
    rng.shuffle(left_first)
    slots = []
    for case_id, flag in zip(case_ids, left_first):
        pair = sorted(by_case[case_id], key=lambda c: (not c["is_real"], c["id"]))  # real first, if any
        if len(pair) != 2:
            raise ValueError(f"pair mode needs 2 candidates per case; case id {case_id} has {len(pair)}")
        ordered = pair if flag else pair[::-1]
        slots.append(Slot(case_id, tuple(c["id"] for c in ordered)))
    return slots


def assign_reader(conn: sqlite3.Connection, reader_id: int, reader_name: str) -> int:
    """Store the reader's slots (call inside the transaction that creates the reader); return their count."""
    study = conn.execute("SELECT seed, pair_mode FROM study WHERE id = 1").fetchone()
    candidates = conn.execute("SELECT id, case_id, is_real FROM candidates ORDER BY id").fetchall()
    seed = reader_seed(study["seed"], reader_name)
    slots = pair_slots(candidates, seed) if study["pair_mode"] else single_slots(candidates, seed)
    for position, slot in enumerate(slots, start=1):
        conn.execute("INSERT INTO slots (reader_id, position, case_id) VALUES (?, ?, ?)", (reader_id, position, slot.case_id))
        for side, candidate_id in enumerate(slot.candidate_ids):
            conn.execute(
                "INSERT INTO slot_items (reader_id, position, side, candidate_id) VALUES (?, ?, ?, ?)",
                (reader_id, position, side, candidate_id),
            )
    return len(slots)
