"""Supplier sheets mailed as Excel workbooks: read cell by cell, as the supplier sees them.

Real .xlsx files written with openpyxl, real catalog images, a real library: the import of
a workbook must give the same catalog as the CSV would, and keep what Excel shows (codes
with leading zeros, whole EANs) where a re-save as CSV would mangle it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import shutil
import struct
import zipfile
from pathlib import Path

import openpyxl
import pytest
from openpyxl.drawing.image import Image as XlImage
from openpyxl.drawing.spreadsheet_drawing import AnchorMarker, OneCellAnchor, TwoCellAnchor
from openpyxl.drawing.xdr import XDRPositiveSize2D
from PIL import Image

from conftest import cli, product_image
from engine.library import Library
from engine.sheet import SheetError, read_sheet
from engine.workbook import cell_text, spreadsheet_kind

HEADERS = ["Article no.", "Description", "Price EUR", "Picture"]
PX = 9525  # EMU per pixel; a default row is 20 px (190500 EMU)


def _workbook(path: Path, *tabs: tuple[str, list[list[object]]], active: int = 0) -> Path:
    """An .xlsx with the given worksheets (title, rows), opening on tab ``active``."""
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in tabs:
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    wb.active = active
    wb.save(path)
    return path


def _pictures(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        product_image(i).save(folder / f"{name}.jpg", quality=90)


def test_a_workbook_imports_like_its_csv_with_codes_as_excel_shows_them(tmp_path: Path) -> None:
    supplier = tmp_path / "supplier"
    _pictures(supplier / "img", ["00123", "4006381333931", "B-7"])
    book = supplier / "prices.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Price list November 2026"])  # a title above the headers
    ws.append([])
    ws.append(HEADERS)
    ws.append([123, "Oat drink\n1 litre", 1.29, "img/00123.jpg"])
    ws["A4"].number_format = "00000"  # shown as 00123: the picture's name
    ws.append([4006381333931, "Rye bread", 2, "img/4006381333931.jpg"])
    ws.append(["B-7", "Butter", "2,49 €", "img/B-7.jpg"])
    ws.append([None, "a row without a code", 3.5, None])
    wb.save(book)

    with Library(tmp_path / "lib") as lib:
        report = lib.import_catalog(supplier, book)
        assert report.problem() is None
        assert report.products == 3
        oat, bread, butter = (lib.product(s) for s in ("00123", "4006381333931", "B-7"))
        assert oat and bread and butter
        assert (oat["name"], oat["price"]) == ("Oat drink 1 litre", 1.29)
        assert (bread["name"], bread["price"]) == ("Rye bread", 2.0)
        assert butter["price"] == 2.49
        assert all(lib.catalog_images(s) for s in ("00123", "4006381333931", "B-7"))
        # Messages count the rows Excel numbers, not CSV lines.
        assert ("prices.xlsx row 7", "no SKU, row skipped") in report.skipped
        assert any("rows 1-2" in where for where, _ in report.notes), report.notes
        # A workbook says nothing of the supplier's locale: exports keep their default.
        assert lib.setting("export_separator", "") == ""


def test_the_products_worksheet_is_found_behind_a_cover_page(tmp_path: Path) -> None:
    book = _workbook(
        tmp_path / "catalog.xlsx",
        ("Cover", [["Acme Foods"], ["Valid from", dt.date(2026, 11, 1)]]),
        ("Products", [HEADERS, ["A1", "Apple", 0.5, ""], ["A2", "Pear", 0.75, ""]]),
    )
    sheet = read_sheet(book)
    assert [r.sku for r in sheet.rows] == ["A1", "A2"]
    assert sheet.notes == ["worksheet 'Products': read; 'Cover' has no SKU column"]
    assert sheet.where(sheet.rows[0]) == "catalog.xlsx row 2"


def test_every_product_tab_is_read_and_messages_name_the_tab(tmp_path: Path) -> None:
    book = _workbook(
        tmp_path / "prices.xlsx",
        ("Cover", [["Acme Foods, price list"]]),
        ("Dairy", [HEADERS, ["D1", "Milk", 1, ""], [None, "no code", 2, ""]]),
        ("Bakery", [["Title row"], HEADERS, ["B1", "Bread", 2, ""], ["D1", "Milk 1l", 1, ""]]),
        ("Old prices", [HEADERS, ["X9", "Gone", 9, ""]]),
        active=0,
    )
    wb = openpyxl.load_workbook(book)
    wb["Old prices"].sheet_state = "hidden"
    wb.save(book)
    sheet = read_sheet(book)
    assert [(r.sku, r.tab) for r in sheet.rows] == [("D1", "Dairy"), ("B1", "Bakery")]
    assert sheet.where(sheet.rows[1]) == "prices.xlsx worksheet 'Bakery' row 3"
    assert sheet.problems == ["worksheet 'Dairy' row 3: no SKU, row skipped"]
    assert sheet.notes[0] == (
        "worksheets 'Dairy', 'Bakery': read; 'Cover' has no SKU column; 'Old prices' is hidden"
    )
    assert "worksheet 'Bakery' row 1: above the column headers (a title): not products" in (
        sheet.notes
    )
    assert any(
        n.startswith("worksheet 'Bakery' row 4: SKU D1 is also on worksheet 'Dairy' ('Milk', ")
        for n in sheet.notes
    ), sheet.notes


def test_hidden_worksheets_are_read_when_no_visible_one_has_products(tmp_path: Path) -> None:
    book = _workbook(
        tmp_path / "c.xlsx", ("Cover", [["Acme"]]), ("Data", [HEADERS, ["A1", "Apple", 1, ""]])
    )
    wb = openpyxl.load_workbook(book)
    wb["Data"].sheet_state = "hidden"
    wb.save(book)
    assert [r.sku for r in read_sheet(book).rows] == ["A1"]


def test_no_worksheet_with_a_sku_column_names_every_tab(tmp_path: Path) -> None:
    book = _workbook(
        tmp_path / "catalog.xlsx",
        ("Cover", [["Acme Foods"]]),
        ("Notes", [["Colour", "Size"], ["red", "L"]]),
        ("Empty", []),
    )
    with pytest.raises(SheetError) as err:
        read_sheet(book)
    text = str(err.value)
    assert "no worksheet of catalog.xlsx has a SKU column" in text
    assert "'Cover' has no SKU column" in text and "'Empty' is empty" in text


def test_a_one_worksheet_workbook_without_sku_says_which_headers_it_found(
    tmp_path: Path,
) -> None:
    book = _workbook(tmp_path / "c.xlsx", ("Sheet1", [["Colour", "Size"], ["red", "L"]]))
    with pytest.raises(SheetError, match="found: Colour, Size"):
        read_sheet(book)


def test_formula_errors_read_as_empty_with_a_note(tmp_path: Path) -> None:
    book = _workbook(tmp_path / "c.xlsx", ("Sheet1", [HEADERS, ["A1", "Apple", 1, ""]]))
    # openpyxl writes no error cells, so mark B2 as one in the XML, as Excel saves '#N/A'.
    fixed = tmp_path / "errors.xlsx"
    with zipfile.ZipFile(book) as src, zipfile.ZipFile(fixed, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                text = data.decode()
                start = text.index('<c r="B2"')
                end = text.index("</c>", start) + len("</c>")
                text = text[:start] + '<c r="B2" t="e"><v>#N/A</v></c>' + text[end:]
                data = text.encode()
            dst.writestr(item, data)
    sheet = read_sheet(fixed)
    assert [(r.sku, r.name) for r in sheet.rows] == [("A1", "")]
    assert any(n.startswith("row 2: a cell shows a formula error") for n in sheet.notes)


def test_a_workbook_saved_under_a_csv_name_is_still_read(tmp_path: Path) -> None:
    book = _workbook(tmp_path / "c.xlsx", ("Sheet1", [HEADERS, ["A1", "Apple", 1, ""]]))
    renamed = book.rename(tmp_path / "prices.csv")
    assert [r.sku for r in read_sheet(renamed).rows] == ["A1"]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504), "Excel 97-2003 workbook (.xls)"),
        ("ods", "OpenDocument spreadsheet (.ods); save it as .xlsx"),
        ("zip", "is a zip archive, not a sheet: unzip it"),
        ("xlsb", "is an Excel binary workbook (.xlsb); save it as .xlsx"),
        ("cut", "damaged or incomplete spreadsheet"),
    ],
)
def test_spreadsheets_it_cannot_read_are_refused_with_what_to_do(
    tmp_path: Path, content: bytes | str, says: str
) -> None:
    path = tmp_path / "sheet.xls"
    if content == "ods":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
            zf.writestr("content.xml", "<office:document-content/>")
    elif content == "xlsb":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("xl/workbook.bin", b"\x83\x01\x00")
    elif content == "zip":
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("photos/a.jpg", b"not really")
    elif content == "cut":
        book = _workbook(tmp_path / "whole.xlsx", ("Sheet1", [HEADERS, ["A1", "x", 1, ""]]))
        path.write_bytes(book.read_bytes()[:900])  # a download cut short
    else:
        assert isinstance(content, bytes)
        path.write_bytes(content)
    with pytest.raises(SheetError, match=says.replace("(", r"\(").replace(")", r"\)")):
        read_sheet(path)


def test_a_damaged_workbook_imports_nothing_and_says_so(tmp_path: Path) -> None:
    supplier = tmp_path / "supplier"
    _pictures(supplier, ["A1"])
    book = _workbook(supplier / "c.xlsx", ("Sheet1", [HEADERS, ["A1", "Apple", 1, "A1.jpg"]]))
    book.write_bytes(book.read_bytes()[:-200])  # the zip's directory is cut off
    proc = cli(tmp_path / "lib", "import", str(supplier), "--sheet", str(book))
    assert proc.returncode != 0
    assert "c.xlsx is a damaged or incomplete spreadsheet" in proc.stderr
    assert not (tmp_path / "lib").exists()


def test_import_from_a_workbook_on_the_command_line(tmp_path: Path) -> None:
    supplier = tmp_path / "supplier"
    _pictures(supplier, ["A1", "A2"])
    book = _workbook(
        supplier / "Preisliste.xlsx",
        ("Artikel", [["Artikel-Nr.", "Bezeichnung", "VK-Preis"], ["A1", "Apfel", 0.5]]),
        ("Mehr", [["Artikel-Nr.", "Bezeichnung"], ["A2", "Birne"]]),
    )
    lib = tmp_path / "lib"
    proc = cli(lib, "import", str(supplier), "--sheet", str(book))
    assert proc.returncode == 0, proc.stderr
    with Library(lib) as opened:
        assert opened.product("A1")["name"] == "Apfel"  # type: ignore[index]
        assert opened.product("A2")["name"] == "Birne"  # type: ignore[index]
    assert "worksheets 'Artikel', 'Mehr': read" in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("value", "number_format", "text"),
    [
        (None, "General", ""),
        (123, "00000", "00123"),
        (123.0, "General", "123"),
        (4006381333931, "General", "4006381333931"),
        (1.29, "0.00", "1.29"),
        (True, "General", "TRUE"),
        (dt.datetime(2026, 11, 25), "yyyy-mm-dd", "2026-11-25"),
        (dt.datetime(2026, 11, 25, 14, 30), "yyyy-mm-dd hh:mm", "2026-11-25 14:30:00"),
        (dt.date(2026, 11, 25), "yyyy-mm-dd", "2026-11-25"),
        ("two\r\nlines\u2028here", "General", "two lines here"),
        (-5, "00000", "-5"),
    ],
)
def test_cells_read_as_the_supplier_sees_them(value: object, number_format: str, text: str) -> None:
    assert cell_text(value, number_format) == text


def test_text_sheets_are_not_taken_for_spreadsheets() -> None:
    assert spreadsheet_kind(b"sku,name\nA1,Apple\n") is None
    assert spreadsheet_kind(b"PK") is None  # a CSV whose first SKU is 'PK'


# -- review 32: workbooks as real-world tools write them ------------------------------------
H = ["SKU", "Name", "Price", "Category"]


def _rewrite(book: Path, out: Path, edit) -> Path:  # type: ignore[no-untyped-def]
    """Copy the zip ``book`` to ``out``, passing each member's text through edit(name, text)."""
    with zipfile.ZipFile(book) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename.endswith((".xml", ".rels")):
                data = edit(item.filename, data.decode()).encode()
            dst.writestr(item, data)
    return out


