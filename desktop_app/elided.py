"""A one-line label that shortens its text with "…" instead of being cut off."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget


class ElidedLabel(QLabel):
    """One line of plain text that ends in "…" (or, with ``mode``, loses its middle) when it
    does not fit, instead of being cut; the whole text stays available as ``full_text``."""

    def __init__(
        self,
        text: str = "",
        parent: QWidget | None = None,
        mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight,
    ) -> None:
        super().__init__(parent)
        self._full = text
        self._mode = mode
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setMinimumWidth(40)

    def setText(self, text: str) -> None:
        self._full = text
        self.setToolTip(text if len(text) > 30 else "")
        self.updateGeometry()  # for subclasses whose size hint follows the text
        self._elide()

    def full_text(self) -> str:
        return self._full

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = max(10, self.contentsRect().width())
        super().setText(self.fontMetrics().elidedText(self._full, self._mode, width))
