"""Instant memory, moved photos and backups put back, as a random walk over the engine found
them (review 51): each test is the shortest sequence that went wrong, on real files."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

from conftest import photo_of, product_image, write_catalog
from engine.check import check_library
from engine.library import Library
from engine.resources import bundled_model_dir


def _library(tmp_path: Path, n: int = 4) -> tuple[Library, Path]:
    sheet = write_catalog(tmp_path / "supplier", n)
    assert sheet is not None
    lib = Library(tmp_path / "lib")
    lib.local_features = False
    lib.import_catalog(tmp_path / "supplier", sheet)
    return lib, sheet


def _photo(path: Path, product: int, take: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    photo_of(product_image(product), take).save(path, quality=88)
    return path


def _same_name_confirmed(
    lib: Library, tmp_path: Path, old_sku: int, new_sku: int
) -> tuple[int | None, int | None]:
    """IMG_0001.jpg confirmed as product ``old_sku``, then a newer photo of product
    ``new_sku`` saved over that name (a camera that restarted its counter) and confirmed;
    the two photos' ids."""
    shot = tmp_path / "IMG_0001.jpg"
    ids = []
    for take, sku in enumerate((old_sku, new_sku), start=1):
        (m,) = lib.match([_photo(shot, sku, take)])
        lib.confirm(m.photo_id, f"SKU-{sku:03d}")
        ids.append(m.photo_id)
    return ids[0], ids[1]


def _stored_ids(lib: Library) -> list[int]:
    rows = lib.db.execute(
        "SELECT image_id FROM embeddings WHERE model_version = ?", [lib.model_version]
    )
    return sorted(int(r[0]) for r in rows)


def test_a_newer_photo_under_an_old_file_name_takes_the_old_reference_out_of_the_index(
    tmp_path: Path,
) -> None:
    """A camera that restarts its counter saves a new photo as IMG_0001.jpg over a confirmed
    one. Confirming the new photo replaces the file name's one reference (instant memory):
    the old reference's row and vector leave the database, so its key must leave the vector
    index too. It stayed there: ``status`` counted it, search results held a key of no
    product, and ``check`` found the saved index out of date."""
    lib, _sheet = _library(tmp_path)
    with lib:
        _same_name_confirmed(lib, tmp_path, 1, 2)
        assert sorted(int(k) for k in lib.index.keys()) == _stored_ids(lib)  # noqa: SIM118 (a VectorIndex, not a dict)
        assert lib.status().index_size == len(_stored_ids(lib))
        lib.flush()
        assert [f.line() for f in check_library(lib).findings] == []


def test_a_photo_read_back_after_a_restore_is_not_offered_a_product_the_backup_lacks(
    tmp_path: Path,
) -> None:
    """A backup is put back, and a photo decided after it is read back from the replaced
    database with its suggestions. A product imported after the backup is not in the library
    any more; it must not be the photo's top suggestion: a default confirm (Enter) then
    failed with "unknown SKU ... not in the catalog", and an export with undecided photos
    listed it as 'suggested' with no name."""
    lib, sheet = _library(tmp_path, 3)
    with lib:
        lib.take_backup()
        write_catalog(tmp_path / "supplier", 4)  # SKU-003 imported after the backup
        lib.import_catalog(tmp_path / "supplier", sheet)
        shot = _photo(tmp_path / "IMG_0001.jpg", 3, 1)
        (m,) = lib.match([shot])
        assert m.suggestions[0].sku == "SKU-003"
        lib.reject(m.photo_id, "SKU-000")  # a decision: the photo is read back
        lib.restore_backup()
        pid = lib.photo_id(shot)
        assert lib.product("SKU-003") is None
        offered = [s.sku for s in lib.suggestions(pid)]
        assert all(lib.product(sku) is not None for sku in offered), offered
        assert lib.confirm(pid).sku in offered


