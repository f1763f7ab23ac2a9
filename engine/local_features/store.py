"""Keypoints and descriptors of reference images, stored in the library's SQLite catalog.

SQLite is the truth, as for embeddings: the descriptor index is rebuilt from these rows, never
from the images. Each extraction is a new row with a fresh AUTOINCREMENT id (the *feature-set
id*): index keys are derived from it, so a changed image (same catalog image id, new content)
can never be confused with its old keypoints. A CRC over the blobs catches damaged rows, which
are dropped (and re-extracted by the next sync) instead of failing a query.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import sqlite_utils

from engine.db import utcnow
from engine.local_features.extract import DESC_DIM, EXTRACTOR_VERSION, LocalFeatures

log = logging.getLogger(__name__)


class CorruptFeatures(ValueError):
    """A stored row whose blobs do not decode to what its header promises."""


@dataclass(frozen=True)
class StoredFeatures:
    fid: int  # feature-set id: never reused, part of every descriptor index key
    image_id: int
    features: LocalFeatures


def _crc(points: bytes, descriptors: bytes) -> int:
    return zlib.crc32(descriptors, zlib.crc32(points))


def save(
    db: sqlite_utils.Database,
    image_id: int,
    sha256: str,
    feats: LocalFeatures,
    error: str | None = None,
) -> int:
    """Replace the image's features (call inside a transaction); returns the new feature id."""
    geometry = np.concatenate([feats.points, feats.frames], axis=1) if len(feats) else []
    points = np.ascontiguousarray(geometry, dtype="<f4").reshape(-1, 4).tobytes()
    descriptors = np.ascontiguousarray(feats.descriptors, dtype=np.uint8).tobytes()
    db.execute("DELETE FROM local_features WHERE image_id = ?", [image_id])
    cur = db.execute(
        "INSERT INTO local_features (image_id, sha256, version, n, width, height, points, "
        "descriptors, crc, error, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            image_id,
            sha256,
            EXTRACTOR_VERSION,
            len(feats),
            int(feats.size[0]),
            int(feats.size[1]),
            points,
            descriptors,
            _crc(points, descriptors),
            error,
            utcnow(),
        ],
    )
    return int(cur.lastrowid or 0)


def decode(
    n: int, width: int, height: int, points: bytes, descriptors: bytes, crc: int
) -> LocalFeatures:
    """Blobs back to arrays, refusing anything whose size or checksum does not add up."""
    if not isinstance(points, bytes | memoryview) or not isinstance(
        descriptors, bytes | memoryview
    ):
        raise CorruptFeatures("keypoint data missing")
    points, descriptors = bytes(points), bytes(descriptors)
    if n < 0 or len(points) != n * 16 or len(descriptors) != n * DESC_DIM:
        raise CorruptFeatures(
            f"blob sizes do not match {n} keypoints ({len(points)} + {len(descriptors)} bytes)"
        )
    if _crc(points, descriptors) != crc:
        raise CorruptFeatures("checksum mismatch")
    geometry = np.frombuffer(points, dtype="<f4").reshape(n, 4).astype(np.float32)
    desc = np.frombuffer(descriptors, dtype=np.uint8).reshape(n, DESC_DIM)
    if not np.isfinite(geometry).all():
        raise CorruptFeatures("keypoint coordinates are not finite")
    return LocalFeatures(
        np.ascontiguousarray(geometry[:, :2]),
        np.ascontiguousarray(geometry[:, 2:]),
        desc,
        (int(width), int(height)),
    )


