"""Pictures placed inside a supplier's workbook, saved as files the catalog can import.

Many price lists carry each product's picture in its row. The catalog imports picture
files (it hashes, re-reads and follows them like any other), so the workbook's pictures are
written into a folder named after it, inside the catalog folder: visible to the shop, named
by SKU. The folder holds a manifest (``.shopmatch-pictures``: the workbook, where the
folder was made, each file with the hash of what ShopMatch wrote, and which files each
library uses), so that ShopMatch

- writes into no folder it did not make (a folder moved elsewhere is the shop's from then);
- rewrites a file only when the workbook's picture changed: an edit the shop made to a
  saved picture stays (with a note), and an unchanged one is not even re-read;
- once an import has gone through, deletes the files of pictures the supplier took out,
  but only a file ShopMatch wrote, unchanged since, that no library uses any more.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from engine.atomic import atomic_write_bytes, atomic_write_text
from engine.images import WORKBOOK_PICTURES_MARKER as MARKER
from engine.sheet import Sheet, SheetRow
from engine.wording import count

if TYPE_CHECKING:
    from engine.library import Library

log = logging.getLogger(__name__)

# Characters no file name may hold on Windows, macOS or Linux, and ';' (a sheet's picture
# list separator).
_UNSAFE = re.compile(r'[<>:"/\\|?*;\x00-\x1f]')
_WINDOWS_RESERVED = re.compile(r"(con|prn|aux|nul|com\d|lpt\d)(\..*)?", re.IGNORECASE)
STEM_BYTES = 150  # of the 255 a file name may have: room for "_12", a hash and ".jpeg"
OTHER_NAMES = 10  # "<name> pictures (ShopMatch)", "(ShopMatch 2)", ... before giving up


@dataclass
class Manifest:
    workbook: str = ""  # the workbook's absolute path
    folder: str = ""  # the folder's own absolute path when it was made
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256 written
    claims: dict[str, list[str]] = field(default_factory=dict)  # library -> files it uses


@dataclass
class SavedPictures:
    folder: Path | None = None  # None: not a workbook, or no folder of ours to look after
    by_row: dict[int, list[Path]] = field(default_factory=dict)  # id(SheetRow) -> files
    written: dict[str, str] = field(default_factory=dict)  # file name -> sha256 written
    notes: list[tuple[str, str]] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(len(paths) for paths in self.by_row.values())

    def sizes(self, sheet: Sheet | None) -> dict[str, int]:
        """Each planned file and the size it will have: before they are written, the
        ask-first check counts them as there (a renamed workbook's pictures are followed
        by size, not taken for removed)."""
        if sheet is None:
            return {}
        return {
            str(path): len(picture.data)
            for row in sheet.rows
            for picture, path in zip(row.embedded, self.by_row.get(id(row), []), strict=False)
        }


def safe_stem(text: str) -> str:
    """A file name stem for ``text`` on every system; a SKU that had to change keeps a
    short hash of itself, so 'A/1' and 'A_1' do not share a file."""
    stem = _UNSAFE.sub("_", text).strip().rstrip(".") or "_"
    if _WINDOWS_RESERVED.fullmatch(stem):
        stem = f"_{stem}"
    stem = stem.encode()[:STEM_BYTES].decode(errors="ignore")
    if stem != text:
        stem += "-" + _short_hash(text)
    return stem


def folder_for(sheet_path: Path, root: Path) -> Path:
    """'Preisliste 2026.xlsx' -> root/'Preisliste 2026 pictures', or, when a folder of that
    name is the shop's own (no manifest, not empty), '... pictures (ShopMatch)', then
    '(ShopMatch 2)' and so on. ShopMatch never writes into a folder it did not make."""
    folders = _folder_names(sheet_path, root)
    for folder in folders:
        if not folder.exists() or read_manifest(folder) is not None:
            return folder
        if folder.is_dir() and not any(folder.iterdir()):
            return folder
    raise ValueError(
        f"cannot save the pictures of {sheet_path.name}: folders named '{folders[0].name}' "
        f"and '{folders[-1].name}' already hold other files in {root}; move them away, then "
        "import"
    )


def _folder_names(sheet_path: Path, root: Path) -> list[Path]:
    """The folders a workbook's pictures may go to, in the order they are tried."""
    stem = safe_stem(sheet_path.stem)
    names = [f"{stem} pictures", f"{stem} pictures (ShopMatch)"]
    names += [f"{stem} pictures (ShopMatch {n})" for n in range(2, OTHER_NAMES)]
    return [root / name for name in names]