def test_a_withdrawn_newer_photo_hands_its_file_name_back_to_the_older_confirmed_one(
    tmp_path: Path,
) -> None:
    """One reference per file name: the newest confirmed photo of IMG_0001.jpg is remembered,
    and when its confirmation goes the older photo of that name takes it back
    (``memory.hand_down``, as ``memory.out_of_step`` expects). The supplier dropping the
    newer photo's product withdrew its reference without handing it down, so the older
    confirmed photo was remembered by nothing and ``check`` reported instant memory out of
    step."""
    lib, sheet = _library(tmp_path)
    with lib:
        old, _new = _same_name_confirmed(lib, tmp_path, 1, 0)
        with open(sheet, encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        with open(sheet, "w", newline="", encoding="utf-8") as fh:
            out = csv.DictWriter(fh, fieldnames=list(rows[0]))
            out.writeheader()
            out.writerows(r for r in rows if r["SKU"] != "SKU-000")
        (tmp_path / "supplier" / "images" / "SKU-000.jpg").unlink()
        lib.import_catalog(tmp_path / "supplier", sheet)
        assert lib.product("SKU-000")["withdrawn_at"]  # type: ignore[index]
        remembered = lib.db.execute(
            "SELECT photo_id, sku FROM catalog_images WHERE origin = 'confirmed'"
        ).fetchall()
        assert remembered == [(old, "SKU-001")]
        assert [f.line() for f in check_library(lib).findings if f.area == "memory"] == []


def test_instant_memory_turned_off_after_a_backup_stays_off_when_it_is_put_back(
    tmp_path: Path,
) -> None:
    """Settings changed after a backup are read back from the replaced database with the
    decisions (``salvage._settings``: "the backup would silently turn them back"). With no
    decision made since the backup they were not: instant memory, turned off after it,
    came back on with every confirmed photo a reference again."""
    lib, _sheet = _library(tmp_path)
    with lib:
        (m,) = lib.match([_photo(tmp_path / "IMG_0001.jpg", 1, 1)])
        lib.confirm(m.photo_id, "SKU-001")
        lib.take_backup()
        lib.instant_memory = False
        lib.restore_backup()
        assert lib.instant_memory is False
        assert lib.status().remembered == 0


def test_a_photo_matched_before_a_model_switch_follows_its_renamed_folder(
    tmp_path: Path,
) -> None:
    """A photo whose delivery folder was renamed takes its new path when matched again, so
    that its folder's export finds it (README, Inventory CSV); a copy elsewhere is said to
    be one (``duplicate_of``). After a switch to another model, a photo matched before it
    has no vector of the new model and went through the new-photo path: its path stayed the
    old folder's, and a copy was not said to be one."""
    lib, _sheet = _library(tmp_path)
    with lib:
        shot = _photo(tmp_path / "delivery" / "IMG_0001.jpg", 1, 1)
        kept = _photo(tmp_path / "IMG_0002.jpg", 2, 2)
        first = {m.path: m.photo_id for m in lib.match([shot, kept])}
        other = bundled_model_dir().parent / "mobilenet-v2"
        lib.activate_model(lib.install_model(other).version)
        (tmp_path / "delivery").rename(tmp_path / "delivery (Tuesday)")
        moved = tmp_path / "delivery (Tuesday)" / "IMG_0001.jpg"
        copy = tmp_path / "copy of IMG_0002.jpg"
        shutil.copyfile(kept, copy)
        again, twin = lib.match([moved, copy])
        assert again.photo_id == first[shot] and again.duplicate_of is None
        path = lib.db.execute("SELECT path FROM photos WHERE id = ?", [first[shot]]).fetchone()
        assert path[0] == str(moved)
        assert twin.photo_id == first[kept] and twin.duplicate_of == str(kept)


def test_a_moved_photos_reference_follows_it_so_a_newer_photo_of_that_name_replaces_it(
    tmp_path: Path,
) -> None:
    """One reference per file name, the newest confirmed photo's (``memory.out_of_step``).
    A confirmed photo whose folder was renamed takes its new path when matched again, but
    its reference kept the old one; a newer photo later saved under the same name in that
    folder and confirmed then left both remembered, and ``check`` reported instant memory
    out of step."""
    lib, _sheet = _library(tmp_path)
    with lib:
        shot = _photo(tmp_path / "a" / "IMG_0001.jpg", 1, 1)
        (old,) = lib.match([shot])
        lib.confirm(old.photo_id, "SKU-001")
        (tmp_path / "a").rename(tmp_path / "b")
        moved = tmp_path / "b" / "IMG_0001.jpg"
        list(lib.match([moved]))  # the renamed folder is followed
        (new,) = lib.match([_photo(moved, 2, 2)])  # the camera restarted its counter
        lib.confirm(new.photo_id, "SKU-002")
        remembered = lib.db.execute(
            "SELECT photo_id, sku FROM catalog_images WHERE origin = 'confirmed'"
        ).fetchall()
        assert remembered == [(new.photo_id, "SKU-002")]
        assert [f.line() for f in check_library(lib).findings if f.area == "memory"] == []
