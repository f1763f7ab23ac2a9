"""Instant memory, model versions, safe activation and schema migration, on real files."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from conftest import kill_cli_midway, photo_of, product_image, write_catalog, write_photos
from engine.db import SCHEMA_VERSION, open_db
from engine.decisions import DecisionError
from engine.encoder import Encoder
from engine.library import Library
from engine.resources import bundled_model_dir

MOBILENET = bundled_model_dir("mobilenet-v2")


def test_confirmed_photo_becomes_a_reference_at_once(tmp_path: Path, catalog_dir: Path) -> None:
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
        # A shop photo of SKU-007 that the catalog image alone does not rank first: a new
        # product line photographed in the shop. Confirm it as SKU-011.
        first = tmp_path / "a.jpg"
        photo_of(product_image(500), 1).save(first)
        (res,) = lib.match([first])
        assert res.suggestions[0].sku != "SKU-011"
        lib.confirm(res.photo_id, "SKU-011")  # type: ignore[arg-type]
        assert lib.status().remembered == 1
        # The next photo of the same thing now matches SKU-011 first, before any training.
        second = tmp_path / "b.jpg"
        photo_of(product_image(500), 2).save(second)
        (res2,) = lib.match([second])
        assert res2.suggestions[0].sku == "SKU-011"
        # Undo removes the reference again; the index follows.
        lib.undo()
        assert lib.status().remembered == 0
        assert len(lib.index) == 12
        (res3,) = lib.match([second])
        assert res3.suggestions[0].sku != "SKU-011"
        # The setting turns it off (and back on) for every confirmed photo.
        lib.confirm(res.photo_id, "SKU-011")  # type: ignore[arg-type]
        lib.instant_memory = False
        assert (lib.status().remembered, len(lib.index)) == (0, 12)
        lib.instant_memory = True
        assert (lib.status().remembered, len(lib.index)) == (1, 13)
    with Library(tmp_path / "lib") as lib:  # persisted on close
        assert len(lib.index) == 13


def test_install_refuses_a_broken_model_and_a_second_copy(tmp_path: Path) -> None:
    """A broken model used to install 'fine' and fail only at activation with an
    onnxruntime message; re-installing a version wiped its stored gate comparison."""
    import dataclasses
    import shutil

    from engine.library import LibraryError
    from engine.manifest import ModelManifest

    def folder(name: str, onnx: bytes, sha: str | None = None) -> Path:
        out = tmp_path / name
        out.mkdir()
        (out / "model.onnx").write_bytes(onnx)
        manifest = ModelManifest.load(MOBILENET)
        manifest = dataclasses.replace(
            manifest, version=name, sha256=manifest.sha256 if sha is None else sha
        )
        manifest.save(out)
        return out

    with Library(tmp_path / "lib") as lib:
        with pytest.raises(LibraryError, match=r"was not installed: .* damaged \(hash mismatch\)"):
            lib.install_model(folder("two-bytes", b"\x08\x01"))
        with pytest.raises(LibraryError, match="does not run as an image encoder"):
            lib.install_model(folder("no-hash", b"\x08\x01", sha=""))
        empty = tmp_path / "empty"
        empty.mkdir()
        (empty / "manifest.json").write_text("{}", encoding="utf-8")
        with pytest.raises(LibraryError, match="is not a model folder"):
            lib.install_model(empty)
        assert [m["version"] for m in lib.models()] == [lib.model_version]  # nothing added
        left = [p.name for p in lib.models_dir.iterdir()]
        assert not any(name.startswith(("two-bytes", "no-hash")) for name in left)

        other = lib.install_model(MOBILENET).version
        lib.set_model_metrics(other, {"gate": "kept"})
        copy = tmp_path / "copy"
        shutil.copytree(MOBILENET, copy)
        with pytest.raises(LibraryError, match=f"model {other} is already installed"):
            lib.install_model(copy)
        assert next(m for m in lib.models() if m["version"] == other)["metrics"] == {"gate": "kept"}
        # A version that is a path would put the model, and its later removal, outside.
        victim = tmp_path / "victim"
        victim.mkdir()
        (victim / "precious.txt").write_text("x", encoding="utf-8")
        crafted = json.loads((copy / "manifest.json").read_text(encoding="utf-8"))
        crafted["version"] = "../../victim"
        (copy / "manifest.json").write_text(json.dumps(crafted), encoding="utf-8")
        with pytest.raises(LibraryError, match="is not a plain name"):
            lib.install_model(copy)
        assert (victim / "precious.txt").exists()
        assert "../../victim" not in [m["version"] for m in lib.models()]


def test_a_confirmation_in_a_fresh_process_does_not_rebuild_the_index(
    tmp_path: Path, catalog_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each CLI command opens the library anew. The reference row used to be written before
    the saved index was loaded, so the file looked stale and was rebuilt whole, every
    reference vector read and indexed again for one confirmation."""
    photos = write_photos(tmp_path / "p", [1, 4])
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
        ids = [m.photo_id for m in lib.match(photos)]
    rebuilds: list[int] = []
    real = Library.rebuild_index

    def counted(self: Library):  # type: ignore[no-untyped-def]
        rebuilds.append(1)
        return real(self)

    monkeypatch.setattr(Library, "rebuild_index", counted)
    for photo_id, sku in zip(ids, ["SKU-001", "SKU-004"], strict=True):
        with Library(tmp_path / "lib") as lib:  # as `shopmatch confirm` does
            lib.confirm(photo_id, sku)  # type: ignore[arg-type]
    with Library(tmp_path / "lib") as lib:
        lib.undo()
        assert len(lib.index) == 13  # the one reference left, and the index agrees
    assert rebuilds == []