def test_the_tab_the_workbook_opens_on_gives_the_price_not_last_years_tab(
    tmp_path: Path,
) -> None:
    """README: 'A workbook is read ... on the worksheet it opens on'. A supplier keeps last
    year's list on the first tab and opens the workbook on this year's: the import took last
    year's price, without a note (the names are the same)."""
    supplier = tmp_path / "supplier"
    supplier.mkdir()
    product_image(1).save(supplier / "A1.jpg")
    wb = openpyxl.Workbook()
    old = wb.active
    old.title = "Prices 2025"
    old.append(H)
    old.append(["A1", "Apple juice 1 l", 1.00, "Drinks"])
    new = wb.create_sheet("Prices 2026")
    new.append(H)
    new.append(["A1", "Apple juice 1 l", 1.20, "Drinks"])
    wb.active = 1  # the supplier saved it open on this year's prices
    book = supplier / "prices.xlsx"
    wb.save(book)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(supplier, book)
        product = lib.product("A1")
        assert product is not None
        assert product["price"] == 1.20


def test_a_category_merged_over_several_rows_is_every_rows_category(tmp_path: Path) -> None:
    """Supplier lists group products under a category cell merged down the group: Excel
    shows 'Dairy' beside each of them; only the first product got it."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(H)
    ws.append(["D1", "Milk", 1, "Dairy"])
    ws.append(["D2", "Butter", 2, None])
    ws.append(["D3", "Cream", 3, None])
    ws.merge_cells("D2:D4")
    wb.save(tmp_path / "merged.xlsx")
    sheet = read_sheet(tmp_path / "merged.xlsx")
    assert [(r.sku, r.category) for r in sheet.rows] == [
        ("D1", "Dairy"),
        ("D2", "Dairy"),
        ("D3", "Dairy"),
    ]


def test_formula_cells_without_a_saved_value_are_not_silently_empty(tmp_path: Path) -> None:
    """A workbook written by a script (openpyxl, an ERP) holds formulas without the values
    Excel would compute: the gross price read as no price without a word, and a SKU built
    by a formula was reported as 'no SKU', though Excel shows one."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append([*H, "Net"])
    ws.append(["C1", "Cheese", "=E2*1.19", "Dairy", 2])
    ws.append(['="C"&"2"', "Cream", 1, "Dairy", 1])
    wb.save(tmp_path / "script.xlsx")
    sheet = read_sheet(tmp_path / "script.xlsx")
    assert any(n.startswith("rows 2, 3: a formula has no saved value") for n in sheet.notes)
    assert sheet.problems == ["row 3: no SKU (a formula with no saved value), row skipped"]


