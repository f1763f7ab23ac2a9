"""Instant memory: a confirmed photo becomes a reference image of its SKU at once.

The next photo of the same product, in the same shop light, then matches before any training
has run. The reference rows live beside the supplier's images (origin 'confirmed') and follow
the photo's live decision: undo or a changed confirmation updates them.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING

import numpy as np

from engine.db import select_in, store_photo_vector, transaction, utcnow

if TYPE_CHECKING:
    from engine.library import Library

SETTING = "instant_memory"


def enabled(lib: Library) -> bool:
    return lib.setting(SETTING, "1") == "1"


def sync_photo(lib: Library, photo_id: int) -> None:
    """Make the photo's reference image (if any) agree with its live decision and the setting.
    One reference per path: of the photos confirmed under one file name (a camera that
    restarts its counter), the newest is remembered, and the older one again when the newer
    one's confirmation goes."""
    state = lib.photo_state(photo_id)
    want = state.decision.sku if enabled(lib) and state.status == "confirmed" else None
    if want is not None and (lib.product(want) or {}).get("withdrawn_at"):
        want = None  # the product left the catalog: not suggested, not even from memory
    row = lib.db.execute(
        "SELECT id, sku FROM catalog_images WHERE photo_id = ? AND origin = 'confirmed'",
        [photo_id],
    ).fetchone()
    photo = lib.db.execute("SELECT path, sha256 FROM photos WHERE id = ?", [photo_id]).fetchone()
    if want is not None and photo is not None and _newer_holds(lib, photo_id, photo[0]):
        want = None  # a newer photo saved over the same file name is the path's reference
    if row is not None and row[1] == want:
        return
    # Loaded before the rows change: a file read afterwards no longer matches the database
    # and is rebuilt whole: every CLI confirm re-read and re-indexed every reference vector.
    _ = lib.index
    if row is not None:
        with transaction(lib.db):
            lib.db.execute("DELETE FROM catalog_images WHERE id = ?", [row[0]])
        lib.index_remove(int(row[0]))
    if photo is None:
        return
    if want is None:
        if row is not None and enabled(lib):
            hand_down(lib, photo_id, photo[0])
        return
    same = lib.db.execute(
        "SELECT 1 FROM catalog_images WHERE sha256 = ? AND origin = 'catalog'", [photo[1]]
    ).fetchone()
    if same is not None:
        return  # the "photo" is a supplier image itself: it adds nothing
    version = lib.model_version
    blob = lib.db.execute(
        "SELECT vector FROM photo_embeddings WHERE photo_id = ? AND model_version = ?",
        [photo_id, version],
    ).fetchone()
    if blob is None:  # matched under another model (confirmed from the queue after a switch)
        blob = _embed_now(lib, photo_id, photo[0], photo[1])
        if blob is None:
            return  # its file and thumbnail are both gone: nothing to remember it by
    now = utcnow()
    # A newer photo saved over the same file name replaces the older reference: its row
    # goes, and so does its key in the index (review 51: the index kept it).
    replaced = [
        int(r[0])
        for r in lib.db.execute(
            "SELECT id FROM catalog_images WHERE path = ? AND origin = 'confirmed'", [photo[0]]
        )
    ]
    with transaction(lib.db):
        lib.db.execute(
            "DELETE FROM catalog_images WHERE path = ? AND origin = 'confirmed'", [photo[0]]
        )
        image_id = int(
            lib.db["catalog_images"]
            .insert(
                {
                    "sku": want,
                    "path": photo[0],
                    "source_root": "",
                    "sha256": photo[1],
                    "origin": "confirmed",
                    "photo_id": photo_id,
                    "added_at": now,
                    "updated_at": now,
                }
            )
            .last_pk
        )
        lib.db["embeddings"].insert(
            {"image_id": image_id, "model_version": version, "vector": blob[0]}
        )
    for gone in replaced:
        lib.index_remove(gone)
    lib.index_add(image_id, np.frombuffer(blob[0], dtype=np.float32))


def _newer_holds(lib: Library, photo_id: int, path: str) -> bool:
    """Whether a newer photo saved over the same file name holds the path's one reference
    (the unique path of catalog_images: one reference per path, the newest photo's)."""
    return (
        lib.db.execute(
            "SELECT 1 FROM catalog_images WHERE path = ? AND origin = 'confirmed' AND photo_id > ?",
            [path, photo_id],
        ).fetchone()
        is not None
    )


