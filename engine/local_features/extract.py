"""RootSIFT keypoints at a fixed working resolution, with a cap on how many are kept.

Printed goods (labels, boxes, covers) differ in text and small logos that a global embedding
averages away; local keypoints keep them. SIFT is scale- and rotation-invariant, so a catalog
image and a phone photo meet at whatever size each is detected at; the working resolution only
bounds the cost. Descriptors are stored as SIFT's own uint8 values (lossless: OpenCV's float
SIFT descriptors are whole numbers 0-255) and turned into RootSIFT (Hellinger kernel, Arandjelovic
& Zisserman 2012) when used, which matches noticeably better than plain SIFT under L2.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

# Bump when anything below changes what is extracted: stored features of another version are
# re-extracted by the next sync, and the descriptor index file is named after it.
EXTRACTOR_VERSION = "rootsift-2"

# Longer side, in pixels, that catalog images and photos are detected at; larger images are
# downscaled, smaller ones never upscaled (SIFT already doubles its input internally, and on
# 198-px grocery cut-outs a 2x bicubic upscale measured worse: 60% vs 68% packages top-1,
# from false matches on interpolation artefacts).
CATALOG_SIDE = 640
# Photos: a 12-MP JPEG draft-decodes to 1000x750 for the encoder anyway; detecting at 800 rather
# than 640 let 93% instead of 88% of printed-goods photos vote their product into the shortlist
# (products fill 40-80% of the frame height, so their small print needs the pixels).
PHOTO_SIDE = 800
CATALOG_KEYPOINTS = 500  # stored per reference image (verification uses all of them)
PHOTO_KEYPOINTS = 1200  # a photo has clutter around the product: keep more
VOTE_KEYPOINTS = 800  # the strongest photo keypoints that query the index (search cost)
# Keypoints per reference image in the voting index. All of them: on printed goods the weak,
# small-scale ones (text) are what tells family members apart; indexing only the strongest
# 300 of 500 found the true image among the 10 best-voted for 62% of photos, all 500 for 90%.
INDEX_KEYPOINTS = CATALOG_KEYPOINTS

DESC_DIM = 128


@dataclass(frozen=True)
class LocalFeatures:
    """Keypoints of one image, strongest first: ``points`` (n, 2) float32 in working pixels,
    ``frames`` (n, 2) float32 keypoint diameter (pixels) and orientation (degrees, OpenCV's),
    ``descriptors`` (n, 128) uint8 SIFT; ``size`` the working image's (width, height)."""

    points: np.ndarray
    frames: np.ndarray
    descriptors: np.ndarray
    size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.points)

    def normalised(self) -> np.ndarray:
        """Points as fractions of the image's width and height (0-1), for drawing at any size."""
        w, h = self.size
        return self.points / np.array([max(w, 1), max(h, 1)], dtype=np.float32)

    def root(self) -> np.ndarray:
        return rootsift(self.descriptors)

    @classmethod
    def empty(cls, size: tuple[int, int] = (0, 0)) -> LocalFeatures:
        none = np.zeros((0, 2), np.float32)
        return cls(none, none.copy(), np.zeros((0, DESC_DIM), np.uint8), size)


def rootsift(descriptors: np.ndarray) -> np.ndarray:
    """L1-normalise then square-root: unit-L2 rows whose dot product is the Hellinger kernel."""
    d = np.asarray(descriptors, dtype=np.float32)
    d = d / np.maximum(d.sum(axis=1, keepdims=True), 1e-6)
    return np.sqrt(d, out=d)


_local = threading.local()


def _sift(n: int) -> cv2.SIFT:
    """One detector per thread and cap: OpenCV objects are not safe to share across threads."""
    cache: dict[int, cv2.SIFT] = _local.__dict__.setdefault("sift", {})
    if n not in cache:
        cache[n] = cv2.SIFT_create(nfeatures=n)
    return cache[n]


def working_gray(img: Image.Image, side: int) -> np.ndarray:
    """Grey uint8 array whose longer side is at most ``side`` (aspect kept)."""
    gray = img.convert("L")
    longer = max(gray.size)
    if longer > side:
        scale = side / longer
        new = (max(1, round(gray.width * scale)), max(1, round(gray.height * scale)))
        gray = gray.resize(new, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(gray)


def extract_gray(gray: np.ndarray, max_keypoints: int) -> LocalFeatures:
    """Detect and describe; keep the ``max_keypoints`` strongest, strongest first."""
    h, w = gray.shape[:2]
    if min(h, w) < 16:
        return LocalFeatures.empty((w, h))
    kps, desc = _sift(max_keypoints).detectAndCompute(gray, None)
    if desc is None or not kps:
        return LocalFeatures.empty((w, h))
    response = np.fromiter((k.response for k in kps), np.float32, len(kps))
    order = np.argsort(-response, kind="stable")[:max_keypoints]
    pts = np.array([kps[i].pt for i in order], dtype=np.float32).reshape(-1, 2)
    frames = np.array([(kps[i].size, kps[i].angle) for i in order], np.float32).reshape(-1, 2)
    d = np.clip(np.rint(desc[order]), 0, 255).astype(np.uint8)
    return LocalFeatures(pts, frames, d, (w, h))


def extract_catalog(img: Image.Image) -> LocalFeatures:
    return extract_gray(working_gray(img, CATALOG_SIDE), CATALOG_KEYPOINTS)


def extract_photo(img: Image.Image) -> LocalFeatures:
    return extract_gray(working_gray(img, PHOTO_SIDE), PHOTO_KEYPOINTS)
