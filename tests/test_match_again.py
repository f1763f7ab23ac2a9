"""Matching a photo the library already holds: what it shows and what it keeps."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from conftest import photo_of, product_image, write_photos
from engine.library import Library


def _stored(lib_dir: Path, photo_id: int) -> list[tuple[int, str, float]]:
    with sqlite3.connect(lib_dir / "shopmatch.db") as conn:
        return conn.execute(
            "SELECT rank, sku, round(similarity, 6) FROM suggestions WHERE photo_id = ? "
            "ORDER BY model_version, rank",
            [photo_id],
        ).fetchall()


def test_a_confirmed_photo_matched_again_keeps_the_suggestions_it_was_decided_on(
    tmp_path: Path, catalog_dir: Path
) -> None:
    """Matching a confirmed photo again (a script running 'shopmatch match' over the same
    inbox every day) found the photo's own remembered reference: it showed and stored its
    product at 100%, sim 1.000, over what staff had confirmed it from, and decoded and
    searched every decided photo again for nothing. It keeps its suggestions now."""
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
        (photo,) = write_photos(tmp_path / "inbox", [3])
        (first,) = lib.match([photo])
        assert first.photo_id is not None
        lib.confirm(first.photo_id, first.suggestions[0].sku)
        assert lib.status().remembered == 1
        before = _stored(tmp_path / "lib", first.photo_id)

        (again,) = lib.match([photo])
        assert again.photo_id == first.photo_id
        assert [(s.sku, s.similarity) for s in again.suggestions] == [
            (s.sku, s.similarity) for s in first.suggestions
        ]
        assert max(s.similarity for s in again.suggestions) < 0.99
        assert _stored(tmp_path / "lib", first.photo_id) == before


def test_a_decided_photo_searched_again_never_finds_itself(
    tmp_path: Path, catalog_dir: Path
) -> None:
    """More suggestions than were stored (--top 8) need a new search; the photo's own
    reference, there since its confirmation, is left out of it, with local features on or
    off, and a photo marked 'no match' is searched as before."""
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
        (photo,) = write_photos(tmp_path / "inbox", [5])
        (first,) = lib.match([photo], top_k=8)
        assert first.photo_id is not None
        lib.confirm(first.photo_id, "SKU-005")
        own = lib.db.execute(
            "SELECT id FROM catalog_images WHERE photo_id = ?", [first.photo_id]
        ).fetchone()[0]
        for local in (True, False):
            lib.local_features = local
            (again,) = lib.match([photo], top_k=8)
            assert len(again.suggestions) == 8
            assert own not in {s.image_id for s in again.suggestions}
            assert max(s.similarity for s in again.suggestions) < 0.99
            assert again.suggestions[0].sku == first.suggestions[0].sku
        lib.undo()
        lib.no_match(first.photo_id)
        (after,) = lib.match([photo], top_k=8)
        assert [s.sku for s in after.suggestions] == [s.sku for s in first.suggestions]


def test_an_undecided_photo_matched_again_sees_what_staff_confirmed_since(
    tmp_path: Path, catalog_dir: Path
) -> None:
    """Photos still to decide are searched again: a product confirmed meanwhile (instant
    memory) is offered for them, which stored suggestions would not know."""
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
        shots = []
        for take in (1, 2):  # two photos of a product the catalog pictures otherwise
            shots.append(tmp_path / f"new-line-{take}.jpg")
            photo_of(product_image(500), take).save(shots[-1])
        first, second = lib.match(shots)
        assert first.photo_id is not None and second.photo_id is not None
        assert second.suggestions[0].sku != "SKU-011"
        lib.confirm(first.photo_id, "SKU-011")
        (again,) = lib.match([shots[1]])
        assert again.suggestions[0].sku == "SKU-011"


def test_a_confirmation_outdates_the_waiting_photos_it_would_change(
    tmp_path: Path, catalog_dir: Path
) -> None:
    """The engine names the undecided photos a decision outdated, so the app searches only
    those again: after a new pack's first shot is confirmed, its second shot (the new
    reference is more alike than anything it was offered), not a photo of another product;
    after Ctrl+Z, the second shot again once it was searched with that reference (its
    suggestion rests on a reference gone). Nothing is outdated by what came before ``since``."""
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
        shots = []
        for take in (1, 2):
            shots.append(tmp_path / f"new-pack-{take}.jpg")
            photo_of(product_image(500), take).save(shots[-1])
        (other,) = write_photos(tmp_path / "inbox", [4])
        a, b, c = lib.match([*shots, other])
        assert a.photo_id and b.photo_id and c.photo_id
        waiting = [b.photo_id, c.photo_id]
        mark = lib.reference_mark()
        assert lib.outdated_suggestions(waiting, mark) == []
        lib.confirm(a.photo_id, "SKU-011")
        assert lib.outdated_suggestions(waiting, mark) == [b.photo_id]
        assert lib.outdated_suggestions(waiting, lib.reference_mark()) == []
        (again,) = lib.match([shots[1]])
        assert again.suggestions[0].sku == "SKU-011"
        mark = lib.reference_mark()
        lib.undo()
        assert lib.outdated_suggestions(waiting, mark) == [b.photo_id]
        assert lib.outdated_suggestions(waiting, mark, limit=1) == [b.photo_id]
        assert lib.outdated_suggestions([], mark) == []
