"""Training losses: ArcFace over SKUs, and the seed's 'orthogonalise the catalog' loss.

ArcFace is written out (about twenty lines) rather than taken from pytorch-metric-learning:
that package is not a dependency, and the engine needs only this one loss.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ArcFace(nn.Module):
    """Additive angular margin softmax (Deng et al. 2019): one learnable unit centre per class.

    The true class's logit is ``s * cos(theta + m)``, the others ``s * cos(theta)``, so an
    embedding must sit closer to its SKU's centre than to any other by an angular margin:
    exactly the property nearest-neighbour search needs. ``class_weights`` (e.g. inverse
    square-root frequency) and ``focal_gamma`` counter class imbalance, as in the seed work.
    """

    def __init__(
        self,
        dim: int,
        n_classes: int,
        *,
        scale: float = 30.0,
        margin: float = 0.3,
        class_weights: torch.Tensor | None = None,
        focal_gamma: float = 0.0,
    ) -> None:
        super().__init__()
        self.centres = nn.Parameter(torch.randn(n_classes, dim) / math.sqrt(dim))
        self.scale, self.margin, self.focal_gamma = scale, margin, focal_gamma
        self.register_buffer(
            "class_weights", class_weights if class_weights is not None else torch.ones(n_classes)
        )

    def logits(self, emb: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        cos = F.normalize(emb, dim=1) @ F.normalize(self.centres, dim=1).T
        if labels is None:
            return self.scale * cos
        cos = cos.clamp(-1 + 1e-6, 1 - 1e-6)
        target = torch.cos(torch.acos(cos) + self.margin)
        # Past pi - m, cos(theta + m) stops decreasing; fall back to a linear penalty there.
        target = torch.where(cos > math.cos(math.pi - self.margin), target, cos - self.margin)
        one_hot = F.one_hot(labels, cos.shape[1]).bool()
        return self.scale * torch.where(one_hot, target, cos)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = self.logits(emb, labels)
        nll = F.cross_entropy(logits, labels, reduction="none")
        if self.focal_gamma > 0:
            p = torch.exp(-nll)
            nll = (1 - p) ** self.focal_gamma * nll
        w = self.class_weights[labels]
        return (w * nll).sum() / w.sum()


def orthogonality_loss(
    catalog_emb: torch.Tensor, labels: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean squared cosine between embeddings of different catalog products.

    The seed's unsupervised objective: pushing every pair of products towards orthogonal
    directions spreads the catalog over the sphere, so a photo has room to land nearest its
    own product. Needs only the catalog, no labels beyond 'these are different products';
    with ``labels``, pairs of images of the same product are left alone.
    """
    emb = F.normalize(catalog_emb, dim=1)
    n = emb.shape[0]
    if labels is None:
        labels = torch.arange(n, device=emb.device)
    different = labels[:, None] != labels[None, :]
    if not bool(different.any()):
        return emb.sum() * 0.0
    gram = emb @ emb.T
    return (gram[different] ** 2).mean()


def invariance_loss(view_emb: torch.Tensor, anchor_emb: torch.Tensor) -> torch.Tensor:
    """1 - cosine between augmented views and their clean catalog image (pulls views in)."""
    return (1 - (F.normalize(view_emb, dim=1) * F.normalize(anchor_emb, dim=1)).sum(1)).mean()


def class_weights(counts: torch.Tensor, power: float = 0.5) -> torch.Tensor:
    """Per-class loss weights ``(mean count / count) ** power``; 0.5 is the usual compromise
    between ignoring imbalance and letting a few photos of a rare SKU dominate."""
    counts = counts.float().clamp_min(1)
    return (counts.mean() / counts) ** power
