"""File > Check and Repair Library: ``shopmatch check`` and ``check --repair`` in the window.

Why: the engine's messages for a damaged library ended in "'shopmatch check --repair' puts
back its newest backup", advice a shop owner without a terminal could not follow. The check
runs on the engine thread like every library task (a few seconds: the database's integrity,
the index against the stored vectors, model files, thumbnails, keypoints); repairs are made
only after the user has seen the findings and agreed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from desktop_app.dialogs import ask
from desktop_app.worker import EngineWorker, Priority, TaskContext
from engine.backups import DATABASE_RESTORED
from engine.wording import count

if TYPE_CHECKING:
    from engine.check import CheckReport

REPAIR_HINT = (
    "Repairing rebuilds what is derived from the database (index, thumbnails, keypoints) and "
    "restores damaged model files. A damaged database is replaced by its newest backup, with "
    "the decisions made since read back from the damaged file where it can still be read; "
    "the damaged file is kept."
)


def _check(repair: bool) -> Callable[[TaskContext], CheckReport]:
    def run(ctx: TaskContext) -> CheckReport:
        from engine.check import check_library

        return check_library(ctx.lib, repair=repair)

    return run


class LibraryCheck(QObject):
    """Runs the check, shows what it found, and repairs on request."""

    repaired = Signal(bool)  # after a repair; True when the database was put back

    def __init__(self, parent: QWidget, worker: EngineWorker) -> None:
        super().__init__(parent)
        self.parent_widget = parent
        self.worker = worker
        self.box: QMessageBox | None = None  # the last report shown (tests read it)

    def start(self) -> None:
        self.worker.submit(
            _check(repair=False),
            what="check the library",
            priority=Priority.INTERACTIVE,
            on_result=self._checked,
        )

    def offer_after_error(self, what: str, exc: BaseException) -> None:
        """A task failed on a damaged database: say so, and offer the check and repair."""
        if ask(
            self.parent_widget,
            "Library damaged",
            f"Could not {what}: the library database is damaged. Check and repair it now?",
            f"SQLite reported: {exc}.\n\n{REPAIR_HINT}",
        ):
            self.start()

    def _checked(self, report: CheckReport) -> None:
        lines = "\n".join(report.lines())
        if report.ok:
            self._show("Library checked", "The library is in good order.", lines)
            return
        problems = count(len(report.unrepaired), "problem")
        if not any(f.repairable for f in report.unrepaired):
            self._show(
                "Library checked",
                f"The check found {problems} that ShopMatch cannot repair.",
                lines,
                warning=True,
            )
            return
        if ask(
            self.parent_widget,
            "Library damaged",
            f"The check found {problems}. Repair {'them' if len(report.unrepaired) > 1 else 'it'}"
            " now?",
            f"{lines}\n\n{REPAIR_HINT}",
        ):
            self.worker.submit(
                _check(repair=True),
                what="repair the library",
                priority=Priority.INTERACTIVE,
                on_result=self._repaired,
            )

    def _repaired(self, report: CheckReport) -> None:
        restored = any(f.message.startswith(DATABASE_RESTORED) for f in report.findings)
        left = report.unrepaired
        self._show(
            "Library repaired" if not left else "Library partly repaired",
            "The library was repaired."
            if not left
            else f"{count(len(left), 'problem')} could not be repaired: see below.",
            "\n".join(report.lines()),
            warning=bool(left),
        )
        self.repaired.emit(restored)

    def _show(self, title: str, text: str, lines: str, warning: bool = False) -> None:
        box = QMessageBox(self.parent_widget)
        box.setWindowTitle(title)
        box.setIcon(QMessageBox.Icon.Warning if warning else QMessageBox.Icon.Information)
        box.setText(text)
        box.setInformativeText(lines)  # one finding a line ("error: database: ..."), as is
        box.open()
        self.box = box
