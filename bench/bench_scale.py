"""Scale benchmark: import throughput, index size, query latency, open time and UI queries.

Two parts, each in its own child process so its peak memory (ru_maxrss) is its own:

* ``import``: a generated catalog of ``--images`` real JPEG files imported into a fresh
  library (decode on a thread pool beside the ONNX encoder, then local keypoints), timed
  per stage from the engine's own progress callbacks.
* ``library``: a synthetic library grown to 1k, 10k and 100k catalog images with stored
  embeddings (random clustered unit vectors: no encoding needed, which is what a re-open or
  an index rebuild sees), 10% as many photos and decisions. At each size: index rebuild time
  and bytes on disk, library open time, index load (checksum and key-set check), query
  latency p50/p95 (raw index and the full ``rank_skus`` path with its SQL), HNSW recall@10
  against an exact scan, and the read queries the UI issues (``Library.products`` paging and
  text search, ``engine.overview``), plus the products query as it was before paging.

    nice -n 5 .venv/bin/python bench/bench_scale.py --images 2000 --sizes 1000 10000 100000
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from engine import overview  # noqa: E402
from engine.db import utcnow  # noqa: E402
from engine.library import Library  # noqa: E402
from engine.matching import rank_skus  # noqa: E402

OLD_PRODUCTS_SQL = (  # Library.products before this issue: sorts every match
    "SELECT * FROM products WHERE (sku LIKE :t OR name LIKE :t) "
    "ORDER BY sku = :exact DESC, name LIMIT :limit"
)


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def timed(fn: Callable[[], object], repeat: int = 1) -> tuple[float, float]:
    """(p50, p95) in milliseconds over ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return statistics.median(times), times[min(len(times) - 1, int(len(times) * 0.95))]


# --- import throughput -----------------------------------------------------------------------


