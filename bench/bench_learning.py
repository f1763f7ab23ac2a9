"""Learning benchmark: what instant memory and training each buy on real in-store photos.

    .venv/bin/python bench/bench_learning.py                     # ../shared/data/grocery
    .venv/bin/python bench/bench_learning.py --dataset DIR --json --out learning.json
    .venv/bin/python bench/bench_learning.py --only pretrained memory arcface

Every scenario is measured in the same run on the same photos: the dataset's ``truth.csv``
(photos that neither instant memory nor training ever sees) against a throw-away library:

- ``pretrained``: catalog images only, ImageNet encoder (the baseline);
- ``memory``: every ``train.csv`` photo matched and confirmed (instant memory), no training;
- ``catalog-only``: no confirmations; a model trained on simulated phone photos of the
  catalog alone (ArcFace), i.e. what a shop gets before its first confirmation;
- ``arcface`` / ``ortho`` / ``both``: the confirmed library of ``memory``, then a model
  trained with that loss (``ortho`` is the seed's unsupervised catalog loss, catalog only).

Training runs through ``engine.learning.learn`` exactly as ``shopmatch train`` does: cache,
train, export to ONNX, embed every reference image with the candidate, gate against the
active model. The gate's verdict is reported; the candidate is then activated either way, so
each loss is measured on its own merits (the app would keep the better model). ``train_s`` is
the training proper (feature cache + epochs); export, embedding, gate and activation are
timed separately, and the printed line says how long the library was held (gate +
activation: what the app runs on its engine thread) against the export and embedding that
the app runs beside it. The libraries are copies of two prepared ones (catalog imported; train
photos confirmed), so the 2640 confirmations are matched once, not per scenario.

Measured on the 2-core dev machine while other jobs kept its load at 6-10 (so every time is
2-3x what an idle laptop takes), last1, ArcFace m=0.5 s=20, 6 epochs (the default is now 4),
16 catalog views, 2 photo views, with the working tree's local-feature re-ranking on:

    scenario       top-1  top-5  MRR    train
    pretrained     0.429  0.716  0.556
    memory         0.645  0.936  0.769
    catalog-only   0.426  0.669  0.539  157 s
    arcface        0.814  0.970  0.883  1091 s (feature cache of 6576 views + 6 epochs)

Again on 2026-11-23 with the machine otherwise idle (load < 1 at the start), the default 4
epochs, ``--only memory arcface``:

    scenario       top-1  top-5  MRR    train
    memory         0.628  0.936  0.760
    arcface        0.801  0.949  0.871  244 s (cache 112 s of 5776 views + 4 epochs 132 s);
                                        export 1 s, gate 48 s, activation 0.3 s: 297 s in all

and ``--only arcface --unfreeze last2`` right after (now the default):

    arcface last2  0.872  0.953  0.910  631 s (cache 106 s + 4 epochs 526 s); 684 s in all

Then with the current defaults (288 px, feature_crop=0.6, 3 epochs, ~200 held out), idle:
``--only memory arcface --keep /tmp/bl-keep``:

    arcface        0.878  0.956  0.917  671 s (cache 150 s of 6186 views + 3 epochs 521 s);
                                        export 1 s, gate 73 s, activation 0.3 s: 750 s in all

and ``--only arcface --keep /tmp/bl-keep --epochs 4`` right after: 0.855 / 0.953 / 0.901 in
888 s, refused by the gate (held-out MRR 0.978 against 0.981). (Over ten seeds in the lab a
fourth epoch is neither worse nor better: one run is one draw, see learning_lab.py.)

With channels-last training steps (same defaults), ``--only arcface --keep /tmp/bl-keep``:

    arcface        0.878  0.963  0.918  573 s (cache 151 s of 6186 views + 3 epochs 423 s);
                                        export 1 s, gate 79 s, activation 0.4 s: 657 s in all

and with ``input_size`` 320 the run before (``--only memory arcface``): 0.868 / 0.980 / 0.915
in 580 s (cache 153 s + epochs 428 s), so 288 px stays the default.

Two members (the default since: a 3-epoch and a 2-epoch tail on the same cached features,
embeddings summed), ``--only arcface --keep /tmp/bl-keep``, then ``--set members=1`` right
after, on a day the machine ran 1.3-1.4x slower than above (the one-step micro-benchmark took
2.0-2.2 s against 1.43-1.49 s; members=1 reproduced 0.878 exactly but took 953 s, not 573 s):

    scenario       top-1  top-5  MRR    train
    arcface, 2     0.885  0.973  0.924  1041 s (cache 166 s + 5 epochs 876 s); gate 117 s
    arcface, 1     0.878  0.963  0.918   953 s (cache 226 s + 3 epochs 728 s); gate 106 s

The cache is the same work in both, so it measures the machine: scaled to the first run's
cache time, one member's 3 epochs take 535 s (178 s an epoch, two members' 175 s), and
training costs 1.49x one member's, i.e. about 850 s on the idle machine of the 573-s run.
Matching: 4.49 photos/s with two members against 4.65 with one (0.97x, same day).

Since 2026-11-23 the export and the embedding run before the gate, without the library (in
the app on the worker's pool, beside the engine thread). Same command, idle machine:
0.885 / 0.973 / 0.924 (the same model as above, as it should be), train 997 s; export 2 s
and embedding 102 s without the library, then gate 1.9 s and activation 0.4 s with it. Before,
the same export and embedding ran inside the gate (117 s on the engine thread in the
1041-s run above), so the library is now held 2.3 s instead of the 106 s that this run's
export, embedding, gate and activation add up to: 46x less.

The same command again, now also matching ``truth.csv`` the ``online`` way (in file order,
each photo confirmed right after it is ranked, as staff use instant memory; ``shopmatch eval
--online``), 2026-11-23:

    arcface        0.885  0.973  0.924  934 s (library held 2 s; export + embed 104 s beside)
    online         0.922  0.980  0.951  (the same model, truth photos confirmed as they come)

With the view budget (``max_views`` 6,400; grocery's 6,186 views fit, so the same photos in
the same order), same command, 2026-11-23: 0.885 / 0.973 / 0.924 again (the same model),
train 1006 s, export + embedding 111 s beside the library: 1,119 s in all, where
``training.budget.estimate_seconds`` (what the app's dialog says) gives 1,136 s (18.9 min).

With one progress for the whole run (``progress.RunClock``; the bench now prints how far the
app's time left was off at 10/25/50% of the run), same command, 2026-11-24, on a day the
machine ran about 1.4x slower (the demo library's one-thread run took 508 s against 354 s):
0.885 / 0.973 / 0.924 again, train 1399 s, export + embedding 129 s beside the library; the
time left was off by -9% at 10% done, -5% at 25%, -2% at 50%, where the dialog's estimate
made before the run (1,136 s) was 26% short of the 1,528 s it took.

A mirror-blind export (the ONNX model embeds each image and its mirror image in one batch and
sums them; the lab's ``flip-max``, +0.7 points over four seeds) was tried the same way,
``--only arcface --keep /tmp/bl-keep``, on 2026-11-23: 0.885 / 0.973 / 0.925, train 945 s,
i.e. no top-1 gain over the 0.885 above once local features re-rank, for twice the encoder
time per image. Not kept.

``feature_crop`` 0.5 instead of 0.6 (over seeds in the lab one member scored 0.861, n=5,
against 0.856, n=10, and the crops keep 0.89x the map area), ``--only arcface --keep
/tmp/bl-keep --set feature_crop=0.5`` (and ``seed=1``), against 0.6 with ``seed=1`` right
after on the same day, 2026-11-24:

    seed  crop   top-1  top-5  MRR    train   online top-1
    0     0.5    0.875  0.983  0.924   825 s  0.909   (0.6: 0.885 0.973 0.924, 934-1006 s
    1     0.5    0.875  0.970  0.919   877 s  0.905    on other days, online 0.922)
    1     0.6    0.889  0.970  0.927   920 s  0.929

Side by side on one day the cheaper epochs saved 5% of the time, and both seeds lost 1.0-1.4
points of top-1 and 1.3-2.4 online: not kept. Seed 1 at the default 0.6 (0.889) shows the
spread of a single product run.

Where the rest is lost (``learning_lab.py --load ... --confusions 6`` on the four saved
seeds, 34-45 photos wrong each): all 24 Cantaloupe answers (six photos of ``truth.csv``, four
seeds) are wrong: Galia melon, avocado, once kiwi; next come Royal Gala / Pink Lady,
lemon / satsumas, lime / Granny Smith, two Arla yoghurts. The six are netted melons; the
catalog's and all 39 train photos' Cantaloupes are ribbed Charentais, so nothing the model
could learn from the confirmations covers them. They alone are 2 points of top-1: if the
product run above also missed all six, its 0.885 (262 of 296 right) is 262 of the other 290,
0.903. In a shop such photos are confirmed as they come, and instant memory then matches the
next ones: the lab's ``online`` rule (truth photos matched in file order, each confirmed right
after) scores 0.916 / 0.912 / 0.919 / 0.889 on those seeds, mean 0.909 against 0.868 for
``max``. That is not the issue's measure (photos never seen), only what a shop would see.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a plain script, not an installed package
    sys.path.insert(0, str(REPO_ROOT))

import engine.training  # noqa: E402,F401  (sets the OpenMP wait policy before torch loads)
from engine.evaluation import (  # noqa: E402
    confirm_photos,
    rank_batch,
    rank_online,
    ranking_metrics,
    read_truth,
)
from engine.library import Library  # noqa: E402
from engine.progress import Progress  # noqa: E402
from engine.training.trainer import TrainConfig  # noqa: E402

DEFAULT_DATASET = REPO_ROOT.parent / "shared" / "data" / "grocery"
SCENARIOS = ("pretrained", "memory", "catalog-only", "arcface", "ortho", "both")


def evaluate(lib: Library, truth: list[tuple[Path, str]]) -> dict[str, float]:
    """Rank every truth photo against the library's index; ranking metrics over SKUs."""
    start = time.perf_counter()
    ranked = rank_batch(lib, truth)
    elapsed = time.perf_counter() - start
    m = ranking_metrics([rank for rank, _ in ranked])
    return {
        "n": m.n,
        "top1": m.top1,
        "top5": m.top5,
        "mrr": m.mrr,
        "map5": m.map5,
        "images_per_s": len(truth) / elapsed,
    }


