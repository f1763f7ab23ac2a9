"""A delivery reviewed photo by photo: how right are the suggestions staff see?

    .venv/bin/python bench/bench_review_in_order.py                    # grocery truth.csv
    .venv/bin/python bench/bench_review_in_order.py --shuffle 0 --limit 8 --json
    .venv/bin/python bench/bench_review_in_order.py --dataset resources/demo  # 40 photos

The app matches a delivery in one go, then staff confirm its photos one after another, and
each confirmation becomes a reference at once (instant memory). What staff see on each photo
is measured three ways, on the photos of ``truth.csv`` (a dataset folder as ``shopmatch
eval`` reads it) in file order (photos of a product together, as a delivery is shot) or
shuffled:

- ``as matched`` (the baseline): the suggestions from the delivery's one matching, which the
  app showed until now;
- ``searched again``: after every confirmation, the photos waiting that the new reference
  would lift are searched again (``Library.outdated_suggestions``, at most
  ``--limit`` a decision, nearest on the list first), and the others scored again when
  the calibration changed (``Library.rescore``), as the app does now;
- ``each just before``: every photo searched again right before it is shown (the most
  instant memory can give, one search per photo; ``shopmatch eval --online``);
- ``... raw``: the last two with remembered photos competing at their raw similarity, as
  before ``memory.photo_offset`` (the shop's photos resemble each other more than their
  supplier pictures);
- ``... unscaled``: scores at the model's own temperature, as before ``engine.calibration``
  (the scale fitted on the decisions made so far).

Each row also counts the photos shown a first suggestion at 80% or more ("confident", what
"Accept confident" would take), right and wrong, and the calibration error of the first
suggestion's score (ECE over ten bins: how far "90%" is from 9 in 10 right).

It also reports the searches and the engine time one decision costs (confirm, the check
and the searches), against a confirmation alone in the same run, and the scores' scale as
the decisions fitted it along the review.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a plain script, not an installed package
    sys.path.insert(0, str(REPO))

from engine import calibration, memory  # noqa: E402
from engine.evaluation import read_truth  # noqa: E402
from engine.library import Library  # noqa: E402

DEFAULT_DATASET = REPO.parent / "shared" / "data" / "grocery"
TOP_K = 5  # what the app shows (desktop_app.session.TOP_K)
CONFIDENT = 0.8  # the app's default "Accept confident" threshold


def _top1(suggestions: list, sku: str) -> bool:  # type: ignore[type-arg]
    return bool(suggestions) and suggestions[0].sku == sku


def review(dataset: Path, rows: list[tuple[Path, str]], mode: str, limit: int) -> dict[str, float]:
    """Match ``rows`` as one delivery, then confirm them in order; top-1 of what each photo
    shows when its turn comes, and per-decision costs."""
    offset, scale = memory.photo_offset, calibration.score_scale
    if mode.endswith(" raw"):
        memory.photo_offset = lambda _lib: 0.0  # type: ignore[assignment]
    if mode.endswith(" unscaled"):
        calibration.score_scale = lambda _lib: 1.0  # type: ignore[assignment]
    try:
        return _review(dataset, rows, mode.removesuffix(" raw").removesuffix(" unscaled"), limit)
    finally:
        memory.photo_offset, calibration.score_scale = offset, scale  # type: ignore[assignment]


def calibration_error(scores: list[float], right: list[bool]) -> float:
    """Expected calibration error over ten equal-width bins of the first suggestion's score."""
    bins: dict[int, list[tuple[float, bool]]] = {}
    for s, r in zip(scores, right, strict=True):
        bins.setdefault(min(int(s * 10), 9), []).append((s, r))
    gaps = (
        abs(statistics.mean(s for s, _ in b) - statistics.mean(r for _, r in b)) * len(b)
        for b in bins.values()
    )
    return sum(gaps) / len(scores) if scores else 0.0


