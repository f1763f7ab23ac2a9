"""Fine-tune the encoder on cached trunk features: views once, then fast epochs.

The trunk runs once per training view (catalog images get many simulated phone-photo views,
confirmed photos a few mild ones); the result is kept as float16 in memory. Every epoch then
costs only the unfrozen stages, which is what makes minutes on two cores possible.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

import numpy as np
import onnxruntime as ort
import torch
from PIL import Image

from engine.export_onnx import arch_spec
from engine.images import ImageLoadError, to_square, to_tensor
from engine.progress import CancelToken, ProgressCallback, ProgressReporter
from engine.training.augment import phone_photo, photo_jitter
from engine.training.budget import (
    CATALOG_VIEWS,
    EPOCHS,
    MAX_VIEWS,
    MEMBER_EPOCHS,
    MEMBERS,
    PHOTO_VIEWS,
    threads_for,
)
from engine.training.data import Sample
from engine.training.losses import ArcFace, class_weights, invariance_loss, orthogonality_loss
from engine.training.model import (
    EnsembleEncoder,
    ShopEncoder,
    TrunkPool,
    build_encoder,
    export_trunk,
)
from engine.training.options import LOSSES, STAGE_CACHE, STAGE_TRAIN, TRAIN_INPUT_SIZE

DEFAULT_ARCH = "tf_efficientnet_lite0"
T = TypeVar("T")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run; stored with the model it produced."""

    arch: str = "auto"  # auto: the active model's architecture (learning), else Lite0
    # The last two stages: on grocery (2640 photos) top-1 0.872 in 631 s against 0.801 in 244 s
    # for the last one alone (bench/bench_learning.py, idle 2-core machine, 224 px).
    unfreeze: str = "last2"
    loss: str = "arcface"
    epochs: int = EPOCHS  # 3: a fourth gains less than a second member does (below)
    # Members: tails trained from different seeds on the same cached features, their
    # embeddings summed (model.EnsembleEncoder). Grocery, 288 px, lab mean of ten seeds:
    # one member 0.856 +- 0.018 top-1 (4 epochs 0.862), a 3-epoch plus a 2-epoch member
    # 0.873 +- 0.012 for the time of 5 epochs (3 + 1 epochs: 0.863).
    members: int = MEMBERS  # 2
    member_epochs: int = MEMBER_EPOCHS  # 2: of every member after the first (<= ``epochs``)
    batch_size: int = 64
    lr_tail: float = 1e-3
    lr_head: float = 1e-2
    weight_decay: float = 1e-4
    embedding_dim: int = 512
    arc_scale: float = 20.0
    arc_margin: float = 0.5
    focal_gamma: float = 0.0
    ortho_weight: float = 1.0
    catalog_views: int = CATALOG_VIEWS  # 16: clean + simulated phone photos per catalog image
    photo_views: int = PHOTO_VIEWS  # 2: clean + mild jitters per confirmed photo
    max_photos_per_sku: int = 200  # caps time and memory; the most recent photos are kept
    # Training views a run aims at (0: no limit); bigger libraries get fewer catalog views and
    # photos (budget.plan_views), so time and memory stay near the grocery dev set's.
    max_views: int = MAX_VIEWS
    feature_flip: bool = True  # mirror cached feature maps: a free extra view
    # Smallest share of the cached map's side a random crop keeps (1: no crop). Cropping the
    # cached maps is a zoom-in augmentation that costs nothing and makes the epoch cheaper
    # (grocery, 224 px: top-1 0.848 in 463 s against 0.851 in 553 s uncropped). 0.5 was
    # tried and not kept: 1.0-1.4 points lower top-1 in the product bench for two seeds, for
    # 5% less time (bench/bench_learning.py).
    feature_crop: float = 0.6
    cache_backend: str = "auto"  # onnx (fast for many views), torch (no export), auto
    input_size: int = TRAIN_INPUT_SIZE  # the fine-tuned model's input, so matching's too
    square_mode: str = "letterbox"
    seed: int = 0
    threads: int = 0  # 0: all cores

    def resolved(self, arch: str = DEFAULT_ARCH) -> TrainConfig:
        """This config with 'auto' replaced by ``arch``."""
        return self if self.arch != "auto" else dataclasses.replace(self, arch=arch)

    def validate(self) -> None:
        arch_spec(self.arch)
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose from {', '.join(LOSSES)}")
        if self.epochs < 1 or self.member_epochs < 1 or self.batch_size < 2:
            raise ValueError("training needs at least one epoch and a batch of two")
        if self.members < 1:
            raise ValueError("training needs at least one member")
        if self.catalog_views < 1 or self.photo_views < 1:
            raise ValueError("every image needs at least its clean view")
        if self.max_views and self.max_views < self.photo_views:
            raise ValueError(
                f"max_views must be 0 (no limit) or at least {self.photo_views}, "
                f"got {self.max_views}"
            )

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    def member(self, i: int) -> TrainConfig:
        """The settings member ``i`` trains with: its own seed, fewer epochs after the first."""
        if i == 0:
            return self
        epochs = min(self.epochs, self.member_epochs)
        return dataclasses.replace(self, seed=self.seed + i, epochs=epochs)


