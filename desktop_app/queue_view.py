"""The photo queue: every dropped photo with its thumbnail and review status.

Items appear the moment photos are dropped (status "pending") and fill in as the engine's
results stream back, so staff can start reviewing the first photos while the rest match.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
)
from PySide6.QtGui import QColor, QFont, QPainter, QPalette, QPen, QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from desktop_app.icons import icon
from engine.matching import Suggestion

ItemRole = Qt.ItemDataRole.UserRole + 1
STATUSES = ("pending", "suggested", "confirmed", "no_match", "error")
STATUS_LABELS = {
    "pending": "Pending",
    "suggested": "Suggested",
    "confirmed": "Confirmed",
    "no_match": "No match",
    "error": "Could not read",
}
THUMB = 56
ROW_HEIGHT = 66

Index = QModelIndex | QPersistentModelIndex


@dataclass
class QueueItem:
    key: int
    path: Path
    status: str = "pending"
    photo_id: int | None = None
    suggestions: list[Suggestion] = field(default_factory=list)
    suggestion_thumbs: dict[int, Path] = field(default_factory=dict)
    all_rejected: bool = False  # staff rejected every suggestion: nothing left to offer
    decided_sku: str | None = None
    decided_name: str = ""
    # Confirmed as a product none of its suggestions offered (the library recorded it with
    # no rank): 'Confirmed from search' is said only then, never guessed from the cards.
    decided_from_search: bool = False
    error: str | None = None
    note: str = ""  # e.g. "matching was cancelled"
    # Matching was stopped before this photo: nothing matches it until it is added again
    # (it is not 'still matching', so it can be taken off the list).
    stopped: bool = False
    engine_thumb: Path | None = None
    preview: QPixmap | None = None
    # The confirmed product's card (the suggestion confirmed, or the product found by
    # search) and its thumbnail: shown beside the decision when no suggestion on show is
    # that product (found by search, another model took over, withdrawn); never picked by
    # keys 1-9. Kept, hidden, while the photo is decided otherwise: Ctrl+Z brings it back.
    decided_card: Suggestion | None = None
    decided_thumb: Path | None = None

    @property
    def top(self) -> Suggestion | None:
        return self.suggestions[0] if self.suggestions else None

    def is_confident(self, threshold: float) -> bool:
        top = self.top
        return self.status == "suggested" and top is not None and top.score >= threshold

    @property
    def undecided(self) -> bool:
        return self.status == "suggested"

    def status_text(self) -> str:
        if self.status == "pending":
            return self.note or "Matching…"
        if self.status == "error":
            return f"Could not read: {self.error or 'unknown problem'}"
        if self.status == "no_match":
            return "No match"
        if self.status == "confirmed":
            label = self.decided_name or ""
            return f"Confirmed: {self.decided_sku}" + (f" · {label}" if label else "")
        top = self.top
        if top is None and self.all_rejected:
            return "Every suggestion rejected"
        if top is None:
            return "No suggestions (empty catalog?)"
        return f"{top.score:.0%} · {top.name or top.sku}"


class QueueModel(QAbstractListModel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._items: list[QueueItem] = []
        self._keys = itertools.count(1)
        self.threshold = 0.8
        # Lookups by key, path and photo, built when first needed after the rows changed:
        # a scan per lookup made listing 2,000 photos from last time quadratic (review 48).
        self._row_of_key: dict[int, int] | None = None
        self._key_of_path: dict[Path, int] | None = None
        self._key_of_photo: dict[int, int] | None = None

    # -- Qt model API ------------------------------------------------------------------------
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._items)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid() or not 0 <= index.row() < len(self._items):
            return None
        item = self._items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return item.path.name
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{item.path}\n{STATUS_LABELS[item.status]}: {item.status_text()}"
        if role == Qt.ItemDataRole.AccessibleDescriptionRole:
            return item.status_text()
        if role == ItemRole:
            return item
        return None

    # -- queue operations --------------------------------------------------------------------
    @property
    def items(self) -> list[QueueItem]:
        return list(self._items)

    def item(self, row: int) -> QueueItem | None:
        return self._items[row] if 0 <= row < len(self._items) else None

    def add_paths(self, paths: list[Path]) -> list[QueueItem]:
        """Append photos not already queued (by path); returns the new items."""
        known = self._paths()
        fresh = []
        for p in paths:
            if p not in known:
                item = QueueItem(key=next(self._keys), path=p)
                known[p] = item.key
                fresh.append(item)
        if fresh:
            start = len(self._items)
            self.beginInsertRows(QModelIndex(), start, start + len(fresh) - 1)
            self._items.extend(fresh)
            if self._row_of_key is not None:  # appended: the rows before keep their numbers
                self._row_of_key.update((i.key, start + n) for n, i in enumerate(fresh))
            self.endInsertRows()
        return fresh

    def clear(self) -> None:
        self.beginResetModel()
        self._items.clear()
        self._rows_moved()
        self.endResetModel()

    def _rows_moved(self) -> None:
        self._row_of_key = self._key_of_path = self._key_of_photo = None

    def _paths(self) -> dict[Path, int]:
        if self._key_of_path is None:
            self._key_of_path = {i.path: i.key for i in reversed(self._items)}  # first wins
        return self._key_of_path

    def row_of(self, key: int) -> int:
        if self._row_of_key is None:
            self._row_of_key = {i.key: r for r, i in enumerate(self._items)}
        return self._row_of_key.get(key, -1)

    def row_of_path(self, path: Path) -> int:
        key = self._paths().get(path)
        return -1 if key is None else self.row_of(key)

    def row_of_photo(self, photo_id: int) -> int:
        if self._key_of_photo is None:
            self._key_of_photo = {
                i.photo_id: i.key for i in reversed(self._items) if i.photo_id is not None
            }
        key = self._key_of_photo.get(photo_id)
        return -1 if key is None else self.row_of(key)

    def set_photo(self, item: QueueItem, photo_id: int | None) -> None:
        """Give a listed photo its library id (matching found or added it)."""
        if item.photo_id == photo_id:
            return
        known = self._key_of_photo
        if known is not None and item.photo_id is not None and known.get(item.photo_id) == item.key:
            self._key_of_photo = None  # another row may hold the same id: looked up anew
        item.photo_id = photo_id
        if self._key_of_photo is not None and photo_id is not None:
            first = self._key_of_photo.get(photo_id)
            if first is None or self.row_of(item.key) < self.row_of(first):
                self._key_of_photo[photo_id] = item.key

    def changed(self, key: int) -> None:
        row = self.row_of(key)
        if row >= 0:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx)

    def remove(self, key: int) -> None:
        row = self.row_of(key)
        if row >= 0:
            self.beginRemoveRows(QModelIndex(), row, row)
            del self._items[row]
            self._rows_moved()
            self.endRemoveRows()

    def put_back(self, row: int, item: QueueItem) -> int:
        """Insert a removed ``item`` again at ``row`` (or the end); returns its row."""
        row = max(0, min(row, len(self._items)))
        self.beginInsertRows(QModelIndex(), row, row)
        self._items.insert(row, item)
        self._rows_moved()
        self.endInsertRows()
        return row

    def set_threshold(self, threshold: float) -> None:
        self.threshold = threshold
        if self._items:
            self.dataChanged.emit(self.index(0), self.index(len(self._items) - 1))

    def counts(self) -> dict[str, int]:
        """Photos per status, and 'stopped': the pending ones matching was stopped before."""
        out = dict.fromkeys(STATUSES, 0)
        out["stopped"] = 0
        for i in self._items:
            out[i.status] += 1
            out["stopped"] += i.stopped and i.status == "pending"
        return out

    def confident(self) -> list[QueueItem]:
        return [i for i in self._items if i.is_confident(self.threshold)]

    def next_undecided(self, row: int) -> int:
        """The next photo still to review after ``row`` (wrapping round), or -1."""
        n = len(self._items)
        for step in range(1, n + 1):
            r = (row + step) % n if row >= 0 else step - 1
            if self._items[r].undecided:
                return r
        return -1


_STATUS_ICONS = {
    "pending": "status-pending",
    "suggested": "status-suggested",
    "confirmed": "status-confirmed",
    "no_match": "status-nomatch",
    "error": "status-error",
}


class QueueDelegate(QStyledItemDelegate):
    """Thumbnail, file name, status line and a status badge, in one compact row."""

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        return QSize(200, ROW_HEIGHT)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        item: QueueItem | None = index.data(ItemRole)
        if item is None:
            return
        model = index.model()
        threshold = getattr(model, "threshold", 1.0)
        painter.save()
        style = option.widget.style() if option.widget else None
        if style is not None:
            style.drawPrimitive(
                QStyle.PrimitiveElement.PE_PanelItemViewItem, option, painter, option.widget
            )
        r = option.rect
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        pal = option.palette
        text_color = pal.color(
            QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        )
        # thumbnail
        thumb_rect = QRect(r.left() + 6, r.top() + (r.height() - THUMB) // 2, THUMB, THUMB)
        painter.fillRect(thumb_rect, QColor("#eceff1"))
        if item.preview is not None and not item.preview.isNull():
            pix = item.preview.scaled(
                thumb_rect.size() * painter.device().devicePixelRatioF(),
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
            pix.setDevicePixelRatio(painter.device().devicePixelRatioF())
            w = int(pix.width() / pix.devicePixelRatio())
            h = int(pix.height() / pix.devicePixelRatio())
            painter.drawPixmap(
                thumb_rect.left() + (THUMB - w) // 2, thumb_rect.top() + (THUMB - h) // 2, pix
            )
        # status badge
        badge = 18
        badge_rect = QRect(r.right() - badge - 8, r.top() + 8, badge, badge)
        name = "status-confident" if item.is_confident(threshold) else _STATUS_ICONS[item.status]
        icon(name).paint(painter, badge_rect)
        # text
        left = thumb_rect.right() + 10
        text_w = badge_rect.left() - left - 6
        font = QFont(option.font)
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(text_color)
        fm = painter.fontMetrics()
        name_text = fm.elidedText(item.path.name, Qt.TextElideMode.ElideMiddle, text_w)
        painter.drawText(QRect(left, r.top() + 9, text_w, fm.height()), 0, name_text)
        painter.setFont(option.font)
        fm = painter.fontMetrics()
        colour = {
            "confirmed": QColor("#1b5e20"),
            "no_match": QColor("#c62828"),
            "error": QColor("#bf360c"),
        }.get(item.status)
        painter.setPen(colour if colour is not None and not selected else text_color)
        status = fm.elidedText(
            item.status_text(), Qt.TextElideMode.ElideRight, r.right() - left - 8
        )
        line2 = QRect(left, r.top() + 13 + fm.height(), r.right() - left - 8, fm.height())
        painter.drawText(line2, 0, status)
        if option.state & QStyle.StateFlag.State_HasFocus:
            # The row the keys act on while the queue has the keyboard. Without it the queue
            # looked the same focused or not, and after Tab staff could not see where Enter
            # would go (review 28). On the selected row's highlight, in its text colour.
            focus = text_color if selected else pal.color(QPalette.ColorRole.Highlight)
            painter.setPen(QPen(focus, 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRoundedRect(r.adjusted(2, 2, -2, -2), 3, 3)
        painter.restore()


class QueueView(QListView):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setItemDelegate(QueueDelegate(self))
        self.setUniformItemSizes(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setAccessibleName("Photo queue")

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Keep the photo being reviewed in view: a window made smaller (or the splitter
        moved) left the selected row below the edge (review 23)."""
        super().resizeEvent(event)
        if self.currentIndex().isValid():
            self.scrollTo(self.currentIndex())
