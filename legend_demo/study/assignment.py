"""Each reader's blinded reading order: seeded per reader and study, real and synthetic evenly spread, and two
follow-ups of one prior kept far apart."""
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
    """One slot per candidate, in rounds: the first round shows one candidate of every case, the next round
    another, and so on, so two follow-ups of one prior never come close together (at least half a round apart,
    when the case counts allow). Each case shows its real candidate first in about half the cases, and every
    round is balanced between real and synthetic."""
    rng = random.Random(seed)
    by_case: dict[int, list[tuple[int, int, bool]]] = {}
    for c in candidates:
        by_case.setdefault(c["case_id"], []).append((c["case_id"], c["id"], bool(c["is_real"])))
    cases = sorted(by_case)
    real_first = [i % 2 == 0 for i in range(len(cases))]
    rng.shuffle(real_first)
    rounds: list[list[tuple[int, int, bool]]] = []
    for case_id, flag in zip(cases, real_first):
        items = by_case[case_id][:]
        rng.shuffle(items)
        items.sort(key=lambda item: item[2] != flag)  # stable: the real one first (or last), the rest shuffled
        for index, item in enumerate(items):
            if index == len(rounds):
                rounds.append([])
            rounds[index].append(item)
    first = rounds[0] if rounds else []
    order = balanced_shuffle([i for i in first if i[2]], [i for i in first if not i[2]], rng)
    min_gap = max(1, -(-len(first) // 2))
    for later in rounds[1:]:
        order += _spread_round(later, order, min_gap, rng)
    return [Slot(case_id, (candidate_id,)) for case_id, candidate_id, _ in order]


def _spread_round(items: list[tuple[int, int, bool]], before: list[tuple[int, int, bool]], min_gap: int,
                  rng: random.Random) -> list[tuple[int, int, bool]]:
    """Order one later round so each item comes ≥ min_gap slots after its case's previous slot (or as late as
    possible), choosing real or synthetic to keep the running mix close to the round's."""
    last_seen = {item[0]: index for index, item in enumerate(before)}
    share = sum(item[2] for item in items) / max(1, len(items))
    remaining, placed, reals = items[:], [], 0
    while remaining:
        here = len(before) + len(placed)
        eligible = [i for i in remaining if here - last_seen.get(i[0], -min_gap) >= min_gap]
        if not eligible:
            eligible = [max(remaining, key=lambda i: here - last_seen.get(i[0], -min_gap))]
        drift = reals - share * len(placed)  # real slots so far minus the round's share of them
        preferred = eligible if abs(drift) < 1 else [i for i in eligible if i[2] == (drift < 0)] or eligible
        item = rng.choice(preferred)
        remaining.remove(item)
        placed.append(item)
        reals += item[2]
    return placed


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
