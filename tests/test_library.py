"""End-to-end engine tests on real files: SQLite, usearch index, ONNX session, images."""

from __future__ import annotations

import csv
import os
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from conftest import kill_cli_midway, photo_of, product_image, write_catalog, write_photos
from engine.catalog_import import RemovalsNeedConsent
from engine.decisions import DecisionError
from engine.index import VectorIndex
from engine.library import Library, LibraryLockedError
from engine.progress import CancelToken
from engine.training.data import collect


def test_import_match_confirm_undo_export_round_trip(tmp_path: Path, catalog_dir: Path) -> None:
    photos = write_photos(tmp_path / "photos", [1, 4, 7, 10])
    with Library(tmp_path / "lib") as lib:
        report = lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
        assert (report.added, report.products, report.skipped) == (12, 12, [])
        product = lib.product("SKU-004")
        assert product is not None and product["name"] == "Product 4"
        assert product["price"] == 4.5 and product["supplier"] == "Acme"
        assert '"Colour": "c4"' in str(product["attributes"])

        results = list(lib.match(photos, top_k=3))
        assert [r.error for r in results] == [None] * 4
        top1 = [r.suggestions[0].sku for r in results]
        assert top1 == ["SKU-001", "SKU-004", "SKU-007", "SKU-010"]
        for r in results:
            scores = [s.score for s in r.suggestions]
            assert scores == sorted(scores, reverse=True) and 0 < sum(scores) <= 1.0 + 1e-6
            assert [s.rank for s in r.suggestions] == [1, 2, 3]

        first, second = results[0].photo_id, results[1].photo_id
        assert first is not None and second is not None
        d = lib.confirm(first)  # top suggestion
        assert (d.sku, d.rank) == ("SKU-001", 1)
        lib.confirm(second, "SKU-005")  # staff picked another product (not suggested)
        lib.no_match(results[2].photo_id)  # type: ignore[arg-type]
        assert lib.photo_state(second).status == "confirmed"
        undone = lib.undo()
        assert undone is not None and undone.action == "no_match"
        assert lib.photo_state(results[2].photo_id).status == "suggested"  # type: ignore[arg-type]
        lib.undo(second)
        assert lib.photo_state(second).status == "suggested"
        lib.confirm(second, "SKU-004")

        with pytest.raises(DecisionError, match="unknown SKU"):
            lib.confirm(first, "NOPE")

        out = tmp_path / "inventory.csv"
        assert lib.export_csv(out) == 2
        raw = out.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
        rows = list(csv.DictReader(raw.decode("utf-8-sig").splitlines()))
        assert [(r["sku"], r["rank"], r["status"]) for r in rows] == [
            ("SKU-001", "1", "confirmed"),
            ("SKU-004", "1", "confirmed"),
        ]
        assert rows[0]["name"] == "Product 1" and rows[0]["model_version"]
        assert lib.export_csv(out, per="sku") == 2
        per_sku = list(csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines()))
        assert {r["sku"]: r["quantity"] for r in per_sku} == {"SKU-001": "1", "SKU-004": "1"}
        assert lib.export_csv(out, include_undecided=True) == 4

        # Decisions are append-only: 5 decisions + 2 undo rows, nothing rewritten.
        actions = [r[0] for r in lib.db.execute("SELECT action FROM decisions ORDER BY id")]
        assert actions == ["confirm", "confirm", "no_match", "undo", "undo", "confirm"]
        st = lib.status()
        assert (st.products, st.catalog_images, st.photos, st.confirmed) == (12, 12, 4, 2)


def test_export_neutralises_formula_text(tmp_path: Path, library: Library) -> None:
    folder = tmp_path / "evil"
    (folder).mkdir()
    product_image(3).save(folder / "x.png")
    (folder / "sheet.csv").write_text(
        "sku,name,image\n=HYPERLINK(1),=cmd|' /C calc'!A0,x.png\n", encoding="utf-8"
    )
    library.import_catalog(folder, folder / "sheet.csv")
    photo = tmp_path / "p.jpg"
    photo_of(product_image(3), 3).save(photo)
    (res,) = library.match([photo])
    library.confirm(res.photo_id)  # type: ignore[arg-type]
    out = tmp_path / "out.csv"
    library.export_csv(out)
    row = next(csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines()))
    assert row["sku"] == "'=HYPERLINK(1)" and row["name"].startswith("'=cmd")
    # The decision time in the computer's clock, in the form spreadsheets read as a date.
    stored = library.photo_state(res.photo_id).decision.decided_at  # type: ignore[arg-type,union-attr]
    local = datetime.fromisoformat(stored).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    assert row["decided_at"] == local


