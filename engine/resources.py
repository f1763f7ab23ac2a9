"""Where the bundled resources (encoders, demo catalog, icons) live.

Checked in order: ``$SHOPMATCH_RESOURCES``, a PyInstaller bundle (``sys._MEIPASS``), and the
source checkout (``resources/`` beside ``engine/``), which is what an editable install uses.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DEFAULT_MODEL = "efficientnet-lite0"


def resources_dir() -> Path:
    env = os.environ.get("SHOPMATCH_RESOURCES")
    if env:
        return Path(env)
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    return Path(__file__).resolve().parents[1] / "resources"


def bundled_model_dir(name: str = DEFAULT_MODEL) -> Path:
    return resources_dir() / "models" / name


def demo_dir() -> Path:
    return resources_dir() / "demo"
