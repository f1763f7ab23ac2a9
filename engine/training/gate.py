"""The gate: a candidate model is activated only if it matches better than the active one.

Both models are scored the way matching will use them, through their ONNX encoders and the
embeddings stored for every reference image: held-out confirmed photos (never trained on) are
queried against the library's references (catalog images plus the other confirmed photos,
as instant memory has them), and simulated phone photos of catalog images are queried against
the catalog alone (the self-check: does every product, including those never confirmed, stay
recognisable?). The comparison is returned as plain data to store with the model version.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from engine.evaluation import Metrics, ranking_metrics
from engine.images import ImageLoadError
from engine.matching import SCORE_POOL
from engine.progress import CancelToken, ProgressCallback, ProgressReporter
from engine.reembed import embed_missing
from engine.thumbnails import readable_source
from engine.training.augment import phone_photo
from engine.training.data import Sample
from engine.training.options import CATALOG_CHECK_MAX, MIN_HELDOUT, STAGE_COMPARE
from engine.wording import count

if TYPE_CHECKING:
    from engine.encoder import Encoder
    from engine.library import Library

CRITERIA = {  # what decided, as the verdict names it to the user
    "heldout_mrr": "MRR on held-out confirmed photos",
    "catalog_check_mrr": "MRR on simulated photos of the catalog",
}
CATALOG_DROP_ALLOWED = 0.10  # a held-out gain may not cost more self-check top-1 than this
CHECK_SEED = 1_000_000_007  # self-check views differ from every training view


@dataclass
class VersionScore:
    version: str
    heldout: Metrics
    catalog_check: Metrics

    def to_dict(self) -> dict[str, object]:
        return {"heldout": asdict(self.heldout), "catalog_check": asdict(self.catalog_check)}


@dataclass
class GateDecision:
    candidate: VersionScore
    active: VersionScore
    accept: bool
    reason: str
    criterion: str  # which metric decided: 'heldout_mrr' or 'catalog_check_mrr'
    temperature: float | None  # softmax temperature fitted for the candidate

    def to_dict(self) -> dict[str, object]:
        return {
            "accept": self.accept,
            "reason": self.reason,
            "criterion": self.criterion,
            "candidate": self.candidate.to_dict(),
            "active": {"version": self.active.version, **self.active.to_dict()},
            "temperature": self.temperature,
        }


def catalog_check_images(
    catalog: Sequence[Sample], input_size: int, limit: int = CATALOG_CHECK_MAX
) -> list[tuple[Image.Image, str]]:
    """One fixed simulated phone photo per catalog image (an even sample if there are many)."""
    step = max(1, -(-len(catalog) // limit))
    out: list[tuple[Image.Image, str]] = []
    for i, sample in enumerate(catalog[::step]):
        try:
            img = sample.load(input_size)
        except ImageLoadError:
            continue
        img.thumbnail((input_size * 3 // 2,) * 2, Image.Resampling.BILINEAR)
        out.append((phone_photo(img, seed=CHECK_SEED + i), sample.sku))
    return out


def _references(
    lib: Library, version: str, exclude_photos: set[int], catalog_only: bool
) -> tuple[np.ndarray, list[str]]:
    sql = (
        "SELECT c.sku, c.photo_id, e.vector FROM catalog_images c JOIN embeddings e "
        "ON e.image_id = c.id AND e.model_version = ?"
    )
    if catalog_only:
        sql += " WHERE c.origin = 'catalog'"
    vecs, skus = [], []
    for sku, photo_id, blob in lib.db.execute(sql, [version]):
        if photo_id is not None and int(photo_id) in exclude_photos:
            continue
        vecs.append(np.frombuffer(blob, dtype=np.float32))
        skus.append(str(sku))
    dim = lib.model_manifest(version).embedding_dim
    return (np.stack(vecs) if vecs else np.zeros((0, dim), np.float32)), skus


def _photo_vectors(lib: Library, version: str, photos: Sequence[Sample]) -> np.ndarray:
    """Stored vectors where matching or instant memory already made them, else encode."""
    dim = lib.model_manifest(version).embedding_dim
    out = np.zeros((len(photos), dim), dtype=np.float32)
    todo: list[int] = []
    for i, s in enumerate(photos):
        row = (
            lib.db.execute(
                "SELECT e.vector FROM catalog_images c JOIN embeddings e ON e.image_id = c.id "
                "AND e.model_version = ? WHERE c.photo_id = ? AND c.origin = 'confirmed'",
                [version, s.ref_id],
            ).fetchone()
            or lib.db.execute(
                "SELECT vector FROM photo_embeddings WHERE photo_id = ? AND model_version = ?",
                [s.ref_id, version],
            ).fetchone()
        )
        if row is not None:
            out[i] = np.frombuffer(row[0], dtype=np.float32)
        else:
            todo.append(i)
    if todo:
        encoder = lib.encoder_for(version)
        for start in range(0, len(todo), 32):
            chunk = todo[start : start + 32]
            imgs = [encoder.load(photos[i].source) for i in chunk]
            out[chunk] = encoder.encode_images(imgs)
    return out


def as_they_stand(lib: Library, photos: Sequence[Sample]) -> list[Sample]:
    """The held-out photos as staff decide them now and as they can be read now: staff keep
    reviewing while the model trains, so one no longer confirmed (or confirmed as a product
    since withdrawn) proves nothing and is left out, and one confirmed as another product is
    scored as that one. One readable neither from its original nor from its thumbnail is
    left out of both models' scores too: staff may tidy a delivery folder meanwhile, and that
    must not fail the run after all the training."""
    withdrawn = {
        sku for (sku,) in lib.db.execute("SELECT sku FROM products WHERE withdrawn_at IS NOT NULL")
    }
    kept = []
    for s in photos:
        decision = lib.photo_state(s.ref_id).decision
        if decision is None or decision.action != "confirm" or decision.sku in withdrawn:
            continue
        row = lib.db.execute("SELECT path, sha256 FROM photos WHERE id = ?", [s.ref_id]).fetchone()
        source = None if row is None else readable_source(lib.thumbs_dir, row[0], row[1])
        if source is not None:
            kept.append(replace(s, source=source, sku=str(decision.sku)))
    return kept


def per_sku_similarities(
    queries: np.ndarray, refs: np.ndarray, ref_skus: Sequence[str]
) -> tuple[np.ndarray, list[str]]:
    """(queries x SKUs) best similarity of each SKU's images, as matching aggregates them."""
    names = sorted(set(ref_skus))
    col = {s: j for j, s in enumerate(names)}
    sims = queries @ refs.T if len(refs) else np.zeros((len(queries), 0), np.float32)
    best = np.full((len(queries), len(names)), -np.inf, dtype=np.float32)
    cols = np.asarray([col[s] for s in ref_skus], dtype=np.int64)
    for j in range(len(names)):
        mask = cols == j
        best[:, j] = sims[:, mask].max(axis=1)
    return best, names