def plan_pictures(sheet: Sheet, root: Path) -> SavedPictures:
    """Where the pictures placed in the sheet's rows go (nothing written yet: the import
    may still ask first whether to go ahead)."""
    if not sheet.workbook:
        return SavedPictures()
    rows = [row for row in sheet.rows if row.embedded]
    if not rows:  # none now: an earlier import's folder (of any of its names) is still tidied
        ours = (f for f in _folder_names(sheet.path, root) if read_manifest(f) is not None)
        return SavedPictures(next(ours, None))
    folder = folder_for(sheet.path, root)
    plan = SavedPictures(folder)
    for row, names in zip(rows, _file_names(rows), strict=True):
        plan.by_row[id(row)] = [folder / name for name in names]
    return plan


def save_pictures(sheet: Sheet, plan: SavedPictures, library: Path) -> None:
    """Write the planned pictures into the workbook's picture folder (see the module's
    rules for what is left as it is); nothing is deleted here. ``library`` claims the
    files at once: an import cancelled before its tidy still holds them against another
    library's."""
    folder = plan.folder
    if folder is None or not plan.by_row:
        return
    manifest = read_manifest(folder) if folder.exists() else None
    manifest = manifest or Manifest(folder=str(folder.resolve()))
    before = manifest.files
    try:
        folder.mkdir(exist_ok=True)
        for row in sheet.rows:
            for picture, path in zip(row.embedded, plan.by_row.get(id(row), []), strict=True):
                new = hashlib.sha256(picture.data).hexdigest()
                kept = _write(path, picture.data, new, before.get(path.name), plan)
                if kept is not None:
                    plan.written[path.name] = kept
        manifest.workbook = str(sheet.path.resolve())
        manifest.files = {**before, **plan.written}
        key = str(Path(library).resolve())
        planned = {p.name for paths in plan.by_row.values() for p in paths}
        manifest.claims[key] = sorted(set(manifest.claims.get(key, [])) | planned)
        _write_manifest(folder, manifest)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise  # said as a full disk
        advice = (
            "copy the workbook into a folder you can write to, and import it from there"
            if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
            else "see that the folder can be written to, then import again"
        )
        raise ValueError(
            f"cannot save the pictures of {sheet.path.name} into {folder} "
            f"({exc.strerror or exc}); {advice}"
        ) from exc
    plan.notes.append(
        (
            str(folder),
            f"{count(plan.count, 'picture')} placed in {sheet.path.name}: saved here, named "
            "by SKU, and imported",
        )
    )


def tidy(lib: Library, saved: SavedPictures, root: Path) -> list[tuple[str, str]]:
    """After an import that went through: note which files of the workbook's picture folder
    this library uses, and delete the files ShopMatch wrote that it did not write now
    (pictures the supplier took out), unless one was changed since (the shop's) or a
    library still uses it (kept by ``--keep-missing``, here or in another library that
    imports the same workbook). The folders under ``root`` of workbooks no longer there
    (renamed: their pictures were followed to the new folder) are tidied alike, and go
    once nothing is left in them. Returns notes for the import's summary."""
    catalog = {str(p) for (p,) in lib.db.execute("SELECT path FROM catalog_images")}
    folders: list[tuple[Path, Manifest]] = []
    if saved.folder is not None and (manifest := read_manifest(saved.folder)) is not None:
        folders.append((saved.folder, manifest))
    for marker in sorted(root.glob(f"*/{MARKER}")):
        if marker.parent.is_symlink() or marker.parent == saved.folder:
            continue  # a folder linked in from elsewhere is tidied where it lives, if at all
        manifest = read_manifest(marker.parent)
        if manifest and not Path(manifest.workbook).exists():
            folders.append((marker.parent, manifest))
    notes: list[tuple[str, str]] = []
    for folder, manifest in folders:
        now = saved.written if folder == saved.folder else {}
        try:
            gone = _tidy_folder(lib, folder, manifest, now, catalog)
        except OSError as exc:  # the import went through: tidying can wait for the next
            log.warning("could not tidy %s: %s", folder, exc)
            continue
        if gone:
            shown = ", ".join(sorted(gone)[:5]) + (", ..." if len(gone) > 5 else "")
            notes.append(
                (
                    str(folder),
                    f"{count(len(gone), 'saved picture')} the workbook no longer holds: "
                    f"removed ({shown})",
                )
            )
    return notes


