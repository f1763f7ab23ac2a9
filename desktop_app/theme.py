"""The window's colours: light, whatever the system's scheme.

The design is light (dark-grey line icons, pale accent backgrounds, grey notes). Qt 6 follows
a dark system scheme (Windows 11, macOS, GNOME) with a dark palette, and then the confirmed
card's text was white on pale green, the toolbar icons dark grey on dark grey and the notes
faint (review 25). Until the icons and accents have dark variants, the app stays light.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QApplication

_watching = False  # the scheme-change handler is connected once per process


def font_size(factor: float) -> str:
    """A style sheet font size ``factor`` times the window's text: fixed pixel sizes stayed
    small when staff set larger text, and fixed points differ per platform (macOS: 72 dpi)."""
    base = QApplication.font().pointSizeF()
    return f"{(base if base > 0 else 9.0) * factor:.1f}pt"


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Window).lightness() < 128


def keep_light(app: QApplication) -> None:
    """Ask Qt for the light scheme; where the platform still hands out a dark palette, use
    the Fusion style's own light one. Done again when the system's scheme changes."""
    hints = app.styleHints()
    if hasattr(hints, "setColorScheme"):  # Qt 6.8+
        hints.setColorScheme(Qt.ColorScheme.Light)
    if is_dark(app.palette()):
        app.setStyle("Fusion")
        app.setPalette(app.style().standardPalette())
    global _watching
    if not _watching and hasattr(hints, "colorSchemeChanged"):
        _watching = True
        hints.colorSchemeChanged.connect(lambda _scheme: keep_light(app))
