"""Import hygiene: the engine never imports Qt, and native libraries coexist in one process."""

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


def test_native_libraries_load_in_any_order() -> None:
    """usearch 2.26.2-2.26.6 crash the interpreter when imported before onnxruntime 1.32;
    the pin in pyproject.toml avoids it, and this catches a regression on upgrade."""
    for first, second in (
        ("usearch.index", "onnxruntime"),
        ("onnxruntime", "usearch.index"),
        ("cv2", "onnxruntime"),
        ("usearch.index", "cv2"),
    ):
        code = f"import {first}, {second}; print('ok')"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.returncode == 0 and out.stdout.strip() == "ok", (first, second, out.stderr)
