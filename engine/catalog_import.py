"""Incremental import of a supplier catalog: a folder of images plus an optional CSV sheet.

Work is committed batch by batch, so an import that is killed or cancelled keeps everything
embedded so far and the next run resumes: unchanged files are recognised by path, size and
mtime without even being hashed, and identical content is never embedded twice.
"""

from __future__ import annotations

import json
import os
import re
import stat
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from engine import local_features
from engine.db import transaction, utcnow
from engine.errors import folder_problem
from engine.export_csv import SEPARATOR_SETTING
from engine.images import (
    IMAGE_SUFFIXES,
    PICTURE_KINDS,
    ImageLoadError,
    iter_image_files,
    load_image,
    name_problem,
    printable,
)
from engine.manifest import file_sha256
from engine.progress import (
    Cancelled,
    CancelToken,
    ProgressCallback,
    ProgressReporter,
    RunClock,
)
from engine.sheet import Sheet, SheetRow, read_sheet
from engine.sheet_pictures import SavedPictures, plan_pictures, save_pictures, tidy
from engine.thumbnails import save_thumbnail
from engine.wording import are, count

if TYPE_CHECKING:
    from engine.library import Library


STAGE_CHECK = "Checking catalog images"
STAGE_ENCODE = "Encoding catalog images"
# Reference seconds per image of each stage (2-core dev machine, demo catalog: hashing is
# cheap next to decoding for the encoder and again for keypoints). Only their ratio matters
# much: the run's own pace takes over after a couple of seconds of work.
CHECK_S, ENCODE_S, KEYPOINTS_S = 0.001, 0.015, 0.015
PRIOR_WEIGHT_S = 2.0


@dataclass
class ImportReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    products: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file or line, reason)
    # Imported, but worth a look (a SKU on two rows with two names, a product left without
    # a picture): not counted as skipped, which they are not.
    notes: list[tuple[str, str]] = field(default_factory=list)
    cancelled: bool = False
    # Another catalog folder whose pictures this one repeats (an older copy of it?): the
    # app asks whether this one replaces it.
    copy_of: str | None = None
    # Picture files found but not readable (damaged, cut short); also in ``skipped``.
    unreadable: int = 0
    # Picture files of 0 bytes (an unzip cut short); also in ``skipped``. They count as
    # missing (a picture imported before leaves), not as unreadable, unless none is usable.
    empty: int = 0

    def problem(self) -> str | None:
        """Why this import failed although it ran, or None: no picture could be used (empty
        or unreadable), or most could not be read (more than half, and at least 3): a copy,
        sync, unzip or download cut short. Pictures imported before keep their earlier
        version unless empty; the command line exits with an error, so a scheduled import
        does not pass for a good one."""
        bad, good = self.unreadable, self.added + self.updated + self.unchanged
        if self.cancelled:
            return None
        if self.empty and not good:
            found = count(bad + self.empty, "picture")
            why = f"{self.empty} empty (0 bytes)" + (
                f", {bad} could not be read (damaged)" if bad else ""
            )
            return (
                f"none of the {found} found could be used: {why}; an unzip, copy or "
                "download cut short? Copy the catalog again, then import again"
            )
        if not bad or (good and (bad < ASK_ABOVE or bad <= good)):
            return None
        return (
            f"{bad} of the {count(bad + good, 'picture')} found could not be read (damaged, "
            "or a copy or download cut short?); pictures imported before keep their earlier "
            "version. Copy the catalog again, then import again"
        )

    def summary(self) -> str:
        text = (
            f"{count(self.products, 'product')}; images: {self.added} added, "
            f"{self.updated} updated, {self.unchanged} unchanged, {self.removed} removed, "
            f"{len(self.skipped)} skipped"
            + (f"; {count(len(self.notes), 'note')}" if self.notes else "")
        )
        return text + (" (cancelled: run the import again to finish)" if self.cancelled else "")


@dataclass(frozen=True)
class _Item:
    sku: str
    path: Path


def _by_line(sheet: Sheet, messages: list[str]) -> list[tuple[str, str]]:
    """'line 7: reason' messages as ('sheet.csv line 7', 'reason'); 'row 7' in a workbook."""
    return [(f"{sheet.path.name} {m.split(':')[0]}", m.split(": ", 1)[-1]) for m in messages]


def require_images(folder: Path) -> None:
    """Refuse a folder without a single picture, or without a single one that can be read,
    before anything is written: without a sheet that import would find no products, and a
    re-import would drop every picture taken from there before (a mistyped or emptied
    folder, or a download cut short, not a wish to empty the catalog). Reads pictures only
    until the first good one (at reduced size: usually one quick decode)."""
    found, reasons = 0, []
    for path in iter_image_files(folder):
        found += 1
        try:
            load_image(path, min_side=32)
        except ImageLoadError as exc:
            if exc.reason not in reasons:
                reasons.append(exc.reason)
            continue
        return
    if not found:
        raise ValueError(
            f"no pictures found in {folder} ({PICTURE_KINDS} files, in it or its sub-folders); "
            "choose the folder that holds the supplier's pictures, or "
            "give the product sheet"
        )
    raise ValueError(
        f"none of the {count(found, 'picture')} in {printable(folder)} could be read "
        f"({'; '.join(reasons[:3])}): damaged, or a copy or download cut short? Nothing was "
        "imported; copy the pictures again, then import"
    )