def test_a_price_reads_as_the_supplier_sees_it(tmp_path: Path) -> None:
    """A gross price computed in the sheet (=net*1.19) shows 1.54 through its '0.00' format,
    and saving the workbook as CSV gives 1.54; read from the workbook it was 1.5351 (the
    export writes that, the app shows 1.54)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(H)
    ws.append(["E1", "Eggs", 1.29 * 1.19, "Dairy"])
    ws["C2"].number_format = "0.00"
    wb.save(tmp_path / "gross.xlsx")
    (row,) = read_sheet(tmp_path / "gross.xlsx").rows
    assert row.price == 1.54


@pytest.mark.parametrize(
    "number_format", ["00000;-00000", "00000;[Red]-00000", "[$-409]00000", "00000_)"]
)
def test_codes_keep_their_zeros_under_any_zero_padding_format(
    tmp_path: Path, number_format: str
) -> None:
    """'00123' through a zero-padded format with a negative section, a colour, a locale tag
    or an alignment space shows 00123 in Excel, as '00000' does; it was read as 123."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(H)
    ws.append([123, "Oat drink", 1, "Drinks"])
    ws["A2"].number_format = number_format
    wb.save(tmp_path / "codes.xlsx")
    assert [r.sku for r in read_sheet(tmp_path / "codes.xlsx").rows] == ["00123"]


def test_cells_and_rows_written_out_of_order_are_not_lost(tmp_path: Path) -> None:
    """Some exporters write a row's cells, or the rows, out of order (LibreOffice reads
    them): the name and price of B1 and the whole row 2 were dropped without a word."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["SKU", "Name", "Price"])
    ws.append(["R2", "Second", 2])
    ws.append(["R3", "Third", 3])
    wb.save(tmp_path / "ordered.xlsx")

    def shuffle(name: str, text: str) -> str:
        if name != "xl/worksheets/sheet1.xml":
            return text
        start, end = text.index('<row r="2"'), text.index("</sheetData>")
        row2_end = text.index("</row>", start) + len("</row>")
        row2, row3 = text[start:row2_end], text[row2_end:end]
        # row 3 before row 2; row 3's cells written right to left
        a = row3.index('<c r="A3"')
        b = row3.index('<c r="B3"')
        c = row3.index('<c r="C3"')
        close = row3.rindex("</row>")
        head, ca, cb, cc = row3[:a], row3[a:b], row3[b:c], row3[c:close]
        row3 = head + cc + cb + ca + "</row>"
        return text[:start] + row3 + row2 + text[end:]

    shuffled = _rewrite(tmp_path / "ordered.xlsx", tmp_path / "shuffled.xlsx", shuffle)
    sheet = read_sheet(shuffled)
    assert sorted((r.sku, r.name, r.price) for r in sheet.rows) == [
        ("R2", "Second", 2.0),
        ("R3", "Third", 3.0),
    ]


def test_a_cover_page_titled_item_list_adds_no_products(tmp_path: Path) -> None:
    """A cover tab titled 'Item list November 2026' (the title starts with the alias 'item')
    was read as a sheet whose SKU column is the title: 'Valid from', 'Contact' and 'Phone'
    became products beside the real ones."""
    wb = openpyxl.Workbook()
    cover = wb.active
    cover.title = "Cover"
    for row in (
        ["Acme Foods GmbH"],
        ["Item list November 2026"],
        [],
        ["Valid from", dt.date(2026, 11, 1)],
        ["Contact", "sales@acme.example"],
        ["Phone", "+49 30 123456"],
    ):
        cover.append(row)
    products = wb.create_sheet("Products")
    products.append(["Article no.", "Description", "Price"])
    products.append(["A1", "Apple", 1])
    wb.save(tmp_path / "list.xlsx")
    assert [r.sku for r in read_sheet(tmp_path / "list.xlsx").rows] == ["A1"]


def test_a_hidden_worksheet_read_for_products_is_said_to_be_hidden(tmp_path: Path) -> None:
    """No visible tab has products, so a (very) hidden one was read: the note named it as if
    the shop could find it in Excel ("worksheet 'Lookup': read; 'Cover' has no SKU column")."""
    wb = openpyxl.Workbook()
    wb.active.title = "Cover"
    wb.active.append(["Acme Foods"])
    lookup = wb.create_sheet("Lookup")
    lookup.append(["Code", "Name"])
    lookup.append(["Z9", "Old lookup entry"])
    lookup.sheet_state = "veryHidden"
    wb.save(tmp_path / "vh.xlsx")
    sheet = read_sheet(tmp_path / "vh.xlsx")
    assert any("Lookup" in n and "hidden" in n for n in sheet.notes), sheet.notes


def test_hidden_rows_are_not_imported_without_a_word(tmp_path: Path) -> None:
    """Rows the supplier hid (discontinued, filtered out) are invisible in Excel; they were
    imported as products with no note, though hidden worksheets are left out."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(H)
    ws.append(["F1", "Flour", 1, "Bakery"])
    ws.append(["F2", "Flour (discontinued)", 1, "Bakery"])
    ws.row_dimensions[3].hidden = True
    wb.save(tmp_path / "hidden_rows.xlsx")
    sheet = read_sheet(tmp_path / "hidden_rows.xlsx")
    said = sheet.notes + sheet.problems
    assert any("row 3" in m and "hidden" in m for m in said), said


def test_a_strict_open_xml_workbook_is_not_said_to_have_no_worksheets(
    tmp_path: Path,
) -> None:
    """Excel's 'Strict Open XML Spreadsheet (.xlsx)': the message said 'it has no worksheets'
    (and a Python UserWarning went to stderr), though it has one with a SKU column."""
    wb = openpyxl.Workbook()
    wb.active.append(["SKU", "Name"])
    wb.active.append(["S1", "Salt"])
    wb.save(tmp_path / "t.xlsx")

    def strict(name: str, text: str) -> str:
        return text.replace(
            "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
            "http://purl.oclc.org/ooxml/spreadsheetml/main",
        ).replace(
            "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
            "http://purl.oclc.org/ooxml/officeDocument/relationships",
        )

    book = _rewrite(tmp_path / "t.xlsx", tmp_path / "strict.xlsx", strict)
    try:
        sheet = read_sheet(book)
    except SheetError as exc:
        assert "no worksheets" not in str(exc) and "strict" in str(exc).lower(), str(exc)
    else:
        assert [r.sku for r in sheet.rows] == ["S1"]