def test_export_problems_name_the_export_not_the_library(
    tmp_path: Path, library: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only export folder used to read 'the library folder is read-only' with the
    temporary file's name."""
    import errno

    from engine import export_csv

    with pytest.raises(ValueError, match=r"^cannot write .*: it is a folder"):
        library.export_csv(tmp_path)
    with pytest.raises(ValueError, match=r"is a CSV file, .*; name it stock\.csv$"):
        library.export_csv(tmp_path / "stock.xlsx")  # Excel would refuse to open it
    # A typo must not replace the library's own database, nor a photo or a sheet.
    database = library.path / "shopmatch.db"
    before = database.stat().st_size
    with pytest.raises(ValueError, match=r"it is inside the library folder"):
        library.export_csv(database)
    assert database.stat().st_size == before
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8 a photo")
    with pytest.raises(ValueError, match=r"a file of another kind is there and is not replaced"):
        library.export_csv(tmp_path / "photo.jpg")
    assert (tmp_path / "photo.jpg").read_bytes() == b"\xff\xd8 a photo"
    (tmp_path / "old.csv").write_text("an earlier export")
    assert library.export_csv(tmp_path / "old.csv") == 0  # an export replaces an export

    def read_only(target: Path, data: bytes) -> None:  # what a write-protected USB stick does
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(target.parent / ".x.tmp"))

    monkeypatch.setattr(export_csv, "atomic_write_bytes", read_only)
    (tmp_path / "stick").mkdir()  # a missing folder is refused before any write
    with pytest.raises(ValueError) as info:
        library.export_csv(tmp_path / "stick" / "out.csv")
    assert str(info.value) == (
        f"cannot write {tmp_path / 'stick' / 'out.csv'}: its folder is on a read-only disk"
    )


def test_a_moved_catalog_folder_is_followed_not_skipped(tmp_path: Path) -> None:
    """The supplier's folder moved: every picture used to be 'skipped, same picture as'
    itself; now the rows follow the files and keep their vectors, and later imports of the
    new folder are incremental as before."""
    old = tmp_path / "supplier-2025"
    write_catalog(old, 5)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(old, old / "sheet.csv")
        vectors = lib.db.execute("SELECT count(*) FROM embeddings").fetchone()[0]
        new = old.rename(tmp_path / "Supplier catalog")
        rep = lib.import_catalog(new, new / "sheet.csv")
        assert (rep.added, rep.unchanged, rep.skipped) == (0, 5, [])
        paths = [Path(r[0]) for r in lib.db.execute("SELECT path FROM catalog_images")]
        assert all(p.is_relative_to(new) and p.exists() for p in paths)
        assert lib.db.execute("SELECT count(*) FROM embeddings").fetchone()[0] == vectors
        (new / "images" / "SKU-004.jpg").unlink()  # removal still works from the new folder
        assert lib.import_catalog(new, new / "sheet.csv").removed == 1


