"""The study database schema as an ordered list of migrations; `schema_version` records the applied ones."""
from __future__ import annotations

# Each entry is applied once, in order, inside one transaction; never edit a released entry, append a new one.
MIGRATIONS: tuple[str, ...] = (
    # 1: studies, cases, candidates, readers, assignments, ratings, sessions
    """
    CREATE TABLE study (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        name TEXT NOT NULL,
        root TEXT NOT NULL,
        seed INTEGER NOT NULL,
        allow_changes INTEGER NOT NULL CHECK (allow_changes IN (0, 1)),
        pair_mode INTEGER NOT NULL CHECK (pair_mode IN (0, 1)),
        admin_password_hash TEXT,
        ui_secret TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE cases (
        id INTEGER PRIMARY KEY,
        case_key TEXT NOT NULL UNIQUE,
        prior_path TEXT NOT NULL,
        text TEXT NOT NULL CHECK (length(trim(text)) > 0)
    );
    CREATE TABLE candidates (
        id INTEGER PRIMARY KEY,
        case_id INTEGER NOT NULL REFERENCES cases(id) ON DELETE CASCADE,
        source TEXT NOT NULL CHECK (length(trim(source)) > 0),
        is_real INTEGER NOT NULL CHECK (is_real IN (0, 1)),
        path TEXT NOT NULL,
        UNIQUE (case_id, source)
    );
    CREATE TABLE readers (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE slots (
        reader_id INTEGER NOT NULL REFERENCES readers(id) ON DELETE CASCADE,
        position INTEGER NOT NULL CHECK (position >= 1),
        case_id INTEGER NOT NULL REFERENCES cases(id),
        PRIMARY KEY (reader_id, position)
    );
    CREATE TABLE slot_items (
        reader_id INTEGER NOT NULL,
        position INTEGER NOT NULL,
        side INTEGER NOT NULL CHECK (side IN (0, 1)),
        candidate_id INTEGER NOT NULL REFERENCES candidates(id),
        PRIMARY KEY (reader_id, position, side),
        UNIQUE (reader_id, candidate_id),
        FOREIGN KEY (reader_id, position) REFERENCES slots(reader_id, position) ON DELETE CASCADE
    );
    CREATE TABLE ratings (
        id INTEGER PRIMARY KEY,
        reader_id INTEGER NOT NULL REFERENCES readers(id),
        position INTEGER NOT NULL,
        side INTEGER NOT NULL,
        candidate_id INTEGER NOT NULL REFERENCES candidates(id),
        realism INTEGER NOT NULL CHECK (realism BETWEEN 1 AND 5),
        faithfulness INTEGER NOT NULL CHECK (faithfulness BETWEEN 1 AND 5),
        anatomy INTEGER NOT NULL CHECK (anatomy BETWEEN 1 AND 5),
        called_synthetic INTEGER NOT NULL CHECK (called_synthetic IN (0, 1)),
        confidence INTEGER NOT NULL CHECK (confidence BETWEEN 1 AND 5),
        lesion_location TEXT NOT NULL CHECK (lesion_location IN ('yes', 'partly', 'no')),
        comment TEXT NOT NULL DEFAULT '',
        time_on_case_s REAL NOT NULL CHECK (time_on_case_s >= 0),
        submitted_at TEXT NOT NULL,
        updated_at TEXT,
        UNIQUE (reader_id, candidate_id),
        FOREIGN KEY (reader_id, position, side) REFERENCES slot_items(reader_id, position, side)
    );
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        reader_id INTEGER NOT NULL REFERENCES readers(id) ON DELETE CASCADE,
        created_at TEXT NOT NULL,
        shown_position INTEGER,
        shown_at REAL
    );
    CREATE INDEX ratings_by_candidate ON ratings(candidate_id);
    """,
    # 2: expiring role sessions (reader or admin), login attempts for throttling, flagged cases, file hashes;
    # the browser-state secret goes (sessions are HttpOnly cookies now). Old sessions end: everyone logs in again.
    """
    DROP TABLE sessions;
    CREATE TABLE sessions (
        token_hash TEXT PRIMARY KEY,
        role TEXT NOT NULL CHECK (role IN ('reader', 'admin')),
        reader_id INTEGER REFERENCES readers(id) ON DELETE CASCADE,
        created_at REAL NOT NULL,
        last_seen REAL NOT NULL,
        shown_position INTEGER,
        shown_at REAL,
        CHECK ((role = 'reader') = (reader_id IS NOT NULL))
    );
    CREATE INDEX sessions_by_reader ON sessions(reader_id);
    CREATE TABLE login_attempts (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        account_key TEXT NOT NULL,
        reader_id INTEGER REFERENCES readers(id) ON DELETE SET NULL,
        client TEXT NOT NULL,
        outcome TEXT NOT NULL CHECK (outcome IN ('pending', 'ok', 'failed', 'refused'))
    );
    CREATE INDEX login_attempts_by_account ON login_attempts(account_key, at);
    CREATE INDEX login_attempts_by_client ON login_attempts(client, at);
    CREATE TABLE case_flags (
        case_id INTEGER PRIMARY KEY REFERENCES cases(id) ON DELETE CASCADE,
        reason TEXT NOT NULL,
        flagged_at TEXT NOT NULL
    );
    ALTER TABLE cases ADD COLUMN prior_sha256 TEXT;
    ALTER TABLE candidates ADD COLUMN sha256 TEXT;
    ALTER TABLE study DROP COLUMN ui_secret;
    """,
    # 3 (issue 24): the device of a login attempt (a SHA-256 of its signed device cookie's id), the admin's unlocks
    # of a name, and the server's keys (the device cookies' HMAC key, made on first use).
    """
    ALTER TABLE login_attempts ADD COLUMN device TEXT;
    CREATE INDEX login_attempts_by_device ON login_attempts(device, account_key, at);
    CREATE TABLE login_unlocks (
        account_key TEXT PRIMARY KEY,
        at REAL NOT NULL
    );
    CREATE TABLE server_keys (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 4 (issue 25): a reader's unsubmitted answers per case (kept across reloads and logins) and the time each case was on
    # screen in an active page (legend_demo.study.timing), summed over every page that showed it; the sessions'
    # shown_position / shown_at columns are no longer used (time per case lives in case_time).
    """
    CREATE TABLE drafts (
        reader_id INTEGER NOT NULL,
        position INTEGER NOT NULL,
        answers TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (reader_id, position),
        FOREIGN KEY (reader_id, position) REFERENCES slots(reader_id, position) ON DELETE CASCADE
    );
    CREATE TABLE case_time (
        reader_id INTEGER NOT NULL,
        position INTEGER NOT NULL,
        active_s REAL NOT NULL DEFAULT 0 CHECK (active_s >= 0),
        first_shown REAL NOT NULL,
        last_report REAL NOT NULL,
        reports INTEGER NOT NULL DEFAULT 0,
        recent_reports TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (reader_id, position),
        FOREIGN KEY (reader_id, position) REFERENCES slots(reader_id, position) ON DELETE CASCADE
    );
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)
