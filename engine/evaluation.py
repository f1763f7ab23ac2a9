"""Measure match quality on a labelled dataset in the shared format.

A dataset folder holds ``catalog.csv`` (sku,name,category,image) and ``truth.csv`` (photo,sku),
paths relative to the folder. Evaluation builds a throw-away library, so a user's own library
is never touched, and reports ranking metrics over SKUs (one relevant SKU per photo).

With a train CSV (photo,sku) the app's own learning loop runs first: every train photo is
matched and confirmed (instant memory), then a model is trained and gated on those
confirmations. truth.csv is evaluated afterwards, so the gain is measured on photos that
neither instant memory nor training has seen.
"""

from __future__ import annotations

import csv
import io
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.progress import CancelToken, ProgressCallback, ProgressReporter
from engine.wording import are, count

if TYPE_CHECKING:
    from engine.library import Library
    from engine.matching import PhotoMatch
    from engine.training.trainer import TrainConfig


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
    # Catalog files the import left out (where, reason): their products may never be
    # suggested, so every photo of them counts as a miss.
    catalog_skipped: list[tuple[str, str]] = field(default_factory=list)
    square_mode: str = "letterbox"
    model_version: str = ""
    # Set when a train CSV was given: the confirmations and the learning run before evaluation.
    memory: dict[str, Any] | None = None
    learning: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {k: v for k, v in asdict(self.overall).items()}
        out.update(
            images_per_s=self.images_per_s,
            square_mode=self.square_mode,
            model_version=self.model_version,
            unreadable=len(self.unreadable),
            catalog_skipped=[{"where": w, "reason": r} for w, r in self.catalog_skipped],
        )
        if self.memory is not None:
            out.update(self.memory)
        if self.learning is not None:
            timings = self.learning.get("timings", {})
            out.update(
                train_s=timings.get("train_s"),
                activated=self.learning.get("activated"),
                learning=self.learning,
            )
        out["per_sku"] = {k: asdict(v) for k, v in self.per_sku.items()}
        return out


def read_truth(path: Path) -> list[tuple[Path, str]]:
    """(photo path, sku) rows of a truth/train CSV, paths resolved relative to the CSV.

    Refused with the CSV's name and line, before any work: a photo that is not there, one
    listed twice with two SKUs, or no rows at all. Each would otherwise change the figures
    without a word (rows dropped, the last SKU winning, a training run on nothing).
    Delimiter and encoding are read as the catalog sheet's are: the same Excel saves both."""
    path = Path(path)
    from engine.sheet import decode_text, mac_line_ends, sniff_dialect  # SheetError: ValueError

    text = mac_line_ends(decode_text(path.read_bytes(), path.name))
    reader = csv.DictReader(io.StringIO(text, newline=""), dialect=sniff_dialect(text))
    fields = [f.strip().lower() for f in reader.fieldnames or []]
    if not {"photo", "sku"} <= set(fields):
        raise ValueError(f"{path.name} needs the columns photo,sku")
    reader.fieldnames = fields
    rows: dict[Path, tuple[str, int]] = {}
    problems: list[str] = []
    for line, r in enumerate(reader, start=2):
        photo, sku = (r.get("photo") or "").strip(), (r.get("sku") or "").strip()
        if not photo and not sku:
            continue
        where = f"{path.name} line {line}"
        if not photo or not sku:
            problems.append(f"{where}: needs both a photo and a SKU")
            continue
        file = (path.parent / photo).resolve()
        if not file.is_file():
            problems.append(f"{where}: photo not found ({photo})")
        elif file in rows and rows[file][0] != sku:
            problems.append(
                f"{where}: {photo} is listed with SKU {rows[file][0]} on line {rows[file][1]} "
                f"and with {sku} here"
            )
        else:
            rows.setdefault(file, (sku, line))
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ValueError("; ".join(problems[:3]) + more)
    if not rows:
        raise ValueError(f"{path.name} has no photo,sku rows")
    return [(file, sku) for file, (sku, _line) in rows.items()]


def _digests(rows: list[tuple[Path, str]]) -> list[tuple[Path, str]]:
    """(photo, content hash) of each readable row; files that cannot be read are left to
    matching, which reports them."""
    from engine.manifest import file_sha256

    out: list[tuple[Path, str]] = []
    for path, _sku in rows:
        try:
            out.append((path, file_sha256(path)))
        except OSError:
            continue
    return out


