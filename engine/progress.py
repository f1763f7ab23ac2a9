"""Progress reporting and cancellation shared by every long engine operation.

The engine never knows who listens: the CLI draws a progress bar, the desktop app forwards the
same callbacks to Qt signals from its worker thread. Cancellation is cooperative and checked
between batches, so a cancelled operation always stops at a committed, consistent point.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace


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
    # Of the whole operation when it has several stages (RunClock): share done, seconds left.
    run_fraction: float | None = None
    run_left_s: float | None = None

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


def format_eta(seconds: float | None) -> str:
    """'about 40 s left' / 'about 3 min left' (rounded up: an estimate that runs out before
    the work does reads worse than one that ends early)."""
    if seconds is None:
        return "estimating time left…"
    if seconds < 60:
        return f"about {max(1, math.ceil(seconds))} s left"
    return f"about {math.ceil(seconds / 60)} min left"


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


class RunClock:
    """Whole-run share done and time left for an operation made of known stages.

    Why: a stage's own rate says nothing of the stages after it. Fine-tuning spends its first
    minutes preparing images, where that stage's bar would read "2 min left" with 15 to go.
    ``plan`` gives each stage's work in seconds on a reference machine; this machine's pace
    (its seconds per reference second) starts at ``pace`` and is measured as the run goes,
    the measurement outweighing the prior once some PRIOR_WEIGHT_S of work is done. Reports
    of a stage not in the plan, or of an earlier stage again (activation re-embeds a few
    images), pass through and move nothing; reaching a stage counts the ones before it as
    done, skipped ones included. ``replan`` corrects a later stage's work once it is known
    (an import learns how many images are new only after checking them all).
    """

    PRIOR_WEIGHT_S = 30.0

    def __init__(
        self,
        plan: Sequence[tuple[str, float]],
        callback: ProgressCallback | None,
        *,
        pace: float = 1.0,
        prior_weight_s: float = PRIOR_WEIGHT_S,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.stages = [name for name, _ in plan]
        self.weights = [max(0.0, seconds) for _, seconds in plan]
        self.total = sum(self.weights)
        self.callback = callback
        self.prior = pace
        self.prior_weight_s = prior_weight_s
        self.clock = clock
        self.start = clock()
        self.current = -1  # the latest planned stage reported
        self.work = 0.0  # reference seconds done
        self.last: Progress | None = None

    def __call__(self, p: Progress) -> None:
        self.last = p
        i = self.stages.index(p.stage) if p.stage in self.stages else -1
        if i >= max(0, self.current):
            self.current = i
            before = sum(self.weights[:i])
            self.work = max(self.work, before + self.weights[i] * min(1.0, p.fraction))
        if self.callback is not None:
            self.callback(replace(p, run_fraction=self.fraction, run_left_s=self.left_s()))

    @property
    def fraction(self) -> float:
        return min(1.0, self.work / self.total) if self.total else 0.0

    def replan(self, work: Mapping[str, float]) -> None:
        """Set later stages' planned work (stage name: reference seconds) and send the latest
        report again with the corrected share; a stage under way or done keeps its own."""
        for stage, seconds in work.items():
            i = self.stages.index(stage)
            if i > self.current:
                self.weights[i] = max(0.0, seconds)
        self.total = sum(self.weights)
        if self.last is not None:
            self(self.last)

    def pace(self) -> float:
        """Seconds here per reference second so far, shrunk towards the prior."""
        k = self.prior_weight_s
        return (self.clock() - self.start + self.prior * k) / (self.work + k)

    def left_s(self) -> float:
        return max(0.0, self.total - self.work) * self.pace()
