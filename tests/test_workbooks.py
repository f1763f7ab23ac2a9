"""Supplier sheets mailed as Excel workbooks: read cell by cell, as the supplier sees them.

Real .xlsx files written with openpyxl, real catalog images, a real library: the import of
a workbook must give the same catalog as the CSV would, and keep what Excel shows (codes
with leading zeros, whole EANs) where a re-save as CSV would mangle it.
"""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import openpyxl
import pytest

from conftest import cli, product_image
from engine.library import Library
from engine.sheet import SheetError, read_sheet
from engine.workbook import cell_text, spreadsheet_kind

HEADERS = ["Article no.", "Description", "Price EUR", "Picture"]


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
        n.startswith("worksheet 'Bakery' row 4: SKU D1 is also on worksheet 'Dairy' as 'Milk'")
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
