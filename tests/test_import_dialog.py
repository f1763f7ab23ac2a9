"""File > Import catalog's setup dialog, driven like a user would: real window, real library,
real generated catalogs (review 18's findings on the dialog)."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

import test_desktop
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QFileDialog
from test_desktop import WAIT_MS, library_with_catalog, open_library

from conftest import write_catalog
from desktop_app import settings as keys
from desktop_app.import_dialog import ImportSetupDialog
from desktop_app.main_window import MainWindow

# The real window and its guards, as tests/test_desktop.py sets them up (pytest finds
# fixtures among a module's names).
boxes = test_desktop.boxes
engine_calls = test_desktop.engine_calls
make_window = test_desktop.make_window
window = test_desktop.window


def import_button_enabled(dlg: ImportSetupDialog) -> bool:
    return dlg.buttons.button(dlg.buttons.StandardButton.Ok).isEnabled()


def reopened_with_last_import(qtbot: Any, w: MainWindow, folder: Path) -> ImportSetupDialog:
    """Ctrl+I after an import of ``folder`` and its sheet.csv: both filled in, preview read."""
    w.settings.setValue(keys.IMPORT_FOLDER, str(folder))
    w.settings.setValue(keys.IMPORT_SHEET, str(folder / "sheet.csv"))
    w.choose_import()
    dlg = w.import_setup
    assert isinstance(dlg, ImportSetupDialog)
    qtbot.waitUntil(lambda: dlg.preview is not None, timeout=WAIT_MS)
    return dlg


def previewed(qtbot: Any, w: MainWindow, folder: Path | None, sheet: Path) -> ImportSetupDialog:
    """Ctrl+I with ``folder`` (or none) and ``sheet`` typed in, the preview read."""
    w.choose_import()
    dlg = w.import_setup
    assert isinstance(dlg, ImportSetupDialog)
    dlg.folder_edit.setText(str(folder) if folder else "")
    dlg.sheet_edit.setText(str(sheet))
    dlg.refresh_preview()
    qtbot.waitUntil(lambda: dlg.preview is not None, timeout=WAIT_MS)
    return dlg


# -- (8) a mistyped images folder beside a good sheet ----------------------------------------
def test_import_dialog_says_a_typed_folder_does_not_exist_when_a_sheet_is_given(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    """A mistyped images folder beside a good sheet: the preview said nothing about the
    folder and Import was enabled; only a click brought 'Catalog folder not found'."""
    w = window
    open_library(qtbot, w, tmp_path / "lib")
    sheet = write_catalog(tmp_path / "supplier", 3)
    w.choose_import()
    dlg = w.import_setup
    missing = tmp_path / "supplier" / "no-such-folder"
    dlg.folder_edit.setText(str(missing))
    dlg.sheet_edit.setText(str(sheet))
    dlg.refresh_preview()
    qtbot.waitUntil(lambda: dlg.preview is not None, timeout=WAIT_MS)
    assert f"Folder not found: {missing}" in dlg.summary.text(), dlg.summary.text()
    assert "3 product rows" in dlg.summary.text()  # the sheet is still previewed
    assert not import_button_enabled(dlg)
    dlg.folder_edit.setText(str(tmp_path / "supplier"))  # corrected: it can go ahead
    dlg.refresh_preview()
    qtbot.waitUntil(lambda: dlg.preview is not None, timeout=WAIT_MS)
    assert "not found" not in dlg.summary.text() and import_button_enabled(dlg)
    dlg.reject()


def test_a_folder_that_did_not_import_is_not_offered_again(
    qtbot: Any, window: MainWindow, tmp_path: Path, boxes: list[dict[str, Any]]
) -> None:
    """The folder was saved to the settings before the import ran, so a folder the import
    refused came back at the next Ctrl+I instead of the last one that imported."""
    w = window
    library_with_catalog(qtbot, w, tmp_path, 3)
    good = tmp_path / "supplier"
    dlg = reopened_with_last_import(qtbot, w, good)
    gone = tmp_path / "supplier-2026"
    shutil.copytree(good, gone)
    dlg.folder_edit.setText(str(gone))
    dlg.refresh_preview()
    qtbot.waitUntil(lambda: dlg.preview is not None and import_button_enabled(dlg), timeout=WAIT_MS)
    shutil.rmtree(gone)  # taken away (a USB stick pulled) between the preview and Import
    dlg.accept()
    qtbot.waitUntil(lambda: bool(boxes) and w.import_progress is None, timeout=WAIT_MS)
    assert "not found" in boxes[-1]["text"] + boxes[-1]["informative"], boxes[-1]
    assert w.settings.value(keys.IMPORT_FOLDER) == str(good)
    assert w.settings.value(keys.IMPORT_SHEET) == str(good / "sheet.csv")


# -- (5) Enter and one click import ----------------------------------------------------------
def focus_folder_field(qtbot: Any, dlg: ImportSetupDialog) -> None:
    """The cursor in the folder field of the active dialog, as after Ctrl+I."""
    dlg.activateWindow()
    assert QTest.qWaitForWindowActive(dlg, 5000)
    dlg.folder_edit.setFocus()
    qtbot.waitUntil(dlg.folder_edit.hasFocus, timeout=5000)


def test_enter_in_the_import_dialog_starts_the_import(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    """Ctrl+I comes back with last time's folder and sheet, the preview is read, the cursor
    is in the folder field and Import is the default button: Enter only read the preview
    again (editingFinished disabled Import first), every time; keyboard users had to Tab to
    the button. A path changed since the preview is still read (and shown) before Enter
    imports it: the guarantee that Enter in a typed path waits for its preview."""
    w = window
    library_with_catalog(qtbot, w, tmp_path, 3)
    dlg = reopened_with_last_import(qtbot, w, tmp_path / "supplier")
    focus_folder_field(qtbot, dlg)
    other = write_catalog(tmp_path / "supplier-2026", 2, start=10)
    dlg.folder_edit.setText(str(tmp_path / "supplier-2026"))
    dlg.sheet_edit.setText(str(other))
    w.import_summary = None
    QTest.keyClick(dlg.folder_edit, Qt.Key.Key_Return)
    assert dlg.preview is None and not import_button_enabled(dlg)  # reading the new paths
    qtbot.waitUntil(lambda: dlg.preview is not None, timeout=WAIT_MS)
    assert "2 product rows" in dlg.summary.text()
    assert dlg.isVisible() and w.import_progress is None  # shown, not imported yet
    QTest.keyClick(dlg.folder_edit, Qt.Key.Key_Return)
    assert dlg.result() == dlg.DialogCode.Accepted
    qtbot.waitUntil(lambda: w.import_summary is not None, timeout=WAIT_MS)
    assert w.last_import is not None and w.last_import.added == 2


def test_clicking_import_once_starts_the_import(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    """Ctrl+I comes back with last time's folder and sheet and reads their preview; the
    cursor is in the folder field. One click on Import: the field lost the focus,
    editingFinished re-read the preview and disabled Import under the mouse, so the click
    did nothing (the focus jumped to Cancel) and a second click was needed."""
    w = window
    library_with_catalog(qtbot, w, tmp_path, 3)
    dlg = reopened_with_last_import(qtbot, w, tmp_path / "supplier")
    focus_folder_field(qtbot, dlg)
    w.import_summary = None
    ok = dlg.buttons.button(dlg.buttons.StandardButton.Ok)
    assert ok.isEnabled()
    QTest.mouseClick(ok, Qt.MouseButton.LeftButton)
    assert dlg.result() == dlg.DialogCode.Accepted
    qtbot.waitUntil(lambda: w.import_summary is not None, timeout=WAIT_MS)
    assert w.last_import is not None and w.last_import.unchanged == 3


# -- (3) the sheet follows the folder it belonged to -----------------------------------------
def test_browsing_to_an_updated_catalog_folder_does_not_keep_the_old_folders_sheet(
    qtbot: Any, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """File > Import catalog comes back with last time's folder and sheet. The supplier's
    update is unpacked beside the old one; Browse… picked the new folder, but the sheet field
    still named old/sheet.csv: the import read the old sheet (its images relative to it),
    ignored the new sheet's products and prices, and reported everything 'unchanged'."""
    w = window
    library_with_catalog(qtbot, w, tmp_path, 4)
    old = tmp_path / "supplier"
    new = tmp_path / "supplier-2026"
    write_catalog(new, 5)  # the update: one product more
    dlg = reopened_with_last_import(qtbot, w, old)
    assert dlg.sheet == old / "sheet.csv"
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(new))
    dlg._browse_folder()
    qtbot.waitUntil(lambda: dlg.preview is not None, timeout=WAIT_MS)
    assert dlg.folder == new and dlg.sheet == new / "sheet.csv"
    assert "5 product rows" in dlg.summary.text()  # the new sheet's, not the old one's 4
    assert "follows the folder" in dlg.summary.text()
    dlg.reject()