def _copies(
    truth: list[tuple[Path, str]], earlier: list[tuple[Path, str]] | None
) -> list[tuple[Path, Path]]:
    """(truth photo, earlier photo) pairs with the same bytes, the earlier one from
    ``earlier`` (train photos) or, when that is None, from truth.csv above it. The library
    keys photos by content, so instant memory would answer such a photo with itself."""
    seen: dict[str, Path] = {}
    if earlier is not None:
        for path, digest in _digests(earlier):
            seen.setdefault(digest, path)
    pairs: list[tuple[Path, Path]] = []
    for path, digest in _digests(truth):
        if digest in seen:
            pairs.append((path, seen[digest]))
        elif earlier is None:
            seen[digest] = path
    return pairs


def _refuse_copies(copies: list[tuple[Path, Path]], one: str, many: str, dataset: Path) -> None:
    """Stop before any work when truth photos repeat photos the library will have seen
    (``one``/``many``: what they copy, said of one copy or of several)."""
    if not copies:
        return
    copy, original = copies[0]
    photos = one if len(copies) == 1 else many
    raise ValueError(
        f"truth.csv lists {count(len(copies), 'photo')} that "
        f"{'is a copy' if len(copies) == 1 else 'are copies'} of {photos} "
        f"({_shown(copy, dataset)} is {_shown(original, dataset)}): the gain "
        "would be measured on photos it learnt from"
    )


def _shown(path: Path, folder: Path) -> str:
    """A photo as the CSVs name it: relative to the dataset folder where it lies inside."""
    try:
        return path.relative_to(folder.resolve()).as_posix()
    except ValueError:
        return str(path)


def _check_skus(csv_path: Path, rows: list[tuple[Path, str]], catalog: set[str]) -> None:
    unknown = sorted({sku for _p, sku in rows if sku not in catalog})
    if unknown:
        some = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise ValueError(
            f"{csv_path.name} names {count(len(unknown), 'SKU')} that catalog.csv does not "
            f"list: {some}"
        )


def confirm_photos(
    lib: Library,
    rows: list[tuple[Path, str]],
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, Any]:
    """Match every (photo, sku) row and confirm its true SKU, as staff would; returns counts,
    time and how often the SKU was already the top suggestion."""
    truth = {str(p): sku for p, sku in rows}
    start = time.perf_counter()
    confirmed = unreadable = top1 = 0
    for res in lib.match([p for p, _ in rows], top_k=5, progress=progress, cancel=cancel):
        sku = truth.get(str(res.path))
        if res.error or res.photo_id is None or sku is None:
            unreadable += 1
            continue
        top1 += bool(res.suggestions) and res.suggestions[0].sku == sku
        lib.confirm(res.photo_id, sku)
        confirmed += 1
    lib.flush()
    return {
        "train_photos": confirmed,
        "train_unreadable": unreadable,
        "train_top1_before_confirm": top1 / confirmed if confirmed else 0.0,
        "confirm_s": time.perf_counter() - start,
    }


def _n_skus(lib: Library) -> int:
    """How many SKUs to rank: all of them, so every true SKU gets a rank."""
    return int(lib.db.execute("SELECT count(*) FROM products").fetchone()[0])


def _ranked(res: PhotoMatch, sku: str) -> tuple[int | None, str]:
    """(rank of the true SKU among the suggestions, error) of one matched photo."""
    return next((s.rank for s in res.suggestions if s.sku == sku), None), res.error or ""