def learn_and_evaluate(
    base: Path, work: Path, truth: list[tuple[Path, str]], config: TrainConfig
) -> dict[str, object]:
    from engine.learning import learn

    shutil.copytree(base, work)
    predicted: dict[str, float] = {}  # share of the run done -> elapsed + time left then
    start = time.perf_counter()

    def watch(p: Progress) -> None:
        """What the app's time left would have said at 10, 25 and 50% of the run."""
        for share in (0.1, 0.25, 0.5):
            key = f"{share:.0%}"
            if key not in predicted and (p.run_fraction or 0) >= share and p.run_left_s:
                predicted[key] = time.perf_counter() - start + p.run_left_s

    with Library(work) as lib:
        report = learn(lib, config, activate=True, progress=watch)
        took = time.perf_counter() - start
        forced = False
        if not report.activated and report.version:
            lib.activate_model(report.version)  # measure the candidate even if refused
            forced = True
        out: dict[str, object] = evaluate(lib, truth)
        online = ranking_metrics([rank for rank, _ in rank_online(lib, truth)])
        out.update(online_top1=online.top1, online_top5=online.top5, online_mrr=online.mrr)
    gate = report.decision.to_dict() if report.decision else {}
    out.update(
        model=report.version,
        gate_accept=gate.get("accept"),
        gate_reason=gate.get("reason"),
        activated_by_gate=report.activated,
        forced=forced,
        data=report.data,
        losses=report.losses,
        onnx_max_abs_diff=report.onnx_max_abs_diff,
        time_left_error={k: round(v / took - 1, 3) for k, v in predicted.items()},
        **{k: round(v, 1) for k, v in report.timings.items()},
    )
    return out


