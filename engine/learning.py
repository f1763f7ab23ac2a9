"""Learning from confirmations: train a candidate encoder, export it, gate it, activate it.

The one entry point the CLI and the desktop app call. Every run trains from the ImageNet
weights on all current data (catalog plus live confirmations), so results are reproducible
and errors never compound across runs; the model it would replace is only a yardstick.

The work comes in phases so a caller can keep the library free while the long ones run:
:func:`prepare` and :func:`plan_gate` (read the library, fast), :func:`train_candidate` and
:func:`embed_for_gate` (minutes: train, export, and embed every reference image and the
self-check photos with the candidate; they touch no library), then :func:`finish` (install,
store, gate, activate; needs the library, seconds). :func:`learn` chains them on one thread.
Cancelling at any point leaves the active model as it was.
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from engine import scratch
from engine.progress import Cancelled, CancelToken, ProgressCallback, RunClock
from engine.training.options import HOLDOUT_SHARE
from engine.wording import count

if TYPE_CHECKING:
    from engine.library import Library
    from engine.reembed import Embedded, EmbedPlan
    from engine.training.data import Sample, TrainingSet
    from engine.training.gate import GateDecision, SelfCheck
    from engine.training.trainer import TrainConfig, TrainResult

log = logging.getLogger(__name__)

ONNX_TOLERANCE = 1e-3  # exported vs torch embeddings (unit vectors): anything above is a bug


class LearningError(RuntimeError):
    """Training cannot run (e.g. nothing to learn from); the message is meant for the user."""


@dataclass
class LearningReport:
    version: str | None
    activated: bool
    decision: GateDecision | None
    data: dict[str, int]
    losses: list[float] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    onnx_max_abs_diff: float | None = None
    config: dict[str, object] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)  # older versions no check let in

    def to_dict(self) -> dict[str, object]:
        return {
            "version": self.version,
            "removed": self.removed,
            "activated": self.activated,
            "gate": self.decision.to_dict() if self.decision else None,
            "data": self.data,
            "losses": self.losses,
            "timings": self.timings,
            "onnx_max_abs_diff": self.onnx_max_abs_diff,
            "config": self.config,
        }

    def summary(self) -> str:
        t = self.timings
        lines = [
            f"trained on {count(int(self.data.get('catalog', 0)), 'catalog image')} and "
            f"{count(int(self.data.get('photos', 0)), 'confirmed photo')} "
            f"({self.data.get('heldout', 0)} held out) in {t.get('train_s', 0):.0f} s",
        ]
        if self.decision is not None:
            c, a = self.decision.candidate, self.decision.active
            # Without held-out photos their figures are zeros that measured nothing.
            held = (
                f"{count(c.heldout.n, 'held-out photo')}: top-1 {c.heldout.top1:.3f} "
                f"(active {a.heldout.top1:.3f}), MRR {c.heldout.mrr:.3f} "
                f"(active {a.heldout.mrr:.3f})"
                if c.heldout.n
                else "no confirmed photo held out (too few of each product)"
            )
            lines.append(
                f"{held}; catalog self-check top-1 {c.catalog_check.top1:.3f} "
                f"(active {a.catalog_check.top1:.3f})"
            )
            verdict = "activated" if self.activated else "kept the active model"
            lines.append(f"model {self.version}: {self.decision.reason}; {verdict}")
        if self.removed:
            lines.append(
                f"removed {count(len(self.removed), 'older version')} that no check let in "
                f"({', '.join(self.removed)}), keeping the newest {KEEP_UNUSED}"
            )
        return "\n".join(lines)


KEEP_UNUSED = 3  # refused or unfinished versions kept to try by hand; older ones go
_UNUSED = {"refused", "cancelled", "failed", "evaluating"}  # never passed the check


def prune_unused(lib: Library, keep: int = KEEP_UNUSED, spare: str | None = None) -> list[str]:
    """Remove versions that never passed the check, all but the newest ``keep``: each run
    leaves one (~30 MB with its vectors), so a shop training every week would fill its disk
    with models nobody uses. Versions that passed, the active one, the one it replaced (a
    refused version tried by hand and used until now: the way back) and the bundled one
    always stay, as does ``spare`` (the run's own candidate, however the clock stood when the
    others were made). The database is compacted once at the end. Returns the versions
    removed."""
    models = lib.models()  # newest first
    active = next((m for m in models if m["active"]), None)
    way_back = (active or {}).get("metrics") or {}
    spared = {spare, str(way_back.get("replaces")) if isinstance(way_back, dict) else None}
    unused = [
        str(m["version"])
        for m in models
        if not m["active"]
        and isinstance(m["metrics"], dict)
        and m["metrics"].get("status") in _UNUSED
        and lib.removal_problem(str(m["version"])) is None
    ]
    doomed = [v for v in unused[keep:] if v not in spared]
    for version in doomed:
        lib.remove_model(version, compact=False)
    if doomed:
        lib.compact()
    return doomed


def prepare(lib: Library, holdout: float = HOLDOUT_SHARE) -> TrainingSet:
    """Read the training data out of the library (quick); raises if there is too little."""
    from engine.training.data import collect

    data = collect(lib, holdout=holdout)
    if len(data.skus) < 2 or not (data.catalog or data.photos):
        raise LearningError(
            "nothing to learn from yet: learning needs at least two products with a picture "
            "(import the supplier's pictures, or confirm photos of two products)"
        )
    return data


def train_candidate(
    data: TrainingSet,
    config: TrainConfig,
    workdir: Path,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> TrainResult:
    """The long phase: cache trunk features, train. Needs no library."""
    from engine.training.budget import plan_views
    from engine.training.trainer import train

    config.resolved().validate()  # before the plan: a bad max_views gets its own message
    photos = _trainable_photos(data, config)
    plan = plan_views(
        len(data.catalog),
        len(photos),
        catalog_views=config.catalog_views,
        photo_views=config.photo_views,
        max_views=config.max_views,
    )
    photos = cap_photos(photos, config.max_photos_per_sku, total=plan.photos)
    config = dataclasses.replace(config, catalog_views=plan.catalog_views)  # stored with it
    return train(
        data.catalog + photos, data.skus, config, workdir, progress=progress, cancel=cancel
    )


def _trainable_photos(data: TrainingSet, config: TrainConfig) -> list[Sample]:
    """The confirmed photos a run may train on, before the view budget's cut. The
    orthogonality loss is unsupervised: it learns from the catalog alone."""
    return [] if config.loss == "ortho" else cap_photos(data.photos, config.max_photos_per_sku)


def cap_photos(photos: list[Sample], per_sku: int, total: int | None = None) -> list[Sample]:
    """The most recent photos (highest ids) of every SKU, at most ``per_sku`` of each (a SKU
    confirmed thousands of times adds time, not knowledge) and ``total`` in all: the largest
    per-SKU limit that fits, then, while there is room, the next photo of the SKUs whose next
    photo is the most recent."""
    groups: dict[str, list[Sample]] = {}
    for s in sorted(photos, key=lambda s: -s.ref_id):
        groups.setdefault(s.sku, []).append(s)
    counts = [len(g) for g in groups.values()]
    limit = per_sku
    if total is not None and sum(min(c, limit) for c in counts) > total:
        low, high = 0, per_sku  # the largest limit that fits (0 when SKUs outnumber room)
        while low < high:
            mid = (low + high + 1) // 2
            low, high = (mid, high) if sum(min(c, mid) for c in counts) <= total else (low, mid - 1)
        limit = low
        room = total - sum(min(c, limit) for c in counts)
        extra = sorted(
            (g[limit] for g in groups.values() if len(g) > limit), key=lambda s: -s.ref_id
        )
        more = {id(s) for s in extra[:room]}
        return [
            s
            for g in groups.values()
            for i, s in enumerate(g[: limit + 1])
            if i < limit or id(s) in more
        ]
    return [s for g in groups.values() for s in g[:limit]]


def base_arch(lib: Library) -> str:
    """Train the architecture the library already uses, if it is one we can train."""
    from engine.export_onnx import ARCHITECTURES
    from engine.training.trainer import DEFAULT_ARCH

    arch = lib.model_manifest(lib.model_version).architecture
    return arch if arch in ARCHITECTURES else DEFAULT_ARCH


def new_version(lib: Library, arch: str) -> str:
    """A fresh, sortable version name: '<base>-shop-YYYYmmdd-HHMMSS'."""
    from engine.export_onnx import arch_spec

    base = arch_spec(arch).version.rsplit("-imagenet", 1)[0]
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    taken = {str(m["version"]) for m in lib.models()}
    version, n = f"{base}-shop-{stamp}", 1
    while version in taken or (lib.models_dir / version).exists():
        n += 1
        version = f"{base}-shop-{stamp}-{n}"
    return version


def export_candidate(result: TrainResult, out_dir: Path, version: str) -> float:
    """Export the trained model to ONNX + manifest; returns the ONNX-vs-torch max abs diff."""
    import torch

    from engine.export_onnx import ONNX_FILE, arch_spec, export_encoder, onnx_vs_torch_max_abs_diff

    cfg = result.config.resolved()
    manifest = export_encoder(
        cfg.arch,
        out_dir,
        input_size=cfg.input_size,
        version=version,
        parent_version=arch_spec(cfg.arch).version,
        model=result.model,
    )
    gen = torch.Generator().manual_seed(0)
    probe = torch.rand(3, 3, cfg.input_size, cfg.input_size, generator=gen) * 2 - 1
    diff = onnx_vs_torch_max_abs_diff(result.model, out_dir / ONNX_FILE, probe)
    if diff > ONNX_TOLERANCE:
        raise LearningError(f"exported model differs from the trained one (max abs {diff:.2e})")
    notes = {
        **manifest.notes,
        "source": "fine-tuned on this shop's catalog and confirmed photos",
        "training": {
            **cfg.to_dict(),
            "losses": result.losses,
            "member_losses": result.member_losses,
        },
        "onnx_max_abs_diff": diff,
    }
    dataclasses.replace(manifest, embedding_dim=cfg.embedding_dim, notes=notes).save(out_dir)
    return diff


@dataclass
class GatePlan:
    """What the library-free part of the gate needs, read out of the library (fast)."""

    version: str  # the candidate's name
    references: EmbedPlan  # every reference image (the candidate has no vectors yet)
    active_dir: Path  # the model the candidate will be compared with
    square_mode: str


@dataclass
class GateWork:
    """The candidate exported and its vectors computed, beside the engine thread: what
    :func:`finish` would otherwise spend minutes on while matching waits."""

    version: str
    model_dir: Path
    onnx_max_abs_diff: float
    references: Embedded
    checks: SelfCheck
    seconds: dict[str, float] = field(default_factory=dict)


def plan_gate(lib: Library, config: TrainConfig) -> GatePlan:
    """Name the candidate and list the reference images it must embed (quick)."""
    version = new_version(lib, config.resolved(base_arch(lib)).arch)
    return GatePlan(
        version, lib.plan_embeddings(version), lib.model_dir(lib.model_version), lib.square_mode
    )


def run_clock(
    data: TrainingSet, config: TrainConfig, plan: GatePlan, progress: ProgressCallback
) -> RunClock:
    """``progress`` with the whole run's share done and time left added to every report,
    from the run's planned stages (training.budget.stage_seconds) and the pace measured as
    it goes. Torch-free, so the desktop app can keep one from its step 2 (the pool) into its
    step 3 (the engine thread)."""
    from engine.training.budget import member_epochs_total, stage_seconds, thread_pace, threads_for

    stages = stage_seconds(
        len(data.catalog),
        len(_trainable_photos(data, config)),
        len(plan.references.refs),
        input_size=config.input_size,
        catalog_views=config.catalog_views,
        photo_views=config.photo_views,
        max_views=config.max_views,
        epochs_total=member_epochs_total(config.epochs, config.members, config.member_epochs),
    )
    return RunClock(stages, progress, pace=thread_pace(threads_for(config.threads)))


def embed_for_gate(
    plan: GatePlan,
    data: TrainingSet,
    result: TrainResult,
    workdir: Path,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> GateWork:
    """Export the candidate and embed the planned reference images and the self-check photos
    with it (and the self-check with the active model). Needs no library."""
    from engine.encoder import Encoder
    from engine.training.gate import embed_checks

    threads = result.config.threads or None
    start = time.perf_counter()
    diff = export_candidate(result, workdir / "model", plan.version)
    export_s = time.perf_counter() - start
    start = time.perf_counter()
    candidate = Encoder(workdir / "model", threads=threads, square_mode=plan.square_mode)
    refs = plan.references.encode(candidate, progress=progress, cancel=cancel)
    active = Encoder(plan.active_dir, threads=threads, square_mode=plan.square_mode)
    if cancel is not None:
        cancel.check()
    checks = embed_checks([candidate, active], data.catalog)
    seconds = {"export_s": export_s, "embed_s": time.perf_counter() - start}
    return GateWork(plan.version, workdir / "model", diff, refs, checks, seconds)


def set_model_temperature(lib: Library, version: str, temperature: float) -> None:
    """Store a fitted softmax temperature in an installed model's manifest (file and row).

    Meant to move into Library; the ONNX file and its hash are untouched.
    """
    manifest = dataclasses.replace(lib.model_manifest(version), temperature=temperature)
    manifest.save(lib.model_dir(version))
    lib.db["models"].update(version, {"manifest": manifest.to_json()})


def finish(
    lib: Library,
    data: TrainingSet,
    result: TrainResult,
    work: GateWork,
    *,
    activate: bool = True,
    trust_catalog_check: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> LearningReport:
    """Install the candidate exported by :func:`embed_for_gate` (inactive), gate it against
    the active model, store the comparison, and activate it only if it is better.

    Seconds: ``work`` holds the minutes of encoding, so only reference images added since the
    plan are embedded here.
    """
    from engine.reembed import embed_missing
    from engine.training.gate import compare

    timings = {"cache_s": result.cache_s, "train_s": result.cache_s + result.train_s}
    timings["epochs_s"] = result.train_s
    previous = lib.model_version
    version, diff = work.version, work.onnx_max_abs_diff
    timings.update(work.seconds)
    # The catalog-only loss learns from no photo: said so, and the Learning page then still
    # counts every confirmation as new to the next run.
    learnt = result.config.loss != "ortho"
    report = LearningReport(
        version=version,
        activated=False,
        decision=None,
        data={
            "skus": len(data.skus),
            "catalog": len(data.catalog),
            "photos": result.n_photos,  # after the view budget's cut, as trained
            "heldout": len(data.heldout),
            "views": result.n_views,
            "unreadable": len(data.missing),
            "confirmations": data.confirmations if learnt else 0,
            # Which confirmations it learnt (by photo, for the Learning page's 'new since').
            "decided_up_to": data.decided_up_to if learnt else 0,
        },
        losses=result.losses,
        timings=timings,
        onnx_max_abs_diff=diff,
        config=result.config.to_dict(),
    )
    metrics: dict[str, object] = {"status": "evaluating", "replaces": previous}
    failed = {image_id for image_id, _ in work.references.failed}  # read once is enough
    lib.install_model(work.model_dir, metrics=metrics, check=False)  # checked against torch
    try:
        start = time.perf_counter()
        lib.store_embeddings(work.references)
        # Reference images added since the plan (a few): embedded here, failures not retried.
        late = embed_missing(lib, version, skip=failed, progress=progress, cancel=cancel)
        failed |= {image_id for image_id, _ in late}
        decision = compare(
            lib,
            version,
            data.heldout,
            data.catalog,
            checks=work.checks,
            skip=failed,
            trust_catalog_check=trust_catalog_check,
            progress=progress,
            cancel=cancel,
        )
        timings["gate_s"] = time.perf_counter() - start
        report.decision = decision
        if decision.temperature is not None:
            set_model_temperature(lib, version, decision.temperature)
        metrics.update(
            status="accepted" if decision.accept else "refused",
            top1=decision.candidate.heldout.top1,
            mrr=decision.candidate.heldout.mrr,
            gate=decision.to_dict(),
            data=report.data,
            timings=timings,
            onnx_max_abs_diff=diff,
        )
        lib.set_model_metrics(version, metrics)
        if activate and decision.accept:
            start = time.perf_counter()
            lib.activate_model(version, skip=failed, progress=progress, cancel=cancel)
            timings["activate_s"] = time.perf_counter() - start
            report.activated = True
            metrics.update(status="active", timings=timings)
            lib.set_model_metrics(version, metrics)
    except BaseException as exc:  # the candidate stays installed, inactive, marked as such
        status = "cancelled" if isinstance(exc, Cancelled | KeyboardInterrupt) else "failed"
        lib.set_model_metrics(version, {**metrics, "status": status})
        raise
    try:  # here, not in learn(): the app runs the steps itself and calls finish() too
        report.removed = prune_unused(lib, spare=version)
    except (OSError, RuntimeError, sqlite3.Error) as exc:  # the run's model and report stand
        log.warning("old model versions not removed: %s", exc)
    return report


def learn(
    lib: Library,
    config: TrainConfig | None = None,
    *,
    activate: bool = True,
    holdout: float = HOLDOUT_SHARE,
    trust_catalog_check: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> LearningReport:
    """Train a candidate on the library's catalog and confirmations, gate it, maybe activate.

    ``trust_catalog_check``: with fewer than ten held-out confirmations, let the (optimistic)
    catalog self-check decide instead of refusing.

    Raises :class:`engine.progress.Cancelled` if cancelled; the active model is then unchanged
    (a candidate already installed stays inactive, marked 'cancelled').
    """
    from engine.training.trainer import TrainConfig

    config = (config or TrainConfig(square_mode=lib.square_mode)).resolved(base_arch(lib))
    data = prepare(lib, holdout=holdout)
    plan = plan_gate(lib, config)
    if progress is not None:
        progress = run_clock(data, config, plan, progress)
    start = time.perf_counter()
    tmp = scratch.make(lib.path)
    try:
        result = train_candidate(data, config, tmp, progress=progress, cancel=cancel)
        work = embed_for_gate(plan, data, result, tmp, progress=progress, cancel=cancel)
        report = finish(
            lib,
            data,
            result,
            work,
            activate=activate,
            trust_catalog_check=trust_catalog_check,
            progress=progress,
            cancel=cancel,
        )
    finally:
        scratch.release(tmp)
    report.timings["total_s"] = time.perf_counter() - start
    return report
