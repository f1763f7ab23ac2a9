"""Learning panel: how much staff feedback exists, how well the active model does on it,
instant memory, and switching between installed model versions.

Fine-tuning itself belongs to the learning issue; until the engine offers it, the button is
visibly disabled with a reason rather than faked.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.icons import icon
from desktop_app.worker import EngineWorker, Priority, TaskContext
from engine import overview

IMPROVE_TOOLTIP = "Coming in the learning update"
VERSION_COLUMNS = ("Version", "Architecture", "Trained from", "Added", "Top-1 (measured)", "")


def _figure(title: str) -> tuple[QFrame, QLabel, QLabel]:
    frame = QFrame()
    frame.setObjectName("figure")
    frame.setStyleSheet(
        "QFrame#figure { border: 1px solid #cfd8dc; border-radius: 8px;"
        " background: palette(base); }"
    )
    lay = QVBoxLayout(frame)
    value = QLabel("–")
    value.setStyleSheet("font-size: 26px; font-weight: bold; color: #00796b;")
    caption = QLabel(title)
    caption.setStyleSheet("font-weight: bold;")
    note = QLabel(" ")
    note.setWordWrap(True)
    note.setStyleSheet("color: #607d8b;")
    lay.addWidget(value)
    lay.addWidget(caption)
    lay.addWidget(note)
    lay.addStretch(1)
    return frame, value, note


def _percent(value: object) -> str:
    return f"{value:.0%}" if isinstance(value, int | float) else "—"


class LearningPanel(QWidget):
    activate_requested = Signal(str)  # a model version the user wants to switch to

    def __init__(self, worker: EngineWorker, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.worker = worker
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        intro = QLabel(
            "<h3 style='margin:0'>Learning from your confirmations</h3>"
            "Every confirmation is kept. With instant memory a confirmed photo helps the very "
            "next match; fine-tuning the image model on them makes the first suggestion right "
            "more often for your products."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        grid = QGridLayout()
        f1, self.confirmed, self.confirmed_note = _figure("Confirmations")
        f2, self.top1, self.top1_note = _figure("First suggestion was right")
        f3, self.top5, self.top5_note = _figure("Right product among the top 5")
        f4, self.model, self.model_note = _figure("Active model")
        self.model.setStyleSheet("font-size: 15px; font-weight: bold; color: #00796b;")
        self.model.setWordWrap(True)
        for i, f in enumerate((f1, f2, f3, f4)):
            grid.addWidget(f, 0, i)
            grid.setColumnStretch(i, 1)
        layout.addLayout(grid)

        self.memory = QCheckBox("Instant memory: a confirmed photo becomes a reference image")
        self.memory.setToolTip(
            "The next photo of the same product, in the same shop light, then matches before "
            "any training. Undo removes it again."
        )
        self.memory_note = QLabel()
        self.memory_note.setStyleSheet("color: #607d8b;")
        row = QHBoxLayout()
        row.addWidget(self.memory)
        row.addWidget(self.memory_note, 1)
        layout.addLayout(row)

        layout.addWidget(QLabel("<b>Model versions</b>"))
        self.versions = QTableWidget(0, len(VERSION_COLUMNS))
        self.versions.setHorizontalHeaderLabels(VERSION_COLUMNS)
        self.versions.verticalHeader().setVisible(False)
        self.versions.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.versions.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.versions.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.versions.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.versions.setMaximumHeight(140)
        layout.addWidget(self.versions)

        row = QHBoxLayout()
        self.switch = QPushButton("Use selected version…")
        self.switch.setEnabled(False)
        self.switch.setToolTip("Select an earlier (or newer) model version in the table")
        self.improve = QPushButton(icon("learning"), "Improve model…")
        self.improve.setEnabled(False)
        self.improve.setToolTip(IMPROVE_TOOLTIP)
        self.status = QLabel(
            "Fine-tuning on your confirmations is <b>coming in the learning update</b>."
        )
        self.status.setStyleSheet("color: #607d8b;")
        row.addWidget(self.switch)
        row.addWidget(self.improve)
        row.addWidget(self.status, 1)
        layout.addLayout(row)
        layout.addStretch(1)
        self.stats: overview.LearningStats | None = None
        self.versions.itemSelectionChanged.connect(self._selection_changed)
        self.switch.clicked.connect(self._request_switch)
        self.memory.toggled.connect(self._set_memory)

    # -- data --------------------------------------------------------------------------------
    def refresh(self) -> None:
        def run(ctx: TaskContext) -> overview.LearningStats:
            return overview.learning_stats(ctx.lib)

        self.worker.submit(run, what="load the learning figures", on_result=self.show_stats)

    def show_stats(self, s: overview.LearningStats) -> None:
        self.stats = s
        self.confirmed.setText(str(s.confirmed))
        self.confirmed_note.setText(
            f"{s.no_match} photo(s) marked 'no match'; {s.decisions} decisions recorded in all, "
            "undos included."
        )
        if s.confirmed:
            self.top1.setText(f"{s.top1_hits / s.confirmed:.0%}")
            self.top1_note.setText(
                f"{s.top1_hits} of {s.confirmed} confirmations, measured on your own photos."
            )
            self.top5.setText(f"{s.top5_hits / s.confirmed:.0%}")
            self.top5_note.setText(
                f"{s.searched} confirmation(s) needed the product search."
                if s.searched
                else "No product had to be searched for."
            )
        else:
            self.top1.setText("–")
            self.top5.setText("–")
            self.top1_note.setText("Not measured yet: confirm a few photos first.")
            self.top5_note.setText(" ")
        active = next((v for v in s.versions if v.active), None)
        self.model.setText(s.model_version)
        if active is not None:
            origin = (
                f"fine-tuned from {active.parent_version}"
                if active.parent_version
                else "pretrained, not fine-tuned yet"
            )
            top1 = active.metrics.get("top1")
            self.model_note.setText(
                f"{active.architecture}, {origin}."
                + (f" Top-1 {_percent(top1)} when it was measured." if top1 is not None else "")
            )
        self.memory.blockSignals(True)
        self.memory.setChecked(s.instant_memory)
        self.memory.blockSignals(False)
        self.memory.setEnabled(True)
        self.memory_note.setText(f"{s.remembered} photo(s) remembered")
        self.versions.setRowCount(len(s.versions))
        for r, v in enumerate(s.versions):
            cells = [
                v.version,
                v.architecture,
                v.parent_version or "— (pretrained)",
                v.created_at.replace("T", " ")[:16],
                _percent(v.metrics.get("top1")),
                "active" if v.active else "",
            ]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, v.version)
                if v.active:
                    f = item.font()
                    f.setBold(True)
                    item.setFont(f)
                self.versions.setItem(r, c, item)
        self._selection_changed()
        if len(s.versions) < 2:
            self.switch.setToolTip(
                "Only one model version is installed; fine-tuned versions will appear here"
            )

    # -- actions -----------------------------------------------------------------------------
    def selected_version(self) -> str | None:
        rows = self.versions.selectionModel().selectedRows()
        if not rows:
            return None
        item = self.versions.item(rows[0].row(), 0)
        return str(item.data(Qt.ItemDataRole.UserRole)) if item is not None else None

    def _selection_changed(self) -> None:
        version = self.selected_version()
        active = self.stats.model_version if self.stats else None
        self.switch.setEnabled(version is not None and version != active)

    def _request_switch(self) -> None:
        version = self.selected_version()
        if version:
            self.activate_requested.emit(version)

    def _set_memory(self, on: bool) -> None:
        self.memory.setEnabled(False)

        def run(ctx: TaskContext) -> None:
            ctx.lib.instant_memory = on

        self.worker.submit(
            run,
            what="change instant memory",
            priority=Priority.INTERACTIVE,
            on_done=self.refresh,
        )
