"""The review page: queue on the left, the photo large, suggestion cards and product search.

Widgets only: they show state and emit what the user asked for; the ReviewSession does the
engine work. Keys are QActions owned by the main window so they show in the menus.
"""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtCore import QEvent, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QIcon,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
    QPixmap,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.elided import ElidedLabel
from desktop_app.icons import icon
from desktop_app.previews import cached_pixmap
from desktop_app.queue_view import STATUS_LABELS, QueueItem, QueueModel, QueueView
from desktop_app.theme import font_size
from engine.matching import Suggestion
from engine.sheet import product_price

MAX_CARDS = 9
# Each hint stays on one line (non-breaking spaces); a narrow window wraps between them.
KEY_HINTS = " · ".join(
    f"<b>{k}</b>&nbsp;{what.replace(' ', '&nbsp;')}".replace("← →", "←&nbsp;→")
    for k, what in (
        ("1–9", "confirm"),
        ("Enter", "top match"),
        ("N", "no match"),
        ("S", "skip"),
        ("← →", "move"),
        ("Ctrl+Z", "undo"),
        ("Ctrl+F", "find"),
    )
)
RESULTS_MAX_PX = 170  # the product search's result list, at most about five rows


def format_price(price: object) -> str:
    """A number with two decimals; a sheet's worded price ('2 for 3.00') as it was written."""
    if isinstance(price, int | float):
        return f"{price:.2f}"
    return price if isinstance(price, str) else ""


class PhotoTitle(QLabel):
    """The photo's file name, its status and its place in the queue on one line. Why: a
    phone's long file name pushed the status and "photo N of M" out of sight; the name is
    now shortened in the middle (its full text is the tooltip) so they always show."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._name = self._shown = ""
        self._rest: list[tuple[str, str]] = []  # (text, colour) after the name

    def set_title(self, name: str, rest: list[tuple[str, str]]) -> None:
        self._name, self._rest = name, rest
        self.setToolTip(name)
        self._render()

    def shown_name(self) -> str:
        """The file name as displayed (maybe shortened)."""
        return self._shown

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._render()

    def _render(self) -> None:
        gap = "\u2003"  # an em space between the parts, the same in HTML and in metrics
        plain = "".join(gap + text for text, _ in self._rest)
        bold = QFont(self.font())
        bold.setBold(True)
        room = self.contentsRect().width() - self.fontMetrics().horizontalAdvance(plain) - 8
        self._shown = QFontMetrics(bold).elidedText(
            self._name, Qt.TextElideMode.ElideMiddle, max(48, room)
        )
        rest = "".join(
            f"{gap}<span style='color:{colour}'>{_escape(text)}</span>"
            for text, colour in self._rest
        )
        super().setText(f"<b>{_escape(self._shown)}</b>{rest}" if self._name else "")


class PhotoView(QLabel):
    """Shows a pixmap as large as the space allows, aspect kept, re-scaled on resize."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._pixmap = QPixmap()
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(200, 200)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setStyleSheet("background: #263238; color: #cfd8dc; border-radius: 6px;")

    def set_photo(self, pixmap: QPixmap | None, placeholder: str = "") -> None:
        self._pixmap = pixmap if pixmap is not None else QPixmap()
        if self._pixmap.isNull():
            super().setPixmap(QPixmap())
            self.setText(placeholder)
        else:
            self.setText("")
            self._rescale()

    def has_photo(self) -> bool:
        return not self._pixmap.isNull()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._pixmap.isNull():
            return
        dpr = self.devicePixelRatioF()
        target = self.contentsRect().size() * dpr
        pix = self._pixmap.scaled(
            target, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )
        pix.setDevicePixelRatio(dpr)
        super().setPixmap(pix)


