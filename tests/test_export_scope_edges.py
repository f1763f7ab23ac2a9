"""One delivery's export at its edges (clock changes, moved and renamed folders, naive
times, 50,000 photos), SKUs printed as confirm takes them, and photos whose every suggestion
was rejected (found by a hostile review). Real libraries, images, SQLite and CLI."""

from __future__ import annotations

import csv
import io
import os
import shutil
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from conftest import REPO, cli, write_catalog, write_photos
from desktop_app.main_window import MainWindow
from engine.export_csv import inventory_csv
from engine.library import Library
from engine.photo_scope import PhotoScope, parse_when, photo_ids


def rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


@pytest.fixture
def delivery(tmp_path: Path) -> Path:
    """A library whose three photos of folder 'incoming' are confirmed."""
    sup = tmp_path / "supplier"
    write_catalog(sup, 6)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(sup, sup / "sheet.csv")
        ms = list(lib.match(write_photos(tmp_path / "incoming", [0, 1, 2])))
        for m, sku in zip(ms, ["SKU-000", "SKU-001", "SKU-002"], strict=True):
            assert m.photo_id is not None
            lib.confirm(m.photo_id, sku)
    return tmp_path / "lib"


# -- 1. scopes --------------------------------------------------------------------------------


def test_a_renamed_delivery_folder_exports_its_photos(delivery: Path) -> None:
    """Staff match 'incoming', then rename it to the delivery's name and match it again
    (the library says each photo is the one it knows). Exporting that folder found none of
    them: the library keeps only the first path, so --folder on the folder the photos are in
    now writes 0 rows, 'none of the photos in ...'."""
    root = delivery.parent
    (root / "incoming").rename(root / "metro-24-11")
    with Library(delivery) as lib:
        again = list(lib.match([root / "metro-24-11"]))
        assert all(m.photo_id for m in again) and not any(m.duplicate_of for m in again)
    r = cli(delivery, "export", "-", "--folder", str(root / "metro-24-11"))
    assert r.returncode == 0, r.stderr
    assert [row["sku"] for row in rows(r.stdout.encode())] == ["SKU-000", "SKU-001", "SKU-002"]


def test_cli_exports_a_listed_folder_whose_photos_were_moved_away(delivery: Path) -> None:
    """The library lists the folder as a delivery (the app's dialog offers it and exports
    it), but once its photos were moved to an archive the CLI refuses it: 'folder not
    found', although the decisions are all in the library."""
    root = delivery.parent
    shutil.move(str(root / "incoming"), str(root / "archive"))
    with Library(delivery) as lib:
        assert [f.folder for f in lib.photo_folders()] == [root / "incoming"]
    r = cli(delivery, "export", "-", "--folder", str(root / "incoming"))
    assert r.returncode == 0, r.stderr
    assert len(rows(r.stdout.encode())) == 3


def test_a_scoped_export_of_undecided_photos_does_not_say_there_are_none(
    delivery: Path,
) -> None:
    """Today's delivery matched but not decided yet: 'wrote 0 rows (none of the photos added
    on <today>)' reads as if nothing was added today. Unscoped, the CLI says 'no photo is
    decided yet; --all lists every photo'; scoped it should say the same kind of thing."""
    root = delivery.parent
    with Library(delivery) as lib:
        list(lib.match(write_photos(root / "tuesday", [3, 4])))
    r = cli(delivery, "export", "-", "--on", "today", "--folder", str(root / "tuesday"))
    assert r.returncode == 0, r.stderr
    assert "wrote 0 rows" in r.stderr
    assert "decided" in r.stderr, r.stderr  # e.g. '2 photos ..., none decided yet; --all ...'


def test_a_scope_built_with_naive_times_reads_them_as_local(delivery: Path) -> None:
    """PhotoScope is public (Library.export_csv(scope=...)) and photo_scope says a naive
    time is this computer's local time, but a naive since/until crashed the export:
    TypeError "can't compare offset-naive and offset-aware datetimes"."""
    with Library(delivery) as lib:
        scope = PhotoScope(since=datetime.now() - timedelta(hours=1))
        assert inventory_csv(lib, scope=scope)[1] == 3


