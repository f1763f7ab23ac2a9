"""Geometric verification: does a planar patch of the catalog image appear in the photo?

Tentative matches (nearest neighbour + Lowe's ratio test, one photo point per catalog point)
are checked with a RANSAC homography, the model of a flat label or box face seen in
perspective; where that fails (few matches, a bent label) a RANSAC affine model is tried.
Only physically plausible models count (no mirroring, no extreme shear or scale), and the
inlier count is what the user sees ("47 matching points"). Random matches between unrelated
images rarely agree on one plausible transform, so textureless goods simply verify nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from engine.local_features.extract import LocalFeatures

RATIO = 0.8  # Lowe's ratio on L2 distances
MIN_MATCHES = 10  # tentative matches needed before RANSAC (cannot give more inliers)
RANSAC_FRACTION = 0.012  # reprojection tolerance as a fraction of the catalog image's longer side
RANSAC_ITERS = 1000
RANSAC_METHOD = cv2.USAC_PROSAC  # samples best-ratio matches first: ~30x faster than RANSAC here
MAX_ANISOTROPY = 6.0  # ratio of the transform's singular values (a label seen very obliquely)
SCALE_RANGE = (1 / 25, 25.0)  # catalog-to-photo scale the product may appear at


@dataclass(frozen=True)
class Verification:
    """Result of checking one catalog image against the photo.

    ``pairs`` are (photo keypoint, catalog keypoint) indices of the inliers; ``matrix`` maps
    photo working pixels to catalog working pixels (3x3) when a model was found.
    """

    inliers: int
    model: str  # "homography", "affine" or "" (nothing verified)
    pairs: np.ndarray
    matrix: np.ndarray | None = None

    @classmethod
    def none(cls) -> Verification:
        return cls(0, "", np.zeros((0, 2), np.int32))


def tentative_matches(
    photo_root: np.ndarray, cand_roots: Sequence[np.ndarray], ratio: float = RATIO
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per candidate, (photo idx, catalog idx) pairs passing the ratio test, each catalog point
    used once (its best photo point). One matrix product covers all candidates."""
    out: list[tuple[np.ndarray, np.ndarray]] = []
    empty = (np.zeros(0, np.int64), np.zeros(0, np.int64))
    if len(photo_root) == 0 or not cand_roots:
        return [empty for _ in cand_roots]
    sizes = [len(c) for c in cand_roots]
    stacked = np.concatenate([np.asarray(c, np.float32) for c in cand_roots if len(c)] or [])
    sims_all = photo_root @ stacked.T if len(stacked) else np.zeros((len(photo_root), 0))
    start = 0
    r2 = ratio * ratio
    for n in sizes:
        sims = sims_all[:, start : start + n]
        start += n
        if n < 2:
            out.append(empty)
            continue
        # best and second best per row: two argmax passes are ~25x faster than argpartition
        rows = np.arange(len(sims))
        best = sims.argmax(axis=1)
        s1 = sims[rows, best].copy()
        sims[rows, best] = -2.0
        s2 = sims.max(axis=1)
        sims[rows, best] = s1
        # squared L2 between unit vectors is 2 - 2 cos
        d1, d2 = 2.0 - 2.0 * s1, 2.0 - 2.0 * s2
        ok = d1 < r2 * d2
        q = np.flatnonzero(ok)
        t = best[ok]
        if len(q):
            # most distinctive first (lowest distance ratio), then one photo point per catalog
            # point; the order also lets RANSAC's sampling find the model sooner
            order = np.argsort(d1[q] / np.maximum(d2[q], 1e-9), kind="stable")
            q, t = q[order], t[order]
            _, first_use = np.unique(t, return_index=True)
            keep = np.sort(first_use)
            q, t = q[keep], t[keep]
        out.append((q.astype(np.int64), t.astype(np.int64)))
    return out


