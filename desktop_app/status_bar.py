"""The main window's status bar: temporary messages that fit beside the permanent labels."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QSize, Qt, QTimer
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QSizePolicy, QStatusBar, QWidget

from desktop_app.elided import ElidedLabel

# The message's left margin plus a gap before the first permanent widget.
GAP_PX = 24
MIN_MESSAGE_PX = 120
MESSAGE_ROOM_PX = 220  # kept for messages when the summary must give way
# A permanent widget shown, hidden, resized or moved by the layout changes the room left.
REFIT_EVENTS = (QEvent.Type.Show, QEvent.Type.Hide, QEvent.Type.Resize, QEvent.Type.Move)


class SummaryLabel(ElidedLabel):
    """A permanent label that gives way: it wants its whole text, gets at most the width
    the status bar allows it, and is shortened in the middle below that. Why: a long library
    name pushed matching's progress and its Stop button past the window's right edge."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent, mode=Qt.TextElideMode.ElideMiddle)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def sizeHint(self) -> QSize:
        width = self.fontMetrics().horizontalAdvance(self.full_text()) + 8
        return QSize(min(width, self.maximumWidth()), super().sizeHint().height())


class StatusBar(QStatusBar):
    """Why: QStatusBar draws a message under its permanent widgets and cuts it mid-word
    ("…the improved model effnet-lite0-s|lib: 81 products"). This one elides it in the
    middle, so a path or model name keeps its start and end, fits it again whenever the
    permanent widgets or the window change size (matching's bar appearing, a longer model
    name), and makes the whole text the bar's tooltip while it is cut."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._permanent: list[QWidget] = []
        self._full = ""
        # Our own timer: re-fitting a message must not restart its timeout.
        self._expiry = QTimer(self)
        self._expiry.setSingleShot(True)
        self._expiry.timeout.connect(self.clearMessage)
        self.messageChanged.connect(self._message_changed)

    def addPermanentWidget(self, widget: QWidget, stretch: int = 0) -> None:
        self._permanent.append(widget)
        widget.installEventFilter(self)
        super().addPermanentWidget(widget, stretch)

    def message_width(self) -> int:
        """Pixels left for a message left of the permanent widgets, as laid out now."""
        shown = [w.geometry().left() for w in self._permanent if not w.isHidden()]
        right = min(shown, default=self.width())
        return max(MIN_MESSAGE_PX, right - GAP_PX)

    def showMessage(self, text: str, timeout: int = 0) -> None:
        self._full = text
        self._refit()
        if timeout > 0:
            self._expiry.start(timeout)
        else:
            self._expiry.stop()

    @property
    def full_message(self) -> str:
        """The message as given, before eliding ("" when none shows)."""
        return self._full

    def _refit(self) -> None:
        if not self._full:
            return
        shown = self.fontMetrics().elidedText(
            self._full, Qt.TextElideMode.ElideMiddle, self.message_width()
        )
        self.setToolTip(self._full if shown != self._full else "")
        if shown != self.currentMessage():
            super().showMessage(shown, 0)

    def _message_changed(self, message: str) -> None:
        if not message:  # cleared (timeout, clearMessage, or Qt's own tips)
            self._full = ""
            self._expiry.stop()
            self.setToolTip("")

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() in (QEvent.Type.Show, QEvent.Type.Hide) and not isinstance(
            watched, SummaryLabel
        ):
            self._cap_summaries(self.width())
        if event.type() in REFIT_EVENTS:
            self._refit()
        return False

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._cap_summaries(event.size().width())
        super().resizeEvent(event)
        self._refit()

    def _cap_summaries(self, width: int) -> None:
        """A summary label may take what the other permanent widgets and some room for a
        message leave; it is shortened below that."""
        others = sum(
            w.sizeHint().width() + 8
            for w in self._permanent
            if not w.isHidden() and not isinstance(w, SummaryLabel)
        )
        for widget in self._permanent:
            if isinstance(widget, SummaryLabel):
                widget.setMaximumWidth(max(120, width - others - MESSAGE_ROOM_PX))
