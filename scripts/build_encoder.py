"""Build the shipped ONNX image encoders from the offline ImageNet weight packages.

    python scripts/build_encoder.py                      # both, into resources/models/...
    python scripts/build_encoder.py --arch mobilenet_v2 --out /tmp/mnv2
    python scripts/build_encoder.py --classify photo.jpg # also print ImageNet top-5

The shipped ``resources/models/*/model.onnx`` files are exactly what this script writes (the
export is deterministic), so they can always be rebuilt and audited from the pip packages.
Each build is checked against the torch model before the script reports success.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a plain script, not an installed package
    sys.path.insert(0, str(REPO_ROOT))

DEFAULT_MODELS_DIR = REPO_ROOT / "resources" / "models"
MAX_ABS_DIFF = 1e-4


def build(arch: str, out_dir: Path, input_size: int, opset: int) -> None:
    """Export one encoder, verify it against torch, and print what was written."""
    import torch

    from engine.export_onnx import build_embedding_net, export_encoder, onnx_vs_torch_max_abs_diff

    start = time.perf_counter()
    manifest = export_encoder(arch, out_dir, input_size=input_size, opset=opset)
    onnx_path = out_dir / manifest.file
    generator = torch.Generator().manual_seed(0)
    batch = torch.randn(3, 3, input_size, input_size, generator=generator)
    diff = onnx_vs_torch_max_abs_diff(
        build_embedding_net(arch, static_pad_size=input_size), onnx_path, batch
    )
    if diff >= MAX_ABS_DIFF:
        raise SystemExit(f"{arch}: onnx differs from torch by {diff:.3g} (limit {MAX_ABS_DIFF})")
    size = onnx_path.stat().st_size
    print(
        f"{arch}: {onnx_path} {size:,} bytes ({size / 2**20:.2f} MiB), "
        f"version {manifest.version}, sha256 {manifest.sha256[:16]}..., "
        f"onnx-vs-torch max abs diff {diff:.2e}, {time.perf_counter() - start:.1f} s"
    )


def classify(arch: str, image: Path, input_size: int, top: int = 5) -> None:
    """Print the ImageNet top-k for one photo: a quick proof the weights really are trained."""
    import numpy as np
    import torch
    from PIL import Image
    from torchvision.models import MobileNet_V2_Weights

    from engine.export_onnx import arch_spec, build_backbone

    spec = arch_spec(arch)
    categories = MobileNet_V2_Weights.IMAGENET1K_V1.meta["categories"]
    img = Image.open(image).convert("RGB")
    # Standard ImageNet evaluation crop: shorter side to size/0.875, centre crop.
    scale = round(input_size / 0.875) / min(img.size)
    img = img.resize(
        (round(img.width * scale), round(img.height * scale)), Image.Resampling.BICUBIC
    )
    left, top_px = (img.width - input_size) // 2, (img.height - input_size) // 2
    img = img.crop((left, top_px, left + input_size, top_px + input_size))
    pixels = (np.asarray(img, dtype=np.float32) / 255.0 - spec.mean) / spec.std
    batch = torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1), np.float32))[None]
    with torch.inference_mode():
        probs = build_backbone(arch, static_pad_size=input_size)(batch).softmax(dim=1)[0]
    values, indices = probs.topk(top)
    ranked = ", ".join(
        f"{int(i)} {categories[int(i)]} {float(p):.2f}"
        for p, i in zip(values, indices, strict=True)
    )
    print(f"{arch}: {image.name}: {ranked}")


def main(argv: list[str] | None = None) -> int:
    from engine.export_onnx import ARCHITECTURES, DEFAULT_INPUT_SIZE, DEFAULT_OPSET

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--arch",
        choices=[*ARCHITECTURES, "all"],
        default="all",
        help="architecture to build (default: all shipped encoders)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="output folder (single --arch only; default resources/models/<arch folder>)",
    )
    parser.add_argument("--input-size", type=int, default=DEFAULT_INPUT_SIZE)
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    parser.add_argument(
        "--classify", type=Path, metavar="IMAGE", help="also print the ImageNet top-5 for IMAGE"
    )
    args = parser.parse_args(argv)

    arches = list(ARCHITECTURES) if args.arch == "all" else [args.arch]
    if args.out is not None and len(arches) != 1:
        parser.error("--out needs a single --arch")
    for arch in arches:
        out_dir = args.out or DEFAULT_MODELS_DIR / ARCHITECTURES[arch].folder
        build(arch, out_dir, args.input_size, args.opset)
        if args.classify is not None:
            classify(arch, args.classify, args.input_size)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
