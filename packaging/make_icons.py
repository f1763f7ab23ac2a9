"""Render the app icon (resources/icons/app.svg) into the files installers want.

Windows wants ``.ico``, macOS ``.icns``, Linux desktops a PNG; all come from the one SVG so the
icon never drifts. Qt's SVG renderer draws the PNGs (PySide6 is in the build venv anyway) and
Pillow writes the multi-size ``.ico`` and ``.icns``. The outputs are committed, so a Windows or
macOS build does not have to run this; ``build.sh`` re-runs it, which is cheap.

Usage: python packaging/make_icons.py [OUT_DIR]   (default: packaging/icons)
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SVG = REPO / "resources" / "icons" / "app.svg"
ICO_SIZES = (16, 24, 32, 48, 64, 128, 256)
ICNS_SIZES = (16, 32, 64, 128, 256, 512, 1024)


def render_png(size: int) -> bytes:
    """The SVG drawn at ``size`` x ``size`` pixels, transparent background, as PNG bytes."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"cannot read {SVG}")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")
    buffer.close()
    return bytes(data.data())


def main(argv: list[str]) -> int:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PIL import Image
    from PySide6.QtGui import QGuiApplication

    out = Path(argv[0]) if argv else Path(__file__).resolve().parent / "icons"
    out.mkdir(parents=True, exist_ok=True)
    _app = QGuiApplication.instance() or QGuiApplication(["make_icons"])
    images = {
        size: Image.open(io.BytesIO(render_png(size))).convert("RGBA")
        for size in sorted({*ICO_SIZES, *ICNS_SIZES})
    }
    images[256].save(out / "shopmatch.png")  # Linux .desktop / AppImage icon
    images[512].save(out / "shopmatch-512.png")
    images[256].save(out / "shopmatch.ico", sizes=[(s, s) for s in ICO_SIZES])
    images[1024].save(out / "shopmatch.icns")  # Pillow writes every size it needs from this
    for name in ("shopmatch.png", "shopmatch-512.png", "shopmatch.ico", "shopmatch.icns"):
        print(f"wrote {out / name} ({(out / name).stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