def test_an_updated_catalog_unpacked_beside_the_old_one_replaces_it_when_told(
    tmp_path: Path,
) -> None:
    """The new catalog in a new folder, the old one still on disk: the import cannot tell
    an older copy of this catalog from another supplier sharing stock photos, so it leaves
    both and says so; told with ``replaces``, what the new sheet dropped or pictured anew
    leaves (before: a dropped product went on being suggested), and a cancelled or killed
    run is finished by the next one."""
    old, new, other = tmp_path / "cat-2025", tmp_path / "cat-2026", tmp_path / "wholesaler"
    write_catalog(old, 6)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(old, old / "sheet.csv")
        vectors = lib.db.execute("SELECT count(*) FROM embeddings").fetchone()[0]
        # Another supplier with one stock photo in common: nothing of the first one changes.
        write_catalog(other, 1, start=7)
        shutil.copy(old / "images" / "SKU-001.jpg", other / "images" / "SKU-001.jpg")
        with open(other / "sheet.csv", "a", encoding="utf-8") as fh:
            fh.write("SKU-001,Product 1,Dairy,Acme,1.50,images/SKU-001.jpg,c1\n")
        rep = lib.import_catalog(other, other / "sheet.csv")
        assert (rep.added, rep.removed, rep.copy_of) == (1, 0, str(old))
        assert rep.skipped == [
            (str(other / "images" / "SKU-001.jpg"), "same picture as SKU-001.jpg, skipped")
        ]
        assert rep.notes == [
            (
                str(old),
                "1 picture of this catalog is also imported from there, for the same "
                "products, and stays there; if this folder is a newer copy of that catalog, "
                f"import it again with --replaces {old}",
            )
        ]
        # The update: SKU-004 dropped, SKU-002 pictured anew, SKU-005 listed without its file.
        shutil.copytree(old, new)
        (new / "images" / "SKU-004.jpg").unlink()
        (new / "images" / "SKU-005.jpg").unlink()
        product_image(42).save(new / "images" / "SKU-002.jpg", quality=92)
        lines = (new / "sheet.csv").read_text(encoding="utf-8").splitlines()
        (new / "sheet.csv").write_text(
            "\n".join(x for x in lines if not x.startswith("SKU-004,")) + "\n", encoding="utf-8"
        )
        plain = lib.import_catalog(new, new / "sheet.csv")  # not told: both stay
        assert (plain.added, plain.removed, plain.copy_of) == (1, 0, str(old))
        assert not lib.product("SKU-004")["withdrawn_at"]  # type: ignore[index]
        with pytest.raises(ValueError, match="no catalog pictures were imported from"):
            lib.import_catalog(new, new / "sheet.csv", replaces=tmp_path / "nowhere")
        token = CancelToken()
        token.cancel()  # cancelled at once: the next run must still finish the replacement
        assert lib.import_catalog(new, new / "sheet.csv", replaces=old, cancel=token).cancelled
        rep = lib.import_catalog(new, new / "sheet.csv")
        assert (rep.added, rep.unchanged, rep.removed) == (0, 4, 3)
        assert [r for _f, r in rep.skipped] == ["file not found (a picture of SKU-005)"]
        rows = lib.db.execute(
            "SELECT sku, source_root FROM catalog_images WHERE origin = 'catalog' ORDER BY sku"
        ).fetchall()
        assert rows == [
            ("SKU-000", str(new)),
            ("SKU-001", str(new)),
            ("SKU-002", str(new)),
            ("SKU-003", str(new)),
            ("SKU-007", str(other)),
        ]
        assert lib.product("SKU-004")["withdrawn_at"]  # type: ignore[index]
        assert lib.db.execute("SELECT count(*) FROM embeddings").fetchone()[0] == vectors - 1
        assert len(lib.index) == 5
        again = lib.import_catalog(new, new / "sheet.csv")
        assert (again.added, again.unchanged, again.removed, again.copy_of) == (0, 4, 0, None)


def test_pictures_are_found_as_a_person_would_find_them(tmp_path: Path) -> None:
    """Each picture here went to the wrong product or was "not found": MILK took
    MILK_CHOCOLATE's picture (the "SKU_2.jpg" rule); a Mac zip's "é" (two characters), a
    file name in other case and the supplier's own Windows path found nothing; a folder
    named in a cell was "not found"; and without a sheet Dairy/1.jpg and Bakery/1.jpg
    became one product."""
    folder = tmp_path / "cat"
    (folder / "pics").mkdir(parents=True)
    names = ["milk.jpg", "milk_2.jpg", "milk_chocolate.jpg", "cre\u0300me.jpg", "Tea.JPG", "a.jpg"]
    for i, name in enumerate(names):
        product_image(i).save(folder / "pics" / name)
    (folder / "box.jpg").mkdir()
    (folder / "sheet.csv").write_text(
        "sku,name\nMILK,Milk\nMILK_CHOCOLATE,Chocolate milk\n", encoding="utf-8"
    )
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(folder, folder / "sheet.csv")
        pictures = lib.db.execute("SELECT sku, path FROM catalog_images ORDER BY path").fetchall()
        assert [(sku, Path(path).name) for sku, path in pictures] == [
            ("MILK", "milk.jpg"),
            ("MILK", "milk_2.jpg"),
            ("MILK_CHOCOLATE", "milk_chocolate.jpg"),
        ]
        (folder / "sheet.csv").write_text(
            "sku,name,image\nC,Crème,pics/Cr\u00e8me.jpg\nT,Tea,pics/tea.jpg\n"
            "A,Apple,C:\\Users\\Lieferant\\Bilder\\a.jpg\nB,Box,box.jpg\n",
            encoding="utf-8",
        )
        rep = lib.import_catalog(folder, folder / "sheet.csv", removals="remove")
        found = dict(lib.db.execute("SELECT sku, path FROM catalog_images").fetchall())
        assert {sku: Path(path).name for sku, path in found.items()} == {
            "C": "cre\u0300me.jpg",
            "T": "Tea.JPG",
            "A": "a.jpg",
        }
        assert rep.skipped == [(str(folder / "box.jpg"), "a folder, not a picture (for SKU B)")]

    shelves = tmp_path / "shelves"
    for i, name in enumerate(["Dairy/1.jpg", "Bakery/1.jpg", "Fruit/2.jpg"]):
        (shelves / name).parent.mkdir(parents=True, exist_ok=True)
        product_image(i).save(shelves / name)
    with Library(tmp_path / "lib2") as lib:
        rep = lib.import_catalog(shelves)
        assert sorted(str(p["sku"]) for p in lib.products()) == ["1", "2"]  # as always
        assert rep.notes == [
            (
                "1",
                "pictures named 1 in 2 folders (Bakery, Dairy) are all pictures of product 1; "
                "if they show different products, rename them or import with a sheet",
            )
        ]
    # The supplier's own paths to those two: the folders named before "1.jpg" pick each out.
    (shelves / "sheet.csv").write_text(
        "sku,image\nM,C:\\Lieferant\\Dairy\\1.jpg\nB,C:\\Lieferant\\Bakery\\1.jpg\n"
        "X,C:\\Lieferant\\Frozen\\1.jpg\n"
    )
    with Library(tmp_path / "lib3") as lib:
        rep = lib.import_catalog(shelves, shelves / "sheet.csv")
        found = dict(lib.db.execute("SELECT sku, path FROM catalog_images").fetchall())
        assert found == {
            "M": str(shelves / "Dairy" / "1.jpg"),
            "B": str(shelves / "Bakery" / "1.jpg"),
        }
        assert rep.skipped == [("C:\\Lieferant\\Frozen\\1.jpg", "file not found (a picture of X)")]


