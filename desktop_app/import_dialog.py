"""Catalog import: choose folder and sheet (with a column-mapping preview), watch progress,
read the summary. The import itself runs on the engine thread (see MainWindow)."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from pathlib import Path

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.dialogs import error_sentence, fit_screen
from desktop_app.icons import icon
from desktop_app.progress_bar import show_progress
from desktop_app.theme import font_size
from desktop_app.worker import EngineWorker, Priority, TaskContext, TaskError
from engine.catalog_import import ImportReport, RemovalsNeedConsent
from engine.errors import folder_problem
from engine.home import expand_home
from engine.progress import Progress
from engine.wording import count

PREVIEW_ROWS = 8
FIELDS = ("sku", "name", "category", "supplier", "price", "image")
FIELD_LABELS = {
    "sku": "SKU",
    "name": "Name",
    "category": "Category",
    "supplier": "Supplier",
    "price": "Price",
    "image": "Image",
}


@dataclass(frozen=True)
class SheetPreview:
    mapping: dict[str, str]
    rows: list[dict[str, str]]  # first rows, our fields plus "other"
    total_rows: int
    problems: list[str]
    images_in_folder: int | None
    error: str | None = None
    # A folder was named and is not one: the import would stop at "catalog folder not found",
    # so the preview says so and Import stays disabled (a sheet beside it hid the typo).
    folder_missing: bool = False
    worksheets: str = ""  # a workbook's: which worksheets hold the products
    pictures: int = 0  # placed in a workbook's product rows (saved as files at import)

    @property
    def empty(self) -> bool:
        """Nothing to import: no sheet row and no image file (an empty folder "imported"
        into a summary of zeros that read like success)."""
        return not self.total_rows and self.images_in_folder == 0


def build_preview(folder: Path | None, sheet: Path | None) -> SheetPreview:
    """Engine thread: parse the sheet with the engine's own reader, count folder images."""
    from engine.images import iter_image_files
    from engine.sheet import read_sheet

    images = None
    if folder is not None and folder.is_dir():
        images = sum(1 for _ in iter_image_files(folder))
    missing = folder is not None and images is None
    if sheet is None:
        return SheetPreview({}, [], 0, [], images, folder_missing=missing)
    try:
        parsed = read_sheet(sheet)
    except Exception as exc:  # a bad sheet is shown in the preview, not as a crash
        return SheetPreview(
            {}, [], 0, [], images, error=error_sentence(exc), folder_missing=missing
        )
    # The first rows, and the first of every worksheet a workbook's products come from.
    firsts = {r.tab: r for r in reversed(parsed.rows)}
    shown = [r for r in parsed.rows if firsts.get(r.tab) is r]
    shown += [r for r in parsed.rows if r not in shown][: max(0, PREVIEW_ROWS - len(shown))]
    shown.sort(key=parsed.rows.index)
    rows = []
    for r in shown[: max(PREVIEW_ROWS, len(firsts))]:
        rows.append(
            {
                "sku": r.sku,
                "name": r.name,
                "category": r.category,
                "supplier": r.supplier,
                "price": "" if r.price is None else f"{r.price:.2f}",
                "image": r.image,
                "other": ", ".join(f"{k}: {v}" for k, v in r.attributes.items()),
            }
        )
    return SheetPreview(
        parsed.column_names(),
        rows,
        len(parsed.rows),
        parsed.problems,
        images,
        folder_missing=missing,
        worksheets=parsed.worksheets,
        pictures=sum(len(r.embedded) for r in parsed.rows),
    )


def sheet_for_folder(old: Path, new: Path, sheet: Path) -> Path:
    """The sheet to import with ``new`` when the images folder changes from ``old``: the
    sheet of the old folder (in it, or beside it) names the same file in the new one, or the
    import would read the old catalog's rows and pictures; any other sheet stays."""
    if new in sheet.parents:
        return sheet  # already in the new folder
    if sheet.parent in new.parents and (old in new.parents or new in old.parents):
        return sheet  # one folder narrowed or widened: its sheet above still applies
    beside_old = sheet.parent == old.parent
    if beside_old and sheet.stem == old.name:  # catalog/ with catalog.csv beside it
        return new.parent / f"{new.name}{sheet.suffix}"
    if sheet.parent in new.parents:
        return sheet  # beside or above the new folder too (one sheet for sub-folders)
    if old in sheet.parents:
        return new / sheet.relative_to(old)
    if beside_old:
        return new.parent / sheet.name
    return sheet  # chosen from elsewhere


