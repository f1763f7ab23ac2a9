"""Entry point of the desktop app (``shopmatch-desktop``, ``python -m desktop_app``)."""

from __future__ import annotations

import argparse
import signal
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtWidgets import QApplication

from desktop_app import selftest
from desktop_app import settings as keys
from desktop_app.application import Application
from desktop_app.dialogs import show_error
from desktop_app.icons import app_icon
from desktop_app.main_window import MainWindow
from desktop_app.theme import keep_light
from engine import __version__
from engine.db import DB_NAME

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """Our options; anything else (e.g. ``-platform offscreen``) is passed on to Qt."""
    p = argparse.ArgumentParser(
        prog="shopmatch-desktop",
        description="Match photos of delivered goods to a supplier catalog, offline.",
    )
    p.add_argument(
        "--library",
        type=Path,
        metavar="PATH",
        help="open (or create) the library in this folder instead of the last one used",
    )
    p.add_argument(
        "--demo",
        action="store_true",
        help="open the demo library (or --library PATH), importing the bundled demo catalog "
        "and queueing the demo photos when it is empty",
    )
    p.add_argument(
        "--settings",
        type=Path,
        metavar="FILE",
        help="keep settings in this .ini file instead of the user's settings (for tests)",
    )
    p.add_argument(
        "--self-test",
        nargs="?",
        const="all",
        choices=selftest.SCOPES,
        metavar="SCOPE",
        help="check this installation without showing a window (temporary library, demo "
        "catalog, one match, Qt, learning stack) and exit 0 if it works; SCOPE 'matching' "
        "skips the learning check",
    )
    p.add_argument("--version", action="version", version=f"ShopMatch {__version__}")
    return p.parse_known_args(list(argv))


def create_window(args: argparse.Namespace) -> MainWindow:
    """Build the window and start opening a library as the options ask."""
    settings = (
        QSettings(str(args.settings), QSettings.Format.IniFormat)
        if args.settings
        else QSettings(keys.ORGANISATION, keys.APPLICATION)
    )
    window = MainWindow(settings)
    if args.demo:
        window.open_demo(args.library)
    elif args.library:
        window.open_library(args.library)
    else:
        last = settings.value(keys.LAST_LIBRARY)
        if last and (Path(str(last)) / DB_NAME).exists():
            window.open_library(Path(str(last)))
    return window


def main(argv: Sequence[str] | None = None) -> int:
    args, qt_args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.self_test:  # before any QApplication: the self-test makes its own, offscreen
        return selftest.run(args.self_test)
    existing = QApplication.instance()
    app = (
        existing
        if isinstance(existing, QApplication)
        else Application([sys.argv[0] if sys.argv else "shopmatch-desktop", *qt_args])
    )
    app.setOrganizationName(keys.ORGANISATION)
    app.setApplicationName(keys.APPLICATION)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("shopmatch-desktop")
    app.setWindowIcon(app_icon())
    keep_light(app)

    window = create_window(args)
    app.aboutToQuit.connect(window.quit_now)  # stops the engine thread cleanly on any quit
    if isinstance(app, Application):  # before Qt's own answer, which a progress dialog refused
        app.quit_requested.connect(window.quit_now)

    def excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        """A bug in a slot must not pass silently or kill the window: show it, keep going."""
        details = "".join(traceback.format_exception(kind, exc, tb))
        sys.stderr.write(details)
        show_error(window, "finish that action", exc, details)

    # Ctrl+C in the terminal (or a service manager's SIGTERM) closes the window properly, so
    # settings are saved and the engine thread stops at a safe point, without asking (no one
    # is there to answer). Python only sees signals when it runs, hence the idle timer.
    handlers = {s: signal.signal(s, lambda *_: window.quit_now()) for s in _STOP_SIGNALS}
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(250)
    previous, sys.excepthook = sys.excepthook, excepthook
    try:
        window.show()
        return int(app.exec())
    finally:
        wake.stop()
        app.aboutToQuit.disconnect(window.quit_now)
        if isinstance(app, Application):
            app.quit_requested.disconnect(window.quit_now)
        sys.excepthook = previous
        for s, h in handlers.items():
            signal.signal(s, h)


if __name__ == "__main__":
    sys.exit(main())
