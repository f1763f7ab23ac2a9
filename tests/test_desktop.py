"""The desktop app, driven like a user would: real window, real library on disk, offscreen.

Every test checks that no Library method ran on the GUI thread, and one checks that the event
loop keeps ticking through a large import: the two ways a Qt app freezes.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import gc
import inspect
import itertools
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPointF, QSettings, Qt, QTimer, QUrl
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QImage
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialog, QFileDialog, QLabel, QMessageBox
from test_worker_threads import Uncancellable

from conftest import write_catalog, write_photos, write_price_list
from desktop_app import app as desktop_app_main
from desktop_app import main_window as main_window_module
from desktop_app.export_dialog import ExportDialog
from desktop_app.import_dialog import ProgressDialog
from desktop_app.main_window import MainWindow
from desktop_app.worker import EngineWorker, Priority, TaskContext, TaskError
from engine.check import check_library
from engine.decisions import effective_states
from engine.export_csv import local_minute
from engine.library import Library
from engine.training.options import STAGE_CACHE, STAGE_TRAIN

WAIT_MS = 30_000
REPO = Path(__file__).resolve().parents[1]


# -- fixtures -------------------------------------------------------------------------------
@pytest.fixture
def boxes(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Message boxes never block: record them and answer Yes (or whatever a test sets)."""
    shown: list[dict[str, Any]] = []

    def fake_exec(box: QMessageBox) -> int:
        shown.append(
            {
                "text": box.text(),
                "informative": box.informativeText(),
                "details": box.detailedText(),
                "icon": box.icon(),
            }
        )
        return int(QMessageBox.StandardButton.Yes)

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    return shown


class EngineCalls:
    """(method, ran on the GUI thread) for every public Library call the app makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.paused = False

    @contextlib.contextmanager
    def by_test(self) -> Iterator[None]:
        """The test's own reads of the library (to check what was stored) do not count."""
        self.paused = True
        try:
            yield
        finally:
            self.paused = False

    def on_gui_thread(self) -> list[str]:
        return sorted({name for name, gui in self.calls if gui})


@pytest.fixture
def engine_calls(monkeypatch: pytest.MonkeyPatch) -> EngineCalls:
    """Record every public Library method call with whether it ran on the GUI thread."""
    record = EngineCalls()
    names = ["__init__"] + [
        n for n, v in vars(Library).items() if not n.startswith("_") and inspect.isfunction(v)
    ]
    for name in names:
        original = getattr(Library, name)

        def wrapper(*args: Any, __name: str = name, __orig: Any = original, **kw: Any) -> Any:
            if not record.paused:
                gui = threading.current_thread() is threading.main_thread()
                record.calls.append((__name, gui))
            return __orig(*args, **kw)

        monkeypatch.setattr(Library, name, functools.wraps(original)(wrapper))
    return record


class HeldEncoding:
    """Holds every ``EmbedPlan.encode`` (the minutes of encoder time in a model switch or a
    gate) until the test lets it go, and records the thread it ran on."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.threads: list[int] = []  # idents of the threads it ran on

    def engine_answers_meanwhile(self, qtbot: Any, w: MainWindow) -> None:
        """While an encode is held, a library query still round-trips: the engine thread is
        not the one encoding."""
        qtbot.waitUntil(self.started.is_set, timeout=120_000)
        answered: list[int] = []
        w.worker.submit(lambda ctx: ctx.lib.status().products, what="t", on_result=answered.append)
        try:
            qtbot.waitUntil(lambda: bool(answered), timeout=10_000)
        finally:
            self.release.set()
        engine = w.worker.engine_thread_ident
        gui = threading.main_thread().ident
        assert self.threads and all(t not in (engine, gui) for t in self.threads)


@pytest.fixture
def held_encoding(monkeypatch: pytest.MonkeyPatch) -> Iterator[HeldEncoding]:
    from engine.reembed import EmbedPlan

    held = HeldEncoding()
    original = EmbedPlan.encode

    def encode(self: EmbedPlan, *args: Any, **kw: Any) -> Any:
        held.threads.append(threading.get_ident())
        held.started.set()
        held.release.wait(timeout=60)
        return original(self, *args, **kw)

    monkeypatch.setattr(EmbedPlan, "encode", encode)
    yield held
    held.release.set()  # a failed test must not leave a pool thread waiting


@pytest.fixture
def make_window(
    qtbot: Any, tmp_path: Path, boxes: list[dict[str, Any]], engine_calls: EngineCalls
) -> Iterator[Any]:
    windows: list[MainWindow] = []

    def make(settings_name: str = "settings.ini") -> MainWindow:
        settings = QSettings(str(tmp_path / settings_name), QSettings.Format.IniFormat)
        w = MainWindow(settings)
        qtbot.addWidget(w)
        w.show()
        w.activateWindow()
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.close()
    on_gui = engine_calls.on_gui_thread()
    assert not on_gui, f"engine called on the GUI thread: {on_gui}"


@pytest.fixture
def window(make_window: Any) -> MainWindow:
    return make_window()


def open_library(qtbot: Any, w: MainWindow, path: Path) -> None:
    w.open_library(path)
    qtbot.waitUntil(
        lambda: w.library_status is not None and w.library_status.path == path, timeout=WAIT_MS
    )


def import_catalog(qtbot: Any, w: MainWindow, folder: Path | None, sheet: Path | None) -> None:
    w.import_summary = None
    w.import_catalog(folder, sheet)
    qtbot.waitUntil(lambda: w.import_summary is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    w.import_summary.accept()


def library_with_catalog(qtbot: Any, w: MainWindow, tmp_path: Path, products: int) -> Path:
    """Open a new library at tmp_path/lib and import ``products`` generated products."""
    lib_path = tmp_path / "lib"
    open_library(qtbot, w, lib_path)
    sheet = write_catalog(tmp_path / "supplier", products)
    import_catalog(qtbot, w, tmp_path / "supplier", sheet)
    return lib_path


def wait_matched(qtbot: Any, w: MainWindow, n: int) -> None:
    qtbot.waitUntil(
        lambda: w.model.rowCount() == n and all(i.status != "pending" for i in w.model.items),
        timeout=WAIT_MS,
    )


def key(
    w: MainWindow, k: Qt.Key, mod: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier
) -> None:
    """A keypress where the user's focus is (the photo queue), as in real use; window
    shortcuts only fire in the active window, so make sure it is (dialogs come and go)."""
    if QApplication.activeWindow() is not w:
        w.activateWindow()
        assert QTest.qWaitForWindowActive(w, 5000)
    QTest.keyClick(w.review.queue, k, mod)


def item(w: MainWindow, name: str) -> Any:
    return next(i for i in w.model.items if i.path.name == name)


def library_db(path: Path) -> Any:
    """Read the library's DB directly (no lock: WAL lets a reader in beside the app)."""
    import sqlite_utils

    return sqlite_utils.Database(path / "shopmatch.db")


def answer_export(
    monkeypatch: pytest.MonkeyPatch,
    kind: str = "all",
    per: str = "photo",
    folder: Path | None = None,
    seen: list[ExportDialog] | None = None,
) -> None:
    """The export dialog answered as a user would: which photos, which rows, then Export."""

    def fake_exec(dialog: ExportDialog) -> int:
        dialog.choose(kind, folder)
        dialog.rows.setCurrentIndex(dialog.rows.findData(per))
        if seen is not None:
            seen.append(dialog)
        return int(QDialog.DialogCode.Accepted)

    monkeypatch.setattr(ExportDialog, "exec", fake_exec)


# -- the whole journey ----------------------------------------------------------------------


def test_a_newer_copy_of_a_catalog_asks_whether_it_replaces_the_old_one(
    qtbot: Any, window: MainWindow, tmp_path: Path, boxes: list[dict[str, Any]]
) -> None:
    w = window
    lib_path = library_with_catalog(qtbot, w, tmp_path, 4)
    new = tmp_path / "supplier-2026"
    shutil.copytree(tmp_path / "supplier", new)
    (new / "images" / "SKU-003.jpg").unlink()
    lines = (new / "sheet.csv").read_text(encoding="utf-8").splitlines()
    (new / "sheet.csv").write_text(
        "\n".join(x for x in lines if not x.startswith("SKU-003,")) + "\n", encoding="utf-8"
    )
    import_catalog(qtbot, w, new, new / "sheet.csv")  # asked; the test answers Yes
    (box,) = boxes
    assert box["text"] == "Does this catalog replace the one imported from supplier?"
    with library_db(lib_path) as db:
        roots = {r[0] for r in db.execute("SELECT source_root FROM catalog_images")}
        assert roots == {str(new)}
        (gone,) = db.execute("SELECT withdrawn_at FROM products WHERE sku = 'SKU-003'").fetchone()
        assert gone


def test_two_suppliers_sheets_from_downloads_stay_and_the_next_list_carries_one_on(
    qtbot: Any, window: MainWindow, tmp_path: Path, boxes: list[dict[str, Any]]
) -> None:
    """Each sheet chosen alone in the import dialog: another supplier's sheet beside the
    first leaves it alone (no question, both catalogs kept); the first supplier's next list
    under a new name is its catalog: the product it drops leaves."""
    w = window
    lib_path = tmp_path / "lib"
    open_library(qtbot, w, lib_path)
    downloads = tmp_path / "Downloads"
    alpha = write_price_list(downloads, "alpha.csv", ["A1", "A2", "A3"], 10)
    import_catalog(qtbot, w, None, alpha)
    import_catalog(qtbot, w, None, write_price_list(downloads, "beta.csv", ["B1", "B2"], 40))
    assert boxes == []
    november = write_price_list(downloads, "alpha 11.csv", ["A1", "A2", "B9"], 70)
    import_catalog(qtbot, w, None, november)  # one picture of three leaves: not asked
    assert boxes == []
    with library_db(lib_path) as db:
        live = db.execute(
            "SELECT DISTINCT c.sku FROM catalog_images c JOIN products p ON p.sku = c.sku "
            "WHERE p.withdrawn_at IS NULL ORDER BY c.sku"
        ).fetchall()
    assert [r[0] for r in live] == ["A1", "A2", "B1", "B2", "B9"]


