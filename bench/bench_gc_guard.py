"""The GUI-thread garbage collector's pauses against Python's automatic collection.

While the window's worker runs, ``desktop_app.gc_guard`` turns automatic collection off and
collects on a 500 ms GUI-thread timer. This measures, on a heap of ``--objects`` long-lived
objects, what each schedule costs over ``--ticks`` ticks of work: an idle window, and a
matching run (short-lived objects each tick plus a few survivors, as suggestions pile up),
and a heap that grows by a third.
Baseline: automatic collection doing the same allocations, in the same run.

    .venv/bin/python bench/bench_gc_guard.py [--objects 2000000] [--ticks 300]
"""

from __future__ import annotations

import argparse
import gc
import os
import time
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QCoreApplication

from desktop_app.gc_guard import GuiThreadCollector

# (short-lived, kept) objects per tick: an idle window, matching, and a heap growing by a
# third (a big import), where full collections are due under either schedule.
PATTERNS = {"idle": (50, 0), "matching": (5000, 40), "growing": (5000, 2500)}


class Pauses:
    """Collections seen through gc.callbacks: their count per generation and their time."""

    def __init__(self) -> None:
        self.by_gen = [0, 0, 0]
        self.seconds: list[float] = []
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
            self.by_gen[info["generation"]] += 1
        else:
            self.seconds.append(time.perf_counter() - self._start)


def run(pattern: str, ticks: int, guarded: bool) -> Pauses:
    short, kept = PATTERNS[pattern]
    keep: list[Any] = []
    collector = GuiThreadCollector() if guarded else None
    if collector is not None:
        collector.start()
    pauses = Pauses()
    gc.callbacks.append(pauses)
    try:
        for _ in range(ticks):
            junk = [[j] for j in range(short)]
            del junk
            keep.extend([j] for j in range(kept))
            if collector is not None:
                collector.collect_due()
    finally:
        gc.callbacks.remove(pauses)
        if collector is not None:
            collector.stop()
    return pauses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=2_000_000)
    parser.add_argument("--ticks", type=int, default=300)
    args = parser.parse_args()
    _app = QCoreApplication([])
    heap = [[i] for i in range(args.objects)]
    gc.collect()
    print(f"heap: {len(heap):,} long-lived objects; {args.ticks} ticks of 500 ms each")
    for pattern in PATTERNS:
        auto = run(pattern, args.ticks, guarded=False)
        gui = run(pattern, args.ticks, guarded=True)
        for name, p in (("automatic (baseline)", auto), ("GUI-thread timer", gui)):
            print(
                f"{pattern:9} {name:21} collections gen0/1/2 = {p.by_gen[0]}/{p.by_gen[1]}/"
                f"{p.by_gen[2]}; longest pause {1000 * max(p.seconds, default=0):.1f} ms; "
                f"total {1000 * sum(p.seconds):.0f} ms"
            )
        if sum(auto.seconds) > 1e-3:
            ratio = sum(gui.seconds) / sum(auto.seconds)
            print(f"{pattern:9} time collecting, GUI timer / automatic: {ratio:.2f}")


if __name__ == "__main__":
    main()
