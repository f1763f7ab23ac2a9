"""Work that outlives its library (a decision or a drop just before another library opens),
photos searched again after an import (moved files, Stop), and SKUs that print alike: found
by a second hostile look at the day's fixes. Real window (offscreen), real engine."""

from __future__ import annotations

import csv
import threading
from pathlib import Path
from typing import Any

import pytest

from conftest import write_catalog, write_photos

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

import test_desktop
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from test_desktop import (
    WAIT_MS,
    EngineCalls,
    _two_model_library,
    import_catalog,
    item,
    key,
    library_db,
    library_with_catalog,
    open_library,
    wait_matched,
)

from desktop_app.catalog_browser import WITHDRAWN
from desktop_app.main_window import MainWindow
from desktop_app.worker import Priority, TaskContext

# The real window and its guards, as tests/test_desktop.py sets them up.
boxes = test_desktop.boxes
engine_calls = test_desktop.engine_calls
make_window = test_desktop.make_window
window = test_desktop.window


def _hold_engine(w: MainWindow) -> threading.Event:
    """Keep the engine thread busy (as a long chunk of matching or an import would) until
    the returned event is set, so that what is queued meanwhile is seen in its order."""
    release = threading.Event()
    started = threading.Event()

    def hold(ctx: TaskContext) -> None:
        started.set()
        release.wait(20)

    w.worker.submit(hold, what="hold", priority=Priority.INTERACTIVE)
    assert started.wait(10)
    return release


def test_stopping_the_rematch_after_an_import_leaves_matching_shown_forever(
    qtbot: Any, window: MainWindow, tmp_path: Path, boxes: Any
) -> None:
    """An import that changes pictures searches the undecided photos again
    (refresh_suggestions adds them to the matching total). Stop Matching before that chunk
    ran: _chunk_cancelled only counts photos still 'pending', and these are 'suggested', so
    the total never comes down: the progress bar and Stop button stay, 'All photos reviewed'
    never comes, and a model switch / close think matching still runs."""
    w = window
    library_with_catalog(qtbot, w, tmp_path, 6)
    w.add_paths(write_photos(tmp_path / "photos", [1, 2, 3]))
    wait_matched(qtbot, w, 3)
    qtbot.waitUntil(lambda: not w.worker.busy and not w.session.matching, timeout=WAIT_MS)
    release = _hold_engine(w)
    assert w.session.refresh_suggestions() == 3  # what import done() calls
    w.act_stop.trigger()  # the user stops matching
    release.set()
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    qtbot.wait(300)
    assert not w.session.matching, (w.session._done, w.session._total)


def _library_with_supplier(qtbot: Any, w: MainWindow, tmp_path: Path, name: str) -> Path:
    """Open (create) library tmp_path/NAME and import the shared 6-product supplier catalog
    into it (written once per test)."""
    sheet = tmp_path / "supplier" / "sheet.csv"
    if not sheet.exists():
        write_catalog(tmp_path / "supplier", 6)
    lib = tmp_path / name
    open_library(qtbot, w, lib)
    import_catalog(qtbot, w, tmp_path / "supplier", sheet)
    return lib


def _switch_at_once(qtbot: Any, w: MainWindow, lib: Path, release: threading.Event) -> None:
    """Open ``lib`` right away, then let the held engine go on, and wait until it is open."""
    w.open_library(lib)
    release.set()
    qtbot.waitUntil(
        lambda: w.library_status is not None and w.library_status.path == lib,
        timeout=WAIT_MS,
    )
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    qtbot.wait(300)


def test_an_undo_queued_just_before_opening_another_library_lists_the_old_photo_there(
    qtbot: Any, window: MainWindow, tmp_path: Path, boxes: Any, engine_calls: Any
) -> None:
    """Ctrl+Z while the engine is busy (a chunk of matching), then another library opened
    at once (File > recent). The undo is no longer cancelled by open_library (it runs on the
    old library first, as intended), but its done() runs after session.reset(): the photo is
    'not listed', so the old library's photo is put in the NEW library's queue with the OLD
    library's photo_id. Enter on it confirms whatever photo has that id in the new library
    (a photo of another product) as the old photo's product."""

    w = window
    lib_b = _library_with_supplier(qtbot, w, tmp_path, "libB")
    w.add_paths(write_photos(tmp_path / "photosB", [3, 4]))
    wait_matched(qtbot, w, 2)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    lib_a = _library_with_supplier(qtbot, w, tmp_path, "libA")
    w.add_paths(write_photos(tmp_path / "photosA", [1]))
    wait_matched(qtbot, w, 1)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    w.session.select_row(0)
    w.session.confirm_index(0)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    with library_db(lib_a) as db:
        assert db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 1
    release = _hold_engine(w)  # e.g. a chunk of matching still running
    w.session.undo()  # Ctrl+Z
    _switch_at_once(qtbot, w, lib_b, release)
    listed = [(i.path, i.photo_id) for i in w.model.items]
    stray = [i for i in w.model.items if "photosA" in str(i.path)]
    for it in stray:  # the user goes on deciding in library B
        w.session.select_row(w.model.row_of(it.key))
        w.session.confirm_index(0)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    with library_db(lib_b) as db:
        decided = db.execute(
            "SELECT d.photo_id, p.path, d.sku FROM decisions d JOIN photos p ON p.id = d.photo_id"
        ).fetchall()
    assert not decided, (decided, listed)