def parse_settings(items: list[str]) -> dict[str, Any]:
    """KEY=VALUE strings as TrainConfig fields, each converted to its field's type."""
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    out: dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        if key not in fields:
            raise SystemExit(f"unknown training setting {key!r}; known: {', '.join(fields)}")
        kind = type(fields[key].default)
        out[key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    ap.add_argument("--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    ap.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    ap.add_argument("--unfreeze", default=TrainConfig.unfreeze)
    ap.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="any other training setting, e.g. --set input_size=288 feature_crop=0.6",
    )
    ap.add_argument(
        "--keep",
        type=Path,
        help="keep the prepared libraries (catalog imported, train photos confirmed) in this "
        "folder and reuse them on the next run: saves the minutes of matching 2640 photos",
    )
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    ds = args.dataset
    truth = read_truth(ds / "truth.csv")
    train_rows = read_truth(ds / "train.csv")
    config = TrainConfig(epochs=args.epochs, unfreeze=args.unfreeze, **parse_settings(args.set))
    results: dict[str, dict[str, Any]] = {}

    def say(name: str, res: dict[str, Any]) -> None:
        results[name] = res
        if not args.json:
            extra = f"  train {res['train_s']:.0f} s" if "train_s" in res else ""
            if "gate_s" in res:  # what the app runs on the engine thread, and beside it
                held = res["gate_s"] + res.get("activate_s", 0.0)
                beside = res.get("export_s", 0.0) + res.get("embed_s", 0.0)
                extra += f" (then library held {held:.0f} s; export + embed {beside:.0f} s beside)"
            if res.get("time_left_error"):  # the app's whole-run estimate against the end
                errors = ", ".join(f"{v:+.0%} at {k}" for k, v in res["time_left_error"].items())
                extra += f"; time left off by {errors} done"
            gate = f"  gate: {res['gate_reason']}" if "gate_reason" in res else ""
            print(
                f"{name:<13} top-1 {res['top1']:.3f}  top-5 {res['top5']:.3f}  "
                f"MRR {res['mrr']:.3f}{extra}{gate}",
                flush=True,
            )
            if "online_top1" in res:
                print(
                    f"{'':<13} online (each photo confirmed after it is matched): top-1 "
                    f"{res['online_top1']:.3f}  top-5 {res['online_top5']:.3f}  "
                    f"MRR {res['online_mrr']:.3f}",
                    flush=True,
                )

    with tempfile.TemporaryDirectory(prefix="shopmatch-bench-learning-") as tmp:
        root = Path(tmp)
        kept = args.keep.resolve() if args.keep else root
        kept.mkdir(parents=True, exist_ok=True)
        catalog_lib, confirmed_lib = kept / "catalog", kept / "confirmed"
        start = time.perf_counter()
        if not (kept / "catalog.done").is_file():
            shutil.rmtree(catalog_lib, ignore_errors=True)
            with Library(catalog_lib) as lib:
                lib.import_catalog(ds, ds / "catalog.csv")
            (kept / "catalog.done").write_text(str(ds))
        import_s = time.perf_counter() - start
        memory_info: dict[str, object] = {}
        if {"memory", "arcface", "ortho", "both"} & set(args.only):
            info_file = kept / "confirmed.done"
            if info_file.is_file():
                memory_info = json.loads(info_file.read_text())
            else:
                shutil.rmtree(confirmed_lib, ignore_errors=True)
                shutil.copytree(catalog_lib, confirmed_lib)
                with Library(confirmed_lib) as lib:
                    memory_info = confirm_photos(lib, train_rows)
                info_file.write_text(json.dumps(memory_info, default=str))
        for name in args.only:
            work = root / f"run-{name}"
            if name in ("pretrained", "memory"):
                shutil.copytree(catalog_lib if name == "pretrained" else confirmed_lib, work)
                with Library(work) as lib:
                    res: dict[str, Any] = evaluate(lib, truth)
                if name == "memory":
                    res.update(memory_info)
                say(name, res)
            elif name == "catalog-only":
                say(name, learn_and_evaluate(catalog_lib, work, truth, config))
            else:
                cfg = dataclasses.replace(config, loss=name)
                say(name, learn_and_evaluate(confirmed_lib, work, truth, cfg))
            shutil.rmtree(work, ignore_errors=True)

    base = results.get("pretrained")
    for res in results.values():
        if base is not None:
            res["delta_top1_vs_pretrained"] = res["top1"] - base["top1"]
    summary = {
        "dataset": str(ds),
        "truth_photos": len(truth),
        "train_photos": len(train_rows),
        "import_s": import_s,
        "config": config.to_dict(),
        "results": results,
    }
    text = json.dumps(summary, indent=2, default=str)
    if args.out:
        args.out.write_text(text)
    if args.json:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