def test_the_preview_shows_the_sku_column_of_every_worksheet_read(tmp_path: Path) -> None:
    """The preview 'shows which column became the SKU: an ERP's ID may be a row number'; for
    a workbook it showed the first tab's only. Here the second tab's SKUs are its row
    numbers ('ID'), and nothing in the preview said so."""
    from desktop_app.import_dialog import build_preview

    wb = openpyxl.Workbook()
    dairy = wb.active
    dairy.title = "Dairy"
    dairy.append(["Article no.", "Description", "Price"])
    dairy.append(["D-100", "Milk", 1])
    bakery = wb.create_sheet("Bakery")
    bakery.append(["ID", "Article", "Description", "Price"])  # 'ID' wins: an exact alias
    bakery.append([1, "B-200", "Bread", 2])
    wb.save(tmp_path / "prices.xlsx")
    sheet = read_sheet(tmp_path / "prices.xlsx")
    assert ("1", "Bakery") in [(r.sku, r.tab) for r in sheet.rows]  # the row number as SKU
    preview = build_preview(None, tmp_path / "prices.xlsx")
    shown = preview.worksheets + " " + " ".join(preview.mapping.values())
    assert "ID" in shown, shown


def test_the_ask_first_refusal_says_which_worksheets_were_read(tmp_path: Path) -> None:
    """v1 had its products on a hidden tab (read, as no visible tab had any); v2 adds a
    visible 'New items' tab, so only it is read and the import asks first. The refusal only
    said '5 of the 6 pictures' would go: nothing told the shop that the hidden 'Data' tab,
    which still lists them, was left out."""
    supplier = tmp_path / "supplier"
    supplier.mkdir()
    for i in range(6):
        product_image(i).save(supplier / f"P{i}.jpg")
    header = ["SKU", "Name", "Price", "Image"]
    data = [header] + [[f"P{i}", f"Product {i}", i + 1, f"P{i}.jpg"] for i in range(6)]

    def save(extra: bool) -> Path:
        wb = openpyxl.Workbook()
        wb.active.title = "Cover"
        wb.active.append(["Acme Foods"])
        hidden = wb.create_sheet("Data")
        for row in data:
            hidden.append(row)
        hidden.sheet_state = "hidden"
        if extra:
            new = wb.create_sheet("New items")
            new.append(header)
            new.append(["P0", "Product 0", 1, "P0.jpg"])
        wb.save(supplier / "prices.xlsx")
        return supplier / "prices.xlsx"

    lib = tmp_path / "lib"
    first = cli(lib, "import", str(supplier), "--sheet", str(save(False)))
    assert first.returncode == 0, first.stderr
    second = cli(lib, "import", str(supplier), "--sheet", str(save(True)))
    assert second.returncode != 0
    said = second.stdout + second.stderr
    assert "Data" in said and "hidden" in said, said


def _picture_list(path: Path, skus: list[str], seeds: list[int] | None = None) -> Path:
    """A price list with each product's picture pasted in its row (column C), as many
    suppliers send them: no picture files at all."""
    from openpyxl.drawing.image import Image as XlImage

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["SKU", "Name", "Picture"])
    for row, (sku, seed) in enumerate(zip(skus, seeds or range(len(skus)), strict=True), 2):
        ws.append([sku, f"Product {seed}", None])
        buf = io.BytesIO()
        product_image(seed, 160).save(buf, "PNG")
        buf.seek(0)
        ws.add_image(XlImage(buf), f"C{row}")
    wb.save(path)
    return path


def test_pictures_placed_in_a_workbooks_rows_become_the_products_pictures(
    tmp_path: Path,
) -> None:
    """The supplier mailed one workbook with each product's picture in its row: it is the
    whole catalog. The pictures are saved beside it, named by SKU, imported, and match."""
    from conftest import photo_of

    supplier = tmp_path / "supplier"
    supplier.mkdir()
    book = _picture_list(supplier / "Preisliste.xlsx", ["E0", "E1", "A/1"])
    with Library(tmp_path / "lib") as lib:
        report = lib.import_catalog(None, book)
        assert report.problem() is None and not report.skipped, report.skipped
        assert (report.products, report.added) == (3, 3)
        folder = supplier / "Preisliste pictures"
        files = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        assert files[1:] == ["E0.png", "E1.png"] and files[0].startswith("A_1-")
        assert any(
            where == str(folder) and "3 pictures placed in" in why for where, why in report.notes
        ), report.notes
        assert [Path(str(i["path"])).name for i in lib.catalog_images("E1")] == ["E1.png"]
        photo = tmp_path / "delivery.jpg"
        photo_of(product_image(1), 1).save(photo, quality=90)
        (result,) = lib.match([photo], top_k=3)
        assert result.suggestions[0].sku == "E1"


def test_an_updated_picture_list_reimports_only_what_changed_and_tidies_its_folder(
    tmp_path: Path,
) -> None:
    supplier = tmp_path / "supplier"
    supplier.mkdir()
    book = _picture_list(supplier / "list.xlsx", ["E0", "E1", "E2", "E3"])
    folder = supplier / "list pictures"
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(None, book)
        before = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.png")}
        again = lib.import_catalog(None, book)
        assert (again.added, again.updated, again.unchanged) == (0, 0, 4)
        assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.png")} == before
        # The supplier drops E0 and gives E1 a new picture.
        _picture_list(book, ["E1", "E2", "E3"], seeds=[7, 2, 3])
        update = lib.import_catalog(None, book)
        assert (update.added, update.updated, update.removed) == (0, 1, 1)
        assert sorted(p.name for p in folder.glob("*.png")) == ["E1.png", "E2.png", "E3.png"]
        assert not lib.catalog_images("E0")


def test_a_folder_of_the_shops_own_by_that_name_is_never_written_into(tmp_path: Path) -> None:
    supplier = tmp_path / "supplier"
    (supplier / "list pictures").mkdir(parents=True)
    mine = supplier / "list pictures" / "E0.png"
    mine.write_bytes(b"the shop's own file")
    book = _picture_list(supplier / "list.xlsx", ["E0"])
    with Library(tmp_path / "lib") as lib:
        report = lib.import_catalog(supplier, book, removals="remove")
    assert mine.read_bytes() == b"the shop's own file"
    assert (supplier / "list pictures (ShopMatch)" / "E0.png").is_file()
    assert report.products == 1


def test_a_picture_beside_no_product_row_is_said_not_to_be_used(tmp_path: Path) -> None:
    from openpyxl.drawing.image import Image as XlImage

    book = _picture_list(tmp_path / "list.xlsx", ["E0"])
    wb = openpyxl.load_workbook(book)
    buf = io.BytesIO()
    product_image(5, 80).save(buf, "PNG")
    buf.seek(0)
    wb.active.add_image(XlImage(buf), "C6")  # four rows below the last product
    wb.save(book)
    sheet = read_sheet(book)
    assert [len(r.embedded) for r in sheet.rows] == [1]
    assert "row 6: a picture not beside a product row; not used" in sheet.notes