def part_import(work: Path, n: int) -> dict[str, object]:
    from conftest import product_image

    cat = work / "import-catalog"
    if not (cat / "sheet.csv").exists():
        (cat / "images").mkdir(parents=True, exist_ok=True)
        lines = ["sku,name,category,supplier,price,image"]
        for i in range(n):
            img = product_image(i, size=320).resize((480, 360))
            img.save(cat / "images" / f"P{i:05d}.jpg", quality=88)
            lines.append(
                f"P{i:05d},Product {i},C{i % 40},S{i % 7},{i % 100}.99,images/P{i:05d}.jpg"
            )
        (cat / "sheet.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    lib_dir = work / "import-lib"
    shutil.rmtree(lib_dir, ignore_errors=True)
    stages: dict[str, list[float]] = {}

    def progress(p) -> None:  # type: ignore[no-untyped-def]
        now = time.perf_counter()
        span = stages.setdefault(p.stage, [now, now])
        span[1] = now

    with Library(lib_dir) as lib:
        t0 = time.perf_counter()
        report = lib.import_catalog(cat / "images", cat / "sheet.csv", progress=progress)
        total = time.perf_counter() - t0
    encode = stages.get("Encoding catalog images", [0.0, 0.0])
    keypoints = stages.get("Finding keypoints", [0.0, 0.0])
    return {
        "images": n,
        "added": report.added,
        "total_s": round(total, 1),
        "encode_s": round(encode[1] - encode[0], 1),
        "keypoints_s": round(keypoints[1] - keypoints[0], 1),
        "images_per_s_encode": round(n / max(1e-9, encode[1] - encode[0]), 1),
        "images_per_s_total": round(n / total, 1),
        "library_mb": round(
            sum(f.stat().st_size for f in lib_dir.rglob("*") if f.is_file()) / 1e6, 1
        ),
        "peak_rss_mb": peak_rss_mb(),
    }


# --- synthetic library -------------------------------------------------------------------------


def grow(lib: Library, start: int, stop: int, dim: int, rng: np.random.Generator) -> None:
    """Products, catalog images and stored embeddings ``start..stop``, plus 10% as many
    photos with a confirmation for every other one."""
    version = lib.model_version
    centres = np.random.default_rng(0).standard_normal((512, dim)).astype(np.float32)
    now = utcnow()
    chunk = 10_000
    conn = lib.db.conn
    for lo in range(start, stop, chunk):
        hi = min(stop, lo + chunk)
        ids = np.arange(lo, hi)
        vecs = centres[ids % 512] + 0.6 * rng.standard_normal((hi - lo, dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(
            "INSERT INTO products (sku, name, category, supplier, price, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    f"SKU-{i:06d}",
                    f"Product {i} {'blue' if i % 3 else 'red'} box",
                    f"Cat {i % 40}",
                    f"Supplier {i % 7}",
                    i % 100 + 0.99,
                    now,
                    now,
                )
                for i in ids.tolist()
            ],
        )
        conn.executemany(
            "INSERT INTO catalog_images (id, sku, path, sha256, origin, added_at, updated_at) "
            "VALUES (?, ?, ?, ?, 'catalog', ?, ?)",
            [
                (i + 1, f"SKU-{i:06d}", f"/supplier/SKU-{i:06d}.jpg", f"{i:064x}", now, now)
                for i in ids.tolist()
            ],
        )
        conn.executemany(
            "INSERT INTO embeddings (image_id, model_version, vector) VALUES (?, ?, ?)",
            [(i + 1, version, v.tobytes()) for i, v in zip(ids.tolist(), vecs, strict=True)],
        )
        photos = [i for i in ids.tolist() if i % 10 == 0]
        conn.executemany(
            "INSERT INTO photos (id, path, sha256, added_at) VALUES (?, ?, ?, ?)",
            [(i + 1, f"/photos/{i}.jpg", f"p{i:063x}", now) for i in photos],
        )
        conn.executemany(
            "INSERT INTO decisions (photo_id, action, sku, rank, score, model_version, "
            "decided_at) VALUES (?, 'confirm', ?, 1, 0.9, ?, ?)",
            [(i + 1, f"SKU-{i:06d}", version, now) for i in photos if i % 20 == 0],
        )
        conn.execute("COMMIT")


def measure(lib_dir: Path, n: int, dim: int, rng: np.random.Generator) -> dict[str, object]:
    row: dict[str, object] = {"n": n}
    with Library(lib_dir) as lib:
        t0 = time.perf_counter()
        lib.rebuild_index()
        row["index_build_s"] = round(time.perf_counter() - t0, 2)
        path = lib.index_path
    row["index_mb"] = round(path.stat().st_size / 1e6, 1)
    row["db_mb"] = round((lib_dir / "shopmatch.db").stat().st_size / 1e6, 1)

    t0 = time.perf_counter()
    lib = Library(lib_dir)
    row["open_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    try:
        t0 = time.perf_counter()
        index = lib.index  # file read, size + CRC-32 check, key set against the database
        row["index_load_ms"] = round((time.perf_counter() - t0) * 1000, 1)
        lib.encoder  # noqa: B018  (load the ONNX session outside the timings)
        # Queries near catalog vectors (cosine ~0.94), as a photo of a catalogued product is.
        keys, vecs = index.matrix()
        picks = rng.choice(len(keys), 60, replace=len(keys) < 60)
        queries = vecs[picks] + 0.01 * rng.standard_normal((60, dim)).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        it = iter(queries)
        p50, p95 = timed(lambda: index.search(next(it)[None, :], 100), repeat=50)
        row["search_p50_ms"], row["search_p95_ms"] = round(p50, 2), round(p95, 2)
        it = iter(queries)
        p50, p95 = timed(lambda: rank_skus(lib, next(it)[None, :], 5), repeat=50)
        row["rank_p50_ms"], row["rank_p95_ms"] = round(p50, 2), round(p95, 2)
        hits = top1 = 0
        for q in queries[:20]:  # the top 10 of a 100-wide search, as rank_skus asks for
            approx, _ = index.search(q[None, :], 100)
            exact, _ = index.search(q[None, :], 10, exact=True)
            hits += len(set(approx[0, :10].tolist()) & set(exact[0].tolist()))
            top1 += int(approx[0, 0] == exact[0, 0])
        row["top1_agrees"] = round(top1 / 20, 3)
        row["recall_at_10"] = round(hits / 200, 3)

        def ms(fn: Callable[[], object]) -> float:
            return round(timed(fn, repeat=5)[0], 2)

        page = 50
        row["browse_first_page_ms"] = ms(lambda: lib.products("", limit=page))
        row["browse_middle_page_ms"] = ms(lambda: lib.products("", limit=page, offset=n // 2))
        row["search_common_ms"] = ms(lambda: lib.products("blue", limit=page))
        row["search_rare_ms"] = ms(lambda: lib.products(f"Product {n - 7} ", limit=page))
        row["search_sku_ms"] = ms(lambda: lib.products(f"SKU-{n // 3:06d}", limit=page))
        row["search_category_ms"] = ms(lambda: lib.products("box", "Cat 3", limit=page))
        row["search_before_ms"] = ms(
            lambda: list(
                lib.db.query(OLD_PRODUCTS_SQL, {"t": "%blue%", "exact": "blue", "limit": page})
            )
        )
        row["filters_ms"] = ms(lambda: overview.distinct_values(lib, "category"))
        row["sku_thumbs_ms"] = ms(
            lambda: overview.sku_thumbs(lib, [f"SKU-{i:06d}" for i in range(0, n, max(1, n // 30))])
        )
        row["undecided_ms"] = ms(lambda: overview.undecided_photos(lib))
        row["learning_stats_ms"] = ms(lambda: overview.learning_stats(lib))
    finally:
        lib.close()
    return row


def part_library(work: Path, sizes: list[int], dim: int) -> dict[str, object]:
    lib_dir = work / "scale-lib"
    shutil.rmtree(lib_dir, ignore_errors=True)
    rng = np.random.default_rng(1)
    rows = []
    done = 0
    with Library(lib_dir) as lib:
        lib.local_features = False  # synthetic images have no files to find keypoints in
    for n in sorted(sizes):
        with Library(lib_dir) as lib:
            t0 = time.perf_counter()
            grow(lib, done, n, dim, rng)
            fill_s = time.perf_counter() - t0
        done = n
        row = measure(lib_dir, n, dim, rng)
        row["fill_s"] = round(fill_s, 1)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return {"rows": rows, "peak_rss_mb": peak_rss_mb()}


# --- driver ----------------------------------------------------------------------------------


def child(part: str, args: argparse.Namespace) -> dict[str, object]:
    cmd = [
        sys.executable,
        __file__,
        "--part",
        part,
        "--work",
        str(args.work),
        "--images",
        str(args.images),
        "--dim",
        str(args.dim),
        "--sizes",
        *map(str, args.sizes),
    ]
    proc = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def table(result: dict[str, object]) -> str:
    imp = result.get("import")
    lines = []
    if isinstance(imp, dict):
        lines += [
            "| import | images | total s | encode s | keypoints s | img/s (encode) | img/s (all) "
            "| library MB | peak RSS MB |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| {imp['images']} JPEGs 480x360 | {imp['added']} | {imp['total_s']} | "
            f"{imp['encode_s']} | {imp['keypoints_s']} | {imp['images_per_s_encode']} | "
            f"{imp['images_per_s_total']} | {imp['library_mb']} | {imp['peak_rss_mb']} |",
            "",
        ]
    lib = result.get("library")
    if isinstance(lib, dict):
        rows = lib["rows"]
        keys = [k for k in rows[0] if k != "n"]  # type: ignore[index]
        lines.append("| metric | " + " | ".join(f"{r['n']:,}" for r in rows) + " |")  # type: ignore[index]
        lines.append("|---|" + "---|" * len(rows))  # type: ignore[arg-type]
        for k in keys:
            lines.append(f"| {k} | " + " | ".join(str(r[k]) for r in rows) + " |")  # type: ignore[index]
        lines.append(f"| peak RSS MB (whole run) | {lib['peak_rss_mb']} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("/tmp/shopmatch-scale"))
    ap.add_argument("--images", type=int, default=2000, help="catalog size of the import part")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    ap.add_argument("--dim", type=int, default=1280)
    ap.add_argument("--parts", nargs="+", default=["import", "library"])
    ap.add_argument("--part", help=argparse.SUPPRESS)
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.part == "import":
        print(json.dumps(part_import(args.work, args.images)))
        return 0
    if args.part == "library":
        print(json.dumps(part_library(args.work, args.sizes, args.dim)))
        return 0
    result = {part: child(part, args) for part in args.parts}
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
