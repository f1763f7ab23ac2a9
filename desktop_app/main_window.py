"""The main window: menus and shortcuts, drag and drop, and the library lifecycle.

Pages: the welcome page until a library with a catalog is open, then Review / Catalog /
Learning tabs. Every engine call goes through ``self.worker`` (one engine thread).
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import (
    QByteArray,
    QEvent,
    QMimeData,
    QPoint,
    QRect,
    QSettings,
    QSize,
    QStandardPaths,
    Qt,
    QTimer,
    QUrl,
)
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDragMoveEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QKeyEvent,
    QKeySequence,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QApplication,
    QDialog,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QTabWidget,
    QToolButton,
    QWidget,
)

from desktop_app import settings as keys
from desktop_app.catalog_browser import CatalogBrowser
from desktop_app.dialogs import AboutDialog, ModelInfo, ask, show_error
from desktop_app.empty_state import WelcomePage
from desktop_app.export_dialog import ExportDialog
from desktop_app.icons import app_icon, icon
from desktop_app.import_dialog import (
    ImportSetupDialog,
    ImportSummaryDialog,
    ProgressDialog,
    ask_removals,
)
from desktop_app.learning import LearningPanel, training_threads
from desktop_app.library_check import LibraryCheck
from desktop_app.previews import PreviewLoader
from desktop_app.queue_view import QueueModel
from desktop_app.review import ReviewPage
from desktop_app.session import ReviewSession
from desktop_app.status_bar import StatusBar, SummaryLabel
from desktop_app.worker import EngineWorker, NoLibraryError, Priority, TaskContext, TaskError
from engine.backups import DATABASE_RESTORED
from engine.backups import FOLDER as BACKUPS
from engine.catalog_import import ImportReport, RemovalsNeedConsent
from engine.db import DB_NAME
from engine.errors import database_damaged
from engine.export_csv import SEPARATOR_SETTING, SPREADSHEET_SUFFIXES, separator_name
from engine.home import expand_home
from engine.images import IMAGE_SUFFIXES
from engine.library import DamagedDatabaseError, LibraryStatus, default_library_path
from engine.photo_scope import PhotoFolder, PhotoScope, export_summary
from engine.progress import Cancelled, CancelToken, Progress, format_eta
from engine.resources import demo_dir
from engine.wording import count

BACKUP_CHECK_MS = 30 * 60 * 1000

if TYPE_CHECKING:
    from engine.reembed import Embedded, EmbedPlan

DEFAULT_SIZE = QSize(1280, 720)
MINIMUM_SIZE = QSize(960, 600)
TITLE_BAR_PX = 40  # room for a window manager's title bar and border, which Qt cannot know yet


def demo_library_path() -> Path:
    """The demo gets a library of its own, so it never mixes with the shop's real data."""
    return default_library_path().parent / "Demo library"


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings, worker: EngineWorker | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.worker = worker or EngineWorker(self)
        self._quitting = False  # quit_now(): the app is quitting, so closing asks nothing
        self.worker.error.connect(self.show_task_error)
        self.worker.library_changed.connect(self._on_library_changed)
        self.library_path: Path | None = None
        self.library_status: LibraryStatus | None = None
        self.import_progress: ProgressDialog | None = None
        self.import_summary: ImportSummaryDialog | None = None
        self.last_import: ImportReport | None = None
        self.last_export: tuple[Path, int] | None = None
        self._said_while_opening: list[str] = []
        self._paste_counter = itertools.count(1)
        self._importing = False

        self.setWindowTitle("ShopMatch")
        self.setWindowIcon(app_icon())
        self.setAcceptDrops(True)
        # 960x600, or less on a smaller screen (a 1024x600 netbook), so the window can fit.
        area = (self.screen() or QGuiApplication.primaryScreen()).availableGeometry()
        self.setMinimumSize(
            min(MINIMUM_SIZE.width(), area.width()),
            min(MINIMUM_SIZE.height(), area.height() - TITLE_BAR_PX),
        )

        self.loader = PreviewLoader(self)
        self.model = QueueModel(self)
        self.review = ReviewPage(self.model)
        self.session = ReviewSession(self.worker, self.review, self.loader, self.show_task_error)
        self.catalog = CatalogBrowser(self.worker)
        self.learning = LearningPanel(self.worker)
        self.welcome = WelcomePage(default_library_path())
        self.checker = LibraryCheck(self, self.worker)
        self.checker.repaired.connect(self._after_repair)

        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.review, icon("review"), "Review")
        self.tabs.addTab(self.catalog, icon("catalog"), "Catalog")
        self.tabs.addTab(self.learning, icon("learning"), "Learning")
        self.pages = QStackedWidget()
        self.pages.addWidget(self.welcome)
        self.pages.addWidget(self.tabs)
        self.setCentralWidget(self.pages)

        self._build_status_bar()
        self._build_actions()
        self._build_menus()

        self.welcome.create_default.connect(lambda: self.open_library(default_library_path()))
        self.welcome.open_library.connect(self.choose_library)
        self.welcome.import_catalog.connect(self.choose_import)
        self.welcome.try_demo.connect(lambda: self.open_demo())
        self.tabs.currentChanged.connect(self._on_tab_changed)
        for said in (self.session.message, self.session.photo_message):
            said.connect(lambda text: self.statusBar().showMessage(text, 6000))
        self.session.photo_message_expired.connect(self._withdraw_message)
        self.session.matching_progress.connect(self._on_matching_progress)
        self.session.decisions_changed.connect(self._decisions_changed)
        self.learning.activate_requested.connect(self.switch_model)
        self.learning.model_activated.connect(self._on_model_trained)
        self.learning.said.connect(lambda text: self.statusBar().showMessage(text, 12000))

        self._match_clock: tuple[float, int] | None = None  # (start, photos done then)
        self._status_timer = QTimer(self)
        self._status_timer.setSingleShot(True)
        self._status_timer.setInterval(400)
        self._status_timer.timeout.connect(self.refresh_status)
        # The engine backs the library up when it closes; a window left open all week would
        # otherwise never take one (engine.backups decides whether one is due).
        self._backup_warned = ""  # the backup problem last shown in the status bar
        self._backup_timer = QTimer(self)
        self._backup_timer.setInterval(BACKUP_CHECK_MS)
        self._backup_timer.timeout.connect(self.backup_if_due)
        self._backup_timer.start()

        # Accept All Confident (toolbar, menu, A) follows the review page's own button.
        self.review.confident_count.connect(self._update_accept)
        threshold = float(self.settings.value(keys.THRESHOLD, 0.8))
        self.review.threshold.setValue(round(threshold * 100))
        self.model.set_threshold(threshold)
        self.review.threshold_changed.connect(lambda t: self.settings.setValue(keys.THRESHOLD, t))
        geometry = self.settings.value(keys.GEOMETRY)
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self._first_geometry()
        splitter = self.settings.value(keys.SPLITTER)
        if isinstance(splitter, QByteArray) and not splitter.isEmpty():
            self.review.splitter.restoreState(splitter)
        self._update_pages()

    def _withdraw_message(self, text: str) -> None:
        bar = self.statusBar()
        if isinstance(bar, StatusBar) and bar.full_message == text:
            bar.clearMessage()

    def _first_geometry(self) -> None:
        """1280x720 where that fits the screen with its title bar, else the usable area less
        a title bar's room, centred: on a 1280x720 or 1366x768 screen a 720-px window pushed
        the status bar (matching progress, messages) below the screen's edge."""
        area = (self.screen() or QGuiApplication.primaryScreen()).availableGeometry()
        # Never below the minimum: __init__ made that fit this same area.
        size = QSize(
            min(DEFAULT_SIZE.width(), area.width()),
            min(DEFAULT_SIZE.height(), area.height() - TITLE_BAR_PX),
        )
        frame = QRect(QPoint(0, 0), size)
        frame.moveCenter(area.center())
        frame.moveTop(max(area.top() + TITLE_BAR_PX, frame.top()))
        self.setGeometry(frame)

    # -- construction ------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        bar = StatusBar(self)
        self.setStatusBar(bar)
        self.library_label = SummaryLabel("No library open")
        bar.addPermanentWidget(self.library_label)
        self.match_label = QLabel()
        self.match_bar = QProgressBar()
        self.match_bar.setMaximumWidth(180)
        self.match_bar.setTextVisible(False)
        self.match_stop = QToolButton()
        self.match_stop.setText("Stop")
        self.match_stop.setToolTip("Stop matching; photos already matched stay")
        self.match_stop.clicked.connect(self.session.stop_matching)
        for w in (self.match_label, self.match_bar, self.match_stop):
            bar.addPermanentWidget(w)
            w.hide()

    def _action(
        self,
        text: str,
        slot: Callable[[], object],
        shortcut: QKeySequence | str | list[QKeySequence] | None = None,
        icon_name: str | None = None,
        tip: str | None = None,
    ) -> QAction:
        act = QAction(text, self)
        if icon_name:
            act.setIcon(icon(icon_name))
        if isinstance(shortcut, list):
            act.setShortcuts(shortcut)
        elif shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        if tip:
            act.setStatusTip(tip)
            act.setToolTip(tip)
        act.triggered.connect(lambda _checked=False: slot())
        self.addAction(act)  # window-wide shortcuts, with or without a visible menu
        return act

    def _build_actions(self) -> None:
        K = QKeySequence
        s = self.session
        self.act_open = self._action(
            "&Open or Create Library…", self.choose_library, K.StandardKey.Open, "library"
        )
        self.act_import = self._action(
            "&Import Catalog…",
            self.choose_import,
            "Ctrl+I",
            "import",
            "Import a supplier catalog: images folder plus optional sheet",
        )
        self.act_add = self._action(
            "&Add Photos…",
            self.choose_photos,
            "Ctrl+Shift+O",
            "add-photos",
            "Add photos to match (you can also drop them on the window)",
        )
        self.act_add_folder = self._action(
            "Add Photo &Folder…", self.choose_photo_folder, "Ctrl+Shift+F", "library"
        )
        self.act_paste = self._action(
            "&Paste Photos",
            self.paste,
            K.StandardKey.Paste,
            "paste",
            "Add a copied picture or copied photo files",
        )
        self.act_export = self._action(
            "&Export Inventory CSV…",
            self.choose_export,
            "Ctrl+E",
            "export",
            "Save the confirmed inventory as a CSV for a spreadsheet",
        )
        self.act_backup = self._action(
            "&Back Up Library Now",
            self.back_up_now,
            None,
            None,
            "Copy the library's database (catalog, photos, decisions) into its backups folder; "
            "one is also taken when the library closes after a change",
        )
        self.act_check = self._action(
            "&Check and Repair Library…",
            self.checker.start,
            None,
            None,
            "Check the library's database, index, models and thumbnails; repairs only after "
            "you have seen what was found",
        )
        self.act_demo = self._action("Try the &Demo Catalog", self.open_demo, None, "demo")
        self.act_quit = self._action("&Quit", self.close, K.StandardKey.Quit)
        self.act_undo = self._action("&Undo Last Decision", s.undo, K.StandardKey.Undo, "undo")
        self.act_find = self._action(
            "&Find Product…", self._find_product, K.StandardKey.Find, "search"
        )
        self.act_confirm_top = self._action(
            "Confirm &Top Match",
            lambda: s.confirm_index(0),
            [K(Qt.Key.Key_Return), K(Qt.Key.Key_Enter)],
            "confirm",
        )
        self.act_confirm_n = [
            self._action(f"Confirm Suggestion {n}", lambda n=n: s.confirm_index(n - 1), str(n))
            for n in range(1, 10)
        ]
        self.act_no_match = self._action("&No Match", s.no_match, "N", "no-match")
        self.act_skip = self._action("&Skip", s.skip, "S", "skip")
        self.act_points = self._action("Show Matching &Points", lambda: s.show_points(0), "P")
        self.act_remove = self._action(
            "&Remove from List",
            s.remove_current,
            K.StandardKey.Delete,  # Delete (on a Mac, its Delete key): not Backspace
            None,
            "Take the selected photo off the list; its decisions stay in the library",
        )
        self.act_prev = self._action(
            "&Previous Photo",
            lambda: s.move(-1),
            [K(Qt.Key.Key_Left), K(Qt.Key.Key_Up)],
            "previous",
        )
        self.act_next = self._action(
            "Ne&xt Photo", lambda: s.move(1), [K(Qt.Key.Key_Right), K(Qt.Key.Key_Down)], "next"
        )
        self.act_accept = self._action(
            "&Accept All Confident…",
            lambda: s.accept_confident(self),
            "A",
            "accept-all",
            "Confirm the top suggestion of every photo scoring at or above the threshold",
        )
        self.act_stop = self._action("S&top Matching", s.stop_matching)
        self.act_tab = [
            self._action(name, lambda i=i: self._show_tab(i), f"Ctrl+{i + 1}", ic)
            for i, (name, ic) in enumerate(
                (("&Review", "review"), ("&Catalog", "catalog"), ("&Learning", "learning"))
            )
        ]
        self.act_shortcuts = self._action(
            "&Keyboard Shortcuts", self.show_shortcuts, K.StandardKey.HelpContents
        )
        self.act_about = self._action("&About ShopMatch", self.show_about, None, "about")
        self.review_actions = [
            self.act_confirm_top,
            *self.act_confirm_n,
            self.act_no_match,
            self.act_skip,
            self.act_prev,
            self.act_next,
            self.act_accept,
            self.act_remove,
            self.act_points,  # P on the Catalog tab opened a hidden review photo's points
        ]

    def _build_menus(self) -> None:
        mb = self.menuBar()
        m = mb.addMenu("&File")
        for a in (
            self.act_open,
            self.act_import,
            None,
            self.act_add,
            self.act_add_folder,
            self.act_paste,
            None,
            self.act_export,
            self.act_backup,
            self.act_check,
            None,
            self.act_demo,
            None,
            self.act_quit,
        ):
            m.addSeparator() if a is None else m.addAction(a)
        m = mb.addMenu("&Edit")
        m.addAction(self.act_undo)
        m.addAction(self.act_find)
        m = mb.addMenu("&Review")
        for a in (
            self.act_confirm_top,
            self.act_no_match,
            self.act_skip,
            self.act_remove,
            None,
            self.act_prev,
            self.act_next,
            None,
            self.act_accept,
            self.act_stop,
            None,
            self.act_points,
        ):
            m.addSeparator() if a is None else m.addAction(a)
        sub = m.addMenu("Confirm Suggestion")
        for a in self.act_confirm_n:
            sub.addAction(a)
        m = mb.addMenu("&View")
        for a in self.act_tab:
            m.addAction(a)
        m = mb.addMenu("&Help")
        m.addAction(self.act_shortcuts)
        m.addAction(self.act_about)
        tb = self.addToolBar("Main")
        tb.setObjectName("main-toolbar")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        for a in (
            self.act_open,
            self.act_import,
            self.act_add,
            self.act_export,
            None,
            self.act_accept,
            self.act_undo,
        ):
            tb.addSeparator() if a is None else tb.addAction(a)
        self.toolbar = tb
        self._toolbar_labelled_width: int | None = None  # measured once it is polished

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_toolbar()

    def _fit_toolbar(self) -> None:
        """Icons only (names in tooltips) below the width the labelled buttons need: Qt
        would otherwise hide the last ones, Undo among them, behind an extension arrow."""
        tb = self.toolbar
        labelled = Qt.ToolButtonStyle.ToolButtonTextBesideIcon
        if self._toolbar_labelled_width is None:
            if tb.toolButtonStyle() != labelled:
                return
            self._toolbar_labelled_width = tb.sizeHint().width()
        style = (
            labelled
            if self.width() >= self._toolbar_labelled_width
            else Qt.ToolButtonStyle.ToolButtonIconOnly
        )
        if tb.toolButtonStyle() != style:
            tb.setToolButtonStyle(style)

    # -- library lifecycle -------------------------------------------------------------------
    def choose_library(self) -> None:
        start = str(self.library_path or default_library_path().parent)
        path = QFileDialog.getExistingDirectory(
            self, "Open a library folder, or choose an empty folder for a new library", start
        )
        if not path:
            return
        folder = Path(path)
        if (
            folder.is_dir()
            and not (folder / DB_NAME).exists()
            and not (folder / BACKUPS).is_dir()  # a library that lost its database: offered
            and any(folder.iterdir())  # its backup on opening, not a new one over the top
            and not ask(
                self,
                "Create library",
                f"“{folder.name}” is not a ShopMatch library yet. Create a new library there?",
                "The library keeps its catalog, photo list and decisions in this folder.",
            )
        ):
            return
        self.open_library(folder)

    def open_library(
        self, path: Path, then: Callable[[], None] | None = None, restore_damaged: bool = False
    ) -> None:
        """Open (or create) the library at ``path`` on the engine thread; a damaged database
        is put back from its newest backup when the user agrees (``restore_damaged``)."""
        if (
            self.learning.training
            and path != self.library_path
            and not ask(
                self,
                "Open another library",
                "The model of this library is still being fine-tuned. Open another library anyway?",
                "Fine-tuning stops; this library's current model stays active and nothing else "
                "is lost.",
            )
        ):
            return
        self._remember_unmatched()
        self.session.reset()
        self.welcome.set_state(self.library_path, busy=True)
        self.statusBar().showMessage(f"Opening {path}…")
        # What the old library's last work said while this one opened (an export's 'written
        # to …') would be wiped by 'Opened …' at once: it is said with it.
        self._said_while_opening = []

        def opened(_p: Path) -> None:
            said, self._said_while_opening = self._said_while_opening, []
            self.statusBar().showMessage(
                "; ".join([f"Opened {path}", *said]), 12000 if said else 4000
            )
            self.settings.setValue(keys.LAST_LIBRARY, str(path))
            self.refresh_status(then=then)
            self.session.resume(*self._take_unmatched(path))
            self.worker.submit(
                lambda ctx: list(ctx.lib.repairs),
                what="read what was repaired",
                priority=Priority.QUERY,
                on_result=self.show_repairs,
            )

        def failed(err: TaskError) -> None:
            self.statusBar().clearMessage()
            self._update_pages()
            if (
                isinstance(err.exc, DamagedDatabaseError)
                and err.exc.backup is not None
                and not restore_damaged
            ):
                self.offer_backup(Path(path), err.exc.backup_text, then)
                return
            self.show_task_error("open the library", err)

        self.worker.open_library(
            Path(path), on_result=opened, on_error=failed, restore_damaged=restore_damaged
        )

    def back_up_now(self) -> None:
        def done(path: Path) -> None:
            self.statusBar().showMessage(f"Library backed up to {path}", 8000)
            self.refresh_status()

        self.worker.submit(
            lambda ctx: ctx.lib.take_backup(),
            what="back up the library",
            priority=Priority.INTERACTIVE,
            on_result=done,
        )

    def backup_if_due(self) -> None:
        if self.library_path is None:
            return
        self.worker.submit(
            lambda ctx: ctx.lib.backup_if_due(),
            what="back up the library",
            priority=Priority.BACKGROUND,
            on_result=lambda _taken: self.refresh_status(),  # last backup, or why none
        )

    def offer_backup(self, path: Path, backup: str, then: Callable[[], None] | None) -> None:
        """A database too damaged to open: offer its newest backup rather than a dead end."""
        if ask(
            self,
            "Library damaged",
            f"The library “{path.name}” is damaged and cannot be opened. Put back {backup}?",
            "Decisions made after that backup are recovered from the damaged file where it can "
            "still be read. The damaged file is kept in the library's backups folder, and "
            "nothing else is deleted.",
        ):
            self.open_library(path, then=then, restore_damaged=True)

    def show_repairs(self, repairs: list[str]) -> None:
        """Say what opening the library had to repair (e.g. a damaged model file): it was
        fixed, but the user should know, and may want to check their disk or backups."""
        if not repairs:
            return
        box = QMessageBox(self)
        box.setIcon(QMessageBox.Icon.Information)
        box.setWindowTitle("Library repaired")
        restored = any(line.startswith(DATABASE_RESTORED) for line in repairs)
        box.setText(
            "ShopMatch put back the library's newest backup."
            if restored
            else "ShopMatch found damage in this library and repaired it. "
            "Nothing you recorded was lost."
        )
        # Restored: the repair line says which backup, and what of the later decisions came
        # back from the damaged file; the user needs that without opening the details.
        said = next((line for line in repairs if line.startswith(DATABASE_RESTORED)), "")
        box.setInformativeText(
            (said[:1].upper() + said[1:] + ".\n\n" if said else "")
            + "If this happens again, check the disk the library is on (and your backups)."
        )
        box.setDetailedText("\n".join(repairs))
        box.open()
        self.repairs_box = box

    def _on_library_changed(self, path: Path | None) -> None:
        self.library_path = path
        self.library_status = None
        self.setWindowTitle(f"ShopMatch — {path.name}" if path else "ShopMatch")
        self.catalog.loaded = False
        self.learning.library_changed()
        self._update_pages()

    def refresh_status(self, then: Callable[[], None] | None = None) -> None:
        def run(ctx: TaskContext) -> LibraryStatus:
            return ctx.lib.status()

        def done(status: LibraryStatus) -> None:
            self.library_status = status
            self.library_label.setText(
                f"{status.path.name}: {count(status.products, 'product')} · "
                f"{count(status.photos, 'photo')} · "
                f"{status.confirmed} confirmed · model {status.model_version}"
            )
            problem = status.backup_problem
            self.library_label.setToolTip(
                f"{self.library_label.full_text()}\n{status.path}\n"
                f"Last backup: {status.last_backup}"
                + (f"\nScores: {status.scores}" if status.scores else "")
                + (f"\nNo backup can be taken: {problem}" if problem else "")
            )
            if problem and problem != self._backup_warned:  # once per cause, not per refresh
                self.statusBar().showMessage(
                    f"No backup of the library can be taken: {problem}", 20000
                )
            self._backup_warned = problem
            self._update_pages()
            if then is not None:
                then()

        def failed(err: TaskError) -> None:
            if not isinstance(err.exc, NoLibraryError):
                self.show_task_error("read the library", err)

        self.worker.submit(run, what="read the library", on_result=done, on_error=failed)

    def _update_pages(self) -> None:
        opening = self.library_path is not None and self.library_status is None
        has_catalog = self.library_status is not None and self.library_status.products > 0
        if opening:
            pass  # keep the page until the library's status says which one fits
        elif has_catalog:
            arriving = self.pages.currentWidget() is not self.tabs
            self.pages.setCurrentWidget(self.tabs)
            if arriving:
                self._focus_tab()
            if self.tabs.currentWidget() is self.catalog and not self.catalog.loaded:
                self.catalog.reload()
        else:
            self.pages.setCurrentWidget(self.welcome)
            self.welcome.set_state(self.library_path, busy=self._importing)
        if self.library_path is None:
            self.library_label.setText("No library open")
        open_ = self.library_path is not None
        for a in (self.act_import, self.act_stop):
            a.setEnabled(open_)
        # Photos, export and undo need a catalog (or photos already in the library): before
        # the first import they could only lead to "no suggestions" and empty files.
        st = self.library_status
        usable = open_ and st is not None and (st.products > 0 or st.photos > 0)
        needs_catalog = (self.act_add, self.act_add_folder, self.act_paste, self.act_export)
        for a in (*needs_catalog, self.act_undo, self.act_backup, self.act_check):
            a.setEnabled(usable)
        self._update_review_actions()

    def _update_review_actions(self) -> None:
        on_tabs = self.pages.currentWidget() is self.tabs
        on_review = on_tabs and self.tabs.currentWidget() is self.review
        for a in self.review_actions:
            a.setEnabled(on_review)
        for a in self.act_tab:
            a.setEnabled(on_tabs)
        # Ctrl+F: the review's product search, or on the Catalog tab its filter box.
        on_catalog = on_tabs and self.tabs.currentWidget() is self.catalog
        self.act_find.setEnabled(on_review or on_catalog)
        self._update_accept()

    def _update_accept(self, confident: int | None = None) -> None:
        """Accept All Confident: enabled only with something to accept, saying how much
        (pressing A with nothing confident used to be the only way to find out).
        ``confident``: the review page's own count, when it has just made one."""
        if confident is None:
            confident = len(self.model.confident())
        n = confident if self.act_confirm_top.isEnabled() else 0
        threshold = f"{self.model.threshold:.0%}"
        self.act_accept.setEnabled(n > 0)
        self.act_accept.setToolTip(
            f"Confirm the top suggestion of {count(n, 'photo')} scoring {threshold} or more (A)"
            if n
            else f"No photo waiting for review has a suggestion scoring {threshold} or more"
        )

    def _on_tab_changed(self, _index: int) -> None:
        self._update_review_actions()
        current = self.tabs.currentWidget()
        if current is self.catalog and not self.catalog.loaded and self.library_path:
            self.catalog.reload()
        elif current is self.learning and self.library_path:
            self.learning.refresh()

    def _show_tab(self, index: int) -> None:
        self.tabs.setCurrentIndex(index)

    def _focus_tab(self) -> None:
        """Give the keyboard to the current tab's natural first control (the photo queue on
        Review). Why: the tabs replaced the welcome page with nothing focused, so typed
        letters went nowhere and the first Tab landed on the tab bar (review 28)."""
        first = {
            self.review: self.review.queue,
            self.catalog: self.catalog.text,
            self.learning: self.learning.versions,
        }
        target = first.get(self.tabs.currentWidget(), self.review.queue)
        target.setFocus(Qt.FocusReason.OtherFocusReason)

    # -- keys that belong to the focused control ---------------------------------------------
    def _owns_enter(self, e: QKeyEvent) -> QWidget | None:
        """The focused control when it has its own use for this Enter: a button (pressing
        it) or a list other than the photo queue (choosing its row). None elsewhere, where
        Enter confirms the top suggestion as the README promises."""
        if e.key() not in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            return None
        focus = QApplication.focusWidget()
        if focus is None or not self.isAncestorOf(focus):
            return None
        if isinstance(focus, QAbstractButton) or (
            isinstance(focus, QAbstractItemView) and focus is not self.review.queue
        ):
            return focus
        return None

    def event(self, e: QEvent) -> bool:
        """Enter on a focused 'No match (N)', 'Skip (S)' or 'Accept N confident…' is that
        control's: the window-wide Enter shortcut took it first and confirmed the photo's top
        suggestion instead (review 28). Accepting the override makes Qt deliver the key to the
        focused control rather than to the shortcut."""
        if (
            e.type() == QEvent.Type.ShortcutOverride
            and isinstance(e, QKeyEvent)
            and self._owns_enter(e) is not None
        ):
            e.accept()
            return True
        return super().event(e)

    def keyPressEvent(self, e: QKeyEvent) -> None:
        """Enter on a focused button presses it: Qt's push buttons do that only in dialogs
        (autoDefault), so outside one the key came up here unused."""
        focus = self._owns_enter(e)
        if isinstance(focus, QPushButton | QToolButton):  # a check box keeps Qt's rule: Space
            if focus.isEnabled():
                focus.click()
            return
        super().keyPressEvent(e)

    def _decisions_changed(self) -> None:
        self._status_timer.start()
        self.catalog.decisions_changed()  # its detail may show the product just confirmed
        if self.tabs.currentWidget() is self.learning:
            self.learning.refresh()

    # -- demo --------------------------------------------------------------------------------
    def open_demo(self, path: Path | None = None) -> None:
        """Open the demo library; import the demo catalog (again, if an import was cut
        short) and queue its photos if it has none."""
        target = Path(path) if path else demo_library_path()
        demo = demo_dir()

        def after_open() -> None:
            status = self.library_status
            if status is None:
                return
            queue_photos = status.photos == 0
            # An import cut short (the app quit mid-way) left pictures out: finish it.
            pictures = sum(1 for f in (demo / "catalog").iterdir() if f.is_file())
            if status.products == 0 or status.catalog_images < pictures:
                self.import_catalog(
                    demo / "catalog",
                    demo / "catalog.csv",
                    then=(lambda _r: self.add_paths([demo / "photos"])) if queue_photos else None,
                    next_step=(
                        "Next: the demo's delivery photos are matched now. Pick a photo on the "
                        "left and press Enter to confirm its top suggestion, or 1–9 for another."
                    )
                    if queue_photos
                    else None,
                )
            elif queue_photos:
                self.add_paths([demo / "photos"])

        if self.library_path is not None and self.library_path.resolve() == target.resolve():
            self.refresh_status(then=after_open)
        else:
            self.open_library(target, then=after_open)

    # -- import ------------------------------------------------------------------------------
    def choose_import(self) -> None:
        if self.library_path is None:
            self.statusBar().showMessage("Open or create a library first", 5000)
            return
        last = self.settings.value(keys.IMPORT_FOLDER)
        # The sheet comes back with its folder: re-importing an updated catalog without it
        # would turn every product back into a file name.
        sheet = str(self.settings.value(keys.IMPORT_SHEET, "") or "")
        dlg = ImportSetupDialog(
            self.worker,
            self,
            folder=Path(last) if last else None,
            sheet=Path(sheet) if sheet and Path(sheet).is_file() else None,
        )
        dlg.accepted.connect(lambda: self._start_import_from(dlg))
        dlg.open()
        self.import_setup = dlg

    def _start_import_from(self, dlg: ImportSetupDialog) -> None:
        folder, sheet = dlg.folder, dlg.sheet

        def remember(_report: ImportReport) -> None:
            # Once it imported: a mistyped folder saved before the import came back at the
            # next Ctrl+I. A cancelled import counts (importing it again finishes it).
            if folder is not None:
                self.settings.setValue(keys.IMPORT_FOLDER, str(folder))
                self.settings.setValue(keys.IMPORT_SHEET, str(sheet) if sheet else "")

        self.import_catalog(folder, sheet, then=remember)

    def import_catalog(
        self,
        folder: Path | None,
        sheet: Path | None = None,
        then: Callable[[ImportReport], None] | None = None,
        removals: str = "ask",
        replaces: Path | None = None,
        next_step: str | None = None,
        first: ImportReport | None = None,
    ) -> CancelToken:
        """Run the import in the background behind a progress dialog; show the summary. An
        import that would take most of a folder's pictures out asks first, then runs again
        with the answer. ``first``: the run that went through before the user said this
        catalog replaces another (shown if this one is called off)."""
        token = CancelToken()
        progress = ProgressDialog(self)
        progress.cancel_requested.connect(token.cancel)
        self.import_progress = progress
        self._importing = True
        self._update_pages()
        progress.open()

        def run(ctx: TaskContext) -> ImportReport:
            return ctx.lib.import_catalog(
                folder,
                sheet,
                progress=ctx.progress,
                cancel=ctx.token,
                removals=removals,
                replaces=replaces,
            )

        def finish() -> None:
            self._importing = False
            progress.accept()
            progress.deleteLater()
            self.import_progress = None

        def done(report: ImportReport) -> None:
            finish()
            older = (
                Path(report.copy_of)
                if report.copy_of and replaces is None and not report.cancelled
                else None
            )
            if older is not None and self._replaces(folder or sheet, older):
                self.import_catalog(
                    folder,
                    sheet,
                    then,
                    removals=removals,
                    replaces=older,
                    next_step=next_step,
                    first=report,
                )
                return
            summarise(report)

        def summarise(report: ImportReport) -> None:
            self.last_import = report
            summary = ImportSummaryDialog(report, self, next_step)
            summary.open()
            self.import_summary = summary
            self.catalog.loaded = False
            if self.tabs.currentWidget() is self.catalog:
                self.catalog.reload()
            if report.added or report.updated or report.removed or first is not None:
                self.session.refresh_suggestions()  # not the catalog they were matched with
            self.refresh_status(then=(lambda: then(report)) if then else None)

        def failed(err: TaskError) -> None:
            finish()
            self._update_pages()
            if isinstance(err.exc, RemovalsNeedConsent):
                choice = ask_removals(self, err.exc)
                if choice is not None:
                    self.import_catalog(
                        folder,
                        sheet,
                        then,
                        removals=choice,
                        replaces=replaces,
                        next_step=next_step,
                        first=first,
                    )
                elif first is not None and replaces is not None:  # it went through before
                    summarise(first)
                    self.statusBar().showMessage(
                        f"Imported; the catalog from {replaces.name} was not replaced and stays "
                        "as it was",
                        10000,
                    )
                else:  # the progress dialog just vanished: say that nothing happened
                    self.statusBar().showMessage(
                        "Import cancelled: nothing was imported, the catalog is as it was", 10000
                    )
                return
            self.show_task_error("import the catalog", err)

        def cancelled() -> None:  # cancelled before it started (e.g. library closed)
            finish()
            self._update_pages()

        self.worker.submit(
            run,
            what="import the catalog",
            priority=Priority.BACKGROUND,
            token=token,
            on_progress=progress.update_progress,
            on_result=done,
            on_error=failed,
            on_cancelled=cancelled,
        )
        return token

    def _replaces(self, folder: Path | None, older: Path) -> bool:
        """Ask whether the catalog just imported is a newer copy of the one from ``older``
        (it repeats some of its pictures); a No is remembered for that pair of folders."""
        pair = f"{folder}|{older}"
        refused = self.settings.value(keys.NOT_REPLACING, []) or []
        refused = [refused] if isinstance(refused, str) else list(refused)
        if pair in refused:
            return False
        if ask(
            self,
            "Import catalog",
            f"Does this catalog replace the one imported from {older.name}?",
            f"Some of its pictures are the same as in {older}. If it is a newer copy of that "
            "catalog, the older folder's pictures of products it drops or pictures anew are "
            "removed. If it is another supplier's catalog, both stay.",
        ):
            return True
        self.settings.setValue(keys.NOT_REPLACING, [*refused, pair][-50:])
        return False

    # -- model versions ----------------------------------------------------------------------
    def switch_model(self, version: str, confirm: bool = True) -> None:
        """Activate another model version: re-embeds the references first, cancellable; the
        current model keeps working until the switch is complete."""
        if confirm and not ask(
            self,
            "Switch model",
            f"Switch matching to model version {version}?",
            "Every reference image is embedded with that model first, which can take a while. "
            "You can cancel; the current model stays active until the switch is complete.",
        ):
            return
        token = CancelToken()
        progress = ProgressDialog(self, title="Switching model")
        progress.cancel_requested.connect(token.cancel)
        self.model_progress = progress
        progress.open()

        library = self.library_path

        def plan(ctx: TaskContext) -> tuple[EmbedPlan, Path, str]:
            lib = ctx.lib
            lib.check_activatable(version)  # its files gone: said before any encoding
            return lib.plan_embeddings(version), lib.model_dir(version), lib.square_mode

        def encode(ctx: TaskContext, todo: EmbedPlan, model_dir: Path, square: str) -> Embedded:
            from engine.encoder import Encoder

            encoder = Encoder(model_dir, threads=training_threads(), square_mode=square)
            return todo.encode(
                encoder, progress=ctx.progress, cancel=ctx.token, partial_on_cancel=True
            )

        def activate(ctx: TaskContext, embedded: Embedded) -> None:
            """Store the vectors first, so that even a cancelled switch keeps them and the
            next try resumes where this one stopped; then switch, unless cancelled."""
            lib = ctx.lib
            if lib.path != library:
                raise RuntimeError("another library was opened while the model was switching")
            if not embedded.complete or token.cancelled:
                lib.store_embeddings(embedded)
                raise Cancelled()
            lib.activate_model(version, embedded=embedded, progress=ctx.progress, cancel=token)

        def finish() -> None:
            progress.accept()
            progress.deleteLater()
            self.model_progress = None
            self.learning.refresh()
            self.refresh_status()

        def done(_r: object) -> None:
            finish()
            self.learning.model_switched()
            self.statusBar().showMessage(f"Matching now uses model {version}", 8000)
            self.session.rematch()

        def failed(err: TaskError) -> None:
            finish()
            self.show_task_error("switch the model", err)

        def cancelled() -> None:
            finish()
            self.statusBar().showMessage("Model switch cancelled; nothing changed", 8000)

        def planned(out: tuple[EmbedPlan, Path, str]) -> None:
            # The minutes of encoder time run beside the engine thread, so matching and
            # keypresses go on while every reference image is embedded.
            self.worker.run_detached(
                lambda ctx: encode(ctx, *out),
                what="embed with the new model",
                token=token,
                on_progress=progress.update_progress,
                on_result=encoded,
                on_error=failed,
                on_cancelled=cancelled,
            )

        def encoded(embedded: Embedded) -> None:
            # Its own token: the switch's cancel must not drop the vectors unstored. Ahead of
            # queued matching: it takes seconds, and the window waits on it.
            self.worker.submit(
                lambda ctx: activate(ctx, embedded),
                what="switch the model",
                priority=Priority.QUERY,
                on_progress=progress.update_progress,
                on_result=done,
                on_error=failed,
                on_cancelled=cancelled,
            )

        self.worker.submit(
            plan,
            what="switch the model",
            priority=Priority.QUERY,
            token=token,
            on_result=planned,
            on_error=failed,
            on_cancelled=cancelled,
        )

    # -- adding photos -----------------------------------------------------------------------
    def add_paths(self, paths: list[Path]) -> None:
        if self.library_path is None:
            self.statusBar().showMessage("Open or create a library first", 5000)
            return
        if self.library_status is not None and self.library_status.products == 0:
            self.statusBar().showMessage(
                "Import a catalog first: there is nothing to match to", 6000
            )
            return
        self.tabs.setCurrentWidget(self.review)
        self.session.add_paths([Path(p) for p in paths])

    def choose_photos(self) -> None:
        patterns = " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES))
        start = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
        files, _ = QFileDialog.getOpenFileNames(
            self, "Add photos", start, f"Photos ({patterns});;All files (*)"
        )
        if files:
            self.add_paths([Path(f) for f in files])

    def choose_photo_folder(self) -> None:
        start = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
        folder = QFileDialog.getExistingDirectory(self, "Add a folder of photos", start)
        if folder:
            self.add_paths([Path(folder)])

    def paths_from_mime(self, mime: QMimeData) -> list[Path]:
        """Local files/folders from a drop or the clipboard; picture data is saved first."""
        paths = [Path(u.toLocalFile()) for u in mime.urls() if u.isLocalFile()]
        if not paths and mime.hasText():
            for line in mime.text().splitlines():
                line = line.strip().strip('"')  # Windows' "Copy as path" adds quotes
                url = QUrl(line)
                candidate = Path(url.toLocalFile()) if url.isLocalFile() else Path(line)
                candidate = expand_home(candidate)
                # Only a whole path: a word copied from an e-mail ('photos') named a folder of
                # the app's working folder, which was then matched into the library whole.
                if line and candidate.is_absolute() and candidate.exists():
                    paths.append(candidate)
        # A whole disk is never meant ('/' or 'C:\' pasted or dropped by mistake).
        paths = [p for p in paths if p.parent != p]
        if not paths and mime.hasImage():
            saved = self._save_pasted_image(mime.imageData())
            if saved is not None:
                paths.append(saved)
        return paths

    def _save_pasted_image(self, data: object) -> Path | None:
        image = data if isinstance(data, QImage) else QImage(data)  # type: ignore[call-overload]
        if image.isNull() or self.library_path is None:
            return None
        inbox = self.library_path / "inbox"
        inbox.mkdir(parents=True, exist_ok=True)
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        target = inbox / f"pasted-{stamp}-{next(self._paste_counter)}.png"
        if not image.save(str(target), "PNG"):
            return None
        return target

    def add_from_mime(self, mime: QMimeData) -> int:
        """What a drop or a paste does; returns how many items were handed over."""
        paths = self.paths_from_mime(mime)
        if paths:
            self.add_paths(paths)
        else:
            self.statusBar().showMessage("Nothing to add: drop photos, folders or a picture", 5000)
        return len(paths)

    def paste(self) -> None:
        self.add_from_mime(QGuiApplication.clipboard().mimeData())

    @staticmethod
    def _acceptable(mime: QMimeData) -> bool:
        return any(u.isLocalFile() for u in mime.urls()) or mime.hasImage()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._acceptable(event.mimeData()) and self.library_path is not None:
            event.acceptProposedAction()
            self.statusBar().showMessage("Drop to add the photos to the queue")
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if self._acceptable(event.mimeData()) and self.library_path is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        self.statusBar().clearMessage()
        if self.add_from_mime(event.mimeData()):
            event.acceptProposedAction()

    # -- export ------------------------------------------------------------------------------
    def choose_export(self) -> None:
        """Ask which photos and how (the library's folders are read first, off the GUI
        thread), then the file name; the export itself runs on the engine thread."""
        if self.library_path is None:
            return

        def run(ctx: TaskContext) -> tuple[list[PhotoFolder], str]:
            lib = ctx.lib
            return lib.photo_folders(), separator_name(lib.setting(SEPARATOR_SETTING, "comma"))

        self.worker.submit(
            run,
            what="read the library's photo folders",
            priority=Priority.INTERACTIVE,
            on_result=lambda found: self._ask_export(*found),
        )

    def _ask_export(self, folders: list[PhotoFolder], separator: str) -> None:
        dialog = ExportDialog(
            self,
            folders,
            sum(f.photos for f in folders),
            separator,
            per=str(self.settings.value(keys.EXPORT_PER) or "photo"),
            include_undecided=str(self.settings.value(keys.EXPORT_UNDECIDED)) == "true",
        )
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        choice = dialog.choice()
        self.settings.setValue(keys.EXPORT_PER, choice.per)
        # The box itself: a per-product export greys it out but keeps it ticked for the next.
        ticked = dialog.undecided.isChecked()
        self.settings.setValue(keys.EXPORT_UNDECIDED, "true" if ticked else "")
        start = self.settings.value(keys.EXPORT_DIR) or QStandardPaths.writableLocation(
            QStandardPaths.StandardLocation.DocumentsLocation
        )
        path, _chosen = QFileDialog.getSaveFileName(
            self,
            "Export inventory CSV",
            str(Path(str(start)) / f"inventory-{choice.name_hint}.csv"),
            "CSV files (*.csv)",
        )
        if not path:
            return
        target = Path(path)
        if target.suffix.lower() != ".csv":
            # 'stock.xlsx' becomes 'stock.csv' (a CSV Excel opens), 'stock' 'stock.csv'.
            spreadsheet = target.suffix.lower() in SPREADSHEET_SUFFIXES
            target = (
                target.with_suffix(".csv")
                if spreadsheet
                else target.with_name(target.name + ".csv")
            )
            # The dialog asked about replacing the name as typed, not this one.
            if target.exists() and not ask(
                self,
                "Replace the file?",
                f"{target.name} already exists in {target.parent}. Replace it?",
                "The inventory is saved as a CSV file (Excel and LibreOffice open it), so the "
                "name you typed was changed to end in .csv. Choose No to keep the file as it is.",
            ):
                return
        self.settings.setValue(keys.EXPORT_DIR, str(target.parent))
        self.export_inventory(
            target, choice.per, choice.include_undecided, choice.separator, choice.scope
        )

    def export_inventory(
        self,
        target: Path,
        per: str = "photo",
        include_undecided: bool = False,
        separator: str | None = None,
        scope: PhotoScope | None = None,
    ) -> None:
        def run(ctx: TaskContext) -> tuple[int, int | None]:
            rows = ctx.lib.export_csv(
                target,
                per=per,
                include_undecided=include_undecided,
                separator=separator,
                scope=scope,
            )
            if rows or scope is None or scope.everything:
                return rows, None
            return rows, ctx.lib.photos_in(scope)  # only an empty export needs the count

        def done(result: tuple[int, int | None]) -> None:
            rows, in_scope = result
            self.last_export = (target, rows)
            which = ""
            if scope is not None:
                which = export_summary(scope, rows, in_scope, per=per, folder_by_name=True)
            said = f"Exported {count(rows, 'row')}{which} to {target}"
            self.statusBar().showMessage(said, 10000)
            self._said_while_opening.append(said)

        self.worker.submit(
            run,
            what="export the inventory",
            priority=Priority.INTERACTIVE,
            on_result=done,
            any_library=True,  # the file is written: say so even if another library opened
        )

    # -- misc --------------------------------------------------------------------------------
    def _find_product(self) -> None:
        """Ctrl+F: on the Catalog tab its filter box (staff browsing products; the key did
        nothing there), elsewhere the review's search, which confirms the product found."""
        if self.pages.currentWidget() is self.tabs and self.tabs.currentWidget() is self.catalog:
            self.catalog.focus_filter()
            return
        self.tabs.setCurrentWidget(self.review)
        self.review.focus_search()

    def _on_matching_progress(self, done: int, total: int) -> None:
        busy = total > 0
        for w in (self.match_label, self.match_bar, self.match_stop):
            w.setVisible(busy)
        if busy:
            if self._match_clock is None:  # a batch starts: its rate is measured from here
                self._match_clock = (time.monotonic(), done)
            start, base = self._match_clock
            rate = Progress("Matching photos", done - base, total - base, time.monotonic() - start)
            left = f" · {format_eta(rate.eta_s)}" if rate.eta_s is not None else ""
            self.match_label.setText(f"Matching {done:,} of {count(total, 'photo')}{left}")
            self.match_bar.setRange(0, total)
            self.match_bar.setValue(done)
        else:
            self._match_clock = None
            self._status_timer.start()

    def show_task_error(self, what: str, err: TaskError) -> None:
        if database_damaged(err.exc) and self.library_path is not None:
            self.checker.offer_after_error(what, err.exc)  # not "run shopmatch check --repair"
            return
        show_error(self, what, err.exc, err.details)

    def _after_repair(self, restored: bool) -> None:
        """A database put back from a backup: reopen, so the photo list and every panel
        read it; other repairs change nothing the window shows but the counts."""
        if restored and self.library_path is not None:
            self.open_library(self.library_path)
        else:
            self.refresh_status()

    def show_about(self) -> None:
        def run(ctx: TaskContext) -> ModelInfo:
            from engine.manifest import ModelManifest
            from engine.resources import bundled_model_dir

            try:
                m = ctx.lib.encoder.manifest
            except NoLibraryError:
                m = ModelManifest.load(bundled_model_dir())
            return ModelInfo(m.version, m.architecture, m.licence)

        def done(info: ModelInfo) -> None:
            self.about = AboutDialog(self, info)
            self.about.open()

        self.worker.submit(run, what="read the model details", on_result=done)

    def show_shortcuts(self) -> None:
        rows = [
            ("1 – 9", "Confirm that suggestion"),
            ("Enter", "Confirm the top suggestion"),
            ("N", "No match in the catalog"),
            ("P", "Show the matching points of the top suggestion"),
            ("S", "Skip (decide later)"),
            ("Delete", "Take the photo off the list (Ctrl+Z puts it back)"),
            ("← → / ↑ ↓", "Previous / next photo"),
            ("Ctrl+Z", "Undo the last decision (or put back a photo taken off the list)"),
            ("Ctrl+F", "Find any product by SKU or name (on the Catalog tab: filter it)"),
            ("A", "Accept all confident matches (asks first)"),
            ("Enter / Space", "On a focused button: press it (Tab moves between them)"),
        ]
        # The File menu's keys as the actions have them (Quit has none on Windows: Alt+F4).
        for act, what in (
            (self.act_open, "Open or create a library"),
            (self.act_import, "Import a supplier catalog"),
            (self.act_add, "Add photos"),
            (self.act_add_folder, "Add a photo folder"),
            (self.act_paste, "Paste a picture or copied photo files"),
            (self.act_export, "Export the inventory CSV"),
            (self.act_quit, "Quit"),
        ):
            keys_text = act.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
            if keys_text:
                rows.append((keys_text, what))
        rows.append(("Ctrl+1/2/3", "Review / Catalog / Learning"))
        html = (
            "<table cellspacing=6>"
            + "".join(f"<tr><td><b>{k}</b></td><td>{v}</td></tr>" for k, v in rows)
            + "</table>"
        )
        box = QMessageBox(self)
        box.setWindowTitle("Keyboard shortcuts")
        box.setText(html)
        box.open()

    def _on_model_trained(self, version: str) -> None:
        """A fine-tuned model became active (the Learning page says so in the status bar):
        suggestions still pending are made anew."""
        self.session.rematch()
        self.refresh_status()

    def _remember_unmatched(self) -> None:
        """Photos dropped but not matched yet (or stopped) are known only to the queue: kept
        in the settings, per library, so the next time that library opens lists them again
        (the unmatched ones to be matched, the stopped ones as stopped)."""
        if self.library_path is None:
            return
        for key, paths in (
            (keys.UNMATCHED, self.session.unmatched_paths()),
            (keys.STOPPED, self.session.stopped_paths()),
        ):
            saved = self._queue_store(key)
            if paths:
                saved[str(self.library_path)] = [str(p) for p in paths]
            else:
                saved.pop(str(self.library_path), None)
            self.settings.setValue(key, json.dumps(saved))

    def _take_unmatched(self, library: Path) -> tuple[list[Path], list[Path]]:
        """The library's remembered (unmatched, stopped) photos, forgotten once taken."""
        taken: list[list[Path]] = []
        for key in (keys.UNMATCHED, keys.STOPPED):
            saved = self._queue_store(key)
            paths = saved.pop(str(library), [])
            self.settings.setValue(key, json.dumps(saved))
            taken.append([Path(p) for p in paths if isinstance(p, str)])
        return taken[0], taken[1]

    def _queue_store(self, key: str) -> dict[str, list[str]]:
        try:
            saved = json.loads(str(self.settings.value(key, "{}")))
        except ValueError:
            return {}
        return saved if isinstance(saved, dict) else {}

    def quit_now(self) -> None:
        """The application is quitting (Cmd+Q, a logout, SIGTERM; nothing can stop that
        now): close without asking, so that training stops and the engine thread is shut
        down, not left running while Python tears down (a "No" to "Quit anyway?" here
        kept the window and the engine alive into the exit)."""
        self._quitting = True
        # A dialog open now is moot: a question (even 'Quit anyway?', when a SIGTERM comes
        # while it is asked) or a progress dialog, whose close means Cancel and would keep
        # it open until the work stops (refusing Qt's quit). Closed as answered No; the work
        # stops with the window.
        for _ in range(8):  # dialogs stacked on dialogs, never forever
            dialog = QApplication.activeModalWidget()
            if not isinstance(dialog, QDialog) or not dialog.isVisible():
                break
            dialog.done(QDialog.DialogCode.Rejected)
        self.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        if (
            self.learning.training
            and not self._quitting
            and not ask(
                self,
                "Quit ShopMatch",
                "The model is still being fine-tuned. Quit anyway?",
                "Fine-tuning stops; the current model stays active and nothing else is lost.",
            )
            and not self._quitting  # told to quit while it asked (a SIGTERM): no veto
        ):
            event.ignore()
            return
        self.learning.cancel_training()
        self._remember_unmatched()
        self.settings.setValue(keys.GEOMETRY, self.saveGeometry())
        self.settings.setValue(keys.SPLITTER, self.review.splitter.saveState())
        self.settings.sync()
        # Saving a big library's index and a backup may take seconds (review 48): said, and
        # painted now, as the wait below holds the GUI thread. The window stays meanwhile:
        # gone, a ShopMatch started again at once would be told the library is open elsewhere.
        self.statusBar().showMessage("Saving the library…")
        self.repaint()
        for timer in self.findChildren(QTimer):
            timer.stop()
        self.session.cancel_matching()
        self.loader.clear()
        self.loader.wait(3000)
        if self.worker.shutdown():
            self.learning.engine_stopped()
        super().closeEvent(event)
