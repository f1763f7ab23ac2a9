"""Vector search: engine VectorIndex (exact and HNSW) vs numpy brute force, 1k to 100k images.

    .venv/bin/python bench/bench_search.py                        # 1k, 10k, 100k
    .venv/bin/python bench/bench_search.py --sizes 1000 20000 50000 --json --out search.json

Answers "up to what catalog size is exact search as fast as the graph?", i.e. whether
``EXACT_SEARCH_LIMIT`` in engine/index.py is set right. Catalogs are synthetic but clustered
like real embeddings: 1280-d float32 unit vectors, one per product, scattered around random
"category" centres; queries are noisy copies of random products (a shop photo of a catalogued
product never equals its catalog image). Per catalog size it reports:

* build: ``VectorIndex.build`` (the HNSW graph is built whatever the search mode) vs stacking
  the float32 matrix for numpy; save+load round trip and file size (``.usearch`` vs ``.npy``);
* single-query latency p50/p95 (batch of 1, what the app does per photo) and batch-of-64
  throughput;
* recall@10 against numpy's exact top 10 (ties aside, exact search must score 1.000).

Each query asks for ``--fetch`` results; the default 100 is what ``matching.rank_skus`` asks
for with one image per SKU (``SCORE_POOL`` 50 x 2), and HNSW widens its beam to the count it
is asked for, so fetching 10 instead is faster and less accurate. The numpy baseline
(``q @ X.T`` + ``argpartition``) is measured in the same run; ratios are numpy time / variant
time (>1 = faster than numpy).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a plain script, not an installed package
    sys.path.insert(0, str(REPO_ROOT))

from engine.index import EXACT_SEARCH_LIMIT, VectorIndex  # noqa: E402

DIM = 1280
PRODUCTS_PER_CATEGORY = 50
PRODUCT_SPREAD = 0.8  # noise norm around a centre: products of a category have cosine ~0.6
BASELINE = "numpy exact"
Search = Callable[[np.ndarray, int], np.ndarray]


def unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=-1, keepdims=True)
    return x


def noise(rng: np.random.Generator, rows: int, norm: float) -> np.ndarray:
    """Random directions of length ~``norm`` (float32, generated in chunks to bound memory)."""
    out = np.empty((rows, DIM), dtype=np.float32)
    for start in range(0, rows, 10_000):
        stop = min(rows, start + 10_000)
        out[start:stop] = rng.standard_normal((stop - start, DIM), dtype=np.float32)
    out *= norm / np.sqrt(DIM)
    return out


def make_catalog(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` unit vectors, ``PRODUCTS_PER_CATEGORY`` per random centre."""
    centres = unit(rng.standard_normal((max(1, n // PRODUCTS_PER_CATEGORY), DIM)).astype("f4"))
    vectors = noise(rng, n, PRODUCT_SPREAD)
    vectors += centres[rng.integers(0, len(centres), n)]
    return unit(vectors)


def make_queries(
    catalog: np.ndarray, count: int, spread: float, rng: np.random.Generator
) -> np.ndarray:
    """Noisy copies of random catalog products (cosine ~1/sqrt(1+spread^2) to their source)."""
    picks = catalog[rng.integers(0, len(catalog), count)]
    return unit(picks + noise(rng, count, spread))


def numpy_search(matrix: np.ndarray) -> Search:
    """Brute force as anyone would write it: one matmul, partial sort, sort the head."""

    def search(queries: np.ndarray, count: int) -> np.ndarray:
        scores = queries @ matrix.T
        count = min(count, matrix.shape[0])
        head = np.argpartition(-scores, count - 1, axis=1)[:, :count]
        order = np.argsort(-np.take_along_axis(scores, head, axis=1), axis=1)
        return np.take_along_axis(head, order, axis=1)

    return search


def index_search(index: VectorIndex, exact: bool) -> Search:
    def search(queries: np.ndarray, count: int) -> np.ndarray:
        keys, _ = index.search(queries, count, exact=exact)
        return keys.astype(np.int64)

    return search


@dataclass
class Row:
    size: int
    method: str
    build_s: float
    save_load_s: float
    file_mb: float
    p50_ms: float
    p95_ms: float
    batch64_qps: float
    recall_at_10: float
    p50_speedup: float = 1.0
    qps_speedup: float = 1.0


def single_latencies(search: Search, queries: np.ndarray, fetch: int) -> np.ndarray:
    out = np.empty(len(queries))
    for i in range(len(queries)):
        start = time.perf_counter()
        search(queries[i : i + 1], fetch)
        out[i] = time.perf_counter() - start
    return out * 1000.0


def batch_qps(search: Search, queries: np.ndarray, fetch: int, seconds: float) -> float:
    """Queries per second in batches of 64, cycling for at least ``seconds``."""
    batches = [queries[i : i + 64] for i in range(0, len(queries) - 63, 64)]
    search(batches[0], fetch)
    done, start = 0, time.perf_counter()
    while True:
        for batch in batches:
            search(batch, fetch)
            done += len(batch)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def recall(found: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    pairs = zip(found, truth, strict=True)
    hits = sum(len(set(f[:k].tolist()) & set(t[:k].tolist())) for f, t in pairs)
    return hits / (len(truth) * k)


def bench_size(n: int, args: argparse.Namespace, workdir: Path) -> list[Row]:
    rng = np.random.default_rng(n)
    start = time.perf_counter()
    catalog = make_catalog(n, rng)
    queries = make_queries(catalog, args.queries, args.query_spread, rng)
    print(f"\n{n:,} vectors generated in {time.perf_counter() - start:.1f} s", flush=True)

    # numpy "build" is only the contiguous float32 matrix; its file is a plain .npy.
    start = time.perf_counter()
    matrix = np.ascontiguousarray(catalog, dtype=np.float32)
    np_build = time.perf_counter() - start
    npy = workdir / f"catalog-{n}.npy"
    start = time.perf_counter()
    np.save(npy, matrix)
    matrix = np.load(npy)
    np_io = time.perf_counter() - start

    keys = np.arange(n, dtype=np.uint64)  # key == row, so results compare directly
    start = time.perf_counter()
    built = VectorIndex.build(keys, catalog, "bench")
    ix_build = time.perf_counter() - start
    print(f"  VectorIndex.build {ix_build:.1f} s", flush=True)
    path = workdir / f"catalog-{n}.usearch"
    start = time.perf_counter()
    built.save(path)
    loaded = VectorIndex.load(path)
    ix_io = time.perf_counter() - start
    if loaded is None:
        raise SystemExit(f"VectorIndex.load could not read back {path}")
    del built

    ix_mb = path.stat().st_size / 1e6
    truth = numpy_search(matrix)(queries, 10)
    methods: dict[str, tuple[Search, float, float, float]] = {
        BASELINE: (numpy_search(matrix), np_build, np_io, npy.stat().st_size / 1e6),
        "VectorIndex exact": (index_search(loaded, True), ix_build, ix_io, ix_mb),
        "VectorIndex HNSW": (index_search(loaded, False), ix_build, ix_io, ix_mb),
    }
    rows: list[Row] = []
    for name, (search, build_s, io_s, mb) in methods.items():
        search(queries[:4], args.fetch)  # warm-up (page-in, thread pool start)
        lat = single_latencies(search, queries, args.fetch)
        qps = batch_qps(search, queries, args.fetch, args.seconds)
        found = search(queries, max(10, args.fetch))
        rows.append(
            Row(
                size=n,
                method=name,
                build_s=build_s,
                save_load_s=io_s,
                file_mb=mb,
                p50_ms=float(np.percentile(lat, 50)),
                p95_ms=float(np.percentile(lat, 95)),
                batch64_qps=qps,
                recall_at_10=recall(found, truth),
            )
        )
        print(f"  {name}: done", flush=True)
    base = rows[0]
    for row in rows:
        row.p50_speedup = base.p50_ms / row.p50_ms
        row.qps_speedup = row.batch64_qps / base.batch64_qps
    npy.unlink()
    path.unlink()
    return rows


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    print(
        f"\n{DIM}-d float32, fetch {args.fetch} per query, {args.queries} queries "
        f"(query spread {args.query_spread}), batch-64 for >= {args.seconds:g} s; "
        f"speed-up = {BASELINE} time / variant time"
    )
    header = (
        f"{'size':>7s} {'method':18s} {'build s':>8s} {'save+load s':>11s} {'file MB':>8s} "
        f"{'p50 ms':>8s} {'p95 ms':>8s} {'p50 x':>7s} {'b64 q/s':>9s} {'b64 x':>7s} "
        f"{'recall@10':>9s}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.size:7d} {r.method:18s} {r.build_s:8.2f} {r.save_load_s:11.2f} "
            f"{r.file_mb:8.1f} {r.p50_ms:8.3f} {r.p95_ms:8.3f} {r.p50_speedup:6.2f}x "
            f"{r.batch64_qps:9.0f} {r.qps_speedup:6.2f}x {r.recall_at_10:9.3f}"
        )
    print(f"\nengine threshold: EXACT_SEARCH_LIMIT = {EXACT_SEARCH_LIMIT:,}")
    by_size: dict[int, dict[str, Row]] = {}
    for r in rows:
        by_size.setdefault(r.size, {})[r.method] = r
    for size, got in by_size.items():
        exact, hnsw = got["VectorIndex exact"], got["VectorIndex HNSW"]
        auto = "exact" if size <= EXACT_SEARCH_LIMIT else "HNSW"
        print(
            f"  {size:7d}: exact p50 {exact.p50_ms:.3f} ms vs HNSW {hnsw.p50_ms:.3f} ms "
            f"({exact.p50_ms / hnsw.p50_ms:.1f}x), HNSW recall@10 {hnsw.recall_at_10:.3f}; "
            f"engine picks {auto}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=256, help="distinct query vectors")
    parser.add_argument(
        "--fetch", type=int, default=100, help="results per query (app: 100; recall uses top 10)"
    )
    parser.add_argument(
        "--query-spread", type=float, default=1.0, help="query noise (1.0: cosine ~0.7)"
    )
    parser.add_argument("--seconds", type=float, default=2.0, help="min time per batch run")
    parser.add_argument("--json", action="store_true", help="also write results as JSON (to --out)")
    parser.add_argument(
        "--out", type=Path, help="JSON file to write (implies --json; default bench_search.json)"
    )
    args = parser.parse_args(argv)
    if args.json or args.out:
        args.json, args.out = True, args.out or Path("bench_search.json")
    if args.queries < 64:
        parser.error("--queries must be at least 64 (one batch)")
    if min(args.sizes) < 10:
        parser.error("--sizes must be at least 10 (recall@10)")

    import usearch

    print(f"numpy {np.__version__}, usearch {usearch.__version__}")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        for n in args.sizes:
            rows.extend(bench_size(n, args, Path(tmp)))
    print_table(rows, args)
    if args.json:
        result = {
            "dim": DIM,
            "fetch": args.fetch,
            "queries": args.queries,
            "query_spread": args.query_spread,
            "exact_search_limit": EXACT_SEARCH_LIMIT,
            "baseline": BASELINE,
            "rows": [asdict(r) for r in rows],
        }
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
