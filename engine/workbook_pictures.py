"""The pictures placed on a workbook's worksheets, read from the zip, with the row each sits in.

Not through openpyxl's own image loading: it opens every picture with Pillow while the
workbook loads, so one oversized picture (a decompression bomb) stops the whole price list,
EMF drawings and damaged pictures vanish without a trace, and BMP, TIFF or WebP pictures
are decoded in full and re-encoded as PNG. Here each picture's header is checked before
anything is decoded, its bytes are kept as the supplier pasted them, and what cannot be
used is named with its row. openpyxl still parses the drawing XML (the anchors).
"""

from __future__ import annotations

import contextlib
import io
import threading
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError

from engine.images import MAX_PIXELS

# Pillow format -> the suffix the picture is saved with (MPO: a phone's JPEG with a second
# picture inside).
SUFFIXES = {
    "PNG": "png",
    "JPEG": "jpg",
    "MPO": "jpg",
    "GIF": "gif",
    "BMP": "bmp",
    "TIFF": "tif",
    "WEBP": "webp",
}
_EMU_PER_POINT = 12700
_LOADING = threading.Lock()


@dataclass
class Picture:
    """A picture placed on a worksheet, in Excel's row ``row`` (the one holding its middle)."""

    data: bytes
    ext: str  # the suffix it is saved with: "png", "jpg", ...
    row: int


@contextlib.contextmanager
def openpyxl_without_pictures() -> Iterator[None]:
    """Load a workbook with openpyxl's picture loading off (its "Pillow is not installed"
    path: drawings are parsed, pictures dropped). A module setting, so one load at a time."""
    import openpyxl.reader.drawings as drawings

    with _LOADING:
        saved = drawings.PILImage
        drawings.PILImage = None
        try:
            yield
        finally:
            drawings.PILImage = saved


def read_pictures(
    zf: zipfile.ZipFile, sheet_part: str, ws: Any
) -> tuple[list[Picture], list[tuple[int, str]]]:
    """The pictures on the worksheet stored at ``sheet_part``, and (row, why) for each
    picture that cannot serve as a catalog picture."""
    from openpyxl.drawing.spreadsheet_drawing import SpreadsheetDrawing
    from openpyxl.packaging.relationship import get_dependents, get_rels_path
    from openpyxl.xml.constants import IMAGE_NS
    from openpyxl.xml.functions import fromstring

    names = set(zf.namelist())
    found: list[Picture] = []
    problems: list[tuple[int, str]] = []
    rows = _RowPositions(ws)
    for drawing_part in _targets(zf, names, sheet_part, SpreadsheetDrawing._rel_type):
        try:
            drawing = SpreadsheetDrawing.from_tree(fromstring(zf.read(drawing_part)))
        except (TypeError, KeyError, SyntaxError):  # shapes openpyxl cannot parse
            continue
        rels = get_rels_path(drawing_part)
        deps = get_dependents(zf, rels) if rels in names else None
        for blip in drawing._blip_rels:
            dep = deps.get(blip.embed) if deps is not None else None
            if dep is None or dep.Type != IMAGE_NS or dep.target.lstrip("/") not in names:
                continue  # a linked (not embedded) or missing picture
            row = rows.row_of(blip.anchor)
            data = zf.read(dep.target.lstrip("/"))
            why, ext = _usable(data)
            if why:
                problems.append((row, why))
            else:
                found.append(Picture(data, ext, row))
    return found, problems


def in_cell_count(zf: zipfile.ZipFile) -> int:
    """Pictures Excel keeps *in* cells ("Place in Cell", rich values): no drawing places
    them, and openpyxl cannot read them."""
    rels = "xl/richData/_rels/richValueRel.xml.rels"
    if rels not in zf.namelist():
        return 0
    return zf.read(rels).count(b"<Relationship ")


def _targets(zf: zipfile.ZipFile, names: set[str], part: str, rel_type: str) -> list[str]:
    from openpyxl.packaging.relationship import get_dependents, get_rels_path

    rels = get_rels_path(part)
    if rels not in names:
        return []
    return [r.target.lstrip("/") for r in get_dependents(zf, rels).find(rel_type)]


def _usable(data: bytes) -> tuple[str, str]:
    """(why not, "") for a picture the catalog cannot take; ("", suffix) otherwise. Only
    the header is read: the import decodes it, once, with its own limits."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # said below
            with Image.open(io.BytesIO(data)) as im:
                width, height, kind = im.width, im.height, str(im.format or "")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return "not a picture ShopMatch can read (an EMF drawing, or damaged)", ""
    if kind not in SUFFIXES:
        return f"a {kind} drawing, not a picture ShopMatch can read", ""
    if width * height > MAX_PIXELS:
        return (
            f"a picture of {width} x {height} pixels, over the {MAX_PIXELS // 10**6} "
            "million the catalog takes",
            "",
        )
    return "", SUFFIXES[kind]


class _RowPositions:
    """Where rows start, in EMU from the sheet's top, to tell which row a picture belongs
    to: the one its top edge is in, or the next when it ends there and more of it lies
    there (a picture dragged a little too high). Not the row of its middle: a picture
    taller than the rows (left at its own size) would go rows too far down."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        default = getattr(ws.sheet_format, "defaultRowHeight", None) or 15.0
        self.default = float(default) * _EMU_PER_POINT
        self.tops = [0.0]  # tops[i]: top of Excel row i + 1
        self.limit = (ws.max_row or 1) + 1000

    def top(self, row0: int) -> float:
        """Top of the 0-based row ``row0``."""
        dims = self.ws.row_dimensions
        while len(self.tops) <= min(row0, self.limit):
            r = len(self.tops)  # Excel row r lies below tops[r - 1]
            height = dims[r].ht if r in dims else None
            step = float(height) * _EMU_PER_POINT if height else self.default
            self.tops.append(self.tops[-1] + step)
        return self.tops[min(row0, self.limit)]

    def row_of(self, anchor: Any) -> int:
        start = getattr(anchor, "_from", None)
        size = getattr(getattr(anchor, "ext", None), "cy", 0) or 0
        if start is not None:
            row0 = start.row
            offset = float(start.rowOff or 0)
            end = getattr(anchor, "to", None)
            if end is not None:
                bottom = self.top(end.row) + (end.rowOff or 0)
            else:
                bottom = self.top(row0) + offset + size
        else:  # placed at a fixed position
            top = float(getattr(getattr(anchor, "pos", None), "y", 0) or 0)
            bottom = top + size
            row0 = 0
            while row0 < self.limit and self.top(row0 + 1) <= top:
                row0 += 1
            offset = top - self.top(row0)
        in_top = self.top(row0 + 1) - (self.top(row0) + offset)
        in_next = min(bottom, self.top(row0 + 2)) - self.top(row0 + 1)
        if in_next > in_top and bottom <= self.top(row0 + 2):
            row0 += 1  # dragged a little too high: it ends in the next row, mostly there
        return row0 + 1