def test_activate_other_model_and_roll_back(tmp_path: Path, catalog_dir: Path) -> None:
    photos = write_photos(tmp_path / "p", [1, 4])
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
        old = lib.model_version
        before = list(lib.match(photos))  # photos known before the switch are re-embedded
        other = lib.install_model(MOBILENET)
        assert lib.model_version == old  # installing does not activate
        lib.activate_model(other.version)
        assert lib.model_version == other.version == lib.active_model_version()
        assert len(lib.index) == 12 and lib.index.dim == other.embedding_dim
        assert lib.index_path.name == f"catalog-{other.version}.usearch"
        # Its suggestions were the old model's: a bare confirm says why it cannot pick one.
        with pytest.raises(DecisionError, match=f"was matched with model {old}, not the model"):
            lib.confirm(before[0].photo_id)
        results = list(lib.match(photos))
        assert all(r.suggestions for r in results)
        assert [r.photo_id for r in results] == [r.photo_id for r in before]
        lib.activate_model(old)  # rollback: embeddings are kept, nothing re-encoded
        assert lib.model_version == old
        assert {m["version"] for m in lib.models()} == {old, other.version}


def test_remove_a_model_version_frees_its_files_and_vectors(
    tmp_path: Path, catalog_dir: Path
) -> None:
    from engine.check import check_library

    photos = write_photos(tmp_path / "p", [1, 4])
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
        base = lib.model_version
        other = lib.install_model(MOBILENET).version
        lib.activate_model(other)
        (res, _) = lib.match(photos)
        lib.confirm(res.photo_id)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="is the active model; switch to another"):
            lib.remove_model(other)
        with pytest.raises(ValueError, match="is the bundled model the library falls back on"):
            lib.remove_model(base)
        with pytest.raises(ValueError, match=r"no model version 'nope' .*\(versions: "):
            lib.remove_model("nope")
        lib.activate_model(base)
        folder, index = lib.model_dir(other), lib.index_path_for(other)
        assert folder.is_dir() and index.is_file()
        lib.remove_model(other)
        assert [m["version"] for m in lib.models()] == [base]
        assert not folder.exists() and not index.exists()
        for table in ("embeddings", "photo_embeddings", "suggestions"):
            left = lib.db.execute(f"SELECT count(*) FROM {table} WHERE model_version = ?", [other])
            assert left.fetchone()[0] == 0, table
        # Decisions keep the version they were made with; matching goes on as before.
        named = lib.db.execute("SELECT model_version FROM decisions").fetchall()
        assert named == [(other,)]
        assert check_library(lib, deep=True).ok
        assert next(iter(lib.match(photos[1:]))).suggestions[0].sku == "SKU-004"
        # A removal cut short after its commit leaves a folder no version names: reported as
        # a leftover, and removed by --repair.
        (lib.models_dir / other).mkdir()
        (lib.models_dir / other / "model.onnx").write_bytes(b"half removed")
        found = check_library(lib)
        assert any(f.area == "files" and other in f.message for f in found.findings)
        check_library(lib, repair=True)
        assert not (lib.models_dir / other).exists()


