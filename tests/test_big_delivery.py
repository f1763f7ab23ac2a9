"""A big delivery day (review 50): 2,000-3,000 photos dropped at once, the CLI on the same
folder, Ctrl+C and Stop. Small generated data; behaviour, never timings. On 2,574 photos the
review measured a Stop freezing the window for a second, 60 copies announced one message at
a time (each replacing the last), and an interrupted 'shopmatch match' printing nothing."""

from __future__ import annotations

import re
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from conftest import small_library, write_photos

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from test_desktop import (  # the window tests' own fixtures and helpers
    WAIT_MS,
    boxes,  # noqa: F401
    engine_calls,  # noqa: F401
    library_with_catalog,
    make_window,  # noqa: F401
)

from desktop_app.main_window import MainWindow
from desktop_app.worker import Priority
from engine import cli as engine_cli
from engine import matching
from engine.library import Library


# -- the CLI ----------------------------------------------------------------------------------
def test_a_match_stopped_with_ctrl_c_prints_the_photos_it_matched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ctrl+C after 2 of 4 photos: the 2 are kept in the library, and their ids and
    suggestions are printed, as 'confirm ID' needs them (an interrupted run of 2,500 photos
    printed nothing)."""
    lib = small_library(tmp_path, 4)
    photos = write_photos(tmp_path / "delivery", [0, 1, 2, 3])
    real = matching.match_paths

    def interrupted(*args: Any, **kw: Any) -> Any:
        for n, m in enumerate(real(*args, **kw)):
            if n == 2:
                raise KeyboardInterrupt  # the user's Ctrl+C, mid-run
            yield m

    monkeypatch.setattr(matching, "match_paths", interrupted)
    code = engine_cli.main(["--quiet", "--library", str(lib), "match", str(tmp_path / "delivery")])
    out = capsys.readouterr().out
    assert code == 130
    with Library(lib) as opened:
        kept = [opened.photo_id(p) for p in photos[:2]]  # saved: the next run resumes
    for photo_id, path in zip(kept, photos[:2], strict=True):
        assert f"[{photo_id}] {path}" in out


# -- the window -------------------------------------------------------------------------------
def test_the_matching_count_groups_thousands_as_its_total_does(make_window: Any) -> None:  # noqa: F811
    """'Matching 1,200 of 2,574 photos': the count done is grouped as the total is."""
    window: MainWindow = make_window()
    window._on_matching_progress(0, 2574)
    window._on_matching_progress(1200, 2574)
    assert window.match_label.text().startswith("Matching 1,200 of 2,574 photos")


def test_copies_in_a_dropped_folder_are_counted_in_one_message(
    qtbot: Any,
    make_window: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A delivery folder holding 2 photos twice (copied under another name) lists each once,
    and says how many were left out in one message: one per copy, each replacing the last
    in the status bar, showed one name of 60."""
    w: MainWindow = make_window()
    library_with_catalog(qtbot, w, tmp_path, 4)
    folder = tmp_path / "delivery"
    photos = write_photos(folder, [0, 1, 2, 3])
    for p in photos[:2]:
        shutil.copy2(p, p.with_name(p.stem + " (1).jpg"))
    said: list[str] = []
    w.session.message.connect(said.append)
    w.add_paths([folder])
    qtbot.waitUntil(
        lambda: (
            not w.session.matching
            and w.model.rowCount() == 4
            and all(i.status != "pending" for i in w.model.items)
        ),
        timeout=WAIT_MS,
    )
    assert any(
        re.search(r"\b2 photos\b.*same picture", m) or re.search(r"same picture.*\b2 photos\b", m)
        for m in said
    ), said


def test_stop_with_many_chunks_queued_redraws_the_photo_once(
    qtbot: Any,
    make_window: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Stop with 2,160 photos left (270 chunks) froze the window for a second when every
    cancelled chunk redrew the photo on show and its cards. Here 5 chunks are queued behind
    a held task: Stop redraws once, not once per chunk."""
    w: MainWindow = make_window()
    library_with_catalog(qtbot, w, tmp_path, 4)
    folder = tmp_path / "delivery"
    write_photos(folder, list(range(40)))
    started, gate = threading.Event(), threading.Event()

    def hold(ctx: Any) -> None:
        started.set()
        gate.wait(30)

    w.worker.submit(hold, what="hold the engine")
    assert started.wait(10)
    w.add_paths([folder])  # expanded once the held task ends: let it go, then hold again
    gate.set()
    qtbot.waitUntil(lambda: w.model.rowCount() == 40, timeout=WAIT_MS)
    started.clear()
    gate.clear()
    w.worker.submit(hold, what="hold the engine", priority=Priority.INTERACTIVE)
    qtbot.waitUntil(started.is_set, timeout=WAIT_MS)
    redraws: list[int] = []
    real = w.review.show_item
    w.review.show_item = lambda *a: (redraws.append(1), real(*a))[1]  # type: ignore[method-assign]
    w.match_stop.click()
    gate.set()
    qtbot.waitUntil(lambda: not w.session.matching, timeout=WAIT_MS)
    assert len(redraws) <= 2, f"{len(redraws)} redraws for one Stop"
