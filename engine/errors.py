"""Turn exceptions into one plain sentence for users (CLI line, desktop error dialog)."""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from pathlib import Path

_DISK_FULL = "the disk is full; nothing more was saved: free some space and try again"
_READ_ONLY = "the library folder is read-only; ShopMatch needs to write there"


def _where(exc: OSError) -> str:
    return f" ({exc.filename})" if exc.filename else ""


def folder_problem(path: Path, what: str = "catalog folder") -> str | None:
    """Why ``path`` cannot be used as a folder, or None: a file named where a folder belongs
    (a sheet dragged into the folder field) is not 'not found', and saying so sent staff
    looking for a file they could see."""
    if path.is_dir():
        return None
    if path.exists():
        return f"{path} is a file, not a {what}"
    return f"{what} not found: {path}"


def database_damaged(exc: BaseException) -> bool:
    """Whether SQLite found the database itself damaged (not full, locked or read-only)."""
    text = str(exc).lower()
    return isinstance(exc, sqlite3.DatabaseError) and (
        "malformed" in text or "not a database" in text
    )


def describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return _DISK_FULL + _where(exc)
    if isinstance(exc, OSError) and exc.errno == errno.EROFS:
        return _READ_ONLY + _where(exc)
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"file not found: {exc.filename}"
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename or exc}"
    if isinstance(exc, sqlite3.DatabaseError):
        text = str(exc).lower()
        if "disk is full" in text:
            return _DISK_FULL
        if "readonly" in text or "read-only" in text:
            return _READ_ONLY
        if database_damaged(exc):
            return (
                f"the library database is damaged ({exc}); 'shopmatch check --repair' puts back "
                "its newest backup"
            )
        return f"the library database could not be used ({exc})"
    if isinstance(exc, FileNotFoundError | KeyError | ValueError) and exc.args:
        text = str(exc.args[0])
        # Our own errors are sentences; a bare key or value ("id") is a bug, not a message.
        if " " in text:
            return text
        return f"unexpected internal error ({type(exc).__name__}: {text!r})"
    return str(exc) or type(exc).__name__


def describe_storage(folder: Path, exc: BaseException) -> str:
    """Like :func:`describe`, but tells a full disk or a read-only folder apart from other
    I/O errors: SQLite reports both as a bare "disk I/O error" when it cannot even create its
    shared-memory file on open."""
    text = describe(exc)
    if text.startswith((_DISK_FULL, _READ_ONLY)) or not isinstance(exc, OSError | sqlite3.Error):
        return text
    try:
        if shutil.disk_usage(folder).free < (1 << 20):
            return _DISK_FULL
    except OSError:
        pass
    if not os.access(folder, os.W_OK):
        return _READ_ONLY
    return text