def test_an_import_that_would_empty_most_of_a_folder_asks_first(
    tmp_path: Path, catalog_dir: Path
) -> None:
    """A sheet of two new products, imported from the catalog's folder, took the other ten
    products' pictures out of the catalog and withdrew them, with a note afterwards."""
    additions = catalog_dir / "new-products.csv"
    additions.write_text(
        "SKU,Product name,Image\nSKU-000,Product 0,images/SKU-000.jpg\n"
        "SKU-001,Product 1,images/SKU-001.jpg\n",
        encoding="utf-8",
    )
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
        before = lib.db.execute("SELECT count(*) FROM imports").fetchone()[0]
        with pytest.raises(RemovalsNeedConsent) as info:
            lib.import_catalog(catalog_dir, additions)
        assert (info.value.leaving, info.value.held, len(info.value.skus)) == (10, 12, 10)
        assert "nothing was changed" in str(info.value)
        assert lib.status().catalog_images == 12
        assert lib.db.execute("SELECT count(*) FROM imports").fetchone()[0] == before
        rep = lib.import_catalog(catalog_dir, additions, removals="keep")
        assert (rep.removed, rep.unchanged, rep.notes) == (0, 2, [])
        assert lib.status().catalog_images == 12 and len(lib.index) == 12
        rep = lib.import_catalog(catalog_dir, additions, removals="remove")
        assert rep.removed == 10 and len(lib.index) == 2
        # A few pictures leaving is everyday upkeep: never asked about.
        lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
        for name in ("SKU-003.jpg", "SKU-004.jpg"):
            (catalog_dir / "images" / name).unlink()
        assert lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv").removed == 2
        # Pictures moved to a renamed sub-folder are followed, not counted as leaving...
        (catalog_dir / "images").rename(catalog_dir / "Bilder")
        text = (catalog_dir / "sheet.csv").read_text(encoding="utf-8")
        (catalog_dir / "sheet.csv").write_text(text.replace("images/", "Bilder/"), "utf-8")
        assert lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv").removed == 0
        # ... while empty files (an unzip cut short) are.
        for picture in sorted((catalog_dir / "Bilder").glob("*.jpg"))[:8]:
            picture.write_bytes(b"")
        with pytest.raises(RemovalsNeedConsent):
            lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
        # Exports follow the first supplier sheet's separator (a semicolon sheet means
        # decimal commas); a later supplier's sheet does not change the shop's Excel.
        assert lib.setting("export_separator", "") == "comma"
        semi = catalog_dir / "semi.csv"
        semi.write_text(additions.read_text(encoding="utf-8").replace(",", ";"), "utf-8")
        lib.import_catalog(catalog_dir, semi, removals="keep")
        assert lib.setting("export_separator", "") == "comma"
    with Library(tmp_path / "lib-semi") as lib:
        lib.import_catalog(catalog_dir, semi)
        lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv", removals="keep")
        assert lib.setting("export_separator", "") == "semicolon"


