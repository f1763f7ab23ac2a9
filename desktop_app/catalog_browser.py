"""Catalog browser: filter products by text, category and supplier; see every image of a
product and the photos staff confirmed to it (useful to spot a wrong confirmation)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QIcon, QImage, QPixmap, QPixmapCache, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListView,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.icons import icon
from desktop_app.previews import PreviewLoader
from desktop_app.review import format_price
from desktop_app.worker import EngineWorker, Priority, TaskContext, TaskError
from engine import overview
from engine.sheet import product_price
from engine.wording import count

PAGE = 500  # products per query; the next page loads when the list is scrolled to its end
COLUMNS = ("SKU", "Name", "Category", "Supplier", "Price")
SUPPLIER_COLUMN, PRICE_COLUMN = 3, 4
# At most this many supplier images and as many remembered photos (the newest), and this many
# confirmed photos, are shown: a product confirmed daily for a year has hundreds of each.
SHOWN = 60
IMAGE_SIDE, PHOTO_SIDE = 128, 96


@dataclass(frozen=True)
class ProductDetail:
    product: dict[str, object]
    images: list[tuple[Path, Path, bool]]  # (original file, thumbnail, is a staff photo)
    photos: list[overview.PhotoRecord]
    images_total: int = 0  # reference images in all (``images`` may be fewer)
    remembered_total: int = 0  # how many of them are confirmed photos
    photos_total: int = 0  # photos confirmed to the product in all


def reference_images(
    rows: list[dict[str, object]], shown: int | None = None
) -> list[dict[str, object]]:
    """The first ``shown`` (SHOWN) supplier images, then the newest ``shown`` remembered
    photos."""
    shown = SHOWN if shown is None else shown
    supplier = [r for r in rows if r.get("origin") != "confirmed"][:shown]
    mine = [r for r in rows if r.get("origin") == "confirmed"]
    return supplier + (mine[-shown:] if shown > 0 else [])


# Library.products' order for each column. The list is sorted by the library, page by page,
# never by the table: a page re-sorted by another column showed, at its top, products that
# were not the first ones in that order (and hid those that were).
COLUMN_ORDERS = ("sku", "name", "category", "supplier", "price")
WITHDRAWN = "no longer in the catalog"


def withdrawn_note(product: dict[str, object]) -> dict[str, object]:
    """``product`` with its name marked if it left the supplier's catalog (never suggested):
    it was listed like the others."""
    if not product.get("withdrawn_at"):
        return product
    return {**product, "name": f"{product.get('name') or product.get('sku')} ({WITHDRAWN})"}


def _thumb_list(side: int) -> QListWidget:
    w = QListWidget()
    w.setViewMode(QListView.ViewMode.IconMode)
    w.setIconSize(QSize(side, side))
    w.setGridSize(QSize(side + 16, side + 34))
    w.setResizeMode(QListView.ResizeMode.Adjust)
    w.setMovement(QListView.Movement.Static)
    w.setWordWrap(True)
    w.setTextElideMode(Qt.TextElideMode.ElideMiddle)
    # Every cell is the grid's size (each item says so, see _add_thumb): laying out 120
    # word-wrapped names at once took ~40 ms.
    w.setUniformItemSizes(True)
    w.setLayoutMode(QListView.LayoutMode.Batched)
    w.setBatchSize(30)
    return w


class CatalogBrowser(QWidget):
    def __init__(self, worker: EngineWorker, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.worker = worker
        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)
        filters = QHBoxLayout()
        self.text = QLineEdit()
        self.text.setPlaceholderText("Filter by SKU or name (Ctrl+F)")
        self.text.setClearButtonEnabled(True)
        self.text.addAction(icon("search"), QLineEdit.ActionPosition.LeadingPosition)
        self.text.setAcceptDrops(False)
        self.category = QComboBox()
        self.supplier = QComboBox()
        for combo, label in ((self.category, "All categories"), (self.supplier, "All suppliers")):
            combo.addItem(label, None)
            combo.setMinimumWidth(170)
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.count = QLabel()
        filters.addWidget(self.text, 2)
        filters.addWidget(self.category)
        filters.addWidget(self.supplier)
        filters.addWidget(self.count, 1)
        outer.addLayout(filters)

        split = QSplitter(Qt.Orientation.Horizontal)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        # Tab goes on to the product's detail (and back to the filter box), not through the
        # table's cells (5 a product, 500 a page); arrows move between products.
        self.table.setTabKeyNavigation(False)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        # A-Z by SKU: Qt's default indicator would sort the first time Z-A.
        header.setSortIndicator(0, Qt.SortOrder.AscendingOrder)
        header.setSortIndicatorShown(True)
        header.setSectionsClickable(True)
        header.sortIndicatorChanged.connect(self._sort_changed)
        self.table.setAlternatingRowColors(True)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(48)
        split.addWidget(self.table)

        detail = QWidget()
        dl = QVBoxLayout(detail)
        dl.setContentsMargins(8, 0, 0, 0)
        self.title = QLabel(
            "<span style='color:#546e7a'>Select a product to see its images "
            "and the photos confirmed to it.</span>"
        )
        self.title.setWordWrap(True)
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.title.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        dl.addWidget(self.title)
        self.images_label = QLabel("<b>Reference images</b>")
        dl.addWidget(self.images_label)
        self.images = _thumb_list(IMAGE_SIDE)
        dl.addWidget(self.images, 1)
        self.photos_label = QLabel("<b>Photos confirmed to this product</b>")
        dl.addWidget(self.photos_label)
        self.photos = _thumb_list(PHOTO_SIDE)
        dl.addWidget(self.photos, 1)
        split.addWidget(detail)
        split.setSizes([720, 480])
        split.setStretchFactor(0, 3)  # the list first: a product's name must stay readable
        split.setStretchFactor(1, 2)
        outer.addWidget(split, 1)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(150)
        self._timer.timeout.connect(self.refresh)
        self.text.textChanged.connect(lambda _t: self._timer.start())
        self.category.currentIndexChanged.connect(lambda _i: self.refresh())
        self.supplier.currentIndexChanged.connect(lambda _i: self.refresh())
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.verticalScrollBar().valueChanged.connect(self._maybe_load_more)
        self._query = 0
        self._more = False  # the last page was full: there may be more products
        self._loading = False
        self.selected_sku: str | None = None
        self.shown_sku: str | None = None  # whose details are on screen
        self.loaded = False
        # Thumbnails are decoded on the loader's threads and shown as they arrive: hundreds
        # decoded on the GUI thread froze it (~300 ms at 400 confirmed photos).
        self._thumbs = PreviewLoader(self)
        self._thumbs.loaded.connect(self._on_thumb)
        self._arrived: list[tuple[QListWidgetItem, QPixmap]] = []
        self._apply_timer = QTimer(self)  # thumbnails arrive in bursts: a few per turn
        self._apply_timer.setInterval(0)
        self._apply_timer.timeout.connect(self._apply_thumbs)
        self._detail_generation = 0  # thumbnails of a product no longer shown are dropped
        # Decisions recorded since the detail was read (see decisions_changed); re-read once
        # for a burst of them (Accept All Confident records one per photo).
        self._detail_stale = False
        self._stale_timer = QTimer(self)
        self._stale_timer.setSingleShot(True)
        self._stale_timer.setInterval(100)
        self._stale_timer.timeout.connect(self._refresh_stale_detail)

    # -- loading -----------------------------------------------------------------------------
    def focus_filter(self) -> None:
        """Ctrl+F on this tab: into the filter box, its text selected to type over."""
        self.text.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.text.selectAll()

    def decisions_changed(self) -> None:
        """Photos were confirmed or decisions undone (in the Review tab): the product shown
        may have gained or lost confirmed photos and remembered images, and its detail kept
        saying 'none yet'. It is read again (on the worker) now if the tab is on screen, else
        when it is shown next."""
        self._detail_stale = True
        if self.isVisible():
            self._stale_timer.start()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._detail_stale:
            self._stale_timer.start()

    def _refresh_stale_detail(self) -> None:
        if not self._detail_stale or not self.isVisible():
            return  # hidden meanwhile: showEvent comes back to it
        self._detail_stale = False
        # Before the first load (or after another library was opened) reload() reads it.
        if self.loaded and self.selected_sku is not None:
            self.show_sku(self.selected_sku)

    def reload(self) -> None:
        """Refresh the filter choices and the list (after an import or opening a library)."""

        def run(ctx: TaskContext) -> tuple[list[str], list[str]]:
            return (
                overview.distinct_values(ctx.lib, "category"),
                overview.distinct_values(ctx.lib, "supplier"),
            )

        def done(values: tuple[list[str], list[str]]) -> None:
            for combo, items in zip((self.category, self.supplier), values, strict=True):
                current = combo.currentData()
                combo.blockSignals(True)
                while combo.count() > 1:
                    combo.removeItem(1)
                for v in items:
                    combo.addItem(v, v)
                combo.setCurrentIndex(max(0, combo.findData(current)) if current else 0)
                combo.setEnabled(bool(items))
                combo.blockSignals(False)
            self.refresh()

        self.loaded = True
        self.worker.submit(run, what="load the catalog", on_result=done)

    def refresh(self) -> None:
        """First page of the products matching the filters (a new query)."""
        self._query += 1
        self._load(offset=0)

    def _maybe_load_more(self, value: int) -> None:
        bar = self.table.verticalScrollBar()
        if self._more and not self._loading and value >= bar.maximum() - 2:
            self._load(offset=self.table.rowCount())

    def _sort_changed(self, _section: int, _order: Qt.SortOrder) -> None:
        """Another column or direction: the library sorts the list anew from its first page."""
        self.refresh()

    def _load(self, offset: int) -> None:
        text = self.text.text().strip()
        category = self.category.currentData()
        supplier = self.supplier.currentData()
        header = self.table.horizontalHeader()
        order = COLUMN_ORDERS[header.sortIndicatorSection()]
        descending = header.sortIndicatorOrder() == Qt.SortOrder.DescendingOrder
        query = self._query
        self._loading = True

        def run(ctx: TaskContext) -> list[dict[str, object]]:
            return ctx.lib.products(
                text,
                category,
                supplier,
                limit=PAGE + 1,
                offset=offset,
                order=order,
                descending=descending,
            )

        def done(products: list[dict[str, object]]) -> None:
            if query != self._query:  # the filters changed meanwhile: a newer query runs
                return
            self._loading = False
            self._more = len(products) > PAGE
            self._fill(products[:PAGE], append=offset > 0)

        def failed(err: TaskError) -> None:
            self._loading = False
            self.worker.error.emit("filter the catalog", err)

        self.worker.submit(run, what="filter the catalog", on_result=done, on_error=failed)

    def _hide_empty_columns(self) -> None:
        """Supplier and price stay hidden while no product listed has one: two empty columns
        took the room of the names (cut to "…" in a 1024-px window)."""
        for col in (SUPPLIER_COLUMN, PRICE_COLUMN):
            empty = all(
                (item := self.table.item(r, col)) is None or not item.text()
                for r in range(self.table.rowCount())
            )
            self.table.setColumnHidden(col, empty)

    def _fill(self, products: list[dict[str, object]], append: bool = False) -> None:
        start = self.table.rowCount() if append else 0
        self.table.setRowCount(start + len(products))
        keep_row = -1
        grey = self.palette().placeholderText()
        for r, p in enumerate(products, start):
            gone = bool(p.get("withdrawn_at"))
            p = withdrawn_note(p)
            values = [p.get("sku"), p.get("name"), p.get("category"), p.get("supplier")]
            items = [QTableWidgetItem(str(v or "")) for v in values]
            items.append(QTableWidgetItem(format_price(product_price(p))))
            items[PRICE_COLUMN].setTextAlignment(
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
            )
            for c, item in enumerate(items):
                if gone:
                    item.setForeground(grey)
                    item.setToolTip(
                        f"No longer in the supplier's catalog (since {str(p['withdrawn_at'])[:10]})"
                        ": never suggested"
                    )
                self.table.setItem(r, c, item)
            if p.get("sku") == self.selected_sku:
                keep_row = r
        self._hide_empty_columns()
        shown = self.table.rowCount()
        more = "; scroll down for more" if self._more else ""
        self.count.setText(f"{count(shown, 'product')}{' shown' if self._more else ''}{more}")
        # A page that fits without a scroll bar could never be scrolled on: fetch on at once.
        QTimer.singleShot(0, lambda: self._maybe_load_more(self.table.verticalScrollBar().value()))
        if append:
            return
        self.table.resizeColumnToContents(0)
        self.table.setColumnWidth(0, min(self.table.columnWidth(0), 220))
        if not products:
            self.selected_sku = None
            self._show_detail(None)
            return
        skus = [self.table.item(r, 0).text() for r in range(self.table.rowCount())]
        target = self.selected_sku if keep_row >= 0 else skus[0]
        self.table.blockSignals(True)
        self.table.selectRow(skus.index(target))
        self.table.blockSignals(False)
        self.show_sku(target)  # always: its confirmed photos may have changed

    def _selection_changed(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return
        item = self.table.item(rows[0].row(), 0)
        if item is not None:
            self.show_sku(item.text())

    def show_sku(self, sku: str) -> None:
        self.selected_sku = sku

        def run(ctx: TaskContext) -> ProductDetail | None:
            lib = ctx.lib
            product = lib.product(sku)
            if product is None:
                return None
            rows = lib.catalog_images(sku)
            images = [
                (
                    Path(str(r["path"])),
                    lib.thumbnail(str(r["sha256"])),
                    r.get("origin") == "confirmed",
                )
                for r in reference_images(rows)
            ]
            photos, photos_total = overview.newest_confirmed_photos(lib, sku, SHOWN)
            return ProductDetail(
                product,
                images,
                photos,
                images_total=len(rows),
                remembered_total=sum(1 for r in rows if r.get("origin") == "confirmed"),
                photos_total=photos_total,
            )

        def done(detail: ProductDetail | None) -> None:
            if sku == self.selected_sku:
                self._show_detail(detail)

        self.worker.submit(run, what="show the product", priority=Priority.QUERY, on_result=done)

    def _show_detail(self, d: ProductDetail | None) -> None:
        self._thumbs.clear()
        self._arrived.clear()  # items of the product shown so far, deleted by clear() below
        self._detail_generation += 1
        self.images.clear()
        self.photos.clear()
        self.shown_sku = str(d.product["sku"]) if d is not None else None
        if d is None:
            self.title.setText("<span style='color:#546e7a'>No product selected.</span>")
            self.images_label.setText("<b>Reference images</b>")
            self.photos_label.setText("<b>Photos confirmed to this product</b>")
            return
        p = d.product
        meta = " · ".join(
            str(x)
            for x in (p.get("category"), p.get("supplier"), format_price(product_price(p)))
            if x
        )
        try:
            attrs = json.loads(str(p.get("attributes") or "{}"))
        except ValueError:
            attrs = {}
        attr_text = ", ".join(f"{k}: {v}" for k, v in attrs.items())
        self.title.setText(
            f"<h3 style='margin:0'>{_esc(p.get('name') or p.get('sku'))}</h3>"
            f"SKU <b>{_esc(p.get('sku'))}</b>"
            + (f" &nbsp;·&nbsp; {_esc(meta)}" if meta else "")
            + (f"<br><span style='color:#546e7a'>{_esc(attr_text)}</span>" if attr_text else "")
            + (
                "<br><span style='color:#b71c1c'>No longer in the supplier's catalog "
                f"(since {_esc(str(p['withdrawn_at'])[:10])}): never suggested.</span>"
                if p.get("withdrawn_at")
                else ""
            )
        )
        total = max(d.images_total, len(d.images))
        remembered = max(d.remembered_total, sum(1 for *_x, mine in d.images if mine))
        self.images_label.setText(
            f"<b>Reference images</b> ({total})"
            + (f" — {remembered} of them your confirmed photos" if remembered else "")
            + (f"; {len(d.images)} shown" if len(d.images) < total else "")
        )
        for original, thumb, mine in d.images:
            it = QListWidgetItem(("★ " if mine else "") + original.name)
            it.setToolTip(
                f"{original}\n"
                + ("a confirmed photo (instant memory)" if mine else "supplier image")
            )
            self._add_thumb(self.images, it, thumb, IMAGE_SIDE)
        photos_total = max(d.photos_total, len(d.photos))
        shown = f"{len(d.photos)} of {photos_total} shown, the newest"
        self.photos_label.setText(
            "<b>Photos confirmed to this product</b> — none yet"
            if not photos_total
            else f"<b>Photos confirmed to this product</b> ({photos_total}"
            + (f"; {shown})" if len(d.photos) < photos_total else ")")
        )
        for rec in d.photos:
            it = QListWidgetItem(rec.path.name)
            it.setToolTip(str(rec.path))
            self._add_thumb(self.photos, it, rec.thumb, PHOTO_SIDE)

    def _add_thumb(self, view: QListWidget, item: QListWidgetItem, thumb: Path, side: int) -> None:
        """Add ``item`` with its thumbnail from the cache, or ask the loader for it.

        The item is given the grid cell's size from the start: the view's uniform size is
        the first item's, measured before its thumbnail arrived (a name alone, ~14 px high),
        and every picture was cut to that strip. Its name sits at the cell's foot, where it
        stays when the picture comes."""
        item.setSizeHint(view.gridSize())
        item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignBottom)
        # Read at the screen's pixel density: at 200% a 128-px picture was blown up to 256
        # device pixels and looked soft, though the library keeps 256-px thumbnails.
        side = round(side * view.devicePixelRatioF())
        pix = QPixmap()
        if QPixmapCache.find(_cache_key(thumb, side), pix):
            item.setIcon(QIcon(pix))
        else:
            key = (self._detail_generation, view is self.photos, view.count(), thumb, side)
            self._thumbs.request(key, thumb, side)
        view.addItem(item)

    def _on_thumb(self, key: object, image: QImage) -> None:
        generation, is_photo, row, thumb, side = key  # type: ignore[misc]
        if generation != self._detail_generation or image.isNull():
            return
        view = self.photos if is_photo else self.images
        pix = QPixmap.fromImage(image)
        pix.setDevicePixelRatio(view.devicePixelRatioF())
        QPixmapCache.insert(_cache_key(thumb, side), pix)
        item = view.item(row)
        if item is not None:
            self._arrived.append((item, pix))
            self._apply_timer.start()

    def _apply_thumbs(self, per_turn: int = 12) -> None:
        """Show a few arrived thumbnails, and the rest at the next turns of the event loop:
        a hundred set at once kept it ~40 ms."""
        batch, self._arrived = self._arrived[:per_turn], self._arrived[per_turn:]
        for item, pix in batch:
            item.setIcon(QIcon(pix))
        if not self._arrived:
            self._apply_timer.stop()


def _cache_key(thumb: Path, side: int) -> str:
    return f"{thumb}@{side}"  # as desktop_app.previews.cached_pixmap keys its pixmaps


def _esc(value: object) -> str:
    return str(value or "").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
