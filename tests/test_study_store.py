"""Study database: schema version and migrations, SQLite settings, password hashing, reader accounts."""
from __future__ import annotations

import sqlite3

import pytest

from legend_demo.study.db import connect, migrate, schema_version, transaction
from legend_demo.study.demo import write_demo_study
from legend_demo.study.manifest import read_manifest
from legend_demo.study.passwords import hash_password, verify_password
from legend_demo.study.readers import add_reader, authenticate
from legend_demo.study.schema import MIGRATIONS, SCHEMA_VERSION
from legend_demo.study.studies import create_study

pytestmark = pytest.mark.slow  # reader-study database (scrypt hashing): the slow tier (python -m pytest -m slow)


def test_new_database_is_at_latest_version_with_wal_and_foreign_keys(tmp_path):
    conn = connect(tmp_path / "s.db", create=True)
    assert schema_version(conn) == SCHEMA_VERSION == len(MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    with pytest.raises(sqlite3.IntegrityError):  # foreign keys enforced: no candidate for a missing case
        with transaction(conn):
            conn.execute("INSERT INTO candidates (case_id, source, is_real, path) VALUES (999, 'real', 1, 'x.png')")


def test_missing_database_is_refused_without_create(tmp_path):
    with pytest.raises(FileNotFoundError, match="study create"):
        connect(tmp_path / "absent.db")


def test_migrations_apply_in_order_once_and_keep_data(tmp_path):
    conn = connect(tmp_path / "s.db", create=True)
    extra = MIGRATIONS + ("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);",)
    assert migrate(conn, extra) == len(extra)
    conn.execute("INSERT INTO notes (body) VALUES ('kept')")
    assert migrate(conn, extra) == len(extra)  # re-running applies nothing (CREATE TABLE would fail if it did)
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY version")]
    assert versions == list(range(1, len(extra) + 1))
    assert conn.execute("SELECT body FROM notes").fetchone()[0] == "kept"


def test_failed_migration_rolls_back_and_newer_schema_is_refused(tmp_path):
    conn = connect(tmp_path / "s.db", create=True)
    broken = MIGRATIONS + ("CREATE TABLE half (id INTEGER);\nINSERT INTO no_such_table VALUES (1);",)
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, broken)
    assert schema_version(conn) == len(MIGRATIONS)
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'half'").fetchone() is None
    with pytest.raises(ValueError, match="newer"):
        migrate(conn, MIGRATIONS[:-1] if len(MIGRATIONS) > 1 else ())


def test_password_hash_is_salted_and_verified_in_constant_time():
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second and "correct horse" not in first  # per-password salt, never the plain text
    assert verify_password("correct horse", first) and verify_password("correct horse", second)
    assert not verify_password("correct hors", first)
    assert not verify_password("correct horse", "garbage") and not verify_password("x", "")
    with pytest.raises(ValueError, match="at least 8"):
        hash_password("short")


def test_readers_authenticate_only_with_their_own_password(tmp_path):
    create_study(tmp_path / "s.db", read_manifest(write_demo_study(tmp_path / "demo")), seed=1)
    conn = connect(tmp_path / "s.db")
    alice = add_reader(conn, "alice", "alice-password")
    bob = add_reader(conn, "bob", "bob-password")
    assert authenticate(conn, "alice", "alice-password") == alice
    assert authenticate(conn, "bob", "bob-password") == bob
    assert authenticate(conn, "alice", "bob-password") is None
    assert authenticate(conn, "nobody", "alice-password") is None
    stored = conn.execute("SELECT password_hash FROM readers WHERE name = 'alice'").fetchone()[0]
    assert "alice-password" not in stored
    with pytest.raises(ValueError, match="already exists"):
        add_reader(conn, "alice", "another-password")
