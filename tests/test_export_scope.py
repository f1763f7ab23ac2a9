"""One delivery's export: the photos added on a day, since a time, or from one folder, in a
real library with real matched photos, through the library and the CLI as a real process."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from conftest import cli, photo_of, product_image, write_catalog, write_photos
from engine.export_csv import inventory_csv
from engine.library import Library
from engine.photo_scope import PhotoScope, parse_when


def rows(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


@pytest.fixture
def two_deliveries(tmp_path: Path) -> Path:
    """Yesterday's delivery (SKU-000..002, folder 'monday'), confirmed, and today's
    (SKU-003, SKU-004 and a second SKU-000, folder 'tuesday'), confirmed but the last."""
    sup = tmp_path / "supplier"
    write_catalog(sup, 6)
    lib_dir = tmp_path / "lib"
    with Library(lib_dir) as lib:
        lib.import_catalog(sup, sup / "sheet.csv")
        monday = list(lib.match(write_photos(tmp_path / "monday", [0, 1, 2])))
        for m, sku in zip(monday, ["SKU-000", "SKU-001", "SKU-002"], strict=True):
            lib.confirm(m.photo_id, sku)
        # The photos were added yesterday: the stored time is the fact a scope reads.
        day_ago = (datetime.now(UTC) - timedelta(days=1)).isoformat(timespec="seconds")
        lib.db.execute("UPDATE photos SET added_at = ?", [day_ago])
        lib.db.conn.commit()
        tuesday_photos = write_photos(tmp_path / "tuesday", [3, 4])
        again = tmp_path / "tuesday" / "sub" / "another-000.jpg"
        again.parent.mkdir()
        photo_of(product_image(0), 99).save(again)  # another photo of SKU-000, a folder deeper
        tuesday = list(lib.match([*tuesday_photos, again]))
        for m, sku in zip(tuesday[:2], ["SKU-003", "SKU-004"], strict=True):
            lib.confirm(m.photo_id, sku)
        assert lib.db.execute("SELECT COUNT(*) FROM photos").fetchone()[0] == 6
    return lib_dir


def test_an_export_covers_one_day_or_one_folder(two_deliveries: Path) -> None:
    """A shop books in each delivery: an export of every photo ever listed mixed them."""
    root = two_deliveries.parent
    with Library(two_deliveries) as lib:
        today = PhotoScope.day(date.today())
        assert [r["sku"] for r in rows(inventory_csv(lib, scope=today)[0])] == [
            "SKU-003",
            "SKU-004",
        ]
        listed = rows(inventory_csv(lib, scope=today, include_undecided=True)[0])
        assert [r["status"] for r in listed] == ["confirmed", "confirmed", "suggested"]
        yesterday = PhotoScope.day(date.today() - timedelta(days=1))
        assert [r["sku"] for r in rows(inventory_csv(lib, scope=yesterday)[0])] == [
            "SKU-000",
            "SKU-001",
            "SKU-002",
        ]
        # Per product: the quantities of that delivery alone.
        per_sku = rows(inventory_csv(lib, per="sku", scope=PhotoScope(folder=root / "monday"))[0])
        assert {r["sku"]: r["quantity"] for r in per_sku} == {
            "SKU-000": "1",
            "SKU-001": "1",
            "SKU-002": "1",
        }
        # A folder covers its sub-folders; the whole library is the default.
        tuesday = PhotoScope(folder=root / "tuesday")
        assert inventory_csv(lib, scope=tuesday, include_undecided=True)[1] == 3
        assert inventory_csv(lib)[1] == 5
        assert inventory_csv(lib, scope=PhotoScope(folder=root / "supplier"))[1] == 0
        # A time range: since an hour ago is today's; before it, yesterday's.
        hour_ago = datetime.now(UTC) - timedelta(hours=1)
        assert inventory_csv(lib, scope=PhotoScope(since=hour_ago))[1] == 2
        assert inventory_csv(lib, scope=PhotoScope(until=hour_ago))[1] == 3
        target = root / "monday.csv"
        assert lib.export_csv(target, per="sku", scope=PhotoScope(folder=root / "monday")) == 3


def test_the_folders_of_the_photos_come_newest_first(two_deliveries: Path) -> None:
    """The app offers each folder as a delivery to export, the newest first."""
    root = two_deliveries.parent
    with Library(two_deliveries) as lib:
        folders = lib.photo_folders()
    # The sub-folder's photo was added last (or in the same second: then by name).
    assert [(f.folder, f.photos) for f in folders] == [
        ((root / "tuesday" / "sub").resolve(), 1),
        ((root / "tuesday").resolve(), 3),  # its sub-folder's photo too, as its export
        ((root / "monday").resolve(), 3),
    ]


def test_times_are_read_as_staff_type_them() -> None:
    now = datetime(2026, 11, 24, 15, 0).astimezone()
    assert parse_when("today", now=now) == datetime(2026, 11, 24).astimezone()
    assert parse_when(" Yesterday ", now=now) == datetime(2026, 11, 23).astimezone()
    assert parse_when("2026-11-02", now=now) == datetime(2026, 11, 2).astimezone()
    assert parse_when("2026-11-02 14:30", now=now) == datetime(2026, 11, 2, 14, 30).astimezone()
    assert parse_when("2026-11-02T14:30+00:00") == datetime(2026, 11, 2, 14, 30, tzinfo=UTC)
    for bad in ("2026-02-30", "last week", "24.11.2026", ""):
        with pytest.raises(ValueError, match="give today, yesterday, a date such as"):
            parse_when(bad, now=now)
    with pytest.raises(ValueError, match="the end comes first"):
        PhotoScope(since=parse_when("today"), until=parse_when("yesterday"))
    day = PhotoScope.day(date(2026, 11, 24))
    assert day.describe() == "photos added on 2026-11-24"
    assert PhotoScope().describe() == "all photos"


def test_cli_export_of_one_delivery(two_deliveries: Path) -> None:
    root = two_deliveries.parent
    out = root / "today.csv"
    done = cli(two_deliveries, "export", str(out), "--on", "today")
    assert done.returncode == 0, done.stderr
    assert f"wrote 2 rows to {out} (photos added on {date.today().isoformat()})" in done.stdout
    assert [r["sku"] for r in rows(out.read_bytes())] == ["SKU-003", "SKU-004"]

    piped = cli(two_deliveries, "export", "-", "--per", "sku", "--folder", str(root / "monday"))
    assert piped.returncode == 0, piped.stderr
    assert {r["sku"] for r in rows(piped.stdout.encode())} == {"SKU-000", "SKU-001", "SKU-002"}
    assert f"(photos in {root / 'monday'})" in piped.stderr

    empty = cli(two_deliveries, "export", str(root / "none.csv"), "--since", "2099-01-01")
    assert empty.returncode == 0
    assert "wrote 0 rows" in empty.stdout and "(none of the photos added since 2099-01-01" in (
        empty.stdout
    )
    for args, said in [
        (["--on", "today", "--since", "yesterday"], "--on names a whole day"),
        (["--since", "last week"], "cannot read 'last week' as a time"),
        (["--folder", str(root / "mondya")], "--folder: folder not found"),
        (["--since", "today", "--before", "yesterday"], "the end comes first"),
    ]:
        bad = cli(two_deliveries, "export", str(root / "x.csv"), *args)
        assert bad.returncode != 0 and said in bad.stderr, (args, bad.stderr)
        assert not (root / "x.csv").exists()


def test_export_summary_tells_none_added_from_none_decided() -> None:
    """The one wording the command line and the window share: an empty scoped export says
    whether nothing was added then or there, or photos were added but none decided."""
    from engine.photo_scope import export_summary

    day = PhotoScope.day(date(2026, 11, 24), folder=Path("/shop/deliveries/tuesday"))
    said = day.describe()
    assert export_summary(PhotoScope(), 0, None) == ""
    assert export_summary(day, 3, None) == f" ({said})"
    assert export_summary(day, 0, 0) == f" (none of the {said})"
    assert export_summary(day, 0, 2) == (
        " (2 photos added on 2026-11-24 in /shop/deliveries/tuesday, none decided yet)"
    )
    assert export_summary(day, 0, 1, undecided_hint="; --all lists them").endswith(
        "1 photo added on 2026-11-24 in /shop/deliveries/tuesday, none decided yet; "
        "--all lists them)"
    )
    assert export_summary(day, 0, 2, per="sku").endswith(", none confirmed yet)")
    assert export_summary(day, 0, 2, folder_by_name=True).startswith(
        " (2 photos added on 2026-11-24 in tuesday,"
    )
