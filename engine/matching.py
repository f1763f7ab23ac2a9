"""Match photos against the catalog: embed, search the index, aggregate per SKU, score.

A product can have several reference images, so image hits are folded into one entry per SKU
(its best image). Scores are a softmax over the per-SKU similarities with the model's
temperature, scaled by the shop's own decisions (``engine.calibration``): they sum to at most
1 across the catalog and read like confidences, which is what a bulk-accept threshold needs;
the raw cosine similarity is kept beside them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from engine import calibration, local_features, memory
from engine.db import (
    CURRENT_SKUS,
    MAX_SQLITE_INT,
    select_in,
    store_photo_vector,
    transaction,
    utcnow,
)
from engine.decisions import photo_state
from engine.home import expand_home
from engine.images import ImageLoadError, check_file, iter_image_files
from engine.index import NO_KEY
from engine.manifest import file_sha256
from engine.progress import CancelToken, ProgressCallback, ProgressReporter
from engine.sheet import product_price
from engine.thumbnails import save_thumbnail

if TYPE_CHECKING:
    from engine.library import Library

log = logging.getLogger(__name__)

# SKUs kept for the softmax denominator: beyond this the remaining mass is negligible.
SCORE_POOL = 50
STORED_SUGGESTIONS = 5


@dataclass(frozen=True)
class Suggestion:
    rank: int  # 1-based
    sku: str
    # Cosine similarity to the product's best image, less the library's photo-to-photo
    # offset for a product with remembered photos (memory.photographed_offsets), as it
    # competed.
    similarity: float
    score: float
    image_id: int | None
    name: str = ""
    category: str = ""
    supplier: str = ""
    price: float | str | None = None  # a number, or the sheet's words ('2 for 3.00')
    inliers: int = 0  # verified matching keypoints with image_id (local-feature stage)


@dataclass
class PhotoMatch:
    path: Path
    photo_id: int | None
    suggestions: list[Suggestion] = field(default_factory=list)
    error: str | None = None  # why the file could not be used
    duplicate_of: str | None = None  # path of an identical photo matched earlier


def expand_paths(paths: Sequence[Path | str]) -> list[Path]:
    """Files as given (any extension: content decides) plus image files inside folders."""
    out: dict[Path, None] = {}  # ordered, and a file named twice is matched once
    for p in map(Path, paths):
        p = expand_home(p).resolve()
        out.update(dict.fromkeys(iter_image_files(p) if p.is_dir() else [p]))
    return list(out)


def softmax_scores(sims: np.ndarray, temperature: float) -> np.ndarray:
    z = (sims - sims.max()) / max(temperature, 1e-6)
    e = np.exp(z)
    return e / e.sum()


def rank_skus(
    lib: Library,
    vectors: np.ndarray,
    top_k: int,
    category: str | None = None,
    supplier: str | None = None,
    exclude: frozenset[int] = frozenset(),
) -> list[list[Suggestion]]:
    """Per query vector, the top-k SKUs by best image similarity, with calibrated scores;
    ``exclude``: image ids passed over (a confirmed photo's own remembered reference)."""
    index = lib.index
    if len(index) == 0 or len(vectors) == 0:
        return [[] for _ in range(len(vectors))]
    pool = max(top_k, SCORE_POOL)
    allowed_skus: set[str] | None = None
    allowed_keys: np.ndarray | None = None
    if category is not None or supplier is not None:
        allowed_skus = _allowed_skus(lib, category, supplier)
        allowed_keys = _image_ids_of(lib, allowed_skus)
    n_products = int(lib.db.execute("SELECT count(*) FROM products").fetchone()[0])
    per_sku = max(1, len(index) // max(1, n_products))
    # Enough image hits to fill ``pool`` SKUs even when products have several images.
    wanted = pool * max(2, per_sku + 1) + len(exclude)
    keys, sims = index.search(vectors, wanted, allowed=allowed_keys)
    image_sku = _image_skus(lib, np.unique(keys))
    lowered = memory.photographed_offsets(lib, set(image_sku.values()))
    # The model's temperature, scaled by what this shop's decisions say scores are worth.
    temperature = lib.encoder.manifest.temperature / calibration.score_scale(lib)
    out: list[list[Suggestion]] = []
    for row_keys, row_sims in zip(keys, sims, strict=True):
        best: dict[str, tuple[float, int]] = {}
        for key, sim in zip(row_keys.tolist(), row_sims.tolist(), strict=True):
            sku = None if key in exclude else image_sku.get(key)
            if sku is None or (allowed_skus is not None and sku not in allowed_skus):
                continue
            if sku not in best:  # results are sorted, so the first hit is the best image
                best[sku] = (sim - lowered.get(sku, 0.0), key)
        ordered = sorted(best.items(), key=lambda kv: -kv[1][0])[:pool]
        if not ordered:
            out.append([])
            continue
        scores = softmax_scores(np.array([s for _, (s, _) in ordered]), temperature)
        out.append(
            [
                Suggestion(
                    rank=i + 1, sku=sku, similarity=float(sim), score=float(sc), image_id=int(key)
                )
                for i, ((sku, (sim, key)), sc) in enumerate(zip(ordered, scores, strict=True))
            ][:top_k]
        )
    return [_with_products(lib, s) for s in out]


def _image_skus(lib: Library, keys: np.ndarray) -> dict[int, str]:
    ids = [int(k) for k in keys.tolist() if k != NO_KEY]
    sql = "SELECT id, sku FROM catalog_images WHERE id IN ({marks})"
    return {int(i): str(sku) for i, sku in select_in(lib.db, sql, ids)}


def _image_ids_of(lib: Library, skus: set[str]) -> np.ndarray:
    sql = "SELECT id FROM catalog_images WHERE sku IN ({marks})"
    return np.asarray([r[0] for r in select_in(lib.db, sql, sorted(skus))], dtype=np.uint64)


def _allowed_skus(lib: Library, category: str | None, supplier: str | None) -> set[str]:
    where, params = [], []
    if category is not None:
        where.append("category = ?")
        params.append(category)
    if supplier is not None:
        where.append("supplier = ?")
        params.append(supplier)
    sql = "SELECT sku FROM products WHERE " + " AND ".join(where)
    return {r[0] for r in lib.db.execute(sql, params)}


def _with_products(lib: Library, suggestions: list[Suggestion]) -> list[Suggestion]:
    out = []
    for s in suggestions:
        p = lib.product(s.sku) or {}
        out.append(
            Suggestion(
                s.rank,
                s.sku,
                s.similarity,
                s.score,
                s.image_id,
                str(p.get("name") or ""),
                str(p.get("category") or ""),
                str(p.get("supplier") or ""),
                product_price(p),
                s.inliers,
            )
        )
    return out


def _store(lib: Library, photo_id: int, suggestions: list[Suggestion]) -> None:
    version = lib.model_version
    lib.db.execute(
        "DELETE FROM suggestions WHERE photo_id = ? AND model_version = ?", [photo_id, version]
    )
    now = utcnow()
    scale = calibration.score_scale(lib)  # as the scores were computed with (cached)
    lib.db["suggestions"].insert_all(
        [
            {
                "photo_id": photo_id,
                "model_version": version,
                "rank": s.rank,
                "sku": s.sku,
                "image_id": s.image_id,
                "similarity": s.similarity,
                "score": s.score,
                "inliers": s.inliers,
                "scale": scale,
                "created_at": now,
            }
            for s in suggestions
        ]
    )


def match_paths(
    lib: Library,
    paths: Sequence[Path | str],
    *,
    top_k: int = 5,
    category: str | None = None,
    supplier: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Iterator[PhotoMatch]:
    """Register, embed and match photos batch by batch; each batch is one transaction.

    A photo seen before (same content) reuses its stored embedding instead of re-encoding.
    """
    files = expand_paths(paths)
    reporter = ProgressReporter("Matching photos", len(files), progress, cancel)
    version = lib.model_version
    encoder = lib.encoder
    # Local-feature stage (issue 5): rank a full score pool, then re-rank it with verified
    # keypoints and cut to top_k; photo keypoints come from the decode the encoder does.
    lf_index = local_features.prepare(lib) if local_features.enabled(lib) else None
    # A photo keeps at least STORED_SUGGESTIONS, whatever is shown: confirming a lower one
    # later (``confirm N SKU``) still records its rank, which the gate and bench read.
    kept = max(top_k, STORED_SUGGESTIONS)
    pool_k = max(kept, SCORE_POOL) if lf_index is not None else kept
    allowed: Callable[[str], bool] = lambda _sku: True  # noqa: E731
    if lf_index is not None and (category is not None or supplier is not None):
        allowed = _allowed_skus(lib, category, supplier).__contains__
    photo_feats: dict[Path, local_features.LocalFeatures | None] = {}

    def features_of(path: Path, img: Image.Image | None) -> None:
        try:
            img = encoder.load(path) if img is None else img
            photo_feats[path] = local_features.photo_features(img)
        except ImageLoadError:
            photo_feats[path] = None
        except Exception:  # an optional stage must not stop the batch
            log.exception("keypoints of %s could not be extracted", path)
            photo_feats[path] = None

    def ranked(
        batch_paths: Sequence[Path], vectors: np.ndarray, exclude: frozenset[int] = frozenset()
    ) -> list[list[Suggestion]]:
        results = rank_skus(lib, vectors, pool_k, category, supplier, exclude)
        if lf_index is None:
            return results
        return [
            _with_products(
                lib,
                local_features.rerank_photo(
                    lib, lf_index, photo_feats.pop(p, None), v, sugg, kept, allowed, exclude
                ),
            )
            for p, v, sugg in zip(batch_paths, vectors, results, strict=True)
        ]

    fresh: list[tuple[Path, str]] = []
    seen: dict[str, Path] = {}
    copies: dict[str, str] = {}  # sha of a fresh file -> the photo's path it is a copy of
    known: list[tuple[Path, str, int, np.ndarray, str | None]] = []
    for path in files:
        reporter.check()
        try:
            check_file(path)  # a named pipe would block the hash below forever
            sha = file_sha256(path)
        except ImageLoadError as exc:
            reporter.step()
            yield PhotoMatch(path, None, error=exc.reason)
            continue
        except OSError as exc:
            reporter.step()
            reason = (
                "file not found"
                if isinstance(exc, FileNotFoundError)
                else (f"cannot read file ({exc.strerror or exc})")
            )
            yield PhotoMatch(path, None, error=reason)
            continue
        row = lib.db.execute(
            "SELECT p.id, p.path, e.vector FROM photos p LEFT JOIN photo_embeddings e "
            "ON e.photo_id = p.id AND e.model_version = ? WHERE p.sha256 = ?",
            [version, sha],
        ).fetchone()
        dup = seen.get(sha)
        earlier = None
        if row and dup is None:
            # Also for a photo not yet embedded by this model (matched before a model switch,
            # review 51): it moved, or this is a copy of it.
            earlier = row[1] if row[1] != str(path) else None
            if earlier is not None and not Path(earlier).exists():
                # Moved (a delivery's folder renamed): the photo is where it is now, so its
                # folder's export finds it. A copy elsewhere keeps the first path.
                with transaction(lib.db):
                    lib.db.execute("UPDATE photos SET path = ? WHERE id = ?", [str(path), row[0]])
                    # Its reference (instant memory) follows: one reference per file name
                    # is decided by the photo's path (review 51).
                    lib.db.execute(
                        "UPDATE OR IGNORE catalog_images SET path = ? WHERE photo_id = ? "
                        "AND origin = 'confirmed'",
                        [str(path), row[0]],
                    )
                earlier = None  # moved, not a copy of itself
        if row and row[2] is not None:
            known.append((path, sha, row[0], np.frombuffer(row[2], np.float32), earlier))
        elif dup is not None:
            known.append((path, sha, -1, np.zeros(0, np.float32), str(dup)))
        else:
            seen[sha] = path
            fresh.append((path, sha))
            if earlier is not None:
                copies[sha] = earlier

    # Photos already embedded: search again (the catalog or instant memory may have changed
    # since), except decided ones, which keep what they were decided on.
    n_products = int(lib.db.execute("SELECT count(*) FROM products").fetchone()[0])
    for path, _sha, photo_id, vec, earlier in known:
        if photo_id < 0:
            continue
        own: frozenset[int] = frozenset()
        if photo_state(lib, photo_id).decision is not None:
            stored = stored_suggestions(lib, photo_id)
            if stored and len(stored) >= min(top_k, n_products):
                reporter.step()
                yield PhotoMatch(path, photo_id, stored[:top_k], duplicate_of=earlier)
                continue
            own = remembered_references(lib, photo_id)  # else it finds itself at 100%
        if lf_index is not None:
            features_of(path, None)
        (sugg,) = ranked([path], vec[None, :], own)
        with transaction(lib.db):
            _store(lib, photo_id, sugg)
        reporter.step()
        yield PhotoMatch(path, photo_id, sugg[:top_k], duplicate_of=earlier)

    sha_of = dict(fresh)

    def thumb(path: Path, img: Image.Image) -> None:
        save_thumbnail(lib.thumbs_dir, sha_of[path], img)
        if lf_index is not None:  # runs in the decode thread, beside the encoder
            features_of(path, img)

    ids_by_sha: dict[str, int] = {}
    for ok, emb, failed in encoder.iter_encode_paths([p for p, _ in fresh], thumb):
        results = ranked(ok, emb)
        batch: list[PhotoMatch] = []
        with transaction(lib.db):
            for path, vec, sugg in zip(ok, emb, results, strict=True):
                row = lib.db.execute(
                    "SELECT id FROM photos WHERE sha256 = ?", [sha_of[path]]
                ).fetchone()
                if row is None:  # new photo (else: known, but not yet embedded by this model)
                    row = (
                        lib.db["photos"]
                        .insert({"path": str(path), "sha256": sha_of[path], "added_at": utcnow()})
                        .last_pk,
                    )
                photo_id = int(row[0])
                ids_by_sha[sha_of[path]] = photo_id
                store_photo_vector(lib.db, photo_id, version, vec)
                _store(lib, photo_id, sugg)
                batch.append(
                    PhotoMatch(path, photo_id, sugg[:top_k], duplicate_of=copies.get(sha_of[path]))
                )
        batch.extend(PhotoMatch(path, None, error=err.reason) for path, err in failed)
        yield from batch
        reporter.step(len(batch))

    # In-batch duplicates of a fresh photo: same id and suggestions as their twin.
    for path, sha, photo_id, _vec, earlier in known:
        if photo_id >= 0:
            continue
        twin = ids_by_sha.get(sha)
        reporter.step()
        if twin is None:
            yield PhotoMatch(
                path, None, error=f"could not be read (same file as {Path(earlier or '').name})"
            )
            continue
        yield PhotoMatch(path, twin, stored_suggestions(lib, twin)[:top_k], duplicate_of=earlier)


def stored_suggestions(lib: Library, photo_id: int) -> list[Suggestion]:
    """The suggestions stored when the photo was matched, less products that have left the
    catalog since (they stayed first at 100%, and "Accept confident" confirmed them)."""
    rows = lib.db.execute(
        "SELECT rank, sku, similarity, score, image_id, inliers FROM suggestions "
        f"WHERE photo_id = ? AND model_version = ? AND {CURRENT_SKUS} ORDER BY rank",
        [photo_id, lib.model_version],
    ).fetchall()
    return _with_products(
        lib, [Suggestion(r[0], r[1], r[2], r[3], r[4], inliers=r[5]) for r in rows]
    )


def remembered_references(lib: Library, photo_id: int) -> frozenset[int]:
    """Image ids of the photo itself in the index (instant memory of its confirmation)."""
    rows = lib.db.execute("SELECT id FROM catalog_images WHERE photo_id = ?", [photo_id])
    return frozenset(int(r[0]) for r in rows)


def has_withdrawn_suggestions(lib: Library, photo_id: int) -> bool:
    """Whether products that left the catalog were among the photo's stored suggestions:
    matching it again offers the catalog's current products in their place."""
    row = lib.db.execute(
        "SELECT 1 FROM suggestions WHERE photo_id = ? AND model_version = ? "
        f"AND NOT ({CURRENT_SKUS}) LIMIT 1",
        [photo_id, lib.model_version],
    ).fetchone()
    return row is not None


def resolve_photo(lib: Library, ref: str | int | Path) -> int:
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdecimal()):
        # SQLite ids stop at 2**63 - 1: a longer number names no photo (it was refused with
        # "Python int too large to convert to SQLite INTEGER").
        number = int(ref)
        row = (
            lib.db.execute("SELECT id FROM photos WHERE id = ?", [number]).fetchone()
            if 0 <= number <= MAX_SQLITE_INT
            else None
        )
    else:
        path = Path(ref)
        row = lib.db.execute(
            "SELECT id FROM photos WHERE path IN (?, ?) ORDER BY id DESC",
            [str(path), str(path.resolve())],
        ).fetchone()
        if row is None and path.is_file():
            row = lib.db.execute(
                "SELECT id FROM photos WHERE sha256 = ?", [file_sha256(path)]
            ).fetchone()
    if row is None:
        raise KeyError(f"no matched photo {ref!s}; run 'shopmatch match' on it first")
    return int(row[0])
