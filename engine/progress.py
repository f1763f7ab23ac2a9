"""Progress reporting and cancellation shared by every long engine operation.

The engine never knows who listens: the CLI draws a progress bar, the desktop app forwards the
same callbacks to Qt signals from its worker thread. Cancellation is cooperative and checked
between batches, so a cancelled operation always stops at a committed, consistent point.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


class Cancelled(Exception):
    """Raised inside an operation when its CancelToken was set; work done so far is kept."""


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Cancelled()


@dataclass(frozen=True)
class Progress:
    stage: str  # short verb phrase: "Encoding catalog images"
    done: int
    total: int
    elapsed_s: float
    message: str = ""

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the rate so far; None until there is a rate to go by."""
        if not self.done or not self.total or self.done >= self.total:
            return None
        return self.elapsed_s / self.done * (self.total - self.done)


ProgressCallback = Callable[[Progress], None]


class ProgressReporter:
    """Small helper that stamps elapsed time and checks cancellation at each step."""

    def __init__(
        self, stage: str, total: int, callback: ProgressCallback | None, cancel: CancelToken | None
    ) -> None:
        self.stage = stage
        self.total = total
        self.callback = callback
        self.cancel = cancel
        self.start = time.perf_counter()
        self.done = 0

    def step(self, n: int = 1, message: str = "") -> None:
        self.done += n
        if self.callback is not None:
            self.callback(
                Progress(
                    self.stage, self.done, self.total, time.perf_counter() - self.start, message
                )
            )
        if self.cancel is not None:
            self.cancel.check()

    def check(self) -> None:
        if self.cancel is not None:
            self.cancel.check()
