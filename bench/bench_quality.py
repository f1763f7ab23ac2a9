"""Match quality of the bundled (pretrained) encoders, per encoder and per ``to_square`` mode.

    .venv/bin/python bench/bench_quality.py                       # ../shared/data/grocery
    .venv/bin/python bench/bench_quality.py --dataset resources/demo \\
        --model-dir resources/models/mobilenet-v2 --json --out quality.json

Runs ``engine.evaluation.evaluate_dataset`` (a throw-away library: import the catalog, match
every truth photo, rank SKUs) for each encoder (default: every folder in resources/models)
and each square mode (letterbox, crop), and prints top-1 / top-5 / MRR / mAP@5 and matching
speed (photos per second, match phase only). Deltas and speed ratios refer to the first
configuration, measured in the same run (default encoder, letterbox, dataset as given).

letterbox and crop only differ on non-square photos. The grocery photos are all 348x348, so
when every truth photo is square (``--non-square auto``, the default) the same photos are also
evaluated centre-cropped to a 4:3 landscape frame (written losslessly as PNG to a temp folder
with its own truth.csv and a catalog.csv pointing at the original catalog images), which is
what a phone's default aspect ratio looks like. The default dataset lives outside the repo on
dev machines only; without it the bundled ``resources/demo`` is used, with a printed note.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a plain script, not an installed package
    sys.path.insert(0, str(REPO_ROOT))

from engine.evaluation import evaluate_dataset, read_truth  # noqa: E402
from engine.manifest import ModelManifest  # noqa: E402
from engine.resources import DEFAULT_MODEL, bundled_model_dir  # noqa: E402

DEFAULT_DATASET = REPO_ROOT.parent / "shared" / "data" / "grocery"
DEMO_DATASET = REPO_ROOT / "resources" / "demo"
MODES = ("letterbox", "crop")


@dataclass
class Result:
    dataset: str
    model: str
    square_mode: str
    n: int
    top1: float
    top5: float
    mrr: float
    map5: float
    images_per_s: float
    total_s: float
    unreadable: int


def photo_sizes(dataset: Path) -> dict[tuple[int, int], int]:
    """Histogram of truth-photo sizes (header reads only, upright as EXIF says)."""
    sizes: dict[tuple[int, int], int] = {}
    for path, _ in read_truth(dataset / "truth.csv"):
        try:
            with Image.open(path) as im:
                w, h = im.size
                if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                    w, h = h, w
        except OSError:
            continue
        sizes[(w, h)] = sizes.get((w, h), 0) + 1
    return sizes


def landscape_variant(dataset: Path, dest: Path, aspect: float) -> Path:
    """Copy of ``dataset`` whose truth photos are centre-cropped to ``aspect`` (w/h) landscape.

    Catalog images are left as they are: catalog.csv is rewritten with absolute image paths,
    which the importer accepts (they resolve against the sheet's folder unchanged).
    """
    dest.mkdir(parents=True, exist_ok=True)
    with open(dataset / "catalog.csv", newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        fields = list(reader.fieldnames or [])
        rows = list(reader)
    for row in rows:
        if row.get("image"):
            parts = row["image"].replace("|", ";").split(";")
            row["image"] = ";".join(str((dataset / p.strip()).resolve()) for p in parts if p)
    with open(dest / "catalog.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)

    (dest / "photos").mkdir(exist_ok=True)
    with open(dest / "truth.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["photo", "sku"])
        for i, (path, sku) in enumerate(read_truth(dataset / "truth.csv")):
            with Image.open(path) as im:
                img = im.convert("RGB")
            w, h = img.size
            cw, ch = (w, round(w / aspect)) if w / h <= aspect else (round(h * aspect), h)
            left, top = (w - cw) // 2, (h - ch) // 2
            name = f"photos/{i:05d}_{path.stem}.png"
            img.crop((left, top, left + cw, top + ch)).save(dest / name)
            writer.writerow([name, sku])
    return dest


def evaluate(dataset: Path, label: str, model_dir: Path, mode: str) -> Result:
    start = time.perf_counter()
    report = evaluate_dataset(dataset, square_mode=mode, model_dir=model_dir)
    total = time.perf_counter() - start
    m = report.overall
    return Result(
        dataset=label,
        model=report.model_version,
        square_mode=mode,
        n=m.n,
        top1=m.top1,
        top5=m.top5,
        mrr=m.mrr,
        map5=m.map5,
        images_per_s=report.images_per_s,
        total_s=total,
        unreadable=len(report.unreadable),
    )


def print_table(results: list[Result]) -> None:
    base = results[0]
    print(
        f"\nbaseline: {base.model} / {base.square_mode} / {base.dataset}; "
        "d top-1 in points, speed = img/s / baseline img/s"
    )
    header = (
        f"{'dataset':22s} {'model':24s} {'square':9s} {'n':>4s} {'top-1':>6s} {'top-5':>6s} "
        f"{'MRR':>6s} {'mAP@5':>6s} {'d top-1':>8s} {'img/s':>6s} {'speed':>6s} {'bad':>4s}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.dataset:22s} {r.model:24s} {r.square_mode:9s} {r.n:4d} {r.top1:6.3f} "
            f"{r.top5:6.3f} {r.mrr:6.3f} {r.map5:6.3f} {100 * (r.top1 - base.top1):+8.1f} "
            f"{r.images_per_s:6.1f} {r.images_per_s / base.images_per_s:5.2f}x {r.unreadable:4d}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dataset", type=Path, help=f"default {DEFAULT_DATASET}")
    parser.add_argument(
        "--model-dir",
        type=Path,
        nargs="+",
        help="encoder folders (default: every folder in resources/models, bundled default first)",
    )
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument(
        "--non-square",
        choices=["auto", "always", "never"],
        default="auto",
        help="also evaluate a 4:3 landscape crop of the photos (auto: when all are square)",
    )
    parser.add_argument("--aspect", type=float, default=4 / 3, help="width/height of the crop")
    parser.add_argument("--json", action="store_true", help="also write results as JSON (to --out)")
    parser.add_argument(
        "--out", type=Path, help="JSON file to write (implies --json; default bench_quality.json)"
    )
    args = parser.parse_args(argv)
    if args.json or args.out:
        args.json, args.out = True, args.out or Path("bench_quality.json")

    dataset = args.dataset
    if dataset is None:
        dataset = DEFAULT_DATASET
        if not (dataset / "truth.csv").is_file():
            print(f"note: {dataset} not found (dev machines only); using {DEMO_DATASET}")
            dataset = DEMO_DATASET
    dataset = dataset.resolve()
    if args.model_dir:
        models = [m.resolve() for m in args.model_dir]
    else:
        default = bundled_model_dir()
        others = sorted(p for p in default.parent.iterdir() if p.name != DEFAULT_MODEL)
        models = [default, *(p for p in others if (p / "manifest.json").is_file())]
    for m in models:
        ModelManifest.load(m)  # fail early on a folder that is not an encoder

    sizes = photo_sizes(dataset)
    n_square = sum(c for (w, h), c in sizes.items() if w == h)
    common = ", ".join(f"{w}x{h}: {c}" for (w, h), c in sorted(sizes.items(), key=lambda x: -x[1]))
    print(f"dataset {dataset}: {sum(sizes.values())} truth photos, sizes {common}")
    variant = args.non_square == "always" or (
        args.non_square == "auto" and n_square == sum(sizes.values())
    )
    if n_square == sum(sizes.values()):
        print(
            "note: every truth photo is square, so letterbox and crop see the same pixels "
            "there (rows must agree);"
            + (
                f" also evaluating a {args.aspect:.3g}:1 landscape centre crop of the same "
                "photos, where the modes differ."
                if variant
                else " pass --non-square always for a non-square variant."
            )
        )

    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        datasets = [(dataset, dataset.name)]
        if variant:
            label = f"{dataset.name} {args.aspect:.3g}:1 crop"
            datasets.append(
                (landscape_variant(dataset, Path(tmp) / "landscape", args.aspect), label)
            )
        for path, label in datasets:
            for model in models:
                for mode in args.modes:
                    print(f"  evaluating {label} / {model.name} / {mode} ...", flush=True)
                    results.append(evaluate(path, label, model, mode))
    print_table(results)
    if args.json:
        payload = {
            "dataset": str(dataset),
            "photo_sizes": {f"{w}x{h}": c for (w, h), c in sizes.items()},
            "baseline": {k: getattr(results[0], k) for k in ("dataset", "model", "square_mode")},
            "results": [r.__dict__ for r in results],
        }
        args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
