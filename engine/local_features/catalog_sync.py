"""Keep stored local features and the descriptor index in step with the catalog.

Driven by what is in the database, not by what an import run did: any supplier image without
current features (new, changed content, older extractor version, a run killed half-way) is
extracted; rows of removed images are gone by ON DELETE CASCADE; the index is then reconciled
with the rows. So re-import, removal and interrupted runs all converge on the same state.
"""

from __future__ import annotations

import itertools
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from engine.db import transaction
from engine.images import ImageLoadError, load_image
from engine.local_features import store
from engine.local_features.desc_index import DescriptorIndex
from engine.local_features.extract import (
    CATALOG_SIDE,
    EXTRACTOR_VERSION,
    LocalFeatures,
    extract_catalog,
)
from engine.progress import Cancelled, CancelToken, ProgressCallback, ProgressReporter
from engine.thumbnails import readable_source

if TYPE_CHECKING:
    from engine.library import Library

log = logging.getLogger(__name__)

BATCH = 16
STAGE = "Finding keypoints"
# Tombstones in the HNSW graph slow search and waste memory; past this share, rebuild.
REBUILD_FRACTION = 0.25


@dataclass
class SyncReport:
    extracted: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)  # (image id, reason)
    cancelled: bool = False


def index_path(lib: Library) -> Path:
    return lib.path / "index" / f"local-{EXTRACTOR_VERSION}.usearch"


def descriptor_index(lib: Library) -> DescriptorIndex:
    """The library's descriptor index, loaded once and reconciled with the database whenever
    its rows changed (one cheap fingerprint query when they did not)."""
    idx: DescriptorIndex | None = getattr(lib, "_local_index", None)
    fp = store.fingerprint(lib.db)
    if idx is not None and idx.fingerprint == fp:
        return idx
    if idx is None:
        idx = DescriptorIndex.load(index_path(lib))
        if idx is None and index_path(lib).exists():
            log.info("descriptor index file is stale or damaged; rebuilding from the database")
    idx = reconcile(lib, idx or DescriptorIndex())
    lib._local_index = idx
    return idx


def reconcile(lib: Library, idx: DescriptorIndex) -> DescriptorIndex:
    """Make ``idx`` hold exactly the indexable rows; rebuild when removals would pile up."""
    want = store.indexable(lib.db)
    stale = [f for f, (img, _) in idx.members.items() if want.get(f, (None,))[0] != img]
    stale_vectors = sum(idx.members[f][1] for f in stale)
    if stale and idx.removed + stale_vectors > max(10_000, REBUILD_FRACTION * len(idx)):
        idx = DescriptorIndex()
        stale = []
    for fid in stale:
        idx.remove(fid)
    missing = [f for f in want if f not in idx.members]
    for start in range(0, len(missing), 256):
        chunk = missing[start : start + 256]
        for fid, feats in store.features_of(lib.db, chunk).items():
            idx.add(fid, want[fid][0], feats)
    idx.fingerprint = store.fingerprint(lib.db)  # after damaged rows were dropped
    return idx


def flush(lib: Library) -> None:
    """Persist in-memory index changes (called when the library is flushed or closed)."""
    idx: DescriptorIndex | None = getattr(lib, "_local_index", None)
    if idx is not None and idx.dirty:
        idx.save(index_path(lib))


def _extract(source: Path | None) -> LocalFeatures | str:
    if source is None:
        return "original and thumbnail both missing"
    try:
        # draft-decode to at least the working size; SIFT never needs more
        return extract_catalog(load_image(source, min_side=CATALOG_SIDE * 3 // 4))
    except ImageLoadError as exc:
        return exc.reason


def sync(
    lib: Library,
    *,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    retry_failed: bool = True,
    limit: int | None = None,
) -> SyncReport:
    """Extract features for supplier images lacking them (at most ``limit``), committing
    batch by batch, then reconcile and save the descriptor index."""
    todo = store.pending(lib.db, retry_failed)
    if limit is not None:
        todo = todo[:limit]
    report = SyncReport()
    idx = descriptor_index(lib)
    reporter = ProgressReporter(STAGE, len(todo), progress, cancel)
    thumbs = lib.thumbs_dir
    try:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="keypoints") as pool:
            it = iter(todo)
            while batch := list(itertools.islice(it, BATCH)):
                results = list(pool.map(lambda t: _extract(readable_source(thumbs, *t[1:])), batch))
                added: list[tuple[int, int, LocalFeatures]] = []
                with transaction(lib.db):
                    for (image_id, _path, sha, _size, _mtime), res in zip(
                        batch, results, strict=True
                    ):
                        if isinstance(res, str):
                            store.save(lib.db, image_id, sha, LocalFeatures.empty(), error=res)
                            report.failed.append((image_id, res))
                            continue
                        added.append((store.save(lib.db, image_id, sha, res), image_id, res))
                for fid, image_id, feats in added:
                    if len(feats):
                        idx.add(fid, image_id, feats)
                report.extracted += len(added)
                reporter.step(len(batch))
    except Cancelled:
        report.cancelled = True
    finally:
        for image_id, reason in report.failed:
            log.warning("no local features for catalog image %s: %s", image_id, reason)
        idx = reconcile(lib, idx)
        lib._local_index = idx
        if idx.dirty:
            idx.save(index_path(lib))
    return report
