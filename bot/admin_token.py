"""The server's admin token: the credential that creates meetings over HTTP.

Only its SHA-256 is stored, in ``admin-token.sha256`` next to the database, so the
data directory never holds the token itself. ``meetmood serve`` makes one at first
start and prints it once; ``meetmood admin-token`` replaces it (the old one stops
working at once, even on a running server, because every check reads the file).
``meetmood meeting create`` works on the database directly and never needs it.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import tempfile
from pathlib import Path

from bot.settings import StorageSettings
from bot.store import hash_token, hashed_token_matches, tokens_equal

FILE_NAME = "admin-token.sha256"
#: What the browser's admin cookie proves knowledge of (see :func:`session_value`).
_SESSION_LABEL = b"meetmood admin session"


def admin_token_path(storage: StorageSettings) -> Path:
    """Where the admin token's hash lives: beside the database."""
    return storage.database_path.parent / FILE_NAME


def write_admin_token(path: Path, token: str | None = None) -> str:
    """Store the hash of ``token`` (a new random one by default) and return the token.

    Written to a private temporary file and renamed over the old one, so a reader never
    sees half a hash.
    """
    token = token or secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".admin-token-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(hash_token(token) + "\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return token


def ensure_admin_token(path: Path) -> str | None:
    """Make the admin token if there is none yet; returns it then (to print once), else None."""
    if path.exists():
        return None
    return write_admin_token(path)


def read_admin_hash(path: Path) -> str | None:
    """The stored hash, or None when no admin token has been made (or the file is unreadable)."""
    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if len(text) == 64 else None


def admin_token_matches(stored_hash: str | None, token: str | None) -> bool:
    """Constant-time check of an admin token against the stored hash."""
    return hashed_token_matches(token, stored_hash)


def session_value(stored_hash: str) -> str:
    """The admin cookie's value: derived from the stored hash, so not the token itself.

    It stops working when the token is replaced, and cannot be used as a Bearer token.
    """
    return hmac.new(stored_hash.encode(), _SESSION_LABEL, hashlib.sha256).hexdigest()


def session_matches(stored_hash: str | None, value: str | None) -> bool:
    """Constant-time check of an admin cookie."""
    return bool(stored_hash) and tokens_equal(value, session_value(str(stored_hash)))
