"""A year in the shop (review 48): the window and the engine on a library grown big.

Each test states a behaviour that a library grown over a year (20k products, 40k photos,
most decided, 36k confirmed photos remembered) depends on, on a library small enough for
the suite. The review measured them on the big one: an unclean exit cost a 24-s index
rebuild before the window showed anything, 2,000 photos from last time froze the window
for 3-5 s and the others never showed, a confirm took 18 ms through the wrong SQLite
index, and a product's detail read every decision of the library (160 ms a product).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine import catalog_import, memory, overview
from engine.db import transaction, utcnow
from engine.library import Library
from engine.manifest import file_sha256

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

import test_desktop
from test_backups import damage_header
from test_desktop import WAIT_MS

from conftest import product_image, write_catalog
from desktop_app.main_window import MainWindow

boxes = test_desktop.boxes
engine_calls = test_desktop.engine_calls
make_window = test_desktop.make_window
window = test_desktop.window


def grow(
    lib: Library,
    products: int,
    photos: int = 0,
    decided: int = 0,
    remember: bool = False,
    thumbs: bool = False,
) -> None:
    """As bench/bench_scale.py grows a library: products with one catalog image each and a
    stored embedding (no encoding), then ``photos`` photos matched (five suggestions each),
    the first ``decided`` of them confirmed to their top suggestion (and remembered as
    references with ``remember``); ``thumbs`` writes a small thumbnail per photo."""
    from PIL import Image

    version = lib.model_version
    dim = lib.model_manifest(version).embedding_dim
    rng = np.random.default_rng(0)
    now = utcnow()
    conn = lib.db.conn
    base = int(conn.execute("SELECT count(*) FROM products").fetchone()[0])
    first_image = int(conn.execute("SELECT coalesce(max(id), 0) FROM catalog_images").fetchone()[0])
    first_photo = int(conn.execute("SELECT coalesce(max(id), 0) FROM photos").fetchone()[0])

    def unit(n: int) -> np.ndarray:
        v = rng.standard_normal((n, dim)).astype("<f4")
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    skus = [f"SKU-{base + i:06d}" for i in range(products)]
    vecs = unit(products)
    with transaction(lib.db):
        conn.executemany(
            "INSERT INTO products (sku, name, category, supplier, price, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(s, f"Product {s}", "Cat", "Supplier", 1.5, now, now) for s in skus],
        )
        conn.executemany(
            "INSERT INTO catalog_images (id, sku, path, sha256, origin, added_at, updated_at) "
            "VALUES (?, ?, ?, ?, 'catalog', ?, ?)",
            [
                (first_image + i + 1, s, f"/supplier/{s}.jpg", f"c{first_image + i:063x}", now, now)
                for i, s in enumerate(skus)
            ],
        )
        conn.executemany(
            "INSERT INTO embeddings (image_id, model_version, vector) VALUES (?, ?, ?)",
            [(first_image + i + 1, version, v.tobytes()) for i, v in enumerate(vecs)],
        )
    all_skus = [str(r[0]) for r in conn.execute("SELECT sku FROM products ORDER BY sku")]
    next_image = first_image + products + 1
    pvecs = unit(photos) if photos else None
    seed = None
    if thumbs:
        seed = lib.path / "seed-thumb.jpg"
        Image.new("RGB", (256, 192), (200, 120, 40)).save(seed, quality=85)
    with transaction(lib.db):
        for k in range(photos):
            pid = first_photo + k + 1
            sha = f"p{pid:063x}"
            path = f"/home/shop/Pictures/day-{k % 30}/IMG_{pid:05d}.jpg"
            conn.execute(
                "INSERT INTO photos (id, path, sha256, added_at) VALUES (?, ?, ?, ?)",
                [pid, path, sha, now],
            )
            conn.execute(
                "INSERT INTO photo_embeddings (photo_id, model_version, vector) VALUES (?, ?, ?)",
                [pid, version, pvecs[k].tobytes()],  # type: ignore[index]
            )
            top = [all_skus[(k + j) % len(all_skus)] for j in range(5)]
            conn.executemany(
                "INSERT INTO suggestions (photo_id, model_version, rank, sku, image_id, "
                "similarity, score, created_at) VALUES (?, ?, ?, ?, NULL, ?, ?, ?)",
                [
                    (pid, version, r + 1, s, 0.6, [0.7, 0.1, 0.1, 0.05, 0.05][r], now)
                    for r, s in enumerate(top)
                ],
            )
            if k < decided:
                conn.execute(
                    "INSERT INTO decisions (photo_id, action, sku, rank, score, model_version, "
                    "decided_at) VALUES (?, 'confirm', ?, 1, 0.7, ?, ?)",
                    [pid, top[0], version, now],
                )
                if remember:
                    conn.execute(
                        "INSERT INTO catalog_images (id, sku, path, sha256, origin, photo_id, "
                        "added_at, updated_at) VALUES (?, ?, ?, ?, 'confirmed', ?, ?, ?)",
                        [next_image, top[0], path, sha, pid, now, now],
                    )
                    conn.execute(
                        "INSERT INTO embeddings (image_id, model_version, vector) VALUES (?, ?, ?)",
                        [next_image, version, pvecs[k].tobytes()],  # type: ignore[index]
                    )
                    next_image += 1
            if seed is not None:
                t = lib.thumbnail(sha)
                t.parent.mkdir(parents=True, exist_ok=True)
                t.write_bytes(seed.read_bytes())


def grown_library(path: Path, **kw: Any) -> Path:
    with Library(path) as lib:
        lib.local_features = False
        grow(lib, **kw)
        lib.rebuild_index()
    return path


def plans(lib: Library, call: Any) -> dict[str, list[str]]:
    """EXPLAIN QUERY PLAN of every SELECT/DELETE/UPDATE that ``call`` issues."""
    seen: list[str] = []
    conn = lib.db.conn
    conn.set_trace_callback(seen.append)
    try:
        call()
    finally:
        conn.set_trace_callback(None)
    out = {}
    for sql in seen:
        if sql.lstrip().upper().startswith(("SELECT", "DELETE", "UPDATE")):
            with contextlib.suppress(sqlite3.Error):  # traced with its values bound
                out[sql] = [r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql)]
    return out


# -- 1. an unclean exit costs a whole index rebuild ------------------------------------------


def test_an_index_file_one_reference_behind_is_caught_up_not_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A confirm adds one reference vector; the index file is saved only at close. After a
    crash or power cut the next open rebuilt all of them (24 s at 60k references on two
    cores, before the status bar or the review list appear): the file's keys differ from
    the database's by one id, and ids are never reused, so adding that one is enough."""
    path = grown_library(tmp_path / "lib", products=300)
    lib = Library(path)
    _ = lib.index
    vec = np.ones(lib.model_manifest(lib.model_version).embedding_dim, dtype="<f4")
    vec /= np.linalg.norm(vec)
    image_id = add_reference(lib, vec)
    die(lib)

    rebuilt: list[int] = []
    original = Library.rebuild_index

    def counting(self: Library) -> Any:
        rebuilt.append(1)
        return original(self)

    monkeypatch.setattr(Library, "rebuild_index", counting)
    with Library(path) as again:
        assert len(again.index) == 301
        keys, _sims = again.index.search(vec, 1, exact=False)
        assert int(keys[0, 0]) == image_id  # searchable, through the graph too
    assert not rebuilt, "the whole index was rebuilt for one reference missing from its file"
    with Library(path) as third:  # the caught-up index was saved on close
        assert len(third.index) == 301
    assert not rebuilt


