"""Run an ONNX image encoder with onnxruntime: batched, L2-normalised embeddings.

onnxruntime is about 4x faster than torch eager on laptop CPUs and needs no torch at run time.
Decoding runs in a small thread pool while the model runs (Pillow releases the GIL while it
decodes), so the two cores are kept busy.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from engine.images import ImageLoadError, load_image, to_square, to_tensor
from engine.manifest import ModelManifest

BATCH_SIZE = 16
SquareMode = str  # "letterbox" (default) or "crop"


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Unit-length rows (zero rows stay zero) so cosine similarity is a dot product."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


class Encoder:
    """One loaded ONNX encoder plus the preprocessing its manifest prescribes."""

    def __init__(
        self, model_dir: Path, threads: int | None = None, square_mode: SquareMode = "letterbox"
    ) -> None:
        self.model_dir = Path(model_dir)
        self.manifest = ModelManifest.load(self.model_dir)
        self.square_mode = square_mode
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = threads or max(1, min(os.cpu_count() or 1, 8))
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(
            str(self.model_dir / self.manifest.file), opts, providers=["CPUExecutionProvider"]
        )
        shape = self.session.get_outputs()[0].shape
        if isinstance(shape[-1], int) and shape[-1] != self.manifest.embedding_dim:
            raise ValueError(
                f"model outputs {shape[-1]}-d vectors but its manifest says "
                f"{self.manifest.embedding_dim}"
            )

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def dim(self) -> int:
        return self.manifest.embedding_dim

    def prepare(self, img: Image.Image) -> Image.Image:
        size = self.manifest.input_size
        return to_square(img, size, mode=self.square_mode)

    def encode_images(self, imgs: Sequence[Image.Image]) -> np.ndarray:
        """Embed already-loaded images; returns (N, dim) float32 unit vectors."""
        out = np.zeros((len(imgs), self.dim), dtype=np.float32)
        for start in range(0, len(imgs), BATCH_SIZE):
            chunk = [self.prepare(im) for im in imgs[start : start + BATCH_SIZE]]
            out[start : start + len(chunk)] = self._run(chunk)
        return out

    def _run(self, squares: Sequence[Image.Image]) -> np.ndarray:
        batch = to_tensor(squares, self.manifest.mean, self.manifest.std)
        (emb,) = self.session.run([self.manifest.output_name], {self.manifest.input_name: batch})
        return l2_normalise(emb)

    def load(self, path: Path) -> Image.Image:
        """Decode at reduced scale: the encoder only needs ``input_size`` pixels."""
        return load_image(path, min_side=self.manifest.input_size * 2)

    def iter_encode_paths(
        self,
        paths: Sequence[Path],
        on_loaded: Callable[[Path, Image.Image], None] | None = None,
    ) -> Iterator[tuple[list[Path], np.ndarray, list[tuple[Path, ImageLoadError]]]]:
        """Yield (ok_paths, embeddings, failures) batch by batch, decoding ahead in threads.

        ``on_loaded`` sees each decoded image (e.g. to write a thumbnail) before it is encoded.
        Bad files are returned as failures; the batch goes on.
        """

        def work(path: Path) -> tuple[Path, Image.Image | ImageLoadError]:
            try:
                img = self.load(path)
                if on_loaded is not None:
                    on_loaded(path, img)
                return path, self.prepare(img)
            except ImageLoadError as exc:
                return path, exc

        pending: deque[Future[tuple[Path, Image.Image | ImageLoadError]]] = deque()
        todo = iter(paths)
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="decode") as pool:
            # Bounded read-ahead: decoding stays one batch ahead without holding every image.
            for path in itertools.islice(todo, 2 * BATCH_SIZE):
                pending.append(pool.submit(work, path))
            while pending:
                ok: list[Path] = []
                squares: list[Image.Image] = []
                failed: list[tuple[Path, ImageLoadError]] = []
                while pending and len(ok) + len(failed) < BATCH_SIZE:
                    path, res = pending.popleft().result()
                    for nxt in itertools.islice(todo, 1):
                        pending.append(pool.submit(work, nxt))
                    if isinstance(res, ImageLoadError):
                        failed.append((path, res))
                    else:
                        ok.append(path)
                        squares.append(res)
                emb = self._run(squares) if squares else np.zeros((0, self.dim), np.float32)
                yield ok, emb, failed