def test_photos_dropped_just_before_opening_another_library_go_into_that_library(
    qtbot: Any, window: MainWindow, tmp_path: Path, boxes: Any
) -> None:
    """Photos dropped on library A (the folder is read by an INTERACTIVE task), then another
    library opened at once. open_library no longer cancels that task: it runs before the
    open, and its done() (after session.reset()) queues and matches the photos in the NEW
    library B: B gains A's delivery, A never gets it (not remembered as unmatched either)."""
    w = window
    lib_b = _library_with_supplier(qtbot, w, tmp_path, "libB")
    _library_with_supplier(qtbot, w, tmp_path, "libA")
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    photos = write_photos(tmp_path / "deliveryA", [1, 2])
    release = _hold_engine(w)  # e.g. a chunk of matching still running
    w.add_paths([tmp_path / "deliveryA"])  # dropped on library A
    _switch_at_once(qtbot, w, lib_b, release)
    with library_db(lib_b) as db:
        in_b = [r[0] for r in db.execute("SELECT path FROM photos")]
    assert not in_b, (in_b, [str(p) for p in photos])


def test_a_moved_photo_is_not_called_a_copy_of_itself(tmp_path: Path) -> None:
    """A delivery folder renamed after matching, matched again: the photo now takes its new
    path (fix of review 19), but the CLI still says '(same picture as photo-of-001.jpg)',
    naming the very file it now is, as if it were a second copy."""
    from conftest import cli

    write_catalog(tmp_path / "cat", 4)
    write_photos(tmp_path / "deliv-1", [1])
    lib = tmp_path / "lib"
    sheet = str(tmp_path / "cat" / "sheet.csv")
    assert cli(lib, "import", str(tmp_path / "cat"), "--sheet", sheet).returncode == 0
    assert cli(lib, "match", str(tmp_path / "deliv-1")).returncode == 0
    (tmp_path / "deliv-1").rename(tmp_path / "deliv-2")
    out = cli(lib, "match", str(tmp_path / "deliv-2"))
    assert out.returncode == 0, out.stderr
    assert "same picture as" not in out.stdout, out.stdout


def test_a_sheet_above_the_new_folder_is_cleared_when_it_is_named_after_the_old_one() -> None:
    """catalog.csv beside catalog/ (its sheet), then the images folder changed to
    catalog/images (the pictures' sub-folder). sheet_for_folder's own rule says a sheet
    beside or above the new folder stays (one sheet for sub-folders), but the 'named after
    the old folder' rule runs first and sends it to catalog/images.csv, which does not
    exist: the dialog clears the sheet, and importing then reads no names nor prices."""
    from desktop_app.import_dialog import sheet_for_folder

    old, sheet = Path("/data/catalog"), Path("/data/catalog.csv")
    assert sheet_for_folder(old, Path("/data/catalog/images"), sheet) == sheet


def test_confirm_by_a_printed_sku_picks_the_other_product_that_differs_in_case(
    library: Any,
) -> None:
    """Two products: 'X\u200b1' (a zero-width space from the sheet, printed 'X1') and 'x1'.
    The user copies 'X1' as printed for the first. The case-forgiving lookup runs before
    the 'as printed' one and silently confirms 'x1', another product; two candidates should
    be refused as ambiguous (as two alike-printed SKUs are)."""
    from engine import decisions

    lib = library
    now = "2026-01-01T00:00:00+00:00"
    for sku in ("X\u200b1", "x1"):
        lib.db["products"].insert({"sku": sku, "name": sku, "created_at": now, "updated_at": now})
    with pytest.raises(decisions.DecisionError):
        got = decisions._catalog_sku(lib, "X1")
        raise AssertionError(f"picked {got!r} of two products printed or typed as 'X1'")


def test_photos_to_decide_whose_files_moved_become_unreadable_after_an_import(
    qtbot: Any, window: MainWindow, tmp_path: Path, boxes: Any
) -> None:
    """Photos matched (their vectors and suggestions are in the library), then the delivery
    folder is renamed (or the phone's card taken out), then the supplier's updated sheet
    is imported. refresh_suggestions 'reuses stored vectors', but match_paths hashes the
    file first: 'file not found', and _apply_match sets photo_id None and status 'error'.
    The photos can no longer be decided ('This photo could not be read'), though the
    library holds them and they were decidable a moment before."""
    import shutil

    w = window
    library_with_catalog(qtbot, w, tmp_path, 6)
    w.add_paths(write_photos(tmp_path / "delivery", [1, 2]))
    wait_matched(qtbot, w, 2)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    shutil.move(tmp_path / "delivery", tmp_path / "delivery-done")
    write_catalog(tmp_path / "supplier", 8)  # two new products
    import_catalog(qtbot, w, tmp_path / "supplier", tmp_path / "supplier" / "sheet.csv")
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    qtbot.wait(300)
    states = [(i.path.name, i.status, i.photo_id, i.error) for i in w.model.items]
    assert all(s[1] == "suggested" and s[2] is not None for s in states), states


def test_an_export_finished_after_opening_another_library_still_says_it_was_written(
    qtbot: Any, window: MainWindow, tmp_path: Path, boxes: Any
) -> None:
    """Ctrl+E's export queued behind a busy engine, then another library opened at once:
    the file was written, but its 'Exported N rows to …' was dropped with the old library's
    results (and 'Opened …' would have wiped it at once), so staff could not tell whether
    the export had happened."""
    w = window
    library_with_catalog(qtbot, w, tmp_path, 4)
    w.add_paths(write_photos(tmp_path / "photos", [1, 2]))
    wait_matched(qtbot, w, 2)
    w.session.select_row(0)
    w.session.confirm_index(0)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    target = tmp_path / "out" / "stock.csv"
    target.parent.mkdir()
    release = _hold_engine(w)
    w.export_inventory(target)
    _switch_at_once(qtbot, w, tmp_path / "other-lib", release)
    assert target.is_file()
    assert w.last_export == (target, 1)
    said = w.statusBar().full_message
    assert said.startswith(f"Opened {tmp_path / 'other-lib'}") and said.endswith(
        f"Exported 1 row to {target}"
    ), said


