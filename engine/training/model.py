"""The trainable encoder: a frozen trunk, the last few stages unfrozen, and a projection head.

Why split it: on a 2-core laptop a full backward pass through EfficientNet-Lite0 costs far
too much. The early stages (high resolution, generic edges and textures) stay frozen, their
output is computed once per training view (with onnxruntime, several times faster than torch
eager) and cached; only the last stages and the head see gradients. The exported model is the
whole thing again, so matching still takes a plain image and gives a unit vector.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

from engine.export_onnx import build_backbone
from engine.training.options import UNFREEZE


def backbone_stages(backbone: nn.Module) -> list[nn.Module]:
    """The backbone's feature extractor as an ordered list of stages (input to 1280 maps)."""
    if hasattr(backbone, "blocks"):  # timm EfficientNet family
        stem = nn.Sequential(backbone.conv_stem, backbone.bn1)
        head = nn.Sequential(backbone.conv_head, backbone.bn2)
        return [stem, *backbone.blocks, head]
    return list(backbone.features)  # torchvision MobileNetV2


def _unit(x: torch.Tensor) -> torch.Tensor:
    # Written out (not F.normalize) so the ONNX graph has no Shape/Expand ops.
    return x / torch.linalg.vector_norm(x, dim=1, keepdim=True).clamp_min(1e-12)


class ProjectionHead(nn.Module):
    """Average pool -> unit length -> linear -> unit length.

    Normalising before the projection makes it see directions only (what cosine search uses);
    the orthogonal initialisation keeps the pretrained geometry at step zero, so training
    starts from the ImageNet model's quality rather than from a random embedding.
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_dim, out_dim, bias=False)
        nn.init.orthogonal_(self.proj.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = x.mean(dim=(2, 3))
        return _unit(self.proj(_unit(x)))


class TrunkPool(nn.Module):
    """The frozen trunk as exported for feature caching; pools when nothing after it trains."""

    def __init__(self, trunk: nn.Module, pool: bool) -> None:
        super().__init__()
        self.trunk, self.pool = trunk, pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.trunk(x)
        return y.mean(dim=(2, 3)) if self.pool else y


class ShopEncoder(nn.Module):
    """trunk (frozen) -> tail (trained) -> head (trained): image in, unit embedding out."""

    def __init__(self, trunk: nn.Sequential, tail: nn.Sequential, head: ProjectionHead) -> None:
        super().__init__()
        self.trunk, self.tail, self.head = trunk, tail, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.tail(self.trunk(x)))

    def forward_cached(self, features: torch.Tensor) -> torch.Tensor:
        """Embed from cached trunk output (a feature map, or pooled features for 'head')."""
        return self.head(self.tail(features) if len(self.tail) else features)

    def set_training(self) -> None:
        """Train mode for the trainable part, with BatchNorm statistics frozen.

        Batches of 32-64 cached views give noisy statistics, and the statistics the frozen
        trunk's output was normalised with are the pretrained ones; only the BN scale and
        shift are learnt.
        """
        self.train()
        self.trunk.eval()
        for m in self.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()

    def trainable_parameters(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(pretrained tail parameters, freshly initialised head parameters): they get
        different learning rates."""
        return list(self.tail.parameters()), list(self.head.parameters())


class EnsembleEncoder(nn.Module):
    """One frozen trunk, several independently trained tails + heads (members).

    Why: on grocery a single fine-tuned model's top-1 spreads by 1.8 points (standard
    deviation over ten seeds); the normalised sum of two members trained from different
    seeds on the same cached features is both better and steadier (bench/learning_lab.py).
    The trunk, most of the encoder's cost, runs once per image; each member adds only its
    tail.
    """

    def __init__(self, trunk: nn.Sequential, members: list[ShopEncoder]) -> None:
        super().__init__()
        self.trunk = trunk
        self.members = nn.ModuleList(members)

    @classmethod
    def sharing_trunk(cls, members: list[ShopEncoder]) -> EnsembleEncoder:
        """The ensemble of ``members``, built on the same frozen trunk: the first member's
        is kept once and every member's own is dropped."""
        trunk = members[0].trunk
        for m in members:
            m.trunk = nn.Sequential()
        return cls(trunk, members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_cached(self.trunk(x))

    def forward_cached(self, features: torch.Tensor) -> torch.Tensor:
        total = self.members[0].forward_cached(features)
        for member in self.members[1:]:
            total = total + member.forward_cached(features)
        return _unit(total)


def build_encoder(
    arch: str, unfreeze: str, embedding_dim: int, input_size: int
) -> tuple[ShopEncoder, int]:
    """ImageNet ``arch`` split for ``unfreeze``; returns the model and its feature width."""
    if unfreeze not in UNFREEZE:
        raise ValueError(f"unknown unfreeze {unfreeze!r}; choose from {', '.join(UNFREEZE)}")
    backbone = build_backbone(arch, static_pad_size=input_size)
    stages = backbone_stages(backbone)
    k = UNFREEZE[unfreeze]
    trunk = nn.Sequential(*stages[: len(stages) - k])
    tail = nn.Sequential(*stages[len(stages) - k :])
    for p in trunk.parameters():
        p.requires_grad_(False)
    with torch.no_grad():
        width = int(nn.Sequential(*stages)(torch.zeros(1, 3, input_size, input_size)).shape[1])
    model = ShopEncoder(trunk, tail, ProjectionHead(width, embedding_dim))
    return model.eval(), width


def export_trunk(model: ShopEncoder, path: Path, input_size: int) -> Path:
    """Write the frozen trunk (pooled when the tail is empty) as ONNX for fast caching."""
    from engine.export_onnx import export_onnx_file

    trunk = TrunkPool(copy.deepcopy(model.trunk), pool=len(model.tail) == 0).eval()
    export_onnx_file(trunk, path, input_size=input_size)
    return path
