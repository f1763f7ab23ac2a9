"""Review page: the cost of showing a photo's suggestions, which every Enter and arrow key pays.

    .venv/bin/python bench/bench_review_keys.py               # 200 photos shown, 5 rounds
    .venv/bin/python bench/bench_review_keys.py --calls 500 --json

Review 28 measured 44-162 ms a key on an idle window with a 3,000-product catalog (250-370 ms
during matching) and profiled it to ``SuggestionCard.show_suggestion``: per card and key a
``setStyleSheet`` (~5.5 ms: it re-polishes the card and every label in it, even for the same
text) and a ``QProgressBar.setValue`` (~5.9 ms: it repaints at once). The cards now paint their
own frame and score bar, and repaint only what changed.

The baseline is measured in the same run on the same page: each card is given back what it
did before (a style sheet set on every call, a QProgressBar in place of the score bar). Per
mode it reports the time of ``ReviewPage.show_item`` alone (what blocks the key) and of the
paint that follows (``processEvents``), median of the rounds, in ms per photo shown. Photos
alternate between a confident and a plain top card, so the frame of card 1 changes on every
call (the worst case for the new code). Offscreen (``QT_QPA_PLATFORM=offscreen``), no engine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a plain script, not an installed package
    sys.path.insert(0, str(REPO_ROOT))

from PySide6.QtGui import QColor, QImage  # noqa: E402
from PySide6.QtWidgets import QApplication, QProgressBar  # noqa: E402

from desktop_app.queue_view import QueueItem, QueueModel  # noqa: E402
from desktop_app.review import ReviewPage, SuggestionCard  # noqa: E402
from engine.matching import Suggestion  # noqa: E402

BASELINE = "before (restyle + QProgressBar every call)"
NOW = "now (cached frame, painted bar)"
PHOTOS = 20
CARDS = 5


def make_items(model: QueueModel, folder: Path) -> list[QueueItem]:
    """Photos with five suggestions each and real thumbnail files; odd ones confident."""
    thumbs = []
    for i in range(10):
        img = QImage(128, 128, QImage.Format.Format_RGB32)
        img.fill(QColor.fromHsv(36 * i, 120, 200))
        path = folder / f"thumb{i}.png"
        img.save(str(path))
        thumbs.append(path)
    items = model.add_paths([folder / f"photo{n}.jpg" for n in range(PHOTOS)])
    for n, item in enumerate(items):
        item.photo_id = n + 1
        item.status = "suggested"
        top = 0.95 if n % 2 else 0.6
        item.suggestions = [
            Suggestion(
                r + 1,
                f"SKU-{n:03d}-{r}",
                top - 0.05 * r,
                top - 0.08 * r,
                (n + r) % 10,
                name=f"Organic product {n}.{r} with a long supplier name 500 ml",
                category="Groceries",
                supplier="Supplier",
                price=2.5 + r,
                inliers=14 * (r % 2),
            )
            for r in range(CARDS)
        ]
        item.suggestion_thumbs = {s.image_id: thumbs[s.image_id] for s in item.suggestions}
    return items


def legacy(card: SuggestionCard) -> None:
    """Give ``card`` the costs it had before review 28: a QProgressBar set on every call and
    its frame's style sheet set on every call."""
    bar = QProgressBar(card)
    bar.setRange(0, 100)
    bar.setTextVisible(False)
    bar.setFixedSize(72, 6)
    card.layout().replaceWidget(card.bar, bar)
    card.bar.hide()
    show = card.show_suggestion

    def show_suggestion(s: Suggestion, thumb: Path | None, confident: bool, chosen: bool) -> None:
        show(s, thumb, confident, chosen)
        bar.setValue(round(s.score * 100))
        border = "#1b5e20" if chosen else ("#26a69a" if confident else "#cfd8dc")
        width = 3 if chosen else (2 if confident else 1)
        bg = "#e8f5e9" if chosen else "palette(base)"
        card.setStyleSheet(
            f"QFrame#card {{ border: {width}px solid {border}; border-radius: 6px;"
            f" background: {bg}; }}"
        )

    card.show_suggestion = show_suggestion  # type: ignore[method-assign]


def measure(app: QApplication, mode: str, calls: int, rounds: int, folder: Path) -> dict[str, Any]:
    model = QueueModel()
    items = make_items(model, folder)
    page = ReviewPage(model)
    if mode == BASELINE:
        for card in page.cards:
            legacy(card)
    page.resize(1280, 760)
    page.show()
    app.processEvents()

    def one_round(n: int) -> tuple[float, float]:
        shown = painted = 0.0
        for k in range(n):
            t0 = time.perf_counter()
            page.show_item(items[k % PHOTOS], k % PHOTOS, PHOTOS)
            t1 = time.perf_counter()
            app.processEvents()
            shown += t1 - t0
            painted += time.perf_counter() - t1
        return shown * 1000 / n, painted * 1000 / n

    one_round(20)  # warm up: fonts, pixmap cache
    runs = [one_round(calls) for _ in range(rounds)]
    page.close()
    page.deleteLater()
    app.processEvents()
    return {
        "mode": mode,
        "show_item_ms": round(statistics.median(r[0] for r in runs), 2),
        "paint_ms": round(statistics.median(r[1] for r in runs), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--calls", type=int, default=200, help="photos shown per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    app = QApplication.instance() or QApplication([])
    assert isinstance(app, QApplication)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [
            measure(app, mode, args.calls, args.rounds, Path(tmp))
            for mode in (BASELINE, NOW, BASELINE, NOW)  # twice, interleaved: load drifts
        ]
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    if args.json:
        print(json.dumps({"rows": rows, "load": load}, indent=2))
        return 0
    print(f"{args.calls} photos shown x {args.rounds} rounds, {CARDS} cards each; load {load}")
    print(f"{'mode':48} {'show_item ms':>12} {'paint ms':>9}")
    for r in rows:
        print(f"{r['mode']:48} {r['show_item_ms']:>12.2f} {r['paint_ms']:>9.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
