"""Decode photo previews off the GUI thread with Qt's image reader (no engine involved).

Dropped photos must show in the queue at once, before the engine has matched (and
thumbnailed) them; decoding 12-MP JPEGs on the GUI thread would stutter, so a small pool of
its own decodes them at reduced scale (JPEG DCT scaling) and hands back QImages.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QSize, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage, QImageReader, QPixmap, QPixmapCache


def read_scaled(path: Path, max_side: int) -> QImage:
    """Read ``path`` scaled to fit ``max_side`` (EXIF orientation applied); null on failure."""
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    size = reader.size()
    if size.isValid() and max(size.width(), size.height()) > max_side:
        fit = size.scaled(QSize(max_side, max_side), Qt.AspectRatioMode.KeepAspectRatio)
        # A 10000 x 3 strip scales to 0 pixels high, and Qt then reads nothing at all.
        reader.setScaledSize(fit.expandedTo(QSize(1, 1)))
    img = reader.read()
    if not img.isNull() and max(img.width(), img.height()) > max_side:
        img = img.scaled(
            max_side,
            max_side,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
    return img


def cached_pixmap(path: Path, max_side: int = 256) -> QPixmap:
    """A small image (engine thumbnail) read on the GUI thread, cached by path and size."""
    key = f"{path}@{max_side}"
    pix = QPixmap()
    if QPixmapCache.find(key, pix):
        return pix
    img = read_scaled(path, max_side)
    pix = QPixmap.fromImage(img) if not img.isNull() else QPixmap()
    if not pix.isNull():
        QPixmapCache.insert(key, pix)
    return pix


@functools.cache
def prime_image_plugins() -> None:
    """Load Qt's image format plugins once, here on the GUI thread, before a pool thread
    reads a picture: listing the formats loads every plugin. Their first loading on two
    pool threads at once, while the GUI thread first measured text, crashed the test run
    (exit 139 in the first window's first previews)."""
    QImageReader.supportedImageFormats()


class PreviewLoader(QObject):
    """``request(key, path, side)`` → ``loaded(key, QImage)`` later (null QImage on failure);
    ``path`` may be a list of files to try in turn (a photo, then the library's thumbnail of
    it for a file Qt cannot read or that is gone)."""

    loaded = Signal(object, QImage)
    _done = Signal(object, QImage)  # emitted on pool threads, delivered queued

    def __init__(self, parent: QObject | None = None, threads: int = 2) -> None:
        super().__init__(parent)
        prime_image_plugins()
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(threads)
        self._done.connect(self._forward)

    def request(self, key: object, path: Path | Sequence[Path | None], max_side: int) -> None:
        paths = [path] if isinstance(path, Path) else [p for p in path if p is not None]

        def work() -> None:
            image = QImage()
            for candidate in paths:
                image = read_scaled(candidate, max_side)
                if not image.isNull():
                    break
            self._done.emit(key, image)

        self._pool.start(work)

    def clear(self) -> None:
        self._pool.clear()

    def wait(self, msecs: int = 5000) -> bool:
        return self._pool.waitForDone(msecs)

    @Slot(object, QImage)
    def _forward(self, key: object, image: QImage) -> None:
        self.loaded.emit(key, image)
