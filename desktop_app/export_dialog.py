"""The export's choices: which photos (one delivery), rows per photo or per product, and the
separator the shop's spreadsheet reads. The file name is asked next, in the system's own save
dialog, so the choices here stay few and the dialog small."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from PySide6.QtCore import QDate, Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from engine.photo_scope import PhotoFolder, PhotoScope
from engine.wording import count

FOLDERS_SHOWN = 20  # the newest deliveries; older folders are exported by day or in full
SEPARATOR_CHOICES = {
    "comma": "Comma (Excel and LibreOffice in English)",
    "semicolon": "Semicolon, decimal comma (Excel in German, French, Dutch…)",
    "tab": "Tab",
}
ALL, TODAY, YESTERDAY, ON_DAY = "all", "today", "yesterday", "day"


@dataclass(frozen=True)
class ExportChoice:
    """What the user chose; ``scope`` None is every photo."""

    scope: PhotoScope | None
    per: str
    include_undecided: bool
    separator: str
    name_hint: str  # part of the suggested file name: 'inventory-<hint>.csv'


def _when(moment: datetime | None) -> str:
    if moment is None:
        return ""
    local = moment.astimezone()
    day = "today" if local.date() == date.today() else local.strftime("%d %b %Y")
    return f", last added {day} {local:%H:%M}"


class ExportDialog(QDialog):
    """Asks what to export; ``choice()`` reads it once the dialog is accepted."""

    def __init__(
        self,
        parent: QWidget | None,
        folders: list[PhotoFolder],
        photos: int,
        separator: str,
        per: str = "photo",
        include_undecided: bool = False,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export Inventory")
        self.setModal(True)
        self.photos = QComboBox()
        self.photos.addItem(f"All photos ({count(photos, 'photo')})", (ALL, None))
        self.photos.addItem("Photos added today", (TODAY, None))
        self.photos.addItem("Photos added yesterday", (YESTERDAY, None))
        self.photos.addItem("Photos added on a day…", (ON_DAY, None))
        shown = folders[:FOLDERS_SHOWN]
        names = Counter(f.folder.name for f in shown)
        for f in shown:
            # Two deliveries in folders of one name (metro/2026-11-24, lidl/2026-11-24, or
            # two phones' 'Camera'): the parent folder tells them apart.
            name = f.folder.name or str(f.folder)
            if names[f.folder.name] > 1:
                name = f"{f.folder.parent.name}/{name}"
            self.photos.addItem(
                f"From folder {name} ({count(f.photos, 'photo')}{_when(f.last_added)})",
                ("folder", f.folder),
            )
            self.photos.setItemData(
                self.photos.count() - 1, str(f.folder), Qt.ItemDataRole.ToolTipRole
            )
        self.day = QDateEdit(QDate.currentDate())
        self.day.setCalendarPopup(True)
        self.day.setDisplayFormat("d MMM yyyy")
        self.day.setMaximumDate(QDate.currentDate())
        self.day.setEnabled(False)  # shown throughout, so the dialog keeps its size
        self.photos.currentIndexChanged.connect(self._photos_changed)
        which = QHBoxLayout()
        which.addWidget(self.photos, 1)
        which.addWidget(self.day)

        self.rows = QComboBox()
        self.rows.addItem("One row per photo", "photo")
        self.rows.addItem("One row per product, with quantity", "sku")
        self.rows.setCurrentIndex(max(0, self.rows.findData(per)))
        self.undecided = QCheckBox("Also list photos not decided yet, with their top suggestion")
        self.undecided.setChecked(include_undecided)
        self.rows.currentIndexChanged.connect(self._rows_changed)
        self.separator = QComboBox()
        for name, label in SEPARATOR_CHOICES.items():
            self.separator.addItem(label, name)
        self.separator.setCurrentIndex(max(0, self.separator.findData(separator)))
        self.separator.setToolTip(
            "The first supplier sheet's separator is the default: the shop's spreadsheet "
            "program reads that one."
        )

        form = QFormLayout()
        form.addRow("Photos:", which)
        form.addRow("Rows:", self.rows)
        form.addRow("", self.undecided)
        form.addRow("Separator:", self.separator)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.export_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.export_button.setText("Export…")  # the default: Enter exports
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        intro = QLabel("Which photos go into the CSV file, and how it is laid out:")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self._rows_changed()
        self.photos.setFocus()  # Enter exports, arrow keys pick the photos

    def _photos_changed(self) -> None:
        self.day.setEnabled(self.photos.currentData()[0] == ON_DAY)

    def _rows_changed(self) -> None:
        # A product row counts confirmed photos: undecided ones have nothing to add there.
        self.undecided.setEnabled(self.rows.currentData() == "photo")

    def choose(self, kind: str, folder: Path | None = None, day: date | None = None) -> None:
        """Select a 'Photos' entry (``ALL``, ``TODAY``, ``YESTERDAY``, ``ON_DAY`` with
        ``day``, or 'folder' with ``folder``): the keyboard's way, and the tests'."""
        for i in range(self.photos.count()):
            got_kind, got_folder = self.photos.itemData(i)
            if got_kind == kind and (folder is None or got_folder == folder):
                self.photos.setCurrentIndex(i)
                break
        else:
            raise ValueError(f"no such choice: {kind} {folder or ''}")
        if day is not None:
            self.day.setDate(QDate(day.year, day.month, day.day))

    def choice(self) -> ExportChoice:
        kind, folder = self.photos.currentData()
        today = date.today()
        scope: PhotoScope | None
        if kind == TODAY:
            scope, hint = PhotoScope.day(today), today.isoformat()
        elif kind == YESTERDAY:
            day = date.fromordinal(today.toordinal() - 1)
            scope, hint = PhotoScope.day(day), day.isoformat()
        elif kind == ON_DAY:
            picked = self.day.date()
            day = date(picked.year(), picked.month(), picked.day())
            scope, hint = PhotoScope.day(day), day.isoformat()
        elif kind == "folder":
            scope, hint = PhotoScope(folder=folder), f"{Path(folder).name}-{today.isoformat()}"
        else:
            scope, hint = None, today.isoformat()
        per = str(self.rows.currentData())
        return ExportChoice(
            scope=scope,
            per=per,
            include_undecided=per == "photo" and self.undecided.isChecked(),
            separator=str(self.separator.currentData()),
            name_hint=hint,
        )