def stored_vector(lib: Library, image_id: int) -> np.ndarray:
    row = lib.db.execute(
        "SELECT vector FROM embeddings WHERE image_id = ? AND model_version = ?",
        [image_id, lib.model_version],
    ).fetchone()
    return np.frombuffer(row[0], dtype="<f4")


def indexed_vector(lib: Library, image_id: int) -> np.ndarray:
    keys, vectors = lib.index.matrix()
    return vectors[list(keys).index(image_id)]


def die(lib: Library) -> None:
    """The process ends here: no close, no index save (the lock goes with the process)."""
    lib.db.close()
    lib._lock.release()  # type: ignore[union-attr]


def picture_replaced(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A library of an imported catalog whose SKU-001 picture the supplier has since replaced
    under the same file name: (library, sheet, picture)."""
    sheet = write_catalog(tmp_path / "supplier", 4)
    assert sheet is not None
    path = tmp_path / "lib"
    with Library(path) as lib:
        lib.local_features = False
        lib.import_catalog(tmp_path / "supplier", sheet)
    picture = tmp_path / "supplier" / "images" / "SKU-001.jpg"
    product_image(99).save(picture, quality=92)
    os.utime(picture, (1_700_000_000, 1_700_000_000))
    return path, sheet, picture


def image_of(lib: Library, picture: Path) -> int:
    row = lib.db.execute("SELECT id FROM catalog_images WHERE path = ?", [str(picture)])
    return int(row.fetchone()[0])


def test_a_picture_replaced_by_an_import_that_died_is_never_searched_by_its_old_look(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The supplier sent a new picture under the same file name: the import stores its
    vector under the same image id. If the process dies before the import's index rebuild,
    the index file still has the same ids, so catching it up would keep the old picture's
    vector; the import makes the file stale before it stores the new vector."""
    path, sheet, picture = picture_replaced(tmp_path)

    def dies(self: Library) -> None:
        raise KeyboardInterrupt  # the power went at the end of the import

    lib = Library(path)
    monkeypatch.setattr(Library, "rebuild_index", dies)
    with pytest.raises(KeyboardInterrupt):
        lib.import_catalog(tmp_path / "supplier", sheet)
    image_id = image_of(lib, picture)
    die(lib)
    monkeypatch.undo()
    with Library(path) as again:
        assert np.allclose(indexed_vector(again, image_id), stored_vector(again, image_id))


def test_an_import_that_fails_after_replacing_a_picture_never_saves_its_old_vector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window keeps the library open: an import that fails after it stored a replaced
    picture's new vector (the disk filled up, say) skips the import's rebuild. The index held
    in memory, with the old picture under that id, must not be saved as current when the
    next confirmation marks it changed (review 49)."""
    path, sheet, picture = picture_replaced(tmp_path)

    def full(*_a: Any, **_k: Any) -> Any:
        raise OSError(28, "No space left on device")

    with Library(path) as lib:
        _ = lib.index  # the window matched photos: the index is in memory
        monkeypatch.setattr(catalog_import, "_withdraw", full)
        with pytest.raises(OSError):
            lib.import_catalog(tmp_path / "supplier", sheet)
        monkeypatch.undo()
        image_id = image_of(lib, picture)
        dim = lib.model_manifest(lib.model_version).embedding_dim
        add_reference(lib, np.eye(dim, dtype="<f4")[3], sku="SKU-002")  # the index is dirty
    with Library(path) as again:
        assert np.allclose(indexed_vector(again, image_id), stored_vector(again, image_id))


def test_ids_handed_out_again_after_a_backup_is_put_back_are_searched_by_their_new_vector(
    tmp_path: Path,
) -> None:
    """A backup put back also puts back SQLite's id counter: the next reference gets an id
    the index file already holds with another photo's vector. The file is stale from then."""
    path = grown_library(tmp_path / "lib", products=30)
    with Library(path) as lib:
        lib.take_backup()
        dim = lib.model_manifest(lib.model_version).embedding_dim
        first = add_reference(lib, np.eye(dim, dtype="<f4")[0])
    damage_header(path)
    with Library(path, restore_damaged=True) as lib:
        second = add_reference(lib, np.eye(dim, dtype="<f4")[1], index=False)
        assert second == first  # the id was handed out again
        assert np.allclose(indexed_vector(lib, second), stored_vector(lib, second))


def add_reference(
    lib: Library, vec: np.ndarray, index: bool = True, sku: str = "SKU-000001"
) -> int:
    """A reference stored as a confirmation stores it (and, with ``index``, indexed)."""
    now = utcnow()
    with transaction(lib.db):
        image_id = int(
            lib.db["catalog_images"]
            .insert(
                {
                    "sku": sku,
                    "path": f"/p/IMG_{vec.argmax()}.jpg",
                    "sha256": f"{vec.argmax():064x}",
                    "origin": "confirmed",
                    "added_at": now,
                    "updated_at": now,
                }
            )
            .last_pk
        )
        lib.db["embeddings"].insert(
            {"image_id": image_id, "model_version": lib.model_version, "vector": vec.tobytes()}
        )
    if index:
        lib.index_add(image_id, vec)
    return image_id


# -- 2. the review queue on opening -------------------------------------------------------------


def test_every_undecided_photo_comes_back_or_the_rest_are_counted(
    qtbot: Any, window: MainWindow, tmp_path: Path, engine_calls: test_desktop.EngineCalls
) -> None:
    """A shop that skipped (S) hard photos for months has more than 2,000 undecided: the
    queue listed the oldest 2,000, said "2,000 photos from last time are waiting", and the
    others never appeared (overview.undecided_photos' limit in session.resume)."""
    with engine_calls.by_test():
        path = grown_library(tmp_path / "lib", products=50, photos=2_010)
    said: list[str] = []
    window.session.message.connect(said.append)
    window.open_library(path)
    qtbot.waitUntil(lambda: any("from last time" in s for s in said), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT_MS)
    listed = window.model.rowCount()
    assert listed == 2_010 or any("2,010" in s for s in said), (listed, said)


def test_restoring_the_queue_decodes_no_thumbnail_per_photo_on_the_gui_thread(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    engine_calls: test_desktop.EngineCalls,
) -> None:
    """Opening the library decoded the stored thumbnail of every undecided photo on the GUI
    thread, in the one callback that lists them (session._apply_match -> cached_pixmap),
    and again for each preview of a file no longer there (session._on_preview): 220-370 ms
    frozen at 300 photos, 3-5 s at 2,000 (r48/window_open.py)."""
    from desktop_app import previews

    with engine_calls.by_test():
        path = grown_library(tmp_path / "lib", products=50, photos=60, thumbs=True)
    on_gui: list[Path] = []
    original = previews.read_scaled

    def counting(p: Path, side: int) -> Any:
        if threading.current_thread() is threading.main_thread():
            on_gui.append(p)
        return original(p, side)

    monkeypatch.setattr(previews, "read_scaled", counting)
    window.open_library(path)
    qtbot.waitUntil(lambda: window.model.rowCount() == 60, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT_MS)
    # Every photo's file is gone: each shows the library's thumbnail, read in the pool.
    qtbot.waitUntil(
        lambda: all(i.preview is not None and not i.preview.isNull() for i in window.model.items),
        timeout=WAIT_MS,
    )
    # At most the selected photo's suggestion cards are read on the GUI thread.
    assert len(on_gui) <= 5, f"{len(on_gui)} pictures decoded on the GUI thread for 60 photos"


def opened_in_pages_of_5(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    engine_calls: test_desktop.EngineCalls,
) -> list[str]:
    """The window opened on a library with 8 photos from last time, listed 5 at a time
    (its first page listed); returns the list of what the review page says from then."""
    from desktop_app import session as session_module

    monkeypatch.setattr(session_module, "WAITING_PAGE", 5)
    with engine_calls.by_test():
        path = grown_library(tmp_path / "lib", products=50, photos=8)
    said: list[str] = []
    window.session.message.connect(said.append)
    window.open_library(path)
    qtbot.waitUntil(lambda: window.model.rowCount() == 5, timeout=WAIT_MS)
    return said


def test_photos_from_last_time_beyond_a_page_are_listed_once_those_listed_are_decided(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    engine_calls: test_desktop.EngineCalls,
) -> None:
    said = opened_in_pages_of_5(qtbot, window, tmp_path, monkeypatch, engine_calls)
    assert any("8 photos from last time are waiting" in s and "oldest 5" in s for s in said), said
    for _ in range(5):
        window.session.confirm_index(0)
        qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.model.rowCount() == 8, timeout=WAIT_MS)
    assert any("3 more photos from last time listed" in s for s in said), said
    assert [i.status for i in window.model.items] == ["confirmed"] * 5 + ["suggested"] * 3
    assert window.session.current_item() is window.model.item(5)


