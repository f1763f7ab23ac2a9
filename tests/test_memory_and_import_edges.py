"""Instant memory and catalog imports at their edges (review 30).

Guards four things:

- ``check`` stays quiet (and ``check --repair`` changes nothing) when a camera saved a newer
  photo over a confirmed one's file name: instant memory keeps one reference per path, the
  newest confirmed photo's, and ``memory.out_of_step``/``catch_up`` agree with that rule;
- the catch-up after an upgrade from a pre-v5 library withdraws no product that an import
  today would keep (one listed without a picture on purpose, known by its confirmed photos);
- an import none of whose pictures could be used (all 0-byte files: an unzip cut short)
  fails like one whose pictures are all damaged;
- several 0-byte pictures are each reported as empty, not as copies of each other.
"""

from __future__ import annotations

from pathlib import Path

from conftest import cli, photo_of, product_image, write_catalog
from engine.check import check_library
from engine.library import Library


def _remembered(lib: Library) -> dict[int, str]:
    rows = lib.db.execute(
        "SELECT photo_id, sku FROM catalog_images WHERE origin = 'confirmed'"
    ).fetchall()
    return {int(p): str(s) for p, s in rows}


def _two_photos_one_name(tmp_path: Path, library: Library, catalog_dir: Path) -> tuple[int, int]:
    """Two photos saved as IMG_0001.jpg one after the other (a camera that restarted its
    counter), confirmed as SKU-000 and SKU-001: their photo ids, older first."""
    library.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
    shot = tmp_path / "shop" / "IMG_0001.jpg"
    shot.parent.mkdir()
    photo_of(product_image(0), 0).save(shot, quality=88)
    list(library.match([shot]))
    first = library.photo_id(shot)
    library.confirm(first, "SKU-000")
    photo_of(product_image(1), 1).save(shot, quality=88)  # the new shot, same name
    list(library.match([shot]))
    second = library.photo_id(shot)
    assert second != first
    library.confirm(second, "SKU-001")
    return first, second


def test_check_is_quiet_when_a_newer_photo_was_saved_over_a_confirmed_one(
    tmp_path: Path, library: Library, catalog_dir: Path
) -> None:
    """A camera that restarts its counter saves IMG_0001.jpg again, over last week's: two
    photos, one path (photos are told apart by content). Both confirmed, by the current code,
    in a new library. Instant memory keeps one reference per path on purpose ('a newer photo
    saved over the same file name replaces the older reference'), but memory.out_of_step
    counts the older photo as 'not remembered': check notes a problem on a perfectly fine
    library, and --repair swaps the newer reference for the older one (and back, next time)."""
    _first, second = _two_photos_one_name(tmp_path, library, catalog_dir)
    assert _remembered(library) == {second: "SKU-001"}

    report = check_library(library)
    assert not [f for f in report.findings if f.area == "memory"], report.lines()
    check_library(library, repair=True)
    assert _remembered(library) == {second: "SKU-001"}  # the newer photo stays the reference


def test_undoing_the_newer_photo_hands_the_reference_back_to_the_older_one(
    tmp_path: Path, library: Library, catalog_dir: Path
) -> None:
    """The other half of one reference per path: when the newer photo's confirmation is
    undone (or changed to no match), the older photo confirmed under the same file name is
    the newest confirmed one again and is remembered at once, so check stays quiet; a
    change of the older photo's confirmation does not take the path from the newer one."""
    first, second = _two_photos_one_name(tmp_path, library, catalog_dir)

    library.confirm(first, "SKU-002")  # the older photo's answer changed
    assert _remembered(library) == {second: "SKU-001"}
    library.no_match(second)
    assert _remembered(library) == {first: "SKU-002"}
    assert not [f for f in check_library(library).findings if f.area == "memory"]
    library.undo(second)  # back to confirmed
    assert _remembered(library) == {second: "SKU-001"}
    library.undo(second)  # its confirmation undone
    assert _remembered(library) == {first: "SKU-002"}
    assert not [f for f in check_library(library).findings if f.area == "memory"]


def test_the_upgrade_withdraws_no_product_that_an_import_today_would_keep(
    tmp_path: Path, library: Library
) -> None:
    """withdraw_dropped_before_v5 says it withdraws 'as _withdraw does at such an import
    today'. A product the sheet lists without a picture on purpose (staff match it by
    their own confirmed photos: instant memory is its only reference), that a later sheet
    of the same folder no longer lists: the import today keeps it (no picture of it left
    with that import), and so did every release before v5. The catch-up withdraws it and
    deletes its remembered photos, so after the upgrade it is never suggested again."""
    import csv
    import time

    from engine.catalog_import import withdraw_dropped_before_v5

    supplier = tmp_path / "supplier"
    sheet = write_catalog(supplier, 4)
    assert sheet is not None
    (supplier / "images" / "SKU-003.jpg").unlink()  # listed without a picture, on purpose
    library.import_catalog(supplier, sheet)
    shot = tmp_path / "shop" / "own.jpg"
    shot.parent.mkdir()
    photo_of(product_image(3), 3).save(shot, quality=88)
    list(library.match([shot]))
    library.confirm(library.photo_id(shot), "SKU-003")
    assert list(_remembered(library).values()) == ["SKU-003"]

    rows = [r for r in csv.DictReader(sheet.open(encoding="utf-8")) if r["SKU"] != "SKU-003"]
    later = supplier / "sheet-later.csv"
    with later.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    time.sleep(1.1)  # imports are told apart by their start, to the second
    library.import_catalog(supplier, later)
    assert library.product("SKU-003")["withdrawn_at"] is None  # type: ignore[index]  # today

    assert withdraw_dropped_before_v5(library) == []
    assert list(_remembered(library).values()) == ["SKU-003"]


def _empty_catalog(tmp_path: Path) -> tuple[Path, Path]:
    """A supplier folder whose every picture is a 0-byte file (an unzip or download cut
    short, as the README calls an empty file) and its sheet."""
    supplier = tmp_path / "supplier"
    sheet = write_catalog(supplier, 5)
    assert sheet is not None
    for picture in (supplier / "images").iterdir():
        picture.write_bytes(b"")
    return supplier, sheet


def test_empty_pictures_are_not_called_copies_of_each_other(tmp_path: Path) -> None:
    """Five pictures cut short to 0 bytes have the same (empty) content: one is 'empty file
    (0 bytes)', the other four 'same picture as SKU-000.jpg, skipped', as if they were
    duplicates already in the catalog (the app's summary then hints 'already in the
    catalog'). The fix for twins of an unreadable picture covers damaged files only."""
    supplier, sheet = _empty_catalog(tmp_path)
    proc = cli(tmp_path / "lib", "import", str(supplier), "--sheet", str(sheet))
    said = [line for line in proc.stdout.splitlines() if "skipped " in line]
    assert said and not [line for line in said if "same picture as" in line], proc.stdout


def test_an_import_whose_pictures_are_all_empty_fails(tmp_path: Path) -> None:
    """'An import in which no picture could be read exits 1 ... so a scheduled import does
    not pass for a good one' (6566607). Pictures cut short to 0 bytes (the usual remains of
    an unzip cut short) are not counted as unreadable, so the same import of five empty
    pictures exits 0 with five products that can never be suggested, where five pictures
    cut short to 300 bytes exit 1."""
    supplier, sheet = _empty_catalog(tmp_path)
    proc = cli(tmp_path / "lib", "import", str(supplier), "--sheet", str(sheet))
    assert proc.returncode != 0, proc.stdout + proc.stderr
