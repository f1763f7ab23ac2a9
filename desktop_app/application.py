"""The app's QApplication: it lets the window close first when the app is asked to quit."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Signal
from PySide6.QtWidgets import QApplication


class Application(QApplication):
    """Why: Qt answers a quit (Cmd+Q or the Dock's Quit on macOS, a session manager,
    ``app.quit()``) by closing the open modal dialog first. A progress dialog's close means
    Cancel and keeps it open until the work stops, so the quit was refused and the app
    stayed open. ``quit_requested`` comes first, so the window can close at once
    (``MainWindow.quit_now``), which stops the work without asking."""

    quit_requested = Signal()

    def event(self, e: QEvent) -> bool:
        if e.type() == QEvent.Type.Quit:
            self.quit_requested.emit()
        return super().event(e)
