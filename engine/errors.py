"""Turn exceptions into one plain sentence for users (CLI line, desktop error dialog)."""

from __future__ import annotations

import sqlite3


def describe(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"file not found: {exc.filename}"
    if isinstance(exc, FileNotFoundError | KeyError | ValueError) and exc.args:
        return str(exc.args[0])
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename or exc}"
    if isinstance(exc, sqlite3.DatabaseError):
        return f"the library database could not be used ({exc})"
    return str(exc) or type(exc).__name__
