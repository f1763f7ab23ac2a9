"""Rolling copies of the library database, and putting one back when the database is damaged.

Why: WAL and atomic writes protect the database from crashes, not from a disk or a sync tool
that damages its pages. The decisions in it are the staff's work and the training data, and
nothing else holds them. A backup is taken when a library is closed (and when it is opened
after a crash) if its contents changed since the newest backup and that one is at least an
hour old, always before a schema upgrade, and on request (``shopmatch backups --now``); the
newest ``KEEP`` are kept. Each is a consistent snapshot made with SQLite's online backup API,
written beside its final name, checked, and renamed into place, so neither a half-written
backup nor a copy of a damaged database ever exists under a backup's name. Derived files
(index, thumbnails, keypoints) are not copied: ``check --repair`` rebuilds them from the
restored database.
"""

from __future__ import annotations

import logging
import re
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.atomic import atomic_path

log = logging.getLogger(__name__)

FOLDER = "backups"  # inside the library folder
KEEP = 5
MIN_INTERVAL = timedelta(hours=1)
DATABASE_RESTORED = "the database was damaged: put back"  # how such a repair line starts
# shopmatch-<UTC time>[-<reason>][-<n>].db: n tells apart two taken within one second.
_NAME = re.compile(r"^shopmatch-(\d{8}-\d{6})(?:-([a-z]+))?(?:-(\d+))?\.db$")
# What a backup holds, in one row: a change to any of these makes a new backup due.
_CONTENTS = """
SELECT (SELECT count(*) FROM products), (SELECT count(*) FROM catalog_images),
       (SELECT count(*) FROM photos), (SELECT coalesce(max(id), 0) FROM decisions),
       (SELECT count(*) FROM decisions),
       (SELECT coalesce(group_concat(version || ':' || active), '') FROM models)
"""


@dataclass(frozen=True)
class Backup:
    path: Path
    taken: datetime  # UTC, from the file name
    reason: str  # "" (routine), "upgrade", "manual"

    def describe(self) -> str:
        """'the backup of 24 Nov 2026 18:02 (40 decisions)': local time, what it holds."""
        when = self.taken.astimezone().strftime("%d %b %Y %H:%M")
        held = decision_count(self.path)
        return f"the backup of {when}" + (f" ({held})" if held else "")


class NoBackupError(RuntimeError):
    """No intact backup to put back."""


def folder_of(library: Path) -> Path:
    return Path(library) / FOLDER


def list_backups(library: Path) -> list[Backup]:
    """The library's backups, newest first (temporary files of a cut-short backup ignored)."""
    found: list[tuple[Backup, int]] = []
    folder = folder_of(library)
    if not folder.is_dir():
        return []
    for p in folder.iterdir():
        m = _NAME.match(p.name)
        if m and p.is_file():
            taken = datetime.strptime(m.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
            found.append((Backup(p, taken, m.group(2) or ""), int(m.group(3) or 1)))
    # Two in one second (a manual one as the library opens): the later write is the newer.
    found.sort(key=lambda f: (f[0].taken, f[1], f[0].path.stat().st_mtime_ns), reverse=True)
    return [b for b, _n in found]


def damaged_message(library: Path, detail: str) -> tuple[str, Backup | None]:
    """One sentence for a damaged database, saying which backup can replace it, if any."""
    newest = next(iter(list_backups(library)), None)
    head = f"the library database is damaged ({detail})"
    if newest is None:
        return f"{head}; there is no backup of it in {folder_of(library)}", None
    return (
        f"{head}; 'shopmatch check --repair' puts back {newest.describe()} "
        "(what was decided after it is lost; the damaged file is kept)",
        newest,
    )


def _read_only(path: Path) -> sqlite3.Connection:
    # immutable=1: no WAL or lock files are made beside a backup just to look at it.
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)


def _contents(conn: sqlite3.Connection) -> tuple[object, ...]:
    return tuple(conn.execute(_CONTENTS).fetchone())


