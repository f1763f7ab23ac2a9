"""Embed reference images with a model version that has not seen them yet.

Used when a model is activated, and by the gate to embed with a candidate model. Originals
live in the supplier's folders and may have moved; the library's own 256-px thumbnail is then
used instead, which is enough for a 224-px encoder.

On a big library this is minutes of encoder time, so it comes in three parts that let a
caller keep the library free meanwhile: :func:`plan` reads what is missing (the library,
fast), :meth:`EmbedPlan.encode` runs the encoder on any thread (no library), and :func:`store`
writes the vectors back (the library, fast), skipping images removed or changed meanwhile.
:func:`embed_missing` chains them on one thread, committing batch by batch.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.db import transaction
from engine.progress import Cancelled, CancelToken, ProgressCallback, ProgressReporter
from engine.thumbnails import readable_source
from engine.training.options import STAGE_EMBED

if TYPE_CHECKING:
    from engine.encoder import Encoder
    from engine.library import Library

log = logging.getLogger(__name__)
STAGE = STAGE_EMBED


@dataclass(frozen=True)
class Ref:
    """A reference image to embed: its row id, the content hash it had when planned, and the
    file to read (original or thumbnail)."""

    image_id: int
    sha256: str
    source: Path


@dataclass
class Embedded:
    """Vectors computed from a plan (on any thread), waiting for :func:`store`."""

    version: str
    refs: list[Ref] = field(default_factory=list)
    vectors: list[np.ndarray] = field(default_factory=list)
    failed: list[tuple[int, str]] = field(default_factory=list)
    complete: bool = True  # False: cancelled part-way (what was done is still worth storing)


@dataclass
class EmbedPlan:
    """The reference images a model version lacks, read out of the library."""

    version: str
    refs: list[Ref]
    failed: list[tuple[int, str]]  # neither original nor thumbnail exists

    def encode(
        self,
        encoder: Encoder,
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        partial_on_cancel: bool = False,
    ) -> Embedded:
        """Run ``encoder`` over the plan; touches no library, so any thread may call it.
        With ``partial_on_cancel`` a cancel returns what was done, marked incomplete, instead
        of raising, so the caller can still store it and a later plan starts after it."""
        out = Embedded(self.version, failed=list(self.failed))
        try:
            for batch in _encode(self.version, encoder, self.refs, progress, cancel):
                out.refs.extend(batch.refs)
                out.vectors.extend(batch.vectors)
                out.failed.extend(batch.failed)
        except Cancelled:
            if not partial_on_cancel:
                raise
            out.complete = False
        return out


def plan(lib: Library, version: str, skip: Collection[int] = ()) -> EmbedPlan:
    """Every reference image without a ``version`` embedding (all of them for a model not
    installed yet) and not in ``skip``, with the file to read for each."""
    rows = lib.db.execute(
        "SELECT id, path, sha256, size, mtime FROM catalog_images WHERE id NOT IN "
        "(SELECT image_id FROM embeddings WHERE model_version = ?) ORDER BY id",
        [version],
    ).fetchall()
    refs: list[Ref] = []
    failed: list[tuple[int, str]] = []
    for image_id, path, sha, size, mtime in rows:
        if image_id in skip:
            continue
        source = readable_source(lib.thumbs_dir, path, sha, size, mtime)
        if source is None:
            failed.append((image_id, "original and thumbnail both missing"))
        else:
            refs.append(Ref(int(image_id), str(sha), source))
    return EmbedPlan(version, refs, failed)


def store(lib: Library, embedded: Embedded) -> int:
    """Write the vectors of images that still exist unchanged; returns how many were stored.
    An image removed (an undone confirmation) or re-imported with new content since the plan
    was read is skipped: its next :func:`plan` picks it up again if it still needs one."""
    stored = 0
    with transaction(lib.db):
        for ref, vec in zip(embedded.refs, embedded.vectors, strict=True):
            same = lib.db.execute(
                "SELECT 1 FROM catalog_images WHERE id = ? AND sha256 = ?",
                [ref.image_id, ref.sha256],
            ).fetchone()
            if same is None:
                continue
            lib.db["embeddings"].upsert(
                {
                    "image_id": ref.image_id,
                    "model_version": embedded.version,
                    "vector": np.asarray(vec, dtype="<f4").tobytes(),
                },
                pk=("image_id", "model_version"),
            )
            stored += 1
    for image_id, reason in embedded.failed:
        log.warning(
            "reference image %s not embedded with %s: %s", image_id, embedded.version, reason
        )
    return stored


def embed_missing(
    lib: Library,
    version: str,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    skip: Collection[int] = (),
) -> list[tuple[int, str]]:
    """Store ``version`` embeddings for every reference image lacking one (except ``skip``:
    known to fail already), batch by batch.

    Returns (image id, reason) for images that could not be embedded; they stay out of that
    model's index. Committed per batch, so a cancelled run resumes where it stopped.
    """
    todo = plan(lib, version, skip)
    failed = list(todo.failed)
    for batch in _encode(version, lib.encoder_for(version), todo.refs, progress, cancel):
        store(lib, batch)
        failed.extend(batch.failed)
    for image_id, reason in todo.failed:
        log.warning("reference image %s not embedded with %s: %s", image_id, version, reason)
    return failed


def _encode(
    version: str,
    encoder: Encoder,
    refs: list[Ref],
    progress: ProgressCallback | None,
    cancel: CancelToken | None,
) -> Iterator[Embedded]:
    """One :class:`Embedded` per encoder batch (cancellation is checked between batches)."""
    by_source = {r.source: r for r in refs}
    reporter = ProgressReporter(STAGE, len(by_source), progress, cancel)
    for ok, emb, bad in encoder.iter_encode_paths(list(by_source)):
        yield Embedded(
            version,
            refs=[by_source[p] for p in ok],
            vectors=list(emb),
            failed=[(by_source[p].image_id, err.reason) for p, err in bad],
        )
        reporter.step(len(ok) + len(bad))