def test_activation_with_vectors_embedded_elsewhere(tmp_path: Path, catalog_dir: Path) -> None:
    """The app embeds off the engine thread between plan and activation; references confirmed
    or undone meanwhile are still right in the new model's index."""
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
        old = lib.model_version
        a, b = lib.match(write_photos(tmp_path / "p", [1, 4]))
        lib.confirm(a.photo_id, "SKU-001")  # type: ignore[arg-type]
        other = lib.install_model(MOBILENET).version
        todo = lib.plan_embeddings(other)
        assert len(todo.refs) == 13 and not todo.failed  # 12 catalog images + 1 confirmed
        embedded = todo.encode(Encoder(MOBILENET, threads=1))  # no library touched here
        lib.undo()  # the confirmed reference is gone before the vectors are stored
        lib.confirm(b.photo_id, "SKU-004")  # a new one arrives that the plan never saw
        lib.activate_model(other, embedded=embedded)
        assert lib.model_version == other and len(lib.index) == 13
        rows = dict(
            lib.db.execute(
                "SELECT image_id, vector FROM embeddings WHERE model_version = ?", [other]
            ).fetchall()
        )
        live = {r[0] for r in lib.db.execute("SELECT id FROM catalog_images")}
        assert set(rows) == live  # the undone one skipped, the new one embedded
        # Stored vectors are exactly what activation alone would have computed.
        lib.db.execute("DELETE FROM embeddings WHERE model_version = ?", [other])
        lib.activate_model(other)
        again = dict(
            lib.db.execute(
                "SELECT image_id, vector FROM embeddings WHERE model_version = ?", [other]
            ).fetchall()
        )
        for image_id, blob in rows.items():
            np.testing.assert_allclose(
                np.frombuffer(blob, np.float32),
                np.frombuffer(again[image_id], np.float32),
                atol=1e-5,
            )
        with pytest.raises(ValueError, match="vectors of"):
            lib.activate_model(old, embedded=embedded)  # another version's vectors


def _vector(lib: Library, image_id: int, version: str) -> np.ndarray:
    row = lib.db.execute(
        "SELECT vector FROM embeddings WHERE image_id = ? AND model_version = ?",
        [image_id, version],
    ).fetchone()
    return np.frombuffer(row[0], np.float32)


def test_a_catalog_picture_changed_meanwhile_is_embedded_anew(
    tmp_path: Path, catalog_dir: Path
) -> None:
    """Vectors computed from a plan are not stored for a picture re-imported with new content
    in between; and re-importing drops other versions' vectors of the old picture."""
    picture = catalog_dir / "images" / "SKU-003.jpg"
    encoder = Encoder(MOBILENET, threads=1)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
        old = lib.model_version
        other = lib.install_model(MOBILENET).version
        (image_id,) = lib.db.execute(
            "SELECT id FROM catalog_images WHERE path = ?", [str(picture)]
        ).fetchone()
        embedded = lib.plan_embeddings(other).encode(encoder)
        before = embedded.vectors[[r.image_id for r in embedded.refs].index(image_id)]
        product_image(77).save(picture, quality=92)  # the supplier sends a new picture
        lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
        assert lib.store_embeddings(embedded) == 11  # all but the changed one
        lib.activate_model(other, embedded=embedded)
        fresh = encoder.encode_images([encoder.load(picture)])[0]
        np.testing.assert_allclose(_vector(lib, image_id, other), fresh, atol=1e-5)
        assert float(before @ fresh) < 0.999  # the old picture's vector was really different
        # Now the other way: the new model is active, the ImageNet one keeps old vectors...
        product_image(78).save(picture, quality=92)
        lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
        gone = lib.db.execute(
            "SELECT count(*) FROM embeddings WHERE image_id = ? AND model_version = ?",
            [image_id, old],
        ).fetchone()[0]
        assert gone == 0  # ...no longer: switching back embeds the new picture
        lib.activate_model(old)
        back = lib.encoder_for(old)
        want = back.encode_images([back.load(picture)])[0]
        np.testing.assert_allclose(_vector(lib, image_id, old), want, atol=1e-5)


