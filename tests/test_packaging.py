"""The desktop app's --self-test and --version, run as a user (or an installer) would run them.

The frozen bundle is checked by packaging/smoke_test.sh (slow, not part of this run); these
tests keep the self-test itself honest in the source tree: it passes on a good installation,
fails loudly on a broken one, and leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from engine import __version__

REPO = Path(__file__).resolve().parents[1]
RESOURCES = REPO / "resources"


def run_app(*args: str, tmp: Path, env: dict[str, str] | None = None, timeout: float = 120):
    """``python -m desktop_app ARGS`` offscreen, with its temp files kept under ``tmp``."""
    full_env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "TMPDIR": str(tmp),
        "PYTHONPATH": str(REPO),
        # As the frozen app does (packaging/rthooks): onnxruntime's telemetry client would
        # otherwise write $TMPDIR/.ses and a database under ~/.cache.
        "ORT_DISABLE_TELEMETRY": "1",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "desktop_app", *args],
        cwd=tmp,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_version(tmp_path: Path) -> None:
    result = run_app("--version", tmp=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"ShopMatch {__version__}"


def test_self_test_passes_and_cleans_up(tmp_path: Path) -> None:
    """The matching scope: temp library, demo catalog, JPEG + HEIC match, Qt (no torch: the
    learning check runs in the frozen smoke test, where it matters and time allows)."""
    result = run_app("--self-test", "matching", tmp=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    for check in ("resources", "library", "catalog+match", "qt"):
        assert f"ok  {check}" in result.stdout
    assert "Banana_001.heic -> Banana" in result.stdout
    assert "self-test passed" in result.stdout
    assert result.stderr == "", result.stderr
    assert list(tmp_path.iterdir()) == [], "the self-test left files behind"


def test_self_test_fails_on_missing_resources(tmp_path: Path) -> None:
    empty = tmp_path / "no-resources"
    empty.mkdir()
    result = run_app(
        "--self-test", tmp=tmp_path, env={"SHOPMATCH_RESOURCES": str(empty)}, timeout=60
    )
    assert result.returncode == 1
    assert "self-test FAILED at resources: demo catalog incomplete" in result.stderr
    assert "self-test passed" not in result.stdout


def test_self_test_fails_on_missing_encoder(tmp_path: Path) -> None:
    """A bundle that lost its encoder file says which file is missing."""
    broken = tmp_path / "resources"
    shutil.copytree(RESOURCES / "demo", broken / "demo")
    shutil.copytree(RESOURCES / "models", broken / "models")
    (broken / "models" / "efficientnet-lite0" / "model.onnx").unlink()
    result = run_app(
        "--self-test", tmp=tmp_path, env={"SHOPMATCH_RESOURCES": str(broken)}, timeout=60
    )
    assert result.returncode == 1
    assert "self-test FAILED at resources: bundled encoder incomplete" in result.stderr
    assert "model.onnx" in result.stderr