def _tidy_folder(
    lib: Library, folder: Path, manifest: Manifest, now: dict[str, str], catalog: set[str]
) -> list[str]:
    here = sorted(p.name for p in folder.iterdir() if str(p) in catalog)
    manifest.claims[str(Path(lib.path).resolve())] = here
    claimed = {name for names in manifest.claims.values() for name in names}
    gone = [
        name
        for name, written in manifest.files.items()
        if name not in now and name not in claimed and _sha(folder / name) == written
    ]
    for name in gone:
        (folder / name).unlink(missing_ok=True)
    manifest.files = {n: h for n, h in manifest.files.items() if n not in gone}
    if not manifest.files and not claimed and all(p.name == MARKER for p in folder.iterdir()):
        (folder / MARKER).unlink(missing_ok=True)  # a renamed workbook's folder, now empty
        folder.rmdir()
    else:
        _write_manifest(folder, manifest)
    return gone


def read_manifest(folder: Path) -> Manifest | None:
    """The folder's manifest, or None: none, of another shape, or written for another place
    (the shop moved the folder: its files are the shop's from then on). Only plain file
    names of the folder itself are taken: a name like '../notes.txt' makes it not ours."""
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
        where = str(folder.resolve())
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("workbook"), str):
        return None
    workbook = data["workbook"]
    if data.get("folder") != where:
        # Moved together with its workbook (a renamed catalog folder, a USB stick under
        # another drive letter): still ShopMatch's. Moved alone, it is the shop's.
        old = data.get("folder")
        if not isinstance(old, str) or not old or not workbook:
            return None
        workbook = os.path.normpath(os.path.join(where, os.path.relpath(workbook, old)))
        if not Path(workbook).is_file():
            return None
    files, claims = data.get("files"), data.get("claims", {})
    if not (isinstance(files, dict) and isinstance(claims, dict)):
        return None
    names = list(files) + [n for v in claims.values() if isinstance(v, list) for n in v]
    if not all(isinstance(h, str) for h in files.values()) or not all(
        isinstance(v, list) for v in claims.values()
    ):
        return None
    if not all(isinstance(n, str) and _plain(n) for n in names):
        return None
    return Manifest(workbook, where, files, claims)


def _plain(name: str) -> bool:
    return Path(name).name == name and name not in (".", "..", MARKER) and "\\" not in name


def _sha(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _file_names(rows: list[SheetRow]) -> list[list[str]]:
    """Each row's pictures' file names: 'X.png', 'X_2.png', ... A SKU's own stem is kept
    for it, so SKU 'X_2' keeps 'X_2.png' and X's second picture becomes 'X_3.png'; names
    are told apart ignoring case, as on macOS and Windows ('AB12' and 'ab12')."""
    stems: dict[int, str] = {}
    reserved: dict[str, str] = {}  # case-folded stem -> the SKU it is kept for
    for row in rows:
        stem = safe_stem(row.sku)
        if reserved.setdefault(stem.casefold(), row.sku) != row.sku:
            stem += "-" + _short_hash(row.sku)
            reserved.setdefault(stem.casefold(), row.sku)
        stems[id(row)] = stem
    used: set[str] = set()
    names: list[list[str]] = []
    for row in rows:
        stem, mine = stems[id(row)], []
        for picture in row.embedded:
            name, n = stem, 1
            while name.casefold() in used or (n > 1 and name.casefold() in reserved):
                n += 1
                name = f"{stem}_{n}"
            used.add(name.casefold())
            mine.append(f"{name}.{picture.ext}")
        names.append(mine)
    return names


def _write(path: Path, data: bytes, new: str, last: str | None, saved: SavedPictures) -> str | None:
    """Write ``data`` unless the file already holds it, or is the shop's: changed since
    ShopMatch wrote it, or put there by the shop. Returns the hash the manifest keeps for
    the file; None for a file of the shop's, which ShopMatch will never delete."""
    on_disk = _sha(path) if path.exists() else None
    if on_disk == new:
        return new
    if on_disk is not None and on_disk != last:
        changed = " (and the workbook has a new picture for it)" if last not in (None, new) else ""
        saved.notes.append(
            (
                str(path),
                f"kept as it is: changed here since ShopMatch saved it{changed}; delete it to "
                "take the workbook's picture",
            )
        )
        return last
    atomic_write_bytes(path, data)
    return new


def _write_manifest(folder: Path, manifest: Manifest) -> None:
    atomic_write_text(
        folder / MARKER,
        json.dumps(
            {
                "about": "ShopMatch saved the pictures of this workbook here to import them; "
                "it replaces them when the workbook's pictures change.",
                "workbook": manifest.workbook,
                "folder": manifest.folder,
                "files": manifest.files,
                "claims": manifest.claims,
            },
            ensure_ascii=False,
            indent=1,
        ),
    )


def _short_hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:6]