def ranks_of(best: np.ndarray, names: Sequence[str], truth: Sequence[str]) -> list[int | None]:
    """1-based rank of the true SKU; ties count against it, so a collapsed model that gives
    every SKU the same similarity ranks last, not first."""
    col = {s: j for j, s in enumerate(names)}
    ranks: list[int | None] = []
    for row, sku in zip(best, truth, strict=True):
        j = col.get(sku)
        ranks.append(None if j is None else int((row >= row[j]).sum()))
    return ranks


def fit_temperature(best: np.ndarray, names: Sequence[str], truth: Sequence[str]) -> float | None:
    """Softmax temperature minimising the held-out NLL of the true SKU, so a score of 0.9
    means about 9 in 10 right; over the same top-SKU pool that matching scores."""
    col = {s: j for j, s in enumerate(names)}
    rows = [(r, col[t]) for r, t in zip(best, truth, strict=True) if t in col]
    if len(rows) < MIN_HELDOUT:
        return None
    pool = min(SCORE_POOL, best.shape[1])
    logits, target = [], []
    for row, j in rows:
        top = np.argsort(-row)[:pool]
        if j not in top:
            continue
        logits.append(row[top])
        target.append(int(np.nonzero(top == j)[0][0]))
    if len(logits) < MIN_HELDOUT:
        return None
    z, t = np.stack(logits).astype(np.float64), np.asarray(target)
    grid = np.geomspace(0.005, 0.3, 80)
    nll = []
    for temp in grid:
        s = z / temp
        s -= s.max(axis=1, keepdims=True)
        logp = s - np.log(np.exp(s).sum(axis=1, keepdims=True))
        nll.append(-logp[np.arange(len(t)), t].mean())
    return float(grid[int(np.argmin(nll))])


def score_version(
    lib: Library,
    version: str,
    heldout: Sequence[Sample],
    check_skus: Sequence[str],
    check_vectors: np.ndarray,
) -> tuple[VersionScore, float | None]:
    """Held-out and self-check metrics of one model version (its embeddings must exist);
    ``check_vectors``: the self-check photos embedded with it (see :func:`embed_checks`)."""
    exclude = {s.ref_id for s in heldout}
    refs, ref_skus = _references(lib, version, exclude, catalog_only=False)
    if heldout and len(refs):
        best, names = per_sku_similarities(_photo_vectors(lib, version, heldout), refs, ref_skus)
        truth = [s.sku for s in heldout]
        held = ranking_metrics(ranks_of(best, names, truth))
        temperature = fit_temperature(best, names, truth)
    else:
        held, temperature = ranking_metrics([]), None
    cat_refs, cat_skus = _references(lib, version, set(), catalog_only=True)
    if len(check_skus) and len(cat_refs):
        best, names = per_sku_similarities(check_vectors, cat_refs, cat_skus)
        cat = ranking_metrics(ranks_of(best, names, check_skus))
    else:
        cat = ranking_metrics([])
    return VersionScore(version, held, cat), temperature


