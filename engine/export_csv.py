"""Export the matched inventory as a CSV that opens correctly in Excel and LibreOffice.

UTF-8 with a byte-order mark (Excel otherwise guesses a legacy code page and mangles accents),
CRLF rows, and text cells that start with a formula character neutralised with a leading
apostrophe (OWASP CSV injection). Numbers we produce ourselves are written as numbers.
Excel in a decimal-comma locale (German, French, ...) splits a CSV on ';' and reads '1,29':
the separator is a choice (the library setting ``export_separator`` by default), and a
semicolon export writes its decimal numbers with a comma.
"""

from __future__ import annotations

import csv
import errno
import io
import logging
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from engine.atomic import atomic_write_bytes
from engine.decisions import effective_states, rejected_by_photo
from engine.photo_scope import PhotoScope, photo_ids
from engine.sheet import product_price

if TYPE_CHECKING:
    from engine.library import Library

log = logging.getLogger(__name__)

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PHOTO_COLUMNS = [
    "photo",
    "status",
    "sku",
    "name",
    "category",
    "supplier",
    "price",
    "score",
    "rank",
    "decided_at",
    "model_version",
]
SKU_COLUMNS = ["sku", "name", "category", "supplier", "price", "quantity"]
SPREADSHEET_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xls", ".ods", ".numbers"})
SEPARATORS = {"comma": ",", "semicolon": ";", "tab": "\t"}
SEPARATOR_SETTING = "export_separator"


def separator_name(value: str | None) -> str:
    """'comma', 'semicolon' or 'tab' for a name or the character itself (the setting may
    hold either); anything else is the default, comma, as an absent setting is."""
    text = value if value == "\t" else (value or "").strip().lower()
    for name, char in SEPARATORS.items():
        if text in (name, char):
            return name
    if text:
        log.warning("export separator %r not understood; using comma", value)
    return "comma"


def local_time(stamp: str) -> str:
    """A stored UTC stamp as this computer's local time, 'YYYY-MM-DD HH:MM:SS': the form a
    spreadsheet reads as a date and time (it cannot read a '+00:00' offset), in the shop's
    own clock rather than UTC."""
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp  # written by something else: passed on as it is
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def local_minute(stamp: str) -> str:
    """A stored UTC stamp as local 'YYYY-MM-DD HH:MM': how messages and lists show a time."""
    return local_time(stamp)[:16]


def safe_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return "" if value is None else value


def _product_cells(lib: Library) -> Callable[[str], dict[str, object]]:
    """A product's cells by SKU, each product read once per export (a year's export read
    one product per row: 36,000 queries, most of its time)."""
    cells: dict[str, dict[str, object]] = {}

    def of(sku: str) -> dict[str, object]:
        if sku not in cells:
            product = lib.product(sku) or {}
            named = {k: product.get(k) for k in ("name", "category", "supplier")}
            cells[sku] = {"sku": sku, **named, "price": product_price(product)}
        return cells[sku]

    return of


def _rows_per_photo(
    lib: Library, include_undecided: bool, scope: PhotoScope
) -> list[dict[str, object]]:
    states = effective_states(lib)
    rejected = rejected_by_photo(lib) if include_undecided else {}
    wanted = None if scope.everything else set(photo_ids(lib.db.conn, scope))
    product_cells = _product_cells(lib)
    rows: list[dict[str, object]] = []
    for photo_id, path in lib.db.execute("SELECT id, path FROM photos ORDER BY id"):
        if wanted is not None and photo_id not in wanted:
            continue
        d = states.get(photo_id)
        if d is not None and d.action == "confirm" and d.sku:
            score = None if d.score is None else round(d.score, 4)
            rows.append(
                {
                    "photo": path,
                    "status": "confirmed",
                    **product_cells(d.sku),
                    "score": score,
                    "rank": d.rank,
                    "decided_at": local_time(d.decided_at),
                    "model_version": d.model_version,
                }
            )
        elif d is not None:  # no match: decided too, and the goods staff must follow up
            rows.append(
                {
                    "photo": path,
                    "status": "no_match",
                    "decided_at": local_time(d.decided_at),
                    "model_version": d.model_version,
                }
            )
        elif not include_undecided:
            continue
        elif top := [
            s for s in lib.suggestions(photo_id) if s.sku not in rejected.get(photo_id, ())
        ][:1]:  # the best suggestion staff did not reject, as a default confirm takes
            rows.append(
                {
                    "photo": path,
                    "status": "suggested",
                    **product_cells(top[0].sku),
                    "score": round(top[0].score, 4),
                    "rank": top[0].rank,
                    "model_version": lib.model_version,
                }
            )
        else:
            rows.append({"photo": path, "status": "pending"})
    return rows


def _rows_per_sku(lib: Library, scope: PhotoScope) -> list[dict[str, object]]:
    counts: dict[str, int] = {}
    wanted = None if scope.everything else set(photo_ids(lib.db.conn, scope))
    for photo_id, d in effective_states(lib).items():
        if wanted is not None and photo_id not in wanted:
            continue
        if d.action == "confirm" and d.sku:
            counts[d.sku] = counts.get(d.sku, 0) + 1
    product_cells = _product_cells(lib)
    return [{**product_cells(sku), "quantity": counts[sku]} for sku in sorted(counts)]


def _write_problem(exc: OSError) -> str:
    if exc.errno == errno.EROFS:
        return "its folder is on a read-only disk"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "no permission to write in its folder"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full; a previous file of that name is kept as it was"
    if exc.errno in (errno.ENOENT, errno.ENOTDIR):
        return "its folder cannot be created there"
    return exc.strerror or str(exc)