def _named(items: list[_Item]) -> tuple[list[_Item], list[tuple[str, str]]]:
    """Items whose file name can be stored, and the others as skipped (printable name,
    reason): a name that is not valid text (an old zip's Latin-1) stopped the import."""
    good: list[_Item] = []
    bad: list[tuple[str, str]] = []
    for item in items:
        problem = name_problem(item.path)
        if problem is None:
            good.append(item)
        else:
            bad.append((printable(item.path), problem))
    return good, bad


REMOVALS = ("ask", "remove", "keep")
KEPT = "its earlier version stays in the catalog"
ASK_ABOVE = 3  # pictures: fewer leaving is everyday upkeep, never asked about


class RemovalsNeedConsent(ValueError):
    """The import would take most of a folder's pictures out of the catalog: a sheet of new
    products only, or the wrong sheet, looks just like a smaller catalog. Nothing is written
    until the caller says ``removals="remove"`` or ``"keep"``."""

    def __init__(
        self, folder: Path, leaving: int, held: int, skus: list[str], worksheets: str = ""
    ) -> None:
        self.folder, self.leaving, self.held, self.skus = folder, leaving, held, skus
        # A workbook's: which worksheets this import read (a tab left out explains it all).
        self.worksheets = worksheets
        read = f"; of the sheet, {worksheets}" if worksheets else ""
        super().__init__(
            f"this import would take {leaving} of the {held} pictures imported from {folder} "
            f"out of the catalog ({count(len(skus), 'product')}: {_some(skus)}{read}); nothing "
            "was changed. If the supplier dropped them, import again with --remove-missing; to "
            "add this sheet's products and keep the others, with --keep-missing"
        )


@dataclass
class _Present:
    """The pictures an import's plan holds: their files, and (SKU, size) pairs, by which a
    picture moved or renamed is known before it is read (it is followed by its content)."""

    paths: set[str] = field(default_factory=set)
    pairs: set[tuple[str, int]] = field(default_factory=set)
    pictured: set[str] = field(default_factory=set)  # products with a new workbook picture

    @classmethod
    def of(cls, items: list[_Item], planned: dict[str, int] | None = None) -> _Present:
        """``planned``: a workbook's pictures, written after the checks, by their size."""
        present = cls()
        for item in items:
            if planned and str(item.path) in planned:
                present.paths.add(str(item.path))
                present.pairs.add((item.sku, planned[str(item.path)]))
                present.pictured.add(item.sku)
                continue
            try:
                st = item.path.stat()
            except OSError:
                continue
            if st.st_size and stat.S_ISREG(st.st_mode):
                present.paths.add(str(item.path))
                present.pairs.add((item.sku, st.st_size))
        return present

    def holds(self, path: str, sku: str, size: int) -> bool:
        return path in self.paths or (sku, size) in self.pairs


Row = tuple[int, str, str, "str | None", int, str]  # id, path, SKU, sheet, size, folder


@dataclass
class _Scope:
    """The pictures an import answers for (its folder's, and a replaced folder's), and the
    sheet and products it lists, by which it tells another supplier's pictures saved in
    the same folder."""

    source: str
    key: str | None  # this import's sheet
    listed: set[str]
    old: str | None = None
    _other: dict[str, bool] = field(default_factory=dict)

    def rows(self, lib: Library) -> list[Row]:
        roots = [self.source] if self.old is None else [self.source, self.old]
        marks = ", ".join("?" * len(roots))
        return [
            (int(r[0]), str(r[1]), str(r[2]), r[3], int(r[4]), str(r[5]))
            for r in lib.db.execute(
                "SELECT id, path, sku, sheet, size, source_root FROM catalog_images "
                f"WHERE source_root IN ({marks}) AND origin = 'catalog'",
                roots,
            )
        ]

    def another_suppliers(self, lib: Library, row: Row) -> bool:
        """The picture came with another sheet, still there, whose products (as it listed
        them when last imported) are none of this sheet's: another supplier's list saved in
        the same folder (Downloads). Whatever shares a product with this sheet is this
        catalog's, as it always was (its earlier issue under another name, a specials
        list): a picture of it leaves."""
        other = row[3]
        if self.key is None or other is None or other == self.key:
            return False
        if not os.path.lexists(row[1]):
            return False  # deleted, not another supplier's: it leaves
        if other not in self._other:  # what it listed, else the pictures it brought in
            skus = (
                lib.db.execute("SELECT sku FROM sheet_products WHERE sheet = ?", [other]).fetchall()
                or lib.db.execute(
                    "SELECT DISTINCT sku FROM catalog_images WHERE sheet = ? "
                    "AND origin = 'catalog'",
                    [other],
                ).fetchall()
            )
            self._other[other] = not any(str(sku) in self.listed for (sku,) in skus)
        return self._other[other]


def _check_removals(lib: Library, scope: _Scope, present: _Present, worksheets: str = "") -> None:
    """Raise RemovalsNeedConsent when more than half of these folders' pictures (and more
    than a few) would leave: files that are gone, empty (an unzip cut short), or that the
    sheet no longer names. A picture of the same size for the same product in the plan was
    moved or renamed (it is followed by its content), so it is not counted; nor is one that
    is there but cannot be read (a copy cut short): it keeps its earlier version. Another
    supplier's pictures in the same folder neither leave nor count."""
    rows = [r for r in scope.rows(lib) if not scope.another_suppliers(lib, r)]
    leaving = [
        r for r in rows if not present.holds(r[1], r[2], r[4]) and r[2] not in present.pictured
    ]
    if len(leaving) >= ASK_ABOVE and 2 * len(leaving) > len(rows):
        skus = sorted({r[2] for r in leaving})
        raise RemovalsNeedConsent(Path(scope.source), len(leaving), len(rows), skus, worksheets)