def test_a_typed_folder_takes_its_own_sheet_or_clears_the_old_folders(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    """Same rule for a typed folder, with the sheet beside its folder (catalog/ and
    catalog.csv): the next folder's catalog-2026.csv is taken; a folder without its own sheet
    gets none, and the preview says why instead of silently reading the old one. A sheet
    chosen from elsewhere stays with any folder."""
    w = window
    open_library(qtbot, w, tmp_path / "lib")
    for name in ("catalog", "catalog-2026", "catalog-2027"):
        sheet = write_catalog(tmp_path / name, 3)
        assert sheet is not None
        if name != "catalog-2027":
            sheet.rename(tmp_path / f"{name}.csv")
    w.settings.setValue(keys.IMPORT_FOLDER, str(tmp_path / "catalog"))
    w.settings.setValue(keys.IMPORT_SHEET, str(tmp_path / "catalog.csv"))
    w.choose_import()
    dlg = w.import_setup
    qtbot.waitUntil(lambda: dlg.preview is not None, timeout=WAIT_MS)

    def type_folder(name: str) -> None:
        dlg.folder_edit.setText(str(tmp_path / name))
        QTest.keyClick(dlg.folder_edit, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: dlg.preview is not None, timeout=WAIT_MS)

    type_folder("catalog-2026")
    assert dlg.sheet == tmp_path / "catalog-2026.csv"
    type_folder("catalog-2027")  # its sheet is inside it, under another name: not guessed
    assert dlg.sheet is None
    assert "Sheet cleared" in dlg.summary.text() and "catalog-2026.csv" in dlg.summary.text()
    assert dlg.isVisible()  # Enter read the new folder; it did not import it
    prices = tmp_path / "office" / "prices.csv"  # a sheet from elsewhere stays
    prices.parent.mkdir()
    shutil.copy(tmp_path / "catalog.csv", prices)
    dlg.sheet_edit.setText(str(prices))
    QTest.keyClick(dlg.sheet_edit, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: dlg.preview is not None, timeout=WAIT_MS)
    type_folder("catalog")
    assert dlg.sheet == prices and "Sheet" not in dlg.summary.text()
    dlg.reject()


@pytest.mark.parametrize(
    ("old", "new", "sheet", "expected"),
    [
        ("s/old", "s/new", "s/old/sheet.csv", "s/new/sheet.csv"),  # in the folder
        ("s/old", "s/new", "s/old/docs/list.csv", "s/new/docs/list.csv"),
        ("s/cat", "s/cat-2", "s/cat.csv", "s/cat-2.csv"),  # named after it, beside it
        ("a/images", "b/images", "a/sheet.csv", "b/sheet.csv"),  # beside it
        ("a/images", "a/photos", "a/sheet.csv", "a/sheet.csv"),  # beside the new one too
        ("s/old", "s/old/images", "s/old/sheet.csv", "s/old/sheet.csv"),  # a sub-folder
        ("s/old/images", "s/old", "s/old/images/x.csv", "s/old/images/x.csv"),  # in new
        ("s/old", "s/new", "office/prices.csv", "office/prices.csv"),  # from elsewhere
    ],
)
def test_which_sheet_goes_with_a_new_folder(old: str, new: str, sheet: str, expected: str) -> None:
    from desktop_app.import_dialog import sheet_for_folder

    root = Path("/catalogs")
    assert sheet_for_folder(root / old, root / new, root / sheet) == root / expected


def test_import_dialog_says_a_file_is_not_a_folder(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    """The sheet itself typed into the folder field: it exists, so 'Folder not found' sent
    staff looking for a file they could see; the preview says it is a file."""
    w = window
    open_library(qtbot, w, tmp_path / "lib")
    sheet = write_catalog(tmp_path / "supplier", 3)
    w.choose_import()
    dlg = w.import_setup
    dlg.folder_edit.setText(str(sheet))
    dlg.sheet_edit.setText(str(sheet))
    dlg.refresh_preview()
    qtbot.waitUntil(lambda: dlg.preview is not None, timeout=WAIT_MS)
    assert f"{sheet} is a file, not a folder" in dlg.summary.text(), dlg.summary.text()
    assert "not found" not in dlg.summary.text()
    assert not import_button_enabled(dlg)


# -- review 27: a damaged copy of the catalog -------------------------------------------------
def test_reimporting_a_damaged_copy_keeps_the_pictures_and_says_they_could_not_be_read(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    """Every picture cut short by a sync: the app's import (the engine's, as the command
    line's) took them all out of the catalog under a 'Catalog imported' title."""
    w = window
    library_with_catalog(qtbot, w, tmp_path, 3)
    for picture in (tmp_path / "supplier" / "images").glob("*.jpg"):
        picture.write_bytes(picture.read_bytes()[:300])
    w.import_summary = None
    w.import_catalog(tmp_path / "supplier", tmp_path / "supplier" / "sheet.csv")
    qtbot.waitUntil(lambda: w.import_summary is not None, timeout=WAIT_MS)
    summary = w.import_summary
    assert summary.windowTitle() == "Pictures could not be used"
    assert (summary.report.removed, summary.report.unreadable) == (0, 3)
    assert summary.table is not None and summary.table.rowCount() == 3
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    with sqlite3.connect(tmp_path / "lib" / "shopmatch.db") as conn:
        assert conn.execute("SELECT count(*) FROM catalog_images").fetchone() == (3,)
    summary.accept()


def test_a_supplier_workbook_is_previewed_and_imported(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    """Suppliers mail .xlsx price lists, one tab per product group behind a cover page: the
    preview says which worksheets hold the products and counts every tab's rows."""
    import openpyxl

    w = window
    open_library(qtbot, w, tmp_path / "lib")
    write_catalog(tmp_path / "supplier", 3, sheet=False)
    wb = openpyxl.Workbook()
    wb.active.title = "Cover"
    wb.active.append(["Acme price list"])
    for tab, numbers in (("Dairy", [0, 1]), ("Produce", [2])):
        ws = wb.create_sheet(tab)
        ws.append(["Art.-Nr.", "Bezeichnung", "Preis"])
        for i in numbers:
            ws.append([f"SKU-{i:03d}", f"Produkt {i}", i + 0.5])
    book = tmp_path / "supplier" / "Preisliste.xlsx"
    wb.save(book)
    dlg = previewed(qtbot, w, tmp_path / "supplier", book)
    text = dlg.summary.text()
    assert "Worksheets &#x27;Dairy&#x27;, &#x27;Produce&#x27;: read" in text, text
    assert "3 product rows" in text and import_button_enabled(dlg)
    w.import_summary = None
    dlg.accept()
    qtbot.waitUntil(lambda: w.import_summary is not None, timeout=WAIT_MS)
    assert w.last_import is not None and w.last_import.products == 3
    with sqlite3.connect(tmp_path / "lib" / "shopmatch.db") as conn:
        names = dict(conn.execute("SELECT sku, name FROM products").fetchall())
    assert names == {"SKU-000": "Produkt 0", "SKU-001": "Produkt 1", "SKU-002": "Produkt 2"}


def test_a_price_list_with_its_pictures_inside_imports_from_the_workbook_alone(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    """A workbook with each product's picture in its row is a whole catalog: chosen alone,
    the preview counts its pictures, and the import gives every product its picture."""
    from test_workbooks import _picture_list

    w = window
    open_library(qtbot, w, tmp_path / "lib")
    (tmp_path / "supplier").mkdir()
    book = _picture_list(tmp_path / "supplier" / "Preisliste.xlsx", ["P1", "P2"])
    dlg = previewed(qtbot, w, None, book)
    assert "2 pictures in the workbook's rows" in dlg.summary.text(), dlg.summary.text()
    assert import_button_enabled(dlg)
    w.import_summary = None
    dlg.accept()
    qtbot.waitUntil(lambda: w.import_summary is not None, timeout=WAIT_MS)
    assert w.last_import is not None and (w.last_import.products, w.last_import.added) == (2, 2)
    assert (tmp_path / "supplier" / "Preisliste pictures" / "P2.png").is_file()
