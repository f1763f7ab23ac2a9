"""A supplier's workbook as one product sheet: which worksheets hold the products, and
what their cells and pictures add to what the sheet reader makes of their text.

``engine.workbook`` turns each worksheet into CSV text (one line per Excel row) and
``engine.workbook_pictures`` finds the pictures placed on it; the text is parsed by the
sheet reader exactly as a CSV is, and the worksheets read are merged here into one
:class:`~engine.sheet.Sheet` whose messages name the worksheet and Excel's row.
"""

from __future__ import annotations

from pathlib import Path

from engine.sheet import Sheet, SheetError, SheetRow, _lines, _parse_below_title
from engine.wording import count
from engine.workbook import (
    MAX_CELLS_XML,
    Worksheet,
    cells_xml_size,
    in_cell_pictures,
    worksheets,
)


def read_workbook(path: Path, raw: bytes) -> Sheet:
    """Every visible worksheet with products, the one the workbook opens on first (its name
    and price win for a SKU listed twice), then the others in tab order: a price list split
    into one tab per product group is as common as one behind a cover page. A tab whose
    header names only a SKU-like column (a cover titled "Item list ...") is passed over
    when another has a real header; hidden tabs are read only when no visible one has
    products. A one-worksheet workbook's error names its headers; a bigger one's each tab."""
    size = cells_xml_size(raw)
    if size > MAX_CELLS_XML:
        raise SheetError(
            f"the workbook {path.name} is too big to read ({size // 2**20} MB of cells); "
            "save it as CSV (UTF-8) and import that"
        )
    try:
        tabs = worksheets(raw)
    except Exception as exc:  # openpyxl's errors for a damaged or unusual workbook
        raise SheetError(f"the workbook {path.name} cannot be read ({exc})") from exc
    parsed: list[tuple[Worksheet, Sheet]] = []
    left: dict[str, str] = {}  # worksheet -> why it was not read
    first_error: SheetError | None = None
    for ws in tabs:
        try:
            if not ws.text.strip():
                raise SheetError(f"sheet {path.name} is empty")
            sheet = _parse_below_title(path, ws.text, unit="row")
        except SheetError as exc:
            first_error = first_error or exc
            left[ws.title] = "is empty" if "is empty" in str(exc) else "has no SKU column"
            continue
        _note_cells(sheet, ws)
        _place_pictures(sheet, ws)
        parsed.append((ws, sheet))
    strong = [(ws, s) for ws, s in parsed if s.rows and len(s.mapping) > 1]
    for ws, s in parsed:
        if strong and (ws, s) not in strong and s.rows:
            left[ws.title] = "has no product columns"
    candidates = strong or [(ws, s) for ws, s in parsed if s.rows] or parsed
    chosen = [(ws, s) for ws, s in candidates if ws.visible] or candidates
    for ws, s in parsed:
        if (ws, s) not in chosen and ws.title not in left:
            left[ws.title] = "is hidden" if not ws.visible else "has no products"
    if not chosen:
        if first_error is not None and len(tabs) == 1:
            raise first_error
        why = "; ".join(f"'{title}' {reason}" for title, reason in left.items())
        raise SheetError(
            f"no worksheet of {path.name} has a SKU column (looked for a header like 'sku', "
            f"'code', 'article'): {why or 'it has no worksheets'}"
        )
    chosen.sort(key=lambda pair: not pair[0].active)  # stable: then tab order
    merged = _merge(path, [(ws.title, s) for ws, s in chosen], left, len(tabs))
    hidden = [ws.title for ws, _ in chosen if not ws.visible]
    if hidden:
        merged.notes.append(
            f"worksheet{'s' if len(hidden) > 1 else ''} {', '.join(repr(t) for t in hidden)}: "
            "hidden in Excel, read because no visible worksheet lists products (Excel: "
            "right-click a worksheet tab > Unhide)"
        )
    in_cells = in_cell_pictures(raw)
    if in_cells:
        merged.notes.append(
            f"{path.name}: holds {count(in_cells, 'picture')} placed in cells (Excel's \"Place in "
            'Cell"), which ShopMatch cannot read; in Excel, choose Picture > Place over '
            "Cells for them, save and import again"
        )
    return merged