def _review(dataset: Path, rows: list[tuple[Path, str]], mode: str, limit: int) -> dict[str, float]:
    with (
        tempfile.TemporaryDirectory(prefix="shopmatch-review-") as tmp,
        Library(Path(tmp)) as lib,
    ):
        lib.import_catalog(dataset, dataset / "catalog.csv")
        shown: dict[int, list] = {}  # type: ignore[type-arg]
        ids: list[int | None] = []
        for m in lib.match([p for p, _ in rows], top_k=TOP_K):
            ids.append(m.photo_id)
            if m.photo_id is not None:
                shown[m.photo_id] = m.suggestions
        path_of = {pid: p for (p, _), pid in zip(rows, ids, strict=True) if pid is not None}
        right = searched = wrong_sure = right_sure = 0
        firsts: list[tuple[float, bool]] = []
        scales: list[tuple[int, float]] = []  # (decisions made, the scale fitted then)
        decide_ms: list[float] = []
        confirm_ms: list[float] = []
        for i, ((path, sku), pid) in enumerate(zip(rows, ids, strict=True)):
            if pid is None:
                continue
            if mode == "each just before":
                (m,) = lib.match([path], top_k=TOP_K)
                shown[pid] = m.suggestions
            ok = _top1(shown[pid], sku)
            right += ok
            first = shown[pid][0].score if shown[pid] else 0.0
            firsts.append((first, ok))
            wrong_sure += not ok and first >= CONFIDENT
            right_sure += ok and first >= CONFIDENT
            t0 = time.perf_counter()
            mark = lib.reference_mark()
            lib.confirm(pid, sku)
            confirm_ms.append((time.perf_counter() - t0) * 1000)
            if mode == "searched again":
                waiting = [p for p in ids[i + 1 :] if p is not None]
                again = lib.outdated_suggestions(waiting, mark, limit)
                for p, scores in lib.rescore(waiting).items():  # the calibration changed
                    shown[p] = [replace(x, score=scores.get(x.sku, x.score)) for x in shown[p]]
                searched += len(again)
                for m in lib.match([path_of[p] for p in again], top_k=TOP_K):
                    if m.photo_id is not None:
                        shown[m.photo_id] = m.suggestions
            decide_ms.append((time.perf_counter() - t0) * 1000)
            if (i + 1) % 10 == 0:
                scales.append((i + 1, round(calibration.score_scale(lib), 3)))
        n = len(shown)
        return {
            "photos": n,
            "top1": right / n if n else 0.0,
            "confident_wrong": wrong_sure,
            "confident_right": right_sure,
            "ece": calibration_error([f for f, _ in firsts], [r for _, r in firsts]),
            "searches_per_decision": searched / n if n else 0.0,
            "decision_ms": statistics.mean(decide_ms) if decide_ms else 0.0,
            "decision_ms_p95": sorted(decide_ms)[int(0.95 * (len(decide_ms) - 1))]
            if decide_ms
            else 0.0,
            "confirm_ms": statistics.mean(confirm_ms) if confirm_ms else 0.0,
            "scale": calibration.score_scale(lib),  # at the end of the review
            "scales": scales,
        }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    ap.add_argument("--shuffle", type=int, default=None, metavar="SEED", help="review order")
    ap.add_argument("--limit", type=int, default=8, help="searches at most per decision")
    ap.add_argument("--photos", type=int, default=0, help="only the first N (0: all)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if not (args.dataset / "truth.csv").is_file():
        print(f"no dataset at {args.dataset} (catalog.csv and truth.csv)", file=sys.stderr)
        return 2
    rows = read_truth(args.dataset / "truth.csv")
    if args.shuffle is not None:
        random.Random(args.shuffle).shuffle(rows)
    if args.photos:
        rows = rows[: args.photos]
    results = {
        mode: review(args.dataset, rows, mode, args.limit)
        for mode in (
            "as matched",
            "searched again",
            "each just before",
            "searched again raw",
            "each just before raw",
            "searched again unscaled",
            "each just before unscaled",
        )
    }
    if args.json:
        print(json.dumps({"order": args.shuffle, "limit": args.limit, **results}))
        return 0
    order = "file order" if args.shuffle is None else f"shuffled (seed {args.shuffle})"
    print(f"{results['as matched']['photos']} photos reviewed in {order}, limit {args.limit}")
    head = f"{'':25} {'top-1':>6} {'>=80% right':>11} {'wrong':>5} {'ECE':>5} {'searches':>9}"
    print(f"{head} {'decision ms':>12} {'p95':>7} {'confirm':>8} {'scale':>6}")
    for mode, r in results.items():
        print(
            f"{mode:25} {r['top1']:6.3f} {r['confident_right']:11d} {r['confident_wrong']:5d} "
            f"{r['ece']:5.3f} "
            f"{r['searches_per_decision']:9.2f} "
            f"{r['decision_ms']:12.1f} {r['decision_ms_p95']:7.1f} {r['confirm_ms']:8.1f} "
            f"{r['scale']:6.2f}"
        )
    trail = results["searched again"]["scales"]
    print("scale fitted along 'searched again' (decisions: scale):")
    print("  " + "  ".join(f"{n}: {c:.2f}" for n, c in trail if n % 30 == 0))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