def test_the_previous_librarys_cancelled_matching_does_not_end_the_new_ones_progress(
    qtbot: Any, window: MainWindow, tmp_path: Path, boxes: Any
) -> None:
    """Another library opened while a big drop was still matching, and photos dropped on it
    at once: the old library's cancelled chunks reported back after the new matching had
    started and counted as its progress, so 'matching' ended (and Stop lost its hold on the
    new chunks) while the new photos were still waiting (review 24)."""
    w = window
    lib_b = _library_with_supplier(qtbot, w, tmp_path, "libB")
    _library_with_supplier(qtbot, w, tmp_path, "libA")
    w.add_paths(write_photos(tmp_path / "deliveryA", list(range(40))))
    qtbot.waitUntil(lambda: w.session.matching and w.model.rowCount() == 40, timeout=WAIT_MS)
    release = _hold_engine(w)  # A's later chunks wait in the queue
    w.open_library(lib_b)
    w.add_paths(write_photos(tmp_path / "deliveryB", [1, 2, 3]))
    seen: list[tuple[int, int, int]] = []

    def progress(done: int, total: int) -> None:
        waiting = sum(1 for i in w.model.items if i.status == "pending")
        seen.append((done, total, waiting))

    w.session.matching_progress.connect(progress)
    release.set()
    qtbot.waitUntil(
        lambda: w.model.rowCount() == 3 and all(i.status != "pending" for i in w.model.items),
        timeout=WAIT_MS,
    )
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    ended_early = [s for s in seen if s[1] == 0 and s[2] > 0]
    assert not ended_early, seen