@dataclass
class FeatureCache:
    """Trunk outputs of every training view (float16) with their labels."""

    features: torch.Tensor
    labels: torch.Tensor  # class index per view
    sample: torch.Tensor  # index into the sample list per view
    is_catalog: torch.Tensor  # bool per view
    clean: torch.Tensor  # bool: the un-augmented view (what matching will see)
    failed: list[tuple[Path, str]] = field(default_factory=list)


@dataclass
class TrainResult:
    model: ShopEncoder | EnsembleEncoder
    config: TrainConfig
    losses: list[float]  # mean loss per epoch (of the first member)
    cache_s: float
    train_s: float
    n_views: int
    n_samples: int  # images read and trained on
    member_losses: list[list[float]] = field(default_factory=list)  # every member's epochs
    n_photos: int = 0  # of n_samples, the confirmed photos (a view budget may cut some)


def _views(sample: Sample, cfg: TrainConfig, index: int) -> list[Image.Image]:
    """The clean view plus augmented ones, each made square exactly as matching does."""
    img = sample.load(cfg.input_size)
    # Augment at a working size a bit above the input size: cheaper, and no detail is lost.
    work = img.copy()
    work.thumbnail((cfg.input_size * 3 // 2,) * 2, Image.Resampling.BILINEAR)
    if sample.kind == "catalog":
        n, make = cfg.catalog_views, phone_photo
    else:
        n, make = cfg.photo_views, photo_jitter
    out = [img] + [make(work, seed=cfg.seed * 1_000_003 + index * 997 + v) for v in range(1, n)]
    return [to_square(v, cfg.input_size, mode=cfg.square_mode) for v in out]


def _ort_session(path: Path, threads: int) -> ort.InferenceSession:

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    # Spinning threads waste shared cores (torch and the view-making threads run alongside).
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def cache_features(
    model: ShopEncoder,
    samples: Sequence[Sample],
    labels: Sequence[int],
    cfg: TrainConfig,
    workdir: Path,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> FeatureCache:
    """Run the frozen trunk over every view of every sample, once.

    onnxruntime runs the trunk several times faster than torch eager, which pays for the
    ONNX export (some seconds) once there are more than a few hundred views.
    """
    spec = arch_spec(cfg.arch)
    n_views = _count_views(samples, cfg)
    run = _trunk_runner(model, cfg, workdir, n_views=n_views)
    # Counted in views, not images: a catalog image makes 16 and a photo 2, so a count of
    # images would move eight times faster through the photos than through the catalog.
    reporter = ProgressReporter(STAGE_CACHE, n_views, progress, cancel)
    feats: list[np.ndarray] = []
    meta: list[tuple[int, int, bool, bool]] = []
    failed: list[tuple[Path, str]] = []

    def work(i: int) -> tuple[int, list[Image.Image] | str]:
        try:
            return i, _views(samples[i], cfg, i)
        except ImageLoadError as exc:
            return i, exc.reason

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="views") as pool:
        for i, res in _ahead(pool, work, range(len(samples)), depth=8):
            if isinstance(res, str):
                failed.append((samples[i].source, res))
                reporter.step(_views_of(samples[i], cfg))
                continue
            feats.append(run(to_tensor(res, spec.mean, spec.std)).astype(np.float16))
            cat = samples[i].kind == "catalog"
            meta.extend((labels[i], i, cat, v == 0) for v in range(len(res)))
            reporter.step(len(res))
    if not feats:
        raise ValueError("no training image could be read")
    m = np.asarray(meta, dtype=np.int64)
    return FeatureCache(
        features=torch.from_numpy(np.concatenate(feats)),
        labels=torch.from_numpy(m[:, 0]),
        sample=torch.from_numpy(m[:, 1]),
        is_catalog=torch.from_numpy(m[:, 2].astype(bool)),
        clean=torch.from_numpy(m[:, 3].astype(bool)),
        failed=failed,
    )


def _views_of(sample: Sample, cfg: TrainConfig) -> int:
    return cfg.catalog_views if sample.kind == "catalog" else cfg.photo_views


def _count_views(samples: Sequence[Sample], cfg: TrainConfig) -> int:
    return sum(_views_of(s, cfg) for s in samples)


def _trunk_runner(
    model: ShopEncoder, cfg: TrainConfig, workdir: Path, n_views: int
) -> Callable[[np.ndarray], np.ndarray]:
    """A function batch -> trunk output (numpy), on onnxruntime or torch."""
    backend = cfg.cache_backend
    if backend == "auto":
        work = n_views * (cfg.input_size / 224) ** 2  # in 224-px image equivalents
        backend = "onnx" if work > 400 else "torch"
    if backend == "onnx":
        session = _ort_session(
            export_trunk(model, workdir / "trunk.onnx", cfg.input_size), threads_for(cfg.threads)
        )
        name = session.get_inputs()[0].name
        return lambda batch: session.run(None, {name: batch})[0]
    if backend != "torch":
        raise ValueError(f"unknown cache backend {backend!r}; use onnx, torch or auto")
    trunk = TrunkPool(model.trunk, pool=len(model.tail) == 0).eval()

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return trunk(torch.from_numpy(batch)).numpy()

    return run


def _ahead(
    pool: ThreadPoolExecutor, fn: Callable[[int], T], items: Iterable[int], depth: int
) -> Iterator[T]:
    """Map ``fn`` over ``items`` in ``pool``, in order, keeping ``depth`` tasks in flight
    (bounded read-ahead: decoding and augmenting overlap the trunk without piling up)."""
    todo = iter(items)
    pending = deque(pool.submit(fn, i) for i in itertools.islice(todo, depth))
    while pending:
        yield pending.popleft().result()
        for i in itertools.islice(todo, 1):
            pending.append(pool.submit(fn, i))


def random_crop(x: torch.Tensor, smallest: float, gen: torch.Generator) -> torch.Tensor:
    """One random square crop per map, of one even side for the whole batch (even sides keep
    the stride-2 layers' fixed padding exact), at least ``smallest`` of the full side."""
    full = x.shape[-1]
    low = max(2, int(np.ceil(full * smallest / 2)) * 2)
    sides = list(range(low, full + 1, 2)) or [full]
    side = sides[int(torch.randint(len(sides), (1,), generator=gen))]
    if side >= min(x.shape[-2:]):
        return x
    top = torch.randint(x.shape[-2] - side + 1, (len(x),), generator=gen).tolist()
    left = torch.randint(x.shape[-1] - side + 1, (len(x),), generator=gen).tolist()
    return torch.stack(
        [m[:, t : t + side, c : c + side] for m, t, c in zip(x, top, left, strict=True)]
    )


def _batch_loss(
    model: ShopEncoder,
    arc: ArcFace | None,
    cache: FeatureCache,
    idx: torch.Tensor,
    anchors: torch.Tensor,
    cfg: TrainConfig,
    gen: torch.Generator,
) -> torch.Tensor:
    x = cache.features[idx].float()
    if x.dim() == 4:  # feature maps (not pooled features): free augmentations, fast layout
        if cfg.feature_flip:
            flip = (torch.rand(len(idx), generator=gen) < 0.5).to(x.device)
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        if cfg.feature_crop < 1:
            x = random_crop(x, cfg.feature_crop, gen)
        x = x.contiguous(memory_format=torch.channels_last)
    emb = model.forward_cached(x)
    loss = emb.new_zeros(())
    if arc is not None:
        loss = loss + arc(emb, cache.labels[idx])
    if cfg.loss in ("ortho", "both") and len(anchors) > 1:
        # Clean catalog views: the sources of this batch's catalog views plus random others.
        in_batch = cache.sample[idx][cache.is_catalog[idx]].unique()
        anchor_of = {int(cache.sample[a]): int(a) for a in anchors}
        chosen = [anchor_of[int(s)] for s in in_batch if int(s) in anchor_of]
        extra = anchors[torch.randperm(len(anchors), generator=gen)[: max(0, 48 - len(chosen))]]
        pick = torch.tensor(sorted(set(chosen) | set(extra.tolist())), dtype=torch.long)
        a_emb = model.forward_cached(cache.features[pick].float())
        ortho = orthogonality_loss(a_emb, cache.labels[pick])
        pos = {int(cache.sample[p]): j for j, p in enumerate(pick.tolist())}
        rows = [(j, pos[int(s)]) for j, s in enumerate(cache.sample[idx].tolist()) if s in pos]
        if rows:
            v, a = torch.tensor(rows).T
            ortho = ortho + invariance_loss(emb[v], a_emb[a])
        loss = loss + cfg.ortho_weight * ortho
    return loss


def _pool(cache: FeatureCache, cfg: TrainConfig) -> torch.Tensor:
    """The views an epoch goes through: the catalog's alone for the catalog-only loss."""
    if cfg.loss == "ortho":
        return torch.nonzero(cache.is_catalog).flatten()
    return torch.arange(len(cache.labels))


def train_cached(
    model: ShopEncoder,
    cache: FeatureCache,
    n_classes: int,
    cfg: TrainConfig,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    reporter: ProgressReporter | None = None,
    label: str = "",
) -> list[float]:
    """Train tail + head on the cache; returns the mean loss of each epoch. ``reporter``
    (shared by an ensemble's members) replaces ``progress``/``cancel``; ``label`` prefixes
    each step's message."""
    gen = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    pool = _pool(cache, cfg)
    anchors = torch.nonzero(cache.is_catalog & cache.clean).flatten()
    arc = None
    if cfg.loss in ("arcface", "both"):
        counts = torch.bincount(cache.labels[pool], minlength=n_classes)
        arc = ArcFace(
            cfg.embedding_dim,
            n_classes,
            scale=cfg.arc_scale,
            margin=cfg.arc_margin,
            class_weights=class_weights(counts),
            focal_gamma=cfg.focal_gamma,
        ).to(cache.features.device)  # the lab trains on an accelerator; the product on CPU
    tail, head = model.trainable_parameters()
    head_params = head + (list(arc.parameters()) if arc is not None else [])
    groups = [{"params": head_params, "lr": cfg.lr_head}]
    if tail:
        groups.append({"params": tail, "lr": cfg.lr_tail})
    opt = torch.optim.AdamW(groups, weight_decay=cfg.weight_decay)
    per_epoch = max(1, len(pool) // cfg.batch_size)
    total = per_epoch * cfg.epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=[g["lr"] for g in groups], total_steps=total, pct_start=0.1
    )
    reporter = reporter or ProgressReporter(STAGE_TRAIN, total, progress, cancel)
    done = 0
    losses: list[float] = []
    model.set_training()
    # Channels-last runs the tail's 1x1 and depthwise convolutions through oneDNN without
    # layout conversions: 1.2-1.3x faster steps on two cores (measured on the last2 tail).
    model.tail.to(memory_format=torch.channels_last)  # the only convolutions that train
    try:
        for _epoch in range(cfg.epochs):
            order = pool[torch.randperm(len(pool), generator=gen)]
            running = 0.0
            for step in range(per_epoch):
                idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
                loss = _batch_loss(model, arc, cache, idx, anchors, cfg, gen)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                done += 1
                if done < total:
                    sched.step()
                value = loss.item()
                running += value
                reporter.step(message=f"{label}loss {value:.3f}")
            losses.append(running / per_epoch)
    finally:
        model.tail.to(memory_format=torch.contiguous_format)  # export and inference as before
        model.eval()
    return losses


def train(
    samples: Sequence[Sample],
    skus: Sequence[str],
    cfg: TrainConfig,
    workdir: Path,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> TrainResult:
    """Build the split ImageNet encoder, cache trunk features, train; the model is returned
    in eval mode, ready to export."""
    cfg = cfg.resolved()
    cfg.validate()
    class_of = {s: i for i, s in enumerate(skus)}
    previous = torch.get_num_threads()
    torch.set_num_threads(threads_for(cfg.threads))
    try:
        torch.manual_seed(cfg.seed)  # the projection's initialisation
        model, _ = build_encoder(cfg.arch, cfg.unfreeze, cfg.embedding_dim, cfg.input_size)
        start = time.perf_counter()
        cache = cache_features(
            model,
            samples,
            [class_of[s.sku] for s in samples],
            cfg,
            workdir,
            progress=progress,
            cancel=cancel,
        )
        cache_s = time.perf_counter() - start
        start = time.perf_counter()
        result, losses = train_members(model, cache, len(skus), cfg, progress, cancel)
        train_s = time.perf_counter() - start
    finally:
        torch.set_num_threads(previous)
    n_read = len(samples) - len(cache.failed)
    unread = {path for path, _ in cache.failed}
    n_photos = sum(1 for s in samples if s.kind == "photo" and s.source not in unread)
    return TrainResult(
        result,
        cfg,
        losses[0],
        cache_s,
        train_s,
        len(cache.labels),
        n_read,
        member_losses=losses,
        n_photos=n_photos,
    )


def train_members(
    model: ShopEncoder,
    cache: FeatureCache,
    n_classes: int,
    cfg: TrainConfig,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[ShopEncoder | EnsembleEncoder, list[list[float]]]:
    """Train ``cfg.members`` tails on one cache (the first is ``model``'s own); returns the
    model (an ensemble over the shared trunk when there are several) and each member's
    per-epoch losses."""
    members: list[ShopEncoder] = [model]
    losses: list[list[float]] = []
    per_epoch = max(1, len(_pool(cache, cfg)) // cfg.batch_size)
    total = sum(per_epoch * cfg.member(i).epochs for i in range(cfg.members))
    reporter = ProgressReporter(STAGE_TRAIN, total, progress, cancel)  # one bar for all
    for i in range(cfg.members):
        mcfg = cfg.member(i)
        if i:
            torch.manual_seed(mcfg.seed)  # this member's projection initialisation
            member = build_encoder(mcfg.arch, mcfg.unfreeze, mcfg.embedding_dim, mcfg.input_size)
            members.append(member[0].to(cache.features.device))
        label = f"model {i + 1} of {cfg.members}, " if cfg.members > 1 else ""
        losses.append(
            train_cached(members[i], cache, n_classes, mcfg, reporter=reporter, label=label)
        )
    if len(members) == 1:
        return model, losses
    return EnsembleEncoder.sharing_trunk(members).eval(), losses


def embed(
    model: ShopEncoder | EnsembleEncoder, images: Sequence[Image.Image], cfg: TrainConfig
) -> np.ndarray:
    """Embed images with the torch model exactly as the exported encoder would (tests, bench)."""
    spec = arch_spec(cfg.resolved().arch)
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), 32):
            chunk = [
                to_square(im, cfg.input_size, cfg.square_mode) for im in images[start : start + 32]
            ]
            out.append(
                model.eval()(torch.from_numpy(to_tensor(chunk, spec.mean, spec.std))).numpy()
            )
    return np.concatenate(out) if out else np.zeros((0, cfg.embedding_dim), np.float32)
