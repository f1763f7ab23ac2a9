"""Read the worksheets of a supplier's Excel workbook (.xlsx, .xlsm) as sheet text.

Suppliers mail their price lists as workbooks far more often than as CSV. Asking the shop
to re-save each one is a step that gets forgotten, and it is where Excel mangles SKUs:
"00123" shown through a "00000" format is saved as 123, a 13-digit EAN as 4.00638E+12.
Reading the cells keeps the values as the supplier sees them. Each worksheet becomes CSV
text, one line per worksheet row, so the sheet reader maps columns, finds the header below
a title and reports problems exactly as for a CSV, with the row numbers Excel shows.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

# A number shown through a format of zeros only ("00000") is a code with leading zeros.
_ZERO_PADDED = re.compile(r"0+")


@dataclass
class Worksheet:
    title: str
    text: str  # CSV (comma, Excel quoting), line N holding the worksheet's row N
    error_rows: list[int] = field(default_factory=list)  # rows with a formula error (#N/A)
    visible: bool = True


def spreadsheet_kind(raw: bytes) -> str | None:
    """What kind of spreadsheet file ``raw`` is: 'xlsx' (read here), 'xls' (also an
    encrypted workbook), 'xlsb' (Excel's binary format), 'ods', 'numbers', 'zip' (some
    other archive), 'damaged' (a zip container cut short); None for text."""
    if raw.startswith(b"\xd0\xcf\x11\xe0"):
        return "xls"
    if not raw.startswith(b"PK\x03\x04"):
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as zf:
            names = set(zf.namelist())
            mimetype = b""
            if "mimetype" in names:
                with zf.open("mimetype") as f:
                    mimetype = f.read(100)  # never the whole entry: it could be a zip bomb
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        return "damaged"
    if "xl/workbook.xml" in names:
        return "xlsx"
    if "xl/workbook.bin" in names:
        return "xlsb"
    if b"opendocument.spreadsheet" in mimetype:
        return "ods"
    if any(n.startswith("Index/") for n in names):
        return "numbers"
    return "zip"


def cell_text(value: object, number_format: str | None) -> str:
    """A cell as the supplier reads it: whole numbers without '.0', zero-padded codes with
    their zeros, dates without a midnight time, line breaks typed in a cell as spaces."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    if isinstance(value, int):
        text = str(value)
        if number_format and _ZERO_PADDED.fullmatch(number_format) and value >= 0:
            text = text.zfill(len(number_format))
        return text
    if isinstance(value, float | Decimal):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return " ".join(str(value).splitlines())


def worksheets(raw: bytes) -> list[Worksheet]:
    """The workbook's worksheets as text, in tab order (chart sheets hold no cells)."""
    import openpyxl  # MIT; pure Python, streams rows in read-only mode

    wb = openpyxl.load_workbook(io.BytesIO(raw), read_only=True, data_only=True)
    try:
        return [_as_text(ws) for ws in wb.worksheets if hasattr(ws, "iter_rows")]
    finally:
        wb.close()


def _as_text(ws: Any) -> Worksheet:
    ws.reset_dimensions()  # some exporters write a wrong dimension, and rows would be cut
    out = io.StringIO()
    # Every cell quoted: the sheet reader then finds the comma delimiter whatever the cells
    # hold (it sniffs the header line outside quotes).
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    errors: list[int] = []
    for number, row in enumerate(ws.iter_rows(min_row=1), start=1):
        cells = []
        for cell in row:
            if getattr(cell, "data_type", None) == "e":  # '#N/A', '#REF!': no value
                if number not in errors:
                    errors.append(number)
                cells.append("")
            else:
                cells.append(cell_text(cell.value, getattr(cell, "number_format", None)))
        while cells and not cells[-1]:
            cells.pop()
        writer.writerow(cells)
    return Worksheet(ws.title, out.getvalue(), errors, ws.sheet_state == "visible")