def test_declining_to_replace_after_all_still_shows_the_import_that_went_through(
    qtbot: Any, make_window: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A newer copy of a catalog folder, repeating one picture of the old one, is imported;
    the app asks whether it replaces the old one; the shop says Yes; the app runs it again,
    which asks first (most of the old folder's pictures would leave); the shop, unsure now,
    presses Cancel. The status bar said 'Import cancelled: nothing was imported, the
    catalog is as it was' and no summary was shown, yet the first run had imported the new
    folder: main_window's done() dropped its report when it asked the replace question."""
    from PySide6.QtWidgets import QMessageBox

    def answer(box: QMessageBox) -> int:  # Yes to the replace question, Cancel to removals
        if box.icon() == QMessageBox.Icon.Warning:
            return int(QMessageBox.StandardButton.Cancel)
        return int(QMessageBox.StandardButton.Yes)

    w = make_window()
    monkeypatch.setattr(QMessageBox, "exec", answer)
    old, new = tmp_path / "supplier", tmp_path / "supplier-2026"
    open_library(qtbot, w, tmp_path / "lib")
    import_catalog(qtbot, w, old, write_catalog(old, 6))
    write_catalog(new, 1)  # SKU-000, the same picture as the old folder's
    write_catalog(new, 3, start=10, sheet=False)
    w.import_summary = None
    w.import_catalog(new, None)
    qtbot.waitUntil(lambda: w.import_summary is not None and not w.worker.busy, timeout=WAIT_MS)
    said = w.statusBar().full_message  # type: ignore[attr-defined]
    assert said == "Imported; the catalog from supplier was not replaced and stays as it was"
    assert w.last_import is not None and w.last_import.added == 3  # the first run's summary
    with library_db(tmp_path / "lib") as db:
        (old_left,) = db.execute(
            "SELECT count(*) FROM catalog_images WHERE source_root = ?", [str(old.resolve())]
        ).fetchone()
    assert old_left == 6


def test_a_rejected_suggestion_is_not_offered_again(tmp_path: Path) -> None:
    """Rejected on the command line, the product was still first in the window, and Enter
    confirmed it."""
    from desktop_app.session import describe_match

    sheet = write_catalog(tmp_path / "supplier", 6)
    (photo,) = write_photos(tmp_path / "p", [2])
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(tmp_path / "supplier", sheet)
        (m,) = lib.match([photo])
        top = m.suggestions[0].sku
        lib.reject(m.photo_id, top)  # type: ignore[arg-type]
        shown = describe_match(lib, m)
        assert top not in [s.sku for s in shown.suggestions]
        assert len(shown.suggestions) == len(m.suggestions) - 1


def test_undoing_a_rejection_offers_the_product_again(
    qtbot: Any, window: MainWindow, tmp_path: Path, engine_calls: EngineCalls
) -> None:
    """Rejected on the command line, then Ctrl+Z in the window: the product stayed hidden
    and Enter confirmed the second suggestion (found by review 17)."""
    sheet = write_catalog(tmp_path / "supplier", 4)
    (photo,) = write_photos(tmp_path / "p", [1])
    with engine_calls.by_test(), Library(tmp_path / "lib") as lib:
        lib.import_catalog(tmp_path / "supplier", sheet)
        (m,) = lib.match([photo])
        top = m.suggestions[0].sku
        lib.reject(m.photo_id, top)  # type: ignore[arg-type]
    w = window
    open_library(qtbot, w, tmp_path / "lib")
    qtbot.waitUntil(lambda: w.model.rowCount() == 1 and not w.worker.busy, timeout=WAIT_MS)
    assert top not in [s.sku for s in w.model.item(0).suggestions]
    w.session.select_row(0)
    key(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(
        lambda: [s.sku for s in w.model.item(0).suggestions][:1] == [top], timeout=WAIT_MS
    )


def test_a_photo_with_every_suggestion_rejected_is_not_matched_again(
    qtbot: Any, window: MainWindow, tmp_path: Path, engine_calls: EngineCalls
) -> None:
    """All five suggestions rejected on the command line: each time the library opened the
    window matched the photo again (finding the same five) and then said the catalog was
    empty. It is listed as it stands: nothing left to suggest, search or no match instead."""
    sheet = write_catalog(tmp_path / "supplier", 6)
    (photo,) = write_photos(tmp_path / "p", [1])
    with engine_calls.by_test(), Library(tmp_path / "lib") as lib:
        lib.import_catalog(tmp_path / "supplier", sheet)
        (m,) = lib.match([photo], top_k=5)
        for s in m.suggestions:
            lib.reject(m.photo_id, s.sku)  # type: ignore[arg-type]
    w = window
    open_library(qtbot, w, tmp_path / "lib")
    qtbot.waitUntil(
        lambda: (
            w.model.rowCount() == 1 and w.model.item(0).status != "pending" and not w.worker.busy
        ),
        timeout=WAIT_MS,
    )
    assert "match" not in {name for name, _ in engine_calls.calls}
    shown = w.model.item(0)
    assert (shown.status, shown.suggestions, shown.all_rejected) == ("suggested", [], True)
    assert shown.status_text() == "Every suggestion rejected"
    w.session.select_row(0)
    assert "nothing left to suggest" in w.review.cards_message.text()
    key(w, Qt.Key.Key_N)  # staff can still say it is none of the catalog's products
    qtbot.waitUntil(lambda: w.model.item(0).status == "no_match", timeout=WAIT_MS)
    w.session.select_row(0)  # decided now: no longer told to search or mark it no match
    assert "No suggestion is left to show" in w.review.cards_message.text()
    assert "mark it no match" not in w.review.cards_message.text()


def test_a_photo_matched_with_more_offers_those_not_rejected(tmp_path: Path) -> None:
    """Matched with --top 10 and its first five rejected: the window cut the stored ten to
    five before leaving out the rejected ones, and offered nothing."""
    from desktop_app.session import TOP_K, stored_match
    from engine.overview import photo_records

    sheet = write_catalog(tmp_path / "supplier", 12)
    (photo,) = write_photos(tmp_path / "p", [3])
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(tmp_path / "supplier", sheet)
        (m,) = lib.match([photo], top_k=10)
        assert m.photo_id is not None and len(m.suggestions) == 10
        for s in m.suggestions[:TOP_K]:
            lib.reject(m.photo_id, s.sku)
        shown = stored_match(lib, photo_records(lib, [m.photo_id])[m.photo_id])
        assert [s.sku for s in shown.suggestions] == [s.sku for s in m.suggestions[TOP_K:]]
        assert not shown.all_rejected and not shown.needs_matching


def test_confirming_a_withdrawn_product_by_hand_says_so(
    qtbot: Any, window: MainWindow, tmp_path: Path, engine_calls: EngineCalls
) -> None:
    """A product the supplier's sheet dropped can still be confirmed from the search (goods
    delivered before it left), but the window says it is no longer in the catalog."""
    sheet = write_catalog(tmp_path / "supplier", 4)
    assert sheet is not None
    (photo,) = write_photos(tmp_path / "p", [1])
    with engine_calls.by_test(), Library(tmp_path / "lib") as lib:
        lib.import_catalog(tmp_path / "supplier", sheet)
        lines = sheet.read_text(encoding="utf-8").splitlines()
        sheet.write_text(
            "\n".join(x for x in lines if not x.startswith("SKU-003,")) + "\n", encoding="utf-8"
        )
        (tmp_path / "supplier" / "images" / "SKU-003.jpg").unlink()
        lib.import_catalog(tmp_path / "supplier", sheet)  # SKU-003 leaves the catalog
        assert lib.product("SKU-003")["withdrawn_at"]  # type: ignore[index]
        lib.match([photo]).__next__()
    w = window
    open_library(qtbot, w, tmp_path / "lib")
    qtbot.waitUntil(lambda: w.model.rowCount() == 1 and not w.worker.busy, timeout=WAIT_MS)
    w.session.select_row(0)
    said: list[str] = []
    w.session.message.connect(said.append)
    w.review.search.setText("SKU-003")
    results = w.review.results
    qtbot.waitUntil(lambda: results.count() == 1, timeout=WAIT_MS)
    assert "(no longer in the catalog)" in results.item(0).text()
    QTest.keyClick(w.review.search, Qt.Key.Key_Return)  # confirm the search result
    warning = f"{photo.name}: SKU-003 is no longer in the supplier's catalog (withdrawn "
    qtbot.waitUntil(lambda: any(m.startswith(warning) for m in said), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    shown = w.model.item(0)
    assert (shown.status, shown.decided_sku) == ("confirmed", "SKU-003")
    assert w.statusBar().full_message.startswith(warning), said  # the last word, not hidden
    with engine_calls.by_test(), Library(tmp_path / "lib", lock=False) as lib:
        assert lib.photo_state(1).decision.sku == "SKU-003"  # type: ignore[union-attr]


def test_a_long_thin_picture_still_has_a_preview(tmp_path: Path) -> None:
    """10000 x 3 pixels scaled to 0 pixels high, and Qt then read no preview at all."""
    from PIL import Image

    from desktop_app.previews import read_scaled

    Image.new("RGB", (10000, 3), (200, 30, 30)).save(tmp_path / "strip.png")
    img = read_scaled(tmp_path / "strip.png", 256)
    assert (img.width(), img.height()) == (256, 1)


def test_an_import_that_would_empty_most_of_the_catalog_asks_first(
    qtbot: Any, window: MainWindow, tmp_path: Path, boxes: list[dict[str, Any]]
) -> None:
    w = window
    lib_path = library_with_catalog(qtbot, w, tmp_path, 6)
    few = tmp_path / "supplier" / "new.csv"
    few.write_text("sku,image\nSKU-000,images/SKU-000.jpg\n", encoding="utf-8")
    import_catalog(qtbot, w, tmp_path / "supplier", few)  # asked; the test answers Remove
    (box,) = boxes
    assert box["text"] == (
        "This import would take 5 of the 6 pictures imported from supplier out of the catalog."
    )
    assert "Nothing has been changed yet" in box["informative"]
    with library_db(lib_path) as db:
        assert db.execute("SELECT count(*) FROM catalog_images").fetchone()[0] == 1


def _answer_removals(
    monkeypatch: pytest.MonkeyPatch, button: QMessageBox.StandardButton
) -> list[str]:
    """Answer every message box with ``button``; returns the texts of those shown."""
    asked: list[str] = []

    def answer(box: QMessageBox) -> int:
        asked.append(box.text())
        return int(button)

    monkeypatch.setattr(QMessageBox, "exec", answer)
    return asked


def _sheet_of_new_products_only(tmp_path: Path) -> Path:
    """A sheet listing one product held and one new one: five of six pictures would leave."""
    write_catalog(tmp_path / "supplier", 1, start=6, sheet=False)
    few = tmp_path / "supplier" / "new.csv"
    few.write_text(
        "sku,image\nSKU-000,images/SKU-000.jpg\nSKU-006,images/SKU-006.jpg\n", encoding="utf-8"
    )
    return few


def test_keep_them_adds_the_sheet_and_keeps_the_other_products(
    qtbot: Any, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'Keep them' (a sheet of new products only): its products are added, the five the
    sheet leaves out stay suggested, nothing is withdrawn."""
    w = window
    lib_path = library_with_catalog(qtbot, w, tmp_path, 6)
    asked = _answer_removals(monkeypatch, QMessageBox.StandardButton.No)  # "Keep them"
    import_catalog(qtbot, w, tmp_path / "supplier", _sheet_of_new_products_only(tmp_path))
    assert asked == [
        "This import would take 5 of the 6 pictures imported from supplier out of the catalog."
    ]
    with library_db(lib_path) as db:
        assert db.execute("SELECT count(*) FROM catalog_images").fetchone()[0] == 7
        rows = db.execute("SELECT sku, withdrawn_at FROM products ORDER BY sku").fetchall()
    assert rows == [(f"SKU-{i:03d}", None) for i in range(7)]


def test_cancel_at_the_removals_question_changes_nothing(
    qtbot: Any, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = window
    lib_path = library_with_catalog(qtbot, w, tmp_path, 6)
    with library_db(lib_path) as db:
        imports = db.execute("SELECT count(*) FROM imports").fetchone()[0]
    asked = _answer_removals(monkeypatch, QMessageBox.StandardButton.Cancel)
    w.import_summary = None
    w.import_catalog(tmp_path / "supplier", _sheet_of_new_products_only(tmp_path))
    qtbot.waitUntil(lambda: bool(asked) and not w.worker.busy, timeout=WAIT_MS)
    # An import started by the answer would have kept the worker busy until its summary.
    assert len(asked) == 1
    assert w.import_summary is None and w.import_progress is None
    with library_db(lib_path) as db:
        assert db.execute("SELECT count(*) FROM imports").fetchone()[0] == imports
        assert db.execute("SELECT count(*) FROM catalog_images").fetchone()[0] == 6
        rows = db.execute("SELECT sku, withdrawn_at FROM products ORDER BY sku").fetchall()
    assert rows == [(f"SKU-{i:03d}", None) for i in range(6)]


def test_import_drop_review_undo_export(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    boxes: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    engine_calls: EngineCalls,
) -> None:
    w = window
    lib_path = tmp_path / "lib"
    open_library(qtbot, w, lib_path)
    # An empty library shows the first-run page with the import step.
    assert w.pages.currentWidget() is w.welcome
    assert w.welcome.import_button.isVisibleTo(w.welcome)

    # Import through the dialog: the sheet's columns are previewed before importing.
    sheet = write_catalog(tmp_path / "supplier", 12)
    assert sheet is not None
    w.choose_import()
    dlg = w.import_setup
    dlg.folder_edit.setText(str(tmp_path / "supplier"))
    dlg.sheet_edit.setText(str(sheet))
    dlg.refresh_preview()
    qtbot.waitUntil(lambda: dlg.preview is not None, timeout=WAIT_MS)
    assert dlg.preview.mapping["sku"] == "SKU"
    assert dlg.preview.mapping["name"] == "Product name"
    assert dlg.preview.mapping["price"] == "Price"
    assert dlg.table.rowCount() == 8
    assert dlg.table.item(0, 0).text() == "SKU-000"
    assert "Colour" in dlg.table.item(0, 6).text()  # unmapped column kept as attribute
    assert "12 image files" in dlg.summary.text()
    dlg.accept()
    qtbot.waitUntil(lambda: w.import_summary is not None, timeout=WAIT_MS)
    assert w.last_import is not None and w.last_import.added == 12
    assert "Catalog imported" in w.import_summary.windowTitle()
    w.import_summary.accept()
    qtbot.waitUntil(lambda: w.pages.currentWidget() is w.tabs, timeout=WAIT_MS)

    # Drop a folder of photos with a real drag-and-drop event on the window.
    photos = write_photos(tmp_path / "photos", [1, 2, 3, 4, 5])
    (tmp_path / "photos" / "zz-broken.jpg").write_bytes(b"this is not a picture")
    (tmp_path / "photos" / "zz-copy-of-001.jpg").write_bytes(photos[0].read_bytes())
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "photos"))])
    enter = QDragEnterEvent(
        w.rect().center(),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(w, enter)
    assert enter.isAccepted()
    drop = QDropEvent(
        QPointF(w.rect().center()),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(w, drop)
    assert drop.isAccepted()
    qtbot.waitUntil(lambda: w.model.rowCount() == 7, timeout=WAIT_MS)  # listed at once
    wait_matched(qtbot, w, 6)  # the copy of photo 1 is recognised and listed once
    assert "zz-copy-of-001.jpg" not in [i.path.name for i in w.model.items]
    broken = item(w, "zz-broken.jpg")
    assert broken.status == "error" and broken.error
    # The same handler serves paste: picture data lands in the library's inbox.
    image = QImage(64, 64, QImage.Format.Format_RGB32)
    image.fill(QColor("orange"))
    pasted = QMimeData()
    pasted.setImageData(image)
    assert w.add_from_mime(pasted) == 1
    wait_matched(qtbot, w, 7)
    assert len(list((lib_path / "inbox").glob("pasted-*.png"))) == 1
    # Dropping the same photo file again does not queue it twice.
    again = QMimeData()
    again.setUrls([QUrl.fromLocalFile(str(photos[0]))])
    w.add_from_mime(again)
    qtbot.wait(300)
    assert w.model.rowCount() == 7

    # Review at keyboard speed.
    w.review.queue.setFocus()
    w.session.select_row(0)
    first = item(w, "photo-of-001.jpg")
    assert first.status == "suggested" and len(first.suggestions) == 5
    assert w.review.cards[0].isVisibleTo(w.review)
    key(w, Qt.Key.Key_Return)  # top match
    assert first.status == "confirmed"  # optimistic, at once
    assert w.session.current_item() is item(w, "photo-of-002.jpg")  # moved on
    second_choice = item(w, "photo-of-002.jpg").suggestions[1].sku
    key(w, Qt.Key.Key_2)
    assert w.session.current_item() is item(w, "photo-of-003.jpg")
    key(w, Qt.Key.Key_N)
    assert item(w, "photo-of-003.jpg").status == "no_match"
    key(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # undo the 'no match'
    qtbot.waitUntil(lambda: item(w, "photo-of-003.jpg").status == "suggested", timeout=WAIT_MS)
    assert w.session.current_item() is item(w, "photo-of-003.jpg")
    key(w, Qt.Key.Key_S)  # skip it
    assert w.session.current_item() is item(w, "photo-of-004.jpg")
    key(w, Qt.Key.Key_Left)
    assert w.session.current_item() is item(w, "photo-of-003.jpg")
    key(w, Qt.Key.Key_Right)
    # Not among the suggestions: find it by SKU; Enter in the search box picks the result.
    suggested = {x.sku for x in item(w, "photo-of-004.jpg").suggestions}
    other = next(f"SKU-{i:03d}" for i in range(11, -1, -1) if f"SKU-{i:03d}" not in suggested)
    key(w, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert w.review.search.hasFocus()
    QTest.keyClicks(w.review.search, other)
    qtbot.waitUntil(
        lambda: w.review.results.count() > 0 and w.review.results.isVisible(), timeout=WAIT_MS
    )
    assert w.review.results.item(0).data(Qt.ItemDataRole.UserRole) == other
    one_row = w.review.results.sizeHintForRow(0) * w.review.results.count()
    assert w.review.results.height() < one_row + 12  # as tall as its rows, not a fixed box
    QTest.keyClick(w.review.search, Qt.Key.Key_Return)
    assert item(w, "photo-of-004.jpg").status == "confirmed"
    assert item(w, "photo-of-004.jpg").decided_sku == other
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)

    # What was stored: append-only decisions, undo as its own row, ranks as suggested.
    with engine_calls.by_test(), Library(lib_path, lock=False) as lib:
        ids = {Path(str(r["path"])).name: r["id"] for r in lib.db.query("SELECT * FROM photos")}
        states = effective_states(lib)
        assert states[ids["photo-of-001.jpg"]].sku == "SKU-001"
        assert states[ids["photo-of-001.jpg"]].rank == 1
        assert states[ids["photo-of-002.jpg"]].sku == second_choice
        assert states[ids["photo-of-002.jpg"]].rank == 2
        assert ids["photo-of-003.jpg"] not in states
        assert states[ids["photo-of-004.jpg"]].sku == other
        assert states[ids["photo-of-004.jpg"]].rank is None  # found by search
        actions = [r[0] for r in lib.db.execute("SELECT action FROM decisions ORDER BY id")]
        assert actions == ["confirm", "confirm", "no_match", "undo", "confirm"]

    # Export per SKU through the save dialog, and per photo.
    target = tmp_path / "out" / "inventory"
    target.parent.mkdir()
    answer_export(monkeypatch, per="sku")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    w.act_export.trigger()
    qtbot.waitUntil(lambda: w.last_export is not None, timeout=WAIT_MS)
    csv_path, rows = w.last_export
    assert csv_path.name == "inventory.csv" and rows == len({"SKU-001", second_choice, other})
    raw = csv_path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads accents right
    table = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
    expected = Counter(["SKU-001", second_choice, other])
    assert {r["sku"]: int(r["quantity"]) for r in table} == dict(expected)
    w.last_export = None
    w.export_inventory(tmp_path / "out" / "photos.csv", "photo", False)
    qtbot.waitUntil(lambda: w.last_export is not None, timeout=WAIT_MS)
    table = list(
        csv.DictReader((tmp_path / "out" / "photos.csv").read_text("utf-8-sig").splitlines())
    )
    assert [Path(r["photo"]).name for r in table] == [
        "photo-of-001.jpg",
        "photo-of-002.jpg",
        "photo-of-004.jpg",
    ]
    assert not [b for b in boxes if "Could not" in b["text"]]

    # Catalog browser: filters and the photos confirmed to a product.
    key(w, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert w.tabs.currentWidget() is w.catalog
    qtbot.waitUntil(lambda: w.catalog.table.rowCount() == 12, timeout=WAIT_MS)
    w.catalog.category.setCurrentIndex(w.catalog.category.findData("Dairy"))
    qtbot.waitUntil(lambda: w.catalog.table.rowCount() == 6, timeout=WAIT_MS)
    w.catalog.category.setCurrentIndex(0)
    w.catalog.text.setText("SKU-001")
    qtbot.waitUntil(lambda: w.catalog.table.rowCount() == 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: w.catalog.shown_sku == "SKU-001", timeout=WAIT_MS)
    assert w.catalog.photos.count() == 1
    assert w.catalog.photos.item(0).text() == "photo-of-001.jpg"
    assert w.catalog.images.count() >= 1

    # Learning panel: real counts; fine-tuning is tested on its own below.
    key(w, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: w.learning.stats is not None, timeout=WAIT_MS)
    assert w.learning.stats.confirmed == 3
    assert w.learning.confirmed.text() == "3"
    assert "3 confirmations to learn from" in w.learning.model_note.text()
    assert w.learning.improve.isEnabled() and not w.learning.training
    assert w.learning.versions.rowCount() == 1

    # Importing again offers the same folder and its sheet (without the sheet every product
    # would become a file name).
    w.choose_import()
    assert w.import_setup.folder_edit.text() == str(tmp_path / "supplier")
    assert w.import_setup.sheet_edit.text() == str(sheet)
    w.import_setup.reject()

    # Settings survive a restart.
    w.review.threshold.setValue(65)
    w.close()
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    assert settings.value("library/last") == str(lib_path)
    assert float(settings.value("review/threshold")) == pytest.approx(0.65)


def test_accept_all_confident_asks_first(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    boxes: list[dict[str, Any]],
    engine_calls: EngineCalls,
) -> None:
    w = window
    library_with_catalog(qtbot, w, tmp_path, 8)
    # Nothing to accept yet: the action is off, and its tooltip says why.
    assert not w.act_accept.isEnabled()
    assert w.act_accept.toolTip().startswith("No photo waiting for review has a suggestion")
    # Copied photo files on the clipboard, pasted with Ctrl+V.
    clip = QMimeData()
    clip.setUrls([QUrl.fromLocalFile(str(p)) for p in write_photos(tmp_path / "p", [1, 2, 3])])
    QApplication.clipboard().setMimeData(clip)
    key(w, Qt.Key.Key_V, Qt.KeyboardModifier.ControlModifier)
    wait_matched(qtbot, w, 3)
    w.review.threshold.setValue(1)  # every top suggestion is now "confident"
    assert len(w.model.confident()) == 3
    assert w.act_accept.isEnabled() and "of 3 photos scoring 1% or more" in w.act_accept.toolTip()
    w.review.queue.setFocus()
    key(w, Qt.Key.Key_A)
    question = boxes[-1]
    assert "3 photos scoring" in question["text"]
    assert all(i.status == "confirmed" for i in w.model.items)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    with engine_calls.by_test(), Library(tmp_path / "lib", lock=False) as lib:
        assert len(effective_states(lib)) == 3
        # Taken on the score alone: the scores' calibration must not learn from them.
        assert lib.db.execute("SELECT DISTINCT by_score FROM decisions").fetchall() == [(1,)]

    # Saying No leaves everything as it was.
    w.review.threshold.setValue(100)
    key(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: w.model.counts()["suggested"] == 1, timeout=WAIT_MS)
    w.review.threshold.setValue(1)
    asked = len(boxes)
    QMessageBox.exec = lambda box: (  # type: ignore[method-assign]
        boxes.append({"text": box.text()}) or int(QMessageBox.StandardButton.No)
    )
    key(w, Qt.Key.Key_A)
    assert len(boxes) == asked + 1
    assert w.model.counts()["suggested"] == 1
    # The clipboard owns the mime data in C++; let Qt delete it now, while its Python wrapper
    # is alive and notified, rather than both freeing it at interpreter exit (a crash).
    QApplication.clipboard().clear()


def test_undo_brings_back_a_photo_decided_in_an_earlier_session(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    """Reopening a library lists only undecided photos; Ctrl+Z then took back a decision on
    a photo nobody could see, leaving the queue's counts wrong. Now the photo comes back,
    selected, with its stored suggestions."""
    w = window
    lib_path = library_with_catalog(qtbot, w, tmp_path, 6)
    w.add_paths(write_photos(tmp_path / "p", [1, 2]))
    wait_matched(qtbot, w, 2)
    w.review.queue.setFocus()
    w.session.select_row(0)
    key(w, Qt.Key.Key_Return)
    key(w, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    w.open_library(lib_path)  # as on the next day: nothing undecided to resume
    qtbot.waitUntil(lambda: w.library_status is not None and not w.worker.busy, timeout=WAIT_MS)
    assert w.model.rowCount() == 0
    w.review.queue.setFocus()
    key(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: w.model.rowCount() == 1, timeout=WAIT_MS)
    back = w.model.item(0)
    assert back is not None and back.path.name == "photo-of-002.jpg"
    qtbot.waitUntil(lambda: w.session.current_item() is back, timeout=WAIT_MS)
    assert back.status == "suggested" and len(back.suggestions) == 5
    assert w.model.counts()["suggested"] == 1


def test_photo_messages_go_with_their_photo_and_changes_are_said(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    w = window
    library_with_catalog(qtbot, w, tmp_path, 6)
    w.add_paths(write_photos(tmp_path / "p", [1, 2]))
    wait_matched(qtbot, w, 2)
    bar = w.statusBar()
    w.review.queue.setFocus()
    w.session.select_row(0)
    key(w, Qt.Key.Key_9)
    assert bar.currentMessage() == "There is no suggestion 9 for this photo"
    key(w, Qt.Key.Key_Down)  # another photo: the message about the first one goes
    assert bar.currentMessage() == ""
    w.session.select_row(0)
    key(w, Qt.Key.Key_Return)  # confirm the top match, move on
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    w.session.select_row(0)
    first = w.model.item(0)
    assert first is not None and first.status == "confirmed"
    was, other = first.decided_sku, first.suggestions[1].sku
    key(w, Qt.Key.Key_2)  # replaces the decision: never silently
    assert bar.full_message == (f"{first.path.name}: changed from {was} to {other} (Ctrl+Z undoes)")


def test_unreadable_file_is_counted_and_can_be_taken_off_the_list(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    w = window
    library_with_catalog(qtbot, w, tmp_path, 4)
    photos = write_photos(tmp_path / "p", [1])
    broken = tmp_path / "p" / "broken.jpg"
    broken.write_bytes(b"")
    w.add_paths([*photos, broken])
    wait_matched(qtbot, w, 2)
    assert "0 no match · 1 unreadable" in w.review.queue_title.text()  # the counts add up
    w.review.queue.setFocus()
    w.session.select_row(w.model.row_of(item(w, "broken.jpg").key))
    key(w, Qt.Key.Key_Delete)
    assert [i.path.name for i in w.model.items] == ["photo-of-001.jpg"]
    assert "unreadable" not in w.review.queue_title.text()
    assert w.session.current_item() is w.model.item(0)
    assert "photo 1 of 1" in w.review.photo_title.text()
    w.add_paths(write_photos(tmp_path / "more", [2]))  # the header counts photos added since
    qtbot.waitUntil(lambda: "photo 1 of 2" in w.review.photo_title.text(), timeout=WAIT_MS)
    # Ctrl+Z puts a photo taken off the list back where it was, unless a decision came
    # after the removal: that is undone first.
    qtbot.waitUntil(lambda: item(w, "photo-of-002.jpg").status == "suggested", timeout=WAIT_MS)
    w.session.select_row(0)
    key(w, Qt.Key.Key_Delete)
    assert "Ctrl+Z puts it back" in w.statusBar().full_message
    assert [i.path.name for i in w.model.items] == ["photo-of-002.jpg"]
    key(w, Qt.Key.Key_N)  # no match for photo 2, after the removal
    qtbot.waitUntil(lambda: item(w, "photo-of-002.jpg").status == "no_match", timeout=WAIT_MS)
    key(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: item(w, "photo-of-002.jpg").status != "no_match", timeout=WAIT_MS)
    assert [i.path.name for i in w.model.items] == ["photo-of-002.jpg"]
    key(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert [i.path.name for i in w.model.items] == ["photo-of-001.jpg", "photo-of-002.jpg"]
    assert w.session.current_item() is w.model.item(0)
    assert w.statusBar().full_message == "photo-of-001.jpg is back on the list"


# -- responsiveness -------------------------------------------------------------------------
def test_event_loop_keeps_ticking_during_large_import(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    w = window
    open_library(qtbot, w, tmp_path / "lib")
    sheet = write_catalog(tmp_path / "big", 64)
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    start = time.perf_counter()
    w.import_catalog(tmp_path / "big", sheet)
    qtbot.waitUntil(lambda: w.import_summary is not None, timeout=WAIT_MS)
    elapsed = time.perf_counter() - start
    timer.stop()
    assert w.last_import is not None and w.last_import.added == 64
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert elapsed > 0.5, "import too fast to tell anything"
    # A blocked GUI thread would show one gap as long as the import itself.
    print(f"import {elapsed:.2f}s, {len(ticks)} ticks, longest gap {max(gaps) * 1000:.0f} ms")
    assert max(gaps) < 0.5, f"event loop stalled for {max(gaps):.2f}s"
    assert len(ticks) > elapsed / 0.010 * 0.25


def test_import_progress_and_cancel(qtbot: Any, window: MainWindow, tmp_path: Path) -> None:
    w = window
    open_library(qtbot, w, tmp_path / "lib")
    sheet = write_catalog(tmp_path / "big", 48)
    token = w.import_catalog(tmp_path / "big", sheet)
    dialog = w.import_progress
    assert dialog is not None and dialog.isVisible()
    qtbot.waitUntil(
        lambda: dialog.last is not None and dialog.last.stage.startswith("Encoding"),
        timeout=WAIT_MS,
    )
    assert "of 48)" in dialog.stage.text() and dialog.counts.text().endswith("left in all")
    # One bar for the whole import: while encoding, the keypoints are still to come.
    assert dialog.bar.maximum() == 1000 and dialog.bar.value() < 800
    dialog.cancel_button.click()
    assert token.cancelled
    qtbot.waitUntil(lambda: w.import_summary is not None, timeout=WAIT_MS)
    report = w.last_import
    assert report is not None and report.cancelled and report.added < 48
    assert "cancelled" in w.import_summary.windowTitle().lower()
    w.import_summary.accept()
    # Importing again resumes: only what is missing is encoded.
    import_catalog(qtbot, w, tmp_path / "big", sheet)
    assert w.last_import is not None and not w.last_import.cancelled
    assert w.last_import.added + report.added == 48


def test_long_status_message_fits_beside_the_library_summary(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    """A message used to run under the permanent labels, cut mid-word; now it is elided in
    the middle (a path keeps its file name) and fits again when matching's bar appears."""
    w = window
    w.resize(1280, 720)
    open_library(qtbot, w, tmp_path / "lib")
    bar = w.statusBar()
    fine_tuned = " · model effnet-lite0-shop-20261124-004740"
    w.library_label.setText(w.library_label.full_text() + fine_tuned)
    text = f"Exported 40 rows to {tmp_path / ('a-long-folder-name-' * 8) / 'inventory.csv'}"
    bar.showMessage(text, 60_000)

    def fits() -> bool:  # the library summary is the left-most permanent label
        right = w.library_label.geometry().left()
        return bar.fontMetrics().horizontalAdvance(bar.currentMessage()) < right

    qtbot.waitUntil(fits, timeout=WAIT_MS)
    alone = w.library_label.geometry().left()
    for widget in (w.match_label, w.match_bar, w.match_stop):
        widget.show()
    w.match_label.setText("Matching 12 of 400 photos")
    qtbot.waitUntil(lambda: w.library_label.geometry().left() < alone - 200, timeout=WAIT_MS)
    qtbot.waitUntil(fits, timeout=WAIT_MS)
    shown = bar.currentMessage()
    assert "…" in shown and shown.startswith("Exported 40") and shown.endswith("inventory.csv")
    assert bar.toolTip() == text  # the whole message, while it is cut
    # A long library name in a 1024-px window: the summary gives way, and matching's bar and
    # Stop button stay inside the window (they were pushed past its right edge).
    w.library_label.setText(
        "Shop Deliveries 2024 - Main Store Library (Backup Copy): 81 products"
        " · 41 photos · 2 confirmed" + fine_tuned
    )
    w.resize(1024, 640)
    qtbot.waitUntil(lambda: bar.width() <= 1024, timeout=WAIT_MS)
    qtbot.waitUntil(
        lambda: w.match_stop.geometry().right() <= bar.width() and "…" in w.library_label.text(),
        timeout=WAIT_MS,
    )
    assert w.library_label.full_text().startswith("Shop Deliveries 2024")
    bar.showMessage("Opened lib", 60_000)
    assert bar.currentMessage() == "Opened lib" and bar.toolTip() == ""
    bar.clearMessage()
    assert bar.full_message == "" and bar.toolTip() == ""


def test_first_window_fits_the_screen_with_its_title_bar(window: MainWindow) -> None:
    """No saved geometry: the window and a title bar's room above it fit the usable area
    (a 720-px window on a 720-px screen hid the status bar)."""
    from desktop_app.main_window import TITLE_BAR_PX

    area = window.screen().availableGeometry()  # offscreen: 800x800
    # The minimum (960x600) gives way on a smaller screen, so the window still fits.
    assert window.minimumWidth() == min(960, area.width())
    geo = window.geometry()
    assert geo.top() >= area.top() + TITLE_BAR_PX and geo.bottom() <= area.bottom()
    assert geo.height() == min(720, area.height() - TITLE_BAR_PX)
    assert geo.width() == min(1280, area.width())


def test_narrow_window_keeps_every_toolbar_button(qtbot: Any, window: MainWindow) -> None:
    """At 800 px Undo went behind the toolbar's extension arrow; now the labels go."""
    tb = window.toolbar
    labelled = Qt.ToolButtonStyle.ToolButtonTextBesideIcon
    for width, style in ((1280, labelled), (800, Qt.ToolButtonStyle.ToolButtonIconOnly)):
        window.resize(width, 720)
        qtbot.waitUntil(lambda w=width: window.width() == w, timeout=WAIT_MS)
        assert tb.toolButtonStyle() == style
        qtbot.waitUntil(lambda: tb.widgetForAction(window.act_undo).isVisible(), timeout=WAIT_MS)
        assert all(tb.widgetForAction(a).isVisible() for a in (window.act_open, window.act_accept))
    window.resize(1280, 720)
    qtbot.waitUntil(lambda: tb.toolButtonStyle() == labelled, timeout=WAIT_MS)


def test_photo_title_shortens_the_name_not_the_status(qtbot: Any) -> None:
    """A phone's long file name pushed 'Suggested · photo 7 of 40' out of the header."""
    from desktop_app.review import PhotoTitle

    title = PhotoTitle()
    qtbot.addWidget(title)
    title.show()
    title.resize(420, 30)
    name = "IMG_20240612_delivery_from_supplier_Arla_pallet_3_box_12_front_view_final_v2.jpg"
    title.set_title(name, [("Confirmed: A&B-Milk", "#2e7d32"), ("photo 7 of 40", "#78909c")])
    shown = title.shown_name()
    assert "…" in shown and shown.startswith("IMG_2024") and shown.endswith("v2.jpg")
    assert "A&amp;B-Milk" in title.text() and "photo 7 of 40" in title.text()
    assert title.toolTip() == name
    title.resize(1600, 30)  # room enough: the whole name again
    qtbot.waitUntil(lambda: title.shown_name() == name)


def test_matching_shows_its_time_left(window: MainWindow) -> None:
    """The status bar's matching label gives the batch's time left once a chunk is done,
    measured from when this batch started (not from an earlier one)."""
    w = window
    w._on_matching_progress(0, 24)
    assert w.match_label.isVisible() and w.match_label.text() == "Matching 0 of 24 photos"
    time.sleep(0.05)
    w._on_matching_progress(8, 24)
    assert w.match_label.text().startswith("Matching 8 of 24 photos · about ")
    assert w.match_label.text().endswith(" s left")
    w._on_matching_progress(0, 0)
    assert not w.match_label.isVisible()
    w._on_matching_progress(0, 1)  # the next batch starts its own clock
    assert w.match_label.text() == "Matching 0 of 1 photo"


def test_keypress_overtakes_queued_matching() -> None:
    """Interactive tasks jump the queue: a confirm waits for one chunk at most."""
    worker = EngineWorker()
    order: list[str] = []
    try:
        gate = threading.Event()

        def chunk(name: str) -> Any:
            def run(ctx: TaskContext) -> None:
                gate.wait(5)
                order.append(name)

            return run

        for i in range(4):
            worker.submit(chunk(f"chunk{i}"), what="match", priority=Priority.BACKGROUND)
        worker.submit(
            lambda ctx: order.append("confirm"), what="confirm", priority=Priority.INTERACTIVE
        )
        gate.set()
        deadline = time.monotonic() + 10
        while worker.busy and time.monotonic() < deadline:
            QApplication.processEvents()
            time.sleep(0.01)
        assert order.index("confirm") <= 1
        assert sorted(order) == ["chunk0", "chunk1", "chunk2", "chunk3", "confirm"]
    finally:
        worker.shutdown()


# -- failures reach the user ----------------------------------------------------------------
def test_second_instance_on_same_library_is_refused(
    qtbot: Any, window: MainWindow, tmp_path: Path, boxes: list[dict[str, Any]]
) -> None:
    lib_path = tmp_path / "lib"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from engine.library import Library; l = Library(sys.argv[1]); "
            "print('ready', flush=True); sys.stdin.read()",
            str(lib_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert holder.stdout is not None and holder.stderr is not None
        line = holder.stdout.readline().strip()
        assert line == "ready", holder.stderr.read()
        window.open_library(lib_path)
        qtbot.waitUntil(
            lambda: any("open the library" in b["text"] for b in boxes), timeout=WAIT_MS
        )
        box = boxes[-1]
        assert "already open" in box["informative"]
        assert "Traceback" in box["details"]
        assert window.library_path is None
        assert window.pages.currentWidget() is window.welcome
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)
    open_library(qtbot, window, lib_path)  # free again once the other one closed


def test_second_window_in_same_process_is_refused(
    qtbot: Any, make_window: Any, tmp_path: Path, boxes: list[dict[str, Any]]
) -> None:
    first = make_window("a.ini")
    open_library(qtbot, first, tmp_path / "lib")
    second = make_window("b.ini")
    second.open_library(tmp_path / "lib")
    qtbot.waitUntil(lambda: bool(boxes), timeout=WAIT_MS)
    assert "already open" in boxes[-1]["informative"]
    assert second.library_path is None and first.library_path == tmp_path / "lib"


def test_bad_import_folder_shows_plain_error_with_details(
    qtbot: Any, window: MainWindow, tmp_path: Path, boxes: list[dict[str, Any]]
) -> None:
    open_library(qtbot, window, tmp_path / "lib")
    window.import_catalog(tmp_path / "no-such-folder", None)
    qtbot.waitUntil(lambda: bool(boxes), timeout=WAIT_MS)
    box = boxes[-1]
    assert box["text"] == "<b>Could not import the catalog.</b>"
    assert "catalog folder not found" in box["informative"].lower()
    assert "Traceback" in box["details"] and "FileNotFoundError" in box["details"]
    assert box["icon"] == QMessageBox.Icon.Warning
    qtbot.waitUntil(lambda: window.import_progress is None, timeout=WAIT_MS)
    assert window.pages.currentWidget() is window.welcome  # still says what to do


def test_bad_sheet_is_explained_in_the_preview(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    open_library(qtbot, window, tmp_path / "lib")
    write_catalog(tmp_path / "supplier", 2, sheet=False)
    bad = tmp_path / "supplier" / "sheet.csv"
    bad.write_text("colour,weight\nred,1\n", encoding="utf-8")
    window.choose_import()
    dlg = window.import_setup
    dlg.folder_edit.setText(str(tmp_path / "supplier"))
    dlg.sheet_edit.setText(str(bad))
    dlg.refresh_preview()
    qtbot.waitUntil(lambda: dlg.preview is not None, timeout=WAIT_MS)
    assert dlg.preview.error and "SKU column" in dlg.preview.error
    assert "cannot be used" in dlg.summary.text()
    assert not dlg.buttons.button(dlg.buttons.StandardButton.Ok).isEnabled()
    dlg.reject()


def test_empty_folder_cannot_be_imported(qtbot: Any, window: MainWindow, tmp_path: Path) -> None:
    """A folder without images and no sheet used to 'import' into a summary of zeros."""
    open_library(qtbot, window, tmp_path / "lib")
    # Before any catalog, adding photos or exporting could only lead to empty results.
    assert not window.act_add.isEnabled() and not window.act_export.isEnabled()
    assert window.act_import.isEnabled()
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not a picture", encoding="utf-8")
    window.choose_import()
    dlg = window.import_setup
    dlg.folder_edit.setText(str(tmp_path / "empty"))
    dlg.refresh_preview()
    qtbot.waitUntil(lambda: dlg.preview is not None, timeout=WAIT_MS)
    assert dlg.preview.empty and "Nothing to import" in dlg.summary.text()
    assert not dlg.buttons.button(dlg.buttons.StandardButton.Ok).isEnabled()
    write_catalog(tmp_path / "empty", 1, sheet=False)  # an image arrives: it can go ahead
    dlg.folder_edit.setText(str(tmp_path / "empty" / "images"))
    dlg.refresh_preview()
    # Not before the preview has read it: Enter in a typed path started an empty import.
    assert not dlg.buttons.button(dlg.buttons.StandardButton.Ok).isEnabled()
    qtbot.waitUntil(lambda: dlg.preview is not None, timeout=WAIT_MS)
    assert dlg.buttons.button(dlg.buttons.StandardButton.Ok).isEnabled()
    dlg.reject()


def test_import_summary_asks_to_fix_only_what_can_be_fixed(qtbot: Any) -> None:
    """A picture already in the catalog was listed under 'fix them and import again'."""
    from PySide6.QtWidgets import QLabel

    from desktop_app.import_dialog import ImportSummaryDialog
    from engine.catalog_import import ImportReport

    def heading(report: ImportReport) -> str:
        dialog = ImportSummaryDialog(report)
        qtbot.addWidget(dialog)
        return next(x.text() for x in dialog.findChildren(QLabel) if x.text().endswith(":"))

    same = ("b.jpg", "same picture as a.jpg, skipped")
    assert "(already in the catalog)" in heading(ImportReport(added=1, skipped=[same]))
    broken = ("c.jpg", "empty file (0 bytes)")
    assert "(fix them and import again)" in heading(ImportReport(skipped=[same, broken]))
    # A note (imported, worth a look) is listed, and not as skipped.
    note = ("sheet.csv", "1 product without a picture (K2): never suggested until one is imported")
    only = ImportSummaryDialog(ImportReport(added=1, notes=[note]))
    qtbot.addWidget(only)
    assert heading(ImportReport(added=1, notes=[note])) == (
        "<b>notes</b> (imported; worth a look):"
    )
    assert only.table is not None and only.table.item(0, 1).text() == f"Note: {note[1]}"


# -- entry point, demo, about ---------------------------------------------------------------
def test_main_opens_library_and_quits(qtbot: Any, tmp_path: Path, boxes: Any) -> None:
    lib_path = tmp_path / "lib"
    seen: list[MainWindow] = []

    def poll() -> None:
        wins = [x for x in QApplication.topLevelWidgets() if isinstance(x, MainWindow)]
        if wins and wins[0].library_status is not None:
            seen.append(wins[0])
            wins[0].close()
        else:
            QTimer.singleShot(50, poll)

    QTimer.singleShot(50, poll)
    code = desktop_app_main.main(
        ["--library", str(lib_path), "--settings", str(tmp_path / "s.ini")]
    )
    assert code == 0
    assert seen and seen[0].library_status is not None
    assert seen[0].library_status.path == lib_path
    assert (lib_path / "shopmatch.db").exists()
    settings = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    assert settings.value("library/last") == str(lib_path)
    assert settings.value("window/geometry") is not None


def test_the_app_asked_to_quit_during_an_import_quits(
    qtbot: Any, tmp_path: Path, boxes: Any
) -> None:
    """Cmd+Q or the Dock's Quit (macOS), or a session manager, while a progress dialog is
    open: Qt closes that dialog first, and its close means Cancel and keeps it open until
    the work stops, which refused the quit. The import was cancelled and the app stayed
    open on its summary (review 47)."""
    lib_path = tmp_path / "lib"
    sheet = write_catalog(tmp_path / "supplier", 6)
    asked_to_quit: list[bool] = []

    def poll() -> None:
        wins = [x for x in QApplication.topLevelWidgets() if isinstance(x, MainWindow)]
        if not (wins and wins[0].library_status is not None):
            QTimer.singleShot(50, poll)
            return
        wins[0].import_catalog(tmp_path / "supplier", sheet)
        assert isinstance(QApplication.activeModalWidget(), ProgressDialog)
        asked_to_quit.append(True)
        QApplication.quit()

    QTimer.singleShot(50, poll)
    refused = QTimer()  # still open after this long: the quit was refused
    refused.setSingleShot(True)
    refused.timeout.connect(lambda: QApplication.exit(3))
    refused.start(WAIT_MS)
    # The window closing would post a second quit, left for the next test's event loop
    # (the app's process ends instead): only the quit asked for here.
    QApplication.setQuitOnLastWindowClosed(False)
    try:
        code = desktop_app_main.main(
            ["--library", str(lib_path), "--settings", str(tmp_path / "s.ini")]
        )
    finally:
        refused.stop()
        QApplication.setQuitOnLastWindowClosed(True)
    assert asked_to_quit and code == 0
    with Library(lib_path) as lib:  # closed properly: no lock held, nothing damaged
        assert check_library(lib).ok


def _demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bundled demo of 6 products and 2 photos, in the demo's own layout, used by the app."""
    demo = tmp_path / "demo"
    write_catalog(demo / "x", 6)  # images under x/images, sheet in the demo format below
    (demo / "catalog").mkdir()
    lines = ["sku,name,category,image"]
    for i in range(6):
        src = demo / "x" / "images" / f"SKU-{i:03d}.jpg"
        src.rename(demo / "catalog" / src.name)
        lines.append(f"SKU-{i:03d},Product {i},Cat,catalog/SKU-{i:03d}.jpg")
    (demo / "catalog.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_photos(demo / "photos", [1, 2])
    monkeypatch.setattr(main_window_module, "demo_dir", lambda: demo)
    return demo


def test_the_demo_finishes_an_import_that_was_cut_short(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    engine_calls: EngineCalls,
) -> None:
    """The app quit while the demo imported its catalog: the next demo run found products
    and left the library with some of their pictures for good (review 47: 64 of 81)."""
    demo = _demo(tmp_path, monkeypatch)
    held = tmp_path / "held"
    held.mkdir()
    for name in ("SKU-004.jpg", "SKU-005.jpg"):  # not imported yet when the app quit
        (demo / "catalog" / name).rename(held / name)
    with engine_calls.by_test(), Library(tmp_path / "demo-lib") as lib:
        lib.import_catalog(demo / "catalog", demo / "catalog.csv")
        assert lib.status().catalog_images == 4
    for name in ("SKU-004.jpg", "SKU-005.jpg"):
        (held / name).rename(demo / "catalog" / name)
    window.open_demo(tmp_path / "demo-lib")
    qtbot.waitUntil(lambda: window.import_summary is not None, timeout=WAIT_MS)
    window.import_summary.accept()
    wait_matched(qtbot, window, 2)
    assert window.library_status is not None and window.library_status.catalog_images == 6


def test_demo_imports_catalog_and_queues_photos(
    qtbot: Any, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _demo(tmp_path, monkeypatch)
    window.open_demo(tmp_path / "demo-lib")
    qtbot.waitUntil(lambda: window.import_summary is not None, timeout=WAIT_MS)
    said = window.import_summary.findChildren(QLabel)[0].text()
    # The demo adds its photos itself: not 'Next: drop photos … on the window'.
    assert "photos are matched now" in said and "drop photos" not in said, said
    window.import_summary.accept()
    wait_matched(qtbot, window, 2)
    assert window.library_status is not None
    assert window.pages.currentWidget() is window.tabs
    # Running the demo again neither re-imports nor queues the photos twice.
    window.import_summary = None
    window.open_demo(tmp_path / "demo-lib")
    qtbot.wait(500)
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT_MS)
    assert window.import_summary is None
    assert window.model.rowCount() == 2


def test_about_shows_version_and_model_licence(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    window.show_about()  # works before any library is open (bundled model manifest)
    qtbot.waitUntil(lambda: getattr(window, "about", None) is not None, timeout=WAIT_MS)
    text = window.about.text.text()
    assert "ShopMatch 0." in text
    assert "Apache-2.0" in text
    window.about.close()


def test_menus_and_shortcuts(window: MainWindow) -> None:
    titles = [a.text() for a in window.menuBar().actions()]
    assert titles == ["&File", "&Edit", "&Review", "&View", "&Help"]
    shortcuts = {a.text(): a.shortcut().toString() for a in window.actions()}
    assert shortcuts["&Export Inventory CSV…"] == "Ctrl+E"
    assert shortcuts["&No Match"] == "N"
    assert shortcuts["&Skip"] == "S"
    assert shortcuts["&Undo Last Decision"] == "Ctrl+Z"
    assert shortcuts["Confirm Suggestion 9"] == "9"
    assert window.windowIcon().isNull() is False
    window.resize(1280, 720)
    assert window.width() <= 1280 and window.minimumWidth() <= 1280


def _two_model_library(qtbot: Any, w: MainWindow, tmp_path: Path, calls: EngineCalls) -> str:
    """A library with a matched queue and a second model version installed."""
    from engine.manifest import ModelManifest
    from engine.resources import bundled_model_dir

    lib_path = library_with_catalog(qtbot, w, tmp_path, 6)
    w.add_paths(write_photos(tmp_path / "p", [1, 2]))
    wait_matched(qtbot, w, 2)
    second = bundled_model_dir("mobilenet-v2")
    with calls.by_test(), Library(lib_path, lock=False) as lib:
        lib.install_model(second)  # what the learning update will do after training
    return ModelManifest.load(second).version


def _show_two_versions(qtbot: Any, w: MainWindow) -> None:
    """The learning panel, once it lists both installed model versions."""
    w.tabs.setCurrentWidget(w.learning)
    qtbot.waitUntil(
        lambda: w.learning.stats is not None and len(w.learning.stats.versions) == 2,
        timeout=WAIT_MS,
    )


def _select_version(qtbot: Any, w: MainWindow, version: str) -> None:
    _show_two_versions(qtbot, w)
    row = next(
        r
        for r in range(w.learning.versions.rowCount())
        if w.learning.versions.item(r, 0).text() == version
    )
    w.learning.versions.selectRow(row)
    assert w.learning.switch.isEnabled()


def _switch_in_learning_panel(qtbot: Any, w: MainWindow, version: str) -> None:
    _select_version(qtbot, w, version)
    w.learning.switch.click()
    qtbot.waitUntil(
        lambda: w.library_status is not None and w.library_status.model_version == version,
        timeout=WAIT_MS,
    )


def test_switch_to_another_model_version(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    boxes: list[dict[str, Any]],
    engine_calls: EngineCalls,
) -> None:
    w = window
    before = w.library_status.model_version if w.library_status else None
    version = _two_model_library(qtbot, w, tmp_path, engine_calls)
    assert version != before
    _switch_in_learning_panel(qtbot, w, version)
    assert "Switch matching to model version" in boxes[0]["text"]  # asked first
    qtbot.waitUntil(
        lambda: w.learning.stats is not None and w.learning.stats.model_version == version,
        timeout=WAIT_MS,
    )
    qtbot.waitUntil(lambda: w.model.rowCount() == 2, timeout=WAIT_MS)  # queued again


def test_a_repeated_decision_does_not_hide_an_earlier_removal_from_undo(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    """Enter again on a photo confirmed as that product records nothing: Ctrl+Z undid the
    confirmation instead of bringing back the photo taken off the list after it."""
    w = window
    library_with_catalog(qtbot, w, tmp_path, 6)
    w.add_paths(write_photos(tmp_path / "p", [1, 2, 3]))
    wait_matched(qtbot, w, 3)
    w.review.queue.setFocus()
    first = w.model.item(0)
    w.session.select_row(0)
    key(w, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not w.worker.busy and first.status == "confirmed", timeout=WAIT_MS)
    w.session.select_row(w.model.row_of(item(w, "photo-of-003.jpg").key))
    key(w, Qt.Key.Key_Delete)
    assert "photo-of-003.jpg" not in [i.path.name for i in w.model.items]
    w.session.select_row(w.model.row_of(first.key))
    key(w, Qt.Key.Key_Return)  # the same confirmation again
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    key(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(
        lambda: "photo-of-003.jpg" in [i.path.name for i in w.model.items], timeout=WAIT_MS
    )
    assert first.status == "confirmed"


def test_photos_not_matched_yet_outlive_a_model_switch_and_a_restart(
    qtbot: Any,
    make_window: Any,
    tmp_path: Path,
    engine_calls: EngineCalls,
) -> None:
    """Photos dropped but not matched yet (the queue runs behind) were known only to the
    queue: a model switch or closing the window dropped them without a word."""
    w = make_window()
    version = _two_model_library(qtbot, w, tmp_path, engine_calls)
    waiting = write_photos(tmp_path / "later", [3, 4])
    w.model.add_paths(waiting)  # queued, as a chunk the matcher has not reached
    w.switch_model(version, confirm=False)
    qtbot.waitUntil(
        lambda: w.library_status is not None and w.library_status.model_version == version,
        timeout=WAIT_MS,
    )
    wait_matched(qtbot, w, 4)  # the two matched before, and the two that were waiting
    more = write_photos(tmp_path / "last", [5])
    w.model.add_paths(more)
    w.close()
    again = make_window()  # the same settings, as the next start
    open_library(qtbot, again, tmp_path / "lib")
    qtbot.waitUntil(
        lambda: more[0].name in {i.path.name for i in again.model.items}, timeout=WAIT_MS
    )
    wait_matched(qtbot, again, 5)
    assert item(again, more[0].name).photo_id is not None


def test_remove_a_model_version_not_in_use(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    boxes: list[dict[str, Any]],
    engine_calls: EngineCalls,
) -> None:
    w = window
    version = _two_model_library(qtbot, w, tmp_path, engine_calls)
    _show_two_versions(qtbot, w)
    active = w.learning.stats.model_version
    rows = {w.learning.versions.item(r, 0).text(): r for r in range(2)}
    w.learning.versions.selectRow(rows[active])
    assert not w.learning.remove.isEnabled()  # the version in use (and the bundled one) stays
    _select_version(qtbot, w, version)
    assert w.learning.remove.isEnabled()
    w.learning.remove.click()
    assert f"Remove model version {version}?" in boxes[-1]["text"]  # asked first
    qtbot.waitUntil(lambda: len(w.learning.stats.versions) == 1, timeout=WAIT_MS)
    assert w.learning.status.text() == f"Removed model version {version}."
    assert not (tmp_path / "lib" / "models" / version).exists()
    assert w.library_status.model_version == active


def test_model_versions_show_the_shops_clock(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    engine_calls: EngineCalls,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The Models list said when a version was made in UTC, while `models` on the command
    line, backups and exports all say it in the shop's own time."""
    monkeypatch.setenv("TZ", "Asia/Kolkata")  # UTC+05:30, no daylight saving
    time.tzset()
    try:
        w = window
        _two_model_library(qtbot, w, tmp_path, engine_calls)
        _show_two_versions(qtbot, w)
        for r, v in enumerate(w.learning.stats.versions):
            shown = w.learning.versions.item(r, 3).text()
            assert shown == local_minute(v.created_at)
            assert shown != v.created_at.replace("T", " ")[:16]  # not UTC
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_switching_model_embeds_beside_the_engine_thread(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    boxes: list[dict[str, Any]],
    engine_calls: EngineCalls,
    held_encoding: HeldEncoding,
) -> None:
    w = window
    version = _two_model_library(qtbot, w, tmp_path, engine_calls)
    _show_two_versions(qtbot, w)
    w.switch_model(version, confirm=False)
    held_encoding.engine_answers_meanwhile(qtbot, w)
    qtbot.waitUntil(
        lambda: w.library_status is not None and w.library_status.model_version == version,
        timeout=WAIT_MS,
    )
    assert [name for name, _ in engine_calls.calls].count("activate_model") == 1


def test_switching_to_a_model_whose_files_are_gone_says_why_and_changes_nothing(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    boxes: list[dict[str, Any]],
    engine_calls: EngineCalls,
) -> None:
    """A backup taken before 'models remove' brings back a trained model's row, not its
    folder: the switch failed in the encoder with a bare 'No such file or directory'. It now
    names the model and what is wrong, before any encoding, and the model in use stays."""
    import json

    from engine.manifest import ModelManifest
    from engine.resources import bundled_model_dir

    w = window
    lib_path = library_with_catalog(qtbot, w, tmp_path, 6)
    trained = tmp_path / "v-gone"  # not a bundled version: nothing can restore its files
    shutil.copytree(bundled_model_dir("mobilenet-v2"), trained)
    data = json.loads(ModelManifest.load(trained).to_json())
    data.update(version="v-gone")
    ModelManifest.from_dict(data).save(trained)
    with engine_calls.by_test(), Library(lib_path, lock=False) as lib:
        before = lib.model_version
        lib.install_model(trained)
        shutil.rmtree(lib.model_dir("v-gone"))
    w.switch_model("v-gone", confirm=False)
    qtbot.waitUntil(lambda: bool(boxes), timeout=WAIT_MS)
    said = " ".join(f"{b['text']} {b['informative']} {b['details']}" for b in boxes)
    assert "model v-gone cannot be activated: its manifest is missing" in said
    qtbot.waitUntil(lambda: w.model_progress is None and not w.worker.busy, timeout=WAIT_MS)
    with engine_calls.by_test(), Library(lib_path, lock=False) as lib:
        assert lib.model_version == before


def test_cancelled_switch_keeps_its_vectors_and_changes_nothing(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    boxes: list[dict[str, Any]],
    engine_calls: EngineCalls,
    held_encoding: HeldEncoding,
) -> None:
    w = window
    version = _two_model_library(qtbot, w, tmp_path, engine_calls)
    before = w.library_status.model_version if w.library_status else None
    w.switch_model(version, confirm=False)
    qtbot.waitUntil(held_encoding.started.is_set, timeout=WAIT_MS)
    assert w.model_progress is not None
    w.model_progress.cancel_button.click()
    held_encoding.release.set()
    qtbot.waitUntil(lambda: w.model_progress is None, timeout=WAIT_MS)
    assert "cancelled" in w.statusBar().currentMessage()

    def stored() -> int:
        with engine_calls.by_test(), Library(w.library_path, lock=False) as lib:
            assert lib.model_version == before  # the switch did not happen
            return int(
                lib.db.execute(
                    "SELECT count(*) FROM embeddings WHERE model_version = ?", [version]
                ).fetchone()[0]
            )

    # The batch encoded before the cancel is kept (6 catalog images: one batch).
    qtbot.waitUntil(lambda: stored() == 6, timeout=WAIT_MS)


def test_no_model_switch_while_fine_tuning(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    boxes: list[dict[str, Any]],
    engine_calls: EngineCalls,
) -> None:
    """Both need the worker's pool: a switch would wait, behind a modal dialog, for training."""
    w = window
    version = _two_model_library(qtbot, w, tmp_path, engine_calls)
    _select_version(qtbot, w, version)
    w.learning.config_overrides = dict(TINY_TRAINING, epochs=200)
    w.learning.start_training(confirm=False)
    assert not w.learning.switch.isEnabled()
    w.learning.cancel_training()
    qtbot.waitUntil(lambda: not w.learning.training, timeout=WAIT_MS)
    assert w.learning.switch.isEnabled()


def test_queue_is_matched_again_after_switching_model(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    boxes: list[dict[str, Any]],
    engine_calls: EngineCalls,
) -> None:
    w = window
    version = _two_model_library(qtbot, w, tmp_path, engine_calls)
    _switch_in_learning_panel(qtbot, w, version)
    qtbot.waitUntil(
        lambda: w.model.rowCount() == 2 and all(i.status != "pending" for i in w.model.items),
        timeout=WAIT_MS,
    )
    assert all(i.status == "suggested" and i.suggestions for i in w.model.items)
    assert not [b for b in boxes if "Could not" in b["text"]]


def test_many_qt_calls_do_not_exhaust_none() -> None:
    """PySide6-Essentials 6.12.0 on CPython 3.11 drops a reference to None/True on every void or
    bool call and aborts the interpreter after a few thousand (hence the pin to 6.11.3 in
    pyproject.toml). A normal working day makes tens of thousands of such calls."""
    from PySide6.QtCore import QObject

    obj = QObject()
    none_before, true_before = sys.getrefcount(None), sys.getrefcount(True)
    for _ in range(50_000):
        obj.setObjectName("x")  # void: returns None
        obj.blockSignals(False)  # bool
    assert sys.getrefcount(None) >= none_before - 100
    assert sys.getrefcount(True) >= true_before - 100


# -- fine-tuning from the learning panel -----------------------------------------------------
TINY_TRAINING = {
    "unfreeze": "conv",
    "epochs": 2,
    "batch_size": 16,
    "catalog_views": 4,
    "photo_views": 2,
    "embedding_dim": 64,
    "input_size": 64,
    "cache_backend": "torch",
}


def _library_with_confirmations(
    qtbot: Any, w: MainWindow, tmp_path: Path, calls: EngineCalls
) -> Path:
    lib_path = library_with_catalog(qtbot, w, tmp_path, 6)
    w.add_paths(write_photos(tmp_path / "p", [0, 1, 2, 3, 4, 5]))
    wait_matched(qtbot, w, 6)
    _confirm_by_name(qtbot, w, lib_path, calls, 6)
    return lib_path


def _confirm_by_name(
    qtbot: Any, w: MainWindow, lib_path: Path, calls: EngineCalls, confirmed: int, leave: str = ""
) -> None:
    """Confirm each photo as the product its file is named after (photo-of-003.jpg:
    SKU-003), but those whose path holds ``leave``; then the Learning tab, set for a tiny run."""
    with calls.by_test(), Library(lib_path, lock=False) as lib:
        for photo_id, path in lib.db.execute("SELECT id, path FROM photos").fetchall():
            if not leave or leave not in path:
                lib.confirm(int(photo_id), f"SKU-{int(Path(path).stem[-3:]):03d}")
    w.tabs.setCurrentWidget(w.learning)
    qtbot.waitUntil(lambda: w.learning.stats is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: w.learning.stats.confirmed == confirmed, timeout=WAIT_MS)
    w.learning.config_overrides = dict(TINY_TRAINING)


def _training_underway(qtbot: Any, w: MainWindow, tmp_path: Path, calls: EngineCalls) -> Path:
    """A library with confirmations, and a long fine-tuning run (200 epochs) training on
    the pool; returns the library."""
    lib_path = _library_with_confirmations(qtbot, w, tmp_path, calls)
    w.learning.config_overrides["epochs"] = 200
    w.learning.start_training(confirm=False)
    _wait_training_step(qtbot, w)
    return lib_path


def _wait_training_step(qtbot: Any, w: MainWindow) -> None:
    """Until the model trains on the pool (step 2), beside the engine thread."""
    qtbot.waitUntil(
        lambda: w.learning.job is not None and w.learning.job.result is None, timeout=WAIT_MS
    )


def test_improve_model_trains_beside_matching_gates_and_stores_the_comparison(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    boxes: list[dict[str, Any]],
    engine_calls: EngineCalls,
    held_encoding: HeldEncoding,
) -> None:
    w = window
    lib_path = _library_with_confirmations(qtbot, w, tmp_path, engine_calls)
    before = w.learning.stats.model_version
    assert w.learning.improve.isEnabled()
    assert re.search(r"Fine-tuning takes about [12] minutes? here", w.learning.status.text())
    w.learning.improve.click()
    assert "Fine-tune the image model" in boxes[-1]["text"]  # asked first
    # ... saying how long it takes for this library (6 products, a few photos: 1-2 minutes).
    assert re.search(r"takes about [12] minutes? here", boxes[-1]["informative"])
    _wait_training_step(qtbot, w)
    assert w.learning.train_box.isVisible() and not w.learning.improve.isEnabled()
    # The engine thread is free while the model trains: a query round-trips mid-training.
    answered: list[int] = []
    w.worker.submit(lambda ctx: ctx.lib.status().products, what="t", on_result=answered.append)
    qtbot.waitUntil(lambda: answered == [6], timeout=WAIT_MS)
    assert w.learning.job is not None and w.learning.job.result is None  # still training
    # One bar for the whole run: once the candidate embeds, the cache and the epochs are
    # done, so the bar stands at their share of the plan, the run's time left beside it.
    qtbot.waitUntil(held_encoding.started.is_set, timeout=120_000)
    clock, bar = w.learning.clock, w.learning.train_bar
    assert clock is not None and clock.stages[:2] == [STAGE_CACHE, STAGE_TRAIN]
    trained = round(1000 * sum(clock.weights[:2]) / clock.total)
    qtbot.waitUntil(lambda: bar.value() >= trained, timeout=WAIT_MS)
    assert bar.maximum() == 1000 and bar.value() < 1000
    assert re.fullmatch(r"about \d+ (s|min) left", w.learning.train_eta.text())
    # ... and while the candidate embeds every reference image for the gate.
    held_encoding.engine_answers_meanwhile(qtbot, w)
    qtbot.waitUntil(lambda: w.learning.last_report is not None, timeout=120_000)
    qtbot.waitUntil(lambda: not w.learning.training, timeout=WAIT_MS)
    report = w.learning.last_report
    assert report is not None and report.version and report.decision is not None
    assert "embed_s" in report.timings  # the gate's embedding was done off the engine thread
    # Said on the page and in the status bar, not in a box that would take the keys.
    assert w.learning.outcome.isVisible() and "Model kept" in w.learning.outcome.text()
    assert report.decision.reason in w.learning.outcome.text()
    assert w.statusBar().full_message.startswith(f"Model kept: {report.decision.reason}")
    assert QApplication.activeModalWidget() is None
    with engine_calls.by_test(), Library(lib_path, lock=False) as lib:
        stored = {m["version"]: m for m in lib.models()}
        metrics = stored[report.version]["metrics"]
        assert metrics["gate"]["candidate"] and metrics["gate"]["active"]
        active = lib.model_version
        assert not list(lib_path.glob(".learning-*"))  # the scratch folder is gone
    # Six confirmations, one per product: none can be held out, so nothing proves the new
    # model better on real photos and it is not used (the catalog self-check alone let worse
    # models in); it stays as a version to try.
    assert not report.activated and report.decision.candidate.heldout.n == 0
    assert active == before and metrics["status"] == "refused"
    assert "kept" in w.learning.status.text()
    assert report.decision.reason in w.learning.status.text()
    assert "to try by hand" in w.learning.status.text()
    assert w.learning.improve.isEnabled() and not w.learning.train_box.isVisible()
    # The version list says what the gate made of the new version, and why, on hover.
    _show_two_versions(qtbot, w)
    table, last = w.learning.versions, w.learning.versions.columnCount() - 1
    assert table.horizontalHeaderItem(last).text() == "Status"
    row = next(r for r in range(table.rowCount()) if table.item(r, 0).text() == report.version)
    qtbot.waitUntil(lambda: table.item(row, last).text() == "refused by the check", timeout=WAIT_MS)
    status = table.item(row, last)
    assert f"Verdict: {report.decision.reason}." in status.toolTip()
    assert "simulated photos of the catalog: top-1" in table.item(row, 0).toolTip()
    other = 1 - row
    assert "Not compared" in table.item(other, 0).toolTip()  # the bundled model
    # Tried by hand: matching uses it, and it learnt from every confirmation.
    _switch_in_learning_panel(qtbot, w, report.version)
    qtbot.waitUntil(lambda: w.learning.stats.model_version == report.version, timeout=WAIT_MS)
    assert w.learning.stats.new_confirmations == 0
    assert "since it was trained" not in w.learning.model_note.text()


def _run_that_kept_the_model(qtbot: Any, w: MainWindow, tmp_path: Path, calls: EngineCalls) -> Any:
    """A fine-tuning run whose gate kept the active model (six confirmations: none can be
    held out), its version kept to try by hand; the Learning page on show."""
    _library_with_confirmations(qtbot, w, tmp_path, calls)
    w.learning.start_training(confirm=False)
    qtbot.waitUntil(lambda: w.learning.last_report is not None, timeout=300_000)
    qtbot.waitUntil(lambda: not w.learning.training and not w.worker.busy, timeout=WAIT_MS)
    report = w.learning.last_report
    assert report.version and not report.activated
    w.tabs.setCurrentWidget(w.learning)
    assert "Model kept" in w.learning.outcome.text() and w.learning.outcome.isVisible()
    assert "stays under Model versions" in w.learning.status.text()
    return report


def test_the_runs_outcome_does_not_say_the_model_was_kept_once_its_version_is_used_by_hand(
    qtbot: Any, window: MainWindow, tmp_path: Path, engine_calls: EngineCalls
) -> None:
    """A run kept the active model ('Model kept … kept the active model', its version 'to
    try by hand'); staff then tried that version by hand. Under the version table that now
    showed it in use, the Learning page went on saying the active model was kept and that
    version stayed under Model versions to try by hand: a run's outcome stayed until the
    next run or another library, whatever model was used meanwhile (review 34)."""
    w = window
    report = _run_that_kept_the_model(qtbot, w, tmp_path, engine_calls)
    w.switch_model(report.version, confirm=False)
    qtbot.waitUntil(
        lambda: w.library_status is not None and w.library_status.model_version == report.version,
        timeout=WAIT_MS,
    )
    w.tabs.setCurrentWidget(w.learning)
    qtbot.waitUntil(lambda: w.learning.stats.model_version == report.version, timeout=WAIT_MS)
    shown = w.learning.outcome.text() if w.learning.outcome.isVisible() else ""
    assert "kept the active model" not in shown, shown
    assert "stays under Model versions" not in w.learning.status.text()
    assert w.learning.status.text().startswith("Fine-tuning takes")  # the hint again


def test_the_runs_outcome_goes_once_its_version_is_removed(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    boxes: list[dict[str, Any]],
    engine_calls: EngineCalls,
) -> None:
    """The run's version, kept to try by hand, removed ('Remove version…'): the page went
    on offering it under the outcome of its run (review 34)."""
    w = window
    report = _run_that_kept_the_model(qtbot, w, tmp_path, engine_calls)
    _select_version(qtbot, w, report.version)
    w.learning.remove.click()
    qtbot.waitUntil(lambda: len(w.learning.stats.versions) == 1, timeout=WAIT_MS)
    assert w.learning.status.text() == f"Removed model version {report.version}."
    assert not w.learning.outcome.isVisible(), w.learning.outcome.text()


def test_improve_model_can_be_cancelled_and_changes_nothing(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    boxes: list[dict[str, Any]],
    engine_calls: EngineCalls,
) -> None:
    w = window
    lib_path = _library_with_confirmations(qtbot, w, tmp_path, engine_calls)
    with engine_calls.by_test(), Library(lib_path, lock=False) as lib:
        before = (lib.model_version, len(lib.models()))
    w.learning.config_overrides["epochs"] = 200  # long enough to cancel mid-way
    w.learning.start_training(confirm=False)
    _wait_training_step(qtbot, w)
    w.learning.train_cancel.click()
    qtbot.waitUntil(lambda: not w.learning.training, timeout=WAIT_MS)
    assert "cancelled" in w.learning.status.text()
    assert w.learning.last_report is None
    with engine_calls.by_test(), Library(lib_path, lock=False) as lib:
        assert (lib.model_version, len(lib.models())) == before
    assert not list(lib_path.glob(".learning-*"))
    # Another library: the outcome of a run on the old one gives way to the hint.
    open_library(qtbot, w, tmp_path / "other")
    assert "cancelled" not in w.learning.status.text()
    assert w.learning.status.text().startswith("Fine-tuning takes")


def test_opening_another_library_mid_training_asks_first(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    boxes: list[dict[str, Any]],
    engine_calls: EngineCalls,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It stopped the run without a word, and the other library's Learning page then said
    'Fine-tuning cancelled'."""
    w = window
    lib_path = _training_underway(qtbot, w, tmp_path, engine_calls)
    with monkeypatch.context() as said_no:
        said_no.setattr(main_window_module, "ask", lambda *_a, **_k: False)
        w.open_library(tmp_path / "other")
    assert w.learning.training and w.library_path == lib_path
    open_library(qtbot, w, tmp_path / "other")
    assert "still being fine-tuned" in boxes[-1]["text"]
    qtbot.waitUntil(lambda: not w.learning.training, timeout=WAIT_MS)
    assert "cancelled" not in w.learning.status.text()
    # Gone once the training step stops (between batches), after the page has left the run.
    qtbot.waitUntil(lambda: not list(lib_path.glob(".learning-*")), timeout=WAIT_MS)


def test_the_app_quitting_mid_training_stops_it_without_asking(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    boxes: list[dict[str, Any]],
    engine_calls: EngineCalls,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The application quitting (a logout, Ctrl+Q from the desktop, app.quit()) cannot be
    refused, yet it asked 'Quit anyway?': a 'No' left the window open and training and the
    engine thread running into Python's exit."""
    w = window
    lib_path = _training_underway(qtbot, w, tmp_path, engine_calls)
    asked: list[object] = []
    monkeypatch.setattr(main_window_module, "ask", lambda *a, **_k: asked.append(a) or False)
    w.quit_now()
    assert not asked
    assert not w.isVisible() and w.worker.stopped
    # The library is free (no lock held) and the run left nothing that its next opening
    # does not clear: the scratch folder of the stopped step goes then.
    with engine_calls.by_test(), Library(lib_path) as lib:
        assert len(lib.models()) == 1
    assert not list(lib_path.glob(".learning-*"))


def test_a_sigterm_while_quit_anyway_is_asked_still_quits(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    boxes: list[dict[str, Any]],
    engine_calls: EngineCalls,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """X clicked during fine-tuning asks 'Quit anyway?'; a SIGTERM (a logout, a service
    stop) comes while it is asked: its handler ran quit_now() inside the question's loop,
    and close() does nothing on a window already closing, so the signal was lost: window,
    question and training all stayed (review 47)."""
    w = window
    _training_underway(qtbot, w, tmp_path, engine_calls)

    def sigterm_while_asked(*_a: Any, **_k: Any) -> bool:
        w.quit_now()  # the signal handler, run by the app's wake timer in the question's loop
        return False  # the question then goes, unanswered

    monkeypatch.setattr(main_window_module, "ask", sigterm_while_asked)
    w.close()
    assert not w.isVisible() and w.worker.stopped and not w.learning.training


def test_a_close_that_outlasts_a_training_step_keeps_collecting_on_the_gui_thread(
    qtbot: Any, window: MainWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Closing the window stops every timer, the garbage collector's too: once a step that
    cannot be cancelled outlasted the engine's shutdown, nothing collected at all."""
    w = window
    step = Uncancellable(w.worker)
    shutdown = EngineWorker.shutdown
    monkeypatch.setattr(EngineWorker, "shutdown", lambda self, timeout_ms=200: shutdown(self, 200))
    try:
        w.close()
        assert not w.worker.stopped
        assert w.worker._collector._timer.isActive()
    finally:
        step.gate.set()
    qtbot.waitUntil(lambda: w.worker.stopped and gc.isenabled(), timeout=WAIT_MS)


def test_opening_another_library_while_the_new_model_is_checked_does_not_leave_training_on(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    boxes: list[dict[str, Any]],
    engine_calls: EngineCalls,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Another library opened in a run's last seconds (the check, activation, pruning old
    versions: a VACUUM on a big library): the run's answer belonged to the old library and
    was dropped, so the Learning page said 'training' for good: Cancel did nothing,
    'Improve model…' stayed greyed out and quitting asked whether to stop fine-tuning."""
    import engine.learning as learning

    w = window
    _library_with_confirmations(qtbot, w, tmp_path, engine_calls)
    in_last_step, go_on = threading.Event(), threading.Event()
    original = learning.prune_unused

    def slow_prune(*a: Any, **k: Any) -> list[str]:  # the real one, after a pause
        in_last_step.set()
        go_on.wait(timeout=60)
        return original(*a, **k)

    monkeypatch.setattr(learning, "prune_unused", slow_prune)
    w.learning.start_training(confirm=False)
    qtbot.waitUntil(in_last_step.is_set, timeout=120_000)
    w.open_library(tmp_path / "other")  # 'still being fine-tuned... open anyway?': Yes
    go_on.set()
    qtbot.waitUntil(
        lambda: w.library_status is not None and w.library_status.path == tmp_path / "other",
        timeout=WAIT_MS,
    )
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)  # the old run has answered
    assert not w.learning.training, w.learning.train_stage.text()
    assert w.learning.improve.isEnabled()
    assert not w.learning.train_box.isVisible()
    assert not list((tmp_path / "lib").glob(".learning-*"))  # its scratch folder is gone


def test_the_new_models_check_does_not_wait_behind_a_delivery_dropped_during_training(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    boxes: list[dict[str, Any]],
    engine_calls: EngineCalls,
    held_encoding: HeldEncoding,
) -> None:
    """A delivery dropped while the model trained: the run's last step (the check and
    activation, seconds) waited behind every photo of it, the bar standing still at
    'Embedding with the new model' while all were matched with the old model, and then,
    the new model active, all were matched again."""
    w = window
    _library_with_confirmations(qtbot, w, tmp_path, engine_calls)
    w.learning.start_training(confirm=False)
    qtbot.waitUntil(held_encoding.started.is_set, timeout=120_000)  # trained and exported
    delivery = [p for k in range(10) for p in write_photos(tmp_path / f"d{k}", [0, 1, 2, 3], k + 1)]
    w.tabs.setCurrentWidget(w.review)
    w.add_paths(delivery)  # 40 photos: 10 chunks of matching
    qtbot.waitUntil(lambda: w.session.matching, timeout=WAIT_MS)
    held_encoding.release.set()
    qtbot.waitUntil(lambda: w.learning.last_report is not None, timeout=300_000)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=300_000)
    names = [name for name, _ in engine_calls.calls]
    gate = names.index("store_embeddings")  # the last step's first write: the new vectors
    last_match = len(names) - 1 - names[::-1].index("match")
    assert gate < last_match, "the check waited for every queued photo to be matched first"


def test_cancel_while_the_candidate_embeds_changes_nothing(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    boxes: list[dict[str, Any]],
    engine_calls: EngineCalls,
    held_encoding: HeldEncoding,
) -> None:
    w = window
    lib_path = _library_with_confirmations(qtbot, w, tmp_path, engine_calls)
    with engine_calls.by_test(), Library(lib_path, lock=False) as lib:
        before = (lib.model_version, len(lib.models()))
    w.learning.start_training(confirm=False)
    qtbot.waitUntil(held_encoding.started.is_set, timeout=120_000)  # trained and exported
    w.learning.train_cancel.click()
    held_encoding.release.set()
    qtbot.waitUntil(lambda: not w.learning.training, timeout=WAIT_MS)
    assert "cancelled" in w.learning.status.text()
    with engine_calls.by_test(), Library(lib_path, lock=False) as lib:
        assert (lib.model_version, len(lib.models())) == before  # nothing installed
    assert not list(lib_path.glob(".learning-*"))


def _three_photos_each(qtbot: Any, w: MainWindow, tmp_path: Path, calls: EngineCalls) -> Path:
    """6 products, 3 confirmed photos of each (18: the split holds 3 out), plus one photo of
    SKU-005 matched but not decided yet, all listed in the Review queue."""
    lib_path = library_with_catalog(qtbot, w, tmp_path, 6)
    for k in range(3):
        w.add_paths(write_photos(tmp_path / f"day{k}", [0, 1, 2, 3, 4, 5], k + 1))
        wait_matched(qtbot, w, 6 * (k + 1))
    w.add_paths(write_photos(tmp_path / "late", [5], 8))
    wait_matched(qtbot, w, 19)
    _confirm_by_name(qtbot, w, lib_path, calls, 18, leave="/late/")
    return lib_path


def _select_in_queue(w: MainWindow, photo_id: int) -> None:
    """The photo selected in the Review queue, which has the keys."""
    row = w.model.row_of_photo(photo_id)
    assert row >= 0
    w.tabs.setCurrentWidget(w.review)
    w.review.queue.setFocus()
    w.session.select_row(row)


def _decisions_written(qtbot: Any, w: MainWindow) -> None:
    """Until every decision made in the window is written to the library."""
    qtbot.waitUntil(
        lambda: not any(t.priority == Priority.INTERACTIVE for t in w.worker._tasks.values()),
        timeout=WAIT_MS,
    )


def test_the_check_scores_held_out_photos_by_their_decision_when_it_runs(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    boxes: list[dict[str, Any]],
    engine_calls: EngineCalls,
    held_encoding: HeldEncoding,
) -> None:
    """Staff keep reviewing while the model trains. A photo kept aside to test the new model
    that they then marked 'no match' (it had been confirmed as the wrong product) still
    counted in the check minutes later, as that wrong product; one confirmed again as
    another product was scored as the first one."""
    from engine.training.gate import as_they_stand

    w = window
    _three_photos_each(qtbot, w, tmp_path, engine_calls)
    w.learning.start_training(confirm=False)
    qtbot.waitUntil(held_encoding.started.is_set, timeout=120_000)  # training data read
    held = w.learning.job.data.heldout
    assert len(held) == 3
    wrong, other = held[0].ref_id, held[1]
    _select_in_queue(w, wrong)
    key(w, Qt.Key.Key_N)  # not that product after all
    now = "SKU-000" if other.sku != "SKU-000" else "SKU-001"
    _select_in_queue(w, other.ref_id)
    w.session.confirm_sku(now)  # another product
    _decisions_written(qtbot, w)
    held_encoding.release.set()
    qtbot.waitUntil(lambda: w.learning.last_report is not None, timeout=120_000)
    report = w.learning.last_report
    assert report.decision is not None
    # 2: the photo staff said is not that product is no proof of anything
    assert report.decision.candidate.heldout.n == 2, report.decision.candidate.heldout
    with engine_calls.by_test(), Library(tmp_path / "lib", lock=False) as lib:
        assert lib.photo_state(wrong).status == "no_match"
        scored = {s.ref_id: s.sku for s in as_they_stand(lib, held)}
    assert wrong not in scored and scored[other.ref_id] == now


def test_confirmations_made_while_the_model_trained_count_as_new_for_it(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    boxes: list[dict[str, Any]],
    engine_calls: EngineCalls,
    held_encoding: HeldEncoding,
) -> None:
    """The Learning page's 'N new confirmations since it was trained' was today's count less
    the count when the run read its data: staff who, during the run, took a confirmation
    back ('no match') and confirmed a new photo left the count as it was, and the page said
    the model had learnt from every confirmation, the new one included."""
    w = window
    _three_photos_each(qtbot, w, tmp_path, engine_calls)
    late = next(i for i in w.model.items if "/late/" in str(i.path))
    w.learning.start_training(confirm=False)
    qtbot.waitUntil(held_encoding.started.is_set, timeout=120_000)  # training data read
    _select_in_queue(w, w.learning.job.data.photos[0].ref_id)
    key(w, Qt.Key.Key_N)
    _select_in_queue(w, late.photo_id)
    w.session.confirm_sku("SKU-005")
    qtbot.waitUntil(lambda: late.status == "confirmed", timeout=WAIT_MS)
    _decisions_written(qtbot, w)
    held_encoding.release.set()
    qtbot.waitUntil(lambda: w.learning.last_report is not None, timeout=120_000)
    qtbot.waitUntil(lambda: not w.learning.training, timeout=WAIT_MS)
    version = w.learning.last_report.version
    w.switch_model(version, confirm=False)  # refused (too few held out): tried by hand
    qtbot.waitUntil(
        lambda: w.library_status is not None and w.library_status.model_version == version,
        timeout=WAIT_MS,
    )
    w.tabs.setCurrentWidget(w.learning)
    w.learning.refresh()
    qtbot.waitUntil(lambda: w.learning.stats.model_version == version, timeout=WAIT_MS)
    assert w.learning.stats.new_confirmations == 1, w.learning.model_note.text()
    assert "1 new confirmation since it was trained" in w.learning.model_note.text()


# -- matching points ("why this match?") -----------------------------------------------------
def test_matching_points_are_drawn_between_photo_and_suggestion(
    qtbot: Any, window: MainWindow, tmp_path: Path, engine_calls: EngineCalls
) -> None:
    w = window
    library_with_catalog(qtbot, w, tmp_path, 6)
    w.add_paths(write_photos(tmp_path / "p", [3]))
    wait_matched(qtbot, w, 1)
    w.review.queue.setCurrentIndex(w.model.index(0, 0))
    top, second = w.model.items[0].suggestions[:2]
    assert top.sku == "SKU-003" and top.inliers >= 10 and second.inliers == 0
    card0, card1 = w.review.cards[:2]
    assert card0.points.isVisible() and card0.points.text() == f"{top.inliers} points"
    assert not card1.points.isVisible()  # nothing verified: no link to an empty drawing
    card0.points.click()
    dialog = w.session.points_dialog
    assert dialog is not None and w.model.items[0].status == "suggested"  # not confirmed
    qtbot.waitUntil(lambda: dialog.view is not None, timeout=WAIT_MS)
    assert dialog.view.matches.inliers >= 10 and dialog.view.sku == "SKU-003"
    assert "matching points" in dialog.caption.text()
    canvas = dialog.canvas
    assert len(canvas.photo_points) == min(dialog.view.matches.inliers, 150)
    # The lines cross the gap between the two images: coloured pixels in its middle column.
    image = canvas.grab().toImage()
    left, right = canvas.layout_rects()
    x = round((left.right() + right.left()) / 2 * image.devicePixelRatio())
    coloured = sum(
        1
        for y in range(image.height())
        if QColor(image.pixel(x, y)).saturationF() > 0.5
        and QColor(image.pixel(x, y)).valueF() > 0.4
    )
    assert coloured >= 5
    dialog.close()
    # P opens it for the top suggestion too
    key(w, Qt.Key.Key_P)
    qtbot.waitUntil(
        lambda: (
            w.session.points_dialog is not dialog
            and w.session.points_dialog is not None
            and w.session.points_dialog.view is not None
        ),
        timeout=WAIT_MS,
    )
    w.session.points_dialog.close()


def test_repairs_made_on_open_are_shown(
    qtbot: Any, window: MainWindow, tmp_path: Path, engine_calls: EngineCalls
) -> None:
    lib_path = tmp_path / "lib"
    with engine_calls.by_test(), Library(lib_path) as lib:
        model_file = lib.model_dir(lib.model_version) / "model.onnx"
    model_file.write_bytes(b"not a model any more")
    w = window
    open_library(qtbot, w, lib_path)
    qtbot.waitUntil(lambda: getattr(w, "repairs_box", None) is not None, timeout=WAIT_MS)
    assert w.repairs_box.isVisible()
    assert "repaired" in w.repairs_box.detailedText()
    assert model_file.stat().st_size > 1_000_000  # the bundled copy is back
    w.repairs_box.close()


def test_a_damaged_database_is_offered_its_backup_on_open(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    engine_calls: EngineCalls,
    boxes: list[dict[str, Any]],
) -> None:
    lib_path = tmp_path / "lib"
    write_catalog(tmp_path / "supplier", 3)
    with engine_calls.by_test(), Library(lib_path) as lib:
        lib.import_catalog(tmp_path / "supplier", tmp_path / "supplier" / "sheet.csv")
        lib.take_backup()
    with open(lib_path / "shopmatch.db", "r+b") as f:
        f.write(b"not a database at all!")
    w = window
    open_library(qtbot, w, lib_path)  # the user said Yes to putting back the backup
    question = next(b for b in boxes if "is damaged and cannot be opened" in b["text"])
    assert "Put back the backup of" in question["text"]
    assert "Decisions made after that backup are recovered" in question["informative"]
    assert w.library_status is not None and w.library_status.products == 3
    qtbot.waitUntil(lambda: getattr(w, "repairs_box", None) is not None, timeout=WAIT_MS)
    assert "put back the backup of" in w.repairs_box.detailedText()
    assert w.repairs_box.text() == "ShopMatch put back the library's newest backup."
    # What came back of the later decisions is said in the box, not only in its details.
    assert "no decision was made after it" in w.repairs_box.informativeText()
    w.repairs_box.close()
    # File > Back Up Library Now: a backup on request, said in the status bar.
    before = len(list((lib_path / "backups").glob("shopmatch-*.db")))
    w.act_backup.trigger()
    qtbot.waitUntil(
        lambda: "Library backed up to" in w.statusBar().currentMessage(), timeout=WAIT_MS
    )
    assert len(list((lib_path / "backups").glob("shopmatch-*.db"))) == before + 1
    assert "Last backup: 20" in w.library_label.toolTip()
    # Backups that start failing (here the folder replaced by a file) are said, not only
    # logged: the half-hourly check shows why in the status bar and the summary's tooltip.
    (lib_path / "backups").rename(tmp_path / "old-backups")
    (lib_path / "backups").write_text("not a folder")
    w.backup_if_due()
    qtbot.waitUntil(
        lambda: "No backup of the library can be taken" in w.statusBar().full_message,
        timeout=WAIT_MS,
    )
    assert "No backup can be taken: its backups folder is a file" in w.library_label.toolTip()


def test_check_and_repair_from_the_file_menu(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    engine_calls: EngineCalls,
    boxes: list[dict[str, Any]],
) -> None:
    """A database damaged while the library opens fine: File > Check and Repair Library
    shows what the check found, repairs when asked (the backup put back, the decision made
    after it read back), and the window reopens the repaired library."""
    lib_path = tmp_path / "lib"
    write_catalog(tmp_path / "supplier", 4)
    photos = write_photos(tmp_path / "p", [1, 2])
    with engine_calls.by_test(), Library(lib_path) as lib:
        lib.import_catalog(tmp_path / "supplier", tmp_path / "supplier" / "sheet.csv")
        done = list(lib.match(photos))
        lib.confirm(done[0].photo_id)  # type: ignore[arg-type]
        lib.take_backup()
        lib.confirm(done[1].photo_id, "SKU-002")  # after the backup
        page = lib.db.execute(
            "SELECT pageno FROM dbstat WHERE name = 'embeddings' AND pagetype = 'leaf' LIMIT 1"
        ).fetchone()[0]
    with open(lib_path / "shopmatch.db", "r+b") as f:  # one page of stored vectors wiped
        f.seek((page - 1) * 4096)
        f.write(b"\xff" * 4096)
    w = window
    open_library(qtbot, w, lib_path)
    assert w.act_check.isEnabled()
    w.act_check.trigger()  # the user says Yes to repairing
    qtbot.waitUntil(lambda: w.checker.box is not None, timeout=WAIT_MS)
    question = next(b for b in boxes if "Repair it now?" in b["text"])
    assert question["text"] == "The check found 1 problem. Repair it now?"
    assert "error: database: the library database is damaged" in question["informative"]
    assert w.checker.box.text() == "The library was repaired."
    assert "1 decision made after it recovered" in w.checker.box.informativeText()
    qtbot.waitUntil(lambda: w.library_status is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    assert w.library_status.confirmed == 2  # type: ignore[union-attr]
    w.checker.box.close()
    # Checked again: in good order.
    w.checker.box = None
    w.act_check.trigger()
    qtbot.waitUntil(lambda: w.checker.box is not None, timeout=WAIT_MS)
    assert w.checker.box.text() == "The library is in good order."
    assert w.checker.box.informativeText().startswith("library OK (4 products")
    w.checker.box.close()
    # A task that meets a damaged database offers the same, in words for the window.
    w.checker.box = None
    w.show_task_error(
        "export", TaskError(sqlite3.DatabaseError("database disk image is malformed"), "")
    )
    assert boxes[-1]["text"] == (
        "Could not export: the library database is damaged. Check and repair it now?"
    )
    qtbot.waitUntil(lambda: w.checker.box is not None, timeout=WAIT_MS)


def test_catalog_browser_hides_columns_no_product_fills(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    """A catalog without a sheet has no suppliers or prices: their empty columns no longer
    take the room of the names."""
    w = window
    open_library(qtbot, w, tmp_path / "lib")
    write_catalog(tmp_path / "supplier", 4, sheet=False)
    import_catalog(qtbot, w, tmp_path / "supplier" / "images", None)
    key(w, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    table = w.catalog.table
    qtbot.waitUntil(lambda: table.rowCount() == 4 and not w.worker.busy, timeout=WAIT_MS)
    assert table.isColumnHidden(3) and table.isColumnHidden(4)
    assert not table.isColumnHidden(1) and table.item(0, 0).text() == "SKU-000"


def test_catalog_browser_pages_as_the_list_is_scrolled(
    qtbot: Any, window: MainWindow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 100k-product catalog loads one page at a time; the rest follows on scrolling."""
    from desktop_app import catalog_browser

    monkeypatch.setattr(catalog_browser, "PAGE", 5)
    w = window
    library_with_catalog(qtbot, w, tmp_path, 12)
    table = w.catalog.table
    table.setFixedHeight(
        table.horizontalHeader().height() + 3 * table.verticalHeader().defaultSectionSize()
    )
    key(w, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: table.rowCount() == 5 and not w.worker.busy, timeout=WAIT_MS)
    assert "scroll down for more" in w.catalog.count.text()
    assert table.item(0, 0).text() == "SKU-000"  # A to Z, not Qt's first-click Z to A
    assert not table.isColumnHidden(3) and not table.isColumnHidden(4)  # suppliers, prices
    seen: set[int] = set()

    def scroll_to_end() -> bool:  # as a user keeps scrolling while pages arrive
        table.verticalScrollBar().setValue(table.verticalScrollBar().maximum())
        seen.add(table.rowCount())
        return table.rowCount() == 12

    qtbot.waitUntil(scroll_to_end, timeout=WAIT_MS)
    assert seen <= {5, 10, 12}  # whole pages only
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    skus = sorted(table.item(r, 0).text() for r in range(table.rowCount()))
    assert skus == [f"SKU-{i:03d}" for i in range(12)]  # every product once, none twice
    assert "more" not in w.catalog.count.text()
    w.catalog.text.setText("SKU-01")  # a new filter starts again from its first page
    qtbot.waitUntil(lambda: table.rowCount() == 2, timeout=WAIT_MS)


# -- review 15 -------------------------------------------------------------------------------
def test_export_asks_before_replacing_the_name_with_csv_added(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    boxes: list[dict[str, Any]],
    engine_calls: EngineCalls,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Typed 'inventory': the dialog checked that name, the app saves 'inventory.csv', so it
    asks before replacing one kept there; No keeps it, Yes replaces it."""
    sheet = write_catalog(tmp_path / "sup", 2)
    with engine_calls.by_test(), Library(tmp_path / "lib") as lib:
        lib.import_catalog(tmp_path / "sup", sheet)
    kept = tmp_path / "inventory.csv"
    kept.write_bytes(b"yesterday's counts\r\n")
    w = window
    open_library(qtbot, w, tmp_path / "lib")
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    answer_export(monkeypatch)
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "inventory"), "")
    )
    with monkeypatch.context() as m:
        m.setattr(QMessageBox, "exec", lambda box: int(QMessageBox.StandardButton.No))
        w.last_export = None
        w.act_export.trigger()
        qtbot.wait(300)
        qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    assert w.last_export is None and kept.read_bytes() == b"yesterday's counts\r\n"
    w.act_export.trigger()  # boxes answers Yes
    qtbot.waitUntil(lambda: w.last_export is not None, timeout=WAIT_MS)
    assert w.last_export[0] == kept and "counts" not in kept.read_text()
    assert "inventory.csv already exists" in boxes[-1]["text"]


def test_export_dialog_reads_back_what_was_chosen(qtbot: Any) -> None:
    """Each 'Photos' entry gives its scope; Enter exports (Cancel was the default button)."""
    from datetime import date

    from engine.photo_scope import PhotoFolder, PhotoScope

    dialog = ExportDialog(None, [PhotoFolder(Path("/shop/in/del-1"), 3, None)], 3, "tab")
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.export_button.isDefault()
    first = dialog.choice()
    assert first.scope is None and first.separator == "tab" and first.per == "photo"
    dialog.choose("day", day=date(2026, 11, 2))
    assert dialog.day.isEnabled()
    assert dialog.choice().scope == PhotoScope.day(date(2026, 11, 2))
    assert dialog.choice().name_hint == "2026-11-02"
    dialog.choose("folder", Path("/shop/in/del-1"))
    assert not dialog.day.isEnabled()
    assert dialog.choice().scope == PhotoScope(folder=Path("/shop/in/del-1"))
    dialog.undecided.setChecked(True)
    dialog.rows.setCurrentIndex(dialog.rows.findData("sku"))
    assert not dialog.undecided.isEnabled() and not dialog.choice().include_undecided
    QTest.keyClick(dialog, Qt.Key.Key_Return)
    assert dialog.result() == QDialog.DialogCode.Accepted


def test_export_one_delivery_from_the_dialog(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    boxes: list[dict[str, Any]],
    engine_calls: EngineCalls,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A shop books in one delivery at a time: the dialog offers each photo folder (newest
    first) and a day, keeps the library's separator, and a name typed as 'stock.xlsx' is
    saved as 'stock.csv' (it became 'stock.xlsx.csv')."""
    sheet = write_catalog(tmp_path / "sup", 4)
    with engine_calls.by_test(), Library(tmp_path / "lib") as lib:
        lib.import_catalog(tmp_path / "sup", sheet)
        lib.set_setting("export_separator", "semicolon")
        for day, skus in (("monday", [0, 1]), ("tuesday", [2, 3])):
            for m, i in zip(lib.match(write_photos(tmp_path / day, skus)), skus, strict=True):
                lib.confirm(m.photo_id, f"SKU-{i:03d}")
    w = window
    open_library(qtbot, w, tmp_path / "lib")
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    seen: list[ExportDialog] = []
    tuesday = (tmp_path / "tuesday").resolve()
    answer_export(monkeypatch, kind="folder", per="sku", folder=tuesday, seen=seen)
    asked: list[str] = []

    def save_as(_parent: object, _title: str, suggested: str, _filter: str) -> tuple[str, str]:
        asked.append(suggested)
        return str(tmp_path / "stock.xlsx"), ""

    monkeypatch.setattr(QFileDialog, "getSaveFileName", save_as)
    w.last_export = None
    w.act_export.trigger()
    qtbot.waitUntil(lambda: w.last_export is not None, timeout=WAIT_MS)
    dialog = seen[0]
    offered = [dialog.photos.itemData(i) for i in range(dialog.photos.count())]
    assert [f for kind, f in offered if kind == "folder"] == [tuesday, tuesday.parent / "monday"]
    assert dialog.separator.currentData() == "semicolon"
    assert Path(asked[0]).name.startswith("inventory-tuesday-")
    assert w.last_export == (tmp_path / "stock.csv", 2)
    assert not (tmp_path / "stock.xlsx.csv").exists()
    table = list(
        csv.DictReader((tmp_path / "stock.csv").read_text("utf-8-sig").splitlines(), delimiter=";")
    )
    assert {r["sku"]: r["quantity"] for r in table} == {"SKU-002": "1", "SKU-003": "1"}
    assert "Exported 2 rows (photos in tuesday) to" in w.statusBar().full_message

    # Yesterday's delivery: none; the status bar says so rather than '0 rows' alone.
    answer_export(monkeypatch, kind="yesterday")
    w.last_export = None
    w.act_export.trigger()
    qtbot.waitUntil(lambda: w.last_export is not None, timeout=WAIT_MS)
    assert w.last_export[1] == 0
    assert "(none of the photos added on" in w.statusBar().full_message
    assert not [b for b in boxes if "Could not" in b["text"]]


def test_catalog_detail_counts_every_confirmed_photo_and_decodes_off_the_gui_thread(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    engine_calls: EngineCalls,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A product confirmed more often than the detail shows: the labels give the real
    totals (they counted the capped lists), only the newest are listed, and no thumbnail is
    decoded on the GUI thread (hundreds were: ~300 ms frozen at 400 photos)."""
    from conftest import photo_of, product_image
    from desktop_app import catalog_browser, previews

    monkeypatch.setattr(catalog_browser, "SHOWN", 3, raising=False)
    sup, ph = tmp_path / "sup", tmp_path / "ph"
    sup.mkdir()
    ph.mkdir()
    product_image(0).save(sup / "A.jpg")
    product_image(1).save(sup / "B.jpg")
    for i in range(7):
        photo_of(product_image(0), i).save(ph / f"{i}.jpg", quality=80)
    with engine_calls.by_test(), Library(tmp_path / "lib") as lib:
        lib.import_catalog(sup, None)
        for m in lib.match([ph]):
            lib.confirm(m.photo_id, "A")
    gui, on_gui = threading.get_ident(), []
    real_read = previews.read_scaled

    def read_scaled(path: Path, side: int) -> QImage:
        on_gui.append(threading.get_ident() == gui)
        return real_read(path, side)

    monkeypatch.setattr(previews, "read_scaled", read_scaled)
    w = window
    open_library(qtbot, w, tmp_path / "lib")
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    key(w, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    c = w.catalog
    qtbot.waitUntil(lambda: c.shown_sku == "A" and not w.worker.busy, timeout=WAIT_MS)
    assert "(7; 3 of 7 shown" in c.photos_label.text()
    assert "(8)" in c.images_label.text() and "7 of them" in c.images_label.text()
    assert (c.images.count(), c.photos.count()) == (1 + 3, 3)
    names = [c.photos.item(i).text() for i in range(3)]
    assert names == ["4.jpg", "5.jpg", "6.jpg"]  # the newest
    views = (c.images, c.photos)
    qtbot.waitUntil(
        lambda: all(not v.item(i).icon().isNull() for v in views for i in range(v.count())),
        timeout=WAIT_MS,
    )
    assert on_gui and not any(on_gui)


def test_catalog_list_is_sorted_by_the_library_page_by_page(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    engine_calls: EngineCalls,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Over one page of products, the list shows the first products in the order its header
    says (the first page came by name and was re-sorted by SKU: SKU-000 was not on it), and
    another column or direction fetches the list anew in that order."""
    from desktop_app import catalog_browser

    monkeypatch.setattr(catalog_browser, "PAGE", 5)
    sup = tmp_path / "sup"
    sup.mkdir()
    rows = [f"SKU-{i:03d},{chr(ord('Z') - i)} product," for i in range(12)]
    (sup / "sheet.csv").write_text("sku,name,image\n" + "\n".join(rows) + "\n")
    with engine_calls.by_test(), Library(tmp_path / "lib") as lib:
        lib.import_catalog(sup, sup / "sheet.csv")
    w = window
    open_library(qtbot, w, tmp_path / "lib")
    table = w.catalog.table
    table.setFixedHeight(
        table.horizontalHeader().height() + 3 * table.verticalHeader().defaultSectionSize()
    )
    key(w, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: table.rowCount() == 5 and not w.worker.busy, timeout=WAIT_MS)

    def shown() -> list[str]:
        return [table.item(r, 0).text() for r in range(table.rowCount())]

    assert shown() == [f"SKU-{i:03d}" for i in range(5)]
    qtbot.waitUntil(lambda: w.catalog.shown_sku == "SKU-000", timeout=WAIT_MS)
    header = table.horizontalHeader()
    header.setSortIndicator(1, Qt.SortOrder.AscendingOrder)  # as a click on "Name" does
    qtbot.waitUntil(lambda: shown()[:1] == ["SKU-011"] and not w.worker.busy, timeout=WAIT_MS)
    assert shown() == [f"SKU-{i:03d}" for i in range(11, 6, -1)]  # O, P, Q... product
    header.setSortIndicator(0, Qt.SortOrder.DescendingOrder)
    qtbot.waitUntil(lambda: shown()[:1] == ["SKU-011"] and not w.worker.busy, timeout=WAIT_MS)
    assert shown() == [f"SKU-{i:03d}" for i in range(11, 6, -1)]

    def scroll_to_end() -> bool:
        table.verticalScrollBar().setValue(table.verticalScrollBar().maximum())
        return table.rowCount() == 12

    qtbot.waitUntil(scroll_to_end, timeout=WAIT_MS)
    assert shown() == [f"SKU-{i:03d}" for i in range(11, -1, -1)]  # appended, never re-sorted


def test_withdrawn_products_are_marked_and_searched_last(
    qtbot: Any, window: MainWindow, tmp_path: Path, engine_calls: EngineCalls
) -> None:
    """A product that left the supplier's catalog (never suggested) was listed in the
    Catalog tab and in Ctrl+F results like the others: it is marked, and comes last."""
    sup = tmp_path / "sup"
    sup.mkdir()
    (sup / "sheet.csv").write_text("sku,name,image\nA,Apple juice,\nB,Apricot jam,\n")
    with engine_calls.by_test(), Library(tmp_path / "lib") as lib:
        lib.import_catalog(sup, sup / "sheet.csv")
        lib.db.execute("UPDATE products SET withdrawn_at = '2026-03-01T10:00:00' WHERE sku = 'A'")
    w = window
    open_library(qtbot, w, tmp_path / "lib")
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    w.review.search.setText("ap")
    results = w.review.results
    qtbot.waitUntil(lambda: results.count() == 2, timeout=WAIT_MS)
    labels = [results.item(i).text() for i in range(2)]
    assert labels[0].startswith("Apricot jam") and "no longer in the catalog" not in labels[0]
    assert labels[1].startswith("Apple juice (no longer in the catalog)"), labels
    key(w, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    table = w.catalog.table
    qtbot.waitUntil(lambda: table.rowCount() == 2 and not w.worker.busy, timeout=WAIT_MS)
    assert [table.item(r, 0).text() for r in range(2)] == ["B", "A"]
    assert table.item(1, 1).text() == "Apple juice (no longer in the catalog)"
    assert "since 2026-03-01" in table.item(1, 0).toolTip()
    w.catalog.show_sku("A")
    qtbot.waitUntil(lambda: w.catalog.shown_sku == "A", timeout=WAIT_MS)
    assert "No longer in the supplier's catalog" in w.catalog.title.text()


# -- review 18 (real window): findings fixed ------------------------------------------------
def drop_product(folder: Path, sku: str) -> None:
    """The supplier's updated sheet no longer lists ``sku``, and its picture is gone."""
    (folder / "images" / f"{sku}.jpg").unlink()
    lines = (folder / "sheet.csv").read_text(encoding="utf-8").splitlines()
    (folder / "sheet.csv").write_text(
        "\n".join(x for x in lines if not x.startswith(f"{sku},")) + "\n", encoding="utf-8"
    )


def test_queue_stops_offering_a_product_the_reimport_withdrew(
    qtbot: Any, window: MainWindow, tmp_path: Path, boxes: list[dict[str, Any]]
) -> None:
    """Photos matched, then the supplier's updated sheet drops a product: the queue kept
    offering it first (Enter confirmed a product no longer in the catalog)."""
    w = window
    lib_path = library_with_catalog(qtbot, w, tmp_path, 6)
    write_photos(tmp_path / "photos", [2])
    w.add_paths([tmp_path / "photos" / "photo-of-002.jpg"])
    wait_matched(qtbot, w, 1)
    assert w.model.item(0).suggestions[0].sku == "SKU-002"
    drop_product(tmp_path / "supplier", "SKU-002")
    import_catalog(qtbot, w, tmp_path / "supplier", tmp_path / "supplier" / "sheet.csv")
    with library_db(lib_path) as db:
        (gone,) = db.execute("SELECT withdrawn_at FROM products WHERE sku='SKU-002'").fetchone()
        assert gone
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    qtbot.wait(500)
    offered = [s.sku for s in w.model.item(0).suggestions]
    assert "SKU-002" not in offered, offered


def test_queue_offers_a_product_the_import_adds_and_keeps_decisions(
    qtbot: Any, window: MainWindow, tmp_path: Path, boxes: list[dict[str, Any]]
) -> None:
    """A photo of a product the catalog did not have yet, matched, then the supplier's next
    sheet adds it: the photo offered only the old catalog's products until it was dropped
    again. Undecided photos are searched again (no re-encoding); decided ones stay as decided."""
    w = window
    write_catalog(tmp_path / "supplier", 6)
    lib_path = tmp_path / "lib"
    open_library(qtbot, w, lib_path)
    import_catalog(qtbot, w, tmp_path / "supplier", tmp_path / "supplier" / "sheet.csv")
    w.add_paths(write_photos(tmp_path / "photos", [7, 1]))
    wait_matched(qtbot, w, 2)
    assert all(s.sku != "SKU-007" for s in w.model.item(0).suggestions)
    w.session.select_row(1)
    key(w, Qt.Key.Key_Return)  # photo-of-001: confirmed before the new sheet comes
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    confirmed = w.model.item(1).decided_sku
    write_catalog(tmp_path / "supplier", 8)  # the same six pictures, and two new products
    import_catalog(qtbot, w, tmp_path / "supplier", tmp_path / "supplier" / "sheet.csv")
    qtbot.waitUntil(
        lambda: (
            bool(w.model.item(0).suggestions) and w.model.item(0).suggestions[0].sku == "SKU-007"
        ),
        timeout=WAIT_MS,
    )
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    assert (w.model.item(1).status, w.model.item(1).decided_sku) == ("confirmed", confirmed)
    with library_db(lib_path) as db:
        assert db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 1


def test_pasting_a_word_does_not_queue_a_folder_of_the_working_directory(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl+V with plain text on the clipboard (a word copied from an e-mail, say 'photos'):
    the text is taken as a path relative to the app's working folder (the user's home when
    started from the menu), and a folder of that name there is queued whole: every picture
    in it is matched and stored in the library, and undecided photos come back at every
    start."""
    from PySide6.QtCore import QMimeData

    w = window
    library_with_catalog(qtbot, w, tmp_path, 3)
    home = tmp_path / "home"
    write_photos(home / "photos", [0, 1, 2])
    monkeypatch.chdir(home)
    mime = QMimeData()
    mime.setText("photos")
    assert w.add_from_mime(mime) == 0
    mime.setText("/")  # a whole disk: never meant
    assert w.add_from_mime(mime) == 0
    qtbot.wait(500)
    assert w.model.rowCount() == 0, [i.path for i in w.model.items]
    assert "Nothing to add" in w.statusBar().full_message
    mime.setText(f'"{home / "photos"}"')  # a whole path, quoted as Windows copies it
    assert w.add_from_mime(mime) == 1
    qtbot.waitUntil(lambda: w.model.rowCount() == 3, timeout=WAIT_MS)


def test_cancelling_the_removal_question_says_nothing_was_imported(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """'This import would take 5 of the 6 pictures ... out': Cancel (the default button,
    and Escape). The progress dialog vanishes and nothing at all says that the import did
    not happen: no summary, no status-bar message; the products of the new sheet are
    silently not imported."""
    from PySide6.QtWidgets import QMessageBox

    w = window
    library_with_catalog(qtbot, w, tmp_path, 6)
    few = tmp_path / "supplier" / "new.csv"
    few.write_text("sku,image\nSKU-000,images/SKU-000.jpg\nNEW-1,\n", encoding="utf-8")
    asked: list[str] = []

    def cancel(box: QMessageBox) -> int:
        asked.append(box.text())
        return int(QMessageBox.StandardButton.Cancel)

    monkeypatch.setattr(QMessageBox, "exec", cancel)
    w.statusBar().clearMessage()
    w.import_catalog(tmp_path / "supplier", few)
    qtbot.waitUntil(lambda: bool(asked) and not w.worker.busy, timeout=WAIT_MS)
    qtbot.wait(300)
    said = w.statusBar().full_message
    assert said.startswith("Import cancelled: nothing was imported"), said
    assert w.import_summary is None or not w.import_summary.isVisible()


def _confirm_while_matching(qtbot: Any, w: MainWindow, tmp_path: Path) -> tuple[Path, int]:
    """40 photos dropped; a matched one is confirmed with Enter while the rest still match
    (the decision waits in the engine queue behind the running chunk of matching)."""
    from conftest import photo_of, product_image

    lib_path = library_with_catalog(qtbot, w, tmp_path, 8)
    write_photos(tmp_path / "photos", list(range(8)))
    for n in range(8, 40):  # more photos: copies under other names would be duplicates
        photo_of(product_image(n % 8), 1000 + n).save(
            tmp_path / "photos" / f"extra-{n:03d}.jpg", quality=88
        )
    w.add_paths([tmp_path / "photos"])
    qtbot.waitUntil(
        lambda: w.model.rowCount() == 40 and any(i.status == "suggested" for i in w.model.items),
        timeout=WAIT_MS,
    )
    first = next(i for i in w.model.items if i.status == "suggested")
    assert any(i.status == "pending" for i in w.model.items)  # matching still runs
    w.session.select_row(w.model.row_of(first.key))
    key(w, Qt.Key.Key_Return)
    assert first.status == "confirmed" and first.photo_id is not None  # shown at once
    return lib_path, first.photo_id


def test_a_decision_made_while_matching_runs_survives_closing_the_window(
    qtbot: Any, window: MainWindow, tmp_path: Path, engine_calls: Any
) -> None:
    """The window closed at once after Enter (end of the shift): closing cancelled every
    queued task, and the confirmation shown on screen was never recorded."""
    lib_path, photo_id = _confirm_while_matching(qtbot, window, tmp_path)
    window.close()
    with engine_calls.by_test(), Library(lib_path) as lib:
        assert lib.photo_state(photo_id).status == "confirmed"


def test_a_decision_made_while_matching_runs_survives_opening_another_library(
    qtbot: Any, window: MainWindow, tmp_path: Path, engine_calls: Any
) -> None:
    """The same, but another library opened at once: the open ran first (it was queued
    ahead of everything) and the decision, now for a closed library, was dropped."""
    lib_path, photo_id = _confirm_while_matching(qtbot, window, tmp_path)
    open_library(qtbot, window, tmp_path / "other")
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT_MS)
    window.close()
    with engine_calls.by_test(), Library(lib_path) as lib:
        assert lib.photo_state(photo_id).status == "confirmed"


def test_accept_confident_does_not_silently_confirm_a_withdrawn_product(
    qtbot: Any, window: MainWindow, tmp_path: Path, boxes: list[dict[str, Any]]
) -> None:
    """Same stale queue as above, then Accept All Confident: the photo is confirmed as the
    withdrawn product and, unlike a single confirm, no warning is given (accept_confident
    drops Decision.warning)."""
    w = window
    lib_path = library_with_catalog(qtbot, w, tmp_path, 6)
    write_photos(tmp_path / "photos", [2])
    w.add_paths([tmp_path / "photos" / "photo-of-002.jpg"])
    wait_matched(qtbot, w, 1)
    drop_product(tmp_path / "supplier", "SKU-002")
    import_catalog(qtbot, w, tmp_path / "supplier", tmp_path / "supplier" / "sheet.csv")
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    said: list[str] = []
    w.session.message.connect(said.append)
    w.review.threshold.setValue(1)
    w.session.select_row(0)
    key(w, Qt.Key.Key_A)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    qtbot.wait(300)
    with library_db(lib_path) as db:
        confirmed = [r[0] for r in db.execute("SELECT sku FROM decisions WHERE action = 'confirm'")]
    assert "SKU-002" not in confirmed or any("no longer" in m for m in said), (confirmed, said)
