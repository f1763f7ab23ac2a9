"""The one background thread that owns the Library.

A Library is not thread-safe, so (as Anki does with its collection) it is opened, used and
closed on a single worker thread; the GUI thread only submits tasks and receives results
through queued signals. Tasks wait in a priority queue: a keypress (confirm, undo, search)
overtakes queued background work (matching chunks), so it waits for at most one chunk.

Work that runs for minutes without the library (training a candidate model) is *detached*:
it runs on the worker's own QThreadPool, so matching keeps going on the engine thread, and it
reports through the same signals and cancel tokens as any task.
"""

from __future__ import annotations

import itertools
import queue
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QRunnable, QThread, QThreadPool, QTimer, Signal, Slot

from desktop_app.gc_guard import GuiThreadCollector
from engine.progress import Cancelled, CancelToken, Progress

if TYPE_CHECKING:
    from engine.library import Library


class Priority(IntEnum):
    """Lower runs first; equal priorities run in submission order."""

    # Decisions and undo (the user is waiting on a keypress), and opening or closing a
    # library: one level, in order, so a decision made just before another library opens
    # (or the window closes) is written to its own library first, never dropped.
    INTERACTIVE = 1
    QUERY = 2  # searches, panels, previews
    BACKGROUND = 3  # import, matching chunks


@dataclass(frozen=True)
class TaskError:
    """A failure carried back to the GUI: the exception and its formatted traceback."""

    exc: BaseException
    details: str


class NoLibraryError(RuntimeError):
    """A task needed a library but none is open."""

    def __init__(self) -> None:
        super().__init__("no library is open; open or create one first")


class TaskContext:
    """What a task function sees on the worker thread."""

    def __init__(self, worker: EngineWorker, task: _Task) -> None:
        self._worker = worker
        self._task = task

    @property
    def lib(self) -> Library:
        if self._task.detached:
            raise RuntimeError("a detached task must not touch the library (not thread-safe)")
        lib = self._worker._lib
        if lib is None:
            raise NoLibraryError()
        return lib

    @property
    def token(self) -> CancelToken:
        return self._task.token

    def progress(self, p: Progress) -> None:
        """Engine progress callback: forwarded to the GUI as a queued signal."""
        self._worker._relay.emit(self._task.id, "progress", p)

    def partial(self, item: object) -> None:
        """Stream one intermediate result (e.g. a matched photo) to the GUI."""
        self._worker._relay.emit(self._task.id, "partial", item)


TaskFn = Callable[[TaskContext], Any]
Callback = Callable[[Any], None]


@dataclass
class _Task:
    id: int
    fn: TaskFn
    generation: int
    token: CancelToken
    what: str
    on_result: Callback | None = None
    on_error: Callable[[TaskError], None] | None = None
    on_progress: Callable[[Progress], None] | None = None
    on_partial: Callback | None = None
    on_cancelled: Callable[[], None] | None = None
    on_done: Callable[[], None] | None = None
    lifecycle: bool = False  # opens/closes the library, so never stale itself
    detached: bool = False  # runs on the pool, without the library
    # Its result names what it did by itself (a file written), so it is said even after
    # another library was opened; other results belong to the library's own queue.
    any_library: bool = False
    priority: int = Priority.QUERY


class TaskHandle:
    """Returned by submit(): lets the GUI cancel the task (cooperatively, between batches)."""

    def __init__(self, task: _Task) -> None:
        self._task = task

    @property
    def id(self) -> int:
        return self._task.id

    @property
    def token(self) -> CancelToken:
        return self._task.token

    def cancel(self) -> None:
        self._task.token.cancel()


class _DetachedRunnable(QRunnable):
    def __init__(self, worker: EngineWorker, task: _Task) -> None:
        super().__init__()
        self._worker = worker
        self._task: _Task | None = task

    def run(self) -> None:
        slot = [self._task]  # the runnable lets go of it: the GUI thread frees it (_execute)
        self._task = None
        self._worker._execute(slot)  # type: ignore[arg-type]