# -- 3. query plans that degrade with the library -------------------------------------------------


def test_remembering_a_confirmed_photo_looks_it_up_by_photo_and_content(
    tmp_path: Path,
) -> None:
    """Without statistics SQLite picks catalog_images_origin (two values) over the photo_id
    and sha256 indexes: memory.sync_photo then walks every remembered photo (5.4 ms) and
    every supplier image (3.5 ms) per confirm; at 36k remembered photos a confirm took
    18 ms, "Accept confident" on 299 photos 5.4 s, and a Ctrl+Z pressed meanwhile waited
    as long (r48/window_accept.py, r48/confirm_sql.py)."""
    path = grown_library(tmp_path / "lib", products=40, photos=30, decided=20, remember=True)
    with Library(path) as lib:
        pid = 25  # undecided
        found = plans(lib, lambda: (lib.confirm(pid), memory.sync_photo(lib, pid)))
        walks = {
            sql: plan
            for sql, plan in found.items()
            if "catalog_images" in sql
            and any("catalog_images_origin" in p for p in plan)
            and ("photo_id = " in sql or "sha256 = " in sql)
        }
        assert not walks, walks
        # ... and by the photo's and the picture's own indexes.
        lookups = [p for sql, plan in found.items() if "catalog_images" in sql for p in plan]
        assert any("catalog_images_photo" in p or "catalog_images_remembered" in p for p in lookups)
        assert any("catalog_images_sha" in p for p in lookups), lookups