def _place_pictures(sheet: Sheet, ws: Worksheet) -> None:
    """Give each picture placed on the worksheet to the product row it sits in, or whose
    block of merged rows it sits in: suppliers paste each product's picture in its row.
    What cannot be used is named."""
    by_line = {r.line: r for r in sheet.rows}
    stray: list[int] = []
    for picture in ws.pictures:
        row = by_line.get(picture.row)
        top = ws.blocks.get(picture.row, 0)
        if row is None and not any(top < line <= picture.row for line in by_line):
            row = by_line.get(top)  # a product laid out over merged rows, no other inside
        if row is None:
            stray.append(picture.row)
        else:
            row.embedded.append(picture)
    if stray:
        sheet.notes.append(
            f"{_lines(sorted(set(stray)), 'row')}: a picture not beside a product row; not used"
        )
    whys: dict[str, list[int]] = {}
    for line, why in ws.picture_problems:
        whys.setdefault(why, []).append(line)
    for why, lines in whys.items():
        sheet.notes.append(f"{_lines(sorted(set(lines)), 'row')}: {why}; not used")


def _note_cells(sheet: Sheet, ws: Worksheet) -> None:
    """What a worksheet's cells hold that the text does not show: formula errors, formulas
    without a saved value (read as empty), rows hidden in Excel (read all the same: a
    filter left on hides most products)."""
    if ws.error_rows:
        sheet.notes.append(
            f"{_lines(ws.error_rows, 'row')}: a cell shows a formula error (such as #N/A or "
            "#REF!); read as empty"
        )
    if ws.unsaved_rows:
        unsaved = {f"row {n}: no SKU, row skipped" for n in ws.unsaved_rows}
        sheet.problems = [
            m.replace("no SKU,", "no SKU (a formula with no saved value),") if m in unsaved else m
            for m in sheet.problems
        ]
        sheet.notes.append(
            f"{_lines(ws.unsaved_rows, 'row')}: a formula has no saved value (the workbook "
            "was written by a program, not saved by Excel); read as empty: open the workbook "
            "in Excel, save it and import again"
        )
    if ws.hidden_rows:
        sheet.notes.append(
            f"{_lines(ws.hidden_rows, 'row')}: hidden in Excel (a filter, or products taken "
            "off the list?); read all the same"
        )


def _merge(path: Path, sheets: list[tuple[str, Sheet]], left: dict[str, str], tabs: int) -> Sheet:
    """One sheet of the worksheets read: their messages name the worksheet when there are
    several, and a SKU on two of them is handled as on two rows of one (the first read
    gives its name and price, with a note when another worksheet says otherwise)."""
    several = len(sheets) > 1
    merged = Sheet(path, dict(sheets[0][1].mapping), [], [], [], unit="row")
    if several:
        merged.tab_mappings = {title: dict(s.mapping) for title, s in sheets}
    if tabs > 1:
        read = ", ".join(f"'{title}'" for title, _ in sheets)
        others = "".join(f"; '{title}' {why}" for title, why in left.items())
        merged.worksheets = f"worksheet{'s' if several else ''} {read}: read{others}"
        merged.notes.append(merged.worksheets)
    first: dict[str, SheetRow] = {}
    for title, sheet in sheets:
        prefix = f"worksheet '{title}' " if several else ""
        merged.problems += [prefix + m for m in sheet.problems]
        merged.notes += [prefix + m for m in sheet.notes]
        for row in sheet.rows:
            row.tab = title if several else ""
            earlier = first.setdefault(row.sku, row)
            if earlier.tab != row.tab:  # the same SKU on a worksheet read before
                differ = [
                    f"'{theirs}', not '{ours}'" if what == "name" else f"{theirs}, not {ours}"
                    for what, theirs, ours in (
                        ("name", earlier.name, row.name),
                        ("price", earlier.price, row.price),
                    )
                    if theirs not in (None, "") and ours not in (None, "") and theirs != ours
                ]
                if differ:
                    pictured = row.image or row.embedded
                    what = "its picture goes" if pictured else "this row adds nothing and goes"
                    merged.notes.append(
                        f"{prefix}row {row.line}: SKU {row.sku} is also on worksheet "
                        f"'{earlier.tab}' ({'; '.join(differ)}); {what} to that product, "
                        "with that worksheet's name and price"
                    )
                if not (row.image or row.embedded or earlier.image or earlier.embedded):
                    continue
            merged.rows.append(row)
    return merged