def decision_count(path: Path) -> str:
    """'40 decisions' for a backup file, or '' when it cannot be read."""
    try:
        conn = _read_only(path)
        try:
            n = int(conn.execute("SELECT count(*) FROM decisions").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return ""
    return f"{n} decision{'s' if n != 1 else ''}"


def intact(path: Path) -> bool:
    """Whether SQLite finds the backup whole (a full integrity check: it is about to be
    trusted with everything)."""
    try:
        conn = _read_only(path)
        try:
            return [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()] == ["ok"]
        finally:
            conn.close()
    except sqlite3.Error:
        return False


def take(
    conn: sqlite3.Connection, library: Path, reason: str = "", now: datetime | None = None
) -> Path:
    """Snapshot the open database ``conn`` into the library's backups; prune old ones."""
    now = now or datetime.now(UTC)
    stamp = now.strftime("%Y%m%d-%H%M%S")
    stem = f"shopmatch-{stamp}{'-' + reason if reason else ''}"
    target = folder_of(library) / f"{stem}.db"
    n = 1
    while target.exists():
        n += 1
        target = target.with_name(f"{stem}-{n}.db")
    with atomic_path(target) as tmp:
        dest = sqlite3.connect(str(tmp))
        try:
            conn.backup(dest)
            # A damaged database must never push intact backups out: the copy is checked
            # before it gets a backup's name (and before any old one is pruned).
            check = [r[0] for r in dest.execute("PRAGMA quick_check").fetchall()]
        finally:
            dest.close()
        if check != ["ok"]:
            raise sqlite3.DatabaseError(f"the database is damaged ({check[0]})")
    for old in list_backups(library)[KEEP:]:
        old.path.unlink(missing_ok=True)
    return target


def due(conn: sqlite3.Connection, library: Path, now: datetime | None = None) -> bool:
    """Whether a routine backup is due: none yet, or the newest is old enough and holds
    other contents than the database now does."""
    backups = list_backups(library)
    if not backups:
        return bool(_contents(conn)[0])  # an empty library has nothing to lose
    newest = backups[0]
    if (now or datetime.now(UTC)) - newest.taken < MIN_INTERVAL:
        return False
    try:
        old = _read_only(newest.path)
        try:
            return _contents(old) != _contents(conn)
        finally:
            old.close()
    except sqlite3.Error:
        return True  # an unreadable newest backup is no backup


def take_if_due(conn: sqlite3.Connection, library: Path) -> Path | None:
    """A routine backup when one is due; never raises (a full disk must not stop a close),
    the failure is logged and the next close tries again."""
    try:
        return take(conn, library) if due(conn, library) else None
    except (OSError, sqlite3.Error) as exc:
        log.warning("no backup of the library taken: %s", exc)
        return None


@dataclass(frozen=True)
class Restored:
    backup: Backup
    damaged_copy: Path  # where the damaged database files were kept


def restore_newest(library: Path, db_name: str) -> Restored:
    """Put the newest intact backup in place of the damaged database ``db_name``.

    The damaged files are copied aside first (nothing is deleted that might still be read
    by a specialist), then the WAL and shared-memory files go (SQLite would otherwise replay
    the damaged database's log onto the backup), and only then is the backup copied in by an
    atomic rename. A crash at any step leaves either the damaged database or the backup in
    place, and running the repair again finishes it. The caller holds the library lock and
    has closed its connection.
    """
    good = next((b for b in list_backups(library) if intact(b.path)), None)
    if good is None:
        raise NoBackupError(f"no intact backup in {folder_of(library)}")
    library = Path(library)
    aside = folder_of(library) / f"damaged-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
    aside.mkdir(parents=True, exist_ok=True)
    files = [library / (db_name + suffix) for suffix in ("", "-wal", "-shm")]
    for f in files:
        if f.exists():
            shutil.copy2(f, aside / f.name)
    for f in files[1:]:
        f.unlink(missing_ok=True)
    with atomic_path(files[0]) as tmp:
        shutil.copyfile(good.path, tmp)
    return Restored(good, aside)
