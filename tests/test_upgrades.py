"""Upgrading a library an older release made: the current code catches up on what that release
left undone. The old libraries are zipped under tests/data/old_libraries (made by the released
code of older commits, see make_fixtures.py there), or the old state is made directly."""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
import time
import zipfile
from pathlib import Path

import pytest

from conftest import cli, photo_of, product_image, write_catalog, write_photos
from engine.check import check_library
from engine.db import UPGRADED_FROM
from engine.library import Library
from engine.resources import bundled_model_dir

OLD = Path(__file__).resolve().parent / "data" / "old_libraries"


def _old_library(tmp_path: Path, name: str) -> Path:
    """An old release's library, unzipped, with the bundled model its database names (the
    same version: the zip leaves model files out)."""
    lib = tmp_path / "lib"
    with zipfile.ZipFile(OLD / f"{name}.zip") as z:
        z.extractall(lib)
    shutil.copytree(bundled_model_dir(), lib / "models" / "effnet-lite0-imagenet-1")
    return lib


def _remembered(lib: Library) -> dict[int, str]:
    rows = lib.db.execute(
        "SELECT photo_id, sku FROM catalog_images WHERE origin = 'confirmed'"
    ).fetchall()
    return {int(p): str(s) for p, s in rows}


def test_a_first_release_library_remembers_its_confirmations_and_drops_its_index_file(
    tmp_path: Path,
) -> None:
    """2f1f7c7 (schema v1, before instant memory) confirmed a photo as SKU-000: after the
    upgrade it is a reference of SKU-000, as if the current code had confirmed it ('status'
    said remembered 0 for ever), and the first release's index/catalog.usearch, which no
    version reads any more, is gone; the current index file stays."""
    lib_dir = _old_library(tmp_path, "first-release-2f1f7c7")
    assert (lib_dir / "index" / "catalog.usearch").is_file()
    with Library(lib_dir) as lib:
        status = lib.status()
        assert (status.confirmed, status.remembered) == (1, 1)
        assert list(_remembered(lib).values()) == ["SKU-000"]
        assert lib.setting(UPGRADED_FROM, "") == ""  # done once, not at every open
        report = check_library(lib)  # (the zip leaves thumbnails out: said, not asserted)
        assert not [f for f in report.findings if f.area in ("memory", "index")], report.lines()
        current = lib.index_path
    left = sorted(p.name for p in (lib_dir / "index").iterdir())
    assert "catalog.usearch" not in left and "catalog.usearch.json" not in left
    assert current.name in left


def test_a_product_dropped_before_v5_is_withdrawn_after_the_upgrade(tmp_path: Path) -> None:
    """cf6ece1 (schema v4) imported a sheet that no longer listed SKU-000 and removed its
    picture, but kept the photo confirmed as SKU-000 as its reference: it went on being
    suggested (at 100%) after the upgrade, for ever. Now it is withdrawn at the first open,
    as an import by the current code would have done; the products the sheet lists stay."""
    lib_dir = _old_library(tmp_path, "dropped-cf6ece1")
    again = tmp_path / "again.jpg"
    photo_of(product_image(0), 77).save(again, quality=88)
    with Library(lib_dir) as lib:
        withdrawn = [
            r[0] for r in lib.db.execute("SELECT sku FROM products WHERE withdrawn_at IS NOT NULL")
        ]
        assert withdrawn == ["SKU-000"]
        assert _remembered(lib) == {}
        (result,) = list(lib.match([again]))
        offered = [s.sku for s in result.suggestions]
        assert offered and "SKU-000" not in offered, offered


def test_a_product_its_sheet_still_lists_is_never_withdrawn_by_the_upgrade(
    tmp_path: Path, library: Library
) -> None:
    """The catch-up withdraws only products the latest sheet of their folder left out: a
    product listed without a picture (never suggested but by memory) stays in the catalog,
    as does one whose picture is in another folder."""
    from engine.catalog_import import withdraw_dropped_before_v5

    supplier = tmp_path / "supplier"
    sheet = write_catalog(supplier, 3)
    assert sheet is not None
    (supplier / "images" / "SKU-002.jpg").unlink()  # listed, no picture
    library.import_catalog(supplier, sheet)
    time.sleep(1.1)  # imports are told apart by their start, to the second
    library.import_catalog(supplier, sheet)
    assert withdraw_dropped_before_v5(library) == []
    assert library.product("SKU-002")["withdrawn_at"] is None  # type: ignore[index]


