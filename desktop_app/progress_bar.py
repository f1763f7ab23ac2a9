"""Put an engine Progress on a progress bar: the whole run's share when it has one."""

from __future__ import annotations

from PySide6.QtWidgets import QProgressBar

from engine.progress import Progress, format_eta

RUN_STEPS = 1000  # the bar's range for a whole-run share: smooth, and percent text still works


def show_progress(bar: QProgressBar, p: Progress) -> str:
    """Set ``bar`` from ``p`` and return the time-left text to show beside it.

    Why: an operation planned with a RunClock (fine-tuning, an import) reports the whole
    run's share and time left; showing those keeps the bar from restarting at every stage
    and the time left from counting only the stage at hand.
    """
    if p.run_fraction is not None:
        bar.setRange(0, RUN_STEPS)
        bar.setValue(round(p.run_fraction * RUN_STEPS))
        return format_eta(p.run_left_s)
    if p.total:
        bar.setRange(0, p.total)
        bar.setValue(p.done)
    return format_eta(p.eta_s)
