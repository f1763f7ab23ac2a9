"""The Review list follows the scores' calibration (engine.calibration): real window
(offscreen), real engine, the bundled demo's real shop photos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

import test_desktop
from PySide6.QtCore import Qt
from test_desktop import WAIT_MS, key, library_db, open_library

from desktop_app.main_window import MainWindow
from engine import memory
from engine.calibration import MIN_DECISIONS
from engine.evaluation import read_truth
from engine.library import Library
from engine.resources import demo_dir

boxes = test_desktop.boxes
engine_calls = test_desktop.engine_calls
make_window = test_desktop.make_window
window = test_desktop.window


def test_the_decision_that_calibrates_the_scores_rescores_the_photos_waiting(
    qtbot: Any, window: MainWindow, demo_library: Path, engine_calls: test_desktop.EngineCalls
) -> None:
    """The demo's 40 photos were matched before anything was calibrated, and staff chose
    the second suggestion for 29 of them. The 30th such decision, a key in the window, lets
    the scores be calibrated: the photos still waiting show their new, less sure, scores at
    once (as the library now stores them), in the same order, and "Accept confident" counts
    with them."""
    truth = read_truth(demo_dir() / "truth.csv")
    with engine_calls.by_test(), Library(demo_library) as lib:
        memory.set_enabled(lib, False)  # no photo searched again: only the scores change
        for path, _ in truth[: MIN_DECISIONS - 1]:
            pid = lib.photo_id(path)
            lib.confirm(pid, lib.suggestions(pid)[1].sku)
    w = window
    open_library(qtbot, w, demo_library)
    left = len(truth) - MIN_DECISIONS + 1
    qtbot.waitUntil(lambda: w.model.counts()["suggested"] == left, timeout=WAIT_MS)
    before = {i.photo_id: [(s.sku, s.score) for s in i.suggestions] for i in w.model.items}
    w.review.threshold.setValue(50)
    sure_before = len(w.model.confident())
    w.session.select_row(0)
    decided = w.model.items[0]
    w.review.queue.setFocus()
    key(w, Qt.Key.Key_2)  # the second suggestion again
    qtbot.waitUntil(lambda: decided.status == "confirmed", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    waiting = [i for i in w.model.items if i.status == "suggested"]
    assert len(waiting) == left - 1
    with library_db(demo_library) as db:
        for item in waiting:
            stored = db.execute(
                "SELECT sku, score FROM suggestions WHERE photo_id = ? ORDER BY rank",
                [item.photo_id],
            ).fetchall()
            shown = [(s.sku, s.score) for s in item.suggestions]
            assert shown == [tuple(r) for r in stored]
            assert [s for s, _ in shown] == [s for s, _ in before[item.photo_id]]
            assert shown[0][1] < before[item.photo_id][0][1]
    assert len(w.model.confident()) < sure_before
    assert w.review.accept_button.text() == (
        f"Accept {len(w.model.confident())} confident…"
        if w.model.confident()
        else "Accept confident…"
    )
