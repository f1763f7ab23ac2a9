"""Take the README screenshots from the real window, driven through the demo catalog.

    xvfb-run -s '-screen 0 1280x720x24' .venv/bin/python scripts/screenshots.py
    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshots.py   # no X server

Under an X server the whole screen is grabbed (window plus any dialog on it); if the
``openbox`` window manager is installed (Debian: ``apt install openbox``) it is started first,
so the window and its dialogs have frames and title bars as on a desktop. If Qt's xcb
plugin cannot load (missing system libraries), the offscreen platform is used instead and a
dialog is composited over the window where a window manager would centre it. The library
lives in a temporary folder, so the user's own data is never touched.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SIZE = (1280, 720)


def xcb_usable() -> bool:
    """Probe in a child process: a Qt platform plugin that fails to load aborts the process."""
    if not os.environ.get("DISPLAY"):
        return False
    probe = "from PySide6.QtGui import QGuiApplication; QGuiApplication(['probe'])"
    env = {**os.environ, "QT_QPA_PLATFORM": "xcb"}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, timeout=60)
    return done.returncode == 0


def start_window_manager() -> subprocess.Popen[bytes] | None:
    """openbox, when installed: without a window manager dialogs float frameless and untitled
    over the window, which reads as a rendering fault in a screenshot."""
    exe = shutil.which("openbox")
    if exe is None:
        print("openbox not found: dialogs are shot without frames")
        return None
    wm = subprocess.Popen(
        [exe, "--sm-disable"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(1.5)  # let it take the screen before the first window maps
    return wm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    args = parser.parse_args()
    if "QT_QPA_PLATFORM" not in os.environ:
        os.environ["QT_QPA_PLATFORM"] = "xcb" if xcb_usable() else "offscreen"
    platform = os.environ["QT_QPA_PLATFORM"]
    print(f"platform: {platform}")
    wm = start_window_manager() if platform == "xcb" else None

    from PySide6.QtCore import QSettings
    from PySide6.QtGui import QColor, QGuiApplication, QPainter
    from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

    from desktop_app.icons import app_icon
    from desktop_app.main_window import MainWindow
    from engine.resources import demo_dir

    app = QApplication(["shopmatch-desktop"])
    app.setApplicationName("ShopMatch")
    app.setWindowIcon(app_icon())
    QMessageBox.exec = lambda box: int(QMessageBox.StandardButton.Yes)  # type: ignore[method-assign]
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="shopmatch-shots-"))

    def wait(cond: Callable[[], object], timeout: float = 120.0) -> None:
        end = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > end:
                raise TimeoutError("the app did not get there in time")
            app.processEvents()
            time.sleep(0.01)

    def settle(seconds: float = 0.4) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)

    def shoot(name: str, dialog: QWidget | None = None) -> None:
        settle()
        if platform == "xcb":
            pix = QGuiApplication.primaryScreen().grabWindow(0, 0, 0, *SIZE)
        else:
            pix = window.grab()
            if dialog is not None:
                over = dialog.grab()
                painter = QPainter(pix)
                painter.fillRect(pix.rect(), QColor(0, 0, 0, 60))
                x = (pix.width() - over.width()) // 2
                y = (pix.height() - over.height()) // 2
                painter.fillRect(
                    x - 1, y - 1, over.width() + 2, over.height() + 2, QColor("#78909c")
                )
                painter.drawPixmap(x, y, over)
                painter.end()
        target = args.out / f"{name}.png"
        pix.save(str(target), "PNG")
        print(f"saved {target.relative_to(REPO) if target.is_relative_to(REPO) else target}")

    def centre(dialog: QWidget) -> None:
        geo = dialog.frameGeometry()
        geo.moveCenter(window.frameGeometry().center())
        dialog.move(geo.topLeft())

    # A copy of the demo catalog with two problem rows, so the summary shows skipped files.
    demo = demo_dir()
    supplier = work / "demo-supplier"
    shutil.copytree(demo / "catalog", supplier / "catalog")
    (supplier / "catalog" / "scan-0042.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (supplier / "catalog" / "price-list.png").write_text("not a picture", encoding="utf-8")
    rows = list(csv.DictReader((demo / "catalog.csv").open(encoding="utf-8")))
    rows += [
        {
            "sku": "Oat-Drink-1L",
            "name": "Oat Drink 1 L",
            "category": "Oat-Milk",
            "image": "catalog/scan-0042.jpg",
        },
        {
            "sku": "Price-List",
            "name": "Price list",
            "category": "",
            "image": "catalog/price-list.png",
        },
    ]
    with (supplier / "catalog.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["sku", "name", "category", "image"])
        writer.writeheader()
        writer.writerows(rows)

    settings = QSettings(str(work / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings)
    if wm is not None:
        window.showMaximized()  # the screen, less the title bar
    else:
        window.resize(*SIZE)
        window.move(0, 0)
        window.show()

    # 1. First run.
    shoot("01-welcome")

    # 2. Import: sheet preview, progress, summary.
    window.open_library(work / "Demo library")
    wait(lambda: window.library_status is not None)
    window.choose_import()
    setup = window.import_setup
    setup.folder_edit.setText(str(supplier / "catalog"))
    setup.sheet_edit.setText(str(supplier / "catalog.csv"))
    setup.refresh_preview()
    wait(lambda: setup.preview is not None)
    setup.resize(900, 520)
    centre(setup)
    shoot("02-import-preview", setup)
    setup.accept()
    wait(
        lambda: (
            window.import_progress is not None
            and window.import_progress.last is not None
            and window.import_progress.last.stage.startswith("Encoding")
            and window.import_progress.last.done >= 16
        )
    )
    centre(window.import_progress)
    shoot("03-import-progress", window.import_progress)
    wait(lambda: window.import_summary is not None)
    centre(window.import_summary)
    shoot("04-import-summary", window.import_summary)
    window.import_summary.accept()
    shoot("05-review-empty")

    # 3. Review: queue the demo photos, decide a few, show the suggestions of the next one.
    window.add_paths([demo / "photos"])
    wait(
        lambda: (
            window.model.rowCount() == 40 and all(i.status != "pending" for i in window.model.items)
        )
    )
    session = window.session
    truth = {
        Path(r["photo"]).name: r["sku"]
        for r in csv.DictReader((demo / "truth.csv").open(encoding="utf-8"))
    }
    for row in range(6):
        session.select_row(row)
        item = window.model.item(row)
        assert item is not None
        right = truth.get(item.path.name)
        ranks = [s.sku for s in item.suggestions]
        if right in ranks:
            session.confirm_index(ranks.index(right))
        elif right:
            session.confirm_sku(right)
        else:
            session.no_match()
        wait(lambda: not window.worker.busy)
    target = next(
        (
            r
            for r in range(6, 40)
            if (it := window.model.item(r))
            and it.suggestions
            and it.suggestions[0].sku == truth.get(it.path.name)
        ),
        6,
    )
    session.select_row(target)
    wait(lambda: window.review.photo.has_photo())
    window.refresh_status()
    wait(lambda: not window.worker.busy)
    shoot("06-review")

    # Search for a product that was not suggested.
    window.review.focus_search()
    window.review.search.setText("yoghurt")
    wait(lambda: window.review.results.isVisible() and window.review.results.count() > 1)
    shoot("07-review-search")
    window.review.clear_search()

    # 4. Catalog browser on a product with a confirmed photo.
    confirmed = next(i for i in window.model.items if i.status == "confirmed")
    window.tabs.setCurrentWidget(window.catalog)
    wait(lambda: window.catalog.table.rowCount() > 0 and not window.worker.busy)
    window.catalog.text.setText(confirmed.decided_sku or "")
    wait(lambda: window.catalog.shown_sku == confirmed.decided_sku and not window.worker.busy)
    shoot("08-catalog")

    # 5. Learning panel.
    window.tabs.setCurrentWidget(window.learning)
    wait(lambda: window.learning.stats is not None and not window.worker.busy)
    shoot("09-learning")

    # 5b. Fine-tuning under way (cancelled after the shot: nothing changes).
    window.learning.start_training(confirm=False)
    wait(
        lambda: (
            window.learning.job is not None
            and window.learning.train_bar.maximum() > 0
            and window.learning.train_bar.value() >= 0.05 * window.learning.train_bar.maximum()
        ),
        timeout=300,
    )
    shoot("11-learning-training")
    window.learning.cancel_training()
    wait(lambda: not window.learning.training and not window.worker.busy, timeout=300)

    # 5c. Why a suggestion was made: its matching points.
    window.tabs.setCurrentWidget(window.review)
    verified = next(
        (
            r
            for r in range(window.model.rowCount())
            if (it := window.model.item(r))
            and it.suggestions
            and it.suggestions[0].inliers >= 20
            and it.suggestions[0].sku == truth.get(it.path.name)  # a right match, explained
        ),
        None,
    )
    if verified is not None:
        session.select_row(verified)
        wait(lambda: window.review.photo.has_photo())
        dialog = session.show_points(0)
        assert dialog is not None
        wait(lambda: getattr(dialog, "view", None) is not None)
        centre(dialog)
        shoot("12-matching-points", dialog)
        dialog.close()
    else:
        print("no demo photo has verified matching points: 12-matching-points not taken")

    # 5d. Export: one delivery's photos (the demo's photo folder), shot, then cancelled.
    from desktop_app.export_dialog import ExportDialog

    shot: list[bool] = []

    def shoot_export(dialog: ExportDialog) -> int:
        dialog.show()
        dialog.photos.setCurrentIndex(dialog.photos.count() - 1)  # the newest folder
        centre(dialog)
        shoot("13-export", dialog)
        shot.append(True)
        return 0  # Cancel: nothing is written

    ExportDialog.exec = shoot_export  # type: ignore[method-assign]
    window.choose_export()
    wait(lambda: bool(shot) and not window.worker.busy)

    # 6. About.
    window.show_about()
    wait(lambda: getattr(window, "about", None) is not None)
    centre(window.about)
    shoot("10-about", window.about)
    window.about.close()

    window.close()
    shutil.rmtree(work, ignore_errors=True)
    if wm is not None:
        wm.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
