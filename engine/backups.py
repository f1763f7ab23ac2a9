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
import os
import re
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.atomic import atomic_path
from engine.errors import describe

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
        if not m or not p.is_file():
            continue
        try:
            taken = datetime.strptime(m.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=UTC)
        except ValueError:  # a look-alike name with an impossible date: not one of ours
            continue
        found.append((Backup(p, taken, m.group(2) or ""), int(m.group(3) or 1)))
    # Two in one second (a manual one as the library opens): the later write is the newer.
    found.sort(key=lambda f: (f[0].taken, f[1], f[0].path.stat().st_mtime_ns), reverse=True)
    return [b for b, _n in found]


def damaged_message(library: Path, detail: str) -> tuple[str, Backup | None]:
    """One sentence for a damaged database, saying which backup can replace it, if any."""
    newest = newest_intact(library)
    head = f"the library database is damaged ({detail})"
    if newest is None:
        none = "no intact backup" if list_backups(library) else "no backup"
        return f"{head}; there is {none} of it in {folder_of(library)}", None
    return (
        f"{head}; 'shopmatch check --repair' puts back {newest.describe()} "
        "and recovers the decisions made after it from the damaged file where it can still "
        "be read (the damaged file is kept)",
        newest,
    )


def _read_only(path: Path) -> sqlite3.Connection:
    # immutable=1: no WAL or lock files are made beside a backup just to look at it.
    return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)


def _contents(conn: sqlite3.Connection) -> tuple[object, ...]:
    return tuple(conn.execute(_CONTENTS).fetchone())


def _figure(path: Path, sql: str) -> int | None:
    """One number out of a backup file, or None when it cannot be read."""
    try:
        conn = _read_only(path)
        try:
            return int(conn.execute(sql).fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return None


def decision_count(path: Path) -> str:
    """'40 decisions' for a backup file, or '' when it cannot be read."""
    n = _figure(path, "SELECT count(*) FROM decisions")
    return "" if n is None else f"{n} decision{'s' if n != 1 else ''}"


def integrity_problems(conn: sqlite3.Connection) -> list[str]:
    """SQLite's complaints about a whole database, indexes included, one per line ([] when
    whole). The full check, not quick_check, which misses an index that disagrees with its
    table: a few hundredths of a second for a 35 MB library."""
    try:
        rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall()]
    except sqlite3.DatabaseError as exc:  # damage bad enough that SQLite cannot even check
        rows = [str(exc)]
    if rows == ["ok"]:
        return []
    # SQLite's report is a multi-line dump with "*** in database main ***" headings.
    lines = [x.strip() for r in rows for x in r.splitlines() if x.strip()]
    return [x for x in lines if not x.startswith("***")] or lines


def intact(path: Path) -> bool:
    """Whether the backup is a whole ShopMatch database: not empty (SQLite reads an empty
    file as a valid empty database), a schema of ours, and a full integrity check (it is
    about to be trusted with everything)."""
    try:
        if path.stat().st_size == 0:
            return False
        conn = _read_only(path)
        try:
            ours = conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE name IN ('decisions', 'products')"
            ).fetchone()[0]
            return ours == 2 and not integrity_problems(conn)
        finally:
            conn.close()
    except (OSError, sqlite3.Error, UnicodeDecodeError):
        return False


def newest_intact(library: Path) -> Backup | None:
    """The intact backup holding the latest decision (decisions are only ever appended), the
    newest by name among equals: one named by a clock that ran ahead is not put back over a
    later one."""

    def latest(b: Backup) -> int:
        n = _figure(b.path, "SELECT coalesce(max(id), 0) FROM decisions")
        return -1 if n is None else n

    found = sorted(list_backups(library), key=latest, reverse=True)
    return next((b for b in found if intact(b.path)), None)


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
            # (indexes included) before it gets a backup's name and before any is pruned.
            problems = integrity_problems(dest)
        finally:
            dest.close()
        if problems:
            raise sqlite3.DatabaseError(problems[0])
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
    age = (now or datetime.now(UTC)) - newest.taken
    if timedelta(0) <= age < MIN_INTERVAL:  # (a backup from the future: the clock was wrong)
        return False
    try:
        old = _read_only(newest.path)
        try:
            then = _contents(old)
        finally:
            old.close()
    except sqlite3.Error:
        return True  # an unreadable newest backup is no backup
    current = _contents(conn)
    if current[4] < then[4]:  # type: ignore[operator]
        # Decisions are append-only (undo is a row too): fewer than the newest backup holds
        # means this database lost some, so it must not push good backups out.
        raise FewerDecisionsError(
            f"the database holds {current[4]} decisions and its newest backup {then[4]}, so "
            "some were lost since (an older copy put back by hand, or a sync tool); keep this "
            f"database by moving the newer backups out of {FOLDER}, or put that backup back "
            "by copying it over shopmatch.db"
        )
    return current != then


