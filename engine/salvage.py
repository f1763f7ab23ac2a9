"""Recover, from a damaged database, the decisions made after the backup that replaced it.

Why: a backup can be an hour or a day old, and the decisions made since are staff work that
nothing else holds. Damage usually hits a few pages, and the newest decisions often sit
whole in the WAL, so most of them can still be read. After a backup is put back
(``backups.restore_newest``), a copy of the damaged files it kept aside is read row by row,
around unreadable pages, and every decision newer than the backup is written back with its
own id, together with the photo, the product and the model version it needs when the backup
lacks them. Instant memory then catches up as after any confirmation. Only what decisions
need is recovered: products, catalog images and photos with no decision since the backup
come back with a re-import or a re-match.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import memory
from engine.db import transaction, utcnow

if TYPE_CHECKING:
    from engine.library import Library

MAGIC = b"SQLite format 3\x00"
CHUNK = 256  # rowids read per query; a chunk SQLite cannot read is read again row by row
GIVE_UP = 16  # chunks in a row with nothing readable past the end: the table ends there
_ROW = tuple[Any, ...]


@dataclass
class Salvage:
    """What was recovered from the damaged copy, for the line that reports the repair."""

    decisions: int = 0
    photos: int = 0
    products: int = 0
    models: list[str] = field(default_factory=list)
    lost: int = 0  # decisions the damaged file held that could not be written back (on an
    # unreadable page, or their photo or product unreadable)
    unreadable: bool = False  # where the decisions end could not be read: more may be lost
    why_not: str = ""  # set when nothing could be tried (the copy unreadable, another library)

    def describe(self) -> str:
        """'3 decisions made after it recovered from the damaged file', or why not."""
        if self.why_not:
            return f"decisions made after it are lost ({self.why_not})"
        parts = []
        if self.decisions:
            n = self.decisions
            parts.append(
                f"{n} decision{'s' if n != 1 else ''} made after it recovered from the damaged "
                "file" + (f" with {_count(self.photos, 'photo')}" if self.photos else "")
            )
        if self.products:
            parts.append(
                f"{_count(self.products, 'product')} added since it came back without "
                "pictures: import the catalog again"
            )
        if self.models:
            parts.append(f"model version {', '.join(self.models)} kept (activate it to use it)")
        if self.lost:
            parts.append(f"{_count(self.lost, 'decision')} made after it could not be recovered")
        if self.unreadable:
            parts.append("the end of the damaged file's decisions could not be read")
        return "; ".join(parts) or "no decision was made after it"


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def recover(lib: Library, damaged_dir: Path, db_name: str) -> Salvage:
    """Write back into ``lib`` (just restored from a backup) the decisions of the damaged
    database kept in ``damaged_dir`` that the backup lacks. Never raises for the damaged
    copy's sake: what cannot be read is counted and said."""
    with tempfile.TemporaryDirectory(prefix="shopmatch-salvage-") as work:
        old = _open_copy(damaged_dir, db_name, Path(work))
        if old is None:
            return Salvage(why_not="the damaged file cannot be read at all")
        with closing(old):
            return _Recovery(lib, old).run()


def _open_copy(damaged_dir: Path, db_name: str, work: Path) -> sqlite3.Connection | None:
    """A read-only connection to a copy of the damaged database in ``work`` (the kept files
    stay as they are), its WAL replayed when that reads; a header whose first line is
    damaged is mended in the copy (the rest of page 1 is what matters)."""
    src = damaged_dir / db_name
    if not src.is_file() or src.stat().st_size < 512:
        return None
    copy = work / db_name
    wal = damaged_dir / f"{db_name}-wal"
    for with_wal in (True, False) if wal.is_file() else (False,):
        # A log from another state can make things worse: then the file alone is read.
        shutil.copyfile(src, copy)
        for suffix in ("-wal", "-shm"):
            (work / f"{db_name}{suffix}").unlink(missing_ok=True)
        if with_wal:
            shutil.copyfile(wal, work / wal.name)
        for header in _headers(copy):
            if header:
                with open(copy, "r+b") as f:
                    f.write(header)
            conn = sqlite3.connect(f"{copy.as_uri()}?mode=ro", uri=True)
            try:
                # Reads a file whose size disagrees with its header (cut short by a copy
                # that failed): SQLite otherwise refuses the whole schema.
                conn.execute("PRAGMA writable_schema = ON")
                names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
                if {"decisions", "photos"} <= names:
                    conn.execute("SELECT 1 FROM decisions LIMIT 1").fetchall()
                    return conn
            except (sqlite3.Error, UnicodeDecodeError):
                pass
            conn.close()
    return None


