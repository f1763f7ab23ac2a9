"""'Why this match?': the photo and a suggested catalog image side by side, with a line for
every verified matching point (the local-feature stage's explanation of its score).

Loading runs on the engine thread (decoding, keypoint matching); the dialog only paints.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QVBoxLayout, QWidget

from desktop_app.dialogs import fit_screen
from desktop_app.worker import EngineWorker, Priority, TaskContext, TaskError
from engine.match_view import MatchView, match_view

GAP = 24  # pixels between the two images
MAX_LINES = 150  # beyond this the lines hide the images; the count is still reported


def to_qimage(img: Image.Image) -> QImage:
    """A deep copy (QImage would otherwise point into the PIL buffer, freed later)."""
    rgb = img.convert("RGB")
    data = rgb.tobytes()
    return QImage(data, rgb.width, rgb.height, 3 * rgb.width, QImage.Format.Format_RGB888).copy()


def line_colours(n: int) -> list[QColor]:
    """Distinct hues, so crossing lines can be told apart."""
    return [QColor.fromHsvF((i * 0.618034) % 1.0, 0.85, 0.95) for i in range(n)]


class PairCanvas(QWidget):
    """Paints photo | catalog image, scaled to fit, and the matched pairs as lines."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.photo: QImage | None = None
        self.catalog: QImage | None = None
        self.photo_points = np.zeros((0, 2))
        self.catalog_points = np.zeros((0, 2))
        self.setMinimumSize(560, 300)

    def set_pair(self, view: MatchView) -> None:
        self.photo = to_qimage(view.photo) if view.photo is not None else None
        self.catalog = to_qimage(view.catalog) if view.catalog is not None else None
        self.photo_points = np.asarray(view.matches.photo_points)[:MAX_LINES]
        self.catalog_points = np.asarray(view.matches.catalog_points)[:MAX_LINES]
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(900, 460)

    def layout_rects(self) -> tuple[QRectF, QRectF]:
        """Where each image is drawn: two halves, each image scaled to fit its half."""
        half_w = max(1.0, (self.width() - GAP) / 2)
        h = float(self.height())

        def fit(img: QImage | None, x0: float) -> QRectF:
            if img is None or img.isNull():
                return QRectF(x0, 0, half_w, h)
            s = min(half_w / img.width(), h / img.height())
            w, hh = img.width() * s, img.height() * s
            return QRectF(x0 + (half_w - w) / 2, (h - hh) / 2, w, hh)

        return fit(self.photo, 0.0), fit(self.catalog, half_w + GAP)

    def paintEvent(self, event: QPaintEvent) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        left, right = self.layout_rects()
        for img, rect, missing in (
            (self.photo, left, "Photo not available"),
            (self.catalog, right, "Catalog image not available"),
        ):
            if img is not None and not img.isNull():
                p.drawImage(rect, img)
            else:
                p.setPen(QColor("#546e7a"))
                p.drawText(rect, Qt.AlignmentFlag.AlignCenter, missing)
        colours = line_colours(len(self.photo_points))
        for (px, py), (cx, cy), colour in zip(
            self.photo_points, self.catalog_points, colours, strict=True
        ):
            a = QPointF(left.x() + px * left.width(), left.y() + py * left.height())
            b = QPointF(right.x() + cx * right.width(), right.y() + cy * right.height())
            p.setPen(QPen(colour, 1.4))
            p.drawLine(a, b)
            p.setBrush(colour)
            p.drawEllipse(a, 2.5, 2.5)
            p.drawEllipse(b, 2.5, 2.5)
        p.end()


def caption(view: MatchView) -> str:
    m = view.matches
    if m.inliers:
        shape = {"homography": "a flat label or box", "affine": "a flat surface"}.get(
            m.model, "one surface"
        )
        return (
            f"<b>{m.inliers} matching points</b> with {view.sku}: the same printed details "
            f"line up as on {shape} seen from another angle."
            + (f" The first {MAX_LINES} are drawn." if m.inliers > MAX_LINES else "")
        )
    return (
        f"<b>No matching points verified</b> with {view.sku}: this suggestion rests on overall "
        "appearance (colour, shape, texture), as for fruit, vegetables and plain goods."
    )


class MatchPointsDialog(QDialog):
    """Non-blocking: the queue keeps matching while it is open."""

    def __init__(
        self,
        worker: EngineWorker,
        photo: int | Path,
        image_id: int,
        title: str,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Matching points — {title}")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        layout = QVBoxLayout(self)
        self.canvas = PairCanvas()
        self.caption = QLabel("Finding the matching points…")
        self.caption.setWordWrap(True)
        legend = QLabel(
            "<span style='color:#546e7a'>Left: your photo · right: catalog image</span>"
        )
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.caption)
        layout.addWidget(legend)
        layout.addWidget(buttons)
        fit_screen(self, self.canvas.sizeHint() + QSize(24, 110))
        self.view: MatchView | None = None

        def run(ctx: TaskContext) -> MatchView:
            return match_view(ctx.lib, photo, image_id)

        worker.submit(
            run,
            what="find the matching points",
            priority=Priority.QUERY,
            on_result=self.show_view,
            on_error=self._failed,
        )

    def show_view(self, view: MatchView) -> None:
        self.view = view
        self.canvas.set_pair(view)
        text = caption(view)
        if view.problem:
            text += f"<br><span style='color:#bf360c'>Note: {view.problem}.</span>"
        self.caption.setText(text)

    def _failed(self, err: TaskError) -> None:
        from engine.errors import describe

        self.caption.setText(f"The matching points could not be found: {describe(err.exc)}")
