"""Pictures placed inside a supplier's workbook, saved as files the catalog can import.

Many price lists carry each product's picture in its row. The catalog imports picture
files (it hashes, re-reads and follows them like any other), so the workbook's pictures are
written beside it, into a folder named after it inside the catalog folder: visible to the
shop, named by SKU, rewritten only when the workbook's picture changes (an unchanged one
is not even re-read by the next import), and tidied once an import has gone through.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from engine.atomic import atomic_write_bytes
from engine.sheet import Sheet

# Characters no file name may hold on Windows, macOS or Linux, and ';' (a sheet's picture
# list separator).
_UNSAFE = re.compile(r'[<>:"/\\|?*;\x00-\x1f]')
_WINDOWS_RESERVED = re.compile(r"(con|prn|aux|nul|com\d|lpt\d)(\..*)?", re.IGNORECASE)


MARKER = ".shopmatch-pictures"  # in a folder ShopMatch made: its files are ShopMatch's


@dataclass
class SavedPictures:
    folder: Path | None = None  # None: not a workbook, or no folder of ours to look after
    by_row: dict[int, list[Path]] = field(default_factory=dict)  # id(SheetRow) -> files

    @property
    def count(self) -> int:
        return sum(len(paths) for paths in self.by_row.values())


def folder_for(sheet_path: Path, root: Path) -> Path:
    """'Preisliste 2026.xlsx' -> root/'Preisliste 2026 pictures', unless a folder of that
    name holds the shop's own files: then root/'Preisliste 2026 pictures (ShopMatch)'.
    ShopMatch never writes into, nor tidies, a folder it did not make."""
    stem = safe_stem(sheet_path.stem)
    for name in (f"{stem} pictures", f"{stem} pictures (ShopMatch)"):
        folder = root / name
        if not folder.exists() or (folder / MARKER).is_file():
            return folder
        if folder.is_dir() and not any(folder.iterdir()):
            return folder
    return root / f"{stem} pictures (ShopMatch)"  # a file of that name: mkdir says so


def safe_stem(text: str) -> str:
    """A file name stem for ``text`` on every system; a SKU that had to change keeps a
    short hash of itself, so 'A/1' and 'A_1' do not share a file."""
    stem = _UNSAFE.sub("_", text).strip().rstrip(".") or "_"
    if _WINDOWS_RESERVED.fullmatch(stem):
        stem = f"_{stem}"
    stem = stem[:100]
    if stem != text:
        stem += "-" + hashlib.sha1(text.encode()).hexdigest()[:6]
    return stem


def save_pictures(sheet: Sheet, root: Path) -> SavedPictures:
    """Write the pictures placed in the sheet's rows into the workbook's picture folder
    under ``root``; a file that already holds the same bytes is left as it is."""
    if not sheet.workbook:
        return SavedPictures()
    folder = folder_for(sheet.path, root)
    rows = [row for row in sheet.rows if row.embedded]
    if not rows:  # none now: an earlier import's folder is still tidied
        return SavedPictures(folder if (folder / MARKER).is_file() else None)
    saved = SavedPictures(folder)
    taken: dict[str, int] = {}
    try:
        folder.mkdir(exist_ok=True)
        if not (folder / MARKER).is_file():
            atomic_write_bytes(
                folder / MARKER,
                f"ShopMatch saved the pictures of {sheet.path.name} here, to import them. "
                "It replaces them when the workbook changes.\n".encode(),
            )
        for row in rows:
            for picture in row.embedded:
                stem = safe_stem(row.sku)
                taken[stem] = taken.get(stem, 0) + 1
                suffix = "" if taken[stem] == 1 else f"_{taken[stem]}"
                path = folder / f"{stem}{suffix}.{picture.ext}"
                if not _holds(path, picture.data):
                    atomic_write_bytes(path, picture.data)
                saved.by_row.setdefault(id(row), []).append(path)
    except OSError as exc:
        raise OSError(
            exc.errno,
            f"cannot save the pictures of {sheet.path.name} into {folder} "
            f"({exc.strerror or exc}); copy the workbook into a folder you can write to, "
            "and import it from there",
        ) from exc
    return saved


def tidy(saved: SavedPictures) -> int:
    """Remove the picture folder's files this import did not write (products or pictures
    the supplier took out of the workbook); returns how many. Only after the import went
    through: until then they are the catalog's pictures."""
    if saved.folder is None or not (saved.folder / MARKER).is_file():
        return 0
    keep = {p.name for paths in saved.by_row.values() for p in paths}
    gone = 0
    for path in saved.folder.iterdir():
        if path.is_file() and path.name not in keep and path.name != MARKER:
            path.unlink(missing_ok=True)
            gone += 1
    return gone


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False