@dataclass
class SelfCheck:
    """Simulated phone photos of catalog images (their SKUs) embedded by model version."""

    input_size: int
    skus: list[str]
    vectors: dict[str, np.ndarray]


def embed_checks(
    encoders: Sequence[Encoder], catalog: Sequence[Sample], input_size: int | None = None
) -> SelfCheck:
    """The self-check photos, made at ``input_size`` (default: the largest encoder's) and
    embedded with each encoder. Needs no library, so a caller can run it beside the engine
    thread and hand the result to :func:`compare`."""
    size = input_size or max((e.manifest.input_size for e in encoders), default=224)
    check = catalog_check_images(catalog, size)
    imgs = [img for img, _ in check]
    vectors = {e.version: e.encode_images(imgs) for e in encoders}
    return SelfCheck(size, [sku for _, sku in check], vectors)


def compare(
    lib: Library,
    candidate: str,
    heldout: Sequence[Sample],
    catalog: Sequence[Sample],
    *,
    active: str | None = None,
    checks: SelfCheck | None = None,
    skip: Collection[int] = (),
    trust_catalog_check: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> GateDecision:
    """Score the (installed, inactive) candidate and the active model; decide.

    Embedding every reference image with the candidate is the same work activation does,
    and it is stored, so an accepted model then activates in seconds. ``checks``: self-check
    vectors from :func:`embed_checks`, run off the engine thread (made again here if they
    lack either model, e.g. because another model was activated meanwhile). ``skip``:
    reference images the candidate already failed to read off the engine thread; a second
    try here would hold up matching (a hung network share) for nothing.
    """
    active = active or lib.model_version
    heldout = as_they_stand(lib, heldout)
    embed_missing(lib, candidate, progress=progress, cancel=cancel, skip=skip)
    embed_missing(lib, active, progress=progress, cancel=cancel)
    reporter = ProgressReporter(STAGE_COMPARE, 2, progress, cancel)
    input_size = max(
        lib.model_manifest(candidate).input_size, lib.model_manifest(active).input_size
    )
    sc = checks
    if sc is None or sc.input_size != input_size or not {candidate, active} <= set(sc.vectors):
        # Both from the same photos, made now (catalog files may have changed since).
        sc = embed_checks([lib.encoder_for(v) for v in (candidate, active)], catalog, input_size)
    cand, temperature = score_version(lib, candidate, heldout, sc.skus, sc.vectors[candidate])
    reporter.step()
    act, _ = score_version(lib, active, heldout, sc.skus, sc.vectors[active])
    reporter.step()
    accept, reason, criterion = decide(cand, act, trust_catalog_check)
    return GateDecision(cand, act, accept, reason, criterion, temperature)


def decide(
    cand: VersionScore, act: VersionScore, trust_catalog_check: bool = False
) -> tuple[bool, str, str]:
    """Held-out MRR decides; the candidate must be strictly better there and must not lose
    much on the self-check.

    With too few held-out photos the self-check alone is not trusted unless asked: it uses
    the same simulated photos as training, so it flatters every candidate (on the grocery
    set a catalog-only model won the self-check 0.92 to 0.52 MRR and still did not match
    real photos better).
    """
    use_heldout = cand.heldout.n >= MIN_HELDOUT
    criterion = "heldout_mrr" if use_heldout else "catalog_check_mrr"
    name = CRITERIA[criterion]
    c = cand.heldout.mrr if use_heldout else cand.catalog_check.mrr
    a = act.heldout.mrr if use_heldout else act.catalog_check.mrr
    drop = act.catalog_check.top1 - cand.catalog_check.top1
    if c <= a:
        return False, f"not better ({name} {c:.3f} against {a:.3f} for the active model)", criterion
    if not use_heldout and not trust_catalog_check:
        return (
            False,
            f"only {count(cand.heldout.n, 'held-out confirmation')}, {MIN_HELDOUT} needed to "
            f"prove a gain on real photos ({name} {c:.3f} against {a:.3f} for the active model)",
            criterion,
        )
    if use_heldout and drop > CATALOG_DROP_ALLOWED:
        return (
            False,
            f"top-1 on simulated photos of the catalog drops by {drop:.3f} ({name} {c:.3f} "
            f"against {a:.3f} for the active model)",
            criterion,
        )
    return True, f"better ({name} {c:.3f} against {a:.3f} for the active model)", criterion
