"""The engine must never import Qt: it runs headless in the CLI, CI and training jobs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_engine_imports_no_qt() -> None:
    code = (
        "import sys, pkgutil, importlib, engine\n"
        "for m in pkgutil.walk_packages(engine.__path__, 'engine.'):\n"
        "    if m.name != 'engine.__main__':\n"
        "        importlib.import_module(m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in "
        "('PySide6', 'PyQt5', 'PyQt6', 'shiboken6'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "", f"engine imported Qt modules: {out.stdout}"


def test_engine_source_never_mentions_qt() -> None:
    for path in (REPO / "engine").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for name in ("PySide6", "PyQt5", "PyQt6"):
            assert f"import {name}" not in text and f"from {name}" not in text, path
