"""SQLite connections for a study: WAL, foreign keys ON, busy timeout, explicit transactions, migrations."""
from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from .schema import MIGRATIONS

BUSY_TIMEOUT_MS = 30_000


def utc_now() -> str:
    """ISO-8601 UTC timestamp with microseconds (sortable text)."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def connect(db_path: str | Path, *, create: bool = False) -> sqlite3.Connection:
    """Open the study database (migrating it to the latest schema); refuse a missing file unless `create`."""
    path = Path(db_path)
    if not create and not path.is_file():
        raise FileNotFoundError(f"study database {str(path)!r} does not exist; make it with `study create`")
    # isolation_level=None: autocommit mode, so every transaction below is explicit (BEGIN … COMMIT).
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    try:
        if not create:
            _check_is_study(conn, path)
        _configure(conn, path)
    except sqlite3.DatabaseError as exc:  # "file is not a database", a damaged file, a read-only folder...
        conn.close()
        raise ValueError(f"{str(path)!r} is not a usable study database ({exc}); give the file made by `study create`") from None
    except BaseException:
        conn.close()
        raise
    return conn


def _check_is_study(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse (before writing anything) an SQLite file that was not made by `study create`."""
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    if found is None:
        raise ValueError(f"{str(path)!r} is not a study database (it has no study tables); make one with `study create`")


def _configure(conn: sqlite3.Connection, path: Path) -> None:
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode.lower() != "wal":
        raise ValueError(f"study database {str(path)!r} could not switch to WAL journaling (got {mode!r})")
    conn.execute("PRAGMA synchronous = FULL")  # a committed rating survives power loss, not just a crash
    migrate(conn)


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error): takes the write lock up front so writers queue, never deadlock."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def schema_version(conn: sqlite3.Connection) -> int:
    """Highest applied migration (0 for an empty database)."""
    row = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    if row is None:
        return 0
    return conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()[0]


def migrate(conn: sqlite3.Connection, migrations: tuple[str, ...] = MIGRATIONS) -> int:
    """Apply every migration newer than the database, each in its own transaction; return the new version."""
    if schema_version(conn) == len(migrations):  # the common case: no write lock needed
        return len(migrations)
    with transaction(conn):
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
    current = schema_version(conn)
    if current > len(migrations):
        raise ValueError(f"study database schema version {current} is newer than this code knows ({len(migrations)}); update LeGend demo")
    for version, script in enumerate(migrations[current:], start=current + 1):
        with transaction(conn):
            if schema_version(conn) >= version:  # another process migrated meanwhile
                continue
            for statement in _statements(script):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (version, utc_now()))
    return schema_version(conn)


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (executescript would COMMIT our transaction)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        raise ValueError(f"migration has an unterminated statement: {buffer.strip()[:80]!r}")
    return statements