def _headers(copy: Path) -> list[bytes]:
    """The file's own first 24 header bytes (b''), or, when SQLite's magic string is gone,
    the standard ones for each possible page size that divides the file, likeliest first."""
    with open(copy, "rb") as f:
        if f.read(len(MAGIC)) == MAGIC:
            return [b""]
    size = copy.stat().st_size
    sizes = [4096, 1024, 8192, 16384, 32768, 65536, 512, 2048]
    # page size (65536 is written as 1), WAL file format versions 2/2, no reserved bytes,
    # and the three payload fractions SQLite requires (64, 32, 32).
    return [
        MAGIC + (ps % 65536 or 1).to_bytes(2, "big") + bytes([2, 2, 0, 64, 32, 32])
        for ps in sizes
        if size % ps == 0
    ]


class _Recovery:
    """One pass over the damaged copy ``old`` into the restored library ``lib``."""

    def __init__(self, lib: Library, old: sqlite3.Connection) -> None:
        self.lib = lib
        self.old = old
        self.result = Salvage()
        self.photo_ids: dict[int, int | None] = {}  # old photo id -> restored id (None: lost)
        self._cached_now: list[int] = []

    def run(self) -> Salvage:
        last = int(self.lib.db.execute("SELECT coalesce(max(id), 0) FROM decisions").fetchone()[0])
        if not self._same_library(last):
            self.result.why_not = "the damaged file's history differs from the backup's"
            return self.result
        columns = self._columns("decisions")
        rows = self._decisions_after(columns, last)
        remembering = memory.enabled(self.lib)
        with transaction(self.lib.db):
            self.result.models = self._models()
            # Also with no decision made since (review 51: instant memory turned off after
            # the backup came back on).
            self._settings()
            kept = self._decisions(columns, rows) if rows else set()
        if memory.enabled(self.lib) != remembering:  # switched after the backup: follow it
            memory.set_enabled(self.lib, not remembering)
        for photo_id in sorted(kept):
            memory.sync_photo(self.lib, photo_id)
        self.lib.flush()
        return self.result

    # -- reading the damaged copy, around what cannot be read -----------------------------------
    def _columns(self, table: str) -> list[str]:
        """The columns both databases have (the backup may predate a schema upgrade)."""
        mine = [str(r[1]) for r in self.lib.db.execute(f"PRAGMA table_info({table})")]
        try:
            theirs = {str(r[1]) for r in self.old.execute(f"PRAGMA table_info({table})")}
        except sqlite3.Error:
            return []
        return [c for c in mine if c in theirs]

    def _query(self, sql: str, params: Sequence[object]) -> list[_ROW] | None:
        try:
            return [tuple(r) for r in self.old.execute(sql, params).fetchall()]
        except (sqlite3.Error, UnicodeDecodeError):
            return None

    def _decisions_after(self, columns: list[str], after: int) -> list[_ROW]:
        """Decisions with id > ``after``, CHUNK ids per query; a chunk that fails is read
        row by row, so one bad page costs only the rows on it.

        A damaged page can make SQLite answer ``max(id)`` with garbage (a huge id, or one
        below the count of rows): that end is not trusted. The walk always stops after
        GIVE_UP chunks in a row with nothing readable (a huge garbage end was walked 256 ids
        at a time for ever), and what the file held but could not be read is counted from
        ``count(*)`` as well as from the ids."""
        if "id" not in columns:
            self.result.unreadable = True
            return []
        sql = f"SELECT {', '.join(columns)} FROM decisions WHERE id BETWEEN ? AND ? ORDER BY id"
        top = self._query("SELECT max(id) FROM decisions", ())
        rows = self._query("SELECT count(*) FROM decisions", ())
        held = int(rows[0][0]) if rows and isinstance(rows[0][0], int) else None
        biggest = top[0][0] if top else "unreadable"
        end = int(biggest or 0) if biggest is None or isinstance(biggest, int) else None
        # Ids are positive, unique and never deleted: the largest is at least the count, and
        # at most the count plus the ids an earlier salvage lost (a few).
        if end is not None and (end < 0 or (held is not None and end < held)):
            end = None
        out: list[_ROW] = []
        start, idle = after + 1, 0
        while (end is None or start <= end) and idle < GIVE_UP:
            stop = start + CHUNK - 1
            got = self._query(sql, (start, stop))
            if got is None:
                got = [r for i in range(start, stop + 1) for r in self._query(sql, (i, i)) or []]
            idle = 0 if got else idle + 1
            out += got
            start = stop + 1
        at = columns.index("id")
        seen = max((int(r[at]) for r in out), default=after)
        if end is not None and start <= end:  # gave up long before the end SQLite gave
            end = None
        self.result.unreadable = end is None
        # Decision ids are handed out one after another and never deleted: every id up to
        # the last one seen that was not read is a decision lost on a damaged page, and so
        # is every row the file counts past what was read.
        last = end if end is not None else seen
        lost = last - after - len(out)
        if held is not None:
            lost = max(lost, held - after - len(out))
        self.result.lost += max(0, lost)
        return out

    def _one(self, table: str, columns: list[str], where: str, key: object) -> list[_ROW]:
        """Rows matching ``where``; through the table itself when its index is damaged."""
        sql = f"SELECT {', '.join(columns)} FROM {table} {{}} WHERE {where} = ?"
        got = self._query(sql.format(""), (key,))
        if got is None:
            got = self._query(sql.format("NOT INDEXED"), (key,))
        return got or []

    def _same_library(self, last: int) -> bool:
        """Whether the damaged file continues the backup's history: the backup's newest
        decision, where the damaged file can still show it, is the same decision there."""
        if not last:
            return True
        sql = "SELECT photo_id, action, decided_at FROM decisions WHERE id = ?"
        mine = self.lib.db.execute(sql, [last]).fetchone()
        theirs = self._query(sql, (last,))
        return not theirs or tuple(theirs[0]) == tuple(mine)

    # -- writing into the restored library ------------------------------------------------------
    def _models(self) -> list[str]:
        """Model versions trained after the backup whose files are still in the library:
        registered again (inactive), so ``check --repair`` does not delete them as strays."""
        columns = self._columns("models")
        rows = self._query(f"SELECT {', '.join(columns)} FROM models", ()) or []
        known = {str(r[0]) for r in self.lib.db.execute("SELECT version FROM models")}
        kept = []
        for row in rows:
            values = dict(zip(columns, row, strict=True))
            version, folder = str(values["version"]), str(values["folder"])
            if version in known or not (self.lib.path / folder).is_dir():
                continue
            values["active"] = 0
            try:
                self.lib.db["models"].insert(values)
            except (sqlite3.Error, ValueError, TypeError):  # a damaged row: its files stay
                continue
            kept.append(version)
        return kept

    def _settings(self) -> None:
        """Settings changed after the backup (instant memory turned off, say) as they were:
        the backup would silently turn them back."""
        for key, value in self._query("SELECT key, value FROM settings", ()) or []:
            if isinstance(key, str) and isinstance(value, str) and key.isprintable():
                self.lib.db["settings"].upsert({"key": key, "value": value}, pk="key")

    def _decisions(self, columns: list[str], rows: list[_ROW]) -> set[int]:
        """Insert each decision with its own id (free: all are newer than the backup's),
        each in a savepoint: one that cannot stand (its photo unreadable, the decision it
        undoes lost, a damaged value) is counted and leaves nothing behind, and the others
        stay. Returns the restored ids of the photos they concern."""
        photos: set[int] = set()
        for row in rows:
            values = dict(zip(columns, row, strict=True))
            counts = (self.result.photos, self.result.products)
            self._cached_now = []  # photo ids first looked up for this row
            self.lib.db.execute("SAVEPOINT salvage_row")
            try:
                photo = self._write_decision(values)
            except (sqlite3.Error, ValueError, TypeError):
                photo = None
            if photo is None:
                self.lib.db.execute("ROLLBACK TO salvage_row")
                for old_id in self._cached_now:  # what the rollback took back is unknown again
                    del self.photo_ids[old_id]
                self.result.photos, self.result.products = counts
                self.result.lost += 1
            else:
                photos.add(photo)
                self.result.decisions += 1
            self.lib.db.execute("RELEASE salvage_row")
        return photos

    def _write_decision(self, values: dict[str, Any]) -> int | None:
        """Write one decision; its photo's restored id, or None when it cannot stand."""
        undoes = values.get("undoes")
        if undoes is not None:  # the backup's, or one written back before it
            there = "SELECT 1 FROM decisions WHERE id = ?"
            if self.lib.db.execute(there, [int(undoes)]).fetchone() is None:
                return None  # it undoes a decision that was lost with its page
        photo = self._photo(int(values["photo_id"]))
        if photo is None or not self._product(values.get("sku")):
            return None
        values["photo_id"] = photo
        self.lib.db["decisions"].insert(values)
        return photo

    def _photo(self, old_id: int) -> int | None:
        """The restored id of the damaged file's photo ``old_id``, copying it (with its
        vectors and suggestions, so it can become a reference at once) if the backup lacks it."""
        if old_id in self.photo_ids:
            return self.photo_ids[old_id]
        columns = self._columns("photos")
        found = self._one("photos", columns, "id", old_id)
        new_id: int | None = None
        if not found:  # unreadable there: photos are never deleted, so the same id is it
            here = self.lib.db.execute("SELECT id FROM photos WHERE id = ?", [old_id]).fetchone()
            new_id = int(here[0]) if here else None
        else:
            values = dict(zip(columns, found[0], strict=True))
            same = self.lib.db.execute(
                "SELECT id FROM photos WHERE sha256 = ?", [values["sha256"]]
            ).fetchone()
            if same is not None:
                new_id = int(same[0])
            else:
                taken = self.lib.db.execute("SELECT 1 FROM photos WHERE id = ?", [old_id])
                if taken.fetchone() is not None:
                    values.pop("id")
                new_id = int(self.lib.db["photos"].insert(values).last_pk)
                self._copy_photo_rows(old_id, new_id)
                self.result.photos += 1
        self.photo_ids[old_id] = new_id
        self._cached_now.append(old_id)
        return new_id

    def _copy_photo_rows(self, old_id: int, new_id: int) -> None:
        models = {str(r[0]) for r in self.lib.db.execute("SELECT version FROM models")}
        images = "SELECT 1 FROM catalog_images WHERE id = ?"
        for table in ("photo_embeddings", "suggestions"):
            columns = self._columns(table)
            for row in self._one(table, columns, "photo_id", old_id):
                values = dict(zip(columns, row, strict=True))
                if values["model_version"] not in models:
                    continue
                sku = values.get("sku")
                if (
                    table == "suggestions"
                    and not self.lib.db.execute(
                        "SELECT 1 FROM products WHERE sku = ?", [sku]
                    ).fetchone()
                ):
                    # A product the backup lacks (imported after it): offered first, it
                    # could not be confirmed (review 51). Matching again offers the catalog's.
                    continue
                image = values.get("image_id")
                if image is not None and self.lib.db.execute(images, [image]).fetchone() is None:
                    # A reference made after the backup (instant memory): the suggestion
                    # stays, its product and rank intact, without the picture it matched.
                    values["image_id"] = None
                values["photo_id"] = new_id
                self.lib.db[table].insert(values, ignore=True)

    def _product(self, sku: object) -> bool:
        """Whether the decision's SKU (if any) is in the restored catalog, copying its
        product row from the damaged file when only that has it."""
        if sku is None:
            return True
        if self.lib.db.execute("SELECT 1 FROM products WHERE sku = ?", [sku]).fetchone():
            return True
        columns = self._columns("products")
        found = self._one("products", columns, "sku", sku)
        now = utcnow()
        # Unreadable there too: the decision names the SKU, so it stands, and its product
        # gets its details back from the next import of the sheet.
        product = (
            dict(zip(columns, found[0], strict=True))
            if found
            else {"sku": str(sku), "name": str(sku), "created_at": now, "updated_at": now}
        )
        self.lib.db["products"].insert(product)
        self.result.products += 1
        return True