def test_kill_during_activation_keeps_old_model(tmp_path: Path) -> None:
    folder = tmp_path / "cat"
    write_catalog(folder, 160)
    lib_dir = tmp_path / "lib"
    with Library(lib_dir) as lib:
        lib.import_catalog(folder, folder / "sheet.csv")
        old = lib.model_version
        new = lib.install_model(MOBILENET).version
    done = kill_cli_midway(
        lib_dir,
        ["models", "--activate", new],
        f"SELECT count(*) FROM embeddings WHERE model_version = '{new}'",
    )
    assert 0 < done < 160, f"activation not caught mid-way ({done})"
    with Library(lib_dir) as lib:
        assert lib.model_version == old
        assert len(lib.index) == 160
        (res,) = lib.match(write_photos(tmp_path / "p", [4]))
        assert res.suggestions[0].sku == "SKU-004"
        lib.activate_model(new)  # resumes: only the missing embeddings are computed
        assert lib.model_version == new and len(lib.index) == 160


def test_old_schema_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 0")
    conn.close()
    import sqlite_utils

    from engine.db import MIGRATIONS

    db = sqlite_utils.Database(path)
    MIGRATIONS[0](db)
    db.execute("PRAGMA user_version = 1")
    db.close()
    db = open_db(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert "settings" in db.table_names()
    assert "photo_id" in db["catalog_images"].columns_dict


def test_embeddings_are_unit_vectors_and_rebuildable(
    tmp_path: Path, library: Library, catalog_dir: Path
) -> None:
    library.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
    vecs = [
        np.frombuffer(r[0], np.float32) for r in library.db.execute("SELECT vector FROM embeddings")
    ]
    assert np.allclose([np.linalg.norm(v) for v in vecs], 1.0, atol=1e-4)
    library.index_path.unlink()
    library.invalidate_index()
    assert len(library.index) == 12 and library.index_path.exists()


def test_a_products_card_shows_the_supplier_picture_not_a_staff_photo_kept_before_it(
    tmp_path: Path,
) -> None:
    """A product listed before its picture came: staff confirmed a photo of it (instant
    memory keeps that photo as a reference image), then the supplier's picture arrived with
    the next import. Search results and the confirmed product's card showed the staff photo
    as the product's picture (the oldest image of any origin won, review 40)."""
    import csv

    from engine import overview
    from engine.manifest import file_sha256

    sheet = write_catalog(tmp_path / "supplier", 4)
    assert sheet is not None
    with open(sheet, encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))

    def write_sheet() -> None:
        with open(sheet, "w", newline="", encoding="utf-8") as fh:
            out = csv.DictWriter(fh, fieldnames=list(rows[0]))
            out.writeheader()
            out.writerows(rows)

    picture = tmp_path / "supplier" / "images" / "SKU-003.jpg"
    held = picture.read_bytes()
    picture.unlink()
    rows[3]["Image"] = ""  # listed without a picture yet
    write_sheet()
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(tmp_path / "supplier", sheet)
        (m,) = lib.match(write_photos(tmp_path / "p", [3]))
        assert m.photo_id is not None
        lib.confirm(m.photo_id, "SKU-003")
        assert lib.status().remembered == 1  # the staff photo is a reference image now
        picture.write_bytes(held)
        rows[3]["Image"] = "images/SKU-003.jpg"
        write_sheet()
        lib.import_catalog(tmp_path / "supplier", sheet)
        origins = [r["origin"] for r in lib.catalog_images("SKU-003")]
        assert origins == ["confirmed", "catalog"]  # the staff photo is the older one
        assert overview.sku_thumbs(lib, ["SKU-003"])["SKU-003"] == lib.thumbnail(
            file_sha256(picture)
        )