class ImportSetupDialog(QDialog):
    """Folder + optional sheet, and a preview of how the sheet's columns will be read."""

    def __init__(
        self,
        worker: EngineWorker,
        parent: QWidget | None = None,
        folder: Path | None = None,
        sheet: Path | None = None,
    ) -> None:
        super().__init__(parent)
        self.worker = worker
        self.setWindowTitle("Import a supplier catalog")
        self.setWindowIcon(icon("import"))
        fit_screen(self, QSize(860, 560))
        layout = QVBoxLayout(self)
        intro = QLabel(
            "Choose the folder with the supplier's product images and, if you have one, the "
            "product sheet (Excel or CSV) with SKU, name, category, supplier and price. "
            "Importing again later only processes what changed."
        )
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.folder_edit = QLineEdit()
        self.folder_edit.setPlaceholderText("Folder of product images")
        browse_folder = QPushButton("Browse…")
        browse_folder.clicked.connect(self._browse_folder)
        row = QHBoxLayout()
        row.addWidget(self.folder_edit, 1)
        row.addWidget(browse_folder)
        form.addRow("Images folder:", row)
        self.sheet_edit = QLineEdit()
        self.sheet_edit.setPlaceholderText("Optional: product sheet (.xlsx or .csv)")
        browse_sheet = QPushButton("Browse…")
        browse_sheet.clicked.connect(self._browse_sheet)
        row = QHBoxLayout()
        row.addWidget(self.sheet_edit, 1)
        row.addWidget(browse_sheet)
        form.addRow("Product sheet:", row)
        layout.addLayout(form)

        box = QGroupBox("Preview")
        bl = QVBoxLayout(box)
        self.summary = QLabel("Choose a folder or a sheet to see a preview.")
        self.summary.setWordWrap(True)
        bl.addWidget(self.summary)
        self.table = QTableWidget(0, len(FIELDS) + 1)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        self.table.horizontalHeader().setStretchLastSection(True)
        bl.addWidget(self.table, 1)
        layout.addWidget(box, 1)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Import")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        layout.addWidget(self.buttons)
        self.folder_edit.editingFinished.connect(self._fields_edited)
        self.sheet_edit.editingFinished.connect(self._fields_edited)
        self.preview: SheetPreview | None = None
        self._request = 0
        self._read = ("", "")  # the folder and sheet texts the preview was last asked for
        self._sheet_note = ""  # what the last change of folder did to the sheet
        if folder:
            self.folder_edit.setText(str(folder))
        if sheet:
            self.sheet_edit.setText(str(sheet))
        self._update_ok()
        if folder or sheet:
            self.refresh_preview()

    # -- values ------------------------------------------------------------------------------
    @property
    def folder(self) -> Path | None:
        text = self.folder_edit.text().strip()
        return expand_home(text) if text else None

    @property
    def sheet(self) -> Path | None:
        text = self.sheet_edit.text().strip()
        return expand_home(text) if text else None

    def _texts(self) -> tuple[str, str]:
        return self.folder_edit.text().strip(), self.sheet_edit.text().strip()

    def _fields_edited(self) -> None:
        """Enter in a path field, or the focus leaving it (as for a click on Import): read
        again only if a path changed. Re-reading the same paths disabled Import just before
        Enter or the click reached it, so neither ever imported."""
        folder, sheet = self._texts()
        if (folder, sheet) == self._read:
            return
        if sheet != self._read[1]:
            self._sheet_note = ""  # the user's own choice of sheet
        elif folder != self._read[0]:
            self._follow_folder()
        self.refresh_preview()

    def _follow_folder(self) -> None:
        """The folder changed and the sheet did not: a sheet of the old folder follows to the
        new one, or is cleared with a note. Kept, last time's old/sheet.csv was imported with
        the updated catalog's folder: old rows and pictures, 'unchanged', new prices lost."""
        self._sheet_note = ""
        old, new, sheet = self._read[0], self.folder, self.sheet
        if not old or new is None or sheet is None:
            return
        follows = sheet_for_folder(expand_home(old), new, sheet)
        if follows == sheet:
            return
        if follows.is_file():
            self.sheet_edit.setText(str(follows))
            self._sheet_note = f"The sheet follows the folder: {escape(str(follows))}."
        else:
            self.sheet_edit.clear()
            self._sheet_note = (
                f"<span style='color:#bf360c'><b>Sheet cleared:</b> {escape(str(sheet))} "
                f"is the previous folder's, and this folder has no {escape(follows.name)}. "
                "Choose this folder's sheet, or import without one.</span>"
            )

    def accept(self) -> None:
        """Import only what the preview shows: paths typed since are read first (Enter or a
        click then shows their preview, and the next one imports)."""
        if self._texts() != self._read:
            self._fields_edited()
            return
        if self.buttons.button(QDialogButtonBox.StandardButton.Ok).isEnabled():
            super().accept()

    def _update_ok(self) -> None:
        # Only once the preview has read what was chosen: Enter in a typed path used to
        # start the import before the check for "nothing to import" had run.
        ok = (
            (self.folder is not None or self.sheet is not None)
            and self.preview is not None
            and not (self.preview.error or self.preview.empty or self.preview.folder_missing)
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)

    def _browse_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(
            self, "Folder of product images", self.folder_edit.text()
        )
        if path:
            self.folder_edit.setText(path)
            if self._texts() != self._read:
                self._fields_edited()  # as typed: the old folder's sheet follows
            else:
                self.refresh_preview()  # the same folder, read again

    def _browse_sheet(self) -> None:
        start = self.sheet_edit.text() or self.folder_edit.text()
        path, _ = QFileDialog.getOpenFileName(
            self, "Product sheet", start, "Sheets (*.xlsx *.xlsm *.csv *.tsv *.txt);;All files (*)"
        )
        if path:
            self.sheet_edit.setText(path)
            self._sheet_note = ""
            if not self.folder_edit.text():
                self.folder_edit.setText(str(Path(path).parent))
            self.refresh_preview()

    # -- preview -----------------------------------------------------------------------------
    def refresh_preview(self) -> None:
        folder, sheet = self.folder, self.sheet
        self._request += 1
        request = self._request
        self._read = self._texts()
        self.preview = None
        self._update_ok()
        if folder is None and sheet is None:
            self.summary.setText("Choose a folder or a sheet to see a preview.")
            return
        self.summary.setText("Reading…")

        def run(ctx: TaskContext) -> SheetPreview:
            return build_preview(folder, sheet)

        def done(preview: SheetPreview) -> None:
            if request == self._request:
                self.show_preview(preview)

        def failed(err: TaskError) -> None:
            if request == self._request:
                self.show_preview(SheetPreview({}, [], 0, [], None, error_sentence(err.exc)))

        self.worker.submit(
            run,
            what="read the sheet",
            priority=Priority.INTERACTIVE,
            on_result=done,
            on_error=failed,
        )

    def show_preview(self, preview: SheetPreview) -> None:
        self.preview = preview
        folder = self.folder
        parts = [self._sheet_note] if self._sheet_note else []
        if folder is not None and preview.folder_missing:
            said = folder_problem(folder, "folder") or f"folder not found: {folder}"
            parts.append(f"<span style='color:#c62828'>{escape(said[0].upper() + said[1:])}</span>")
        elif preview.empty and not preview.error:
            parts.append(
                "<span style='color:#c62828'><b>Nothing to import:</b> the folder has no image "
                "files (JPEG, PNG, WebP, HEIC…)"
                + (" and the sheet no product rows" if self.sheet is not None else "")
                + ".</span>"
            )
        elif preview.images_in_folder is not None:
            parts.append(f"{count(preview.images_in_folder, 'image file')} in the folder.")
        if preview.error:
            parts.append(
                f"<span style='color:#c62828'><b>The sheet cannot be used:</b> "
                f"{preview.error}</span>"
            )
        elif self.sheet is None:
            parts.append("No sheet: each image's file name becomes its SKU and name.")
        else:
            found = [
                f"{FIELD_LABELS[f]} ← “{preview.mapping[f]}”"
                for f in FIELDS
                if f in preview.mapping
            ]
            missing = [FIELD_LABELS[f] for f in FIELDS if f not in preview.mapping]
            rows = count(preview.total_rows, "product row")
            if preview.pictures:
                parts.append(
                    f"{count(preview.pictures, 'picture')} in the workbook's rows: saved as "
                    "files named by SKU, in a folder named after the workbook, and imported."
                )
            if preview.worksheets:
                said = preview.worksheets
                parts.append(escape(said[0].upper() + said[1:]) + ".")
            parts.append(f"{rows}. Columns: " + ", ".join(found))
            if missing:
                parts.append(
                    "Not in the sheet: "
                    + ", ".join(missing)
                    + (
                        " (images are then found by SKU file name)"
                        if "image" not in preview.mapping
                        else ""
                    )
                )
            if preview.problems:
                parts.append(
                    f"<span style='color:#bf360c'>{count(len(preview.problems), 'row problem')}"
                    f", e.g. {preview.problems[0]}</span>"
                )
        self.summary.setText("<br>".join(parts))
        headers = []
        for f in FIELDS:
            src = preview.mapping.get(f)
            headers.append(f"{FIELD_LABELS[f]}\n← {src}" if src else f"{FIELD_LABELS[f]}\n(none)")
        headers.append("Other columns\n(kept as attributes)")
        self.table.setHorizontalHeaderLabels(headers)
        self.table.setRowCount(len(preview.rows))
        for r, row in enumerate(preview.rows):
            for c, key in enumerate((*FIELDS, "other")):
                self.table.setItem(r, c, QTableWidgetItem(row.get(key, "")))
        self.table.resizeColumnsToContents()
        for c in range(self.table.columnCount()):
            self.table.setColumnWidth(c, min(self.table.columnWidth(c), 220))
        self._update_ok()