def _plausible(linear: np.ndarray) -> bool:
    """No mirror image, no extreme shear, a believable scale."""
    if not np.isfinite(linear).all():
        return False
    det = float(np.linalg.det(linear))
    if det <= 0:
        return False
    sv = np.linalg.svd(linear, compute_uv=False)
    if sv[1] <= 0 or sv[0] / sv[1] > MAX_ANISOTROPY:
        return False
    scale = float(np.sqrt(det))
    return SCALE_RANGE[0] <= scale <= SCALE_RANGE[1]


def _plausible_homography(h: np.ndarray, photo_pts: np.ndarray) -> bool:
    """Plausible at the matched region: positive depth, and a sane local linear part."""
    if not np.isfinite(h).all() or abs(h[2, 2]) < 1e-12:
        return False
    h = h / h[2, 2]
    lo, hi = photo_pts.min(axis=0), photo_pts.max(axis=0)
    corners = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
    w = corners @ h[2, :2] + h[2, 2]
    if (w <= 0).any():  # the region would fold through the horizon
        return False
    centre = (lo + hi) / 2
    wc = float(centre @ h[2, :2] + h[2, 2])
    xy = (h[:2, :2] @ centre + h[:2, 2]) / wc
    jacobian = (h[:2, :2] - np.outer(xy, h[2, :2])) / wc
    if not _plausible(jacobian):
        return False
    mapped = cv2.perspectiveTransform(corners.reshape(-1, 1, 2).astype(np.float64), h).reshape(4, 2)
    return bool(cv2.isContourConvex(mapped.astype(np.float32)))


def verify(
    photo: LocalFeatures,
    cand: LocalFeatures,
    q_idx: np.ndarray,
    t_idx: np.ndarray,
) -> Verification:
    """Fit photo->catalog homography (affine as fallback) to the tentative matches."""
    if len(q_idx) < MIN_MATCHES:
        return Verification.none()
    src = photo.points[q_idx].astype(np.float32)
    dst = cand.points[t_idx].astype(np.float32)
    threshold = RANSAC_FRACTION * max(cand.size)
    h, mask = cv2.findHomography(
        src, dst, RANSAC_METHOD, threshold, maxIters=RANSAC_ITERS, confidence=0.995
    )
    model, matrix = "", None
    if h is not None and mask is not None:
        keep = mask.ravel().astype(bool)
        if keep.sum() >= 4 and _plausible_homography(h, src[keep]):
            model, matrix = "homography", h / h[2, 2]
    if not model:
        a, mask = cv2.estimateAffine2D(
            src, dst, method=cv2.RANSAC, ransacReprojThreshold=threshold, maxIters=RANSAC_ITERS
        )
        if a is None or mask is None or not _plausible(a[:, :2]):
            return Verification.none()
        model, matrix = "affine", np.vstack([a, [0.0, 0.0, 1.0]])
    keep = mask.ravel().astype(bool)
    pairs = _distinct(photo, cand, np.stack([q_idx[keep], t_idx[keep]], axis=1))
    return Verification(len(pairs), model, pairs, matrix)


def _distinct(photo: LocalFeatures, cand: LocalFeatures, pairs: np.ndarray) -> np.ndarray:
    """One pair per photo location and per catalog location: SIFT gives a point several
    keypoints when it has several dominant orientations, which must not count twice."""
    if len(pairs) == 0:
        return np.zeros((0, 2), np.int32)
    for side, feats in ((0, photo), (1, cand)):
        loc = np.round(feats.points[pairs[:, side]]).astype(np.int64)
        _, first = np.unique(loc, axis=0, return_index=True)
        pairs = pairs[np.sort(first)]
    return pairs.astype(np.int32)


def verify_many(
    photo: LocalFeatures, photo_root: np.ndarray, cands: Sequence[LocalFeatures]
) -> list[Verification]:
    roots = [c.root() for c in cands]
    matches = tentative_matches(photo_root, roots)
    return [verify(photo, c, q, t) for c, (q, t) in zip(cands, matches, strict=True)]