def test_a_picture_renamed_in_the_sheet_keeps_its_product(tmp_path: Path) -> None:
    """The sheet now names a_v2.jpg, a copy of a.jpg, which stays in the folder: a_v2 was
    skipped as "same picture as a.jpg" and a.jpg then removed, leaving the product with no
    picture at all."""
    folder = tmp_path / "cat"
    write_catalog(folder, 2, sheet=False)
    shutil.copy(folder / "images" / "SKU-000.jpg", folder / "images" / "SKU-000-v2.jpg")
    sheet = folder / "sheet.csv"
    sheet.write_text("sku,image\nA,images/SKU-000.jpg\nB,images/SKU-001.jpg\n")
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(folder, sheet)
        sheet.write_text("sku,image\nA,images/SKU-000-v2.jpg\nB,images/SKU-001.jpg\n")
        rep = lib.import_catalog(folder, sheet)
        assert (rep.added, rep.unchanged, rep.removed, rep.skipped) == (0, 2, 0, [])
        (path,) = lib.db.execute("SELECT path FROM catalog_images WHERE sku = 'A'").fetchone()
        assert Path(path).name == "SKU-000-v2.jpg" and len(lib.index) == 2
        # A dropped product's picture, its file left, copied for a new product: the new one
        # gets a picture of its own and the dropped one leaves (it was handed over instead).
        shutil.copy(folder / "images" / "SKU-001.jpg", folder / "images" / "new-1.jpg")
        sheet.write_text("sku,image\nA,images/SKU-000-v2.jpg\nN,images/new-1.jpg\n")
        rep = lib.import_catalog(folder, sheet)
        assert (rep.added, rep.removed, rep.skipped) == (1, 1, [])
        assert lib.product("B")["withdrawn_at"]  # type: ignore[index]
        # Without an image column: MILK_CHOCOLATE dropped, its file left, is not MILK's.
        for i, name in enumerate(["milk.jpg", "milk_chocolate.jpg"]):
            product_image(20 + i).save(folder / "images" / name)
        sheet.write_text("sku\nMILK\nMILK_CHOCOLATE\n")
        lib.import_catalog(folder, sheet, removals="remove")
        sheet.write_text("sku\nMILK\n")
        lib.import_catalog(folder, sheet)
        pictures = lib.db.execute("SELECT sku FROM catalog_images ORDER BY sku").fetchall()
        assert pictures == [("MILK",)]


def test_reimport_is_incremental(tmp_path: Path, catalog_dir: Path) -> None:
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
        again = lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
        assert (again.added, again.updated, again.unchanged, again.removed) == (0, 0, 12, 0)

        # change one image, remove one, add one (+ a duplicate of an existing picture)
        img_dir = catalog_dir / "images"
        product_image(99).save(img_dir / "SKU-002.jpg", quality=92)
        (img_dir / "SKU-003.jpg").unlink()
        write_catalog(catalog_dir, 1, start=12, sheet=False)
        shutil.copy(img_dir / "SKU-005.jpg", img_dir / "SKU-005-copy.jpg")
        lines = (catalog_dir / "sheet.csv").read_text(encoding="utf-8").splitlines()
        lines.append("SKU-012,Product 12,Dairy,Acme,1.00,images/SKU-012.jpg,c12")
        lines.append("SKU-005,Product 5,Dairy,Acme,5.50,images/SKU-005-copy.jpg,c5")
        (catalog_dir / "sheet.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        old_vec = lib.db.execute(
            "SELECT vector FROM embeddings e JOIN catalog_images i ON i.id = e.image_id "
            "WHERE i.sku = 'SKU-002'"
        ).fetchone()[0]

        rep = lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
        assert (rep.added, rep.updated, rep.removed) == (1, 1, 1)
        assert rep.unchanged == 10
        reasons = dict(rep.skipped)
        assert any("file not found" in r for r in reasons.values())  # SKU-003's image
        assert any("same picture as SKU-005.jpg" in r for r in reasons.values())
        new_vec = lib.db.execute(
            "SELECT vector FROM embeddings e JOIN catalog_images i ON i.id = e.image_id "
            "WHERE i.sku = 'SKU-002'"
        ).fetchone()[0]
        assert new_vec != old_vec
        n_emb = lib.db.execute("SELECT count(*) FROM embeddings").fetchone()[0]
        assert n_emb == 12 == len(lib.index)
        keys = set(lib.index.keys().tolist())
        ids = {r[0] for r in lib.db.execute("SELECT id FROM catalog_images")}
        assert keys == ids


