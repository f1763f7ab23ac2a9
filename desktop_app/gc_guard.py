"""Python's cyclic garbage collector, run on the GUI thread only.

Left automatic, the collector runs on whichever thread happens to allocate when a threshold
is crossed: the engine thread in the middle of matching, say. A cycle it frees there may hold
the last reference to a Qt object's wrapper (a dialog a callback captured), and freeing that
off the GUI thread, while the GUI thread deletes the object, crashes the process. So while the
app has background threads, automatic collection is off and a timer on the GUI thread does it,
by the same thresholds (the pattern Camelot and OpenCue use for PySide apps).
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer

_holders = 0  # holds taken and not given back: automatic collection is off while > 0


class _Hold:
    """One collector's share of "automatic collection off"; given back once, by stop() or
    when the collector is deleted without it (its owner gone with the app quitting)."""

    def __init__(self) -> None:
        self.taken = False

    def take(self) -> None:
        global _holders
        if not self.taken:
            self.taken = True
            _holders += 1
            gc.disable()

    def give_back(self) -> None:
        global _holders
        if self.taken:
            self.taken = False
            _holders -= 1
            if _holders == 0:
                gc.enable()


class GuiThreadCollector(QObject):
    """Collects on the GUI thread every ``interval_ms`` when the thresholds say so."""

    def __init__(self, parent: QObject | None = None, interval_ms: int = 500) -> None:
        super().__init__(parent)
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.collect_due)
        self._hold = _Hold()
        # Python's rule for the oldest generation (see collect_due): its size after its last
        # collection, and how many objects have survived into it since.
        self._long_lived_total: int | None = None
        self._long_lived_pending = 0
        # A plain object's method, so it still runs once this QObject is being destroyed.
        self.destroyed.connect(self._hold.give_back)

    def start(self) -> None:
        self._hold.take()
        self._timer.start()

    def stop(self) -> None:
        """Collect once more and give automatic collection back when no collector is left."""
        if not self._hold.taken:
            return
        self._timer.stop()
        self._hold.give_back()
        gc.collect()

    def collect_due(self) -> None:
        """Python's own schedule (3.11), on this thread: the oldest generation whose count
        is past its threshold, the oldest only once what survived into it since its last
        collection is a quarter of what that collection kept (a full collection of a big
        heap takes a tenth of a second: 150 ms for 2 million objects here). When nothing is
        due, the youngest, which holds fewer objects than its threshold (microseconds), so
        a cycle left by a burst of work does not wait for the next burst."""
        counts = gc.get_count()
        thresholds = gc.get_threshold()
        due = [g for g in range(3) if thresholds[g] and counts[g] > thresholds[g]]
        generation = due[-1] if due else 0
        if generation == 2:
            if self._long_lived_total is None:
                self._long_lived_total = len(gc.get_objects(2))
            if self._long_lived_pending < self._long_lived_total / 4:
                generation = 1 if counts[1] > thresholds[1] else 0
        if generation == 2:
            gc.collect(2)
            self._long_lived_total = len(gc.get_objects(2))
            self._long_lived_pending = 0
        elif generation == 1:
            young = len(gc.get_objects(0)) + len(gc.get_objects(1))
            found = gc.collect(1)
            self._long_lived_pending += max(0, young - found)  # promoted to the oldest
        else:
            gc.collect(0)
