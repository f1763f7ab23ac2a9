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

import shiboken6
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QApplication

from desktop_app.gc_guard import GuiThreadCollector
from desktop_app.worker import EngineWorker, Priority, TaskContext


class Freed:
    """Records the thread that freed it."""

    def __init__(self, where: list[str]) -> None:
        self._where = where

    def __del__(self) -> None:
        self._where.append(threading.current_thread().name)


def _freed_cycle(where: list[str]) -> int:
    """Leave a reference cycle holding a Freed, then allocate as engine work does (enough
    to cross the youngest generation's threshold many times)."""
    cycle: list[Any] = [Freed(where)]
    cycle.append(cycle)
    del cycle
    return len([[i] for i in range(50 * gc.get_threshold()[0])])


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
            return _freed_cycle(where)

        done: list[int] = []
        worker.submit(garbage, what="make garbage", on_result=done.append)
        _settle(worker, lambda: bool(done) and bool(where))
        assert where == [threading.main_thread().name]
    finally:
        worker.shutdown()
    assert gc.isenabled()


def test_a_shutdown_that_times_out_keeps_collection_on_the_gui_thread(qapp: Any) -> None:
    """A step that cannot be cancelled (a backup of a big library) outlasts shutdown's
    wait: automatic collection stayed off only until then, so the cycles the engine thread
    went on to leave were freed on it. Now it is given back once the thread has ended."""
    worker = EngineWorker()
    where: list[str] = []
    started, gate = threading.Event(), threading.Event()

    def slow(ctx: TaskContext) -> int:
        started.set()
        gate.wait(30)
        return _freed_cycle(where)

    try:
        worker.submit(slow, what="back up the library", priority=Priority.INTERACTIVE)
        assert started.wait(10)
        assert worker.shutdown(timeout_ms=200) is False  # still busy
        assert not gc.isenabled()
        gate.set()
        _settle(worker, lambda: bool(where) and gc.isenabled())
        assert where == [threading.main_thread().name]
        assert gc.isenabled()  # given back once the engine thread had ended
    finally:
        gate.set()


def test_work_the_stop_went_ahead_of_is_freed_on_the_gui_thread(qapp: Any) -> None:
    """Closing during matching: the stop runs before the queued chunks, which never run.
    They stayed in the queue (inside the worker's reference cycle with its thread) until
    some thread's automatic collection freed them, with the photos their callbacks hold."""
    worker = EngineWorker()
    where: list[str] = []

    def until_the_stop_is_queued(ctx: TaskContext) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with worker._queue.mutex:
                if any(entry[2] is None for entry in worker._queue.queue):
                    return
            time.sleep(0.001)

    worker.submit(until_the_stop_is_queued, what="confirm", priority=Priority.INTERACTIVE)
    for _ in range(3):
        held = Freed(where)
        worker.submit(
            lambda ctx: None,
            what="match the photos",
            priority=Priority.BACKGROUND,
            on_cancelled=lambda held=held: None,
        )
        del held
    assert worker.shutdown() is True
    assert where == [threading.main_thread().name] * 3


def test_a_worker_deleted_without_shutdown_gives_automatic_collection_back(qapp: Any) -> None:
    """Its owner deleted without closing (the app torn down): collection was left off for
    good, with the timer that did it gone."""
    parent = QObject()
    worker = EngineWorker(parent)
    try:
        assert not gc.isenabled()
        shiboken6.delete(parent)  # the worker and its collector go with it
        assert gc.isenabled()
    finally:
        worker._queue.put((0, -1, None))  # stop its thread (test clean-up)
        worker._thread.wait(20000)


class Uncancellable:
    """A pool step that cannot be cancelled (an ONNX export): it outlasts shutdown's wait."""

    def __init__(self, worker: EngineWorker) -> None:
        self.worker = worker
        self.started, self.gate = threading.Event(), threading.Event()
        worker.run_detached(self._run, what="export the candidate")
        assert self.started.wait(10)

    def _run(self, ctx: TaskContext) -> None:
        self.started.set()
        self.gate.wait(30)

    def finish(self) -> None:
        self.gate.set()
        _settle(self.worker, lambda: self.worker.stopped)


def test_shutdown_says_stopped_only_once_a_pool_step_has_ended(qapp: Any) -> None:
    """A second shutdown (a second close) said True, and ``stopped`` too, while the step
    still ran: the window then deleted the training folder the step was writing in."""
    worker = EngineWorker()
    step = Uncancellable(worker)
    try:
        assert worker.shutdown(timeout_ms=200) is False
        assert worker.shutdown(timeout_ms=200) is False
        assert not worker.stopped
    finally:
        step.finish()
    assert worker.stopped and worker.shutdown() is True
    assert gc.isenabled()


def _collections(collector: GuiThreadCollector, ticks: int, kept_per_tick: int) -> list[int]:
    """The generations ``ticks`` timer ticks collect, keeping objects as work goes on."""
    gens: list[int] = []
    kept: list[Any] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gens.append(info["generation"])

    gc.callbacks.append(record)
    try:
        for _ in range(ticks):
            kept.extend([i] for i in range(kept_per_tick))
            collector.collect_due()
    finally:
        gc.callbacks.remove(record)
    return gens


def test_the_collector_collects_everything_only_when_python_would(qapp: Any) -> None:
    """A full collection (150 ms for 2 million objects) ran every ~66 s of an idle window
    whatever the heap; Python waits until what survived into the oldest generation since
    its last full collection is a quarter of it. A heap that grows by that much still gets
    one."""
    heap = [[i] for i in range(300_000)]
    gc.collect()
    collector = GuiThreadCollector()
    assert 2 not in _collections(collector, 200, kept_per_tick=0)  # 100 s of an idle window
    grow = len(gc.get_objects()) * 3 // 10 // 200 + 1  # by 30% (earlier tests' objects too)
    assert 2 in _collections(collector, 200, kept_per_tick=grow)
    assert len(heap) == 300_000