def test_check_brings_a_confirmation_the_old_release_did_not_remember_into_memory(
    tmp_path: Path, library: Library, catalog_dir: Path
) -> None:
    """328150e confirmed a photo right after a model switch without remembering it. 'check'
    called such a library OK for ever: it now says instant memory and the decisions
    disagree, and --repair brings the photo in."""
    library.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
    photos = write_photos(tmp_path / "photos", [0, 1])
    list(library.match(photos))
    for photo, sku in zip(photos, ("SKU-000", "SKU-001"), strict=True):
        library.confirm(library.photo_id(photo), sku)
    forgotten = library.photo_id(photos[1])
    (image_id,) = library.db.execute(
        "SELECT id FROM catalog_images WHERE photo_id = ? AND origin = 'confirmed'", [forgotten]
    ).fetchone()
    library.db.execute("DELETE FROM catalog_images WHERE id = ?", [image_id])  # the old gap
    library.index_remove(image_id)
    library.flush()

    report = check_library(library)
    said = [f for f in report.findings if f.area == "memory"]
    assert len(said) == 1 and "--repair" in said[0].message, report.lines()
    assert len(_remembered(library)) == 1
    fixed = check_library(library, repair=True)
    assert [f.repaired for f in fixed.findings if f.area == "memory"] == [True], fixed.lines()
    assert _remembered(library) == {library.photo_id(photos[0]): "SKU-000", forgotten: "SKU-001"}
    assert not [f for f in check_library(library).findings if f.area == "memory"]


def test_check_does_not_call_an_index_written_before_checksums_damaged(
    library: Library, catalog_dir: Path
) -> None:
    """328150e wrote the index sidecar without the file's size and CRC: the first check
    after the upgrade said 'the index file is truncated or damaged' (exit 2). It is a note
    now, and the rebuild records the checksum."""
    library.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
    side = library.index_path.with_name(library.index_path.name + ".json")
    info = json.loads(side.read_text())
    side.write_text(json.dumps({k: info[k] for k in ("model_version", "dim", "count", "digest")}))
    library.invalidate_index()

    report = check_library(library)
    assert report.ok, report.lines()
    (note,) = [f for f in report.findings if f.area == "index"]
    assert note.severity == "note" and "older ShopMatch" in note.message
    assert "damaged" not in note.message
    check_library(library, repair=True)
    assert "crc32" in json.loads(side.read_text())
    assert not check_library(library).findings


def test_check_notes_the_first_release_index_file_and_repair_removes_only_it(
    library: Library, catalog_dir: Path
) -> None:
    library.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
    current = library.index_path
    old = current.with_name("catalog.usearch")
    shutil.copyfile(current, old)
    shutil.copyfile(current.with_name(current.name + ".json"), old.with_name(old.name + ".json"))
    report = check_library(library)
    assert report.ok
    (note,) = [f for f in report.findings if f.area == "index"]
    assert "catalog.usearch" in note.message and "--repair" in note.message
    check_library(library, repair=True)
    assert not old.exists() and not old.with_name(old.name + ".json").exists()
    assert current.exists() and not check_library(library).findings


def test_the_upgrade_catch_up_runs_once(tmp_path: Path, catalog_dir: Path) -> None:
    """The catch-up reads every decision: only on the first open after a migration, marked
    in the migration's own transaction; a new library never needs it."""
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
        assert lib.setting(UPGRADED_FROM, "") == ""
    from engine import memory

    calls = []
    real = memory.catch_up

    def counted(lib: Library) -> tuple[int, list[int]]:
        calls.append(1)
        return real(lib)

    memory.catch_up = counted  # type: ignore[assignment]
    try:
        with Library(tmp_path / "lib"):
            pass
        assert calls == []
        with sqlite3.connect(tmp_path / "lib" / "shopmatch.db") as conn:
            conn.execute("INSERT INTO settings (key, value) VALUES (?, '3')", [UPGRADED_FROM])
        conn.close()
        with Library(tmp_path / "lib"):
            pass
        with Library(tmp_path / "lib"):
            pass
        assert calls == [1]
    finally:
        memory.catch_up = real  # type: ignore[assignment]


def test_migrating_marks_the_oldest_schema_upgraded_from(tmp_path: Path) -> None:
    import sqlite_utils

    from engine.db import MIGRATIONS, open_db, transaction

    old = tmp_path / "old" / "shopmatch.db"
    old.parent.mkdir()
    db = sqlite_utils.Database(sqlite3.connect(old, isolation_level=None))
    for version, step in enumerate(MIGRATIONS[:3]):  # a library schema v3 left
        with transaction(db):
            step(db)
            db.execute(f"PRAGMA user_version = {version + 1}")
    db.close()
    db = open_db(old)
    marked = db.execute("SELECT value FROM settings WHERE key = ?", [UPGRADED_FROM]).fetchone()
    assert marked is not None and int(marked[0]) == 3
    db.close()
    (tmp_path / "new").mkdir()
    fresh = open_db(tmp_path / "new" / "shopmatch.db")
    assert fresh.execute("SELECT count(*) FROM settings").fetchone()[0] == 0
    fresh.close()


def test_match_names_the_command_that_extracts_missing_keypoints(
    library: Library, catalog_dir: Path, caplog: pytest.LogCaptureFixture, monkeypatch
) -> None:
    """A library from before local features has none: the first match said 'Run a
    local-feature sync', which no command or menu is called."""
    from engine import local_features

    library.local_features = False
    library.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
    library.local_features = True
    monkeypatch.setattr(local_features, "LAZY_SYNC_LIMIT", 2)
    with caplog.at_level(logging.WARNING):
        local_features.prepare(library)
    assert "no local features yet" in caplog.text
    assert "local-feature sync" not in caplog.text
    assert "shopmatch check --repair" in caplog.text and "Check and Repair" in caplog.text