def test_a_workbook_bomb_is_refused_before_it_is_loaded(tmp_path: Path) -> None:
    """A small file whose worksheet unpacks to over 100 MB of cells (a zip bomb, or a list
    no laptop should hold as a workbook) is refused by its declared size, not loaded."""
    book = _workbook(tmp_path / "c.xlsx", ("Sheet1", [HEADERS, ["A1", "Apple", 1, ""]]))
    bomb = tmp_path / "bomb.xlsx"
    row = b'<row><c t="inlineStr"><is><t>x</t></is></c></row>'
    with zipfile.ZipFile(book) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            if item.filename == "xl/worksheets/sheet1.xml":
                with dst.open(item.filename, "w") as f:
                    for _ in range(101 * 2**20 // (len(row) * 1024) + 1):
                        f.write(row * 1024)
            else:
                dst.writestr(item, src.read(item.filename))
    assert bomb.stat().st_size < 2**20
    with pytest.raises(SheetError, match=r"bomb\.xlsx is too big to read \(10\d MB of cells\)"):
        read_sheet(bomb)


# -- review 33: price lists with their pictures inside ---------------------------------------
def _png(seed: int, size: int = 160, fmt: str = "PNG") -> io.BytesIO:
    buf = io.BytesIO()
    product_image(seed, size).save(buf, fmt)
    buf.seek(0)
    return buf


def _over_two_rows(row: int, top: int, bottom: int) -> XlImage:
    """A picture from ``top`` EMU into Excel row ``row`` to ``bottom`` EMU into the next."""
    img = XlImage(_png(row))
    img.anchor = TwoCellAnchor(
        _from=AnchorMarker(col=2, row=row - 1, rowOff=top),
        to=AnchorMarker(col=3, row=row, rowOff=bottom),
    )
    return img


def _book(path: Path, skus: list[str], pictures: list[tuple[int, object]]) -> Path:
    """A price list: header SKU/Name/Picture, one row per SKU; ``pictures``: (seed, anchor)
    with anchor a cell ("C2") or an openpyxl anchor."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["SKU", "Name", "Picture"])
    for sku in skus:
        ws.append([sku, f"Product {sku}", None])
    for seed, anchor in pictures:
        img = XlImage(_png(seed))
        if isinstance(anchor, str):
            ws.add_image(img, anchor)
        else:
            img.anchor = anchor
            ws.add_image(img)
    wb.save(path)
    return path


def _swap_media(book: Path, out: Path, replace: dict[str, bytes]) -> Path:
    """The workbook with some of its xl/media files' bytes replaced (as Excel stores a
    pasted picture: the original bytes under image<N>.<ext>)."""
    with zipfile.ZipFile(book) as src, zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            dst.writestr(item, replace.get(item.filename, data))
    return out


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


# --- wrong product ---------------------------------------------------------------------------


def test_a_skus_second_picture_and_a_sku_named_like_it_do_not_share_a_file(
    tmp_path: Path,
) -> None:
    """SKU X has two pictures (X.png, X_2.png); SKU X_2 has its own. X_2's picture was
    written over X's second one, X got X_2's picture and X_2 got none."""
    book = _book(tmp_path / "list.xlsx", ["X", "X_2"], [(1, "C2"), (2, "D2"), (3, "C3")])
    with Library(tmp_path / "lib") as lib:
        report = lib.import_catalog(None, book)
        assert report.added == 3, (report.added, report.notes)
        assert len(lib.catalog_images("X")) == 2
        assert len(lib.catalog_images("X_2")) == 1, report.notes


def test_a_picture_mostly_in_the_next_row_goes_to_that_rows_product(tmp_path: Path) -> None:
    """B's picture starts near the bottom of A's row (dragged up a little) and fills B's
    row: it was given to A (A got two pictures, B none), without a word."""
    # Default row height is 15 pt = 190500 EMU; 0-based rows: 1 = Excel row 2 (A), 2 = B.
    slightly_above = TwoCellAnchor(
        _from=AnchorMarker(col=2, row=1, rowOff=180000),
        to=AnchorMarker(col=3, row=2, rowOff=180000),
    )
    book = _book(
        tmp_path / "list.xlsx", ["A", "B", "C"], [(1, "C2"), (2, slightly_above), (3, "C4")]
    )
    sheet = read_sheet(book)
    assert [(r.sku, len(r.embedded)) for r in sheet.rows] == [("A", 1), ("B", 1), ("C", 1)]


def test_skus_differing_only_by_case_get_files_that_differ_on_every_system(
    tmp_path: Path,
) -> None:
    """'AB12' and 'ab12' are written as AB12.png and ab12.png: one file on macOS and
    Windows, so the second overwrites the first and one product shows the other's picture."""
    book = _book(tmp_path / "list.xlsx", ["AB12", "ab12"], [(1, "C2"), (2, "C3")])
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(None, book)
    names = _files(tmp_path / "list pictures")
    assert len({n.casefold() for n in names}) == 2, names


# --- the pictures folder ----------------------------------------------------------------------


def test_a_picture_the_supplier_took_out_of_a_row_is_not_kept_as_a_deleted_file(
    tmp_path: Path,
) -> None:
    """The supplier removes B's picture (the row stays). The import finds the previous
    import's B.png by SKU, reports it unchanged, then tidies it away: the catalog points at
    a file this very import deleted, and the next import (same workbook) removes it."""
    book = _book(tmp_path / "list.xlsx", ["A", "B", "C"], [(1, "C2"), (2, "C3"), (3, "C4")])
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(None, book)
        _book(book, ["A", "B", "C"], [(1, "C2"), (3, "C4")])
        lib.import_catalog(None, book)
        paths = [str(p) for (p,) in lib.db.execute("SELECT path FROM catalog_images")]
        assert all(Path(p).is_file() for p in paths), paths


def test_a_picture_the_shop_put_in_the_pictures_folder_is_not_silently_deleted(
    tmp_path: Path,
) -> None:
    """The folder is visible and named by SKU: the shop adds its own second view of B.
    The next import neither imports it nor keeps it: it is deleted, and no message says so."""
    book = _book(tmp_path / "list.xlsx", ["A", "B"], [(1, "C2"), (2, "C3")])
    folder = tmp_path / "list pictures"
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(None, book)
        product_image(50).save(folder / "B_back.jpg", quality=90)
        lib.import_catalog(None, book)
    assert (folder / "B_back.jpg").is_file()


@pytest.mark.parametrize("supplier_seed", [1, 9], ids=["same picture", "new picture"])
def test_a_picture_the_shop_edited_is_never_overwritten(tmp_path: Path, supplier_seed: int) -> None:
    """The shop crops A.png in the pictures folder. Re-importing the same workbook wrote the
    supplier's picture over the crop, without a word; so did a workbook with a new picture
    for A. The crop stays, with a note saying how to take the workbook's picture."""
    book = _book(tmp_path / "list.xlsx", ["A", "B"], [(1, "C2"), (2, "C3")])
    picture = tmp_path / "list pictures" / "A.png"
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(None, book)
        with Image.open(picture) as im:
            im.crop((10, 10, 150, 150)).save(picture)
        edited = picture.read_bytes()
        _book(book, ["A", "B"], [(supplier_seed, "C2"), (2, "C3")])
        report = lib.import_catalog(None, book)
    assert picture.read_bytes() == edited
    assert any(where == str(picture) and "delete it to take" in why for where, why in report.notes)


