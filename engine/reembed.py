"""Embed reference images with a model version that has not seen them yet.

Used when a model is activated (and by training, to embed with a candidate model). Originals
live in the supplier's folders and may have moved; the library's own 256-px thumbnail is then
used instead, which is enough for a 224-px encoder.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from engine.db import transaction
from engine.progress import CancelToken, ProgressCallback, ProgressReporter
from engine.thumbnails import thumbnail_path

if TYPE_CHECKING:
    from engine.library import Library

log = logging.getLogger(__name__)


def embed_missing(
    lib: Library,
    version: str,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[tuple[int, str]]:
    """Store ``version`` embeddings for every reference image lacking one, batch by batch.

    Returns (image id, reason) for images that could not be embedded; they stay out of that
    model's index. Committed per batch, so a cancelled run resumes where it stopped.
    """
    rows = lib.db.execute(
        "SELECT id, path, sha256 FROM catalog_images WHERE id NOT IN "
        "(SELECT image_id FROM embeddings WHERE model_version = ?) ORDER BY id",
        [version],
    ).fetchall()
    sources: dict[Path, int] = {}
    failed: list[tuple[int, str]] = []
    for image_id, path, sha in rows:
        original, thumb = Path(path), thumbnail_path(lib.thumbs_dir, sha)
        source = original if original.is_file() else thumb if thumb.is_file() else None
        if source is None:
            failed.append((image_id, "original and thumbnail both missing"))
        else:
            sources[source] = image_id
    reporter = ProgressReporter("Embedding with the new model", len(sources), progress, cancel)
    encoder = lib.encoder_for(version)
    for ok, emb, bad in encoder.iter_encode_paths(list(sources)):
        with transaction(lib.db):
            for path, vec in zip(ok, emb, strict=True):
                lib.db["embeddings"].upsert(
                    {
                        "image_id": sources[path],
                        "model_version": version,
                        "vector": vec.astype("<f4").tobytes(),
                    },
                    pk=("image_id", "model_version"),
                )
        failed.extend((sources[p], err.reason) for p, err in bad)
        reporter.step(len(ok) + len(bad))
    for image_id, reason in failed:
        log.warning("reference image %s not embedded with %s: %s", image_id, version, reason)
    return failed