def test_one_picture_listed_for_two_products_stays_with_the_first(tmp_path: Path) -> None:
    """A shared placeholder picture: the second listing counted as a duplicate of the file
    itself and deleted the first product's picture, at every import."""
    folder = tmp_path / "cat"
    write_catalog(folder, 2, sheet=False)
    (folder / "sheet.csv").write_text(
        "sku,name,image\nK1,Kiwi,images/SKU-000.jpg\nK2,Kiwi organic,images/SKU-000.jpg\n"
        "L1,Lemon,images/SKU-001.jpg;images/SKU-001.jpg\n",
        encoding="utf-8",
    )
    with Library(tmp_path / "lib") as lib:
        for _ in range(2):
            rep = lib.import_catalog(folder, folder / "sheet.csv")
            assert rep.removed == 0 and rep.added + rep.unchanged == 2
            assert not rep.skipped  # the same file twice for one product is no problem
            assert rep.notes[0][1] == (
                "also listed for SKU K2; one picture file serves one product, so it stays "
                "with SKU K1"
            )
            assert rep.notes[1][1] == (
                "1 product without a picture (K2): never suggested until one is imported"
            )
            skus = [r[0] for r in lib.db.execute("SELECT sku FROM catalog_images ORDER BY sku")]
            assert skus == ["K1", "L1"] and len(lib.index) == 2
        # Another supplier's sheet is not told about this one's products (K2 has no picture
        # and is not in it, but no picture of it left with this import).
        other = tmp_path / "other"
        write_catalog(other, 1, start=5, sheet=False)
        (other / "sheet.csv").write_text("sku,image\nM1,images/SKU-005.jpg\n", encoding="utf-8")
        assert lib.import_catalog(other, other / "sheet.csv").notes == []


def test_reimport_without_the_sheet_keeps_the_sheets_products(
    tmp_path: Path, catalog_dir: Path
) -> None:
    """Importing the folder again without its sheet (the app's dialog left it blank) failed
    on a foreign key: each picture was moved to a product named after its file."""
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
        write_catalog(catalog_dir, 1, start=12, sheet=False)  # one new picture, no sheet row
        rep = lib.import_catalog(catalog_dir)
        assert (rep.added, rep.unchanged, rep.removed, rep.products) == (1, 12, 0, 13)
        # A product the updated sheet no longer lists: its picture goes, the product stays
        # for its decisions, and the import says so.
        lines = (catalog_dir / "sheet.csv").read_text(encoding="utf-8").splitlines()
        (catalog_dir / "sheet.csv").write_text(
            "\n".join(x for x in lines if not x.startswith("SKU-007,")) + "\n", encoding="utf-8"
        )
        rep = lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
        assert rep.removed == 2 and lib.product("SKU-007") is not None  # (and SKU-012)
        assert rep.notes == [
            (
                "sheet.csv",
                "2 products in the library but not in this sheet (SKU-007, SKU-012): no "
                "longer suggested; kept for the decisions that name them",
            )
        ]
        assert lib.product("SKU-003")["name"] == "Product 3"  # type: ignore[index]
        assert not rep.skipped


