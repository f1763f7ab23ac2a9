"""Message boxes and the About dialog: every failure reaches the user as one plain sentence."""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass

import PySide6
from PySide6.QtCore import QSize, Qt, qVersion
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QMessageBox,
    QVBoxLayout,
    QWidget,
)

from desktop_app.icons import app_icon
from engine import __version__
from engine.errors import describe
from engine.library import LibraryLockedError

_BUG_TYPES = (KeyError, AttributeError, TypeError, IndexError, AssertionError, NameError)
BUG_SENTENCE = (
    "Something went wrong inside ShopMatch. Your library is safe; the details below help to fix it"
)


def fit_screen(widget: QWidget, size: QSize) -> None:
    """Resize ``widget`` to ``size``, or to what its screen has room for: fixed sizes ran off
    a 1024x600 netbook at 125% (820x480 usable), title bar and buttons with them."""
    screen = widget.screen() or QGuiApplication.primaryScreen()
    area = screen.availableGeometry()
    widget.resize(
        min(size.width(), int(area.width() * 0.95)), min(size.height(), int(area.height() * 0.9))
    )


def error_sentence(exc: BaseException) -> str:
    """The engine's plain sentence, capitalised and ending with a full stop.

    A programming error (say ``KeyError('id')``) has no sentence a user could act on, so it
    gets a general one; engine errors that carry a real sentence keep it.
    """
    text = describe(exc).strip()
    if isinstance(exc, _BUG_TYPES) and " " not in text:
        text = BUG_SENTENCE
    text = text or "an unexpected problem occurred"
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def show_error(
    parent: QWidget | None, what: str, exc: BaseException, details: str = ""
) -> QMessageBox:
    """'Could not <what>.' plus the engine's sentence; the traceback hides under Details."""
    box = QMessageBox(parent)
    box.setWindowTitle("ShopMatch")
    box.setIcon(QMessageBox.Icon.Warning)
    box.setText(f"<b>Could not {what}.</b>")
    hint = ""
    if isinstance(exc, LibraryLockedError):
        hint = "\n\nClose the other ShopMatch window (or command) that uses this library."
    box.setInformativeText(error_sentence(exc) + hint)
    if details:
        box.setDetailedText(details)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    box.exec()
    return box


def ask(parent: QWidget | None, title: str, text: str, informative: str = "") -> bool:
    """A Yes/No question with No as the default: nothing is ever done silently."""
    box = QMessageBox(parent)
    box.setWindowTitle(title)
    box.setIcon(QMessageBox.Icon.Question)
    box.setText(text)
    if informative:
        box.setInformativeText(informative)
    box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
    box.setDefaultButton(QMessageBox.StandardButton.No)
    return box.exec() == QMessageBox.StandardButton.Yes


@dataclass(frozen=True)
class ModelInfo:
    version: str
    architecture: str
    licence: str


class AboutDialog(QDialog):
    """Version, the bundled model's licence (from its manifest) and third-party notices."""

    def __init__(self, parent: QWidget | None, model: ModelInfo | None) -> None:
        super().__init__(parent)
        self.setWindowTitle("About ShopMatch")
        self.setWindowIcon(app_icon())
        layout = QVBoxLayout(self)
        logo = QLabel()
        logo.setPixmap(app_icon().pixmap(72, 72))
        logo.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(logo)
        model_html = (
            f"<p><b>Image model:</b> {model.version} ({model.architecture})<br>"
            f"<b>Model licence:</b> {model.licence or 'not stated in its manifest'}</p>"
            if model
            else "<p><b>Image model:</b> not loaded</p>"
        )
        self.text = QLabel(
            f"<h2>ShopMatch {__version__}</h2>"
            "<p>Matches photos of delivered goods to your supplier catalog,<br>"
            "offline, on this computer.</p>"
            f"{model_html}"
            "<p><b>Demo catalog:</b> GroceryStoreDataset subset (Klasson et al. 2019), "
            "MIT licence.<br>"
            f"<b>Qt:</b> {qVersion()} via PySide6 {PySide6.__version__}, LGPL-3.0.<br>"
            f"<b>Python:</b> {platform.python_version()} on {sys.platform}</p>"
        )
        self.text.setTextFormat(Qt.TextFormat.RichText)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text.setWordWrap(True)
        self.text.setMinimumWidth(460)
        layout.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