def _plan(
    lib: Library,
    folder: Path,
    sheet: Sheet | None,
    deep: bool = True,
    embedded: dict[int, list[Path]] | None = None,
) -> tuple[list[SheetRow], list[_Item], list[tuple[str, str]], list[tuple[str, str]]]:
    """Decide which product rows and which (sku, image file) pairs the import covers;
    returns them with the rows or files left out and notes. ``deep``: the catalog folder
    was given (not just the sheet's own folder); ``embedded``: the files saved from the
    pictures in a workbook's rows (:mod:`engine.sheet_pictures`), by ``id(row)``."""
    embedded = embedded or {}
    problems = _by_line(sheet, sheet.problems) if sheet else []
    if sheet is None:
        items, notes, misnamed = _items_by_file_name(folder)
        rows = [SheetRow(line=0, sku=i.sku, name=i.sku) for i in items]
        return rows, items, problems + misnamed, notes
    if not sheet.rows:
        problems.append((sheet.path.name, "the sheet has no product rows, only its header"))
    base = sheet.path.parent
    by_owner: dict[str, list[Path]] | None = None
    finder = _Finder(base, folder, deep)
    items: list[_Item] = []
    for row in sheet.rows:
        items.extend(_Item(row.sku, path) for path in embedded.get(id(row), []))
        if id(row) in embedded and not row.image:
            continue  # its picture is in the workbook: no file to look for
        if row.image:
            for part in row.image.replace("|", ";").split(";"):
                if not part.strip():
                    continue
                if "://" in part:
                    problems.append(
                        (
                            sheet.where(row),
                            f"{part.strip()}: pictures on the web are not downloaded; save "
                            f"it next to the sheet and give its file name (SKU {row.sku})",
                        )
                    )
                    continue
                items.append(_Item(row.sku, finder.find(part.strip(), row.sku)))
            continue
        if by_owner is None:  # no image column: find files named after the SKU
            listed = {_name_key(r.sku) for r in sheet.rows}
            known = {_name_key(str(k)) for (k,) in lib.db.execute("SELECT sku FROM products")}
            by_owner = _files_by_sku(folder, listed | known)
        found = by_owner.get(_name_key(row.sku), [])
        if not found:
            problems.append((sheet.where(row), f"no image found for SKU {row.sku}"))
        items.extend(_Item(row.sku, p) for p in found)
    items, misnamed = _named(items)
    return sheet.rows, items, problems + misnamed, finder.notes


def _files_by_sku(folder: Path, listed: set[str]) -> dict[str, list[Path]]:
    """Pictures named after a SKU (keys as ``_name_key``): "milk.jpg", "milk_2.jpg". A file
    belongs to the longest SKU its name is, or starts with plus "_", among those listed and
    those the library knows: "milk_chocolate.jpg" is not MILK's second picture, also once
    MILK_CHOCOLATE has left the sheet."""
    owners: dict[str, list[Path]] = {}
    for path in iter_image_files(folder):
        stem = _name_key(path.stem)
        owner = stem if stem in listed else None
        cut = len(stem)
        while owner is None and (cut := stem.rfind("_", 0, cut)) > 0:
            owner = stem[:cut] if stem[:cut] in listed else None
        if owner is not None:
            owners.setdefault(owner, []).append(path)
    return owners


def _items_by_file_name(
    folder: Path,
) -> tuple[list[_Item], list[tuple[str, str]], list[tuple[str, str]]]:
    """Without a sheet a picture's file name is its SKU. The same name in two sub-folders
    ("front/1.jpg", "back/1.jpg": two views; or "Dairy/1.jpg", "Bakery/1.jpg": two products)
    is one product, as it always was, with a note: only a sheet can tell the two apart.
    Returns the items, the notes, and the files whose name cannot be stored (skipped)."""
    items, misnamed = _named([_Item(path.stem, path) for path in iter_image_files(folder)])
    places: dict[str, set[str]] = {}
    for item in items:
        places.setdefault(item.sku, set()).add(item.path.parent.relative_to(folder).as_posix())
    notes = [
        (
            sku,
            f"pictures named {sku} in {len(where)} folders ({', '.join(sorted(where)[:3])}) are "
            "all pictures of product "
            f"{sku}; if they show different products, rename them or import with a sheet",
        )
        for sku, where in places.items()
        if len(where) > 1
    ]
    return items, notes, misnamed


