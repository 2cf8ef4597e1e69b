"""Password hashing: scrypt with a per-password random salt, verified in constant time."""
from __future__ import annotations

import hashlib
import hmac
import secrets

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # ≈16 MiB and tens of ms per check: slow for guessing, fine for a login
SALT_BYTES, KEY_BYTES = 16, 32
MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    """'scrypt$N$r$p$salt$key' (hex) for storage; the plain password is never stored."""
    check_password_strength(password)
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${key.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """True when `password` matches `stored` (compared with hmac.compare_digest); False on any malformed record."""
    try:
        scheme, n, r, p, salt_hex, key_hex = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = bytes.fromhex(key_hex)
        actual = _scrypt(password or "", bytes.fromhex(salt_hex), int(n), int(r), int(p), len(expected))
    except (ValueError, AttributeError):
        return False
    return hmac.compare_digest(actual, expected)


def check_password_strength(password: str) -> None:
    """Raise ValueError for a password too short to protect a reader account."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        length = len(password) if isinstance(password, str) else type(password).__name__
        raise ValueError(f"password must have at least {MIN_PASSWORD_LENGTH} characters (got {length})")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int = KEY_BYTES) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=dklen)
