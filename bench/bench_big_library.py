"""A year in the shop: what the engine pays per action on a library grown big (review 48).

    nice -n 5 .venv/bin/python bench/bench_big_library.py                  # 20k products
    .venv/bin/python bench/bench_big_library.py --products 2000 --photos 4000 --json

A synthetic library (stored random clustered embeddings, no encoding, as
``bench/bench_scale.py`` grows one): ``--products`` products with one supplier picture each,
``--photos`` photos of which all but 300 are decided (nine in ten confirmed, the rest no
match, one in fifty confirmations undone and made again) and every confirmed photo
remembered as a reference. Each measure has its baseline in the same run, on the same
library:

- ``index after an unclean exit``: one confirmation, then the process "dies" (no close);
  opening the index again catches the file up, against rebuilding it from the stored
  embeddings (what every open after a crash did before).
- ``confirm``: ``Library.confirm`` of undecided photos (decision + instant memory), with this
  schema's indexes against schema 8's (an index on ``origin``, which SQLite without
  statistics chose over the photo's own), swapped in and out on the same database.
- ``decision lookup``: a photo's live decision, this query (the undo found through its
  index) against the one before with schema 8's indexes (every decision read per query).
- ``product detail``: the Catalog tab's photos confirmed to one product,
  ``overview.newest_confirmed_photos`` against reading every decision as it did before.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a plain script, not an installed package
    sys.path.insert(0, str(REPO))

from engine import overview  # noqa: E402
from engine.db import utcnow  # noqa: E402
from engine.decisions import _COLUMNS, _LIVE, effective_states  # noqa: E402
from engine.library import Library  # noqa: E402

DIM = 1280
OLD_PHOTO_STATE_SQL = (  # decisions.photo_state before schema 9
    f"SELECT {_COLUMNS} FROM decisions WHERE action != 'undo' AND id NOT IN "
    "(SELECT undoes FROM decisions WHERE action = 'undo' AND undoes IS NOT NULL) "
    "AND photo_id = ? AND action IN ('confirm', 'no_match') ORDER BY id DESC LIMIT 1"
)
PHOTO_STATE_SQL = (  # decisions.photo_state's query now
    f"SELECT {_COLUMNS} FROM decisions WHERE {_LIVE} "
    "AND photo_id = ? AND action IN ('confirm', 'no_match') ORDER BY id DESC LIMIT 1"
)
NEW_INDEXES = (
    "catalog_images_remembered",
    "catalog_images_supplied",
    "decisions_undone",
    "decisions_sku",
)


def grow(lib: Library, products: int, photos: int, rng: np.random.Generator) -> None:
    """The synthetic year (see the module docstring), written in a few transactions."""
    version = lib.model_version
    centres = rng.standard_normal((512, DIM)).astype(np.float32)

    def unit(ids: np.ndarray) -> np.ndarray:
        v = centres[ids % 512] + 0.6 * rng.standard_normal((len(ids), DIM)).astype(np.float32)
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype("<f4")

    now = utcnow()
    conn = lib.db.conn
    conn.execute("BEGIN IMMEDIATE")
    skus = [f"SKU-{i:06d}" for i in range(products)]
    conn.executemany(
        "INSERT INTO products (sku, name, category, supplier, price, created_at, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (s, f"Product {s}", f"Cat {i % 60}", f"Supplier {i % 6}", 1.99, now, now)
            for i, s in enumerate(skus)
        ],
    )
    conn.executemany(
        "INSERT INTO catalog_images (id, sku, path, sha256, origin, added_at, updated_at) "
        "VALUES (?, ?, ?, ?, 'catalog', ?, ?)",
        [(i + 1, s, f"/supplier/{s}.jpg", f"c{i:063x}", now, now) for i, s in enumerate(skus)],
    )
    vecs = unit(np.arange(products))
    conn.executemany(
        "INSERT INTO embeddings (image_id, model_version, vector) VALUES (?, ?, ?)",
        [(i + 1, version, vecs[i].tobytes()) for i in range(products)],
    )
    sku_of = rng.integers(0, products, photos)
    pvecs = unit(sku_of)
    next_image = products + 1
    for pid in range(1, photos + 1):
        k = pid - 1
        sku = skus[int(sku_of[k])]
        path = f"/photos/day-{k * 365 // photos:03d}/IMG_{pid:05d}.jpg"
        conn.execute(
            "INSERT INTO photos (id, path, sha256, added_at) VALUES (?, ?, ?, ?)",
            [pid, path, f"p{pid:063x}", now],
        )
        conn.execute(
            "INSERT INTO photo_embeddings (photo_id, model_version, vector) VALUES (?, ?, ?)",
            [pid, version, pvecs[k].tobytes()],
        )
        conn.executemany(
            "INSERT INTO suggestions (photo_id, model_version, rank, sku, image_id, "
            "similarity, score, created_at) VALUES (?, ?, ?, ?, ?, 0.6, ?, ?)",
            [
                (pid, version, r + 1, s, int(sku_of[k] + r) % products + 1, 0.7 - r / 10, now)
                for r, s in enumerate(
                    [sku] + [skus[(int(sku_of[k]) + r) % products] for r in range(1, 5)]
                )
            ],
        )
        if pid > photos - 300:
            continue  # waiting for review
        if pid % 10 == 0:
            conn.execute(
                "INSERT INTO decisions (photo_id, action, model_version, decided_at) "
                "VALUES (?, 'no_match', ?, ?)",
                [pid, version, now],
            )
            continue
        confirm = (
            "INSERT INTO decisions (photo_id, action, sku, rank, score, model_version, "
            "decided_at) VALUES (?, 'confirm', ?, 1, 0.7, ?, ?)"
        )
        first = conn.execute(confirm, [pid, sku, version, now]).lastrowid
        if pid % 50 == 1:  # undone, then made again
            conn.execute(
                "INSERT INTO decisions (photo_id, action, sku, model_version, undoes, "
                "decided_at) VALUES (?, 'undo', ?, ?, ?, ?)",
                [pid, sku, version, first, now],
            )
            conn.execute(confirm, [pid, sku, version, now])
        conn.execute(
            "INSERT INTO catalog_images (id, sku, path, sha256, origin, photo_id, added_at, "
            "updated_at) VALUES (?, ?, ?, ?, 'confirmed', ?, ?, ?)",
            [next_image, sku, path, f"p{pid:063x}", pid, now, now],
        )
        conn.execute(
            "INSERT INTO embeddings (image_id, model_version, vector) VALUES (?, ?, ?)",
            [next_image, version, pvecs[k].tobytes()],
        )
        next_image += 1
    conn.execute("COMMIT")


def ms_each(fn: Callable[[], object], repeat: int) -> float:
    """Median milliseconds of ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def swap_to_schema_8_indexes(lib: Library, old: bool) -> None:
    """Schema 8's catalog-image indexes (``old``) or this schema's, on the same database."""
    conn = lib.db.conn
    if old:
        for name in NEW_INDEXES:
            conn.execute(f"DROP INDEX {name}")
        conn.execute("CREATE INDEX catalog_images_origin ON catalog_images(origin)")
    else:
        conn.execute("DROP INDEX catalog_images_origin")
        from engine.db import MIGRATIONS

        MIGRATIONS[8](lib.db)  # v9: the indexes again


