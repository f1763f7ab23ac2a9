"""Reading a supplier's price list as an Excel workbook, against the same list as CSV.

    .venv/bin/python bench/bench_workbook.py                  # 5,000 and 50,000 products
    .venv/bin/python bench/bench_workbook.py --rows 20000 --repeat 5

A workbook is read cell by cell through openpyxl's full reader (``engine.sheet.read_sheet``
tells the two apart by content), which costs far more than parsing CSV text. The baseline
is the same rows written as CSV and read by the same ``read_sheet`` in the same run; the
ratio says how many times longer the workbook takes. Peak memory is measured in a child
process per variant (``ru_maxrss``, Linux), so one read does not hide the other.
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a plain script, not an installed package
    sys.path.insert(0, str(REPO_ROOT))

HEADERS = ["SKU", "Name", "Category", "Supplier", "Price", "Image", "EAN", "Colour"]


def write_lists(folder: Path, rows: int) -> tuple[Path, Path]:
    """The same price list as prices.csv and prices.xlsx (numbers as numbers)."""
    import openpyxl

    data = [
        [
            f"SKU-{i:06d}",
            f"Product {i}",
            "Dairy",
            "Acme",
            round(1 + i * 0.01, 2),
            f"img/{i}.jpg",
            4006381333931 + i,
            "red",
        ]
        for i in range(rows)
    ]
    sheet = folder / f"prices-{rows}.csv"
    with sheet.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(HEADERS)
        writer.writerows(data)
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("Products")
    ws.append(HEADERS)
    for row in data:
        ws.append(row)
    book = folder / f"prices-{rows}.xlsx"
    wb.save(book)
    return sheet, book


def read_once(path: Path) -> dict[str, float]:
    """Child process: read the sheet once; seconds, rows and peak memory (MB)."""
    from engine.sheet import read_sheet

    start = time.perf_counter()
    sheet = read_sheet(path)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "rows": len(sheet.rows), "peak_mb": peak}


def measure(path: Path, repeat: int) -> dict[str, float]:
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(path)],
            capture_output=True,
            text=True,
            check=True,
        )
        runs.append(json.loads(out.stdout))
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "rows": runs[0]["rows"],
        "peak_mb": max(r["peak_mb"] for r in runs),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[5000, 50000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(read_once(args.child)))
        return 0
    print("baseline: the same rows as CSV, same read_sheet (ratio = workbook / CSV time)\n")
    print(f"{'rows':>8} {'CSV s':>8} {'xlsx s':>8} {'ratio':>7} {'CSV MB':>8} {'xlsx MB':>8}")
    with tempfile.TemporaryDirectory(prefix="bench-workbook-") as tmp:
        for rows in args.rows:
            sheet, book = write_lists(Path(tmp), rows)
            base, wbk = measure(sheet, args.repeat), measure(book, args.repeat)
            assert base["rows"] == wbk["rows"] == rows, (base, wbk)
            print(
                f"{rows:>8} {base['seconds']:8.2f} {wbk['seconds']:8.2f} "
                f"{wbk['seconds'] / base['seconds']:6.1f}x {base['peak_mb']:8.0f} "
                f"{wbk['peak_mb']:8.0f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