class _WorkerThread(QThread):
    def __init__(self, worker: EngineWorker) -> None:
        super().__init__()
        self.setObjectName("shopmatch-engine")
        self._worker = worker

    def run(self) -> None:
        self._worker._loop()


class EngineWorker(QObject):
    """Submit engine work from the GUI thread; callbacks run back on the GUI thread."""

    library_changed = Signal(object)  # Path of the open library, or None
    error = Signal(str, object)  # what failed, TaskError: for tasks without their own on_error
    idle_changed = Signal(bool)

    # Emitted on the worker thread; the receiver lives on the GUI thread, so it is queued.
    _relay = Signal(int, str, object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._queue: queue.PriorityQueue[tuple[int, int, _Task | None]] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._ids = itertools.count(1)
        self._tasks: dict[int, _Task] = {}
        # Finished tasks the engine thread has let go of: the GUI thread drops them (_deliver).
        self._retired: dict[int, tuple[_Task, object]] = {}
        self._retired_lock = threading.Lock()
        self._collector = GuiThreadCollector(self)
        self._collector.start()
        self._winding_up = QTimer(self)  # polls for the end of a shutdown that timed out
        self._winding_up.setInterval(200)
        self._winding_up.timeout.connect(self._wind_up)
        self._generation = 0  # bumped (GUI side) each time another library is opened
        self._lib: Library | None = None  # touched only on the worker thread
        self._lib_generation = 0  # worker side
        self._gui_thread = threading.get_ident()
        self.engine_thread_ident: int | None = None
        self.library_path: Path | None = None
        self._relay.connect(self._deliver)
        self._thread = _WorkerThread(self)
        self._thread.start()
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)  # one long job at a time; it needs the cores it gets
        self._stopped = False

    # -- submitting --------------------------------------------------------------------------
    def submit(
        self,
        fn: TaskFn,
        *,
        what: str,
        priority: Priority = Priority.QUERY,
        on_result: Callback | None = None,
        on_error: Callable[[TaskError], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        on_partial: Callback | None = None,
        on_cancelled: Callable[[], None] | None = None,
        on_done: Callable[[], None] | None = None,
        token: CancelToken | None = None,
        any_library: bool = False,
        _lifecycle: bool = False,
        _detached: bool = False,
    ) -> TaskHandle:
        """Queue ``fn(ctx)`` on the engine thread. ``what`` names it in error dialogs
        ("import the catalog"), so every failure reaches the user in plain words.
        ``any_library``: its result is still delivered after another library was opened
        (it says what it did, e.g. the file an export wrote)."""
        task = _Task(
            id=next(self._ids),
            fn=fn,
            generation=self._generation,
            token=token or CancelToken(),
            what=what,
            on_result=on_result,
            on_error=on_error,
            on_progress=on_progress,
            on_partial=on_partial,
            on_cancelled=on_cancelled,
            on_done=on_done,
            lifecycle=_lifecycle,
            detached=_detached,
            any_library=any_library,
            priority=int(priority),
        )
        if self._stopped:  # e.g. a timer firing while the window closes: nothing to do
            task.token.cancel()
            return TaskHandle(task)
        was_idle = not self._tasks
        self._tasks[task.id] = task
        if _detached:
            self._pool.start(_DetachedRunnable(self, task))
        else:
            self._queue.put((int(priority), next(self._seq), task))
        if was_idle:
            self.idle_changed.emit(False)
        return TaskHandle(task)

    def run_detached(
        self,
        fn: TaskFn,
        *,
        what: str,
        on_result: Callback | None = None,
        on_error: Callable[[TaskError], None] | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
        on_done: Callable[[], None] | None = None,
        token: CancelToken | None = None,
        any_library: bool = False,
    ) -> TaskHandle:
        """Run ``fn(ctx)`` on the pool, beside the engine thread; ``ctx.lib`` is off limits.

        For long work on data already read out of the library (training), so that matching
        and keypresses are never queued behind it. ``any_library`` as for :meth:`submit`.
        """
        return self.submit(
            fn,
            what=what,
            on_result=on_result,
            on_error=on_error,
            on_progress=on_progress,
            on_cancelled=on_cancelled,
            on_done=on_done,
            token=token,
            any_library=any_library,
            _detached=True,
        )

    def open_library(
        self,
        path: Path,
        *,
        on_result: Callback | None = None,
        on_error: Callable[[TaskError], None] | None = None,
        restore_damaged: bool = False,
    ) -> TaskHandle:
        """Close the current library (cancelling its background work; decisions already
        made are written first) and open ``path`` (``restore_damaged``: put back the newest
        backup of a database too damaged to open)."""
        self._cancel_background()
        self._generation += 1
        path = Path(path)

        def run(ctx: TaskContext) -> Path:
            from engine.library import Library

            self._close_current()
            # The new generation starts even if opening fails: later tasks then report
            # "no library" instead of being dropped as stale.
            self._lib_generation = ctx._task.generation
            self._lib = Library(path, restore_damaged=restore_damaged)
            return path

        def opened(result: Path) -> None:
            self.library_path = result
            self.library_changed.emit(result)
            if on_result is not None:
                on_result(result)

        def failed(err: TaskError) -> None:
            # The previous library was closed before trying: none is open now.
            if self.library_path is not None:
                self.library_path = None
                self.library_changed.emit(None)
            if on_error is not None:
                on_error(err)
            else:
                self.error.emit("open the library", err)

        return self.submit(
            run,
            what="open the library",
            priority=Priority.INTERACTIVE,
            on_result=opened,
            on_error=failed,
            _lifecycle=True,
        )

    def close_library(self, on_done: Callable[[], None] | None = None) -> TaskHandle:
        self._cancel_background()
        self._generation += 1

        def run(ctx: TaskContext) -> None:
            self._close_current()
            self._lib_generation = ctx._task.generation

        def closed(_: object) -> None:
            self.library_path = None
            self.library_changed.emit(None)
            if on_done is not None:
                on_done()

        return self.submit(
            run,
            what="close the library",
            priority=Priority.INTERACTIVE,
            on_result=closed,
            _lifecycle=True,
        )

    def _cancel_background(self) -> None:
        """Cancel all but what the user already did: a decision or undo queued behind a
        chunk of matching was shown as done on screen, so it must still be written."""
        for task in list(self._tasks.values()):
            if task.detached or task.priority > Priority.INTERACTIVE:
                task.token.cancel()

    @property
    def generation(self) -> int:
        """Which library the window shows: bumped each time another one is opened (or the
        open one closed), so work begun for an earlier generation can tell that its library
        is gone, whether or not its own answer is still delivered (``any_library``)."""
        return self._generation

    @property
    def busy(self) -> bool:
        return bool(self._tasks)

    @property
    def stopped(self) -> bool:
        """shutdown() has run and both threads have ended: the engine thread and the pool's
        (a training step that cannot be cancelled outlasts shutdown's wait)."""
        return self._stopped and self._thread.isFinished() and self._pool.activeThreadCount() == 0

    def shutdown(self, timeout_ms: int = 15000) -> bool:
        """Cancel background work, finish what the user already did, close the library on
        its own thread and stop; True if it stopped. A decision (or undo) queued behind a
        chunk of matching was shown as done on screen: it is written before the library
        closes, not cancelled with the matching (closing the window right after Enter lost
        it)."""
        if self._stopped:  # again (a second close): done once the threads have ended
            self._wind_up()
            return self.stopped
        self._cancel_background()
        self._stopped = True
        # After the queued decisions (same priority, later in order), before everything else.
        self._queue.put((int(Priority.INTERACTIVE), next(self._seq), None))
        stopped = bool(self._thread.wait(timeout_ms)) and bool(self._pool.waitForDone(timeout_ms))
        self._tasks.clear()
        if stopped:
            self._wind_up()
        else:
            # A step that cannot be cancelled is still running: what it holds is handed
            # back here when it ends, and collection stays on this thread until then (its
            # timer again: closing the window stops every timer first).
            self._collector.start()
            self._winding_up.start()
        return stopped

    def _wind_up(self) -> None:
        """Once both threads have stopped: free what they left, here on the GUI thread."""
        if not self.stopped:
            return
        self._winding_up.stop()
        while True:  # the work the stop went ahead of (matching chunks), never run
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        with self._retired_lock:
            self._retired.clear()
        self._collector.stop()

    # -- worker thread -----------------------------------------------------------------------
    def _close_current(self) -> None:
        if self._lib is not None:
            lib, self._lib = self._lib, None
            lib.close()

    def _loop(self) -> None:
        self.engine_thread_ident = threading.get_ident()
        while True:
            slot = [self._queue.get()[2]]
            if slot[0] is None:
                self._close_current()
                return
            self._execute(slot)  # type: ignore[arg-type]

    def _execute(self, slot: list[_Task]) -> None:
        """Run the task in ``slot`` (taken out of it), then hand it to the GUI thread to free.

        Its callbacks hold Qt objects (a progress dialog the GUI deletes when the task is
        done); had this thread dropped the last reference, their wrappers would be freed
        here while the GUI thread deletes the objects, which crashed the app (CI, exit 139).
        So this thread lets go before saying "done", and the GUI thread frees it on "done".
        """
        task = slot.pop()
        sent: object = None
        try:
            sent = self._run(task)
        finally:  # "done" even if sending the outcome failed: the GUI must not wait forever
            task_id = task.id
            with self._retired_lock:
                self._retired[task_id] = (task, sent)
            del task, sent
            self._relay.emit(task_id, "done", None)

    def _run(self, task: _Task) -> object:
        """Run it and send the GUI its outcome; returns what was sent (the result, a
        TaskError whose traceback holds the task's frames, or None), for _execute to hand
        back with the task."""
        assert threading.get_ident() != self._gui_thread, "engine work on the GUI thread"
        try:
            stale = (
                not task.lifecycle and not task.detached and task.generation != self._lib_generation
            )
            if task.token.cancelled or stale:
                raise Cancelled()
            return self._send(task.id, "result", task.fn(TaskContext(self, task)))
        except Cancelled:
            return self._send(task.id, "cancelled", None)
        except BaseException as exc:  # every failure goes back to the GUI, never lost
            return self._send(task.id, "error", TaskError(exc, traceback.format_exc()))

    def _send(self, task_id: int, kind: str, payload: object) -> object:
        self._relay.emit(task_id, kind, payload)
        return payload

    # -- GUI thread --------------------------------------------------------------------------
    @Slot(int, str, object)
    def _deliver(self, task_id: int, kind: str, payload: object) -> None:
        if kind == "done":
            with self._retired_lock:
                self._retired.pop(task_id, None)
        task = self._tasks.get(task_id)
        if task is None:
            return
        if kind == "done":
            del self._tasks[task_id]
            if task.on_done is not None:
                task.on_done()
            if not self._tasks:
                self.idle_changed.emit(True)
            return
        if (
            kind in ("partial", "result")
            and not (task.lifecycle or task.any_library)
            and task.generation != self._generation
        ):
            # Done on the library it was for (a decision queued before another library was
            # opened is still written there), but the window shows another library now: its
            # results must not reach that library's queue (an old photo id, a dropped folder
            # matched into the new library).
            return
        if kind == "progress" and task.on_progress is not None:
            task.on_progress(payload)  # type: ignore[arg-type]
        elif kind == "partial" and task.on_partial is not None:
            task.on_partial(payload)
        elif kind == "result" and task.on_result is not None:
            task.on_result(payload)
        elif kind == "cancelled" and task.on_cancelled is not None:
            task.on_cancelled()
        elif kind == "error":
            assert isinstance(payload, TaskError)
            if task.on_error is not None:
                task.on_error(payload)
            else:
                self.error.emit(task.what, payload)
