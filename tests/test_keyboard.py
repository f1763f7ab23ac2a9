"""Keyboard only, as a shop worker reviews (review 28): Enter on a focused button presses it
(not the window's 'confirm the top suggestion'), Enter in the product search takes a result
of the text typed, a late undo leaves the selection where the keys took it, Tab leaves the
Catalog and Learning tables, Ctrl+F and P act on the tab on show, the photo queue shows its
keyboard focus and a window opened on a library has one. Real window, real library,
offscreen; each test failed on the code as it was reviewed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

import test_desktop
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLineEdit, QWidget
from test_desktop import (
    WAIT_MS,
    EngineCalls,
    _library_with_confirmations,
    _two_model_library,
    item,
    key,
    library_with_catalog,
    wait_matched,
)
from test_library_switch_and_rematch import _hold_engine

from conftest import write_photos
from desktop_app.main_window import MainWindow

boxes = test_desktop.boxes
engine_calls = test_desktop.engine_calls
make_window = test_desktop.make_window
window = test_desktop.window


def _matched_queue(qtbot: Any, w: MainWindow, tmp_path: Path, products: int = 6) -> None:
    library_with_catalog(qtbot, w, tmp_path, products)
    qtbot.waitUntil(lambda: w.pages.currentWidget() is w.tabs, timeout=WAIT_MS)
    w.session.add_paths(write_photos(tmp_path / "photos", [1, 2, 3]))
    wait_matched(qtbot, w, 3)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    w.session.select_row(0)


def _active(w: MainWindow) -> None:
    if QApplication.activeWindow() is not w:
        w.activateWindow()
        assert QTest.qWaitForWindowActive(w, 5000)


def _focus(w: MainWindow, widget: QWidget) -> None:
    _active(w)
    widget.setFocus(Qt.FocusReason.TabFocusReason)
    assert widget.hasFocus()


@pytest.mark.parametrize("button", ["no_match_button", "skip_button"])
def test_enter_on_a_focused_review_button_does_not_confirm_the_top_suggestion(
    qtbot: Any, window: MainWindow, tmp_path: Path, button: str
) -> None:
    """A keyboard user Tabs to 'No match (N)' (or 'Skip (S)') and presses Enter, as on any
    focused button. The window-wide Enter shortcut takes the key first: the photo is
    confirmed as its top suggestion, a product staff were about to say it is not."""
    w = window
    _matched_queue(qtbot, w, tmp_path)
    photo = w.session.current_item()
    assert photo is not None and photo.status == "suggested"
    target = getattr(w.review, button)
    assert target.isEnabled()
    _focus(w, target)
    QTest.keyClick(target, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    assert photo.status != "confirmed", (
        f"Enter on the focused {target.text()!r} button confirmed {photo.decided_sku} "
        "(the top suggestion)"
    )
    # The button's own action instead: no match recorded, or the next photo shown.
    if button == "no_match_button":
        assert photo.status == "no_match"
    else:
        assert photo.status == "suggested" and w.session.current_item() is not photo
    # Back in the photo queue, Enter confirms the top suggestion as before.
    queue = w.review.queue
    _focus(w, queue)
    shown = w.session.current_item()
    assert shown is not None and shown.status == "suggested"
    QTest.keyClick(queue, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    assert shown.status == "confirmed"


def test_enter_on_the_focused_accept_confident_button_asks_first(
    qtbot: Any, window: MainWindow, tmp_path: Path, boxes: list[dict[str, Any]]
) -> None:
    """Enter on the focused 'Accept N confident…' button: instead of the button's question
    ('Confirm the top suggestion for N photos…?'), the current photo alone is confirmed."""
    w = window
    _matched_queue(qtbot, w, tmp_path)
    photo = w.session.current_item()
    assert photo is not None and photo.status == "suggested"
    target = w.review.accept_button
    assert target.isEnabled(), "nothing confident in this queue"
    before = len(boxes)
    _focus(w, target)
    QTest.keyClick(target, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    asked = [b["text"] for b in boxes[before:]]
    assert any("Confirm the top suggestion for" in t for t in asked), (
        f"Enter on {target.text()!r}: no question asked; the current photo became "
        f"{photo.status} {photo.decided_sku or ''}"
    )


def test_enter_in_the_search_box_picks_a_result_of_the_text_typed(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    """Type 'SKU-00', see the results, type '5' and press Enter (as a quick typist or a
    barcode scanner does): the results still list 'SKU-00' (the new search waits 150 ms)
    and Enter confirms their first row, a product that does not match what was typed."""
    w = window
    _matched_queue(qtbot, w, tmp_path, products=12)
    photo = w.session.current_item()
    assert photo is not None
    key(w, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert w.review.search.hasFocus()
    QTest.keyClicks(w.review.search, "SKU-00")
    qtbot.waitUntil(
        lambda: w.review.results.isVisible() and w.review.results.count() > 1, timeout=WAIT_MS
    )
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    first = w.review.results.item(0).data(Qt.ItemDataRole.UserRole)
    assert first != "SKU-005"
    QTest.keyClicks(w.review.search, "5")
    QTest.keyClick(w.review.search, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    qtbot.wait(300)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    assert photo.status != "confirmed" or photo.decided_sku == "SKU-005", (
        f"typed 'SKU-005' + Enter, confirmed {photo.decided_sku}"
    )


def _tab_until(w: MainWindow, target: QWidget, presses: int) -> list[str]:
    seen = []
    for _ in range(presses):
        focus = QApplication.focusWidget()
        assert focus is not None
        QTest.keyClick(focus, Qt.Key.Key_Tab)
        now = QApplication.focusWidget()
        seen.append(type(now).__name__ if now is not None else "None")
        if now is target:
            return seen
    return seen


def test_tab_leaves_the_model_versions_table_for_improve_model(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    """Learning tab: Tab into the model versions table and it never lets go (Qt's
    tabKeyNavigation moves between its cells, wrapping): 'Improve model…', the buttons
    beside it, are out of reach of Tab; there is no menu entry or shortcut for them."""
    w = window
    _matched_queue(qtbot, w, tmp_path)
    key(w, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    assert w.tabs.currentWidget() is w.learning
    qtbot.waitUntil(lambda: w.learning.versions.rowCount() > 0, timeout=WAIT_MS)
    w.learning.improve.setEnabled(True)
    _focus(w, w.learning.versions)
    seen = _tab_until(w, w.learning.improve, 20)
    assert QApplication.focusWidget() is w.learning.improve, f"Tab went: {seen}"


def test_tab_leaves_the_catalog_table(qtbot: Any, window: MainWindow, tmp_path: Path) -> None:
    """Catalog tab: once in the product table, Tab walks its cells (5 per product, 500 per
    page) instead of going to the detail beside it or back to the filter box."""
    w = window
    _matched_queue(qtbot, w, tmp_path)
    key(w, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert w.tabs.currentWidget() is w.catalog
    qtbot.waitUntil(lambda: w.catalog.table.rowCount() == 6, timeout=WAIT_MS)
    _focus(w, w.catalog.table)
    seen = _tab_until(w, w.catalog.images, 10)
    assert QApplication.focusWidget() is not w.catalog.table, f"Tab went: {seen}"


def test_ctrl_f_on_the_catalog_tab_goes_to_a_search_box(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    """Ctrl+F ('Find Product…', Edit menu) is disabled on the Catalog tab, the one place
    where staff browse products: from the product table the key does nothing at all."""
    w = window
    _matched_queue(qtbot, w, tmp_path)
    key(w, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: w.catalog.table.rowCount() == 6, timeout=WAIT_MS)
    _focus(w, w.catalog.table)
    QTest.keyClick(w.catalog.table, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert isinstance(QApplication.focusWidget(), QLineEdit), (
        f"Ctrl+F on the Catalog tab: focus stays on {type(QApplication.focusWidget()).__name__}"
        f", Find Product enabled: {w.act_find.isEnabled()}"
    )


def test_p_on_the_catalog_tab_does_not_open_the_review_photos_matching_points(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    """Every review key (1-9, N, S, A, arrows, Enter) is disabled off the Review tab, but
    not P: typing P in the catalog's product table (type-ahead to products starting with
    'P...') opens 'matching points' for a photo on another, hidden tab."""
    w = window
    _matched_queue(qtbot, w, tmp_path)
    key(w, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: w.catalog.table.rowCount() == 6, timeout=WAIT_MS)
    _focus(w, w.catalog.table)
    w.session.points_dialog = None
    QTest.keyClick(w.catalog.table, Qt.Key.Key_P)
    dialog = getattr(w.session, "points_dialog", None)
    if dialog is not None:
        dialog.close()
    assert dialog is None, "P on the Catalog tab opened the review photo's matching points"
    assert w.act_points.isEnabled() is False


def test_a_late_undo_does_not_pull_the_selection_away_from_where_the_keys_went(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    """Ctrl+Z waits on the engine thread behind the matching chunk in progress (with a
    3,000-product catalog: seconds). Staff see nothing happen and carry on: Enter confirms
    the photo on screen and moves to the next. When the undo's answer arrives it selects
    the undone photo: the selection jumps away from where the last key took it, and the
    next Enter confirms the top suggestion of the photo just undone."""
    w = window
    _matched_queue(qtbot, w, tmp_path)
    _active(w)
    queue = w.review.queue
    queue.setFocus()
    QTest.keyClick(queue, Qt.Key.Key_Return)  # photo 1 confirmed, photo 2 shown
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    assert w.session.current_row() == 1
    # Ctrl+Z, then Enter before the engine thread has answered the undo.
    QTest.keyClick(queue, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(queue, Qt.Key.Key_Return)
    where_keys_left_it = w.session.current_item()
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    qtbot.wait(200)
    now = w.session.current_item()
    left = where_keys_left_it.path.name if where_keys_left_it else None
    assert now is where_keys_left_it, (
        f"after Ctrl+Z, Enter showed {left}; "
        f"the undo's answer then selected {now.path.name if now else None}"
    )


def _paint_row(view: Any, delegate: Any, focus: bool) -> Any:
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtWidgets import QStyle, QStyleOptionViewItem

    index = view.model().index(0, 0)
    opt = QStyleOptionViewItem()
    view.initViewItemOption(opt)
    opt.rect = view.visualRect(index).translated(-view.visualRect(index).topLeft())
    opt.state |= QStyle.StateFlag.State_Selected | QStyle.StateFlag.State_Active
    if focus:
        opt.state |= QStyle.StateFlag.State_HasFocus
    img = QImage(opt.rect.size(), QImage.Format.Format_ARGB32)
    img.fill(0)
    painter = QPainter(img)
    delegate.paint(painter, opt, index)
    painter.end()
    return img


def test_the_photo_queue_shows_when_it_has_the_keyboard_focus(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    """Tab moves through queue, threshold, Accept, search, No match, Skip, tabs, queue:
    the buttons and boxes show a focus frame, but the photo queue's delegate ignores
    State_HasFocus: the queue, where the keys act, looks the same with and without focus
    (Qt's own item delegate draws a focus frame for the same row)."""
    from PySide6.QtWidgets import QStyledItemDelegate

    w = window
    _matched_queue(qtbot, w, tmp_path)
    view = w.review.queue
    plain = QStyledItemDelegate()
    assert _paint_row(view, plain, True) != _paint_row(view, plain, False)  # Qt's: it shows
    ours = view.itemDelegate()
    assert _paint_row(view, ours, True) != _paint_row(view, ours, False), (
        "the photo queue's selected row looks the same with and without keyboard focus"
    )


def test_the_window_opened_on_a_library_has_a_keyboard_focus(
    qtbot: Any, make_window: Any, tmp_path: Path
) -> None:
    """Start the app on yesterday's library (photos waiting): no widget has the keyboard
    focus. Window shortcuts still work, but Ctrl+2 and typing a product name filters
    nothing (the letters go nowhere), and the first Tab lands on the tab bar."""
    first = make_window()
    _matched_queue(qtbot, first, tmp_path)
    first.close()
    w = make_window()
    w.open_library(tmp_path / "lib")
    qtbot.waitUntil(lambda: w.library_status is not None, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: w.model.rowCount() == 3, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    _active(w)
    qtbot.wait(200)
    focus = QApplication.focusWidget()
    assert focus is not None and focus.isVisible(), "no widget has the keyboard focus"
    key(w, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: w.catalog.table.rowCount() == 6, timeout=WAIT_MS)
    QTest.keyClicks(QApplication.focusWidget() or w, "SKU-004")
    assert w.catalog.text.text() == "SKU-004", "typing on the Catalog tab filtered nothing"


def test_the_shortcut_list_names_the_file_keys(
    qtbot: Any, window: MainWindow, tmp_path: Path
) -> None:
    """F1's list left out the File menu's keys (Ctrl+O, Ctrl+I, Ctrl+Shift+F, Ctrl+Q): a
    keyboard user had to find them in the menus. They are read from the actions, so a key
    a platform does not have (Quit on Windows) is not listed."""
    from PySide6.QtGui import QKeySequence
    from PySide6.QtWidgets import QMessageBox

    w = window
    _active(w)
    QTest.keyClick(w, Qt.Key.Key_F1)
    shown = [b for b in w.findChildren(QMessageBox) if b.windowTitle() == "Keyboard shortcuts"]
    assert shown, "F1 showed no list"
    text = shown[-1].text()
    for act in (w.act_open, w.act_import, w.act_add_folder, w.act_export, w.act_quit):
        keys = act.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        if keys:  # Quit has no key on some platforms (Windows; Qt's offscreen one)
            assert f"<b>{keys}</b>" in text, f"{keys} ({act.text()}) not in the list"
    assert "<b></b>" not in text
    shown[-1].close()


# -- review 30: a second look at the keyboard fixes --------------------------------------------


def test_enter_after_clicking_no_match_confirms_the_next_photo_not_no_match_again(
    qtbot, window: MainWindow, tmp_path: Path
) -> None:
    """A mouse-and-keyboard user clicks 'No match (N)' for one photo, then presses Enter on
    the next, as the README says ('Enter: confirm the top suggestion'). A click gives a
    QPushButton the keyboard focus (Windows, Linux), so since review 28's fix the Enter
    presses the focused 'No match' button again: the next photo, one that matches, is
    recorded as 'no match'. Before, Enter confirmed its top suggestion."""
    w = window
    _matched_queue(qtbot, w, tmp_path)
    _active(w)
    first = w.session.current_item()
    assert first is not None
    QTest.mouseClick(w.review.no_match_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: first.status == "no_match", timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    second = w.session.current_item()
    assert second is not None and second is not first and second.status == "suggested"
    focus = QApplication.focusWidget() or w
    QTest.keyClick(focus, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    assert second.status == "confirmed", (
        f"Enter after a click on 'No match' (focus: {type(focus).__name__} "
        f"{getattr(focus, 'text', lambda: '')()!r}) made the next photo {second.status}"
    )


def test_enter_on_the_focused_instant_memory_box_does_not_switch_instant_memory_off(
    qtbot, window: MainWindow, tmp_path: Path
) -> None:
    """Enter on a check box does nothing in Qt (Space toggles it). MainWindow.keyPressEvent
    now clicks any focused QAbstractButton on Enter, check boxes included: Enter on the
    Learning tab's 'Instant memory' box turns instant memory off without a word, and every
    confirmed photo stops being a reference."""
    w = window
    _matched_queue(qtbot, w, tmp_path)
    w.tabs.setCurrentWidget(w.learning)
    box = w.learning.memory
    qtbot.waitUntil(lambda: box.isEnabled() and box.isChecked(), timeout=WAIT_MS)
    _focus(w, box)
    QTest.keyClick(box, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    assert box.isChecked(), "Enter on the focused check box switched instant memory off"


def test_the_score_bar_tells_assistive_technology_the_score(
    qtbot, window: MainWindow, tmp_path: Path
) -> None:
    """The score bar was a QProgressBar: a screen reader heard 'progress bar, 87 percent'.
    review 28 made it a plain painted QWidget (ScoreBar) with no accessible role, name or
    value: the bar now says nothing at all."""
    from PySide6.QtGui import QAccessible

    w = window
    _matched_queue(qtbot, w, tmp_path)
    card = next(c for c in w.review.cards if c.isVisible() and c.suggestion is not None)
    qtbot.waitUntil(lambda: card.bar.value() > 0, timeout=WAIT_MS)
    score = f"{card.suggestion.score:.0%}"
    face = QAccessible.queryAccessibleInterface(card.bar)
    value = face.valueInterface() if face is not None else None
    told = (
        (value is not None and round(float(value.currentValue())) == card.bar.value())
        or score in card.bar.accessibleName()
        or score in card.bar.accessibleDescription()
    )
    assert told, (
        f"score bar of {card.suggestion.sku}: role {face.role() if face else None}, "
        f"name {card.bar.accessibleName()!r}, no value"
    )


def test_two_quick_undos_end_on_the_photo_undone_last(
    qtbot, window: MainWindow, tmp_path: Path
) -> None:
    """Staff confirm photos 1 and 2 with Enter, see both were wrong and press Ctrl+Z twice,
    without waiting (the undo waits behind a matching chunk). Both undos remember the photo
    on show when they were pressed (photo 3); the first answer selects photo 2, so the
    second undo's answer thinks the keys moved on and leaves the selection on photo 2: the
    photo undone last, photo 1, is never shown, and the next Enter confirms photo 2's top
    suggestion again, the very decision just undone."""
    w = window
    _matched_queue(qtbot, w, tmp_path)
    _active(w)
    queue = w.review.queue
    queue.setFocus()
    first = w.session.current_item()
    QTest.keyClick(queue, Qt.Key.Key_Return)
    QTest.keyClick(queue, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    assert w.session.current_row() == 2
    QTest.keyClick(queue, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    QTest.keyClick(queue, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    qtbot.wait(200)
    assert [i.status for i in w.model.items][:2] == ["suggested", "suggested"]
    now = w.session.current_item()
    assert now is first, f"after two undos the window shows {now.path.name if now else None}"


def test_after_accepting_confident_matches_by_keyboard_the_review_keys_still_work(
    qtbot, window: MainWindow, tmp_path: Path, boxes
) -> None:
    """Tab to 'Accept N confident…', Enter (review 28's fix: the button asks), Yes. The
    button is disabled now that nothing confident is left, and Qt hands its focus to the
    next control: the product search box. The review keys then type into it: N for the
    photo left over ('no match') becomes the search text 'N', and nothing is decided."""
    from conftest import write_photos

    w = window
    _matched_queue(qtbot, w, tmp_path)
    w.session.add_paths(write_photos(tmp_path / "unknown", [40]))  # not in the catalog
    qtbot.waitUntil(
        lambda: w.model.rowCount() == 4 and all(i.status != "pending" for i in w.model.items),
        timeout=WAIT_MS,
    )
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    unknown = next(i for i in w.model.items if i.path.name == "photo-of-040.jpg")
    # The threshold just above the unknown photo's top score: it is not confident.
    w.review.threshold.setValue(min(99.9, unknown.suggestions[0].score * 100 + 0.5))
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    target = w.review.accept_button
    assert target.isEnabled()
    _focus(w, target)
    QTest.keyClick(target, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    qtbot.wait(200)
    left = [i for i in w.model.items if i.status == "suggested"]
    assert left, [
        (i.path.name, i.status, [round(s.score, 2) for s in i.suggestions][:2])
        for i in w.model.items
    ]
    w.session.select_row(w.model.row_of(left[0].key))
    focus = QApplication.focusWidget() or w
    QTest.keyClick(focus, Qt.Key.Key_N)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    assert left[0].status == "no_match", (
        f"N went to {type(focus).__name__} (search text {w.review.search.text()!r}); "
        f"the photo stayed {left[0].status}"
    )


def test_the_outcome_of_a_run_does_not_take_the_keys_from_staff_reviewing(
    qtbot: Any, window: MainWindow, tmp_path: Path, engine_calls: EngineCalls
) -> None:
    """'You can keep matching meanwhile': staff review with the keyboard while the model
    trains. When the run ended, its outcome ('Model kept' / 'Model improved') opened as a
    window-modal box over the Review tab: the next Enter, meant to confirm the photo on
    show, went nowhere, and reviewing stopped until someone dealt with the box."""
    w = window
    _library_with_confirmations(qtbot, w, tmp_path, engine_calls)
    w.learning.start_training(confirm=False)
    w.tabs.setCurrentWidget(w.review)
    w.add_paths(write_photos(tmp_path / "new", [7, 8]))  # today's delivery, reviewed meanwhile
    wait_matched(qtbot, w, 8)
    qtbot.waitUntil(lambda: w.learning.last_report is not None, timeout=120_000)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    assert "Model kept" in w.learning.outcome.text()  # said on the page (and status bar)
    photo = item(w, "photo-of-007.jpg")
    w.review.queue.setFocus()
    w.session.select_row(w.model.row_of(photo.key))
    key(w, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    assert photo.status == "confirmed", "the key went nowhere: a modal box holds the window"


@pytest.mark.parametrize(
    ("stop", "says"), [(False, "Still matching"), (True, "stopped")], ids=["matching", "stopped"]
)
def test_enter_on_a_photo_being_matched_again_says_where_its_matching_stands(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    engine_calls: EngineCalls,
    stop: bool,
    says: str,
) -> None:
    """After a model switch the photos still to decide are matched again, shown as
    'Matching again with the new model…', their suggestions gone. Enter on one said 'There
    is no suggestion 1 for this photo', as if the photo had none, where a photo being
    matched says 'Still matching…' (review 34). With Stop pressed before the new model
    matched it, the photo said 'Not matched (stopped): add the photo again…', and Enter
    still said 'There is no suggestion 1' (review 36)."""
    w = window
    _two_model_library(qtbot, w, tmp_path, engine_calls)
    w.review.queue.setFocus()
    photo = item(w, "photo-of-001.jpg")
    w.session.select_row(w.model.row_of(photo.key))
    release = _hold_engine(w)  # its matching with the new model has not answered yet
    try:
        w.session.rematch()  # what a model switch (by hand or Improve model) ends with
        if stop:
            w.session.stop_matching()
        assert photo.status == "pending" and photo.stopped == stop
        key(w, Qt.Key.Key_Return)
        said = w.statusBar().full_message
    finally:
        release.set()
    qtbot.waitUntil(lambda: not w.worker.busy and not w.session.matching, timeout=WAIT_MS)
    assert says in said, said
    assert photo.status == ("pending" if stop else "suggested")  # nothing was decided