def test_a_product_the_sheet_drops_is_no_longer_suggested_even_from_memory(
    tmp_path: Path, catalog_dir: Path
) -> None:
    """Its picture went, but the photos confirmed as it stayed references: it went on being
    suggested at 100%, and the import's note that said otherwise was left out. Photos matched
    before kept it first in their stored suggestions: a default confirm, 'Accept confident'
    and export --all picked it."""
    sheet = catalog_dir / "sheet.csv"
    lines = sheet.read_text(encoding="utf-8").splitlines()
    (photo,) = write_photos(tmp_path / "p", [7])
    waiting = tmp_path / "p" / "waiting.jpg"
    photo_of(product_image(7), 3).save(waiting)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(catalog_dir, sheet)
        m, w = lib.match([photo, waiting])
        assert lib.suggestions(w.photo_id)[0].sku == "SKU-007"  # type: ignore[arg-type]
        lib.confirm(m.photo_id, "SKU-007")  # instant memory: the photo is a reference now
        sheet.write_text(
            "\n".join(x for x in lines if not x.startswith("SKU-007,")) + "\n", encoding="utf-8"
        )
        (catalog_dir / "images" / "SKU-007.jpg").unlink()
        rep = lib.import_catalog(catalog_dir, sheet)
        assert any("not in this sheet (SKU-007)" in note for _where, note in rep.notes)
        stored = [x.sku for x in lib.suggestions(w.photo_id)]  # type: ignore[arg-type]
        assert "SKU-007" not in stored and stored
        assert lib.confirm(w.photo_id).sku == stored[0]  # type: ignore[arg-type]
        lib.undo()  # (that photo of SKU-007 would otherwise be remembered as another product)
        # Another shot of it, still to decide: the confirmed photo no longer serves SKU-007.
        shot = tmp_path / "p" / "another.jpg"
        photo_of(product_image(7), 5).save(shot)
        (again,) = lib.match([shot])
        assert "SKU-007" not in [s.sku for s in again.suggestions]
        assert lib.photo_state(m.photo_id).decision.sku == "SKU-007"  # the decision stays
        lib.instant_memory = False
        lib.instant_memory = True  # re-syncing memory does not bring it back either
        assert "SKU-007" not in [s.sku for s in next(iter(lib.match([shot]))).suggestions]
        assert "SKU-007" not in collect(lib).skus  # nor learnt: it can never be suggested
        # Listed again (without a picture): the remembered photo serves it once more.
        sheet.write_text("\n".join(lines) + "\n", encoding="utf-8")
        lib.import_catalog(catalog_dir, sheet)
        assert next(iter(lib.match([shot]))).suggestions[0].sku == "SKU-007"
        assert "SKU-007" in [x.sku for x in collect(lib).photos]  # learnt again too


def test_a_products_newest_confirmed_photo_is_the_one_confirmed_last(
    tmp_path: Path, catalog_dir: Path
) -> None:
    """The Catalog tab's 60 'newest' went by each photo's first decision: a photo confirmed
    again today counted as the oldest and was cut."""
    from engine.overview import newest_confirmed_photos

    photos = write_photos(tmp_path / "p", [3, 4])
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
        first, second = (m.photo_id for m in lib.match(photos))
        for photo_id, sku in ((first, "SKU-003"), (second, "SKU-003"), (first, "SKU-005")):
            lib.confirm(photo_id, sku)  # type: ignore[arg-type]
        lib.confirm(first, "SKU-003")  # type: ignore[arg-type]
        (newest,), total = newest_confirmed_photos(lib, "SKU-003", limit=1)
        assert (newest.id, total) == (first, 2)


def test_import_without_sheet_uses_file_stems(tmp_path: Path) -> None:
    folder = tmp_path / "cat"
    write_catalog(folder, 4, sheet=False)
    (folder / "images" / "notes.txt").write_text("not an image")
    (folder / "images" / "broken.jpg").write_bytes(b"")
    with Library(tmp_path / "lib") as lib:
        rep = lib.import_catalog(folder)
        assert rep.added == 4
        assert rep.skipped == [
            (str((folder / "images" / "broken.jpg").resolve()), "empty file (0 bytes)")
        ]
        # No product is left behind for the unreadable file: it could never be suggested.
        assert sorted(p["sku"] for p in lib.products()) == [
            "SKU-000",
            "SKU-001",
            "SKU-002",
            "SKU-003",
        ]
        assert rep.products == 4
        # Emptied (or mistyped to a folder of documents): refused, and nothing is removed.
        for image in (folder / "images").glob("*.jpg"):
            image.unlink()
        with pytest.raises(ValueError, match="no pictures found in"):
            lib.import_catalog(folder)
        assert lib.status().catalog_images == 4


def test_filters_restrict_suggestions(tmp_path: Path, catalog_dir: Path) -> None:
    photo = write_photos(tmp_path / "p", [4])
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
        (res,) = lib.match(photo, top_k=20, category="Dairy")
        assert res.suggestions and all(s.category == "Dairy" for s in res.suggestions)
        assert "SKU-004" not in [s.sku for s in res.suggestions]  # 4 is Produce
        (res,) = lib.match(photo, top_k=20, supplier="Bolt")
        assert {s.supplier for s in res.suggestions} == {"Bolt"}


def test_duplicate_and_bad_photos(tmp_path: Path, library: Library, catalog_dir: Path) -> None:
    library.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
    (photo,) = write_photos(tmp_path / "p", [7])
    twin = tmp_path / "p" / "same.jpg"
    shutil.copy(photo, twin)
    bad = tmp_path / "p" / "zero.jpg"
    bad.write_bytes(b"")
    results = {r.path.name: r for r in library.match([tmp_path / "p"])}
    assert results["zero.jpg"].error == "empty file (0 bytes)"
    a, b = results["photo-of-007.jpg"], results["same.jpg"]
    assert a.photo_id == b.photo_id and (a.duplicate_of or b.duplicate_of)
    assert library.db.execute("SELECT count(*) FROM photos").fetchone()[0] == 1
    # matching the same photo again reuses its stored embedding
    (again,) = library.match([photo])
    assert again.photo_id == a.photo_id and again.suggestions[0].sku == "SKU-007"