class _Finder:
    """A sheet's picture path, found as a person would: relative to the sheet, else to the
    catalog folder, with Windows separators on every system; failing that, the one picture
    with that file name, whatever its case or Unicode form (a Mac zip spells "é" as two
    characters) and wherever the supplier's own path pointed ("C:\\Users\\...\\a.jpg"),
    said in a note. Searched: the catalog folder with its sub-folders when it was given,
    and the sheet's own folder (which may be Downloads) at its top level only."""

    def __init__(self, base: Path, folder: Path, deep: bool) -> None:
        self.base, self.folder, self.deep = base, folder, deep
        self._by_name: dict[str, list[Path]] | None = None
        self.notes: list[tuple[str, str]] = []

    def find(self, text: str, sku: str) -> Path:
        names = [text]
        if os.sep == "/" and "\\" in text:
            names.append(text.replace("\\", "/"))
        for name in names:
            for root in (self.base, self.folder):
                candidate = (root / name).resolve()
                if candidate.exists():
                    return candidate
        # Reported as written when not found ("C:\\...", not "catalog/C:/...").
        windows = re.match(r"[A-Za-z]:[\\/]", text) is not None
        fallback = Path(text) if windows else (self.base / names[-1]).resolve()
        if any(text.lower().endswith(suffix) for suffix in IMAGE_SUFFIXES):
            parts = [_name_key(x) for x in text.replace("\\", "/").split("/") if x]
            known = self._names().get(parts[-1], [])
            # Several pictures of that name: the folders named before it pick one out
            # ("...\\Dairy\\1.jpg" against Dairy/1.jpg and Bakery/1.jpg).
            depth = 1
            while len(known) > 1 and depth < len(parts):
                depth += 1
                tail = parts[-depth:]
                known = [k for k in known if [_name_key(x) for x in k.parts[-depth:]] == tail]
            if len(known) == 1:
                self.notes.append(
                    (str(known[0]), f"used for SKU {sku}: the sheet says {text}, not found")
                )
                return known[0]
        return fallback

    def _names(self) -> dict[str, list[Path]]:
        if self._by_name is None:
            self._by_name = {}
            for root, deep in ((self.folder, self.deep), (self.base, False)):
                for path in iter_image_files(root, recursive=deep):
                    found = self._by_name.setdefault(_name_key(path.name), [])
                    if path.resolve() not in found:
                        found.append(path.resolve())
        return self._by_name


def _name_key(name: str) -> str:
    return unicodedata.normalize("NFC", name).casefold()


