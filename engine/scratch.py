"""Training's scratch folders inside a library, and the ones a killed run left behind.

A training run keeps its cached features, exported candidate and vectors in a
``.learning-*`` folder in the library (same disk, so finishing is a rename, never a copy).
A run killed outright (SIGKILL, power cut, the window closed mid-run) leaves it there, a few
MB to a few hundred each time. Folders in use are registered here, so ``check`` and the
next open can tell a leftover from a folder a run in this process still needs.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

PREFIX = ".learning-"
_in_use: set[Path] = set()
_lock = threading.Lock()


def make(library: Path) -> Path:
    """A new scratch folder in ``library``, registered as in use until :func:`release`."""
    path = Path(tempfile.mkdtemp(prefix=PREFIX, dir=library)).resolve()
    with _lock:
        _in_use.add(path)
    return path


def release(path: Path) -> None:
    """Delete a scratch folder and forget it."""
    shutil.rmtree(path, ignore_errors=True)
    with _lock:
        _in_use.discard(Path(path).resolve())


def leftovers(library: Path) -> list[Path]:
    """Scratch folders in ``library`` that no run in this process uses: left by a run that
    was killed. (Another process training in the library holds its lock, so a caller that
    holds the lock knows these are not that process's either.)"""
    with _lock:
        busy = set(_in_use)
    return sorted(
        p for p in Path(library).glob(f"{PREFIX}*") if p.is_dir() and p.resolve() not in busy
    )