def hand_down(lib: Library, photo_id: int, path: str) -> None:
    """The photo no longer holds its path's reference (undone, no match): the newest older
    photo confirmed under the same file name takes it, as :func:`out_of_step` expects."""
    older = lib.db.execute(
        "SELECT id FROM photos WHERE path = ? AND id < ? ORDER BY id DESC", [path, photo_id]
    ).fetchall()
    for (older_id,) in older:
        sync_photo(lib, int(older_id))
        if lib.db.execute(
            "SELECT 1 FROM catalog_images WHERE path = ? AND origin = 'confirmed'", [path]
        ).fetchone():
            return


def _embed_now(lib: Library, photo_id: int, path: str, sha256: str) -> tuple[bytes] | None:
    """The photo's vector with the active model, made and stored now (one photo: a few tens
    of ms), read from the original or its thumbnail; None if neither can be read."""
    from engine.images import ImageLoadError
    from engine.thumbnails import readable_source

    source = readable_source(lib.thumbs_dir, path, sha256)
    if source is None:
        return None
    encoder = lib.encoder
    try:
        vector = encoder.encode_images([encoder.load(source)])[0]
    except ImageLoadError:
        return None
    with transaction(lib.db):
        blob = store_photo_vector(lib.db, photo_id, encoder.version, vector)
    return (blob,)


def set_enabled(lib: Library, on: bool) -> None:
    """Turn instant memory on or off, adding or dropping every confirmed reference image."""
    lib.set_setting(SETTING, "1" if on else "0")
    ids = [r[0] for r in lib.db.execute("SELECT id FROM photos")]
    for photo_id in ids:
        sync_photo(lib, photo_id)
    lib.flush()


def out_of_step(lib: Library) -> list[int]:
    """Photos whose remembered reference disagrees with their live decision and the setting
    (what :func:`sync_photo` would change), found in two queries: confirmations made before
    instant memory existed (schema v1), or that a release failed to remember (328150e
    confirmed without remembering right after a model switch). A photo that is a supplier
    picture itself is never remembered, so it is not counted."""
    from engine.decisions import effective_states

    want: dict[int, str] = {}
    if enabled(lib):
        withdrawn = {
            str(r[0])
            for r in lib.db.execute("SELECT sku FROM products WHERE withdrawn_at IS NOT NULL")
        }
        for photo_id, d in effective_states(lib).items():
            if d.action == "confirm" and d.sku is not None and d.sku not in withdrawn:
                want[int(photo_id)] = str(d.sku)
    have = {
        int(r[0]): str(r[1])
        for r in lib.db.execute(
            "SELECT photo_id, sku FROM catalog_images WHERE origin = 'confirmed' "
            "AND photo_id IS NOT NULL"
        )
    }
    supplier = (
        "SELECT p.id FROM photos p JOIN catalog_images c ON c.sha256 = p.sha256 "
        "AND c.origin = 'catalog'"
    )
    for (photo_id,) in lib.db.execute(supplier):
        if have.get(int(photo_id)) != want.get(int(photo_id)):  # sync_photo adds none
            want.pop(int(photo_id), None)
    # One reference per path (a camera that restarts its counter saves IMG_0001.jpg over
    # last week's): the newest confirmed photo of a path is the one remembered.
    newest: dict[str, int] = {}
    for photo_id, path in lib.db.execute("SELECT id, path FROM photos ORDER BY id"):
        if int(photo_id) in want:
            older = newest.get(str(path))
            if older is not None:
                want.pop(older)
            newest[str(path)] = int(photo_id)
    return sorted(p for p in set(want) | set(have) if want.get(p) != have.get(p))


def catch_up(lib: Library, todo: list[int] | None = None) -> tuple[int, list[int]]:
    """Bring instant memory in step with the decisions (after an upgrade, ``check
    --repair``); ``todo``: :func:`out_of_step`, when the caller has it already. Returns how
    many photos it changed and those still out of step (their file and thumbnail are both
    gone)."""
    todo = out_of_step(lib) if todo is None else todo
    if not todo:
        return 0, []
    for photo_id in todo:
        sync_photo(lib, photo_id)
    lib.flush()
    left = out_of_step(lib)
    return len(todo) - len(set(left) & set(todo)), left