class FewerDecisionsError(sqlite3.DatabaseError):
    """The database holds fewer decisions than its newest backup: no backup over it."""


def take_if_due(conn: sqlite3.Connection, library: Path) -> Path | None:
    """A routine backup when one is due; never raises (a full disk must not stop a close),
    the failure is logged and the next close tries again."""
    try:
        taken = take(conn, library) if due(conn, library) else None
    except (OSError, sqlite3.Error, UnicodeDecodeError) as exc:
        folder = folder_problem(library) if isinstance(exc, OSError) else ""
        why = folder or (describe(exc) if isinstance(exc, OSError) else str(exc).splitlines()[0])
        # (FewerDecisionsError's own sentence says what happened and what to do.)
        if isinstance(exc, sqlite3.DatabaseError | UnicodeDecodeError) and not isinstance(
            exc, sqlite3.OperationalError | FewerDecisionsError
        ):
            why = f"the database is damaged ({why}); 'shopmatch check' says more"
        message = f"no backup of the library taken: {why}"
        if str(library) not in _failing:  # once, not at every open and close
            log.warning("%s", message)
        _failing[str(library)] = why
        return None
    _failing.pop(str(library), None)
    return taken


# Library folders whose last routine backup failed, with why: logged once, and said by
# 'check' (a backup that silently stopped is no backup).
_failing: dict[str, str] = {}


def problem(library: Path) -> str:
    """Why no backup of ``library`` can be taken ('' when one can): a backups path that is
    not a writable folder, or else why this process's last routine backup failed. Shown by
    'check', 'status' and the app, since a failing backup is otherwise only logged."""
    return folder_problem(library) or _failing.get(str(library), "")


def folder_problem(library: Path) -> str:
    """A backups path that is a file, or a folder this process cannot write ('' if fine)."""
    folder = folder_of(library)
    if folder.exists() and not folder.is_dir():
        return f"its {FOLDER} folder is a file"
    if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        return f"its {FOLDER} folder is read-only"
    return ""


@dataclass(frozen=True)
class Restored:
    backup: Backup
    damaged_copy: Path  # where the damaged database files were kept


def restore_newest(library: Path, db_name: str) -> Restored:
    """Put the newest intact backup in place of the damaged database ``db_name``.

    The damaged files are copied aside first (nothing is deleted that might still be read
    by a specialist), then the backup is copied beside the database, then the WAL and
    shared-memory files go (SQLite would otherwise replay the damaged database's log onto the
    backup), and only then does the copy take the database's place by an atomic rename. A
    crash at any step leaves either the damaged database or the backup in place, and running
    the repair again finishes it; a full disk stops before anything was removed, and leaves
    no half copy behind to fill it further. The caller holds the library lock and has closed
    its connection.
    """
    good = newest_intact(library)
    if good is None:
        raise NoBackupError(f"no intact backup in {folder_of(library)}")
    library = Path(library)
    aside = folder_of(library) / f"damaged-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}"
    aside.mkdir(parents=True, exist_ok=True)
    files = [library / (db_name + suffix) for suffix in ("", "-wal", "-shm")]
    log_gone = False
    try:
        for f in files:
            if f.exists():
                shutil.copy2(f, aside / f.name)
        # Until the decisions made since are read back out of the damaged copy (the caller's
        # next step), this marker says they are owed: a crash in between is finished on the
        # next open instead of leaving them behind unsaid.
        (aside / PENDING).write_text(good.path.name, encoding="utf-8")
        with atomic_path(files[0]) as tmp:
            shutil.copyfile(good.path, tmp)
            log_gone = True
            for f in files[1:]:
                f.unlink(missing_ok=True)
    except BaseException:
        if not log_gone:  # the damaged files are untouched: the copy aside is only a copy
            shutil.rmtree(aside, ignore_errors=True)
        raise
    return Restored(good, aside)


PENDING = "recovery-pending"  # in a damaged-<time> folder: its decisions not yet read back


def pending_recoveries(library: Path) -> list[Restored]:
    """Restores whose read-back of later decisions never finished (a crash in between)."""
    by_name = {b.path.name: b for b in list_backups(library)}
    out = []
    for marker in sorted(folder_of(library).glob(f"damaged-*/{PENDING}")):
        try:
            name = marker.read_text(encoding="utf-8").strip()
        except OSError:
            continue
        backup = by_name.get(name) or Backup(folder_of(library) / name, datetime.now(UTC), "")
        out.append(Restored(backup, marker.parent))
    return out


def recovery_done(restored: Restored) -> None:
    (restored.damaged_copy / PENDING).unlink(missing_ok=True)