def test_a_photos_decision_is_found_without_reading_every_decision(tmp_path: Path) -> None:
    """_LIVE ("id NOT IN (SELECT undoes FROM decisions WHERE action = 'undo' ...)") makes
    every decision query scan the whole decisions table (no index on undoes): 2.4-2.8 ms
    each at 44k decisions, three to five per key (photo_state, rejected_skus, undo)."""
    path = grown_library(tmp_path / "lib", products=40, photos=30, decided=20)
    with Library(path) as lib:
        found = plans(lib, lambda: (lib.photo_state(3), lib.undo(3), lib.photo_state(3)))
        scans = {
            sql: plan
            for sql, plan in found.items()
            if "FROM decisions" in sql
            and "photo_id = " in sql
            and any(p.startswith("SCAN decisions") for p in plan)
        }
        assert not scans, scans


def test_a_products_detail_reads_its_own_photos_not_every_decision(tmp_path: Path) -> None:
    """The Catalog tab's detail (overview.newest_confirmed_photos) read every live decision
    of the library to keep one product's: 160 ms per product at 40k decisions, so arrowing
    down the catalog at 30 keys/s left the detail 2.6 s behind (r48/window_times.py)."""
    # The same 2,000 products; SKU-000003 is confirmed once in one library, twice in the
    # other, among 40 and 4,000 decisions.
    small = grown_library(tmp_path / "small", products=2_000, photos=40, decided=40)
    big = grown_library(tmp_path / "big", products=2_000, photos=4_000, decided=4_000)

    def steps(path: Path) -> int:
        with Library(path) as lib:
            n = [0]

            def tick() -> int:
                n[0] += 1
                return 0

            lib.db.conn.set_progress_handler(tick, 100)
            photos, total = overview.newest_confirmed_photos(lib, "SKU-000003")
            lib.db.conn.set_progress_handler(None, 0)
            assert photos and total
            return n[0]

    few, many = steps(small), steps(big)
    # A read by product grows with the product's photos (1 -> 2); reading every decision
    # grows with the library (40 -> 4,000).
    assert many <= 5 * few + 50, (few, many)


