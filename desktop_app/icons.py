"""SVG icons from resources/icons: vector, so they stay sharp at any device pixel ratio."""

from __future__ import annotations

from functools import cache

from PySide6.QtGui import QIcon

from engine.resources import resources_dir


def icon_path(name: str) -> str:
    return str(resources_dir() / "icons" / f"{name}.svg")


@cache
def icon(name: str) -> QIcon:
    """A QIcon backed by the SVG (rendered per size and DPR by Qt's SVG icon engine)."""
    return QIcon(icon_path(name))


def app_icon() -> QIcon:
    return icon("app")
