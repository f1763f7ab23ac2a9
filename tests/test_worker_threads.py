"""Python objects that may hold Qt objects are freed on the GUI thread, never on a worker.

A finished task's callbacks capture Qt objects (a progress dialog the GUI deletes when the
task is done). When the engine thread held the last reference to the task, it freed those
wrappers itself, racing the GUI thread's deletion of the dialog: CI crashed with a
segmentation fault during a model switch. The same goes for reference cycles, which Python's
automatic collector frees on whichever thread crosses its threshold.
"""

from __future__ import annotations

import gc
import threading
import time
from typing import Any

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QApplication

from desktop_app.worker import EngineWorker, TaskContext


class Freed:
    """Records the thread that freed it."""

    def __init__(self, where: list[str]) -> None:
        self._where = where

    def __del__(self) -> None:
        self._where.append(threading.current_thread().name)


def _settle(worker: EngineWorker, until: Any) -> None:
    deadline = time.monotonic() + 10
    while (worker.busy or not until()) and time.monotonic() < deadline:
        QApplication.processEvents()
        time.sleep(0.01)


@pytest.mark.parametrize("detached", [False, True], ids=["engine thread", "pool"])
def test_a_finished_tasks_callbacks_are_freed_on_the_gui_thread(qapp: Any, detached: bool) -> None:
    """The task (and the objects its callbacks hold) is let go of on the GUI thread: the
    engine thread used to hold the last task it ran until the next one came."""
    worker = EngineWorker()
    where: list[str] = []
    try:
        held = Freed(where)
        results: list[object] = []
        run = worker.run_detached if detached else worker.submit
        run(lambda ctx: 1, what="first", on_result=lambda r, held=held: results.append(r))
        del held
        _settle(worker, lambda: results == [1])
        worker.submit(lambda ctx: 2, what="next", on_result=results.append)
        _settle(worker, lambda: results == [1, 2] and bool(where))
        assert where == [threading.main_thread().name]
    finally:
        worker.shutdown()


def test_cycles_made_on_the_engine_thread_are_collected_on_the_gui_thread(qapp: Any) -> None:
    """While a worker runs, automatic collection is off and the GUI thread collects; it is
    on again once the worker has stopped."""
    assert gc.isenabled()
    worker = EngineWorker()
    where: list[str] = []
    try:
        assert not gc.isenabled()

        def garbage(ctx: TaskContext) -> int:
            cycle: list[Any] = [Freed(where)]
            cycle.append(cycle)
            del cycle
            # Enough allocations to cross the youngest generation's threshold many times.
            kept = [[i] for i in range(50 * gc.get_threshold()[0])]
            return len(kept)

        done: list[int] = []
        worker.submit(garbage, what="make garbage", on_result=done.append)
        _settle(worker, lambda: bool(done) and bool(where))
        assert where == [threading.main_thread().name]
    finally:
        worker.shutdown()
    assert gc.isenabled()