def import_catalog(
    lib: Library,
    folder: Path | None,
    sheet_path: Path | Sheet | None,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    removals: str = "ask",
    replaces: Path | None = None,
) -> ImportReport:
    """Import or update a catalog. ``removals``: pictures this import no longer finds leave
    the catalog ("remove"), stay ("keep", a sheet of new products only), or, when they are
    most of the folder's, nothing is written and RemovalsNeedConsent is raised ("ask").
    ``replaces``: an older catalog folder this one supersedes; its pictures count as this
    folder's (kept where repeated here, else leaving as this folder's missing files do)."""
    if removals not in REMOVALS:
        raise ValueError(f"removals must be one of {', '.join(REMOVALS)}")
    if folder is None and sheet_path is None:
        raise ValueError("give a folder of images, a sheet, or both")
    sheet = (
        sheet_path
        if isinstance(sheet_path, Sheet) or sheet_path is None
        else read_sheet(Path(sheet_path))
    )
    root = Path(folder if folder is not None else sheet.path.parent).resolve()  # type: ignore[union-attr]
    if (problem := folder_problem(root)) is not None:
        raise FileNotFoundError(problem)
    for named in (root, sheet.path if sheet else root):  # kept in the library's database
        if name_problem(named) is not None:
            raise ValueError(
                f"{printable(named)}: the name of it or its folder is not valid text (not "
                "UTF-8); rename it, then import"
            )
    if sheet is None:
        require_images(root)
    saved = plan_pictures(sheet, root) if sheet is not None else SavedPictures()
    rows, items, skipped, found = _plan(lib, root, sheet, folder is not None, saved.by_row)
    source = str(root)
    sheet_key = str(sheet.path.resolve()) if sheet is not None else None
    present = _Present.of(items, saved.sizes(sheet))
    scope = _Scope(source, sheet_key, {row.sku for row in rows})
    if replaces is not None:
        scope.old = _replace(lib, replaces, source)
    if removals == "ask":
        _check_removals(lib, scope, present, sheet.worksheets if sheet else "")
    if sheet is not None:
        save_pictures(sheet, saved, lib.path)  # the import goes ahead: pictures are written
    report = ImportReport(
        skipped=list(skipped), notes=(_by_line(sheet, sheet.notes) if sheet else []) + found
    )
    # Keypoints still owed from earlier (an interrupted import): counted once, for the plan.
    owed = local_features.backlog(lib) if progress is not None and lib.local_features else 0
    clock = _run_clock(lib, len(items), owed, progress)
    progress = clock or progress
    now = utcnow()
    import_id = (
        lib.db["imports"]
        .insert(
            {
                "source_root": source,
                "sheet": sheet_key,
                "started_at": now,
            }
        )
        .last_pk
    )

    if scope.old is not None:  # its pictures become this folder's: what it drops leaves
        with transaction(lib.db):
            lib.db.execute(
                "UPDATE catalog_images SET source_root = ? WHERE source_root = ? "
                "AND origin = 'catalog'",
                [source, scope.old],
            )
        scope.old = None  # now this folder's

    # 1. Products: upsert every row in one transaction (cheap, no images needed).
    products: dict[str, SheetRow] = {}
    for row in rows:
        products.setdefault(row.sku, row)
    # Without a sheet a product is only its picture's file name: it is created with its first
    # readable picture, so an unreadable file leaves no product without an image behind.
    unseen: dict[str, dict[str, object]] = {}
    returning: list[str] = []  # withdrawn before, in the catalog again
    with transaction(lib.db):
        for row in products.values():
            existing = lib.product(row.sku)
            if existing is not None and existing.get("withdrawn_at"):
                returning.append(row.sku)
            record: dict[str, object] = {"sku": row.sku, "updated_at": now, "withdrawn_at": None}
            if sheet is not None or existing is None:
                record.update(
                    name=row.name,
                    category=row.category,
                    supplier=row.supplier,
                    price=row.price,
                    attributes=json.dumps(row.attributes, ensure_ascii=False),
                )
            if existing is not None:
                lib.db["products"].update(row.sku, record)
            elif sheet is None:
                unseen[row.sku] = {**record, "created_at": now}
            else:
                lib.db["products"].insert({**record, "created_at": now})
    report.products = len(products)

    # 2. Classify image files: unchanged, changed, new, duplicate, unreadable.
    reporter = ProgressReporter(STAGE_CHECK, len(items), progress, cancel)
    todo: list[tuple[_Item, str, os.stat_result, int | None]] = []  # item, sha, stat, row id
    planned_sha: dict[str, Path] = {}
    keep_paths: set[str] = set()
    claimed: dict[str, str] = {}  # picture file -> the SKU it went to in this import
    unlisted: set[str] = set()  # SKUs whose pictures this import removes
    repeats: dict[str, int] = {}  # other catalog folder -> its pictures repeated here
    planned = {str(item.path) for item in items}
    # (index in report.skipped, file, the file it repeats, imported before) for files
    # skipped as the same picture as another file of this import.
    twins: list[tuple[int, str, str, bool]] = []
    unread: dict[str, str] = {}  # file that could not be read -> why
    empty: dict[str, str] = {}  # file of 0 bytes -> why (said as the loader says it)
    try:
        for item in items:
            key = str(item.path)
            if key in claimed:
                # One file listed for two products (a shared placeholder, a "same as" row):
                # a picture row serves one product, so the first keeps it, and the file must
                # not count as a duplicate of itself (that deleted the first one's picture).
                if claimed[key] != item.sku:
                    report.notes.append(
                        (
                            key,
                            f"also listed for SKU {item.sku}; one picture file serves one "
                            f"product, so it stays with SKU {claimed[key]}",
                        )
                    )
                reporter.step()
                continue
            claimed[key] = item.sku
            try:
                st = item.path.stat()
                if not item.path.is_file():
                    raise IsADirectoryError
            except IsADirectoryError:
                report.skipped.append((key, f"a folder, not a picture (for SKU {item.sku})"))
                reporter.step()
                continue
            except (FileNotFoundError, NotADirectoryError):
                report.skipped.append((key, f"file not found (a picture of {item.sku})"))
                reporter.step()
                continue
            except OSError as exc:
                report.skipped.append((key, f"cannot read file ({exc.strerror})"))
                reporter.step()
                continue
            keep_paths.add(key)
            row = lib.db.execute(
                "SELECT id, sku, sha256, size, mtime FROM catalog_images WHERE path = ?", [key]
            ).fetchone()
            # Without a sheet a SKU is only a file name: a picture already in the library
            # keeps its product (a sheet gave it its SKU, or the same file name did).
            sku = item.sku if sheet is not None or row is None else str(row[1])
            claimed[key] = sku
            if row and row[3] == st.st_size and row[4] == st.st_mtime and _embedded(lib, row[0]):
                if row[1] != sku:
                    lib.db.execute("UPDATE catalog_images SET sku = ? WHERE id = ?", [sku, row[0]])
                report.unchanged += 1
                reporter.step()
                continue
            sha = file_sha256(item.path)
            if row and row[2] == sha and _embedded(lib, row[0]):
                lib.db.execute(
                    "UPDATE catalog_images SET sku = ?, size = ?, mtime = ? WHERE id = ?",
                    [sku, st.st_size, st.st_mtime, row[0]],
                )
                report.unchanged += 1
            else:
                dup = lib.db.execute(
                    "SELECT id, path, origin, sku, source_root FROM catalog_images "
                    "WHERE sha256 = ? AND path != ?",
                    [sha, key],
                ).fetchone()
                leaves = dup is not None and dup[4] == source and dup[1] not in planned
                if (
                    row is None
                    and dup is not None
                    and dup[2] == "catalog"
                    and _embedded(lib, dup[0])
                    and (not Path(dup[1]).exists() or (leaves and dup[3] == sku))
                ):
                    # The supplier's folder moved (or was renamed), or the sheet now names
                    # another copy of the picture for the same product, the old file left
                    # behind: the same picture, now here. It keeps its vectors and keypoints
                    # instead of being "skipped" while the file it repeats leaves.
                    sku = item.sku if sheet is not None else str(dup[3])
                    claimed[key] = sku
                    lib.db.execute(
                        "UPDATE catalog_images SET path = ?, source_root = ?, sku = ?, size = ?, "
                        "mtime = ?, sheet = coalesce(?, sheet) WHERE id = ?",
                        [key, source, sku, st.st_size, st.st_mtime, sheet_key, dup[0]],
                    )
                    report.unchanged += 1
                    reporter.step()
                    continue
                if dup is not None and dup[2] == "catalog" and dup[3] == sku and dup[4] != source:
                    repeats[str(dup[4])] = repeats.get(str(dup[4]), 0) + 1
                # A copy of a picture leaving with this import (another product's now) is
                # new, not a duplicate: skipped, it left that product with no picture.
                dup_path = Path(dup[1]) if dup and not leaves else planned_sha.get(sha)
                if dup_path is not None:
                    if not (dup and not leaves):  # settled once that file is read (below)
                        twins.append((len(report.skipped), key, str(dup_path), bool(row)))
                    report.skipped.append((key, f"same picture as {dup_path.name}, skipped"))
                    keep_paths.discard(key)
                else:
                    planned_sha[sha] = item.path
                    todo.append((_Item(sku, item.path), sha, st, row[0] if row else None))
            reporter.step()

        _note_copies(lib, repeats, report)

        # 3. Encode what is new or changed, committing one batch at a time.
        if clock is not None:  # now the work is known: only what is new or changed
            clock.replan(
                {
                    STAGE_ENCODE: len(todo) * ENCODE_S,
                    local_features.SYNC_STAGE: _keypoints_s(lib, owed + len(todo)),
                }
            )
        reporter = ProgressReporter(STAGE_ENCODE, len(todo), progress, cancel)
        by_path = {str(t[0].path): t for t in todo}

        def thumb(path: Path, img: Image.Image) -> None:
            save_thumbnail(lib.thumbs_dir, by_path[str(path)][1], img)

        encoder = lib.encoder
        for ok, emb, failed in encoder.iter_encode_paths([t[0].path for t in todo], thumb):
            with transaction(lib.db):
                for path, vec in zip(ok, emb, strict=True):
                    item, sha, st, row_id = by_path[str(path)]
                    if item.sku in unseen:
                        lib.db["products"].insert(unseen.pop(item.sku))
                    record = {
                        "sku": item.sku,
                        "path": str(path),
                        "source_root": source,
                        "sha256": sha,
                        "size": st.st_size,
                        "mtime": st.st_mtime,
                        "origin": "catalog",
                        "updated_at": utcnow(),
                    }
                    if row_id is None:
                        record["sheet"] = sheet_key  # set now: a cancel must not orphan it
                        record["added_at"] = record["updated_at"]
                        row_id = lib.db["catalog_images"].insert(record).last_pk
                        report.added += 1
                    else:
                        lib.db["catalog_images"].update(row_id, record)
                        # Other model versions' vectors are of the old picture: dropped, so
                        # switching to one of them embeds the new picture.
                        lib.db.execute(
                            "DELETE FROM embeddings WHERE image_id = ? AND model_version != ?",
                            [row_id, encoder.version],
                        )
                        if not report.updated:  # its vector changes under the same id
                            lib.forget_index_files()
                        report.updated += 1
                    lib.db["embeddings"].upsert(
                        {
                            "image_id": row_id,
                            "model_version": encoder.version,
                            "vector": vec.astype("<f4").tobytes(),
                        },
                        pk=("image_id", "model_version"),
                    )
            for path, err in failed:
                key = str(path)
                _item, _sha, st, row_id = by_path[key]
                if st.st_size:  # present but unreadable; an empty file counts as missing
                    report.unreadable += 1
                    unread[key] = err.reason
                else:
                    report.empty += 1
                    empty[key] = err.reason
                if row_id is not None and st.st_size:
                    # Imported before: a damaged copy (a sync cut short) must not take the
                    # picture out of the catalog. Its earlier version stays, said so, and
                    # the file is read again at the next import.
                    report.skipped.append((key, f"{err.reason}; {KEPT}"))
                else:
                    report.skipped.append((key, err.reason))
                    keep_paths.discard(key)
            reporter.step(len(ok) + len(failed))
        # Files identical to one that could not be read (pictures cut short at the same
        # byte): unreadable too, not copies; and empty files are each empty, not copies of
        # the first one (missing, as it is).
        for index, key, original, before in twins:
            if original in empty:
                report.empty += 1
                report.skipped[index] = (key, empty[original])
            elif original in unread:
                report.unreadable += 1
                report.skipped[index] = (key, unread[original] + (f"; {KEPT}" if before else ""))
                if before:
                    keep_paths.add(key)

        # 4. Files that left the catalog (or became unreadable) leave the index, but for
        # another supplier's (its list saved in the same folder). The pictures this import
        # holds are now its sheet's.
        leaving = [
            (r[0], r[2])
            for r in scope.rows(lib)
            if r[1] not in keep_paths and not scope.another_suppliers(lib, r)
        ]
        if sheet_key is not None:
            with transaction(lib.db):
                lib.db.conn.executemany(
                    "UPDATE catalog_images SET sheet = ? WHERE path = ?",
                    [(sheet_key, path) for path in keep_paths],
                )
                lib.db.execute("DELETE FROM sheet_products WHERE sheet = ?", [sheet_key])
                lib.db.conn.executemany(
                    "INSERT OR IGNORE INTO sheet_products (sheet, sku) VALUES (?, ?)",
                    [(sheet_key, sku) for sku in sorted(scope.listed)],
                )
        if removals == "keep":
            leaving = []
        gone = [image_id for image_id, _sku in leaving]
        unlisted = {sku for _id, sku in leaving}  # products whose pictures leave now
        if gone:
            with transaction(lib.db):
                lib.db.conn.executemany(
                    "DELETE FROM catalog_images WHERE id = ?", [(g,) for g in gone]
                )
            report.removed = len(gone)
    except Cancelled:
        report.cancelled = True
    finally:
        if sheet is None:  # products are the SKUs this folder's pictures now serve
            report.products = lib.db.execute(
                "SELECT count(DISTINCT sku) FROM catalog_images WHERE source_root = ? "
                "AND origin = 'catalog'",
                [source],
            ).fetchone()[0]
        lib.db["imports"].update(
            import_id,
            {
                "finished_at": utcnow(),
                "added": report.added,
                "updated": report.updated,
                "removed": report.removed,
                "unchanged": report.unchanged,
                "skipped": len(report.skipped),
                "status": "cancelled" if report.cancelled else "done",
            },
        )
    if not report.cancelled:
        withdrawn = _withdraw(lib, unlisted - set(products), now)
        if sheet is not None:
            _note_bare_products(lib, sheet, list(products), withdrawn, report)
            report.notes += saved.notes + tidy(lib, saved, root)
            # Exports follow the first supplier sheet's convention: a semicolon sheet comes
            # from a decimal-comma locale, whose Excel reads only semicolons and "1,29". The
            # first only: the shop's Excel does not change with the next supplier's sheet.
            if not sheet.workbook and not lib.setting(SEPARATOR_SETTING, ""):
                separator = "semicolon" if sheet.delimiter == ";" else "comma"
                lib.set_setting(SEPARATOR_SETTING, separator)
    if returning:  # their remembered photos serve as references again
        _remember_again(lib, returning)
    if report.added or report.updated or report.removed:
        lib.rebuild_index()
    else:
        lib.invalidate_index()  # nothing changed: reload, and rebuild only if the file is stale
        _ = lib.index
    if not report.cancelled and lib.local_features:
        # Driven by the database, not by this run: also finishes an earlier interrupted sync.
        synced = lib.sync_local_features(progress=progress, cancel=cancel)
        report.cancelled = synced.cancelled
    return report


