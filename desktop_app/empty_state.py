"""The first-run page: says what to do next instead of showing empty panes."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QCommandLinkButton,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from desktop_app.icons import app_icon, icon
from desktop_app.theme import font_size


class WelcomePage(QWidget):
    create_default = Signal()
    open_library = Signal()
    import_catalog = Signal()
    try_demo = Signal()

    def __init__(self, default_path: Path, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.default_path = default_path
        outer = QHBoxLayout(self)
        outer.addStretch(1)
        col = QVBoxLayout()
        col.addStretch(1)
        logo = QLabel()
        logo.setPixmap(app_icon().pixmap(88, 88))
        logo.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        col.addWidget(logo)
        self.title = QLabel()
        self.title.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        col.addWidget(self.title)
        self.subtitle = QLabel()
        self.subtitle.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.subtitle.setWordWrap(True)
        self.subtitle.setStyleSheet(f"color: #455a64; font-size: {font_size(1.17)};")
        self.subtitle.setMaximumWidth(640)
        col.addWidget(self.subtitle)
        col.addSpacing(14)

        def button(name: str, title: str, text: str) -> QCommandLinkButton:
            b = QCommandLinkButton(title, text)
            b.setIcon(icon(name))
            b.setIconSize(QSize(28, 28))
            b.setMinimumWidth(600)
            b.setMaximumWidth(640)
            col.addWidget(b)
            return b

        self.create_button = button(
            "library",
            "Create a library",
            f"Keeps your catalog, photos and decisions in {default_path}",
        )
        self.open_button = button(
            "library",
            "Open or create a library in another folder…",
            "For example on a shared drive or a USB stick",
        )
        self.import_button = button(
            "import",
            "Import a supplier catalog…",
            "A folder of product images, plus an optional CSV sheet with names and prices",
        )
        self.demo_button = button(
            "demo",
            "Try the demo catalog",
            "81 grocery products and 40 shop photos, to see how matching and review work",
        )
        col.addSpacing(14)
        self.steps = QLabel(
            "<b>How it works:</b> import your supplier's catalog → drop photos of delivered "
            "goods → confirm the right product with one key → export the inventory CSV"
        )
        self.steps.setMaximumWidth(640)
        self.steps.setWordWrap(True)
        self.steps.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        self.steps.setStyleSheet("color: #546e7a;")
        col.addWidget(self.steps)
        col.addStretch(2)
        outer.addLayout(col)
        outer.addStretch(1)
        self.create_button.clicked.connect(self.create_default)
        self.open_button.clicked.connect(self.open_library)
        self.import_button.clicked.connect(self.import_catalog)
        self.demo_button.clicked.connect(self.try_demo)
        self.set_state(None)

    def set_state(self, library: Path | None, busy: bool = False) -> None:
        """No library yet, or a library without a catalog: show the matching next steps."""
        if library is None:
            self.title.setText("<h1 style='margin:0'>Welcome to ShopMatch</h1>")
            self.subtitle.setText(
                "Match photos of delivered goods to your supplier catalog — offline, on this "
                "computer. Start with a library:"
            )
        else:
            self.title.setText(f"<h1 style='margin:0'>{_esc(library.name)} has no catalog yet</h1>")
            self.subtitle.setText(
                "Import your supplier's catalog to start matching photos, or load the demo."
            )
        exists = (self.default_path / "shopmatch.db").exists()
        self.create_button.setText("Open your library" if exists else "Create a library")
        self.create_button.setVisible(library is None)
        self.open_button.setVisible(library is None)
        self.import_button.setVisible(library is not None)
        for b in (self.create_button, self.open_button, self.import_button, self.demo_button):
            b.setEnabled(not busy)


def _esc(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