def ask_removals(parent: QWidget | None, exc: RemovalsNeedConsent) -> str | None:
    """The import would take most of a folder's pictures out of the catalog: "remove",
    "keep" (add this sheet's products, keep the others), or None (Cancel, the default)."""
    box = QMessageBox(parent)
    box.setWindowTitle("Import catalog")
    box.setIcon(QMessageBox.Icon.Warning)
    shown = ", ".join(exc.skus[:8]) + (", ..." if len(exc.skus) > 8 else "")
    box.setText(
        f"This import would take {exc.leaving} of the {exc.held} pictures imported from "
        f"{exc.folder.name} out of the catalog."
    )
    box.setInformativeText(
        f"{count(len(exc.skus), 'product')} would no longer be suggested ({shown}). If the "
        "supplier dropped them, remove them. If this sheet only lists new or changed "
        "products, keep the others. Nothing has been changed yet."
        + (f" Of the workbook, {exc.worksheets}." if exc.worksheets else "")
    )
    buttons = QMessageBox.StandardButton
    box.setStandardButtons(buttons.Yes | buttons.No | buttons.Cancel)
    box.button(buttons.Yes).setText("Remove them")
    box.button(buttons.No).setText("Keep them")
    box.setDefaultButton(buttons.Cancel)
    box.setEscapeButton(buttons.Cancel)
    return {int(buttons.Yes): "remove", int(buttons.No): "keep"}.get(int(box.exec()))