def _note_copies(lib: Library, repeats: dict[str, int], report: ImportReport) -> None:
    """Pictures this folder repeats from another catalog folder (same picture, same SKU) are
    skipped; that folder may be an older copy of this catalog, or another supplier's that
    shares stock photos: only the user can tell, so the import says so and leaves both."""
    for other, n in sorted(repeats.items(), key=lambda kv: -kv[1]):
        if not Path(other).is_dir():
            continue
        if report.copy_of is None:
            report.copy_of = other
        report.notes.append(
            (
                other,
                f"{count(n, 'picture')} of this catalog {are(n)} also imported from there, "
                f"for the same products, and {'stays' if n == 1 else 'stay'} there; if this "
                "folder is a newer copy of "
                f"that catalog, import it again with --replaces {other}",
            )
        )


def _replace(lib: Library, old: Path, source: str) -> str:
    """``--replaces OLD``: OLD's catalog pictures become this folder's, in one transaction,
    so that this import (and, after a cancel or a crash, the next one) takes them over where
    it finds the same picture and removes the rest as it removes its own missing files."""
    folder = str(Path(old).resolve())
    if folder == source:
        raise ValueError(f"{old} is the folder being imported; --replaces names an older one")
    if (
        lib.db.execute(
            "SELECT 1 FROM catalog_images WHERE source_root = ? AND origin = 'catalog' LIMIT 1",
            [folder],
        ).fetchone()
        is None
    ):
        raise ValueError(f"no catalog pictures were imported from {old}")
    return folder