def test_a_shopmatch_named_folder_of_the_shops_own_is_never_written_into(tmp_path: Path) -> None:
    """'list pictures' and 'list pictures (ShopMatch)' both hold the shop's files (no
    marker). folder_for falls through to the second, writes into it and tidies the shop's
    file away, against its own promise."""
    for name in ("list pictures", "list pictures (ShopMatch)"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "mine.jpg").write_bytes(b"the shop's own file")
    book = _book(tmp_path / "list.xlsx", ["A"], [(1, "C2")])
    # Refusing is fine; deleting the shop's file is not.
    with Library(tmp_path / "lib") as lib, contextlib.suppress(OSError):
        lib.import_catalog(None, book, removals="remove")
    assert (tmp_path / "list pictures (ShopMatch)" / "mine.jpg").is_file()


def test_renaming_the_workbook_leaves_no_second_copy_of_its_pictures(tmp_path: Path) -> None:
    """'A.xlsx' renamed 'Preisliste 2027.xlsx': the pictures are followed into
    'Preisliste 2027 pictures', but 'A pictures' stays for good, marked as ShopMatch's,
    every picture twice; its stale files are later found by SKU ('same picture as D.png')."""
    book = _book(tmp_path / "A.xlsx", ["A", "B"], [(1, "C2"), (2, "C3")])
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(None, book)
        renamed = book.rename(tmp_path / "Preisliste 2027.xlsx")
        report = lib.import_catalog(None, renamed)
        assert report.unchanged == 2
    folders = sorted(p.name for p in tmp_path.iterdir() if p.is_dir() and p.name != "lib")
    held = {f: _files(tmp_path / f) for f in folders}
    assert sum(bool(v) for v in held.values()) == 1, held


# --- picture formats and messages -----------------------------------------------------------


def test_a_phone_jpeg_mpo_picture_is_imported_not_called_a_drawing(tmp_path: Path) -> None:
    """A JPEG with a multi-picture (MPF) segment, as iPhones and many cameras write, is
    what Pillow calls 'MPO': it was left out as 'a drawing (such as EMF), not a picture'."""
    mpo = io.BytesIO()
    product_image(1, 160).save(mpo, "MPO", save_all=True, append_images=[product_image(2, 160)])
    base = tmp_path / "base.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["SKU", "Name"])
    ws.append(["A", "Apple"])
    ws.add_image(XlImage(_png(1, fmt="JPEG")), "C2")
    wb.save(base)
    book = _swap_media(base, tmp_path / "list.xlsx", {"xl/media/image1.jpeg": mpo.getvalue()})
    sheet = read_sheet(book)
    assert [len(r.embedded) for r in sheet.rows] == [1], sheet.notes


def _emf() -> bytes:
    """A minimal EMF (header record + EOF record) Pillow identifies as 'WMF'."""
    head = struct.pack("<II", 1, 108) + struct.pack("<iiii", 0, 0, 100, 100)
    head += struct.pack("<iiii", 0, 0, 2000, 2000) + b" EMF"
    head += struct.pack("<IIIHH", 0x10000, 128, 2, 1, 0) + struct.pack("<III", 0, 0, 0)
    head += struct.pack("<iiii", 1920, 1080, 508, 285)
    head += b"\x00" * (108 - len(head))
    return head + struct.pack("<IIIII", 14, 20, 0, 16, 20)


def test_emf_drawings_in_product_rows_are_not_called_place_in_cell_pictures(
    tmp_path: Path,
) -> None:
    """Two rows hold EMF drawings placed over cells. openpyxl drops them (WMF/EMF), so the
    code's own 'a drawing (such as EMF), not a picture' note never comes; instead the
    media count says they are 'Place in Cell' pictures and tells the shop to 'Place over
    Cells' what already is over cells. (Damaged picture bytes read the same way.)"""
    base = _book(tmp_path / "base.xlsx", ["A", "B", "C"], [(1, "C2"), (2, "C3"), (3, "C4")])
    book = _swap_media(
        base,
        tmp_path / "list.xlsx",
        {"xl/media/image2.png": _emf(), "xl/media/image3.png": _emf()},
    )
    sheet = read_sheet(book)
    said = " ".join(sheet.notes)
    assert "Place in Cell" not in said, said
    assert "rows 3, 4: a WMF drawing, not a picture ShopMatch can read; not used" in said, said


def test_an_oversized_picture_is_left_out_with_a_note_not_decoded_nor_fatal(
    tmp_path: Path,
) -> None:
    """Pictures in a workbook get no pixel check before openpyxl opens them. Row 3: a
    25000 x 25000 px PNG (a few KB) refuses the whole price list ('cannot be read (Image
    size (625000000 pixels) exceeds limit ... decompression bomb DOS attack.)'), naming
    neither the row nor what to do. Row 4: a TIFF over the catalog's 250 MP limit (under
    Pillow's hard stop) is decoded in full and re-encoded as PNG while the sheet is read,
    preview included (16000 x 16000 RGB in a 42 KB workbook: 2 GB of memory), then saved
    as 'C.tif' holding PNG bytes, only for the import to refuse it as too big."""
    import engine.images  # noqa: F401  the app's Pillow limits, as in every real run

    bomb = io.BytesIO()
    Image.new("1", (25000, 25000)).save(bomb, "PNG")
    big = io.BytesIO()
    Image.new("1", (16000, 16000)).save(big, "TIFF", compression="tiff_adobe_deflate")
    base = _book(tmp_path / "base.xlsx", ["A", "B", "C"], [(1, "C2"), (2, "C3"), (3, "C4")])
    book = _swap_media(
        base,
        tmp_path / "list.xlsx",
        {"xl/media/image2.png": bomb.getvalue(), "xl/media/image3.png": big.getvalue()},
    )
    sheet = read_sheet(book)
    assert [(r.sku, len(r.embedded)) for r in sheet.rows] == [("A", 1), ("B", 0), ("C", 0)]
    said = " ".join(sheet.notes)
    assert "row 3: not a picture ShopMatch can read" in said, said
    assert "row 4: a picture of 16000 x 16000 pixels, over the 250 million" in said, said


def test_a_long_unicode_sku_does_not_stop_the_import(tmp_path: Path) -> None:
    """A 90-character CJK SKU is 270 bytes of file name (limit 255): safe_stem cuts at 100
    characters, not bytes, and the whole import fails with 'cannot save the pictures ...
    (File name too long); copy the workbook into a folder you can write to'."""
    book = _book(tmp_path / "list.xlsx", ["商品" * 45, "B"], [(1, "C2"), (2, "C3")])
    with Library(tmp_path / "lib") as lib:
        report = lib.import_catalog(None, book)
        assert report.added == 2, report.skipped


# -- review 35: the pictures folder's manifest, rows and merged blocks ------------------------
def test_a_picture_mostly_in_its_own_row_that_overhangs_the_next_stays_with_its_row(
    tmp_path: Path,
) -> None:
    """Default rows are 190500 EMU. A's picture starts just below the middle of A's row
    (100000) and ends 10000 EMU into B's row: 90% of it is in A's row, its middle too.
    The 'lower half and reaches into the next' rule gives it to B (B gets two, A none)."""
    overhang = TwoCellAnchor(
        _from=AnchorMarker(col=2, row=1, rowOff=100000),
        to=AnchorMarker(col=3, row=2, rowOff=10000),
    )
    book = _book(tmp_path / "list.xlsx", ["A", "B", "C"], [(1, overhang), (2, "C3"), (3, "C4")])
    sheet = read_sheet(book)
    assert [(r.sku, len(r.embedded)) for r in sheet.rows] == [("A", 1), ("B", 1), ("C", 1)]


