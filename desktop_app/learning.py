"""Learning panel: how much staff feedback exists, how well the active model does on it,
instant memory, fine-tuning ("Improve model") and switching between model versions.

Fine-tuning runs in three steps so that matching never waits for it: the training data is read
out of the library on the engine thread (seconds); the model trains, is exported and embeds
every reference image on the worker's pool without the library (minutes, on all cores but
one); then the gate and activation run on the engine thread again (seconds). Cancel works in
every step and leaves the active model as it was.
"""

from __future__ import annotations

import html
import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont, QFontMetrics
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.dialogs import ask
from desktop_app.icons import icon
from desktop_app.progress_bar import show_progress
from desktop_app.theme import font_size
from desktop_app.worker import EngineWorker, Priority, TaskContext, TaskError
from engine import overview, scratch
from engine.export_csv import local_minute
from engine.progress import CancelToken, Progress, RunClock
from engine.wording import count

if TYPE_CHECKING:
    from engine.learning import GatePlan, GateWork, LearningReport
    from engine.training.data import TrainingSet
    from engine.training.trainer import TrainConfig, TrainResult

IMPROVE_TOOLTIP = (
    "Fine-tune the image model on your catalog and confirmed photos. Matching keeps working; "
    "the new model is used only if it measures better on photos it never saw."
)
IDLE_HINT = "Fine-tuning takes some minutes; you can keep matching meanwhile."
VERSION_COLUMNS = ("Version", "Architecture", "Trained from", "Added", "Top-1 (measured)", "Status")


def _figure(title: str) -> tuple[QFrame, QLabel, QLabel]:
    frame = QFrame()
    frame.setObjectName("figure")
    frame.setStyleSheet(
        "QFrame#figure { border: 1px solid #cfd8dc; border-radius: 8px;"
        " background: palette(base); }"
    )
    lay = QVBoxLayout(frame)
    value = QLabel("–")
    value.setStyleSheet(f"font-size: {font_size(2.17)}; font-weight: bold; color: #00796b;")
    caption = QLabel(title)
    caption.setStyleSheet("font-weight: bold;")
    note = QLabel(" ")
    note.setWordWrap(True)
    note.setStyleSheet("color: #546e7a;")
    lay.addWidget(value)
    lay.addWidget(caption)
    lay.addWidget(note)
    lay.addStretch(1)
    return frame, value, note


def _percent(value: object) -> str:
    return f"{value:.0%}" if isinstance(value, int | float) else "—"


@dataclass
class TrainingJob:
    """What the three steps of one fine-tuning run hand each other."""

    library: Path
    data: TrainingSet
    config: TrainConfig
    plan: GatePlan
    workdir: Path
    result: TrainResult | None = None
    work: GateWork | None = None


def training_threads() -> int:
    """All cores but one: the engine thread keeps one for matching and the window."""
    return max(1, (os.cpu_count() or 2) - 1)