# Photos and supplier pictures sampled for the offset: enough for a steady median, read in
# milliseconds (the vectors come from SQLite).
OFFSET_PHOTOS = 300
OFFSET_PICTURES = 1000
MIN_OFFSET_PHOTOS = 10  # fewer: no estimate, no offset
MAX_OFFSET = 0.3


def photo_offset(lib: Library) -> float:
    """How much more alike the shop's photos are to each other than to supplier pictures,
    for the model in use: taken off a remembered photo's similarity before it competes with
    supplier pictures.

    Why: photos taken in one shop share its shelves, light, hands and camera, so a confirmed
    photo of one product resembles the shop's photos of every other product more than their
    own supplier pictures do. Early in a delivery, with few products remembered, the first
    product confirmed came up first, at 88-98%, for a dozen other photos of the demo. The
    offset is the gap between the 90th percentiles of the similarities between photos and
    of those between photos and supplier pictures: a product's best image wins from the top
    of the distribution, where the gap is wider than at the median (0.10 there, 0.16 at the
    90th percentile, for the ImageNet model on the demo and on grocery alike). Measured on
    the library's own photos, so a fine-tuned model, which brings the two closer, gets its
    own. Kept until the library's photos grow by a quarter (by their newest id)."""
    version = lib.model_version
    # The newest photo id: read in microseconds, as every match asks (counting vectors took
    # 8 ms on a 40,000-photo library).
    newest = int(lib.db.execute("SELECT coalesce(max(id), 0) FROM photos").fetchone()[0])
    cached = lib.photo_offset_cache
    if cached is not None and cached[0] == version and newest < cached[1] * 1.25 + 1:
        return cached[2]
    offset = 0.0
    ids = [
        int(r[0])
        for r in lib.db.execute(
            "SELECT photo_id FROM photo_embeddings WHERE model_version = ? ORDER BY photo_id",
            [version],
        )
    ]
    if len(ids) >= MIN_OFFSET_PHOTOS:
        step = max(1, len(ids) // OFFSET_PHOTOS)  # spread over the library's life
        photos = _vectors(
            lib,
            "SELECT vector FROM photo_embeddings WHERE model_version = ? AND photo_id IN ({marks})",
            ids[::step][:OFFSET_PHOTOS],
            version,
        )
        pictures = _vectors(
            lib,
            "SELECT e.vector FROM embeddings e JOIN catalog_images c ON c.id = e.image_id "
            "WHERE e.model_version = ? AND c.origin = 'catalog' AND c.id IN ({marks})",
            [
                int(r[0])
                for r in lib.db.execute(
                    "SELECT id FROM catalog_images WHERE origin = 'catalog' ORDER BY id LIMIT ?",
                    [OFFSET_PICTURES],
                )
            ],
            version,
        )
        if len(photos) >= MIN_OFFSET_PHOTOS and len(pictures):
            among = photos @ photos.T
            apart = among[~np.eye(len(photos), dtype=bool)]
            gap = float(np.percentile(apart, 90) - np.percentile(photos @ pictures.T, 90))
            offset = min(max(gap, 0.0), MAX_OFFSET)
    lib.photo_offset_cache = (version, newest, offset)
    return offset


def photographed_offsets(lib: Library, skus: Collection[str]) -> dict[str, float]:
    """The offset each of ``skus`` competes with: :func:`photo_offset` for a product with
    remembered photos, none for one the shop has not photographed yet (left out).

    Per product, not per image: a remembered photo is as alike to the shop's other photos as
    they are to each other, so it is lowered against products only their supplier's picture
    shows; a product with remembered photos of its own competes at that level too, its
    supplier picture included. So once every product is remembered, all move alike and
    nothing changes (grocery with 2,640 photos remembered: the same top-1 as without)."""
    if not skus:
        return {}
    have = {
        str(r[0])
        for r in select_in(
            lib.db,
            "SELECT DISTINCT sku FROM catalog_images WHERE origin = 'confirmed' "
            "AND sku IN ({marks})",
            sorted(skus),
        )
    }
    if not have:
        return {}
    offset = photo_offset(lib)
    return {sku: offset for sku in have} if offset else {}


def _vectors(lib: Library, sql: str, ids: Sequence[int], version: str) -> np.ndarray:
    rows = [np.frombuffer(r[0], np.float32) for r in select_in(lib.db, sql, ids, prefix=[version])]
    return np.stack(rows) if rows else np.zeros((0, 0), np.float32)


def reference_mark(lib: Library) -> int:
    """The newest reference image id: references added later have larger ids (AUTOINCREMENT),
    so :func:`waiting_to_search_again` can tell what changed since."""
    return int(lib.db.execute("SELECT coalesce(max(id), 0) FROM catalog_images").fetchone()[0])


def waiting_to_search_again(
    lib: Library, photo_ids: Sequence[int], since: int, limit: int = 0
) -> list[int]:
    """Of the undecided photos ``photo_ids`` (in the order staff will see them), those whose
    stored suggestions instant memory has outdated since reference ``since``: a reference
    added since is more alike than anything they were offered, or than the picture of their
    first suggestion's product when it is of that product (its score rises); or a suggestion
    rests on a reference gone (undone). ``limit``: at most so many (0: all).

    Why: a delivery is matched in one go, then reviewed photo by photo. Without this, the
    photos waiting kept the suggestions of the moment they were matched, so confirming the
    first photo of a product did nothing for the next ones of it on the list (grocery, 296
    photos reviewed in file order: top-1 0.43 as matched, 0.70 when each photo is matched
    just before it is shown). Only the photos the new reference would lift are searched again,
    found with one vector product, so a decision costs a few searches, not one per photo."""
    version = lib.model_version
    wanted = [int(p) for p in photo_ids]
    if not wanted:
        return []
    stale: set[int] = set()
    # Per photo: its first suggestion's SKU and similarity, and the best similarity of all
    # (local features may rank a product with a lower similarity first).
    first: dict[int, tuple[str, float]] = {}
    best: dict[int, float] = {}
    for photo_id, rank, sku, sim, image_id, image_there in select_in(
        lib.db,
        "SELECT s.photo_id, s.rank, s.sku, s.similarity, s.image_id, c.id FROM suggestions s "
        "LEFT JOIN catalog_images c ON c.id = s.image_id "
        "WHERE s.model_version = ? AND s.photo_id IN ({marks})",
        wanted,
        prefix=[version],
    ):
        pid = int(photo_id)
        if image_id is not None and image_there is None:
            stale.add(pid)
        if rank == 1:
            first[pid] = (str(sku), float(sim))
        best[pid] = max(best.get(pid, float(sim)), float(sim))
    added = lib.db.execute(
        "SELECT c.sku, e.vector FROM catalog_images c JOIN embeddings e "
        "ON e.image_id = c.id AND e.model_version = ? WHERE c.id > ?",
        [version, since],
    ).fetchall()
    lifted: set[int] = set()
    if added:
        refs = np.stack([np.frombuffer(v, np.float32) for _s, v in added])
        skus = [str(s) for s, _v in added]
        # A photographed product competes with its offset taken off, as in matching.
        offsets = photographed_offsets(lib, set(skus))
        lowered = np.array([offsets.get(sku, 0.0) for sku in skus])
        rows = list(
            select_in(
                lib.db,
                "SELECT photo_id, vector FROM photo_embeddings "
                "WHERE model_version = ? AND photo_id IN ({marks})",
                [p for p in wanted if p in first and p not in stale],
                prefix=[version],
            )
        )
        if rows:
            sims = np.stack([np.frombuffer(v, np.float32) for _p, v in rows]) @ refs.T - lowered
            for (photo_id, _v), row in zip(rows, sims, strict=True):
                pid = int(photo_id)
                top_sku, top_sim = first[pid]
                for sku, x in zip(skus, row.tolist(), strict=True):
                    # More alike than anything suggested: it may come first. Or alike the
                    # first suggestion's product more than its picture: its score rises.
                    if x > best[pid] or (sku == top_sku and x > top_sim):
                        lifted.add(pid)
    out = [p for p in wanted if p in stale or p in lifted]
    return out[:limit] if limit else out