def test_pictures_in_a_product_block_of_merged_rows_belong_to_that_product(
    tmp_path: Path,
) -> None:
    """Each product takes two rows, its SKU, name and picture cells merged over both (a
    common price-list layout); the picture sits centred in the block, so its top edge is
    in the lower half of the first row. It is given to the second row, which the sheet
    reader merged into the first, and every picture is 'not beside a product row; not
    used' (before aa31943 the first covered row got it)."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["SKU", "Name", "Picture"])
    for sku in ("A", "B"):
        ws.append([sku, f"Product {sku}", None])
        ws.append([None, None, None])
    for first in (2, 4):
        for col in "ABC":
            ws.merge_cells(f"{col}{first}:{col}{first + 1}")
        ws.add_image(_over_two_rows(first, 120000, 70000))
    wb.save(tmp_path / "list.xlsx")
    sheet = read_sheet(tmp_path / "list.xlsx")
    assert [(r.sku, len(r.embedded)) for r in sheet.rows] == [("A", 1), ("B", 1)], sheet.notes


def test_renaming_a_workbook_with_its_pictures_is_not_taken_for_removing_them(
    tmp_path: Path,
) -> None:
    """Pictures are now planned before the ask-first check and written after it, so the
    check stats files that do not exist yet: a renamed workbook (or one whose pictures
    folder the shop deleted) 'would take 4 of the 4 pictures ... out of the catalog' and
    the import is refused, though every picture is still in the workbook."""
    book = _book(tmp_path / "A.xlsx", list("ABCD"), [(1, "C2"), (2, "C3"), (3, "C4"), (4, "C5")])
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(None, book)
        renamed = book.rename(tmp_path / "Preisliste 2027.xlsx")
        report = lib.import_catalog(None, renamed)  # removals="ask", the default
        assert (report.unchanged, report.removed) == (4, 0)


def test_a_manifest_entry_cannot_delete_a_file_outside_its_folder(tmp_path: Path) -> None:
    """tidy() joins the manifest's names to the folder unchecked: an entry
    '../shop-notes.txt' (a hand-edited or foreign manifest; any sub-folder of the catalog
    folder holding one is tidied when its workbook is gone) deletes the shop's file
    outside the pictures folder, and the summary calls it a 'saved picture'."""
    book = _book(tmp_path / "A.xlsx", ["A", "B"], [(1, "C2"), (2, "C3")])
    notes = tmp_path / "shop-notes.txt"
    notes.write_text("the shop's own file")
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(None, book)
        marker = tmp_path / "A pictures" / ".shopmatch-pictures"
        manifest = json.loads(marker.read_text(encoding="utf-8"))
        manifest["files"]["../shop-notes.txt"] = "0" * 64
        marker.write_text(json.dumps(manifest), encoding="utf-8")
        lib.import_catalog(None, book)
    assert notes.read_text() == "the shop's own file"


def test_a_pictures_folder_the_shop_moved_into_its_catalog_is_not_deleted(
    tmp_path: Path,
) -> None:
    """The shop imports a price list with pictures from Downloads to get them as files,
    moves 'list pictures' into its catalog folder and clears Downloads. Importing that
    catalog with its sheet (no picture column: pictures named by SKU) skips the folder
    (it holds the marker) and then tidies it as 'a renamed workbook's': the manifest's
    workbook is gone and this library's catalog uses none of these paths, so every
    picture in it is deleted."""
    downloads = tmp_path / "Downloads"
    downloads.mkdir()
    book = _book(downloads / "list.xlsx", ["A", "B"], [(1, "C2"), (2, "C3")])
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(None, book)
        shutil.move(str(downloads / "list pictures"), str(catalog / "list pictures"))
        book.unlink()
        sheet = catalog / "products.csv"
        sheet.write_text("SKU,Name\nA,Product A\nB,Product B\n", encoding="utf-8")
        lib.import_catalog(catalog, sheet, removals="keep")
    assert (catalog / "list pictures" / "A.png").is_file()
    assert (catalog / "list pictures" / "B.png").is_file()


def test_a_foreign_manifest_of_another_shape_does_not_fail_an_import_that_went_through(
    tmp_path: Path,
) -> None:
    """A sub-folder's marker holding JSON of another shape ('files' a list): tidy() runs
    after the catalog was changed and raises AttributeError, so the import that went
    through reads as failed, and the index rebuild after it is skipped."""
    book = _book(tmp_path / "A.xlsx", ["A", "B"], [(1, "C2"), (2, "C3")])
    other = tmp_path / "old pictures"
    other.mkdir()
    (other / ".shopmatch-pictures").write_text(
        json.dumps({"workbook": str(tmp_path / "gone.xlsx"), "files": ["x.png"]}),
        encoding="utf-8",
    )
    with Library(tmp_path / "lib") as lib:
        report = lib.import_catalog(None, book)
        assert report.added == 2


def test_another_librarys_kept_picture_is_not_deleted_by_this_librarys_tidy(
    tmp_path: Path,
) -> None:
    """Two libraries (two tills, or a test library beside the real one: --library) import
    the same price list, so they share its pictures folder and manifest. The supplier
    takes C's picture out; library 2 keeps it (--keep-missing). Library 1's next import
    tidies C.png away, since *its* catalog no longer uses it: library 2's catalog still
    does, and its file is gone."""
    book = _book(tmp_path / "list.xlsx", ["A", "B", "C"], [(1, "C2"), (2, "C3"), (3, "C4")])
    with Library(tmp_path / "lib1") as one, Library(tmp_path / "lib2") as two:
        one.import_catalog(None, book)
        two.import_catalog(None, book)
        _book(book, ["A", "B", "C"], [(1, "C2"), (2, "C3")])
        two.import_catalog(None, book, removals="keep")
        one.import_catalog(None, book)
        kept = [Path(str(i["path"])) for i in two.catalog_images("C")]
        assert kept and all(p.is_file() for p in kept), kept


def test_the_manifest_names_its_workbook_wherever_the_next_import_runs(tmp_path: Path) -> None:
    """`shopmatch import --sheet list.xlsx` run in the workbook's folder writes the
    manifest's workbook as 'list.xlsx'. tidy() decides 'renamed or moved away' with
    Path(workbook).exists(), relative to wherever the next import runs (the desktop app,
    a cron job): there the workbook reads as gone and its folder is tidied as orphaned."""
    from conftest import cli

    folder = tmp_path / "Downloads"
    folder.mkdir()
    _book(folder / "list.xlsx", ["A", "B"], [(1, "C2"), (2, "C3")])
    proc = cli(tmp_path / "lib", "import", "--sheet", "list.xlsx", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    marker = folder / "list pictures" / ".shopmatch-pictures"
    workbook = Path(json.loads(marker.read_text(encoding="utf-8"))["workbook"])
    assert workbook.is_absolute() and workbook == folder / "list.xlsx", workbook


# -- review 37: rows, merged categories, moved and linked folders, claims ---------------------
def test_a_big_picture_one_pixel_below_its_rows_top_stays_with_its_row(tmp_path: Path) -> None:
    """A's picture is left at its own size (60 px: three default rows) and sits 1 px below
    the top of A's row, as a dragged picture does. 'More of it lies in the next row'
    (19 px against 20) gives it to B: A has no picture, B has A's, without a word."""
    big = OneCellAnchor(
        _from=AnchorMarker(col=2, row=1, rowOff=PX), ext=XDRPositiveSize2D(60 * PX, 60 * PX)
    )
    book = _book(tmp_path / "list.xlsx", ["A", "B"], [(1, big)])
    sheet = read_sheet(book)
    assert [(r.sku, len(r.embedded)) for r in sheet.rows] == [("A", 1), ("B", 0)]


