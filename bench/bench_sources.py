"""What checking a confirmed photo's content costs before it is embedded or learnt.

    .venv/bin/python bench/bench_sources.py                     # the grocery train photos
    .venv/bin/python bench/bench_sources.py --generated 2000 --side 3000

A model switch, a training run and its gate read every confirmed photo again. A file name
reused by a later photo (a phone's IMG_0001.jpg) must not stand in for the confirmed one, so
``thumbnails.readable_source`` now checks that the original still holds the recorded content
(its hash, remembered per size and time) before using it. Measured against the baseline in
the same run: the earlier check, which only asked whether a file of that name existed. The
first pass hashes every photo (what the first model switch or run of a session pays); the
second finds the hashes remembered (later runs in the same session). The page cache is warm
for all three (the baseline runs first and reads nothing, so the first pass reads the files
once from wherever they are).
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a plain script, not an installed package
    sys.path.insert(0, str(REPO_ROOT))

from engine.manifest import file_sha256  # noqa: E402
from engine.thumbnails import _content_hash, readable_source, thumbnail_path  # noqa: E402

GROCERY = REPO_ROOT.parent / "shared" / "data" / "grocery"


def grocery_photos() -> list[Path]:
    with open(GROCERY / "train.csv", newline="", encoding="utf-8") as fh:
        return [GROCERY / row["photo"] for row in csv.DictReader(fh)]


def generated_photos(folder: Path, n: int, side: int) -> list[Path]:
    """``n`` phone-sized JPEGs (noise compresses badly, as real photos' detail does)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (side * 3 // 4, side, 3), dtype=np.uint8)
    paths = []
    for i in range(n):
        path = folder / f"IMG_{i:05d}.jpg"
        Image.fromarray(np.roll(base, i, axis=1)).save(path, quality=90)
        paths.append(path)
    return paths


def baseline(root: Path, path: Path, sha: str) -> Path | None:
    """The earlier readable_source: whichever file exists under that name."""
    thumb = thumbnail_path(root, sha)
    return path if path.is_file() else thumb if thumb.is_file() else None


def timed(label: str, fn: object, rows: list[tuple[Path, str]], root: Path) -> float:
    start = time.perf_counter()
    for path, sha in rows:
        assert fn(root, path, sha) == path  # type: ignore[operator]
    seconds = time.perf_counter() - start
    print(f"{label:<34} {seconds * 1000:9.1f} ms  ({seconds / len(rows) * 1e6:7.1f} µs/photo)")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generated", type=int, default=0, help="N generated photos instead")
    parser.add_argument("--side", type=int, default=3000, help="generated photos' width (px)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "thumbs"
        if args.generated or not GROCERY.is_dir():
            paths = generated_photos(Path(tmp), args.generated or 500, args.side)
        else:
            paths = grocery_photos()
        rows = [(p, file_sha256(p)) for p in paths]  # recorded when matched; warms the cache
        size = sum(p.stat().st_size for p in paths) / 1e6
        print(f"{len(rows)} photos, {size:.0f} MB")
        _content_hash.cache_clear()
        base = timed("baseline (name exists)", baseline, rows, root)
        first = timed("content checked, first pass", readable_source, rows, root)
        again = timed("content checked, hashes remembered", readable_source, rows, root)
        print(f"first pass: {first / base:.0f}x the baseline; remembered: {again / base:.1f}x")


if __name__ == "__main__":
    main()
