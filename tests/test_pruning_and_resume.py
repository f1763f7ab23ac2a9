"""Pruning old model versions, stopped photos across restarts, and path arguments: review
29's second look at that day's changes (each test failed on the code it reviewed).

Real files, real engine, real processes; desktop tests use the real window (offscreen)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import pytest

from conftest import cli, write_catalog, write_photos
from engine.library import Library
from engine.manifest import ModelManifest
from engine.resources import bundled_model_dir


# -- helpers ---------------------------------------------------------------------------------
def _model_copy(tmp: Path, version: str) -> Path:
    """The bundled network under another version name (what a learning run leaves)."""
    dest = tmp / "made" / version
    shutil.copytree(bundled_model_dir(), dest)
    manifest = dataclasses.replace(ModelManifest.load(dest), version=version)
    manifest.save(dest)
    return dest


def _install(lib: Library, tmp: Path, version: str, metrics: dict[str, object], day: int) -> None:
    lib.install_model(_model_copy(tmp, version), metrics=metrics, check=False)
    lib.db["models"].update(version, {"created_at": f"2020-01-{day:02d}T00:00:00+00:00"})


def _small_catalog_library(tmp_path: Path) -> Path:
    sheet = write_catalog(tmp_path / "supplier", 3)
    lib_dir = tmp_path / "lib"
    with Library(lib_dir) as lib:
        lib.import_catalog(tmp_path / "supplier", sheet)
    return lib_dir


# -- 1. prune_unused removes the model the shop was using until this run ----------------------
def test_prune_keeps_the_version_that_was_in_use_until_the_new_one_replaced_it(
    tmp_path: Path,
) -> None:
    """A refused version tried by hand (the Learning tab offers exactly that: 'Version X
    stays under Model versions, to try by hand') and used for weeks; three later runs are
    refused too; the next run passes and is activated. The very same run's prune then
    deletes the version the shop had been matching with a minute before (the one the new
    model 'replaces'): there is nothing to switch back to if the new one disappoints."""
    from engine.learning import prune_unused

    lib_dir = _small_catalog_library(tmp_path)
    with Library(lib_dir) as lib:
        _install(lib, tmp_path, "shop-1", {"status": "refused"}, 1)
        lib.activate_model("shop-1")  # tried by hand, and kept in use
        for day in (2, 3, 4):
            _install(lib, tmp_path, f"shop-{day}", {"status": "refused", "replaces": "shop-1"}, day)
        _install(lib, tmp_path, "shop-5", {"status": "accepted", "replaces": "shop-1"}, 5)
        lib.activate_model("shop-5")  # what finish() does for an accepted candidate
        lib.set_model_metrics("shop-5", {"status": "active", "replaces": "shop-1"})
        removed = prune_unused(lib)
        left = {str(m["version"]) for m in lib.models()}
    assert "shop-1" in left, (
        f"prune removed {removed}: the version in use until this run (the one the new active "
        "model replaces) is gone"
    )


# -- 2. one VACUUM per removed version --------------------------------------------------------
def test_prune_compacts_the_database_once_not_once_per_version(tmp_path: Path) -> None:
    """The first run after the upgrade finds every refused version of the past months and
    removes all but three; remove_model runs VACUUM (a full rewrite of shopmatch.db, hundreds
    of MB in a shop) after each one. One compaction at the end gives back the same space."""
    from engine.learning import prune_unused

    lib_dir = _small_catalog_library(tmp_path)
    with Library(lib_dir) as lib:
        for day in range(1, 8):
            _install(lib, tmp_path, f"old-{day}", {"status": "refused"}, day)
        statements: list[str] = []
        lib.db.conn.set_trace_callback(statements.append)
        try:
            removed = prune_unused(lib)
        finally:
            lib.db.conn.set_trace_callback(None)
    vacuums = [s for s in statements if s.strip().upper().startswith("VACUUM")]
    assert len(removed) == 4
    assert len(vacuums) <= 1, f"{len(vacuums)} VACUUMs of the whole database for one prune"


# -- 3. a path argument written '~name' that names no user -----------------------------------
def test_a_photo_named_with_a_leading_tilde_is_not_a_traceback(tmp_path: Path) -> None:
    """`_path` expands '~' in every path argument. A file whose name starts with '~' (Office
    and editor temp copies: '~$scan.jpg', '~backup') that names no user made
    Path.expanduser() raise RuntimeError inside argparse: a Python traceback, exit 1, for
    `shopmatch match '~nosuchuser/photo.jpg'` or `match '~$scan.jpg'`."""
    sheet = write_catalog(tmp_path / "supplier", 2)
    lib = tmp_path / "lib"
    assert cli(lib, "import", str(tmp_path / "supplier"), "--sheet", str(sheet)).returncode == 0
    job = tmp_path / "job"
    job.mkdir()
    photo = write_photos(tmp_path / "in", [0])[0]
    shutil.copyfile(photo, job / "~r29nosuchuser.jpg")
    proc = cli(lib, "match", "~r29nosuchuser.jpg", cwd=job)
    assert "Traceback" not in proc.stderr, proc.stderr[-600:]
    assert proc.returncode == 0, (proc.stdout, proc.stderr[-600:])  # the file is right there


# -- desktop ---------------------------------------------------------------------------------
pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

import test_desktop  # noqa: E402
import test_shop_day  # noqa: E402
from test_desktop import WAIT_MS, open_library  # noqa: E402

from desktop_app.main_window import MainWindow  # noqa: E402

boxes = test_desktop.boxes
engine_calls = test_desktop.engine_calls
make_window = test_desktop.make_window
window = test_desktop.window


# -- 4. the desktop's learning runs never prune -----------------------------------------------
def test_improve_model_in_the_app_removes_old_versions_no_check_let_in(
    qtbot: Any, window: MainWindow, tmp_path: Path, boxes: Any, engine_calls: Any
) -> None:
    """'Learning keeps the newest three versions that no check let in and removes older ones
    after each run (a shop training weekly filled its disk)'. The shop trains from the
    Learning tab, which runs learning.finish() itself; only learning.learn() (the CLI)
    prunes, so in the app every refused run still stays, ~30 MB each."""
    w = window
    lib_path = test_desktop._library_with_confirmations(qtbot, w, tmp_path, engine_calls)
    with engine_calls.by_test(), Library(lib_path, lock=False) as lib:
        for day in (1, 2, 3):  # three refused runs from the weeks before
            _install(lib, tmp_path, f"old-{day}", {"status": "refused"}, day)
    w.learning.start_training(confirm=False)
    qtbot.waitUntil(lambda: w.learning.last_report is not None, timeout=300_000)
    qtbot.waitUntil(lambda: not w.learning.training, timeout=WAIT_MS)
    report = w.learning.last_report
    assert report is not None and not report.activated  # six confirmations: refused, kept
    with engine_calls.by_test(), Library(lib_path, lock=False) as lib:
        left = {str(m["version"]) for m in lib.models()}
    assert "old-1" not in left, (
        f"four versions no check let in after the app's run, none removed: {sorted(left)}; "
        f"report.removed={report.removed}"
    )


# -- 5. a stopped photo decided from the command line meanwhile -------------------------------
def test_a_stopped_photo_confirmed_meanwhile_is_not_listed_as_not_matched(
    qtbot: Any, make_window: Any, tmp_path: Path, boxes: Any, engine_calls: Any
) -> None:
    """Stop, quit; the evening script (or a colleague with the CLI) matches and confirms one
    of the stopped photos. The next start lists it again as 'Not matched (stopped)' and
    counts it among 'N photos stopped before matching', though the library holds its
    confirmation: the remembered list is trusted without asking the library."""
    first = make_window()
    stopped = test_shop_day._stop_matching_early(qtbot, first, tmp_path)
    lib_path = first.library_path
    first.close()
    target = stopped[0].path
    with engine_calls.by_test(), Library(lib_path) as lib:
        (result,) = list(lib.match([target]))
        assert result.photo_id is not None
        lib.confirm(result.photo_id, "SKU-000")
    again = make_window()
    open_library(qtbot, again, lib_path)
    qtbot.waitUntil(lambda: len(again.model.items) >= len(stopped) - 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not again.worker.busy and not again.session.matching, timeout=WAIT_MS)
    qtbot.wait(200)
    listed = [i for i in again.model.items if i.path == target]
    said = [i.note for i in listed if i.note.startswith("Not matched (stopped)")]
    assert not said, (
        f"{target.name}, confirmed in the library since, is listed as {said[0]!r} "
        f"(status bar: {again.statusBar().full_message!r})"
    )


# -- 6. export ./- is a file again -------------------------------------------------------------
def test_export_to_dot_slash_dash_writes_a_file_named_dash(tmp_path: Path) -> None:
    """cmd_export: "to_stdout = args.output == '-'  # as typed: './-' is a file". The new
    argparse type _output turns './-' into str(Path('./-')) == '-' before that check, so
    `shopmatch export ./-` (the usual way to name a file called '-') now streams the CSV to
    standard output and writes no file (it did before today's commits)."""
    sheet = write_catalog(tmp_path / "supplier", 2)
    lib = tmp_path / "lib"
    assert cli(lib, "import", str(tmp_path / "supplier"), "--sheet", str(sheet)).returncode == 0
    job = tmp_path / "job"
    job.mkdir()
    proc = cli(lib, "export", "./-", "--all", cwd=job)
    assert proc.returncode == 0, proc.stderr
    assert (job / "-").is_file(), f"no file './-'; stdout: {proc.stdout[:120]!r}, {proc.stderr!r}"
    assert not proc.stdout.startswith("photo,"), "the CSV went to standard output"


# -- 7. stopped photos on a drive not plugged in at the start are forgotten for good ----------
def test_stopped_photos_on_a_drive_not_plugged_in_at_the_start_are_not_forgotten(
    qtbot: Any, make_window: Any, tmp_path: Path, boxes: Any, engine_calls: Any
) -> None:
    """The delivery is on the camera's card. Stop, quit; the next morning the app starts
    before the card is in: resume() drops every stopped photo whose file is not there
    (p.is_file()) and _take_unmatched has already popped the list from the settings, so
    once the card is back (and the app restarted) nothing says which photos were still to
    do, though the list 'was the only record' of them."""
    first = make_window()
    stopped = test_shop_day._stop_matching_early(qtbot, first, tmp_path)
    lib_path = first.library_path
    first.close()
    card = tmp_path / "delivery"
    away = tmp_path / "card-not-plugged-in"
    card.rename(away)  # the card is not in the reader
    second = make_window()
    open_library(qtbot, second, lib_path)
    qtbot.waitUntil(lambda: not second.worker.busy and not second.session.matching, timeout=WAIT_MS)
    qtbot.wait(300)
    second.close()
    away.rename(card)  # the card is back
    third = make_window()
    open_library(qtbot, third, lib_path)
    qtbot.waitUntil(lambda: not third.worker.busy and not third.session.matching, timeout=WAIT_MS)
    qtbot.wait(300)
    names = {i.path.name for i in third.model.items}
    lost = [p.path.name for p in stopped if p.path.name not in names]
    assert not lost, f"{len(lost)} of {len(stopped)} stopped photos forgotten for good"