def unclean_exit(lib: Library) -> None:
    lib.db.close()
    lib._lock.release()  # type: ignore[union-attr]


def old_newest_confirmed(lib: Library, sku: str) -> int:
    """The Catalog tab's product detail before: every live decision read for one product."""
    states = sorted(effective_states(lib).items(), key=lambda item: item[1].id)
    return len([pid for pid, d in states if d.action == "confirm" and d.sku == sku])


def measure(path: Path, repeat: int) -> dict[str, object]:
    out: dict[str, object] = {}
    lib = Library(path)
    _ = lib.index
    waiting = [r.id for r in overview.undecided_photos(lib, limit=repeat * 2 + 1)]
    lib.confirm(waiting.pop())  # one reference more than the file holds
    unclean_exit(lib)

    lib = Library(path)
    t0 = time.perf_counter()
    n = len(lib.index)
    out["index_catch_up_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    t0 = time.perf_counter()
    lib.rebuild_index()
    out["index_rebuild_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    out["index_entries"] = n

    pids = [int(r[0]) for r in lib.db.execute("SELECT id FROM photos ORDER BY random() LIMIT 50")]
    half = len(waiting) // 2
    new, old = waiting[:half], waiting[half:]
    out["confirm_ms"] = round(ms_each(lambda: lib.confirm(new.pop()), len(new)), 2)
    it = iter(pids * repeat)
    out["photo_state_ms"] = round(
        ms_each(lambda: lib.db.execute(PHOTO_STATE_SQL, [next(it)]).fetchone(), repeat), 3
    )
    swap_to_schema_8_indexes(lib, old=True)  # the baselines: schema 8's indexes
    out["confirm_schema8_ms"] = round(ms_each(lambda: lib.confirm(old.pop()), len(old)), 2)
    it = iter(pids * repeat)
    out["photo_state_old_ms"] = round(
        ms_each(lambda: lib.db.execute(OLD_PHOTO_STATE_SQL, [next(it)]).fetchone(), repeat), 3
    )
    swap_to_schema_8_indexes(lib, old=False)

    skus = [
        str(r[0])
        for r in lib.db.execute(
            "SELECT sku FROM decisions WHERE action = 'confirm' ORDER BY random() LIMIT 10"
        )
    ]
    it = iter(skus * repeat)
    out["product_detail_ms"] = round(
        ms_each(lambda: overview.newest_confirmed_photos(lib, next(it)), min(repeat, 10)), 2
    )
    it = iter(skus * repeat)
    out["product_detail_old_ms"] = round(
        ms_each(lambda: old_newest_confirmed(lib, next(it)), min(repeat, 10)), 2
    )
    lib.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--products", type=int, default=20_000)
    ap.add_argument("--photos", type=int, default=40_000)
    ap.add_argument("--repeat", type=int, default=100, help="calls per timed action")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="shopmatch-big-"))
    try:
        path = work / "lib"
        t0 = time.perf_counter()
        with Library(path) as lib:
            lib.local_features = False
            grow(lib, args.products, args.photos, np.random.default_rng(0))
            lib.rebuild_index()
        built = round(time.perf_counter() - t0, 1)
        db_mb = round((path / "shopmatch.db").stat().st_size / 1e6)
        result = {
            "products": args.products,
            "photos": args.photos,
            "build_s": built,
            "db_mb": db_mb,
        }
        result.update(measure(path, args.repeat))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"{args.products:,} products, {args.photos:,} photos "
        f"({result['index_entries']:,} references, database {db_mb} MB), built in {built} s"
    )
    pairs = [
        ("index after an unclean exit (ms)", "index_catch_up_ms", "index_rebuild_ms"),
        ("confirm (ms)", "confirm_ms", "confirm_schema8_ms"),
        ("decision lookup (ms)", "photo_state_ms", "photo_state_old_ms"),
        ("product detail (ms)", "product_detail_ms", "product_detail_old_ms"),
    ]
    print(f"{'':34} {'now':>9} {'before':>9} {'ratio':>7}")
    for label, now, before in pairs:
        a, b = float(result[now]), float(result[before])  # type: ignore[arg-type]
        print(f"{label:34} {a:9.3f} {b:9.3f} {b / a if a else float('inf'):6.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
