"""Measure match quality on a labelled dataset in the shared format.

A dataset folder holds ``catalog.csv`` (sku,name,category,image) and ``truth.csv`` (photo,sku),
paths relative to the folder. Evaluation builds a throw-away library, so a user's own library
is never touched, and reports ranking metrics over SKUs (one relevant SKU per photo).
"""

from __future__ import annotations

import csv
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.progress import CancelToken, ProgressCallback


@dataclass
class Metrics:
    n: int
    top1: float
    top5: float
    mrr: float
    map5: float


def ranking_metrics(ranks: list[int | None]) -> Metrics:
    """Metrics from the 1-based rank of the true SKU per photo (None: not ranked at all).

    With one relevant SKU per photo, AP@5 is 1/rank when rank <= 5 and 0 otherwise, so mAP@5
    is MRR truncated at 5 (the Kaggle MAP@5 definition).
    """
    n = len(ranks)
    if n == 0:
        return Metrics(0, 0.0, 0.0, 0.0, 0.0)
    top1 = sum(1 for r in ranks if r == 1) / n
    top5 = sum(1 for r in ranks if r is not None and r <= 5) / n
    mrr = sum(1.0 / r for r in ranks if r is not None) / n
    map5 = sum(1.0 / r for r in ranks if r is not None and r <= 5) / n
    return Metrics(n, top1, top5, mrr, map5)


@dataclass
class EvalReport:
    overall: Metrics
    per_sku: dict[str, Metrics]
    images_per_s: float
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    square_mode: str = "letterbox"
    model_version: str = ""

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {k: v for k, v in asdict(self.overall).items()}
        out.update(
            images_per_s=self.images_per_s,
            square_mode=self.square_mode,
            model_version=self.model_version,
            unreadable=len(self.unreadable),
            per_sku={k: asdict(v) for k, v in self.per_sku.items()},
        )
        return out


def read_truth(path: Path) -> list[tuple[Path, str]]:
    """(photo path, sku) rows of a truth/train CSV, paths resolved relative to the CSV."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or not {"photo", "sku"} <= set(reader.fieldnames):
            raise ValueError(f"{path.name} needs the columns photo,sku")
        return [
            ((path.parent / r["photo"]).resolve(), r["sku"].strip())
            for r in reader
            if r.get("photo") and r.get("sku")
        ]


def evaluate_dataset(
    dataset: Path,
    *,
    square_mode: str = "letterbox",
    model_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> EvalReport:
    from engine.library import Library

    dataset = Path(dataset)
    catalog, truth_csv = dataset / "catalog.csv", dataset / "truth.csv"
    for f in (catalog, truth_csv):
        if not f.is_file():
            raise FileNotFoundError(
                f"{f} not found: a dataset folder needs catalog.csv and truth.csv"
            )
    truth = read_truth(truth_csv)
    with (
        tempfile.TemporaryDirectory(prefix="shopmatch-eval-") as tmp,
        Library(Path(tmp), square_mode=square_mode, model_dir=model_dir) as lib,
    ):
        lib.import_catalog(dataset, catalog, progress=progress, cancel=cancel)
        n_skus = int(lib.db.execute("SELECT count(*) FROM products").fetchone()[0])
        start = time.perf_counter()
        results = list(
            lib.match([p for p, _ in truth], top_k=n_skus, progress=progress, cancel=cancel)
        )
        elapsed = time.perf_counter() - start
        by_path = {str(r.path): r for r in results}
        ranks: list[int | None] = []
        per_sku_ranks: dict[str, list[int | None]] = {}
        unreadable: list[tuple[str, str]] = []
        for path, sku in truth:
            res = by_path.get(str(path))
            if res is None or res.error:
                unreadable.append((str(path), res.error if res else "not matched"))
            rank = None
            if res is not None:
                rank = next((s.rank for s in res.suggestions if s.sku == sku), None)
            ranks.append(rank)
            per_sku_ranks.setdefault(sku, []).append(rank)
        return EvalReport(
            overall=ranking_metrics(ranks),
            per_sku={k: ranking_metrics(v) for k, v in sorted(per_sku_ranks.items())},
            images_per_s=len(results) / elapsed if elapsed > 0 else 0.0,
            unreadable=unreadable,
            square_mode=square_mode,
            model_version=lib.model_version,
        )