def test_since_accepts_an_iso_time_in_utc_with_z(delivery: Path) -> None:
    """'--since 2026-11-24T14:30Z' (the usual ISO form with Z, what a script or a log gives)
    is refused: parse_when lowercases the text first, and 'z' is not read as UTC ('+00:00'
    is). The README offers offsets ('--since with an offset')."""
    moment = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%MZ")
    assert parse_when(moment) == datetime.strptime(moment, "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
    r = cli(delivery, "export", "-", "--since", moment)
    assert r.returncode == 0, r.stderr


def _run_in_zone(zone: str, code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TZ": zone}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("day", ["2026-03-29", "2026-10-25"])  # 23 and 25 hours in Berlin
def test_a_day_with_a_clock_change_is_still_named_as_a_day(day: str) -> None:
    """On the days the clocks change, 'export --on DAY' (and the app's status bar) said
    'photos added since 2026-03-29 00:00 added before 2026-03-30 00:00' instead of 'photos
    added on 2026-03-29': describe() takes a day to be 24 hours long."""
    said = _run_in_zone(
        "Europe/Berlin",
        "from datetime import date; from engine.photo_scope import PhotoScope; "
        f"print(PhotoScope.day(date.fromisoformat('{day}')).describe())",
    )
    assert said == f"photos added on {day}"


@pytest.mark.parametrize(
    ("zone", "evening", "day_after"),
    [
        # Egypt: summer time from the last Friday of April, 00:00 -> 01:00 (UTC+2 -> +3).
        ("Africa/Cairo", "2026-04-23T21:30:00+00:00", "2026-04-24"),
        # Chile: 00:00 -> 01:00 on the first Sunday of September (UTC-4 -> -3).
        ("America/Santiago", "2026-09-06T03:30:00+00:00", "2026-09-06"),
    ],
)
def test_a_photo_added_late_the_evening_before_the_clocks_go_forward_at_midnight(
    delivery: Path, monkeypatch: pytest.MonkeyPatch, zone: str, evening: str, day_after: str
) -> None:
    """Where summer time starts at midnight (Egypt, Chile, Cuba, Lebanon), that midnight
    does not exist and _day_start() takes 23:00 of the day before instead (fold=0): the
    day before loses its last hour. A photo added at 23:30 local time on Thursday
    2026-04-23 in Cairo is exported with Friday's delivery, not Thursday's."""
    with Library(delivery) as lib:
        lib.db.execute("UPDATE photos SET added_at = ? WHERE id = 1", [evening])
        lib.db.execute(
            "UPDATE photos SET added_at = ? WHERE id > 1", [f"{day_after}T12:00:00+00:00"]
        )
        lib.db.conn.commit()
    before = (date.fromisoformat(day_after) - timedelta(days=1)).isoformat()
    monkeypatch.setenv("TZ", zone)  # the CLI process's local time zone
    r = cli(delivery, "export", "-", "--on", before)
    assert r.returncode == 0, r.stderr
    assert [row["sku"] for row in rows(r.stdout.encode())] == ["SKU-000"], r.stderr
    r = cli(delivery, "export", "-", "--on", day_after)
    assert [row["sku"] for row in rows(r.stdout.encode())] == ["SKU-001", "SKU-002"]


def _many_photos(lib: Library, n: int) -> None:
    """``n`` photo rows in folders of 500 (what a year of deliveries leaves), added a minute
    apart; the speed of scopes over them is measured by bench/bench_export_scope.py."""
    now = datetime.now(UTC)
    lib.db.conn.executemany(
        "INSERT INTO photos(path, sha256, added_at) VALUES (?, ?, ?)",
        [
            (
                f"/home/shop/Pictures/delivery-{i // 500:03d}/IMG_{i:06d}.jpg",
                f"{i:064x}",
                (now - timedelta(minutes=i)).isoformat(timespec="seconds"),
            )
            for i in range(n)
        ],
    )
    lib.db.conn.commit()


def test_folder_and_day_scopes_over_many_photos(delivery: Path) -> None:
    """Thousands of photos in many folders: a folder scope takes exactly its folder's
    photos (no others whose path merely starts alike: delivery-0071 is not delivery-007),
    and the dialog's folder list counts each folder once, its sub-folders included."""
    from engine.photo_scope import photo_folders

    with Library(delivery) as lib:
        _many_photos(lib, 5_000)
        lib.db.execute(
            "INSERT INTO photos(path, sha256, added_at) VALUES (?, ?, ?)",
            ["/home/shop/Pictures/delivery-0071/x.jpg", "f" * 64, "2026-01-01T00:00:00+00:00"],
        )
        lib.db.conn.commit()
        conn = lib.db.conn
        assert (
            len(photo_ids(conn, PhotoScope(folder=Path("/home/shop/Pictures/delivery-007")))) == 500
        )
        assert len(photo_ids(conn, PhotoScope(folder=Path("/home/shop/Pictures")))) == 5_001
        folders = {f.folder: f.photos for f in photo_folders(conn)}
    assert folders[Path("/home/shop/Pictures/delivery-007")] == 500
    assert len(folders) == 10 + 1 + 1  # ten of 500, delivery-0071, and 'incoming'


# -- 2. SKUs printed as confirm takes them ----------------------------------------------------


@pytest.mark.parametrize(
    "sku",
    ["AB\u00a012", "AB\u200b12", "AB\t12", "AB\n12", "AB\x0712"],
    ids=["no-break space", "zero-width space", "tab", "line break", "control character"],
)
def test_a_sku_printed_by_products_is_accepted_by_confirm(tmp_path: Path, sku: str) -> None:
    """'CLI prints SKUs exactly as confirm accepts them': a SKU from a spreadsheet with a
    no-break space (Excel, web shops), a zero-width space or a tab inside is printed with a
    plain space (or without the character), and confirm refuses what was printed: 'unknown
    SKU ... did you mean AB 12' (which looks the same as what was typed)."""
    sup = tmp_path / "supplier"
    write_catalog(sup, 3)
    sheet = sup / "sheet.csv"
    text = sheet.read_text(encoding="utf-8").replace("SKU-001,", f'"{sku}",', 1)
    sheet.write_text(text, encoding="utf-8")
    (photo,) = write_photos(tmp_path / "p", [1])
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(sup, sheet)
        assert lib.product(sku) is not None
        (m,) = lib.match([photo])
    listed = cli(tmp_path / "lib", "products", "Product 1")
    assert listed.returncode == 0, listed.stderr
    (line,) = [x for x in listed.stdout.splitlines() if "Product 1" in x]
    printed = line[:24].rstrip()
    r = cli(tmp_path / "lib", "confirm", str(m.photo_id), printed)
    assert r.returncode == 0, (printed, r.stderr)
    with Library(tmp_path / "lib", lock=False) as lib:
        assert lib.photo_state(m.photo_id).decision.sku == sku  # type: ignore[union-attr]


# -- 3. every suggestion rejected -------------------------------------------------------------


def test_rejected_and_withdrawn_suggestions_are_matched_again(tmp_path: Path) -> None:
    """The top suggestion rejected on the command line, the other four withdrawn by the
    supplier's new sheet (imported with the CLI): the window took the photo for 'every
    suggestion rejected, nothing left to suggest' and never matched it again, although
    matching offers the catalog's other products. With no rejection at all it is matched
    again (needs_matching), so one rejection hides the new catalog from that photo."""
    from desktop_app.session import stored_match
    from engine.overview import photo_records

    sup = tmp_path / "supplier"
    sheet = write_catalog(sup, 12)
    assert sheet is not None
    (photo,) = write_photos(tmp_path / "p", [3])
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(sup, sheet)
        (m,) = lib.match([photo])
        assert m.photo_id is not None
        first, *others = [s.sku for s in m.suggestions]
        lib.reject(m.photo_id, first)
        lines = sheet.read_text(encoding="utf-8").splitlines()
        sheet.write_text(
            "\n".join(x for x in lines if x.split(",")[0] not in others) + "\n", encoding="utf-8"
        )
        for sku in others:
            (sup / "images" / f"{sku}.jpg").unlink()
        lib.import_catalog(sup, sheet, removals="remove")
        assert all(lib.product(s)["withdrawn_at"] for s in others)  # type: ignore[index]
        shown = stored_match(lib, photo_records(lib, [m.photo_id])[m.photo_id])
        (again,) = lib.match([photo])  # what matching again offers: products still sold
        assert [s.sku for s in again.suggestions if s.sku != first]
        assert shown.needs_matching, (shown.suggestions, shown.all_rejected)


# -- the app's export dialog ------------------------------------------------------------------

from test_desktop import (  # noqa: E402  (the window tests' own fixtures and helpers)
    WAIT_MS,
    EngineCalls,
    boxes,  # noqa: F401
    engine_calls,  # noqa: F401
    make_window,  # noqa: F401
    open_library,
    window,  # noqa: F401
)


def _dialog_for(qtbot: Any, lib_dir: Path) -> Any:
    from desktop_app.export_dialog import ExportDialog

    with Library(lib_dir, lock=False) as lib:
        folders = lib.photo_folders()
    dialog = ExportDialog(None, folders, sum(f.photos for f in folders), "comma")
    qtbot.addWidget(dialog)
    return dialog


def _folder_entries(dialog: Any) -> dict[Path, str]:
    return {
        dialog.photos.itemData(i)[1]: dialog.photos.itemText(i)
        for i in range(dialog.photos.count())
        if dialog.photos.itemData(i)[0] == "folder"
    }


def test_the_dialog_tells_two_deliveries_with_the_same_folder_name_apart(
    qtbot: Any, tmp_path: Path
) -> None:
    """Each supplier's delivery in a folder named by date (metro/2026-11-24, lidl/2026-11-24;
    or two phones' 'Camera' folders): the 'Photos' list showed two identical entries,
    'From folder 2026-11-24 (2 photos, last added today ...)', only a tooltip apart."""
    sup = tmp_path / "supplier"
    write_catalog(sup, 6)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(sup, sup / "sheet.csv")
        list(lib.match(write_photos(tmp_path / "metro" / "2026-11-24", [0, 1])))
        list(lib.match(write_photos(tmp_path / "lidl" / "2026-11-24", [2, 3])))
    texts = list(_folder_entries(_dialog_for(qtbot, tmp_path / "lib")).values())
    assert len(texts) == 2
    assert texts[0] != texts[1], texts


def test_a_folders_photo_count_is_what_exporting_it_covers(qtbot: Any, tmp_path: Path) -> None:
    """'From folder tuesday (2 photos ...)': exporting that entry covers its sub-folders too
    (PhotoScope: 'at any depth'), so 3 photos, and the sub-folder is listed again beside it.
    The count shown is not the count exported."""
    from engine.photo_scope import PhotoScope, photo_ids

    sup = tmp_path / "supplier"
    write_catalog(sup, 6)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(sup, sup / "sheet.csv")
        list(lib.match(write_photos(tmp_path / "tuesday", [0, 1])))
        list(lib.match(write_photos(tmp_path / "tuesday" / "crates", [2])))
    entries = _folder_entries(_dialog_for(qtbot, tmp_path / "lib"))
    tuesday = (tmp_path / "tuesday").resolve()
    with Library(tmp_path / "lib", lock=False) as lib:
        covered = len(photo_ids(lib.db.conn, PhotoScope(folder=tuesday)))
    assert covered == 3
    assert f"({covered} photos" in entries[tuesday], entries[tuesday]


def test_the_undecided_choice_is_remembered_across_a_per_product_export(
    qtbot: Any,
    window: MainWindow,  # noqa: F811
    tmp_path: Path,
    boxes: list[dict[str, Any]],  # noqa: F811
    engine_calls: EngineCalls,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """'Also list photos not decided yet' ticked for the daily per-photo export; one
    per-product export in between (the box is greyed out, still ticked) saved
    export/undecided = '' and the next per-photo export had it unticked."""
    from PySide6.QtWidgets import QDialog, QFileDialog

    from desktop_app import settings as keys
    from desktop_app.export_dialog import ExportDialog

    sheet = write_catalog(tmp_path / "sup", 2)
    with engine_calls.by_test(), Library(tmp_path / "lib") as lib:
        lib.import_catalog(tmp_path / "sup", sheet)
    w = window
    open_library(qtbot, w, tmp_path / "lib")
    qtbot.waitUntil(lambda: not w.worker.busy, timeout=WAIT_MS)
    seen: list[ExportDialog] = []
    plan = iter([("photo", True), ("sku", None), ("photo", None)])

    def fake_exec(dialog: ExportDialog) -> int:
        per, tick = next(plan)
        seen.append(dialog)
        dialog.rows.setCurrentIndex(dialog.rows.findData(per))
        if tick is not None:
            dialog.undecided.setChecked(tick)
        return int(QDialog.DialogCode.Accepted)

    monkeypatch.setattr(ExportDialog, "exec", fake_exec)
    names = iter(["a.csv", "b.csv", "c.csv"])
    monkeypatch.setattr(
        QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / next(names)), "")
    )
    for _ in range(3):
        w.last_export = None
        w.act_export.trigger()
        qtbot.waitUntil(lambda: w.last_export is not None, timeout=WAIT_MS)
    assert seen[1].undecided.isChecked()  # still ticked when the per-product export began
    assert seen[2].undecided.isChecked(), w.settings.value(keys.EXPORT_UNDECIDED)