def test_the_review_list_keeps_its_photos_and_place_when_another_model_takes_over(
    qtbot: Any, window: MainWindow, tmp_path: Path, engine_calls: EngineCalls
) -> None:
    """A model switch (by hand, or 'Improve model' activating its new model mid-day) made
    the Review list anew from the library: the photos staff had decided that day vanished
    from it, a photo taken off it with Delete came back (and Ctrl+Z no longer knew it), and
    no photo was selected any more, the review pane empty until staff clicked one."""
    w = window
    version = _two_model_library(qtbot, w, tmp_path, engine_calls)  # photos 1 and 2 matched
    w.add_paths(write_photos(tmp_path / "p2", [3, 4]))
    wait_matched(qtbot, w, 4)
    w.review.queue.setFocus()
    first = item(w, "photo-of-001.jpg")
    w.session.select_row(w.model.row_of(first.key))
    key(w, Qt.Key.Key_Return)  # confirmed: the list moves on
    qtbot.waitUntil(lambda: not w.worker.busy and first.status == "confirmed", timeout=WAIT_MS)
    w.session.select_row(w.model.row_of(item(w, "photo-of-003.jpg").key))
    key(w, Qt.Key.Key_Delete)  # taken off the list
    w.session.select_row(w.model.row_of(item(w, "photo-of-004.jpg").key))
    w.switch_model(version, confirm=False)
    qtbot.waitUntil(
        lambda: w.library_status is not None and w.library_status.model_version == version,
        timeout=WAIT_MS,
    )
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    names = [i.path.name for i in w.model.items]
    current = w.session.current_item()
    shown = current.path.name if current is not None else None
    assert shown == "photo-of-004.jpg", (shown, names)
    assert names == ["photo-of-001.jpg", "photo-of-002.jpg", "photo-of-004.jpg"]
    assert first.status == "confirmed"
    undecided = [i for i in w.model.items if i is not first]
    assert all(i.status == "suggested" and i.suggestions for i in undecided)  # matched anew
    key(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert "photo-of-003.jpg" in [i.path.name for i in w.model.items]  # Ctrl+Z puts it back


def _switched(qtbot: Any, w: MainWindow, version: str) -> None:
    """Matching uses ``version`` now (a switch by hand), and the list is matched again."""
    w.switch_model(version, confirm=False)
    qtbot.waitUntil(
        lambda: w.library_status is not None and w.library_status.model_version == version,
        timeout=WAIT_MS,
    )
    qtbot.waitUntil(lambda: not w.worker.busy and not w.session.matching, timeout=WAIT_MS)


def _stored(lib_path: Path, photo_id: int, version: str) -> list[tuple[str, float]]:
    """The suggestions the library holds for a photo under model ``version``."""
    rows = (
        library_db(lib_path)
        .execute(
            "SELECT sku, score FROM suggestions WHERE photo_id = ? AND model_version = ? "
            "ORDER BY rank",
            [photo_id, version],
        )
        .fetchall()
    )
    return [(r[0], round(r[1], 6)) for r in rows]


def _shown(it: Any) -> list[tuple[str, float]]:
    return [(s.sku, round(s.score, 6)) for s in it.suggestions]


def _confirmed_with_enter(qtbot: Any, w: MainWindow, name: str) -> Any:
    """The photo ``name`` selected in the queue and confirmed with Enter (its top card)."""
    w.review.queue.setFocus()
    photo = item(w, name)
    w.session.select_row(w.model.row_of(photo.key))
    key(w, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not w.worker.busy and photo.status == "confirmed", timeout=WAIT_MS)
    return photo


def _confirmed_then_switched(
    qtbot: Any, w: MainWindow, tmp_path: Path, engine_calls: EngineCalls
) -> tuple[Any, str | None, str]:
    """photo-of-001 confirmed with Enter, then the other model switched to and the photo
    selected again: the photo, the product it was confirmed as, and the model now used."""
    version = _two_model_library(qtbot, w, tmp_path, engine_calls)
    first = _confirmed_with_enter(qtbot, w, "photo-of-001.jpg")
    chosen = first.decided_sku
    _switched(qtbot, w, version)
    w.session.select_row(w.model.row_of(first.key))
    return first, chosen, version


def test_a_photo_put_back_with_ctrl_z_after_a_model_switch_is_matched_with_the_new_model(
    qtbot: Any, window: MainWindow, tmp_path: Path, engine_calls: EngineCalls
) -> None:
    """A photo taken off the list (Delete) before a model switch came back with Ctrl+Z
    after it with the old model's suggestions and scores, which the library no longer holds
    for the model in use: Enter confirmed the old model's top product, Accept confident
    counted its old score, and the confirmation was recorded as no rank of the new model's
    (review 34)."""
    w = window
    version = _two_model_library(qtbot, w, tmp_path, engine_calls)  # photos 1 and 2 matched
    lib_path = tmp_path / "lib"
    w.review.queue.setFocus()
    gone = item(w, "photo-of-002.jpg")
    w.session.select_row(w.model.row_of(gone.key))
    key(w, Qt.Key.Key_Delete)  # taken off the list
    assert gone not in w.model.items
    _switched(qtbot, w, version)
    key(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # put back
    qtbot.waitUntil(lambda: not w.worker.busy and not w.session.matching, timeout=WAIT_MS)
    back = item(w, "photo-of-002.jpg")
    assert back.photo_id is not None and back.status == "suggested"
    now = _stored(lib_path, back.photo_id, version)
    assert now and _shown(back) == now, (
        f"shown {_shown(back)}; the library's for model {version}: {now}"
    )


def test_undoing_a_confirmation_made_before_a_model_switch_offers_the_new_models_suggestions(
    qtbot: Any, window: MainWindow, tmp_path: Path, engine_calls: EngineCalls
) -> None:
    """A photo confirmed before the switch stays on the list (decided: not matched again).
    Ctrl+Z after the switch made it undecided again with the old model's suggestions, and
    the next Enter confirmed the old model's top product; keys 1-9 on the confirmed photo
    picked among the old model's suggestions too (review 34)."""
    w = window
    lib_path = tmp_path / "lib"
    first, chosen, version = _confirmed_then_switched(qtbot, w, tmp_path, engine_calls)
    key(w, Qt.Key.Key_2)  # the old model's second suggestion is not on offer any more
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    assert (first.status, first.decided_sku) == ("confirmed", chosen)
    key(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: first.status == "suggested", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not w.worker.busy and not w.session.matching, timeout=WAIT_MS)
    assert first.photo_id is not None
    now = _stored(lib_path, first.photo_id, version)
    assert now and _shown(first) == now, (
        f"shown {_shown(first)}; the library's for model {version}: {now}"
    )


def test_accept_confident_says_which_photos_wait_when_a_new_model_took_over_meanwhile(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    engine_calls: EngineCalls,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """'Confirm the top suggestion for 2 photos scoring 80% or more?' stays open while staff
    think; Improve model activates its new model meanwhile (the list is matched again, its
    suggestions cleared). Yes then confirmed none of the photos listed and said only
    'Confirmed 0 confident photos': what it confirmed was read from the list after the
    answer, not what was asked; had the new model answered already, it confirmed its top
    suggestion, maybe another product or one under the threshold (review 34). Confirming the
    old model's product anyway recorded it with no rank and no score (review 36): the photos
    being matched again wait, and the status bar says so."""
    from PySide6.QtWidgets import QMessageBox

    w = window
    _two_model_library(qtbot, w, tmp_path, engine_calls)
    asked: list[str] = []
    held: list[threading.Event] = []
    said: list[str] = []
    w.session.message.connect(said.append)

    def answer(box: QMessageBox) -> int:
        asked.append(box.informativeText())
        held.append(_hold_engine(w))  # the new model's matching has not answered yet
        w.session.rematch()  # Improve model's new model took over while the box was open
        return int(QMessageBox.StandardButton.Yes)

    monkeypatch.setattr(QMessageBox, "exec", answer)
    w.review.queue.setFocus()
    w.session.accept_confident()
    held[0].set()
    qtbot.waitUntil(lambda: not w.worker.busy and not w.session.matching, timeout=WAIT_MS)
    assert "photo-of-001.jpg" in asked[0] and "photo-of-002.jpg" in asked[0]
    states = {i.path.name: i.status for i in w.model.items}
    assert states == {"photo-of-001.jpg": "suggested", "photo-of-002.jpg": "suggested"}, states
    assert any("2 photos were being matched again with the new model" in m for m in said), said
    with library_db(tmp_path / "lib") as db:
        assert db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 0


def test_the_progress_counts_each_photo_once_when_a_model_switch_comes_mid_matching(
    qtbot: Any, window: MainWindow, tmp_path: Path, engine_calls: EngineCalls
) -> None:
    """Another model took over while a delivery was being matched: the photos were queued
    again with the new model, but the progress kept the old count beside them, so the bar
    said 'Matching 40 of 80 photos' for 40 photos and its time left jumped (review 34)."""
    w = window
    _two_model_library(qtbot, w, tmp_path, engine_calls)  # photos 1 and 2 matched
    w.add_paths(write_photos(tmp_path / "more", list(range(3, 15))))
    qtbot.waitUntil(lambda: w.session.matching and w.model.rowCount() == 14, timeout=WAIT_MS)
    release = _hold_engine(w)  # the delivery's later chunks wait in the queue
    seen: list[tuple[int, int]] = []
    w.session.matching_progress.connect(lambda done, total: seen.append((done, total)))
    try:
        w.session.rematch()  # what a model switch ends with
    finally:
        release.set()
    qtbot.waitUntil(lambda: not w.worker.busy and not w.session.matching, timeout=WAIT_MS)
    assert all(i.status == "suggested" for i in w.model.items)
    assert seen and max(total for _done, total in seen) <= 14, seen


def test_accept_confident_across_a_model_switch_records_the_suggestions_it_accepted(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    engine_calls: EngineCalls,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """'Confirm the top suggestion for 2 photos?' was open when another model took over
    (the photos are matched again, their suggestions cleared); Yes confirmed the old model's
    SKUs anyway. The library held no suggestion of the new model for them yet, so each
    confirmation was saved with no rank and no score: the Learning page counted them 'found
    by search', not top-1 hits, and the export's rank column was empty (review 36)."""

    from PySide6.QtWidgets import QMessageBox

    w = window
    version = _two_model_library(qtbot, w, tmp_path, engine_calls)
    lib_path = tmp_path / "lib"
    held: list[threading.Event] = []
    rematch = w.session.rematch

    def held_rematch() -> None:  # the new model's matching has not answered yet
        held.append(_hold_engine(w))
        rematch()

    monkeypatch.setattr(w.session, "rematch", held_rematch)

    def answer(box: QMessageBox) -> int:
        w.switch_model(version, confirm=False)  # by hand, or Improve model, meanwhile
        qtbot.waitUntil(lambda: bool(held), timeout=120_000)
        return int(QMessageBox.StandardButton.Yes)

    monkeypatch.setattr(QMessageBox, "exec", answer)
    w.review.queue.setFocus()
    w.session.accept_confident()
    held[0].set()
    qtbot.waitUntil(lambda: not w.worker.busy and not w.session.matching, timeout=WAIT_MS)
    rows = (
        library_db(lib_path)
        .execute("SELECT photo_id, sku, rank, score FROM decisions WHERE action = 'confirm'")
        .fetchall()
    )
    assert all(r[2] is not None and r[3] is not None for r in rows), rows


def test_a_stopped_photo_put_back_to_undecided_by_ctrl_z_and_stopped_again_says_so(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    engine_calls: EngineCalls,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """After a model switch, Stop: the photo said 'Not matched (stopped)'. N marked it no
    match, Ctrl+Z made it undecided again and it was matched again, still flagged stopped;
    Stop once more skipped it, and it said 'Matching again with the new model…' for ever,
    though nothing matched it (review 36)."""
    w = window
    version = _two_model_library(qtbot, w, tmp_path, engine_calls)
    w.review.queue.setFocus()
    photo = item(w, "photo-of-001.jpg")
    w.session.select_row(w.model.row_of(photo.key))
    rematch = w.session.rematch

    def rematch_then_stop() -> None:  # Stop pressed before the new model matched it
        release = _hold_engine(w)
        try:
            rematch()
            w.session.stop_matching()
        finally:
            release.set()

    monkeypatch.setattr(w.session, "rematch", rematch_then_stop)
    _switched(qtbot, w, version)
    assert photo.status == "pending" and photo.stopped
    w.session.select_row(w.model.row_of(photo.key))
    key(w, Qt.Key.Key_N)
    qtbot.waitUntil(lambda: not w.worker.busy and photo.status == "no_match", timeout=WAIT_MS)
    release = _hold_engine(w)
    later = threading.Event()  # queued behind the undo: the undo's matching waits for it
    try:
        key(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # the undo waits its turn
        w.worker.submit(lambda ctx: later.wait(20), what="hold", priority=Priority.INTERACTIVE)
    finally:
        release.set()
    try:
        qtbot.waitUntil(lambda: photo.status == "pending", timeout=WAIT_MS)
        assert not photo.stopped  # being matched: no longer flagged stopped
        w.act_stop.trigger()
    finally:
        later.set()
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    qtbot.wait(200)
    assert not w.session.matching
    assert photo.status != "pending" or "stopped" in photo.status_text(), photo.status_text()


def test_a_photo_confirmed_before_a_model_switch_still_shows_the_product_it_was_confirmed_as(
    qtbot: Any, window: MainWindow, tmp_path: Path, engine_calls: EngineCalls
) -> None:
    """A photo confirmed, then another model took over: the photo showed only 'Confirmed:
    SKU-001. No suggestion is stored for this photo.', the product it was confirmed as (its
    name and picture) gone from the page, where before the switch its card was shown as
    chosen (review 36)."""
    w = window
    _, chosen, _ = _confirmed_then_switched(qtbot, w, tmp_path, engine_calls)
    shown = [c for c in w.review.cards if c.isVisible()]
    text = w.review.cards_message.text() if w.review.cards_message.isVisible() else ""
    assert [c.suggestion.sku for c in shown if c.suggestion] == [chosen], text
    assert not shown[0].key.isVisible()  # shown, not on offer: keys 1-9 pick nothing
    assert "No suggestion is stored" not in text, text


def test_undoing_a_confirmation_without_any_model_switch_does_not_say_new_model(
    qtbot: Any, window: MainWindow, tmp_path: Path, engine_calls: EngineCalls, boxes: Any
) -> None:
    """No model switch at all: a photo confirmed, then the supplier's new price list
    replaced the catalog (its old products withdrawn), then Ctrl+Z. The photo, matched again
    because its suggestions were withdrawn, said 'Matching again with the new model…',
    though the model had never changed (review 36)."""
    w = window
    library_with_catalog(qtbot, w, tmp_path, 6)
    w.add_paths(write_photos(tmp_path / "p", [1]))
    wait_matched(qtbot, w, 1)
    qtbot.waitUntil(lambda: not w.worker.busy and not w.session.matching, timeout=WAIT_MS)
    photo = item(w, "photo-of-001.jpg")
    w.review.queue.setFocus()
    w.session.select_row(0)
    key(w, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not w.worker.busy and photo.status == "confirmed", timeout=WAIT_MS)
    for old in (tmp_path / "supplier" / "images").glob("*.jpg"):
        old.unlink()  # the new catalog's files replace the old ones (another list's
        # pictures still there, of none of its products, would be another supplier's)
    write_catalog(tmp_path / "supplier", 1, start=6, sheet=False)
    sheet = tmp_path / "supplier" / "new.csv"
    sheet.write_text("sku,image\nSKU-006,images/SKU-006.jpg\n", encoding="utf-8")
    import_catalog(qtbot, w, tmp_path / "supplier", sheet)
    qtbot.waitUntil(lambda: not w.worker.busy and not w.session.matching, timeout=WAIT_MS)
    notes: list[str] = []
    w.model.dataChanged.connect(lambda *_: notes.append(photo.status_text()))
    key(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(
        lambda: photo.status == "suggested" and bool(photo.suggestions), timeout=WAIT_MS
    )
    qtbot.waitUntil(lambda: not w.worker.busy and not w.session.matching, timeout=WAIT_MS)
    assert [s.sku for s in photo.suggestions] == ["SKU-006"]
    assert not [n for n in notes if "new model" in n], notes


def _confirm_from_search(qtbot: Any, w: MainWindow, photo: Any) -> str:
    """Ctrl+F, the SKU of a product none of the photo's cards offers (nor its decision), and
    Enter in the search box: the photo confirmed as it, which is returned."""
    offered = {s.sku for s in photo.suggestions} | {photo.decided_sku}
    sku = next(f"SKU-{i:03d}" for i in range(6) if f"SKU-{i:03d}" not in offered)
    _search_results_for(qtbot, w, photo, sku)
    QTest.keyClick(w.review.search, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not w.worker.busy and photo.decided_sku == sku, timeout=WAIT_MS)
    return sku


def _assert_product_card(w: MainWindow, photo: Any, sku: str, withdrawn: bool = False) -> None:
    """The photo on show, with the card of the product it is confirmed as: its picture, name
    (marked as search results mark it if ``withdrawn``) and SKU, not on offer (no key number:
    keys 1-9 pick nothing)."""
    w.session.select_row(w.model.row_of(photo.key))
    shown = [c for c in w.review.cards if c.isVisible()]
    text = w.review.cards_message.text() if w.review.cards_message.isVisible() else ""
    assert (photo.status, photo.decided_sku) == ("confirmed", sku)
    assert [c.suggestion.sku for c in shown if c.suggestion] == [sku], f"no card; {text!r}"
    card = shown[0]
    name = f"Product {int(sku[4:])}" + (f" ({WITHDRAWN})" if withdrawn else "")
    assert (card.name.full_text(), card.sku.full_text()) == (name, f"SKU {sku}")
    assert not card.thumb.pixmap().isNull(), "the supplier's picture is missing"
    assert not card.key.isVisible()
    assert "Confirmed product" in w.review.cards_title.text()


def test_a_photo_confirmed_from_search_still_shows_the_products_card_after_a_model_switch(
    qtbot: Any, window: MainWindow, tmp_path: Path, engine_calls: EngineCalls
) -> None:
    """A photo confirmed with a product found by search (Ctrl+F: none of its suggestion
    cards), then another model took over: the photo said 'Confirmed: SKU-002 · Product 2'
    with no card at all, where a photo confirmed from a card kept its card, picture and all.
    Confirmed from search once more after the switch, it still showed no card."""
    w = window
    version = _two_model_library(qtbot, w, tmp_path, engine_calls)
    photo = item(w, "photo-of-001.jpg")
    sku = _confirm_from_search(qtbot, w, photo)
    # Before the switch its cards stay on offer (to change it), the decision named below.
    w.session.select_row(w.model.row_of(photo.key))
    said = w.review.cards_message.text()
    assert said == f"Confirmed from search: {sku} · Product {int(sku[4:])}", said
    _switched(qtbot, w, version)
    _assert_product_card(w, photo, sku)
    again = _confirm_from_search(qtbot, w, photo)  # no suggestion on show: another product
    _assert_product_card(w, photo, again)


def test_a_confirmation_put_back_by_ctrl_z_after_a_model_switch_shows_the_products_card(
    qtbot: Any, window: MainWindow, tmp_path: Path, engine_calls: EngineCalls
) -> None:
    """Confirmed from its top card, then another model took over, then N ('no match') and
    Ctrl+Z: the photo was confirmed again, but its product's card was gone, the page saying
    only 'Confirmed: SKU-001 · Product 1'."""
    w = window
    photo, chosen, _ = _confirmed_then_switched(qtbot, w, tmp_path, engine_calls)
    assert chosen is not None
    _assert_product_card(w, photo, chosen)
    key(w, Qt.Key.Key_N)
    qtbot.waitUntil(lambda: not w.worker.busy and photo.status == "no_match", timeout=WAIT_MS)
    key(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not w.worker.busy and photo.status == "confirmed", timeout=WAIT_MS)
    _assert_product_card(w, photo, chosen)


def test_a_photo_marked_no_match_after_a_confirmation_shows_no_product_card_after_a_switch(
    qtbot: Any, window: MainWindow, tmp_path: Path, engine_calls: EngineCalls
) -> None:
    """Confirmed from search, then marked no match (N), then another model took over: the
    page says 'No match' and shows no card, neither the old model's suggestions (keys 1-9
    would pick them) nor the product it was confirmed as before."""
    w = window
    version = _two_model_library(qtbot, w, tmp_path, engine_calls)
    photo = item(w, "photo-of-001.jpg")
    _confirm_from_search(qtbot, w, photo)
    w.session.select_row(w.model.row_of(photo.key))
    key(w, Qt.Key.Key_N)
    qtbot.waitUntil(lambda: not w.worker.busy and photo.status == "no_match", timeout=WAIT_MS)
    _switched(qtbot, w, version)
    w.session.select_row(w.model.row_of(photo.key))
    assert photo.status == "no_match"
    assert not [c for c in w.review.cards if c.isVisible()]
    assert w.review.cards_message.text().startswith("No match."), w.review.cards_message.text()


def test_undoing_a_search_confirmation_after_a_model_switch_offers_the_new_models_cards(
    qtbot: Any, window: MainWindow, tmp_path: Path, engine_calls: EngineCalls
) -> None:
    """Confirmed from search, another model took over, then Ctrl+Z: the photo is undecided
    and matched again with the model in use; its cards are that model's suggestions, on
    offer (keys 1-9), not the product the undone confirmation named."""
    w = window
    version = _two_model_library(qtbot, w, tmp_path, engine_calls)
    photo = item(w, "photo-of-001.jpg")
    _confirm_from_search(qtbot, w, photo)
    _switched(qtbot, w, version)
    w.session.select_row(w.model.row_of(photo.key))
    key(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: photo.status == "suggested", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not w.worker.busy and not w.session.matching, timeout=WAIT_MS)
    w.session.select_row(w.model.row_of(photo.key))
    assert photo.photo_id is not None
    now = _stored(tmp_path / "lib", photo.photo_id, version)
    shown = [c for c in w.review.cards if c.isVisible()]
    assert now and [(c.suggestion.sku, c.key.isVisible()) for c in shown if c.suggestion] == [
        (sku, True) for sku, _ in now
    ]
    assert "Confirmed product" not in w.review.cards_title.text()


def test_a_confirmation_put_back_by_ctrl_z_after_reopening_the_library_shows_its_card(
    qtbot: Any, make_window: Any, tmp_path: Path, engine_calls: EngineCalls
) -> None:
    """Confirmed from search, another model took over, N, and the app closed. Next day,
    Ctrl+Z listed the photo again, confirmed as that product, without its card."""
    w = make_window()
    version = _two_model_library(qtbot, w, tmp_path, engine_calls)
    photo = item(w, "photo-of-001.jpg")
    sku = _confirm_from_search(qtbot, w, photo)
    _switched(qtbot, w, version)
    w.session.select_row(w.model.row_of(photo.key))
    key(w, Qt.Key.Key_N)
    qtbot.waitUntil(lambda: not w.worker.busy and photo.status == "no_match", timeout=WAIT_MS)
    w.close()
    again = make_window()  # the same settings, as the next start
    open_library(qtbot, again, tmp_path / "lib")
    qtbot.waitUntil(lambda: not again.worker.busy, timeout=WAIT_MS)
    key(again, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not again.worker.busy and again.model.rowCount() > 0, timeout=WAIT_MS)
    _assert_product_card(again, item(again, "photo-of-001.jpg"), sku)


def _search_results_for(qtbot: Any, w: MainWindow, photo: Any, sku: str) -> None:
    """Ctrl+F on ``photo`` and the SKU typed: its result listed, Enter not pressed yet."""
    w.review.queue.setFocus()
    w.session.select_row(w.model.row_of(photo.key))
    key(w, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClicks(w.review.search, sku)
    results = w.review.results
    qtbot.waitUntil(
        lambda: results.count() > 0 and results.item(0).data(Qt.ItemDataRole.UserRole) == sku,
        timeout=WAIT_MS,
    )


def test_a_photo_taken_off_the_list_right_after_its_search_pick_comes_back_with_its_card(
    qtbot: Any, window: MainWindow, tmp_path: Path, engine_calls: EngineCalls
) -> None:
    """Staff confirm the last photo to review from search (Ctrl+F, Enter) while the engine
    is still busy with a chunk of matching, and at once take it off the list (Delete: a
    duplicate shot). Another model takes over, then Ctrl+Z puts the photo back: it said
    'Confirmed: SKU-002' with no card and no product name (review 40). The engine's answer
    to the confirmation (the card, the name) was only given to photos on the list: the one
    held off it kept the keypress's guess. It is given to that one too now."""
    w = window
    version = _two_model_library(qtbot, w, tmp_path, engine_calls)
    _confirmed_with_enter(qtbot, w, "photo-of-002.jpg")
    photo = item(w, "photo-of-001.jpg")
    offered = {s.sku for s in photo.suggestions}
    sku = next(f"SKU-{i:03d}" for i in range(6) if f"SKU-{i:03d}" not in offered)
    _search_results_for(qtbot, w, photo, sku)
    release = _hold_engine(w)  # a chunk of matching still running
    try:
        QTest.keyClick(w.review.search, Qt.Key.Key_Return)  # confirmed (the last to review)
        assert w.session.current_item() is photo
        key(w, Qt.Key.Key_Delete)  # taken off the list
        assert photo not in w.model.items
    finally:
        release.set()
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    _switched(qtbot, w, version)
    key(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)  # put back
    assert photo in w.model.items
    _assert_product_card(w, photo, sku)
    assert photo.decided_name == f"Product {int(sku[4:])}"


def _withdraw(qtbot: Any, w: MainWindow, tmp_path: Path, sku: str) -> None:
    """The supplier's new sheet no longer lists ``sku`` and its picture is gone from the
    folder: imported again, the product leaves the catalog (withdrawn)."""
    sheet = tmp_path / "supplier" / "sheet.csv"
    with open(sheet, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    with open(sheet, "w", newline="", encoding="utf-8") as fh:
        out = csv.DictWriter(fh, fieldnames=list(rows[0]))
        out.writeheader()
        out.writerows(r for r in rows if r["SKU"] != sku)
    (tmp_path / "supplier" / "images" / f"{sku}.jpg").unlink()
    import_catalog(qtbot, w, tmp_path / "supplier", sheet)
    qtbot.waitUntil(lambda: not w.worker.busy and not w.session.matching, timeout=WAIT_MS)


def _n_then_ctrl_z(qtbot: Any, w: MainWindow, photo: Any) -> None:
    """N on the photo, then Ctrl+Z: it is confirmed again as before."""
    w.review.queue.setFocus()
    w.session.select_row(w.model.row_of(photo.key))
    key(w, Qt.Key.Key_N)
    qtbot.waitUntil(lambda: not w.worker.busy and photo.status == "no_match", timeout=WAIT_MS)
    key(w, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not w.worker.busy and photo.status == "confirmed", timeout=WAIT_MS)


def test_a_top_card_confirmation_put_back_after_its_withdrawal_shows_its_card_not_from_search(
    qtbot: Any, window: MainWindow, tmp_path: Path, boxes: Any
) -> None:
    """A photo confirmed with Enter (its top card, SKU-001). The supplier's new sheet drops
    SKU-001 (withdrawn). Staff press N by mistake and Ctrl+Z at once: the photo was
    confirmed as SKU-001 again, but the page said 'Confirmed from search: SKU-001 ·
    Product 1', which was false (the library recorded it from rank 1 of the suggestions),
    and the product it was confirmed as had no card any more: only the four other products
    were shown, on offer (review 40). 'From search' was guessed from 'none of the cards on
    show', and the confirmed product's card was shown only when no suggestion was. Now the
    page says what the library recorded, and the product's card follows the numbered ones,
    marked withdrawn, with no key: keys 1-9 still pick exactly the suggestions."""
    w = window
    library_with_catalog(qtbot, w, tmp_path, 6)
    w.add_paths(write_photos(tmp_path / "p", [1, 2]))
    wait_matched(qtbot, w, 2)
    qtbot.waitUntil(lambda: not w.worker.busy and not w.session.matching, timeout=WAIT_MS)
    photo = item(w, "photo-of-001.jpg")
    w.review.queue.setFocus()
    w.session.select_row(w.model.row_of(photo.key))
    key(w, Qt.Key.Key_Return)  # its top card
    qtbot.waitUntil(lambda: not w.worker.busy and photo.status == "confirmed", timeout=WAIT_MS)
    chosen = photo.decided_sku
    assert chosen is not None
    _withdraw(qtbot, w, tmp_path, chosen)
    _n_then_ctrl_z(qtbot, w, photo)
    w.session.select_row(w.model.row_of(photo.key))
    assert photo.decided_sku == chosen
    said = w.review.cards_message.text() if w.review.cards_message.isVisible() else ""
    shown = [c for c in w.review.cards if c.isVisible() and c.suggestion]
    skus = [c.suggestion.sku for c in shown if c.suggestion]
    offered = [s.sku for s in photo.suggestions]
    assert said == f"Confirmed: {chosen} · Product {int(chosen[4:])}", (said, skus)
    assert offered and chosen not in offered
    assert skus == [*offered, chosen], (said, skus)
    assert [c.key.isVisible() for c in shown] == [True] * len(offered) + [False]
    assert shown[-1].name.full_text() == f"Product {int(chosen[4:])} ({WITHDRAWN})"
    assert not shown[-1].thumb.pixmap().isNull()
    key(w, Qt.Key(Qt.Key.Key_1.value + len(offered)))  # the confirmed card's place: no key
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    assert (photo.status, photo.decided_sku) == ("confirmed", chosen)


def test_ctrl_z_after_n_brings_back_a_withdrawn_products_card_with_its_picture_marked(
    qtbot: Any, window: MainWindow, tmp_path: Path, engine_calls: EngineCalls, boxes: Any
) -> None:
    """Confirmed from its top card; the supplier's new sheet drops that product; another
    model takes over: the photo shows 'Confirmed product' with the product's picture. N by
    mistake, Ctrl+Z: confirmed as the same product again, but its card had a blank picture
    (the thumbnail still on disk, on show a moment before), and nothing said the product was
    withdrawn (review 40). The card was dropped on N, and the one Ctrl+Z brought back took
    its picture from catalog_images, which the withdrawal emptied for that product. The card
    on show is kept across N and Ctrl+Z now, and says the product was withdrawn."""
    w = window
    version = _two_model_library(qtbot, w, tmp_path, engine_calls)
    photo = item(w, "photo-of-001.jpg")
    w.review.queue.setFocus()
    w.session.select_row(w.model.row_of(photo.key))
    key(w, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not w.worker.busy and photo.status == "confirmed", timeout=WAIT_MS)
    chosen = photo.decided_sku
    assert chosen is not None
    _withdraw(qtbot, w, tmp_path, chosen)
    _switched(qtbot, w, version)
    _assert_product_card(w, photo, chosen, withdrawn=True)  # picture and all
    _n_then_ctrl_z(qtbot, w, photo)
    _assert_product_card(w, photo, chosen, withdrawn=True)