def test_taking_the_last_undecided_photo_off_the_list_lists_the_next_page(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    engine_calls: test_desktop.EngineCalls,
) -> None:
    """Taking the last undecided photo off the list (Delete) leaves the list done, as a
    decision does: the next page comes (review 49: only a decision brought it)."""
    said = opened_in_pages_of_5(qtbot, window, tmp_path, monkeypatch, engine_calls)
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT_MS)
    for _ in range(4):
        window.session.confirm_index(0)
        qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT_MS)
    assert window.session.current_item() is window.model.item(4)
    window.session.remove_current()  # the fifth, the last undecided one: off the list
    qtbot.wait(200)
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT_MS)
    assert window.model.rowCount() == 4 + 3, (window.model.rowCount(), said[-3:])


def test_a_photo_taken_off_the_list_this_session_does_not_come_back_as_from_last_time(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    engine_calls: test_desktop.EngineCalls,
) -> None:
    """A photo dropped by mistake today and taken off the list (Delete) stays off it until
    the library opens again, as Delete promises: the next page of photos from last time
    leaves it out (its id is above the page), and counts only the photos it lists."""
    mistake = tmp_path / "dropped" / "mistake.jpg"
    mistake.parent.mkdir()
    product_image(7).save(mistake, quality=90)
    said = opened_in_pages_of_5(qtbot, window, tmp_path, monkeypatch, engine_calls)
    window.session.add_paths([mistake])
    qtbot.waitUntil(lambda: window.model.rowCount() == 6, timeout=WAIT_MS)
    qtbot.waitUntil(
        lambda: window.model.item(5).status == "suggested" and not window.worker.busy,
        timeout=WAIT_MS,
    )
    window.session.select_row(5)
    window.session.remove_current()  # dropped by mistake: off the list
    window.session.select_row(0)
    for _ in range(5):
        window.session.confirm_index(0)
        qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.model.rowCount() >= 8, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT_MS)
    listed = [i.path.name for i in window.model.items]
    assert "mistake.jpg" not in listed, (listed, said[-2:])
    assert any("3 more photos from last time listed" in s for s in said), said