def test_stale_or_damaged_index_is_rebuilt(tmp_path: Path, catalog_dir: Path) -> None:
    lib_dir = tmp_path / "lib"
    with Library(lib_dir) as lib:
        lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
        index_path = lib.index_path
    index_path.write_bytes(b"garbage")
    with Library(lib_dir) as lib:
        assert len(lib.index) == 12
    assert VectorIndex.load(index_path) is not None
    # an index holding the wrong key set (e.g. saved before a crash) is not trusted
    stale = VectorIndex.build(
        np.array([1, 2], dtype=np.uint64),
        np.eye(2, 1280, dtype=np.float32),
        "effnet-lite0-imagenet-1",
    )
    stale.save(index_path)
    with Library(lib_dir) as lib:
        assert len(lib.index) == 12


def test_second_writer_is_refused(tmp_path: Path) -> None:
    with Library(tmp_path / "lib"), pytest.raises(LibraryLockedError, match="already open"):
        Library(tmp_path / "lib")


def test_killed_import_leaves_a_library_that_opens_and_resumes(tmp_path: Path) -> None:
    folder = tmp_path / "big"
    write_catalog(folder, 160)
    lib_dir = tmp_path / "lib"
    done = kill_cli_midway(
        lib_dir,
        ["import", str(folder), "--sheet", str(folder / "sheet.csv")],
        "SELECT count(*) FROM embeddings",
    )
    assert 0 < done < 160, f"import was not caught mid-way ({done} embedded)"
    with Library(lib_dir) as lib:
        kept = lib.db.execute("SELECT count(*) FROM embeddings").fetchone()[0]
        assert kept >= done
        assert lib.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert len(lib.index) == kept  # rebuilt from stored embeddings, no re-encoding
        rep = lib.import_catalog(folder, folder / "sheet.csv")
        assert rep.unchanged == kept and rep.added == 160 - kept
        assert len(lib.index) == 160
        assert lib.db.execute("SELECT count(*) FROM catalog_images").fetchone()[0] == 160


def test_import_reports_one_share_and_time_left_for_all_its_stages(tmp_path: Path) -> None:
    """The import dialog's bar must not restart at the keypoints stage, nor its time left
    forget that stage: every report carries the whole import's share, which only grows."""
    folder = tmp_path / "cat"
    write_catalog(folder, 24)
    seen = []
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(folder, folder / "sheet.csv", progress=seen.append)
        stages = [p.stage for p in seen]
        assert {"Checking catalog images", "Encoding catalog images", "Finding keypoints"} <= set(
            stages
        )
        shares = [p.run_fraction for p in seen]
        assert all(f is not None for f in shares) and shares == sorted(shares)  # type: ignore[type-var]
        assert shares[-1] == pytest.approx(1.0) and seen[-1].run_left_s == 0
        encoded = [p for p in seen if p.stage.startswith("Encoding") and p.done == p.total]
        # When the last image is encoded the keypoints are still to come: about half the work.
        assert 0.3 < encoded[-1].run_fraction < 0.8  # type: ignore[operator]
        assert encoded[-1].run_left_s > 0  # type: ignore[operator]
        # A second import finds nothing new: the plan shrinks and it still ends at 1.
        seen.clear()
        lib.import_catalog(folder, folder / "sheet.csv", progress=seen.append)
        assert seen and seen[-1].run_fraction == pytest.approx(1.0)


def test_cancel_keeps_committed_batches(tmp_path: Path) -> None:
    from engine.progress import CancelToken

    folder = tmp_path / "cat"
    write_catalog(folder, 40)
    token = CancelToken()
    seen: list[int] = []

    def progress(p) -> None:  # type: ignore[no-untyped-def]
        if p.stage.startswith("Encoding"):
            seen.append(p.done)
            if p.done >= 16:
                token.cancel()

    with Library(tmp_path / "lib") as lib:
        rep = lib.import_catalog(folder, folder / "sheet.csv", progress=progress, cancel=token)
        assert rep.cancelled and 0 < rep.added < 40
        assert len(lib.index) == rep.added
        rest = lib.import_catalog(folder, folder / "sheet.csv")
        assert rest.added == 40 - rep.added and not rest.cancelled
