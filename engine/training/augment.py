"""Phone-photo augmentations: turn a clean supplier image into a plausible shop photo.

Why: a catalog holds one clean cut-out per product, while queries are phone photos of piles,
shelves and hands in shop light. Simulating that gap (clutter behind the product, tilt and
perspective, partial crops, blur, JPEG, colour casts) lets training learn from the catalog
alone, before the first confirmation. Pure PIL + numpy, seeded per call, so views are
reproducible and the gate's catalog self-check sees the same images every time.
"""

from __future__ import annotations

import io
import math
import random

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

_WHITE_CUTOFF = 235  # supplier cut-outs sit on (near) white; brighter pixels are background


def _clutter(size: tuple[int, int], rng: random.Random) -> Image.Image:
    """A busy background: a colour gradient plus shelves, boxes and blobs of random colours."""
    w, h = size
    top = np.array([rng.randrange(40, 256) for _ in range(3)], dtype=np.float32)
    bottom = np.array([rng.randrange(0, 220) for _ in range(3)], dtype=np.float32)
    ramp = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    grad = np.broadcast_to(top * (1 - ramp) + bottom * ramp, (h, w, 3))
    noise = np.random.default_rng(rng.randrange(1 << 30)).normal(0, 8, (h, w, 3))
    bg = Image.fromarray(np.clip(grad + noise, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(bg)
    for _ in range(rng.randrange(4, 14)):
        colour = tuple(rng.randrange(0, 256) for _ in range(3))
        x, y = rng.randrange(-w // 4, w), rng.randrange(-h // 4, h)
        bw, bh = rng.randrange(w // 10, w // 2), rng.randrange(h // 10, h // 2)
        if rng.random() < 0.5:
            draw.rectangle([x, y, x + bw, y + bh], fill=colour)
        else:
            draw.ellipse([x, y, x + bw, y + bh], fill=colour)
    return bg.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 3.0)))


def _cutout_mask(img: Image.Image) -> Image.Image:
    """Foreground mask of a product shot on white (slightly grown and softened)."""
    arr = np.asarray(img.convert("RGB"))
    fg = (arr.min(axis=2) < _WHITE_CUTOFF).astype(np.uint8) * 255
    # Shrink a little so no white halo survives, then soften the edge.
    mask = Image.fromarray(fg, "L").filter(ImageFilter.MinFilter(5))
    return mask.filter(ImageFilter.GaussianBlur(1.0))


def _perspective(img: Image.Image, rng: random.Random, amount: float, fill: tuple) -> Image.Image:
    """Random keystone/tilt: each corner moves by up to ``amount`` of the side."""
    w, h = img.size
    dx, dy = amount * w, amount * h
    src = [(0, 0), (w, 0), (w, h), (0, h)]
    dst = [(x + rng.uniform(-dx, dx), y + rng.uniform(-dy, dy)) for x, y in src]
    # PIL wants coefficients mapping output to input: solve the 8x8 homography system.
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend([u, v])
    coeffs = np.linalg.solve(np.asarray(rows, dtype=np.float64), np.asarray(rhs, np.float64))
    return img.transform(
        (w, h),
        Image.Transform.PERSPECTIVE,
        coeffs.tolist(),
        Image.Resampling.BILINEAR,
        fillcolor=fill,
    )


def _colour(img: Image.Image, rng: random.Random, strength: float) -> Image.Image:
    """Shop light: brightness, contrast, saturation and a white-balance cast."""
    s = strength
    img = ImageEnhance.Brightness(img).enhance(rng.uniform(1 - 0.4 * s, 1 + 0.3 * s))
    img = ImageEnhance.Contrast(img).enhance(rng.uniform(1 - 0.4 * s, 1 + 0.3 * s))
    img = ImageEnhance.Color(img).enhance(rng.uniform(1 - 0.4 * s, 1 + 0.4 * s))
    cast = np.array([rng.uniform(1 - 0.12 * s, 1 + 0.12 * s) for _ in range(3)], np.float32)
    arr = np.asarray(img, dtype=np.float32) * cast
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _degrade(img: Image.Image, rng: random.Random, strength: float) -> Image.Image:
    """Camera faults: defocus or motion blur, sensor noise, then JPEG re-compression."""
    r = rng.random()
    if r < 0.35:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0 + 1.5 * strength)))
    elif r < 0.5:  # horizontal motion blur
        k = rng.choice((3, 5))
        kernel = [0.0] * (k * k)
        for i in range(k):
            kernel[(k // 2) * k + i] = 1.0 / k
        img = img.filter(ImageFilter.Kernel((k, k), kernel))
    if rng.random() < 0.3:
        arr = np.asarray(img, dtype=np.float32)
        noise = np.random.default_rng(rng.randrange(1 << 30)).normal(0, 3 + 5 * strength, arr.shape)
        img = Image.fromarray(np.clip(arr + noise, 0, 255).astype(np.uint8))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=rng.randrange(int(85 - 50 * strength), 95))
    buf.seek(0)
    with Image.open(buf) as jpeg:
        return jpeg.convert("RGB")


def phone_photo(img: Image.Image, seed: int, strength: float = 1.0) -> Image.Image:
    """A simulated in-shop phone photo of a clean catalog image (same size as the input).

    The product is cut out of its white background and placed, tilted and in perspective,
    at a random scale and position on clutter, sometimes on a pile of smaller copies of
    itself; it may run past the frame (a partial view). Then shop light and camera faults.
    """
    rng = random.Random(seed)
    img = img.convert("RGB")
    w, h = img.size
    side = max(w, h)
    canvas_side = int(side * rng.uniform(1.0, 1.5))
    canvas = (
        _clutter((canvas_side, canvas_side), rng)
        if rng.random() < 0.85
        else Image.new("RGB", (canvas_side, canvas_side), (255, 255, 255))
    )
    mask = _cutout_mask(img)
    angle = rng.uniform(-25, 25) * strength
    prod = img.rotate(angle, Image.Resampling.BILINEAR, expand=True, fillcolor=(255, 255, 255))
    mask = mask.rotate(angle, Image.Resampling.BILINEAR, expand=True, fillcolor=0)
    seed_p = rng.randrange(1 << 30)
    prod = _perspective(prod, random.Random(seed_p), 0.12 * strength, (255, 255, 255))
    mask = _perspective(mask, random.Random(seed_p), 0.12 * strength, 0)
    scale = rng.uniform(0.55, 1.15) * canvas_side / max(prod.size)
    new = (max(8, int(prod.width * scale)), max(8, int(prod.height * scale)))
    prod = prod.resize(new, Image.Resampling.BILINEAR)
    mask = mask.resize(new, Image.Resampling.BILINEAR)
    if rng.random() < 0.4:  # a pile: loose produce and stacked goods are shot in heaps
        for _ in range(rng.randrange(2, 7)):
            k = rng.uniform(0.35, 0.7)
            small = (max(4, int(new[0] * k)), max(4, int(new[1] * k)))
            turn = rng.uniform(-180, 180)
            copy = prod.resize(small, Image.Resampling.BILINEAR).rotate(turn, expand=True)
            cmask = mask.resize(small, Image.Resampling.BILINEAR).rotate(turn, expand=True)
            px = rng.randrange(-small[0] // 3, max(1, canvas_side - small[0] * 2 // 3))
            py = rng.randrange(-small[1] // 3, max(1, canvas_side - small[1] * 2 // 3))
            canvas.paste(copy, (px, py), cmask)
    x = rng.randrange(-new[0] // 6, max(1, canvas_side - new[0] * 5 // 6))
    y = rng.randrange(-new[1] // 6, max(1, canvas_side - new[1] * 5 // 6))
    canvas.paste(prod, (x, y), mask)
    out = _colour(canvas, rng, strength)
    out = _degrade(out, rng, strength)
    return out.resize((w, h), Image.Resampling.BILINEAR)


def photo_jitter(img: Image.Image, seed: int, strength: float = 1.0) -> Image.Image:
    """A mild variation of a real photo: crop, small tilt, light and JPEG (same size).

    Real confirmed photos already carry the shop's clutter; they only need variety, not
    simulation, and a heavy pipeline would push them away from what the shop will shoot.
    """
    rng = random.Random(seed)
    img = img.convert("RGB")
    w, h = img.size
    area = rng.uniform(0.55, 1.0)
    aspect = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
    cw = min(w, max(1, round(w * math.sqrt(area * aspect))))
    ch = min(h, max(1, round(h * math.sqrt(area / aspect))))
    x, y = rng.randrange(0, w - cw + 1), rng.randrange(0, h - ch + 1)
    out = img.crop((x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        fill = tuple(int(v) for v in np.asarray(out).reshape(-1, 3).mean(axis=0))
        out = out.rotate(rng.uniform(-15, 15) * strength, Image.Resampling.BILINEAR, fillcolor=fill)
    out = _colour(out, rng, 0.6 * strength)
    out = _degrade(out, rng, 0.5 * strength)
    return out.resize((w, h), Image.Resampling.BILINEAR)
