"""Local-feature retrieval with geometric verification, for packaged and printed goods.

Global embeddings confuse products that differ only in printed text or a small logo. This
stage stores RootSIFT keypoints of every supplier image (``store``), indexes their descriptors
in usearch (``desc_index``), lets a photo's keypoints vote for catalog images, verifies the
best-voted images and the global shortlist with RANSAC (``verify``) and re-ranks products by
global similarity plus verified inliers (``rerank``). Textureless goods verify nothing and keep
the global ranking. On by default; the library setting ``local_features`` turns it off.

Public entry points: :func:`enabled`, :func:`set_enabled`, :func:`sync` (after an import;
:func:`backlog` says how much it has to do),
:func:`prepare` + :func:`rerank_photo` (the matcher's hook) and :func:`explain` (matched
keypoints for the desktop app to draw).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from engine.images import ImageLoadError
from engine.index import stopped
from engine.local_features import store
from engine.local_features.catalog_sync import STAGE as SYNC_STAGE
from engine.local_features.catalog_sync import SyncReport, descriptor_index, flush, sync
from engine.local_features.desc_index import DescriptorIndex
from engine.local_features.extract import LocalFeatures, extract_photo
from engine.local_features.rerank import rerank as rerank_suggestions
from engine.local_features.verify import verify_many

if TYPE_CHECKING:
    from engine.library import Library
    from engine.matching import Suggestion

__all__ = [
    "SYNC_STAGE",
    "DescriptorIndex",
    "KeypointMatches",
    "LocalFeatures",
    "SyncReport",
    "backlog",
    "descriptor_index",
    "enabled",
    "explain",
    "flush",
    "photo_features",
    "prepare",
    "rerank_photo",
    "set_enabled",
    "sync",
]

log = logging.getLogger(__name__)

SETTING = "local_features"
# Reference images extracted on the fly by a match call (e.g. a library whose features were
# never synced); bigger backlogs belong to an explicit sync with a progress bar.
LAZY_SYNC_LIMIT = 8


def enabled(lib: Library) -> bool:
    return lib.setting(SETTING, "1") == "1"


def set_enabled(lib: Library, on: bool) -> None:
    """Turn the stage on or off. Turning it on does not extract anything by itself: run
    ``sync`` (``Library.sync_local_features``) to cover an existing catalog."""
    lib.set_setting(SETTING, "1" if on else "0")


def backlog(lib: Library) -> int:
    """Supplier images ``sync`` would extract now (failed ones retried), for progress plans."""
    return len(store.pending(lib.db, retry_failed=True))


def prepare(lib: Library) -> DescriptorIndex | None:
    """Called once per match call: extract a small backlog, return the current index.

    Never raises: a broken stage must not stop photos from matching (logged, global only).
    """
    try:
        pending = store.pending(lib.db, retry_failed=False)
        if pending:
            if len(pending) > LAZY_SYNC_LIMIT:
                log.warning(
                    "%d catalog images have no local features yet; extracting %d now. "
                    "Run 'shopmatch check --repair' (in the app: File > Check and Repair "
                    "Library) to extract them all.",
                    len(pending),
                    LAZY_SYNC_LIMIT,
                )
            sync(lib, retry_failed=False, limit=LAZY_SYNC_LIMIT)
        return descriptor_index(lib)
    except Exception as exc:
        if stopped(exc):
            raise KeyboardInterrupt from exc
        log.exception("local-feature stage unavailable; using the global ranking only")
        return None


def photo_features(img: Image.Image) -> LocalFeatures:
    """Keypoints of a decoded photo (the decode the encoder already did)."""
    return extract_photo(img)


def rerank_photo(
    lib: Library,
    index: DescriptorIndex | None,
    photo: LocalFeatures | None,
    vector: np.ndarray,
    suggestions: Sequence[Suggestion],
    top_k: int,
    allowed: Callable[[str], bool],
    exclude: frozenset[int] = frozenset(),
) -> list[Suggestion]:
    """Re-ranked suggestions, or the global ones (cut to ``top_k``) if the stage fails;
    ``exclude``: image ids left out (see ``rerank``)."""
    if index is None or photo is None:
        return list(suggestions[:top_k])
    try:
        return rerank_suggestions(lib, index, photo, vector, suggestions, top_k, allowed, exclude)
    except Exception as exc:
        # A Ctrl-C during the search (see ``stopped``): caught as a failed re-ranking, it
        # was logged and matching went on for minutes.
        if stopped(exc):
            raise KeyboardInterrupt from exc
        log.exception("local-feature re-ranking failed for one photo; global ranking kept")
        return list(suggestions[:top_k])


@dataclass(frozen=True)
class KeypointMatches:
    """Verified matching points between a photo and one catalog image, for drawing.

    Points are fractions (0-1) of each image's upright width and height, so they can be drawn
    over a thumbnail or the full image alike; row i of both arrays is one matched pair.
    """

    image_id: int
    inliers: int
    model: str  # "homography", "affine" or "" when nothing verified
    photo_points: np.ndarray
    catalog_points: np.ndarray


def explain(lib: Library, photo_path: Path, image_id: int) -> KeypointMatches:
    """Match a photo against one catalog image again and return the inlier pairs."""
    empty = KeypointMatches(image_id, 0, "", np.zeros((0, 2)), np.zeros((0, 2)))
    stored = store.load(lib.db, [image_id]).get(image_id)
    if stored is None or len(stored.features) == 0:
        return empty
    try:
        photo = extract_photo(lib.encoder.load(Path(photo_path)))
    except ImageLoadError as exc:
        log.warning("cannot show matching points for %s: %s", photo_path, exc.reason)
        return empty
    (v,) = verify_many(photo, photo.root(), [stored.features])
    if not v.inliers:
        return empty
    return KeypointMatches(
        image_id,
        v.inliers,
        v.model,
        photo.normalised()[v.pairs[:, 0]],
        stored.features.normalised()[v.pairs[:, 1]],
    )
