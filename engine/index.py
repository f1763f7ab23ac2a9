"""The persisted usearch vector index over catalog-image embeddings.

Keys are our own catalog image ids (uint64): usearch's automatic keys collide after removals.
The index is a derived file: a sidecar JSON records which model and which key set it holds,
so a stale or half-written index is detected on open and rebuilt from the embeddings stored in
SQLite, never trusted. Removals rebuild instead of piling up tombstones.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from usearch.index import Index, MetricKind

from engine.atomic import atomic_path, atomic_write_text

# Up to this many vectors a numpy scan (one matrix product) is about as fast as the HNSW graph
# and exact (bench/bench_search.py: numpy 2.1 ms vs HNSW 2.0 ms p50 at 10k, 1280-d), so the
# graph is only searched beyond it. Filtered searches always scan the allowed subset exactly.
EXACT_SEARCH_LIMIT = 10_000
NO_KEY = np.iinfo(np.uint64).max


def stopped(exc: BaseException) -> bool:
    """Whether ``exc`` is usearch's end of a search or an add cut short: it checks for
    signals while it works, and a Ctrl-C there surfaces as RuntimeError("Operation has been
    terminated"), the KeyboardInterrupt itself swallowed (said as an error, or, where an
    optional stage catches errors, logged while the work went on)."""
    return isinstance(exc, RuntimeError) and "has been terminated" in str(exc)


def key_digest(keys: np.ndarray) -> str:
    """Order-independent fingerprint of a key set, to tell whether an index file is current."""
    ordered = np.sort(np.asarray(keys, dtype=np.uint64))
    return hashlib.sha256(ordered.tobytes()).hexdigest()


def file_crc32(path: Path, chunk: int = 1 << 22) -> int:
    """CRC-32 of a file, streamed. usearch loads a bit-flipped index without complaint (and
    may then crash in a search), so the bytes are checked before usearch ever sees them;
    CRC-32 runs at over 1 GB/s, against about 0.6 GB/s for SHA-256."""
    crc = 0
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            crc = zlib.crc32(block, crc)
    return crc


@dataclass(frozen=True)
class IndexInfo:
    model_version: str
    dim: int
    count: int
    digest: str
    size: int = -1  # bytes of the index file; -1 in sidecars written before it was recorded
    crc32: int = -1

    @classmethod
    def read(cls, path: Path) -> IndexInfo | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                str(data["model_version"]),
                int(data["dim"]),
                int(data["count"]),
                str(data["digest"]),
                int(data.get("size", -1)),
                int(data.get("crc32", -1)),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None

    @property
    def unverifiable(self) -> bool:
        """Written before sidecars recorded the file's size and checksum (328150e and older):
        its bytes cannot be told from damaged ones, so it is rebuilt, not read."""
        return self.size < 0

    def matches_file(self, path: Path) -> bool:
        """Whether ``path`` holds exactly the bytes this sidecar describes (size, then CRC)."""
        try:
            if self.size < 0 or path.stat().st_size != self.size:
                return False
            return file_crc32(path) == self.crc32
        except OSError:
            return False


class VectorIndex:
    """Cosine index with exact search for small catalogs and HNSW beyond."""

    def __init__(self, dim: int, model_version: str, index: Index | None = None) -> None:
        self.dim = dim
        self.model_version = model_version
        self.index = index if index is not None else self._new(dim)
        self._matrix: tuple[np.ndarray, np.ndarray] | None = None  # (keys, vectors) for scans

    @staticmethod
    def _new(dim: int) -> Index:
        return Index(
            ndim=dim,
            metric=MetricKind.Cos,
            dtype="f32",
            connectivity=16,
            expansion_add=64,
            expansion_search=64,
        )

    @classmethod
    def build(cls, keys: np.ndarray, vectors: np.ndarray, model_version: str) -> VectorIndex:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        dim = int(vectors.shape[1]) if vectors.ndim == 2 and vectors.shape[1] else 1
        out = cls(dim, model_version)
        if len(keys):
            out.index.add(np.asarray(keys, dtype=np.uint64), vectors)
        return out

    def __len__(self) -> int:
        return len(self.index)

    def __contains__(self, key: int) -> bool:
        return int(key) in self.index

    def keys(self) -> np.ndarray:
        if not len(self.index):
            return np.zeros(0, np.uint64)
        return np.asarray(self.index.keys, dtype=np.uint64)

    def add(self, key: int, vector: np.ndarray) -> None:
        self.index.add(np.uint64(key), np.asarray(vector, dtype=np.float32))
        self._matrix = None

    def extend(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Add many at once (one call into usearch)."""
        if len(keys):
            self.index.add(
                np.asarray(keys, dtype=np.uint64), np.ascontiguousarray(vectors, np.float32)
            )
            self._matrix = None

    def remove(self, key: int) -> None:
        self.index.remove(np.uint64(key))
        self._matrix = None

    def matrix(self) -> tuple[np.ndarray, np.ndarray]:
        """All (keys, vectors), cached, for exact scans."""
        if self._matrix is None:
            keys = self.keys()
            vecs = (
                np.stack(self.index.get(keys)).astype(np.float32, copy=False)
                if len(keys)
                else np.zeros((0, self.dim), np.float32)
            )
            self._matrix = (keys, vecs)
        return self._matrix

    def search(
        self,
        queries: np.ndarray,
        count: int,
        *,
        allowed: np.ndarray | None = None,
        exact: bool | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (keys, cosine similarities), each (Q, count'), best first.

        ``allowed`` restricts the result to those keys (category/supplier filters). Rows
        shorter than ``count`` (tiny catalogs) are padded with key NO_KEY and -inf.
        """
        queries = np.atleast_2d(np.ascontiguousarray(queries, dtype=np.float32))
        n = len(self.index)
        count = max(1, min(count, n))
        keys = np.full((len(queries), count), NO_KEY, dtype=np.uint64)
        sims = np.full((len(queries), count), -np.inf, dtype=np.float32)
        if n == 0:
            return keys, sims
        use_exact = n <= EXACT_SEARCH_LIMIT if exact is None else exact
        if use_exact or allowed is not None:
            all_keys, vecs = self.matrix()
            if allowed is not None:
                mask = np.isin(all_keys, np.asarray(allowed, dtype=np.uint64))
                all_keys, vecs = all_keys[mask], vecs[mask]
            return self._scan(queries, count, all_keys, vecs, keys, sims)
        try:
            res = self.index.search(queries, count)
        except RuntimeError as exc:
            if stopped(exc):
                raise KeyboardInterrupt from exc
            raise
        rk = np.atleast_2d(res.keys)
        rd = np.atleast_2d(res.distances)
        counts = np.atleast_1d(res.counts) if hasattr(res, "counts") else [len(res.keys)]
        for i, c in enumerate(counts):
            keys[i, :c] = rk[i, :c]
            sims[i, :c] = 1.0 - rd[i, :c]
        return keys, sims

    @staticmethod
    def _scan(
        queries: np.ndarray,
        count: int,
        all_keys: np.ndarray,
        vecs: np.ndarray,
        keys: np.ndarray,
        sims: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-``count`` by one matrix product (vectors are unit length)."""
        m = len(all_keys)
        if m == 0:
            return keys, sims
        k = min(count, m)
        scores = queries @ vecs.T
        top = (
            np.argpartition(-scores, k - 1, axis=1)[:, :k]
            if k < m
            else np.tile(np.arange(m), (len(queries), 1))
        )
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        best = np.take_along_axis(top, order, axis=1)
        keys[:, :k] = all_keys[best]
        sims[:, :k] = np.take_along_axis(scores, best, axis=1)
        return keys, sims

    def save(self, path: Path) -> None:
        """Write index then sidecar, each atomically; the sidecar is written last, so a crash
        in between leaves a sidecar that no longer matches and forces a rebuild."""
        path = Path(path)
        info_path = sidecar(path)
        info_path.unlink(missing_ok=True)
        with atomic_path(path) as tmp:
            self.index.save(str(tmp))
            size, crc = tmp.stat().st_size, file_crc32(tmp)
        info = {
            "model_version": self.model_version,
            "dim": self.dim,
            "count": len(self),
            "digest": key_digest(self.keys()),
            "size": size,
            "crc32": crc,
        }
        atomic_write_text(info_path, json.dumps(info, indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> VectorIndex | None:
        """Load a saved index, or None if it is missing, unreadable, truncated or altered
        (caller rebuilds): the file must match the size and CRC its sidecar recorded."""
        path = Path(path)
        info = IndexInfo.read(sidecar(path))
        if info is None or not info.matches_file(path):
            return None
        try:
            index = cls._new(info.dim)
            index.load(str(path))
        except (RuntimeError, ValueError, OSError):
            return None
        out = cls(info.dim, info.model_version, index)
        if len(out) != info.count:
            return None
        return out


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")