class LearningPanel(QWidget):
    activate_requested = Signal(str)  # a model version the user wants to switch to
    model_activated = Signal(str)  # fine-tuning activated this version: re-match the queue
    training_changed = Signal(bool)  # a fine-tuning run started (True) or ended (False)
    said = Signal(str)  # a run's outcome in a line, for the window's status bar

    def __init__(self, worker: EngineWorker, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.worker = worker
        # In a scroll area: with large text or on a 150% laptop the notes were sliced mid-line
        # and the explanation cut off at the bottom; now the page scrolls instead.
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer.addWidget(scroll)
        page = QWidget()
        scroll.setWidget(page)
        layout = QVBoxLayout(page)
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
        self.model.setStyleSheet(
            f"font-size: {font_size(1.25)}; font-weight: bold; color: #00796b;"
        )
        self.model.setWordWrap(True)
        # A fine-tuned version's name takes two lines on a laptop screen; the grid does not
        # grow a row for a wrapped label (Qt's height-for-width stops at the frame), so the
        # second line is reserved up front instead of being cut off.
        name_font = QFont(self.model.font())
        # As the style sheet sets it (applied only when the label is polished).
        name_font.setPointSizeF(float(font_size(1.25)[:-2]))
        name_font.setBold(True)
        self.model.setMinimumHeight(2 * QFontMetrics(name_font).lineSpacing() + 4)
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
        self.memory_note.setStyleSheet("color: #546e7a;")
        row = QHBoxLayout()
        row.addWidget(self.memory)
        row.addWidget(self.memory_note, 1)
        layout.addLayout(row)

        layout.addWidget(QLabel("<b>Model versions</b>"))
        self.versions = QTableWidget(0, len(VERSION_COLUMNS))
        self.versions.setHorizontalHeaderLabels(VERSION_COLUMNS)
        self.versions.verticalHeader().setVisible(False)
        # Tab leaves the table for the buttons below it (Qt's default walks its cells and
        # wraps, so Tab never reached 'Improve model…'); arrows still move between rows.
        self.versions.setTabKeyNavigation(False)
        self.versions.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.versions.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.versions.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        header = self.versions.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.versions.setMaximumHeight(140)
        layout.addWidget(self.versions)

        row = QHBoxLayout()
        self.switch = QPushButton("&Use selected version…")
        self.switch.setEnabled(False)
        self.switch.setToolTip("Select an earlier (or newer) model version in the table")
        self.remove = QPushButton("Re&move version…")
        self.remove.setEnabled(False)
        self.remove.setToolTip(
            "Delete the selected version and its stored vectors to free disk space "
            "(not the version in use, nor the bundled one)"
        )
        self.improve = QPushButton(icon("learning"), "&Improve model…")
        self.improve.setEnabled(False)
        self.improve.setToolTip(IMPROVE_TOOLTIP)
        self.status = QLabel(IDLE_HINT)
        self._hinting = True  # the status line shows this hint, not a run's outcome
        self.status.setStyleSheet("color: #546e7a;")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        row.addWidget(self.switch)
        row.addWidget(self.remove)
        row.addWidget(self.improve)
        row.addWidget(self.status, 1)
        layout.addLayout(row)

        self.train_box = QFrame()
        train_row = QHBoxLayout(self.train_box)
        train_row.setContentsMargins(0, 0, 0, 0)
        self.train_stage = QLabel()
        self.train_stage.setStyleSheet("font-weight: bold;")
        self.train_bar = QProgressBar()
        self.train_bar.setRange(0, 0)
        self.train_eta = QLabel()
        self.train_eta.setStyleSheet("color: #546e7a;")
        self.train_cancel = QPushButton("&Cancel training")
        train_row.addWidget(self.train_stage)
        train_row.addWidget(self.train_bar, 1)
        train_row.addWidget(self.train_eta)
        train_row.addWidget(self.train_cancel)
        self.train_box.setVisible(False)
        layout.addWidget(self.train_box)
        # The last run's outcome and figures, until the next run or another library.
        self.outcome = QLabel()
        self.outcome.setWordWrap(True)
        self.outcome.setTextFormat(Qt.TextFormat.RichText)
        self.outcome.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.outcome.setVisible(False)
        layout.addWidget(self.outcome)
        layout.addStretch(1)
        self.stats: overview.LearningStats | None = None
        self.job: TrainingJob | None = None
        self._token: CancelToken | None = None  # the run's, from step 1 until it ends
        self._generation = 0  # the worker's library generation the run reads and writes
        self.clock: RunClock | None = None  # the run's time left, from step 2 until it ends
        # TrainConfig fields to override (tests use a tiny model; the defaults are measured)
        self.config_overrides: dict[str, object] = {}
        self.last_report: LearningReport | None = None
        self.versions.itemSelectionChanged.connect(self._selection_changed)
        self.switch.clicked.connect(self._request_switch)
        self.remove.clicked.connect(self._remove_selected)
        self.memory.toggled.connect(self._set_memory)
        self.improve.clicked.connect(lambda: self.start_training())
        self.train_cancel.clicked.connect(self.cancel_training)

    # -- data --------------------------------------------------------------------------------
    def refresh(self) -> None:
        def run(ctx: TaskContext) -> overview.LearningStats:
            return overview.learning_stats(ctx.lib)

        self.worker.submit(run, what="load the learning figures", on_result=self.show_stats)

    def show_stats(self, s: overview.LearningStats) -> None:
        self.stats = s
        self.confirmed.setText(str(s.confirmed))
        self.confirmed_note.setText(
            f"{count(s.no_match, 'photo')} marked 'no match'; {count(s.decisions, 'decision')} "
            "recorded in all, "
            "undos included."
        )
        if s.confirmed:
            self.top1.setText(f"{s.top1_hits / s.confirmed:.0%}")
            self.top1_note.setText(
                f"{s.top1_hits} of {s.confirmed} confirmations, measured on your own photos."
            )
            self.top5.setText(f"{s.top5_hits / s.confirmed:.0%}")
            self.top5_note.setText(
                f"{count(s.searched, 'confirmation')} needed the product search."
                if s.searched
                else "No product had to be searched for."
            )
        else:
            self.top1.setText("–")
            self.top5.setText("–")
            self.top1_note.setText("Not measured yet: confirm a few photos first.")
            self.top5_note.setText("Not measured yet either.")
        active = next((v for v in s.versions if v.active), None)
        self.model.setText(s.model_version)
        if active is not None:
            origin = (
                f"fine-tuned from {active.parent_version}"
                if active.parent_version
                else "pretrained, not fine-tuned yet"
            )
            top1 = active.measured_top1
            new = s.new_confirmations
            since = f"{count(new, 'new confirmation')} since it was trained"
            if not active.trained_here:
                since = f"{count(new, 'confirmation')} to learn from"
            self.model_note.setText(
                f"{active.architecture}, {origin}."
                + (f" Top-1 {_percent(top1)} when it was measured." if top1 is not None else "")
                + (f" {since}." if new else "")
            )
        self.memory.blockSignals(True)
        self.memory.setChecked(s.instant_memory)
        self.memory.blockSignals(False)
        self.memory.setEnabled(True)
        self.memory_note.setText(f"{count(s.remembered, 'photo')} remembered")
        self.versions.setRowCount(len(s.versions))
        for r, v in enumerate(s.versions):
            cells = [
                v.version,
                v.architecture,
                v.parent_version or "— (pretrained)",
                local_minute(v.created_at),
                _percent(v.measured_top1),
                v.state,
            ]
            # Why a version is (not) in use: the gate's comparison, stored with it.
            stopped = v.state if v.state and not v.active else ""  # e.g. check cancelled
            why = v.comparison() or f"Not compared: {stopped or 'installed as it is'}."
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, v.version)
                item.setToolTip(why)
                if v.active:
                    f = item.font()
                    f.setBold(True)
                    item.setFont(f)
                self.versions.setItem(r, c, item)
        self._selection_changed()
        self.improve.setEnabled(not self.training)
        if self._hinting:
            self.status.setText(self._hint())
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
        """A switch (or a removal) waits for fine-tuning to end: both need the worker's pool."""
        version = self.selected_version()
        active = self.stats.model_version if self.stats else None
        self.switch.setEnabled(version is not None and version != active and not self.training)
        versions = self.stats.versions if self.stats else []
        chosen = next((v for v in versions if v.version == version), None)
        self.remove.setEnabled(chosen is not None and chosen.removable and not self.training)

    def _request_switch(self) -> None:
        version = self.selected_version()
        if version:
            self.activate_requested.emit(version)

    def _remove_selected(self) -> None:
        version = self.selected_version()
        if not version or not ask(
            self,
            "Remove model version",
            f"Remove model version {version}?",
            "Its model file and the vectors stored for it are deleted; decisions keep its "
            "name. The version in use is not affected.",
        ):
            return
        self.remove.setEnabled(False)

        def run(ctx: TaskContext) -> str:
            ctx.lib.remove_model(version)
            return version

        self.worker.submit(
            run,
            what="remove the model version",
            priority=Priority.INTERACTIVE,
            on_result=self._removed,
            on_done=self.refresh,
        )

    def _removed(self, version: str) -> None:
        self._hinting = False  # the status line says what happened, until the next run
        self.status.setText(f"Removed model version {version}.")
        if self.last_report is not None and self.last_report.version == version:
            self.outcome.setVisible(False)  # it offered that version to try by hand

    def model_switched(self) -> None:
        """Another model was activated by hand: the last run's outcome ('kept the active
        model', its version 'to try by hand', or 'New model … is active') no longer says
        what is in use, so the page goes back to its hint."""
        if self.training:
            return  # a switch waits for a run to end; its outcome is still to come
        self._hinting = True
        self.status.setText(self._hint())
        self.outcome.setVisible(False)

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

    # -- fine-tuning -------------------------------------------------------------------------
    @property
    def training(self) -> bool:
        return self._token is not None

    def start_training(self, confirm: bool = True) -> None:
        """Step 1 of 3: read the training data on the engine thread."""
        if self.training:
            return
        n = self.stats.confirmed if self.stats else 0
        if confirm and not ask(
            self,
            "Improve model",
            f"Fine-tune the image model on your catalog and {count(n, 'confirmed photo')}?",
            f"This takes {self._expected_duration()}; you can keep matching meanwhile, and "
            "cancel at any time. "
            + (
                self._too_few_to_prove()
                or "The new model is compared with the current one on confirmed photos it "
                "never saw, and used only if it is better."
            )
            + " The current model stays available under Model versions.",
        ):
            return
        token = CancelToken()
        self._token = token
        self._generation = self.worker.generation
        self._set_running(True, "Reading your confirmations")

        overrides = dict(self.config_overrides)

        def run(ctx: TaskContext) -> TrainingJob:
            from engine import learning
            from engine.training.trainer import TrainConfig

            lib = ctx.lib
            config = TrainConfig(square_mode=lib.square_mode, threads=training_threads())
            config = replace(config, **overrides).resolved(learning.base_arch(lib))
            data = learning.prepare(lib)
            plan = learning.plan_gate(lib, config)
            workdir = scratch.make(lib.path)
            return TrainingJob(lib.path, data, config, plan, workdir)

        # Every step answers even after another library opened (any_library): the answer
        # then ends the run it belongs to (see _left), instead of being dropped unheard.
        self.worker.submit(
            run,
            what="read the training data",
            priority=Priority.QUERY,
            token=token,
            any_library=True,
            on_result=lambda job: self._train(token, job),
            on_error=lambda err: self._failed(token, None, "read the training data", err),
            on_cancelled=lambda: self._cancelled(token, None),
        )

    def _train(self, token: CancelToken, job: TrainingJob) -> None:
        """Step 2 of 3: train, export and embed on the pool, beside the engine thread."""
        if self._left(token, job):
            return
        self.job = job
        if token.cancelled:
            self._cancelled(token, job)
            return

        from engine.learning import run_clock

        # One clock for steps 2 and 3: the bar and the time left are the whole run's.
        self.clock = run_clock(job.data, job.config, job.plan, self._show_progress)

        def run(ctx: TaskContext) -> tuple[TrainResult, GateWork]:
            from engine import learning

            result = learning.train_candidate(
                job.data, job.config, job.workdir, progress=ctx.progress, cancel=ctx.token
            )
            work = learning.embed_for_gate(
                job.plan, job.data, result, job.workdir, progress=ctx.progress, cancel=ctx.token
            )
            return result, work

        def trained(out: tuple[TrainResult, GateWork]) -> None:
            job.result, job.work = out
            self._finish(token, job)

        self.worker.run_detached(
            run,
            what="train the model",
            token=token,
            any_library=True,
            on_progress=lambda p: self._progress(token, p),
            on_result=trained,
            on_error=lambda err: self._failed(token, job, "train the model", err),
            on_cancelled=lambda: self._cancelled(token, job),
        )

    def _finish(self, token: CancelToken, job: TrainingJob) -> None:
        """Step 3 of 3: gate and (if better) activate, on the engine thread."""
        if self._left(token, job):
            return
        self.train_stage.setText("Checking the new model")

        def run(ctx: TaskContext) -> LearningReport:
            from engine import learning

            lib = ctx.lib
            if lib.path != job.library:
                raise RuntimeError("another library was opened while the model was training")
            assert job.result is not None and job.work is not None  # set by step 2
            # As in 'shopmatch train': too few held-out photos cannot prove a gain, and the
            # catalog self-check alone let worse models in (demo: top-1 on real photos 0.425
            # down to 0.350). Such a version is kept, for the user to try by hand.
            return learning.finish(
                lib, job.data, job.result, job.work, progress=ctx.progress, cancel=ctx.token
            )

        # Ahead of queued matching, as a model switch's last step: it takes seconds, and
        # behind photos dropped meanwhile it waited for all of them to be matched with the
        # old model (and, the new one activated, for them to be matched again).
        self.worker.submit(
            run,
            what="check and activate the new model",
            priority=Priority.QUERY,
            token=token,
            any_library=True,
            on_progress=lambda p: self._progress(token, p),
            on_result=lambda report: self._done(token, job, report),
            on_error=lambda err: self._failed(token, job, "check the new model", err),
            on_cancelled=lambda: self._cancelled(token, job),
        )

    def _expected_duration(self) -> str:
        """'about N minutes', from the library's size and the cores training gets here
        (torch-free); a processor faster than the reference laptop's takes less."""
        from engine.training.budget import estimate_seconds

        s = self.stats
        if s is None:
            return "some minutes"
        refs = s.catalog_images + s.remembered
        seconds = estimate_seconds(s.catalog_images, s.confirmed, refs, threads=training_threads())
        return f"about {count(max(1, round(seconds / 60)), 'minute')} here"

    def library_changed(self) -> None:
        """Another library (or none) is open: a run on the old one stops and the page leaves
        it now, and the status line leaves the old run's outcome for the hint (with the new
        library's duration once its figures load). The run's step still running ends on its
        own (see _left): waiting for its answer left the page 'training' for good when the
        answer came for the old library and was dropped."""
        token = self._token
        if token is not None:
            token.cancel()  # its data belongs to the library just closed
            # Not released here: the step still running may use it; its answer frees it.
            self.job, self._token, self.clock = None, None, None
            self._set_running(False)
        self._hinting = True
        self.status.setText(IDLE_HINT)
        self.outcome.setVisible(False)  # the old library's run

    def _ours(self, token: CancelToken) -> bool:
        """Whether ``token``'s run is the one on show, and its library still the open one."""
        return token is self._token and self.worker.generation == self._generation

    def _left(self, token: CancelToken, job: TrainingJob | None) -> bool:
        """True for an answer from a run this page has left for another library: it must not
        act on the library open now (a model activated there would re-match its queue), so
        the run ends here, and its scratch folder, which no later step needs, goes."""
        if self._ours(token):
            return False
        if job is not None:
            scratch.release(job.workdir)
        return True

    def engine_stopped(self) -> None:
        """The window has closed and its threads have ended: no step of a run can use the
        run's scratch folder any more, so it goes now rather than at the library's next
        opening (which would be another process's, and not soon, after a quit)."""
        self._drop_run()

    def cancel_training(self) -> None:
        token = self._token
        if token is not None and not token.cancelled:
            token.cancel()
            self.train_cancel.setEnabled(False)
            self.train_stage.setText("Cancelling")

    def _hint(self) -> str:
        said = f"Fine-tuning takes {self._expected_duration()}; you can keep matching meanwhile."
        short = self._too_few_to_prove()
        return f"{said} {short}" if short else said

    def _too_few_to_prove(self) -> str:
        """What is missing before a run could be adopted, or "": the gate refuses a model it
        cannot test on MIN_HELDOUT unseen confirmed photos, and a new user waited minutes
        for a certain 'kept the active model'."""
        from engine.training.options import HOLDOUT_SHARE, MIN_HELDOUT

        s = self.stats
        if s is None or s.heldout >= MIN_HELDOUT:
            return ""
        about = math.ceil(MIN_HELDOUT / HOLDOUT_SHARE)
        return (
            f"A new model can be adopted once at least {MIN_HELDOUT} confirmed photos can be "
            f"kept aside to test it: about {about} confirmations, two or more of each product "
            f"(now {count(s.confirmed, 'confirmation')}, {s.heldout} to test with). Until then "
            "a run is kept as a version to try by hand."
        )

    def _progress(self, token: CancelToken, p: Progress) -> None:
        if not self._ours(token):
            return
        if self.clock is not None:
            self.clock(p)  # calls _show_progress with the whole run's figures
        else:
            self._show_progress(p)

    def _show_progress(self, p: Progress) -> None:
        self.train_stage.setText(p.stage)
        self.train_eta.setText(show_progress(self.train_bar, p))

    def _done(self, token: CancelToken, job: TrainingJob, report: LearningReport) -> None:
        if self._left(token, job):
            return
        self.last_report = report
        self._end()
        if report.activated and report.version:
            self.status.setText(f"<b>New model {report.version} is active.</b>")
            title = "Model improved"
            said = f"matching now uses model {report.version}"
        else:
            reason = report.decision.reason if report.decision else "it was not checked"
            kept = (
                f" Version {report.version} stays under Model versions, to try by hand."
                if report.version
                else ""
            )
            self.status.setText(f"The current model was kept: {reason}.{kept}")
            title = "Model kept"
            said = reason
        # On the page and in the status bar, never in a box: staff review meanwhile, and a
        # (window-modal) box took the next key meant for a photo (Enter confirmed nothing).
        figures = html.escape(report.summary(), quote=False).replace("\n", "<br>")
        self.outcome.setText(f"<b>{title}</b><br>{figures}")
        self.outcome.setVisible(True)
        self.said.emit(f"{title}: {said}; details on the Learning tab")
        if report.activated and report.version:
            self.model_activated.emit(report.version)
        self.refresh()

    def _failed(
        self, token: CancelToken, job: TrainingJob | None, what: str, err: TaskError
    ) -> None:
        from engine.learning import LearningError

        if self._left(token, job):
            return
        self._end()
        if isinstance(err.exc, LearningError):
            self.status.setText(str(err.exc).capitalize() + ".")
            return
        self.status.setText("Fine-tuning failed; the current model is unchanged.")
        self.worker.error.emit(what, err)
        self.refresh()

    def _cancelled(self, token: CancelToken, job: TrainingJob | None) -> None:
        if self._left(token, job):
            return
        self._end()
        self.status.setText("Fine-tuning cancelled; the current model is unchanged.")
        self.refresh()

    def _set_running(self, on: bool, stage: str = "") -> None:
        self.improve.setEnabled(not on)
        self.train_box.setVisible(on)
        self.train_cancel.setEnabled(on)
        self.train_bar.setRange(0, 0)
        self.train_stage.setText(stage)
        self.train_eta.setText("")
        if on:
            self._hinting = False
            self.status.setText("Fine-tuning… matching keeps working meanwhile.")
            self.outcome.setVisible(False)
        self._selection_changed()
        self.training_changed.emit(on)

    def _end(self) -> None:
        self._drop_run()
        self._set_running(False)

    def _drop_run(self) -> None:
        """Leave the run on show and delete its scratch folder, which no step uses now."""
        job, self.job, self._token, self.clock = self.job, None, None, None
        if job is not None:
            scratch.release(job.workdir)
