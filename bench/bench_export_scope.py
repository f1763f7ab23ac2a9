"""One delivery's export over a large library: how long finding its photos takes.

    .venv/bin/python bench/bench_export_scope.py                  # 50,000 photos
    .venv/bin/python bench/bench_export_scope.py --photos 200000 --repeat 5

A year of deliveries leaves tens of thousands of photo rows. The export dialog lists their
folders (``photo_folders``) before it shows, and a folder's export tests every photo's path
(``photo_ids`` with a folder scope). Both are measured on a real library file against a
baseline in the same run: the same questions answered with one ``pathlib.Path`` per photo
(``Path.parent`` to group, ``Path.is_relative_to`` and the folder resolved per photo to
test), as the first version did. A day's scope (parsing every stored time) is printed
beside them for scale. Medians of ``--repeat`` runs; variants interleave per repeat.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a plain script, not an installed package
    sys.path.insert(0, str(REPO_ROOT))

from engine.library import Library  # noqa: E402
from engine.photo_scope import PhotoScope, photo_folders, photo_ids  # noqa: E402

FOLDER = Path("/home/shop/Pictures/delivery-007")


def fill(lib: Library, n: int) -> None:
    now = datetime.now(UTC)
    lib.db.conn.executemany(
        "INSERT INTO photos(path, sha256, added_at) VALUES (?, ?, ?)",
        [
            (
                f"/home/shop/Pictures/delivery-{i // 500:03d}/IMG_{i:06d}.jpg",
                f"{i:064x}",
                (now - timedelta(minutes=i)).isoformat(timespec="seconds"),
            )
            for i in range(n)
        ],
    )
    lib.db.conn.commit()


def baseline_folders(lib: Library) -> int:
    seen: dict[Path, int] = {}
    for (path,) in lib.db.execute("SELECT path FROM photos"):
        folder = Path(str(path)).parent
        seen[folder] = seen.get(folder, 0) + 1
    return len(seen)


def baseline_folder_ids(lib: Library) -> int:
    out = []
    for pid, path in lib.db.execute("SELECT id, path FROM photos ORDER BY id"):
        p = Path(str(path))
        if p.is_relative_to(FOLDER) or p.is_relative_to(FOLDER.resolve()):
            out.append(pid)
    return len(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="shopmatch-scope-") as work,
        Library(Path(work) / "lib") as lib,
    ):
        fill(lib, args.photos)
        conn = lib.db.conn
        runs: dict[str, Callable[[], int]] = {
            "folder list, baseline": lambda: baseline_folders(lib),
            "folder list": lambda: len(photo_folders(conn)),
            "one folder, baseline": lambda: baseline_folder_ids(lib),
            "one folder": lambda: len(photo_ids(conn, PhotoScope(folder=FOLDER))),
            "one day": lambda: len(photo_ids(conn, PhotoScope.day(date.today()))),
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeat):
            for name, fn in runs.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"{args.photos:,} photos, median of {args.repeat}")
    for name, seconds in med.items():
        print(f"  {name:<24} {seconds * 1000:8.1f} ms")
    print(f"folder list: {med['folder list, baseline'] / med['folder list']:.1f}x faster")
    print(f"one folder:  {med['one folder, baseline'] / med['one folder']:.1f}x faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
