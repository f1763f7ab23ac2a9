"""Catalog tab: its detail shows whole pictures and photos confirmed since it was opened, and
products sort as people read their names (accents folded, schema v7), in the real window
(offscreen) and the real engine."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlite_utils

from conftest import write_photos
from engine import backups
from engine.db import DB_NAME, MIGRATIONS, SCHEMA_VERSION, register_functions
from engine.library import Library

try:  # the window's tests need Qt; the library's (sort order, upgrade) run without it
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtGui import QImage
    from PySide6.QtWidgets import QListWidget
    from test_desktop import (  # noqa: F401  (fixtures)
        WAIT_MS,
        boxes,
        engine_calls,
        key,
        library_with_catalog,
        make_window,
        wait_matched,
        window,
    )

    from desktop_app.catalog_browser import IMAGE_SIDE, PHOTO_SIDE, CatalogBrowser
    from desktop_app.main_window import MainWindow
except (ImportError, pytest.skip.Exception):  # test_desktop skips itself without them
    HAS_QT = False
else:
    HAS_QT = True
needs_qt = pytest.mark.skipif(not HAS_QT, reason="needs PySide6 and pytest-qt")

NAMES = {  # as a supplier's sheet spells them; in reading order: apple, Brot, Éclair, ...
    "P1": "Zucchini",
    "P2": "Éclair",
    "P3": "apple",
    "P4": "Œufs frais",
    "P5": "Brot",
}
READ_ORDER = ["apple", "Brot", "Éclair", "Œufs frais", "Zucchini"]


def names(lib: Library, text: str = "", **kw: Any) -> list[str]:
    return [str(p["name"]) for p in lib.products(text, **kw)]


def shows_a_picture(view: QListWidget, row: int, side: int) -> bool:
    """Whether the item's icon is a loaded thumbnail (opaque at its centre), not nothing."""
    item = view.item(row)
    if item is None or item.icon().isNull():
        return False
    img = item.icon().pixmap(side, side).toImage()
    return not img.isNull() and img.pixelColor(img.width() // 2, img.height() // 2).alpha() > 0


# -- (9) whole pictures -------------------------------------------------------------------------


@needs_qt
def test_catalog_detail_shows_the_whole_reference_image(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Catalog tab, a product clicked: its reference image and the photo confirmed to it were
    cut to a strip ~14 px high (the list's uniform item size was the first cell's, measured
    before its thumbnail arrived). Seen on every product of the demo in the real window; here
    the thumbnails arrive a little later (as from a slow disk), so the lists are always laid
    out first."""
    original = CatalogBrowser._on_thumb

    def late(self: CatalogBrowser, k: object, img: QImage) -> None:
        QTimer.singleShot(300, lambda: original(self, k, img))

    monkeypatch.setattr(CatalogBrowser, "_on_thumb", late)
    w = window
    library_with_catalog(qtbot, w, tmp_path, 3)
    write_photos(tmp_path / "photos", [1])
    w.add_paths([tmp_path / "photos" / "photo-of-001.jpg"])
    wait_matched(qtbot, w, 1)
    assert w.model.item(0).suggestions[0].sku == "SKU-001"
    w.session.select_row(0)
    key(w, Qt.Key.Key_Return)
    qtbot.waitUntil(
        lambda: w.model.item(0).status == "confirmed" and not w.worker.busy, timeout=WAIT_MS
    )
    key(w, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    w.catalog.show_sku("SKU-001")
    qtbot.waitUntil(lambda: w.catalog.shown_sku == "SKU-001", timeout=WAIT_MS)
    images, photos = w.catalog.images, w.catalog.photos
    qtbot.waitUntil(
        lambda: (
            images.count() == 2
            and photos.count() == 1
            and all(shows_a_picture(images, r, IMAGE_SIDE) for r in range(2))
            and shows_a_picture(photos, 0, PHOTO_SIDE)
        ),
        timeout=WAIT_MS,
    )
    qtbot.wait(300)
    for view, side in ((images, IMAGE_SIDE), (photos, PHOTO_SIDE)):
        for r in range(view.count()):
            rect = view.visualItemRect(view.item(r))
            assert rect.height() >= side and rect.width() >= side, (view, r, rect)


# -- (6) photos confirmed since the tab was opened ----------------------------------------------


@needs_qt
def test_catalog_detail_shows_a_photo_confirmed_since_it_was_opened(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
) -> None:
    """Catalog tab open on a product ('Photos confirmed to this product — none yet'); back
    to Review, a photo confirmed as that product; back to the Catalog tab: it still said
    'none yet' (the tab reloaded only after an import or another library)."""
    w = window
    library_with_catalog(qtbot, w, tmp_path, 4)
    write_photos(tmp_path / "photos", [0])
    w.add_paths([tmp_path / "photos" / "photo-of-000.jpg"])
    wait_matched(qtbot, w, 1)
    assert w.model.item(0).suggestions[0].sku == "SKU-000"
    key(w, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)  # Catalog tab
    qtbot.waitUntil(lambda: w.catalog.shown_sku == "SKU-000" and not w.worker.busy, timeout=WAIT_MS)
    assert "none yet" in w.catalog.photos_label.text()
    assert "(1)" in w.catalog.images_label.text()
    key(w, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)  # Review
    w.session.select_row(0)
    key(w, Qt.Key.Key_Return)
    qtbot.waitUntil(
        lambda: w.model.item(0).status == "confirmed" and not w.worker.busy, timeout=WAIT_MS
    )
    key(w, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    label = w.catalog.photos_label
    qtbot.waitUntil(lambda: "none yet" not in label.text(), timeout=WAIT_MS)
    assert w.catalog.shown_sku == "SKU-000"
    assert "(1)" in label.text(), label.text()
    assert w.catalog.photos.item(0).text() == "photo-of-000.jpg"
    # The photo became a reference image too (instant memory): counted there as well.
    assert "(2) — 1 of them your confirmed photos" in w.catalog.images_label.text()


# -- (10) reading order -------------------------------------------------------------------------


@pytest.fixture
def supplier(tmp_path: Path) -> Path:
    sup = tmp_path / "sup"
    sup.mkdir()
    rows = "".join(f"{sku},{name},Épicerie\n" for sku, name in NAMES.items())
    (sup / "sheet.csv").write_text("sku,name,category\n" + rows, encoding="utf-8")
    return sup


def test_catalog_sorts_accented_names_among_the_others(supplier: Path, tmp_path: Path) -> None:
    """Catalog tab, Name header clicked (Library.products(order='name')): 'Éclair' and
    'Œufs' were listed after 'Zucchini' (COLLATE NOCASE folds ASCII only), though search
    forgives accents; in no language does É sort after Z. Either way, page by page."""
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(supplier, supplier / "sheet.csv")
        assert names(lib, order="name") == READ_ORDER
        assert names(lib, order="name", descending=True) == READ_ORDER[::-1]
        pages = [names(lib, order="name", limit=2, offset=o) for o in (0, 2, 4)]
        assert [n for page in pages for n in page] == READ_ORDER
        assert names(lib, order="category") == READ_ORDER  # one category: then by name
        # A short search (no trigram index walk) keeps the order and forgives accents.
        assert names(lib, "e") == ["apple", "Éclair", "Œufs frais"]
        assert names(lib, "É") == ["apple", "Éclair", "Œufs frais"]
        assert names(lib, "oe") == ["Œufs frais"]


def test_categories_and_suppliers_sort_as_read_too(tmp_path: Path) -> None:
    """The Category and Supplier headers sort the same way: 'Épicerie' between 'Boissons'
    and 'Frais', not after 'Zeste'."""
    sup = tmp_path / "sup"
    sup.mkdir()
    rows = ["A,a,Zeste,Ölmühle", "B,b,Épicerie,Bäckerei", "C,c,Boissons,Zott", "D,d,Frais,Alpro"]
    (sup / "sheet.csv").write_text(
        "sku,name,category,supplier\n" + "\n".join(rows) + "\n", encoding="utf-8"
    )
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(sup, sup / "sheet.csv")
        assert [p["sku"] for p in lib.products("", order="category")] == ["C", "B", "D", "A"]
        assert [p["sku"] for p in lib.products("", order="supplier")] == ["D", "B", "A", "C"]
        # The filter lists too (they sorted by bytes: 'Épicerie' and 'Ölmühle' last).
        from engine.overview import distinct_values

        assert distinct_values(lib, "category") == ["Boissons", "Épicerie", "Frais", "Zeste"]
        assert distinct_values(lib, "supplier") == ["Alpro", "Bäckerei", "Ölmühle", "Zott"]


def test_products_with_equal_folded_names_page_without_repeats(tmp_path: Path) -> None:
    """Names and SKUs that fold alike ('Äpple', 'Apple', 'APPLE'; SKUs 'x1' and 'X1') sort
    together ('Äpple' came after every 'Apple') by SKU, and the raw SKU breaks the last tie,
    so a product is on exactly one page whichever the page size."""
    sup = tmp_path / "sup"
    sup.mkdir()
    rows = ["x1,Apple", "X1,apple", "b,APPLE", "a,Äpple", "c,Apple"]
    (sup / "sheet.csv").write_text("sku,name\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(sup, sup / "sheet.csv")
        assert [p["sku"] for p in lib.products("", order="name")] == ["a", "b", "c", "X1", "x1"]
        for descending in (False, True):
            every = [p["sku"] for p in lib.products("", order="name", descending=descending)]
            assert sorted(every) == sorted(r.split(",")[0] for r in rows)
            for size in (1, 2, 3):
                paged = [
                    p["sku"]
                    for o in range(0, len(rows), size)
                    for p in lib.products(
                        "", order="name", descending=descending, limit=size, offset=o
                    )
                ]
                assert paged == every, (descending, size)


def test_a_page_walks_the_sort_key_index(supplier: Path, tmp_path: Path) -> None:
    """A page by name or SKU walks its partial index in order and stops after the page: no
    sort of every product (bench/bench_scale.py, 100k products), with or without a short
    search."""
    from engine.library import _FOLDED_CONTAINS, PRODUCT_ORDERS

    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(supplier, supplier / "sheet.csv")
        for order, index in (("name", "products_current_name"), ("sku", "products_current_sku")):
            for direction in ("", " DESC"):
                sort = ", ".join(c + direction for c in PRODUCT_ORDERS[order])
                for text in ("", f" AND {_FOLDED_CONTAINS}"):
                    sql = (
                        f"EXPLAIN QUERY PLAN SELECT * FROM products WHERE sku != :exact{text} "
                        f"AND withdrawn_at IS NULL ORDER BY {sort} LIMIT 50 OFFSET 0"
                    )
                    plan = " ".join(r[3] for r in lib.db.execute(sql, {"exact": "", "f": "e"}))
                    assert f"USING INDEX {index}" in plan and "TEMP B-TREE" not in plan, plan


def v6_library(lib_dir: Path) -> None:
    """A library as schema 6 wrote it: products with accents, one withdrawn, and v6's
    triggers and partial indexes (COLLATE NOCASE)."""
    lib_dir.mkdir()
    with contextlib.closing(sqlite_utils.Database(lib_dir / DB_NAME)) as db:
        register_functions(db.conn)  # v6's triggers call it, as ShopMatch 6 registered it
        for migration in MIGRATIONS[:6]:
            migration(db)
        db.execute("PRAGMA user_version = 6")
        now = "2026-01-01T00:00:00+00:00"
        db["products"].insert_all(
            [
                {"sku": sku, "name": name, "created_at": now, "updated_at": now}
                for sku, name in {**NAMES, "W1": "Ærø cheese", "W2": "Ananas"}.items()
            ]
        )
        db.execute("UPDATE products SET withdrawn_at = ? WHERE sku IN ('W1', 'W2')", [now])
        db.conn.commit()


def test_a_schema_6_library_is_upgraded_to_the_reading_order(tmp_path: Path) -> None:
    """An existing library (schema 6) opened by this ShopMatch: backed up first, its
    products get their sort keys, sorted as read (withdrawn ones last), and the keys follow
    later renames and new products."""
    lib_dir = tmp_path / "lib"
    v6_library(lib_dir)
    assert SCHEMA_VERSION > 6
    with Library(lib_dir) as lib:
        assert lib.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert names(lib) == [*READ_ORDER, "Ærø cheese", "Ananas"]
        assert names(lib, "ae") == ["Ærø cheese"]
        lib.db.execute("UPDATE products SET name = 'Ändive' WHERE sku = 'P1'")
        lib.db["products"].insert(
            {"sku": "P6", "name": "Crêpes", "created_at": "x", "updated_at": "x"}
        )
        current = ["Ändive", "apple", "Brot", "Crêpes", "Éclair", "Œufs frais"]
        assert names(lib, limit=6) == current
        assert names(lib, "cr") == ["Crêpes"] and names(lib, "zu") == []
    (upgrade,) = backups.list_backups(lib_dir)
    assert upgrade.reason == "upgrade"
    with contextlib.closing(sqlite3.connect(upgrade.path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 6
