"""Turn exceptions into one plain sentence for users (CLI line, desktop error dialog)."""

from __future__ import annotations

import sqlite3


def describe(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"file not found: {exc.filename}"
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename or exc}"
    if isinstance(exc, sqlite3.DatabaseError):
        return f"the library database could not be used ({exc})"
    if isinstance(exc, FileNotFoundError | KeyError | ValueError) and exc.args:
        text = str(exc.args[0])
        # Our own errors are sentences; a bare key or value ("id") is a bug, not a message.
        if " " in text:
            return text
        return f"unexpected internal error ({type(exc).__name__}: {text!r})"
    return str(exc) or type(exc).__name__
