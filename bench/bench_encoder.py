"""Encoder throughput: onnxruntime vs torch eager, and dynamic vs fixed TF-SAME padding.

    python bench/bench_encoder.py                       # lite0, noise images, batch 1 and 16
    python bench/bench_encoder.py --arch all --images ~/Pictures/shop --seconds 5

Every variant embeds the same images (generated noise at the input size unless ``--images``)
on the same number of threads, and the torch eager baseline is measured in the same run, so
the printed ratios compare like with like on this machine. Variants:

* ``torch eager``: ``EmbeddingNet`` with fixed padding, ``torch.inference_mode`` (baseline).
* ``onnx dynamic pad``: timm's run-time SAME padding traced as is (tf_ models only).
* ``onnx fixed pad``: constant ``Pad`` nodes before the stride-2 convs (tf_ models only).
* ``onnx shipped``: fixed pad folded into the Conv nodes, i.e. ``resources/models/*``.

Timings are the best of ``--rounds`` rounds (each at least ``--seconds`` long), with the
variants interleaved per round so a slow spell on the laptop hits them all alike.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a plain script, not an installed package
    sys.path.insert(0, str(REPO_ROOT))

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
Runner = Callable[[np.ndarray], np.ndarray]


def load_images(folder: Path | None, count: int, size: int, arch: str) -> np.ndarray:
    """``count`` normalised NCHW float32 images: photos from ``folder`` or seeded noise."""
    from engine.export_onnx import arch_spec

    spec = arch_spec(arch)
    if folder is None:
        pixels = np.random.default_rng(0).integers(0, 256, (count, size, size, 3), dtype=np.uint8)
    else:
        from PIL import Image

        paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise SystemExit(f"no images under {folder}")
        squares = []
        for path in (paths * (count // len(paths) + 1))[:count]:
            img = Image.open(path).convert("RGB")
            scale = size / min(img.size)
            img = img.resize(
                (max(size, round(img.width * scale)), max(size, round(img.height * scale)))
            )
            left, top = (img.width - size) // 2, (img.height - size) // 2
            squares.append(np.asarray(img.crop((left, top, left + size, top + size))))
        pixels = np.stack(squares)
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    scaled = (pixels.astype(np.float32) / 255.0 - mean) / std
    return np.ascontiguousarray(scaled.transpose(0, 3, 1, 2))


def onnx_runner(path: Path, threads: int) -> Runner:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    return lambda batch: session.run(["embedding"], {"input": batch})[0]


def torch_runner(model: object) -> Runner:
    import torch

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(batch)).numpy()  # type: ignore[operator]

    return run


def images_per_second(run: Runner, images: np.ndarray, batch_size: int, seconds: float) -> float:
    """Embed ``images`` in batches, cycling, for at least ``seconds``; one warm-up batch."""
    batches = [images[i : i + batch_size] for i in range(0, len(images), batch_size)]
    batches = [b for b in batches if len(b) == batch_size]
    run(batches[0])
    done, start = 0, time.perf_counter()
    while True:
        for batch in batches:
            run(batch)
            done += len(batch)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed


def bench_arch(arch: str, args: argparse.Namespace, workdir: Path) -> None:
    from engine.export_onnx import build_embedding_net, export_onnx_file, onnx_op_counts

    size = args.input_size
    variants: dict[str, Runner] = {}
    fixed = build_embedding_net(arch, static_pad_size=size)
    variants["torch eager"] = torch_runner(fixed)
    files: dict[str, Path] = {}
    if arch.startswith("tf_"):
        files["onnx dynamic pad"] = workdir / f"{arch}-dynamic.onnx"
        export_onnx_file(build_embedding_net(arch, static_pad_size=None), files["onnx dynamic pad"])
        files["onnx fixed pad"] = workdir / f"{arch}-fixed.onnx"
        export_onnx_file(fixed, files["onnx fixed pad"], fuse_pads=False)
    files["onnx shipped"] = workdir / f"{arch}-shipped.onnx"
    export_onnx_file(fixed, files["onnx shipped"])
    for name, path in files.items():
        variants[name] = onnx_runner(path, args.threads)
        ops = onnx_op_counts(path)
        print(
            f"  {name:17s} {sum(ops.values()):4d} nodes, {ops.get('Shape', 0)} Shape, "
            f"{ops.get('Pad', 0)} Pad"
        )

    images = load_images(args.images, args.count, size, arch)
    reference = variants["torch eager"](images[:4])
    for name, run in variants.items():
        diff = float(np.abs(run(images[:4]) - reference).max())
        print(f"  {name:17s} max abs diff vs torch eager: {diff:.1e}")

    print(
        f"\n{arch} ({'photos from ' + str(args.images) if args.images else 'noise images'}, "
        f"{size}x{size}, {args.threads} threads, best of {args.rounds} x {args.seconds:g} s)"
    )
    print(f"  {'variant':17s} {'batch':>5s} {'images/s':>9s} {'vs torch':>9s}")
    for batch_size in args.batch_sizes:
        best = dict.fromkeys(variants, 0.0)
        for _ in range(args.rounds):
            for name, run in variants.items():
                time.sleep(0.2)  # let the previous variant's spinning worker threads go idle
                rate = images_per_second(run, images, batch_size, args.seconds)
                best[name] = max(best[name], rate)
        baseline = best["torch eager"]
        for name, rate in best.items():
            print(f"  {name:17s} {batch_size:5d} {rate:9.1f} {rate / baseline:8.2f}x")


def main(argv: list[str] | None = None) -> int:
    from engine.export_onnx import ARCHITECTURES, DEFAULT_INPUT_SIZE

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--arch", choices=[*ARCHITECTURES, "all"], default="tf_efficientnet_lite0")
    parser.add_argument("--images", type=Path, help="folder of photos (default: noise)")
    parser.add_argument("--count", type=int, default=32, help="distinct images (default 32)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0, help="minimum time per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--input-size", type=int, default=DEFAULT_INPUT_SIZE)
    args = parser.parse_args(argv)
    if args.count < max(args.batch_sizes):
        parser.error("--count must be at least the largest batch size")

    import onnxruntime
    import torch

    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}")
    arches = list(ARCHITECTURES) if args.arch == "all" else [args.arch]
    with tempfile.TemporaryDirectory(prefix="bench-encoder-") as tmp:
        for arch in arches:
            print(f"\n== {arch}")
            bench_arch(arch, args, Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
