"""Photo decode cost: JPEG draft-mode loading vs a full 12 MP decode.

    .venv/bin/python bench/bench_decode.py                     # generated 12 MP phone JPEG
    .venv/bin/python bench/bench_decode.py --image ~/DCIM/IMG_0001.jpg --repeat 20 --json \\
        --out decode.json

Shop photos come from phones (4032x3024, EXIF-rotated) but the encoder looks at 224 px, so
``engine.images.load_image`` asks Pillow for a reduced-scale JPEG decode. This measures what
that buys on this machine, against a naive ``Image.open().convert('RGB')`` +
``ImageOps.exif_transpose`` measured in the same run (the baseline every ratio refers to):

* ``load``: just the decoded, upright RGB image;
* ``pipeline``: decode + ``to_square(224)`` + ``to_tensor``, i.e. everything before the model.

Without ``--image`` a realistic phone JPEG is generated: a demo photo upscaled to 4032x3024
with lighting gradients and sensor-like noise (so it does not compress trivially), saved at
quality 92 with EXIF orientation 6 (portrait, rotated), like an iPhone or Android camera file.
Variants are interleaved per repeat, so a slow spell hits them all alike; medians are printed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a plain script, not an installed package
    sys.path.insert(0, str(REPO_ROOT))

from engine.images import load_image, to_square, to_tensor  # noqa: E402

PHONE_SIZE = (4032, 3024)  # 12 MP, stored landscape; EXIF 6 makes it portrait on screen
EXIF_ORIENTATION = 0x0112
DEMO_PHOTOS = REPO_ROOT / "resources" / "demo" / "photos"
INPUT_SIZE = 224  # both bundled encoders
MIN_SIDE = 2 * INPUT_SIZE  # what Encoder.load passes to load_image
MEAN = (0.5, 0.5, 0.5)
STD = (0.5, 0.5, 0.5)
BASELINE = "naive open+convert+exif"


def make_phone_jpeg(dest: Path, source: Path | None = None, seed: int = 0) -> Path:
    """Write a 4032x3024 q92 JPEG with EXIF orientation 6 that compresses like a real photo.

    A plain upscale is smooth and would decode unrealistically fast, so gradients (uneven shop
    lighting) and per-pixel noise (sensor grain) are added; that keeps the file at phone-like
    several MB.
    """
    if source is None:
        source = sorted(DEMO_PHOTOS.glob("*.jpg"))[0]
    width, height = PHONE_SIZE
    with Image.open(source) as src:
        img = ImageOps.fit(src.convert("RGB"), (width // 8, height // 8))  # 4:3 crop first
    img = img.resize(PHONE_SIZE, Image.Resampling.BICUBIC)
    rng = np.random.default_rng(seed)
    pixels = np.asarray(img, dtype=np.float32)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    light = 0.85 + 0.25 * (xx / width) * (1.0 - 0.5 * yy / height)  # vignette-ish gradient
    pixels *= light[..., None]
    pixels += rng.normal(0.0, 6.0, size=pixels.shape).astype(np.float32)  # sensor grain
    out = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 6
    out.save(dest, "JPEG", quality=92, exif=exif.tobytes())
    return dest


def naive_load(path: Path) -> Image.Image:
    """What a first implementation would do: full decode, then rotate upright."""
    with Image.open(path) as im:
        img = im.convert("RGB")
    return ImageOps.exif_transpose(img)


def pipeline(load: Callable[[Path], Image.Image], square_mode: str) -> Callable[[Path], np.ndarray]:
    """Decode + square + normalise: everything the encoder needs before the ONNX run."""

    def run(path: Path) -> np.ndarray:
        return to_tensor([to_square(load(path), INPUT_SIZE, square_mode)], MEAN, STD)

    return run


def time_variants(
    variants: dict[str, Callable[[Path], object]], path: Path, repeat: int
) -> dict[str, list[float]]:
    """Time each variant ``repeat`` times (after one warm-up each), interleaved."""
    for fn in variants.values():
        fn(path)
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(repeat):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn(path)
            times[name].append((time.perf_counter() - start) * 1000.0)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--image", type=Path, help="photo to decode (default: generated)")
    parser.add_argument("--repeat", type=int, default=10, help="timed runs per variant")
    parser.add_argument("--square-mode", choices=["letterbox", "crop"], default="letterbox")
    parser.add_argument("--json", action="store_true", help="also write results as JSON (to --out)")
    parser.add_argument(
        "--out", type=Path, help="JSON file to write (implies --json; default bench_decode.json)"
    )
    args = parser.parse_args(argv)
    if args.json or args.out:
        args.json, args.out = True, args.out or Path("bench_decode.json")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    with tempfile.TemporaryDirectory(prefix="bench-decode-") as tmp:
        path = args.image or make_phone_jpeg(Path(tmp) / "phone.jpg")
        return run(path, args)


def run(path: Path, args: argparse.Namespace) -> int:
    with Image.open(path) as im:
        stored, fmt = im.size, im.format
        orientation = im.getexif().get(EXIF_ORIENTATION, 1)

    def draft(p: Path) -> Image.Image:
        return load_image(p, min_side=MIN_SIDE)

    def full(p: Path) -> Image.Image:
        return load_image(p, min_side=None)

    loads: dict[str, Callable[[Path], Image.Image]] = {
        BASELINE: naive_load,
        "load_image full (None)": full,
        f"load_image draft ({MIN_SIDE})": draft,
    }
    variants: dict[str, Callable[[Path], object]] = dict(loads)
    for name, fn in loads.items():
        variants[f"{name} -> tensor"] = pipeline(fn, args.square_mode)

    sizes = {name: fn(path).size for name, fn in loads.items()}
    tensors = {name: pipeline(fn, args.square_mode)(path) for name, fn in loads.items()}
    ref = tensors["load_image full (None)"]
    drift = {name: float(np.abs(t - ref).mean()) for name, t in tensors.items()}

    times = time_variants(variants, path, args.repeat)
    med = {name: statistics.median(ts) for name, ts in times.items()}

    size_mb = path.stat().st_size / 1e6
    print(
        f"{path.name}: {fmt} {stored[0]}x{stored[1]} ({stored[0] * stored[1] / 1e6:.1f} MP), "
        f"{size_mb:.1f} MB, EXIF orientation {orientation}; {args.repeat} runs, "
        f"to_square mode {args.square_mode}"
    )
    print(f"baseline: {BASELINE} (ratios are baseline time / variant time, >1 = faster)\n")
    header = f"{'variant':40s} {'out size':>10s} {'median ms':>10s} {'min ms':>8s} {'speed-up':>9s}"
    print(header)
    print("-" * len(header))
    rows = []
    for stage, suffix in (("load", ""), ("pipeline", " -> tensor")):
        base = med[BASELINE + suffix]
        for name in loads:
            key = name + suffix
            out = f"{sizes[name][0]}x{sizes[name][1]}" if stage == "load" else "224x224"
            ratio = base / med[key]
            print(f"{key:40s} {out:>10s} {med[key]:10.1f} {min(times[key]):8.1f} {ratio:8.2f}x")
            rows.append(
                {
                    "stage": stage,
                    "variant": key,
                    "out_size": out,
                    "median_ms": med[key],
                    "min_ms": min(times[key]),
                    "all_ms": times[key],
                    "speedup_vs_baseline": ratio,
                }
            )
        print()
    print("mean |tensor - full-decode tensor| (normalised units, ~0.008 = 1 grey level):")
    for name, d in drift.items():
        print(f"  {name:38s} {d:.4f}")

    if args.json:
        result = {
            "image": str(path),
            "stored_size": list(stored),
            "file_mb": size_mb,
            "exif_orientation": orientation,
            "repeat": args.repeat,
            "square_mode": args.square_mode,
            "baseline": BASELINE,
            "rows": rows,
            "tensor_drift_vs_full": drift,
        }
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