def load(db: sqlite_utils.Database, image_ids: Iterable[int]) -> dict[int, StoredFeatures]:
    """Current-version features of these images. Damaged rows are logged, deleted (so the next
    sync extracts them again) and left out; images without features are simply absent."""
    ids = sorted({int(i) for i in image_ids})
    out: dict[int, StoredFeatures] = {}
    bad: list[int] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = db.execute(
            "SELECT id, image_id, n, width, height, points, descriptors, crc FROM local_features "
            f"WHERE version = ? AND error IS NULL AND image_id IN ({marks})",
            [EXTRACTOR_VERSION, *chunk],
        ).fetchall()
        for fid, image_id, n, width, height, points, descriptors, crc in rows:
            try:
                feats = decode(n, width, height, points, descriptors, crc)
            except (CorruptFeatures, TypeError, ValueError) as exc:
                log.warning(
                    "local features of catalog image %s are damaged (%s); skipped for now and "
                    "re-extracted by the next sync",
                    image_id,
                    exc,
                )
                bad.append(int(fid))
                continue
            out[int(image_id)] = StoredFeatures(int(fid), int(image_id), feats)
    if bad:
        db.conn.executemany("DELETE FROM local_features WHERE id = ?", [(b,) for b in bad])
    return out


def pending(
    db: sqlite_utils.Database, retry_failed: bool
) -> list[tuple[int, str, str, int, float]]:
    """(image id, path, sha256, size, mtime) of supplier images lacking current features
    (size and mtime as imported: an unchanged original is read without hashing it again).

    Confirmed shop photos get none on purpose: their background (the same table, the same
    shelf) would verify against the next photo taken there, whatever the product.
    """
    failed = "OR lf.error IS NOT NULL" if retry_failed else ""
    return [
        (int(r[0]), str(r[1]), str(r[2]), int(r[3]), float(r[4]))
        for r in db.execute(
            "SELECT ci.id, ci.path, ci.sha256, ci.size, ci.mtime FROM catalog_images ci "
            "LEFT JOIN local_features lf ON lf.image_id = ci.id "
            "WHERE ci.origin = 'catalog' AND (lf.id IS NULL OR lf.version != ? "
            f"OR lf.sha256 != ci.sha256 {failed}) ORDER BY ci.id",
            [EXTRACTOR_VERSION],
        ).fetchall()
    ]


def indexable(db: sqlite_utils.Database) -> dict[int, tuple[int, int]]:
    """feature id -> (image id, keypoints) for every row that belongs in the index."""
    return {
        int(r[0]): (int(r[1]), int(r[2]))
        for r in db.execute(
            "SELECT lf.id, lf.image_id, lf.n FROM local_features lf "
            "JOIN catalog_images ci ON ci.id = lf.image_id "
            "WHERE lf.version = ? AND lf.error IS NULL AND lf.n > 0 "
            "AND lf.sha256 = ci.sha256 AND ci.origin = 'catalog'",
            [EXTRACTOR_VERSION],
        ).fetchall()
    }


def fingerprint(db: sqlite_utils.Database) -> tuple[int, int]:
    """(count, sum of ids) of indexable rows: ids only grow, so any change alters it. One cheap
    query per match call tells whether the in-memory index still agrees with the database."""
    row = db.execute(
        "SELECT count(*), total(lf.id) FROM local_features lf "
        "JOIN catalog_images ci ON ci.id = lf.image_id "
        "WHERE lf.version = ? AND lf.error IS NULL AND lf.n > 0 "
        "AND lf.sha256 = ci.sha256 AND ci.origin = 'catalog'",
        [EXTRACTOR_VERSION],
    ).fetchone()
    return int(row[0]), int(row[1])


def features_of(db: sqlite_utils.Database, fids: Iterable[int]) -> dict[int, LocalFeatures]:
    """feature id -> features, for (re)filling the index; damaged rows are dropped."""
    ids = sorted({int(i) for i in fids})
    out: dict[int, LocalFeatures] = {}
    bad: list[int] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for fid, n, width, height, points, descriptors, crc in db.execute(
            "SELECT id, n, width, height, points, descriptors, crc FROM local_features "
            f"WHERE id IN ({marks})",
            chunk,
        ).fetchall():
            try:
                out[int(fid)] = decode(n, width, height, points, descriptors, crc)
            except (CorruptFeatures, TypeError, ValueError) as exc:
                log.warning(
                    "stored local features %s are damaged (%s); dropped, the next sync "
                    "extracts them again",
                    fid,
                    exc,
                )
                bad.append(int(fid))
    if bad:
        db.conn.executemany("DELETE FROM local_features WHERE id = ?", [(b,) for b in bad])
    return out
