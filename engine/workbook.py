"""Read the worksheets of a supplier's Excel workbook (.xlsx, .xlsm) as sheet text.

Suppliers mail their price lists as workbooks far more often than as CSV. Asking the shop
to re-save each one is a step that gets forgotten, and it is where Excel mangles SKUs:
"00123" shown through a "00000" format is saved as 123, a 13-digit EAN as 4.00638E+12.
Reading the cells gives what the supplier sees in Excel: numbers as their format shows
them, a category merged down a group of rows beside each row. Each worksheet becomes CSV
text, one line per worksheet row, so the sheet reader maps columns, finds the header below
a title and reports problems exactly as for a CSV, with the row numbers Excel shows.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.workbook_pictures import Picture

# Cells of all worksheets together, as XML: beyond this a workbook is refused (save it as
# CSV) rather than loaded. openpyxl holds every cell in memory (about 100 bytes of XML and
# 500 bytes of Python per cell): 100 MB is some 1.5 million cells, a price list of 150,000
# products, in about 1 GB. A zip bomb declares its real size, so it stops here too.
MAX_CELLS_XML = 100 * 1024 * 1024

_ZERO_PADDED = re.compile(r"0+")
_STRICT = b"purl.oclc.org/ooxml/spreadsheetml"
# A cell element and its content (an optional namespace prefix, as some exporters write).
_CELL = re.compile(rb"<(?:\w+:)?c\b([^>]*?)(?:/>|>(.*?)</(?:\w+:)?c>)", re.S)
_ROW_OF = re.compile(rb'\br="[A-Z]+(\d+)"')
_VALUE = re.compile(rb"<(?:\w+:)?v>[^<]")


@dataclass
class Worksheet:
    title: str
    text: str  # CSV (comma, Excel quoting), line N holding the worksheet's row N
    error_rows: list[int] = field(default_factory=list)  # a formula error (#N/A) in a cell
    unsaved_rows: list[int] = field(default_factory=list)  # a formula with no saved value
    hidden_rows: list[int] = field(default_factory=list)  # hidden in Excel, not empty
    visible: bool = True
    active: bool = False  # the one the workbook opens on
    # Row -> the first row of the nearest merge spanning rows that covers it: a product
    # laid out over a block of rows keeps its picture, wherever in the block it sits.
    blocks: dict[int, int] = field(default_factory=dict)
    pictures: list[Picture] = field(default_factory=list)  # placed on it, each in a row
    # (row, why) for pictures placed on it that a catalog cannot use (EMF, too big, damaged)
    picture_problems: list[tuple[int, str]] = field(default_factory=list)


def spreadsheet_kind(raw: bytes) -> str | None:
    """What kind of spreadsheet file ``raw`` is: 'xlsx' (read here), 'strict' (Excel's
    Strict Open XML, which openpyxl cannot read), 'xls' (also an encrypted workbook),
    'xlsb' (Excel's binary format), 'ods', 'numbers', 'zip' (some other archive),
    'damaged' (a zip container cut short); None for text."""
    if raw.startswith(b"\xd0\xcf\x11\xe0"):
        return "xls"
    if not raw.startswith(b"PK\x03\x04"):
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            names = set(zf.namelist())
            head = b""
            for member in ("mimetype", "xl/workbook.xml"):
                if member in names:
                    with zf.open(member) as f:
                        head += f.read(2048)  # never a whole entry: it could be a zip bomb
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return "damaged"
    if "xl/workbook.xml" in names:
        return "strict" if _STRICT in head else "xlsx"
    if "xl/workbook.bin" in names:
        return "xlsb"
    if b"opendocument.spreadsheet" in head:
        return "ods"
    if any(n.startswith("Index/") for n in names):
        return "numbers"
    return "zip"


def cells_xml_size(raw: bytes) -> int:
    """The uncompressed size of the workbook's worksheets and shared strings, as declared."""
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        return sum(
            i.file_size
            for i in zf.infolist()
            if i.filename.startswith("xl/worksheets/") or i.filename == "xl/sharedStrings.xml"
        )


def _first_section(number_format: str) -> str:
    """A number format's part for positive numbers, without colours, locale tags, quoted
    text, escaped characters and alignment spaces: '[$-409]00000_);[Red](00000)' -> '00000'."""
    section = re.split(r';(?=(?:[^"]*"[^"]*")*[^"]*$)', number_format)[0]
    section = re.sub(r'\[[^\]]*\]|"[^"]*"|\\.|_.|\*.', "", section)
    return section.strip()


def _as_shown(value: float | int, number_format: str | None) -> str | None:
    """A number as its format shows it, where that matters to a sheet: zeros padding a code
    ('00000'), decimals rounded ('0.00': 1.5351 shows 1.54, as Excel's own CSV has it), a
    percentage ('0%': 0.19 shows 19%); None when the format changes nothing we keep.
    Scientific formats are ignored: an EAN shown as 4.01E+12 is still the whole code."""
    if not number_format or number_format == "General":
        return None
    shown = _first_section(number_format)
    if "E+" in shown.upper() or "E-" in shown.upper() or not re.search(r"[0#?]", shown):
        return None
    if isinstance(value, int) and value >= 0 and _ZERO_PADDED.fullmatch(shown):
        return str(value).zfill(len(shown))
    percent = "%" in shown
    if percent:
        value = value * 100
    decimals = len(re.findall(r"[0#?]", shown.split(".", 1)[1])) if "." in shown else 0
    exact = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    rounded = exact.quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    return f"{rounded}{'%' if percent else ''}"


def cell_text(value: object, number_format: str | None) -> str:
    """A cell as the supplier reads it: whole numbers without '.0', numbers as their format
    shows them, dates without a midnight time, line breaks typed in a cell as spaces."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    if isinstance(value, int | float):
        shown = _as_shown(value, number_format)
        if shown is not None:
            return shown
        return str(value) if isinstance(value, int) else repr(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return " ".join(str(value).splitlines())


def worksheets(raw: bytes) -> list[Worksheet]:
    """The workbook's worksheets as text, in tab order (chart sheets hold no cells).

    The full reader, not openpyxl's streaming one: that one drops cells and rows an
    exporter wrote out of order and knows nothing of merged cells or hidden rows."""
    import openpyxl  # MIT; pure Python

    from engine.workbook_pictures import openpyxl_without_pictures

    with warnings.catch_warnings(), openpyxl_without_pictures():
        warnings.simplefilter("ignore")  # its complaints about odd files are not the shop's
        wb = openpyxl.load_workbook(io.BytesIO(raw), data_only=True)
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            parts = _sheet_parts(zf)
            active = wb.active
            return [
                _as_text(ws, ws is active, zf, parts.get(ws.title))
                for ws in wb.worksheets
                if hasattr(ws, "iter_rows")
            ]
    finally:
        wb.close()


def in_cell_pictures(raw: bytes) -> int:
    """Pictures Excel keeps in cells ("Place in Cell"), which cannot be read."""
    from engine.workbook_pictures import in_cell_count

    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        return in_cell_count(zf)


def _sheet_parts(zf: zipfile.ZipFile) -> dict[str, str]:
    """Worksheet title -> its part in the zip ('xl/worksheets/sheet1.xml')."""
    from openpyxl.reader.workbook import WorkbookParser

    try:
        parser = WorkbookParser(zf, "xl/workbook.xml")
        parser.parse()
        return {sheet.name: rel.target.lstrip("/") for sheet, rel in parser.find_sheets()}
    except Exception:  # only notes and pictures are lost: the cells are read all the same
        return {}


def _unsaved_formulas(xml: bytes) -> list[int]:
    """The rows with a formula cell that has no saved value: a file written by a program
    (an ERP, a script) rather than saved by Excel, which computes them. Such a cell reads
    as empty; Excel shows a value there."""
    rows: list[int] = []
    if b"<f" not in xml and b":f" not in xml:
        return rows
    for cell in _CELL.finditer(xml):
        body = cell.group(2) or b""
        if re.search(rb"<(?:\w+:)?f\b", body) and not _VALUE.search(body):
            row = _ROW_OF.search(cell.group(1))
            if row and int(row.group(1)) not in rows:
                rows.append(int(row.group(1)))
    return rows


def _merged_down(ws: Any) -> dict[tuple[int, int], object]:
    """Cells covered by a merge spanning several rows, each with the merge's value: a
    category merged down its group of products is every one's category. A merge along one
    row (a title, a heading over two columns) is left alone: copied, it would make
    duplicate column headers."""
    filled: dict[tuple[int, int], object] = {}
    for merged in ws.merged_cells.ranges:
        if merged.max_row == merged.min_row:
            continue
        value = ws.cell(merged.min_row, merged.min_col).value
        for row in range(merged.min_row + 1, min(merged.max_row, ws.max_row) + 1):
            filled[(row, merged.min_col)] = value
    return filled


def _as_text(ws: Any, active: bool, zf: zipfile.ZipFile, part: str | None) -> Worksheet:
    # Every cell quoted: the sheet reader then finds the comma delimiter whatever the cells
    # hold (it sniffs the header line outside quotes).
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    filled = _merged_down(ws)
    errors: list[int] = []
    hidden: list[int] = []
    for number, row in enumerate(ws.iter_rows(min_row=1, min_col=1), start=1):
        cells = []
        for cell in row:
            if cell.data_type == "e":  # '#N/A', '#REF!': no value
                if number not in errors:
                    errors.append(number)
                cells.append("")
                continue
            value = filled.get((number, cell.column), cell.value)
            cells.append(cell_text(value, cell.number_format))
        while cells and not cells[-1]:
            cells.pop()
        if cells and ws.row_dimensions[number].hidden:
            hidden.append(number)
        writer.writerow(cells)
    unsaved: list[int] = []
    pictures: list[Picture] = []
    problems: list[tuple[int, str]] = []
    if part is not None:
        from engine.workbook_pictures import read_pictures

        unsaved = _unsaved_formulas(zf.read(part))
        pictures, problems = read_pictures(zf, part, ws)
    return Worksheet(
        ws.title,
        out.getvalue(),
        errors,
        unsaved,
        hidden,
        visible=ws.sheet_state == "visible",
        active=active,
        pictures=pictures,
        picture_problems=problems,
        blocks=_blocks(ws),
    )


def _blocks(ws: Any) -> dict[int, int]:
    blocks: dict[int, int] = {}
    for merged in ws.merged_cells.ranges:
        for row in range(merged.min_row + 1, min(merged.max_row, ws.max_row) + 1):
            blocks[row] = max(blocks.get(row, 0), merged.min_row)
    return blocks
