"""The persisted usearch vector index over catalog-image embeddings.

Keys are our own catalog image ids (uint64): usearch's automatic keys collide after removals.
The index is a derived file: a sidecar JSON records which model and which key set it holds,
so a stale or half-written index is detected on open and rebuilt from the embeddings stored in
SQLite, never trusted. Removals rebuild instead of piling up tombstones.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from usearch.index import Index, MetricKind

from engine.atomic import atomic_path, atomic_write_text

# Below this many vectors a brute-force scan is as fast as the graph and exact, so we use it.
EXACT_SEARCH_LIMIT = 20_000


def key_digest(keys: np.ndarray) -> str:
    """Order-independent fingerprint of a key set, to tell whether an index file is current."""
    ordered = np.sort(np.asarray(keys, dtype=np.uint64))
    return hashlib.sha256(ordered.tobytes()).hexdigest()


@dataclass(frozen=True)
class IndexInfo:
    model_version: str
    dim: int
    count: int
    digest: str

    @classmethod
    def read(cls, path: Path) -> IndexInfo | None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                str(data["model_version"]),
                int(data["dim"]),
                int(data["count"]),
                str(data["digest"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None


class VectorIndex:
    """Cosine index with exact search for small catalogs and HNSW beyond."""

    def __init__(self, dim: int, model_version: str, index: Index | None = None) -> None:
        self.dim = dim
        self.model_version = model_version
        self.index = index if index is not None else self._new(dim)

    @staticmethod
    def _new(dim: int) -> Index:
        return Index(
            ndim=dim,
            metric=MetricKind.Cos,
            dtype="f32",
            connectivity=16,
            expansion_add=128,
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

    def keys(self) -> np.ndarray:
        return (
            np.asarray(self.index.keys, dtype=np.uint64)
            if len(self.index)
            else np.zeros(0, np.uint64)
        )

    def search(
        self, queries: np.ndarray, count: int, exact: bool | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return (keys, cosine similarities), each (Q, count'), best first.

        Rows shorter than ``count`` (tiny catalogs) are padded with key 2**64-1 and -inf.
        """
        queries = np.atleast_2d(np.ascontiguousarray(queries, dtype=np.float32))
        n = len(self.index)
        count = max(1, min(count, n))
        keys = np.full((len(queries), count), np.iinfo(np.uint64).max, dtype=np.uint64)
        sims = np.full((len(queries), count), -np.inf, dtype=np.float32)
        if n == 0:
            return keys, sims
        use_exact = n <= EXACT_SEARCH_LIMIT if exact is None else exact
        res = self.index.search(queries, count, exact=use_exact)
        rk = np.atleast_2d(res.keys)
        rd = np.atleast_2d(res.distances)
        counts = np.atleast_1d(res.counts) if hasattr(res, "counts") else [len(res.keys)]
        for i, c in enumerate(counts):
            keys[i, :c] = rk[i, :c]
            sims[i, :c] = 1.0 - rd[i, :c]
        return keys, sims

    def save(self, path: Path) -> None:
        """Write index then sidecar, each atomically; the sidecar is written last, so a crash
        in between leaves a sidecar that no longer matches and forces a rebuild."""
        path = Path(path)
        info_path = sidecar(path)
        info_path.unlink(missing_ok=True)
        with atomic_path(path) as tmp:
            self.index.save(str(tmp))
        info = {
            "model_version": self.model_version,
            "dim": self.dim,
            "count": len(self),
            "digest": key_digest(self.keys()),
        }
        atomic_write_text(info_path, json.dumps(info, indent=2) + "\n")

    @classmethod
    def load(cls, path: Path) -> VectorIndex | None:
        """Load a saved index, or None if it is missing or unreadable (caller rebuilds)."""
        path = Path(path)
        info = IndexInfo.read(sidecar(path))
        if info is None or not path.exists():
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