def _withdraw(lib: Library, unpictured: set[str], now: str) -> list[str]:
    """Products whose last supplier picture this import removed and that it no longer lists
    have left the catalog: they stay for the decisions that name them, but their remembered
    photos stop being references, or they went on being suggested (at 100%). The index is
    rebuilt by the caller (pictures were removed)."""
    has = "SELECT 1 FROM catalog_images WHERE sku = ? AND origin = 'catalog' LIMIT 1"
    gone = sorted(sku for sku in unpictured if lib.db.execute(has, [sku]).fetchone() is None)
    _mark_withdrawn(lib, gone, now)
    return gone


def _mark_withdrawn(lib: Library, gone: list[str], now: str) -> None:
    from engine import memory

    for start in range(0, len(gone), 900):  # under SQLite's bound-parameter limit
        part = gone[start : start + 900]
        marks = ", ".join("?" * len(part))
        # Their remembered photos' file names: an older photo confirmed under one of them
        # (a camera that restarted its counter) takes the name's reference, as after an undo.
        held = lib.db.execute(
            f"SELECT photo_id, path FROM catalog_images WHERE origin = 'confirmed' "
            f"AND photo_id IS NOT NULL AND sku IN ({marks})",
            part,
        ).fetchall()
        with transaction(lib.db):
            lib.db.execute(
                f"UPDATE products SET withdrawn_at = ? WHERE sku IN ({marks})", [now, *part]
            )
            lib.db.execute(
                f"DELETE FROM catalog_images WHERE origin = 'confirmed' AND sku IN ({marks})",
                part,
            )
        if memory.enabled(lib):
            for photo_id, path in held:
                memory.hand_down(lib, int(photo_id), str(path))