def rank_batch(
    lib: Library,
    rows: list[tuple[Path, str]],
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[tuple[int | None, str]]:
    """(rank of the true SKU, error) per photo, all matched in one batch, none confirmed."""
    paths = [p for p, _ in rows]
    results = lib.match(paths, top_k=_n_skus(lib), progress=progress, cancel=cancel)
    by_path = {str(r.path): r for r in results}
    out: list[tuple[int | None, str]] = []
    for path, sku in rows:
        res = by_path.get(str(path))
        out.append((None, "not matched") if res is None else _ranked(res, sku))
    return out


def rank_online(
    lib: Library,
    rows: list[tuple[Path, str]],
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[tuple[int | None, str]]:
    """(rank of the true SKU, error) per photo, matched one by one in order, each confirmed
    right after it is ranked: instant memory as staff use it, so a photo can match the
    confirmed ones before it (a burst of one product, a product the catalog shows otherwise).
    """
    n_skus = _n_skus(lib)
    reporter = ProgressReporter("Matching and confirming in order", len(rows), progress, cancel)
    out: list[tuple[int | None, str]] = []
    for path, sku in rows:
        (res,) = lib.match([path], top_k=n_skus)
        out.append(_ranked(res, sku))
        if res.photo_id is not None and not res.error:
            lib.confirm(res.photo_id, sku)
        reporter.step()
    lib.flush()
    return out


def evaluate_dataset(
    dataset: Path,
    *,
    square_mode: str = "letterbox",
    model_dir: Path | None = None,
    train_csv: Path | None = None,
    learn: bool = True,
    adapt: bool = False,
    online: bool = False,
    train_config: TrainConfig | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> EvalReport:
    """Evaluate truth.csv in a throw-away library.

    ``train_csv``: confirm those photos first (instant memory) and, unless ``learn`` is
    False, train and gate a model on them. ``adapt``: train on the catalog alone when there
    is no train CSV (catalog-only adaptation); refused with ``learn`` False, which asks for no
    model. ``online``: match truth.csv in file order and confirm each photo right after
    (:func:`rank_online`), instead of never seeing them.
    """
    from engine.library import Library

    if adapt and not learn:
        raise ValueError("adapt trains a model and learn=False asks for none: pass one of them")
    dataset = Path(dataset)
    catalog, truth_csv = dataset / "catalog.csv", dataset / "truth.csv"
    for f in (catalog, truth_csv):
        if not f.is_file():
            raise FileNotFoundError(
                f"{f} not found: a dataset folder needs catalog.csv and truth.csv"
            )
    # Everything the run needs is checked before minutes of importing and training.
    from engine.sheet import read_sheet

    listed = {row.sku for row in read_sheet(catalog).rows}
    truth = read_truth(truth_csv)
    _check_skus(truth_csv, truth, listed)
    train_rows = None
    if train_csv is not None:
        train_path = Path(train_csv)
        train_rows = read_truth(train_path)
        _check_skus(train_path, train_rows, listed)
        seen = {p for p, _sku in truth} & {p for p, _sku in train_rows}
        if seen:
            raise ValueError(
                f"{count(len(seen), 'photo')} of truth.csv {are(len(seen))} also in "
                f"{train_path.name} (e.g. {next(iter(seen)).name}): the gain would be "
                "measured on photos it learnt from"
            )
        name = train_path.name
        _refuse_copies(_copies(truth, train_rows), f"a {name} photo", f"{name} photos", dataset)
    if online:  # each truth photo is confirmed before the next: a copy would match itself
        _refuse_copies(_copies(truth, None), "a photo above it", "photos above them", dataset)
    with (
        tempfile.TemporaryDirectory(prefix="shopmatch-eval-") as tmp,
        Library(Path(tmp), square_mode=square_mode, model_dir=model_dir) as lib,
    ):
        imported = lib.import_catalog(dataset, catalog, progress=progress, cancel=cancel)
        memory = learning = None
        if train_rows is not None:
            memory = confirm_photos(lib, train_rows, progress=progress, cancel=cancel)
        if (train_csv is not None and learn) or adapt:
            from engine.learning import learn as run_learning

            # Catalog-only adaptation has no held-out photos: the self-check must decide.
            report = run_learning(
                lib,
                train_config,
                trust_catalog_check=train_csv is None,
                progress=progress,
                cancel=cancel,
            )
            learning = report.to_dict()
        start = time.perf_counter()
        if online:
            ranked = rank_online(lib, truth, progress=progress, cancel=cancel)
        else:
            ranked = rank_batch(lib, truth, progress=progress, cancel=cancel)
        elapsed = time.perf_counter() - start
        ranks: list[int | None] = []
        per_sku_ranks: dict[str, list[int | None]] = {}
        unreadable: list[tuple[str, str]] = []
        for (path, sku), (rank, error) in zip(truth, ranked, strict=True):
            if error:
                unreadable.append((str(path), error))
            ranks.append(rank)
            per_sku_ranks.setdefault(sku, []).append(rank)
        return EvalReport(
            overall=ranking_metrics(ranks),
            per_sku={k: ranking_metrics(v) for k, v in sorted(per_sku_ranks.items())},
            images_per_s=len(truth) / elapsed if elapsed > 0 else 0.0,
            unreadable=unreadable,
            catalog_skipped=list(imported.skipped),
            square_mode=square_mode,
            model_version=lib.model_version,
            memory=memory,
            learning=learning,
        )