class ProgressDialog(QDialog):
    """Stage, bar, counts and time left; Cancel stops at the next batch, keeping work done."""

    cancel_requested = Signal()

    def __init__(self, parent: QWidget | None = None, title: str = "Importing catalog") -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self.setMinimumWidth(460)
        layout = QVBoxLayout(self)
        self.stage = QLabel("Reading the catalog…")
        self.stage.setStyleSheet("font-weight: bold;")
        layout.addWidget(self.stage)
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)
        layout.addWidget(self.bar)
        self.counts = QLabel(" ")
        layout.addWidget(self.counts)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self._cancel)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.cancel_button)
        layout.addLayout(row)
        self.last: Progress | None = None

    def update_progress(self, p: Progress) -> None:
        self.last = p
        left = show_progress(self.bar, p)
        if p.run_fraction is not None:
            # The bar is the whole import's: the stage's own count goes with the stage's name,
            # not beside the bar, where "81 of 81" next to 61% read as a contradiction.
            self.stage.setText(f"{p.stage}… ({p.done} of {p.total})")
            self.counts.setText(f"{left} in all")
        else:
            self.stage.setText(p.stage + "…")
            self.counts.setText(f"{p.done} of {count(p.total, 'image')} · {left}")

    def _cancel(self) -> None:
        self.cancel_button.setEnabled(False)
        self.stage.setText("Cancelling… (the work done so far is kept)")
        self.cancel_requested.emit()

    def reject(self) -> None:  # Escape / window close = Cancel; the dialog closes when done
        if self.cancel_button.isEnabled():
            self._cancel()