def test_photos_still_being_matched_again_hold_back_the_next_page(
    qtbot: Any,
    window: MainWindow,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    engine_calls: test_desktop.EngineCalls,
) -> None:
    """Photos from last time matched under another model are listed as being matched again;
    deciding the few suggested ones meanwhile does not bring the next page, which would
    let the list (previews and all) grow by a page each time staff caught up."""
    import threading

    from desktop_app import session as session_module

    monkeypatch.setattr(session_module, "WAITING_PAGE", 5)
    with engine_calls.by_test():
        path = grown_library(tmp_path / "lib", products=50, photos=12, thumbs=True)
        with Library(path) as lib:  # photos 2-5 were matched under a model no longer in use
            lib.db.execute(
                "UPDATE suggestions SET model_version = 'retired' WHERE photo_id BETWEEN 2 AND 5"
            )
            for pid in range(2, 6):
                shot = tmp_path / "shots" / f"IMG_{pid}.jpg"
                shot.parent.mkdir(exist_ok=True)
                product_image(pid).save(shot, quality=90)
                lib.db.execute(
                    "UPDATE photos SET path = ?, sha256 = ? WHERE id = ?",
                    [str(shot), file_sha256(shot), pid],
                )
    release = threading.Event()
    original = Library.match

    def slow(self: Library, *args: Any, **kw: Any) -> Any:
        release.wait(20)
        return original(self, *args, **kw)

    monkeypatch.setattr(Library, "match", slow)
    said: list[str] = []
    window.session.message.connect(said.append)
    window.open_library(path)
    qtbot.waitUntil(lambda: window.model.rowCount() == 5, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: window.model.item(0).status == "suggested", timeout=WAIT_MS)
    assert [i.status for i in window.model.items][1:] == ["pending"] * 4
    window.session.select_row(0)
    window.session.confirm_index(0)
    release.set()
    qtbot.waitUntil(lambda: not window.worker.busy, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: all(i.status != "pending" for i in window.model.items), timeout=WAIT_MS)
    statuses = [i.status for i in window.model.items]
    assert len(statuses) == 5, (statuses, said)