def withdraw_dropped_before_v5(lib: Library) -> list[str]:
    """Products an import made before schema v5 dropped (run once after such a library is
    upgraded): releases before v5 removed a product's pictures when its folder's sheet no
    longer listed it, but kept the product and its remembered photos, so it went on being
    suggested. Withdrawn now, as ``_withdraw`` does at such an import today, are products
    with no supplier picture left anywhere whose folder was imported again, with a sheet and
    to the end, after the last import that listed them: every import sets ``updated_at`` of
    each product it lists to its own ``started_at``, so that later sheet did not list them.
    Those releases had no 'keep' imports (a sheet of new products only), so a later sheet of
    the same folder is the catalog that dropped them; a product the latest sheet of its folder
    still lists, or with a picture in any folder, is never withdrawn.

    Today's import withdraws only a product whose last supplier picture it removed: one
    listed without a picture on purpose (staff match it by their own confirmed photos) is
    kept when a later sheet leaves it out. So only products that once had a catalog picture
    are withdrawn here, as far as the old schema tells: a later import of the folder removed
    pictures (``imports.removed``), and the product was suggested for a photo before anyone
    confirmed it (a stored suggestion made then came from a supplier picture, not from
    instant memory). A product the old data cannot show had a picture stays, as every
    release before v5 kept it. Returns their SKUs; the caller rebuilds the index."""
    rows = lib.db.execute(
        """
        SELECT p.sku FROM products p
        WHERE p.withdrawn_at IS NULL
          AND NOT EXISTS (
              SELECT 1 FROM catalog_images c WHERE c.sku = p.sku AND c.origin = 'catalog')
          AND EXISTS (SELECT 1 FROM imports i WHERE i.started_at = p.updated_at)
          AND NOT EXISTS (
              SELECT 1 FROM imports i WHERE i.started_at = p.updated_at
              AND i.source_root != (
                  SELECT source_root FROM imports WHERE started_at = p.updated_at LIMIT 1))
          AND EXISTS (
              SELECT 1 FROM imports later
              WHERE later.source_root = (
                  SELECT source_root FROM imports WHERE started_at = p.updated_at LIMIT 1)
                AND later.started_at > p.updated_at
                AND later.sheet IS NOT NULL AND later.status = 'done' AND later.removed > 0)
          AND EXISTS (
              SELECT 1 FROM suggestions s WHERE s.sku = p.sku
                AND s.created_at <= COALESCE(
                    (SELECT min(d.decided_at) FROM decisions d
                     WHERE d.sku = p.sku AND d.action = 'confirm'), '9999'))
        ORDER BY p.sku
        """
    ).fetchall()
    gone = [str(r[0]) for r in rows]
    _mark_withdrawn(lib, gone, utcnow())
    return gone


def _remember_again(lib: Library, skus: list[str]) -> None:
    from engine import memory
    from engine.decisions import effective_states

    wanted = set(skus)
    for photo_id, d in effective_states(lib).items():
        if d.action == "confirm" and d.sku in wanted:
            memory.sync_photo(lib, photo_id)


def _note_bare_products(
    lib: Library, sheet: Sheet, skus: list[str], withdrawn: list[str], report: ImportReport
) -> None:
    """Products the sheet lists that have no picture: matching can never suggest them, and
    the product count alone does not show it."""
    has = "SELECT 1 FROM catalog_images WHERE sku = ? LIMIT 1"
    bare = [sku for sku in skus if lib.db.execute(has, [sku]).fetchone() is None]
    if bare:
        report.notes.append(
            (
                sheet.path.name,
                f"{count(len(bare), 'product')} without a picture ({_some(bare)}): never "
                "suggested until one is imported",
            )
        )
    # Products an earlier sheet listed and this one does not: their pictures left with them,
    # but the products stay for the decisions that name them. Said, or the product count in
    # 'status' would not add up with the sheet's.
    # Only those whose pictures this import removed: another supplier's products, or ones
    # that never had a picture, are not this sheet's to mention at every import.
    if withdrawn:
        report.notes.append(
            (
                sheet.path.name,
                f"{count(len(withdrawn), 'product')} in the library but not in this sheet "
                f"({_some(withdrawn)}): no longer suggested; kept for the decisions that name "
                "them",
            )
        )


def _some(skus: list[str]) -> str:
    return ", ".join(skus[:5]) + (", ..." if len(skus) > 5 else "")


def _run_clock(
    lib: Library, images: int, owed: int, progress: ProgressCallback | None
) -> RunClock | None:
    """One bar and one time left for the whole import, its keypoints included; planned for
    every image to be new, and corrected down once the check knows which are."""
    if progress is None:
        return None
    plan = [
        (STAGE_CHECK, images * CHECK_S),
        (STAGE_ENCODE, images * ENCODE_S),
        (local_features.SYNC_STAGE, _keypoints_s(lib, owed + images)),
    ]
    return RunClock(plan, progress, prior_weight_s=PRIOR_WEIGHT_S)


def _keypoints_s(lib: Library, images: int) -> float:
    return images * KEYPOINTS_S if lib.local_features else 0.0


def _embedded(lib: Library, image_id: int) -> bool:
    return (
        lib.db.execute(
            "SELECT 1 FROM embeddings WHERE image_id = ? AND model_version = ?",
            [image_id, lib.model_version],
        ).fetchone()
        is not None
    )