def _decimal_comma(value: object) -> object:
    """A float as a decimal-comma spreadsheet reads it ('1,29'); anything else unchanged."""
    return str(value).replace(".", ",") if isinstance(value, float) else value


def _as_is(value: object) -> object:
    return value


def inventory_csv(
    lib: Library,
    *,
    per: str = "photo",
    include_undecided: bool = False,
    bom: bool = True,
    separator: str | None = None,
    scope: PhotoScope | None = None,
) -> tuple[bytes, int]:
    """The inventory as CSV bytes and its row count; ``bom`` for a file Excel opens (a pipe
    into another program wants none); ``separator``: 'comma', 'semicolon' (decimal commas)
    or 'tab', by default the library's ``export_separator`` setting (absent: comma);
    ``scope``: which photos (one delivery), by default all."""
    scope = scope or PhotoScope()
    if separator is None:
        separator = separator_name(lib.setting(SEPARATOR_SETTING, "comma"))
    elif separator not in SEPARATORS:
        raise ValueError(f"separator must be one of {', '.join(SEPARATORS)}, not {separator!r}")
    number = _decimal_comma if separator == "semicolon" else _as_is
    if per == "photo":
        columns, rows = PHOTO_COLUMNS, _rows_per_photo(lib, include_undecided, scope)
    elif per == "sku":
        if include_undecided:  # a product row counts confirmed photos: nothing to add
            raise ValueError(
                "one row per product counts confirmed photos only; undecided photos are "
                "listed one row per photo"
            )
        columns, rows = SKU_COLUMNS, _rows_per_sku(lib, scope)
    else:
        raise ValueError("per must be 'photo' or 'sku'")
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(
        buf, fieldnames=columns, delimiter=SEPARATORS[separator], lineterminator="\r\n"
    )
    writer.writeheader()
    for row in rows:
        writer.writerow({c: number(safe_cell(row.get(c))) for c in columns})
    return buf.getvalue().encode("utf-8-sig" if bom else "utf-8"), len(rows)


# Files an export may replace: an earlier export (or any CSV/text file the user names).
REPLACEABLE_SUFFIXES = frozenset({".csv", ".txt"})


def _is_imported_sheet(lib: Library, where: Path) -> bool:
    """Whether ``where`` (resolved) is a catalog sheet this library was imported from."""
    if not where.is_file():  # nothing there to lose
        return False
    for (sheet,) in lib.db.execute(
        "SELECT DISTINCT sheet FROM imports WHERE sheet IS NOT NULL"
    ).fetchall():
        known = Path(str(sheet))
        if known.resolve() == where:
            return True
        # Stored as typed: a relative path was relative to a working folder not recorded,
        # so any file ending in that path counts (a needless refusal is the lesser harm).
        if not known.is_absolute() and ".." not in known.parts:
            tail = known.parts
            if where.parts[-len(tail) :] == tail:
                return True
        try:  # the same file by another name (a link, a case-insensitive disk)
            if known.exists() and where.samefile(known):
                return True
        except OSError:
            continue
    return False


def _check_not_clobbering(lib: Library, target: Path) -> None:
    """Refuse a target that is not an export's to replace: a file inside the library (its
    database, once, by a typo), the supplier's sheet it was imported from (a CSV too: tab
    completion picks it) or an existing file of another kind (a photo)."""
    where = target.resolve()
    if where.is_relative_to(lib.path.resolve()):
        raise ValueError(
            f"cannot write {target}: it is inside the library folder, whose files ShopMatch "
            "manages; export somewhere else"
        )
    if _is_imported_sheet(lib, where):
        raise ValueError(
            f"cannot write {target}: it is the catalog sheet this library was imported from, "
            "and is not replaced; give the inventory another name"
        )
    if where.exists() and where.suffix.lower() not in REPLACEABLE_SUFFIXES:
        raise ValueError(
            f"cannot write {target}: a file of another kind is there and is not replaced; "
            f"give a name ending in .csv"
        )


def export_inventory(
    lib: Library,
    target: Path,
    *,
    per: str = "photo",
    include_undecided: bool = False,
    separator: str | None = None,
    scope: PhotoScope | None = None,
) -> int:
    """Write the inventory CSV atomically into an existing folder; returns its row count."""
    target = Path(target)
    if target.suffix.lower() in SPREADSHEET_SUFFIXES:
        # Excel refuses a CSV named .xlsx ("file format or extension is not valid").
        raise ValueError(
            f"cannot write {target.name}: the inventory is a CSV file, which Excel and "
            f"LibreOffice open directly; name it {target.stem}.csv"
        )
    if target.is_dir():
        raise ValueError(f"cannot write {target}: it is a folder; give a file name in it")
    if not target.parent.is_dir():  # a typo ('Documnets') must not become a new folder
        raise ValueError(f"folder not found: {target.parent}")
    _check_not_clobbering(lib, target)
    data, n = inventory_csv(
        lib, per=per, include_undecided=include_undecided, separator=separator, scope=scope
    )
    try:
        atomic_write_bytes(target, data)
    except OSError as exc:  # about the export's folder, not the library's
        raise ValueError(f"cannot write {target}: {_write_problem(exc)}") from exc
    try:  # only lets ``check`` tell a damaged export later; the export itself is done
        from engine.check import record_export

        record_export(lib, Path(target), data, n)
    except sqlite3.Error as exc:
        log.warning("export written, but not recorded for 'shopmatch check': %s", exc)
    return n