class ImportSummaryDialog(QDialog):
    """What the import did, and each skipped file with its reason."""

    def __init__(
        self, report: ImportReport, parent: QWidget | None = None, next_step: str | None = None
    ) -> None:
        """``next_step``: what the user does now, when the app already does the usual one
        (the demo adds its photos itself)."""
        super().__init__(parent)
        self.report = report
        problem = report.problem()  # most pictures unreadable: a copy cut short?
        self.setWindowTitle(
            "Import cancelled"
            if report.cancelled
            else "Pictures could not be used"
            if problem
            else "Catalog imported"
        )
        # Skipped files first, then notes (imported, but worth a look), in one table.
        entries = list(report.skipped) + [(w, f"Note: {r}") for w, r in report.notes]
        fit_screen(self, QSize(720, min(480, 260 + 30 * len(entries)) if entries else 240))
        layout = QVBoxLayout(self)
        title = QLabel(
            "<h3>Import cancelled</h3><p>Everything imported so far is kept. Import the same "
            "folder again to finish; finished images are not processed twice.</p>"
            if report.cancelled
            else f"<h3>Pictures could not be read</h3><p>{escape(problem)}.</p>"
            if problem
            else "<h3>Catalog imported</h3><p>"
            + escape(
                next_step
                or "Next: drop photos of the delivered goods on the window, or use File ▸ Add "
                "photos."
            )
            + "</p>"
        )
        title.setWordWrap(True)
        layout.addWidget(title)
        grid = QGridLayout()
        figures = (
            ("Products", report.products),
            ("Images added", report.added),
            ("Images updated", report.updated),
            ("Unchanged", report.unchanged),
            ("Removed", report.removed),
            ("Skipped", len(report.skipped)),
        )
        for i, (label, value) in enumerate(figures):
            number = QLabel(
                f"<span style='font-size:{font_size(1.67)}; font-weight:bold'>{value}</span>"
            )
            number.setAlignment(Qt.AlignmentFlag.AlignHCenter)
            if label == "Skipped" and value:
                number.setStyleSheet("color: #bf360c;")
            caption = QLabel(label)
            caption.setAlignment(Qt.AlignmentFlag.AlignHCenter)
            grid.addWidget(number, 0, i)
            grid.addWidget(caption, 1, i)
        layout.addLayout(grid)
        self.table: QTableWidget | None = None
        if entries:
            # A picture already in the catalog needs nothing; anything else is worth fixing.
            fixable = any("same picture as" not in reason for _, reason in report.skipped)
            hint = "fix them and import again" if fixable else "already in the catalog"
            heads = [f"<b>Skipped</b> ({hint})"] if report.skipped else []
            heads += ["<b>notes</b> (imported; worth a look)"] if report.notes else []
            layout.addWidget(QLabel(" and ".join(heads) + ":"))
            table = QTableWidget(len(entries), 2)
            table.setHorizontalHeaderLabels(["File", "Reason"])
            table.verticalHeader().setVisible(False)
            table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
            table.horizontalHeader().setStretchLastSection(True)
            for r, (where, reason) in enumerate(entries):
                item = QTableWidgetItem(
                    Path(where).name if "/" in where or "\\" in where else where
                )
                item.setToolTip(where)
                table.setItem(r, 0, item)
                table.setItem(r, 1, QTableWidgetItem(reason))
            table.resizeColumnToContents(0)
            table.setColumnWidth(0, min(table.columnWidth(0), 320))
            table.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            layout.addWidget(table, 1)
            self.table = table
        else:
            layout.addStretch(1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.accept)
        layout.addWidget(buttons)