class ScoreBar(QWidget):
    """A suggestion's score as a thin bar. Not a QProgressBar: its setValue repaints at once,
    under the card's style sheet, ~2-6 ms a card on every arrow key or Enter (review 28's
    profile, five cards a photo); this one asks for a paint, and only when the value moves."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._value = 0
        self.setFixedSize(72, 6)

    def value(self) -> int:
        return self._value

    def set_value(self, value: int) -> None:
        """Percent, 0-100."""
        value = max(0, min(100, value))
        if value != self._value:
            self._value = value
            # What a QProgressBar told a screen reader ('87 percent'), said as its name.
            self.setAccessibleName(f"Score {value}%")
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(Qt.PenStyle.NoPen)
        pal = self.palette()
        radius = self.height() / 2
        p.setBrush(pal.color(QPalette.ColorRole.Midlight))
        p.drawRoundedRect(self.rect(), radius, radius)
        filled = self.rect()
        filled.setWidth(round(self.width() * self._value / 100))
        if filled.width() > 0:
            p.setBrush(pal.color(QPalette.ColorRole.Highlight))
            p.drawRoundedRect(filled, radius, radius)
        p.end()


# A card's frame: plain, the confident top suggestion, the product confirmed (pen px, hex).
CARD_PLAIN = (1, "#cfd8dc")
CARD_CONFIDENT = (2, "#26a69a")
CARD_CHOSEN = (3, "#1b5e20")
CHOSEN_GROUND = "#e8f5e9"


class SuggestionCard(QFrame):
    """One suggested product; a click confirms it (the same as its number key).

    It paints its own frame: a style sheet set on every selection change re-polished the
    card and all its labels (~3-5 ms a card, five cards a key: review 28)."""

    clicked = Signal(int)  # 0-based suggestion index
    points_clicked = Signal(int)  # show this suggestion's matching points

    def __init__(self, index: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.index = index
        self.setObjectName("card")
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self._look = CARD_PLAIN  # the frame as painted now: repainted only when it changes
        self.setMinimumHeight(78)
        self.setMaximumHeight(92)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 6, 10, 6)
        row.setSpacing(10)
        self.key = QLabel(str(index + 1))
        self.key.setFixedSize(24, 24)
        self.key.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.key.setStyleSheet(
            "background: #37474f; color: white; border-radius: 4px; font-weight: bold;"
        )
        row.addWidget(self.key, 0, Qt.AlignmentFlag.AlignTop)
        self.thumb = QLabel()
        self.thumb.setFixedSize(64, 64)
        self.thumb.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.thumb.setStyleSheet("background: white; border: 1px solid #cfd8dc;")
        row.addWidget(self.thumb)
        text = QVBoxLayout()
        text.setSpacing(1)
        self.name = ElidedLabel()
        self.name.setStyleSheet("font-weight: bold;")
        self.sku = ElidedLabel()
        self.meta = ElidedLabel()
        self.meta.setStyleSheet("color: #546e7a;")
        for w in (self.name, self.sku, self.meta):
            w.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        text.addWidget(self.name)
        text.addWidget(self.sku)
        text.addWidget(self.meta)
        row.addLayout(text, 1)
        score_col = QVBoxLayout()
        score_col.setSpacing(2)
        self.score = QLabel()
        self.score.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.score.setStyleSheet(f"font-size: {font_size(1.25)}; font-weight: bold;")
        self.bar = ScoreBar()
        self.badge = QLabel("confident")
        self.badge.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.badge.setStyleSheet("color: #00796b; font-weight: bold;")
        # A button, not a link: it takes its own click, so it never confirms the card too.
        self.points = QPushButton()
        self.points.setFlat(True)
        self.points.setFocusPolicy(Qt.FocusPolicy.TabFocus)  # a click leaves Enter to review
        self.points.setCursor(Qt.CursorShape.PointingHandCursor)
        self.points.setStyleSheet(
            "QPushButton { color: #1565c0; text-decoration: underline; border: none;"
            " padding: 0; text-align: right; }"
        )
        self.points.setToolTip("Show the matching points between the photo and this product (P)")
        self.points.clicked.connect(lambda: self.points_clicked.emit(self.index))
        score_col.addWidget(self.score)
        score_col.addWidget(self.bar, 0, Qt.AlignmentFlag.AlignRight)
        score_col.addWidget(self.badge)
        # In the score column, as short as the bar is wide: on the category's line it cut
        # the price and category of the very card Enter confirms (a 1024-px laptop); as
        # 'N matching points' it widened the column into the name.
        score_col.addWidget(self.points, 0, Qt.AlignmentFlag.AlignRight)
        score_col.addStretch(1)
        row.addLayout(score_col)
        self.suggestion: Suggestion | None = None
        self._pickable = True

    def show_suggestion(
        self,
        s: Suggestion,
        thumb: Path | None,
        confident: bool,
        chosen: bool,
        pickable: bool = True,
    ) -> None:
        """``pickable`` False: the product a photo was confirmed as, shown without a key,
        score or click (another model's suggestion, no longer on offer)."""
        self.suggestion = s
        self._pickable = pickable
        self.key.setVisible(pickable)
        self.score.setVisible(pickable)
        self.bar.setVisible(pickable)
        self.setCursor(
            Qt.CursorShape.PointingHandCursor if pickable else Qt.CursorShape.ArrowCursor
        )
        self.name.setText(s.name or s.sku)
        self.sku.setText(f"SKU {s.sku}")
        price = format_price(s.price)
        self.meta.setText(" · ".join(x for x in (s.supplier, s.category, price) if x) or " ")
        self.score.setText(f"{s.score:.0%}")
        self.bar.set_value(round(s.score * 100))
        self.badge.setVisible(confident)
        self.points.setText(f"{s.inliers} points")
        self.points.setVisible(pickable and s.inliers > 0)
        pix = cached_pixmap(thumb, 128) if thumb is not None and thumb.exists() else QPixmap()
        if not pix.isNull():
            pix = pix.scaled(
                QSize(64, 64) * self.devicePixelRatioF(),
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
            pix.setDevicePixelRatio(self.devicePixelRatioF())
        self.thumb.setPixmap(pix)
        # Not on offer, it has no score to give (found by search, or another model's).
        self.setToolTip(
            f"{s.name}\nSKU {s.sku}\n"
            + (
                f"similarity {s.similarity:.3f}"
                + (f", {s.inliers} matching points" if s.inliers else "")
                + f"\nClick or press {self.index + 1} to confirm"
                if pickable
                else "Confirmed"
            )
        )
        look = CARD_CHOSEN if chosen else (CARD_CONFIDENT if confident else CARD_PLAIN)
        if look != self._look:
            self._look = look
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        width, edge = self._look
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setPen(QPen(QColor(edge), width))
        ground = CHOSEN_GROUND if self._look == CARD_CHOSEN else None
        p.setBrush(QColor(ground) if ground else self.palette().color(QPalette.ColorRole.Base))
        half = width / 2
        p.drawRoundedRect(QRectF(self.rect()).adjusted(half, half, -half, -half), 6, 6)
        p.end()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if (
            self._pickable
            and event.button() == Qt.MouseButton.LeftButton
            and self.rect().contains(event.position().toPoint())
        ):
            self.clicked.emit(self.index)
        super().mouseReleaseEvent(event)


class SearchBox(QLineEdit):
    """Product search. Keeps Enter, Up/Down and Escape for itself: as window shortcuts they
    would otherwise confirm the top suggestion while the user is choosing a search result."""

    moved = Signal(int)
    chosen = Signal()
    escaped = Signal()

    _OWN_KEYS = (
        Qt.Key.Key_Return,
        Qt.Key.Key_Enter,
        Qt.Key.Key_Up,
        Qt.Key.Key_Down,
        Qt.Key.Key_Escape,
    )

    def event(self, e: QEvent) -> bool:
        if (
            e.type() == QEvent.Type.ShortcutOverride
            and isinstance(e, QKeyEvent)
            and e.key() in self._OWN_KEYS
        ):
            e.accept()
            return True
        return super().event(e)

    def keyPressEvent(self, e: QKeyEvent) -> None:
        key = e.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.chosen.emit()
        elif key == Qt.Key.Key_Up:
            self.moved.emit(-1)
        elif key == Qt.Key.Key_Down:
            self.moved.emit(1)
        elif key == Qt.Key.Key_Escape:
            self.escaped.emit()
        else:
            super().keyPressEvent(e)


class SearchResults(QListWidget):
    """Product search results whose names keep their end in view. Supplier names often share
    a long start ('Organic Extra Virgin Olive Oil … 500 ml' / '… 1 l'): cut on the right,
    every row read alike and the SKU never showed. The name is cut in its middle to leave
    room for the SKU, and again whenever the list changes width."""

    PARTS = Qt.ItemDataRole.UserRole + 1  # (name, sku, meta) of a product row

    def add_product(self, name: str, sku: str, meta: str) -> QListWidgetItem:
        it = QListWidgetItem()
        it.setData(self.PARTS, (name, sku, meta))
        it.setToolTip(f"{name}  ·  {sku}" + (f"  ·  {meta}" if meta else ""))
        self.addItem(it)
        self._fit(it)
        return it

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.refit()

    def refit(self) -> None:
        """Cut every row's name for the list's width now (shown, or resized)."""
        for row in range(self.count()):
            self._fit(self.item(row))

    def _fit(self, it: QListWidgetItem) -> None:
        parts = it.data(self.PARTS)
        if not parts:
            return
        name, sku, meta = parts
        # A closing '(500 ml)' or '(no longer in the catalog)' is what tells rows apart or
        # warns: it stays whole, and the name is cut before it.
        note = re.search(r"\s\([^()]{1,40}\)$", name)
        name, kept = (name[: note.start()], note.group()) if note else (name, "")
        fm = self.fontMetrics()
        width = fm.horizontalAdvance
        room = self.viewport().width() - self.iconSize().width() - 16
        sep = "  ·  "
        whole = f"{name}{kept}{sep}{sku}"
        for text in (f"{whole}{sep}{meta}" if meta else "", whole):
            if text and width(text) <= room:  # whole; price and category go first
                it.setText(text)
                return
        # The name is what staff read: it keeps most of the row, cut in its middle; a long
        # SKU (some suppliers spell the name again) is cut in its middle in what is left.
        # The name with its closing '(…)' keeps at least 60%; the name gives way first.
        sku_part = f"{kept}{sep}{sku}"
        floor = max(int(room * 0.6) - width(kept), width("M" * 4))
        name_room = min(width(name), max(room - width(sku_part), floor))
        short = fm.elidedText(name, Qt.TextElideMode.ElideMiddle, name_room)
        sku_room = max(room - width(f"{short}{kept}{sep}"), width("M" * 4))
        short_sku = fm.elidedText(sku, Qt.TextElideMode.ElideMiddle, sku_room)
        it.setText(f"{short}{kept}{sep}{short_sku}")


class ThresholdSpin(QDoubleSpinBox):
    """Score threshold in percent; Up/Down change it instead of moving between photos."""

    def event(self, e: QEvent) -> bool:
        if (
            e.type() == QEvent.Type.ShortcutOverride
            and isinstance(e, QKeyEvent)
            and e.key() in (Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_Return, Qt.Key.Key_Enter)
        ):
            e.accept()
            return True
        return super().event(e)


class DropHint(QLabel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.setText(
            f"<p><img src='{_icon_file('drop')}' width='96' height='96'></p>"
            f"<p style='font-size:{font_size(1.42)}'><b>Drop photos or folders here</b></p>"
            "<p>or use <b>File ▸ Add photos…</b> (Ctrl+Shift+O), "
            "or paste a picture with <b>Ctrl+V</b>.</p>"
            "<p style='color:#546e7a'>Each photo is matched to your catalog on this computer; "
            "you confirm the right product with one key.</p>"
        )
        self.setStyleSheet(
            "QLabel { border: 2px dashed #80cbc4; border-radius: 12px; background: #f5fbfa;"
            " color: #37474f; padding: 24px; }"
        )


def _icon_file(name: str) -> str:
    from desktop_app.icons import icon_path

    return Path(icon_path(name)).as_uri()


class ReviewPage(QWidget):
    """Queue | photo | suggestions. Emits intents; ReviewSession acts on them."""

    suggestion_clicked = Signal(int)
    points_requested = Signal(int)  # a suggestion's "matching points" was clicked
    search_text_changed = Signal(str)
    search_confirmed = Signal(str)  # SKU chosen from the search results
    threshold_changed = Signal(float)  # 0-1
    confident_count = Signal(int)  # photos Accept All Confident would confirm, on each count
    accept_confident_clicked = Signal()
    no_match_clicked = Signal()
    skip_clicked = Signal()

    def __init__(self, model: QueueModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        outer = QHBoxLayout(self)
        outer.setContentsMargins(6, 6, 6, 6)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        outer.addWidget(self.splitter)

        # -- queue column
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        self.queue_title = QLabel("<b>Photos</b>")
        self.queue_title.setWordWrap(True)
        lv.addWidget(self.queue_title)
        self.queue = QueueView()
        self.queue.setModel(model)
        lv.addWidget(self.queue, 1)
        thr = QHBoxLayout()
        thr.addWidget(QLabel("Confident at"))
        self.threshold = ThresholdSpin()
        self.threshold.setRange(1, 100)
        self.threshold.setDecimals(0)
        self.threshold.setSuffix(" %")
        self.threshold.setValue(80)
        self.threshold.setToolTip(
            "Suggestions scoring at least this much are marked confident (star) and can be "
            "accepted together with 'Accept confident'."
        )
        self.threshold.setAccessibleName("Confidence threshold")
        thr.addWidget(self.threshold)
        thr.addStretch(1)
        lv.addLayout(thr)
        self.accept_button = QPushButton(icon("accept-all"), "Accept confident…")
        self.accept_button.setToolTip("Confirm the top suggestion of every confident photo (A)")
        lv.addWidget(self.accept_button)
        # The three columns' minimums fit a 1024x600 screen at 125% (820 px): at 230 + 240
        # + 390 the window ran off its right edge, Skip and the scores with it.
        left.setMinimumWidth(190)
        self.splitter.addWidget(left)

        # -- photo column
        middle = QWidget()
        mv = QVBoxLayout(middle)
        mv.setContentsMargins(0, 0, 0, 0)
        self.photo_title = PhotoTitle()
        mv.addWidget(self.photo_title)
        self.photo_stack = QStackedWidget()
        self.drop_hint = DropHint()
        self.photo = PhotoView()
        self.photo_stack.addWidget(self.drop_hint)
        self.photo_stack.addWidget(self.photo)
        mv.addWidget(self.photo_stack, 1)
        self.hints = QLabel(KEY_HINTS)
        self.hints.setStyleSheet("color: #546e7a;")
        self.hints.setWordWrap(True)
        mv.addWidget(self.hints)
        self.splitter.addWidget(middle)

        # -- suggestions column
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        self.search = SearchBox()
        self.search.setPlaceholderText("Find any product by SKU or name (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.addAction(icon("search"), QLineEdit.ActionPosition.LeadingPosition)
        self.search.setAcceptDrops(False)
        self.search.setAccessibleName("Product search")
        rv.addWidget(self.search)
        self.results = SearchResults()
        self.results.setIconSize(QSize(32, 32))
        self.results.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.results.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.results.setWordWrap(False)
        self.results.hide()
        rv.addWidget(self.results)
        self.cards_title = QLabel("<b>Suggestions</b>")
        rv.addWidget(self.cards_title)
        cards_host = QWidget()
        self.cards_layout = QVBoxLayout(cards_host)
        self.cards_layout.setContentsMargins(0, 0, 4, 0)
        self.cards_layout.setSpacing(6)
        self.cards: list[SuggestionCard] = []
        for i in range(MAX_CARDS):
            card = SuggestionCard(i)
            card.clicked.connect(self.suggestion_clicked)
            card.points_clicked.connect(self.points_requested)
            card.hide()
            self.cards.append(card)
            self.cards_layout.addWidget(card)
        self.cards_message = QLabel()
        self.cards_message.setWordWrap(True)
        self.cards_message.setStyleSheet("color: #546e7a; padding: 8px;")
        self.cards_layout.addWidget(self.cards_message)
        self.cards_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(cards_host)
        rv.addWidget(scroll, 1)
        buttons = QHBoxLayout()
        self.no_match_button = QPushButton(icon("no-match"), "No match (N)")
        self.skip_button = QPushButton(icon("skip"), "Skip (S)")
        buttons.addWidget(self.no_match_button)
        buttons.addWidget(self.skip_button)
        # Reached by Tab, not taken by a click: after clicking 'No match', Enter must confirm
        # the next photo's top suggestion, not press 'No match' again (review 30).
        for b in (self.no_match_button, self.skip_button, self.accept_button):
            b.setFocusPolicy(Qt.FocusPolicy.TabFocus)
        rv.addLayout(buttons)
        right.setMinimumWidth(320)  # a card's name, SKU and score, and the two buttons
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(0, 0)
        self.splitter.setStretchFactor(1, 2)  # a wider window widens the cards too, not only
        self.splitter.setStretchFactor(2, 1)  # the photo: long product names need the room
        self.splitter.setSizes([250, 540, 440])
        self.splitter.setChildrenCollapsible(False)

        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(150)
        self._search_timer.timeout.connect(self._run_search)
        self._asked = ""  # the text last sent to the search
        self._results_for: str | None = None  # the text the listed results answer
        # Enter pressed before the results of the text typed came: the photo it was for,
        # whose top result is chosen when they come (None: no Enter waiting).
        self._choose_for: QueueItem | None = None
        self.search.textChanged.connect(self._on_search_text)
        self.search.moved.connect(self._move_result)
        self.search.chosen.connect(self._choose_result)
        self.search.escaped.connect(self.clear_search)
        self.results.itemActivated.connect(self._choose)
        self.threshold.valueChanged.connect(lambda v: self.threshold_changed.emit(v / 100.0))
        self.accept_button.clicked.connect(self.accept_confident_clicked)
        self.no_match_button.clicked.connect(self.no_match_clicked)
        self.skip_button.clicked.connect(self.skip_clicked)
        self.show_item(None, 0, 0)

    # -- display ----------------------------------------------------------------------------
    def update_counts(self) -> None:
        c = self.model.counts()
        stopped = c.pop("stopped")
        total = sum(c.values())
        todo = c["suggested"] + c["pending"] - stopped
        self.queue_title.setText(
            f"<b>Photos</b> ({total:,})<br><span style='color:#546e7a'>{todo:,} to review · "
            f"{c['confirmed']:,} confirmed · {c['no_match']:,} no match"
            + (f" · {stopped:,} not matched" if stopped else "")  # stopped: not to review yet
            + (f" · {c['error']:,} unreadable" if c["error"] else "")  # so the counts add up
            + "</span>"
            if total
            else "<b>Photos</b>"
        )
        n = len(self.model.confident())
        self.accept_button.setText(f"Accept {n} confident…" if n else "Accept confident…")
        self.accept_button.setEnabled(n > 0)
        self.confident_count.emit(n)

    def show_item(self, item: QueueItem | None, row: int, total: int) -> None:
        """Fill the photo header and the cards for ``item`` (None: nothing selected)."""
        self.update_counts()
        if item is None:
            self.photo_stack.setCurrentWidget(self.drop_hint if total == 0 else self.photo)
            if total:
                self.photo.set_photo(None, "Select a photo in the list")
            self.photo_title.set_title("", [])
            self._show_cards([], None, "Suggestions appear here once photos are matched.")
            self.no_match_button.setEnabled(False)
            self.skip_button.setEnabled(False)
            return
        self.photo_stack.setCurrentWidget(self.photo)
        label = STATUS_LABELS[item.status]
        colour = {"confirmed": "#1b5e20", "no_match": "#c62828", "error": "#bf360c"}.get(
            item.status, "#1565c0"
        )
        if item.status == "confirmed":
            label += f": {item.decided_sku or ''}"
        self.photo_title.set_title(
            item.path.name, [(label, colour), (f"photo {row + 1:,} of {total:,}", "#546e7a")]
        )
        message = None
        if item.status == "pending":
            message = item.note or "Matching this photo…"
        elif item.status == "error":
            message = f"This file could not be used: {item.error}"
        elif not item.suggestions and item.status != "suggested":
            message = (  # decided (by search, or no match) after every suggestion was rejected
                f"{label}. No suggestion is left to show: every one was rejected."
                if item.all_rejected
                else self._decided_message(item, label)
            )
        elif not item.suggestions and item.all_rejected:
            message = (
                "Every suggestion for this photo was rejected: nothing left to suggest. "
                "Find the product by SKU or name (Ctrl+F), or mark it no match (N)."
            )
        elif not item.suggestions:
            message = "No suggestions: the catalog is empty. Import a catalog first."
        chosen = item.decided_sku if item.status == "confirmed" else None
        card = item.decided_card
        if card is None or card.sku != chosen or any(s.sku == chosen for s in item.suggestions):
            card = None  # not the decision's, or its suggestion card is on show
        self._show_cards(item.suggestions, item, message, chosen, confirmed=card)
        # Not while it is matched (again, after a model switch: it has a photo id then).
        decidable = item.photo_id is not None and (item.status != "pending" or item.stopped)
        self.no_match_button.setEnabled(decidable)
        self.skip_button.setEnabled(True)

    @staticmethod
    def _decided_message(item: QueueItem, label: str) -> str:
        """A decided photo without suggestions on offer (decided before another model took
        over, or from search): what it was decided as, never 'no suggestion is stored'."""
        if item.status != "confirmed":
            return f"{label}. Find the product with Ctrl+F if it is in the catalog."
        name = f" · {item.decided_name}" if item.decided_name else ""
        return f"{label}{name}. Find another product with Ctrl+F to change it."

    def _show_cards(
        self,
        suggestions: list[Suggestion],
        item: QueueItem | None,
        message: str | None,
        chosen: str | None = None,
        confirmed: Suggestion | None = None,
    ) -> None:
        """The suggestions, on offer (keys 1-9 pick exactly these), then ``confirmed``: the
        product the photo is confirmed as when none of them is (found by search, another
        model's suggestion, withdrawn since), shown without a key, score or click."""
        threshold = self.model.threshold
        extra = len(suggestions) if confirmed is not None else -1  # the confirmed card's slot
        for i, card in enumerate(self.cards):
            if i < len(suggestions) and item is not None:
                s = suggestions[i]
                card.show_suggestion(
                    s,
                    item.suggestion_thumbs.get(s.image_id or -1),
                    confident=i == 0 and s.score >= threshold and item.status == "suggested",
                    chosen=(s.sku == chosen),
                )
                card.show()
            elif i == extra and confirmed is not None and item is not None:
                card.show_suggestion(
                    confirmed, item.decided_thumb, confident=False, chosen=True, pickable=False
                )
                card.show()
            else:
                card.hide()
        said = ""
        if chosen and item is not None and not any(s.sku == chosen for s in suggestions):
            # The library's word (no rank recorded), not 'none of the cards on show': a
            # suggestion withdrawn since is no card either, yet was not found by search.
            how = "Confirmed from search" if item.decided_from_search else "Confirmed"
            name = f" · {item.decided_name}" if item.decided_name else ""
            said = f"{how}: {chosen}{name}"
        self.cards_message.setText(message or said)
        self.cards_message.setVisible(bool(message or said))
        self.cards_title.setText(
            f"<b>Suggestions</b> <span style='color:#546e7a'>({len(suggestions)})</span>"
            if suggestions
            else "<b>Confirmed product</b>"
            if confirmed is not None
            else "<b>Suggestions</b>"
        )

    # -- search ------------------------------------------------------------------------------
    def focus_search(self) -> None:
        self.search.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search.selectAll()

    def clear_search(self) -> None:
        self.search.clear()
        self.results.clear()
        self.results.hide()
        self._results_for = self._choose_for = None
        self._asked = ""
        self.queue.setFocus()

    def _run_search(self) -> None:
        self._asked = self.search.text()
        self.search_text_changed.emit(self._asked)

    def _on_search_text(self, text: str) -> None:
        self._choose_for = None  # typing on after Enter: that Enter was for another text
        if text.strip():
            self._search_timer.start()
        else:
            self._search_timer.stop()
            self.results.clear()
            self.results.hide()
            self._results_for = None

    def set_search_results(
        self, text: str, products: list[dict[str, object]], thumbs: dict[str, Path]
    ) -> None:
        if text != self.search.text():
            return  # an older query answered late
        self._results_for = text
        self.results.clear()
        for p in products:
            sku = str(p["sku"])
            price = format_price(product_price(p))
            meta = " · ".join(str(x) for x in (p.get("supplier"), p.get("category"), price) if x)
            it = self.results.add_product(str(p.get("name") or sku), sku, meta)
            it.setData(Qt.ItemDataRole.UserRole, sku)
            thumb = thumbs.get(sku)
            if thumb is not None and thumb.exists():
                it.setIcon(QIcon(cached_pixmap(thumb, 64)))
            self.results.addItem(it)
        if not products:
            it = QListWidgetItem(f"No product matches “{text}”")
            it.setFlags(Qt.ItemFlag.NoItemFlags)
            self.results.addItem(it)
        else:
            self.results.setCurrentRow(0)
        self._fit_results()
        waiting, self._choose_for = self._choose_for, None
        # Chosen only for the photo Enter was for: with another on show now, the results
        # stay listed and nothing is chosen.
        on_show = self.model.item(self.queue.currentIndex().row())
        if waiting is not None and products and waiting is on_show:
            self._choose(self.results.item(0))

    def _fit_results(self) -> None:
        """As tall as its rows, up to RESULTS_MAX_PX: a fixed box for one hit pushed the
        suggestion cards into a scroll area for nothing."""
        rows = self.results.count()
        row_px = max(self.results.sizeHintForRow(0), 1)
        frame = 2 * self.results.frameWidth()
        self.results.setFixedHeight(min(RESULTS_MAX_PX, rows * row_px + frame + 2))
        self.results.show()
        self.results.refit()

    def _move_result(self, step: int) -> None:
        n = self.results.count()
        if n:
            self.results.setCurrentRow(max(0, min(n - 1, self.results.currentRow() + step)))

    def _choose_result(self) -> None:
        """Enter in the search box: the selected result, if the results listed are those of
        the text typed. Typed on within the 150 ms the search waits (a quick typist, a
        barcode scanner), or while it waits behind matching, the list still showed the older
        text's results and Enter confirmed one of them (review 28): the search is run now
        and its first result chosen when it comes, for the photo on show at Enter."""
        text = self.search.text()
        if not text.strip():
            return
        if self._results_for == text:
            self._choose(self.results.currentItem())
            return
        if self._search_timer.isActive() or self._asked != text:
            self._search_timer.stop()
            self._run_search()
        self._choose_for = self.model.item(self.queue.currentIndex().row())
        self.results.clear()
        waiting = QListWidgetItem(f"Searching “{text}”… Enter takes the first product found")
        waiting.setFlags(Qt.ItemFlag.NoItemFlags)
        self.results.addItem(waiting)
        self._fit_results()

    def _choose(self, it: QListWidgetItem | None) -> None:
        """Confirm the product of a result row (Enter, or a double click on it)."""
        sku = it.data(Qt.ItemDataRole.UserRole) if it is not None else None
        if sku:
            self.search_confirmed.emit(str(sku))
            self.clear_search()


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