def test_a_category_merged_down_its_products_does_not_take_their_pictures(
    tmp_path: Path,
) -> None:
    """Each product takes two rows (its details, then a line of text), the category cell
    is merged down the whole group, and each picture sits centred over its product's two
    rows (mostly in the second). _blocks maps every row of the category merge to the
    group's first product, so D1 silently gets D2's and D3's pictures (without the
    category merge: 'a picture not beside a product row; not used')."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["SKU", "Name", "Picture", "Category"])
    for sku in ("D1", "D2", "D3"):
        ws.append([sku, f"Product {sku}", None, "Dairy" if sku == "D1" else None])
        ws.append([None, "500 g, keep cool", None, None])
    ws.merge_cells("D2:D7")
    for first in (2, 4, 6):
        ws.add_image(_over_two_rows(first, 150000, 150000))
    wb.save(tmp_path / "list.xlsx")
    sheet = read_sheet(tmp_path / "list.xlsx")
    assert all(len(r.embedded) <= 1 for r in sheet.rows), [
        (r.sku, len(r.embedded)) for r in sheet.rows
    ]


def test_a_catalog_folder_moved_with_its_workbook_keeps_one_pictures_folder(
    tmp_path: Path,
) -> None:
    """The shop renames its catalog folder (or the USB stick holding it comes up as
    another drive letter): workbook and pictures folder moved together. The manifest's
    'folder' no longer matches, so the folder is 'the shop's': every picture is written
    again into 'list pictures (ShopMatch)', and the old folder, no longer skipped, is
    searched by SKU: B's picture, which the supplier took out, stays in the catalog."""
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    book = _book(catalog / "list.xlsx", ["A", "B", "C"], [(1, "C2"), (2, "C3"), (3, "C4")])
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(None, book)
        moved = catalog.rename(tmp_path / "catalog 2027")
        _book(moved / "list.xlsx", ["A", "B", "C"], [(1, "C2"), (3, "C4")])
        lib.import_catalog(None, moved / "list.xlsx")
        assert [Path(str(i["path"])).parent.name for i in lib.catalog_images("A")] == [
            "list pictures"
        ]
    assert sorted(p.name for p in (tmp_path / "catalog 2027").iterdir()) == [
        "list pictures",
        "list.xlsx",
    ]
    assert _files(tmp_path / "catalog 2027" / "list pictures") == ["A.png", "C.png"]


def test_a_cancelled_imports_pictures_are_not_deleted_by_another_library(
    tmp_path: Path,
) -> None:
    """Claims are written only by tidy(), after an import that went through; the catalog
    rows are committed batch by batch before. Library 2's first import is cancelled after
    its pictures were added: no claim. The supplier takes C out; library 1's import
    deletes C.png, which library 2's catalog uses (and keeps with --keep-missing)."""
    from engine.catalog_import import STAGE_ENCODE
    from engine.progress import CancelToken

    book = _book(tmp_path / "list.xlsx", ["A", "B", "C"], [(1, "C2"), (2, "C3"), (3, "C4")])
    with Library(tmp_path / "lib1") as one, Library(tmp_path / "lib2") as two:
        one.import_catalog(None, book)
        token = CancelToken()

        def stop(progress) -> None:  # type: ignore[no-untyped-def]
            if progress.stage == STAGE_ENCODE and progress.done:
                token.cancel()

        report = two.import_catalog(None, book, progress=stop, cancel=token)
        assert report.cancelled and two.catalog_images("C")
        _book(book, ["A", "B", "C"], [(1, "C2"), (2, "C3")])
        one.import_catalog(None, book)
        two.import_catalog(None, book, removals="keep")
        kept = [Path(str(i["path"])) for i in two.catalog_images("C")]
        assert kept and all(p.is_file() for p in kept), kept


def test_next_years_workbook_with_new_photos_is_not_taken_for_removing_every_picture(
    tmp_path: Path,
) -> None:
    """'Preisliste 2026.xlsx' is followed by 'Preisliste 2027.xlsx' (same products, the
    supplier re-shot the photos). The new pictures are planned under '... 2027 pictures';
    the old catalog files are neither at a planned path nor of a planned size, so the
    default import is refused: 'would take 4 of the 4 pictures ... out of the catalog;
    if the supplier dropped them ...' though every product still has a picture."""
    skus = list("ABCD")
    old = _book(tmp_path / "Preisliste 2026.xlsx", skus, [(i, f"C{i + 1}") for i in (1, 2, 3, 4)])
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(None, old)
        new = _book(
            tmp_path / "Preisliste 2027.xlsx", skus, [(i + 20, f"C{i + 1}") for i in (1, 2, 3, 4)]
        )
        old.unlink()
        report = lib.import_catalog(None, new)  # removals="ask", the default
        assert report.updated + report.added == 4
        assert all(lib.catalog_images(s) for s in skus)


def test_a_pictures_folder_linked_into_the_catalog_is_not_emptied_while_in_use(
    tmp_path: Path,
) -> None:
    """The library imported Downloads/list.xlsx (pictures in 'Downloads/list pictures').
    The shop links that folder into its catalog folder and files the workbook away. The
    next import of the catalog globs 'catalog/*/.shopmatch-pictures', follows the link;
    read_manifest resolves it, so the manifest is 'valid here'; the workbook is gone, and
    the claim is recomputed with the link's spelling of the paths: this library 'uses
    none', so every picture it uses is deleted; then rmdir() on the link raises
    NotADirectoryError, failing an import that already changed the catalog."""
    import os

    from conftest import product_image

    downloads = tmp_path / "Downloads"
    downloads.mkdir()
    book = _book(downloads / "list.xlsx", ["A", "B"], [(1, "C2"), (2, "C3")])
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "products.csv").write_text("SKU,Name\nP,Product P\n", encoding="utf-8")
    product_image(5).save(catalog / "P.jpg")
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(None, book)
        os.symlink(downloads / "list pictures", catalog / "list pictures")
        book.rename(tmp_path / "archived list.xlsx")
        try:
            lib.import_catalog(catalog, catalog / "products.csv")
        finally:
            used = [Path(str(i["path"])) for s in "AB" for i in lib.catalog_images(s)]
            assert used and all(p.is_file() for p in used), used
