"""Signed device cookies: how the login throttle knows "this browser logged in to this name before" (issue 24 §3).

A successful login gives the browser a device cookie `<id>.<HMAC-SHA256(key, id)>` (HttpOnly, 30 days), where
`id` is random and `key` is a secret kept in the study database (`server_keys`, made on first use). A cookie is
honoured only when its signature verifies, so a client cannot make one up; the throttle stores and compares only
SHA-256(id), and spares a device only for names it logged in to before (legend_demo.study.throttle). Unlike a
client address, a device cookie cannot be forged with a header.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import sqlite3

from .db import transaction

DEVICE_KEY_NAME = "device-cookie-hmac"
ID_BYTES, KEY_BYTES = 16, 32
MAX_COOKIE_CHARS = 200


def device_key(conn: sqlite3.Connection) -> bytes:
    """The study's device-cookie signing key (made and stored on first use; the same for every server process)."""
    row = conn.execute("SELECT value FROM server_keys WHERE name = ?", (DEVICE_KEY_NAME,)).fetchone()
    if row is None:
        with transaction(conn):
            conn.execute("INSERT OR IGNORE INTO server_keys (name, value) VALUES (?, ?)",
                         (DEVICE_KEY_NAME, secrets.token_hex(KEY_BYTES)))
        row = conn.execute("SELECT value FROM server_keys WHERE name = ?", (DEVICE_KEY_NAME,)).fetchone()
    return bytes.fromhex(row[0])


def new_device_cookie(key: bytes) -> str:
    """A fresh signed device cookie value."""
    device_id = secrets.token_urlsafe(ID_BYTES)
    return f"{device_id}.{_signature(key, device_id)}"


def device_of(key: bytes, cookie: str | None) -> str | None:
    """SHA-256 (hex) of the cookie's device id when its signature verifies, else None (absent, malformed, forged)."""
    if not cookie or not isinstance(cookie, str) or len(cookie) > MAX_COOKIE_CHARS or cookie.count(".") != 1:
        return None
    device_id, signature = cookie.split(".")
    if not device_id or not hmac.compare_digest(signature.encode(), _signature(key, device_id).encode()):
        return None
    return hashlib.sha256(device_id.encode()).hexdigest()


def _signature(key: bytes, device_id: str) -> str:
    digest = hmac.new(key, b"legend-study-device\x00" + device_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