def test_check_json_counts_index_entries_in_snake_case(tmp_path: Path, catalog_dir: Path) -> None:
    lib = tmp_path / "lib"
    assert (
        cli(lib, "import", str(catalog_dir), "--sheet", str(catalog_dir / "sheet.csv")).returncode
        == 0
    )
    data = json.loads(cli(lib, "check", "--json").stdout)
    assert data["counts"]["index_entries"] == 12 and "index entries" not in data["counts"]
    assert "12 index entries" in cli(lib, "check").stdout


def _gate(reason: str, criterion: str, accept: bool, held: tuple, check: tuple) -> dict:
    """A stored gate comparison (GateDecision.to_dict) with the candidate's and the active
    model's (n, top1, mrr) on held-out photos and on the catalog self-check."""

    def m(n: int, top1: float, mrr: float) -> dict[str, float]:
        return {"n": n, "top1": top1, "top5": top1, "mrr": mrr, "map5": mrr}

    return {
        "accept": accept,
        "reason": reason,
        "criterion": criterion,
        "candidate": {"heldout": m(*held[0]), "catalog_check": m(*check[0])},
        "active": {"version": "v0", "heldout": m(*held[1]), "catalog_check": m(*check[1])},
        "temperature": None,
    }


def test_a_verdict_stored_by_an_older_release_is_said_in_words() -> None:
    """cf6ece1 stored 'not better: catalog_check_mrr 0.646 vs active 0.646' ('models
    --verbose' and the Learning tab's tooltip printed it as it was); such a verdict is made
    again from the stored criterion and figures, worded as versions trained now word it."""
    from engine.overview import ModelVersion

    stored = _gate(
        "not better: catalog_check_mrr 0.646 vs active 0.646",
        "catalog_check_mrr",
        False,
        ((0, 0.0, 0.0), (0, 0.0, 0.0)),
        ((4, 0.5, 0.646), (4, 0.5, 0.646)),
    )
    version = ModelVersion("v1", "arch", "v0", "2026-11-24T23:09:28+00:00", False, {"gate": stored})
    text = version.comparison()
    assert "catalog_check" not in text and "heldout_" not in text and " vs " not in text
    assert text.endswith(
        "Verdict: not better (MRR on simulated photos of the catalog 0.646 against 0.646 for "
        "the active model)."
    ), text


@pytest.mark.parametrize(
    ("old", "criterion", "accept", "held", "check"),
    [
        ("not better: heldout_mrr 0.500 vs active 0.600", "heldout_mrr", False,
         ((12, 0.4, 0.5), (12, 0.5, 0.6)), ((4, 0.5, 0.6), (4, 0.5, 0.6))),
        ("better: heldout_mrr 0.700 vs active 0.600", "heldout_mrr", True,
         ((12, 0.6, 0.7), (12, 0.5, 0.6)), ((4, 0.5, 0.6), (4, 0.5, 0.6))),
        ("heldout_mrr 0.700 vs 0.600, but catalog self-check top-1 drops by 0.250",
         "heldout_mrr", False, ((12, 0.6, 0.7), (12, 0.5, 0.6)), ((4, 0.25, 0.4), (4, 0.5, 0.6))),
        ("only 2 held-out confirmations (need 5) to prove a gain on real photos; catalog "
         "self-check MRR 0.700 vs active 0.600", "catalog_check_mrr", False,
         ((2, 0.5, 0.5), (2, 0.5, 0.5)), ((4, 0.6, 0.7), (4, 0.5, 0.6))),
        ("better: MRR on simulated photos of the catalog 0.700 against 0.600 for the active "
         "model", "catalog_check_mrr", True,
         ((2, 0.5, 0.5), (2, 0.5, 0.5)), ((4, 0.6, 0.7), (4, 0.5, 0.6))),
    ],
)  # fmt: skip
def test_an_old_verdict_is_worded_as_the_gate_words_it_now(
    old: str, criterion: str, accept: bool, held: tuple, check: tuple
) -> None:
    """Each wording the gate used before dbc0214 (and dbc0214's 'better: ...') comes out
    as the current gate says the same decision."""
    from engine.evaluation import Metrics
    from engine.overview import CRITERIA, verdict
    from engine.training.gate import CRITERIA as GATE_CRITERIA
    from engine.training.gate import VersionScore, decide

    assert CRITERIA == GATE_CRITERIA  # overview keeps its own copy (no matching stack)

    def score(i: int) -> VersionScore:
        def m(t: tuple) -> Metrics:
            return Metrics(t[0], t[1], t[1], t[2], t[2])

        return VersionScore(f"v{i}", m(held[i]), m(check[i]))

    now_accept, now_reason, now_criterion = decide(score(0), score(1), trust_catalog_check=accept)
    assert (now_accept, now_criterion) == (accept, criterion)
    assert verdict(_gate(old, criterion, accept, held, check)) == now_reason
    assert verdict(_gate(now_reason, criterion, accept, held, check)) == now_reason
