"""Generate the printed-goods benchmark: label and cover artwork, and 12-MP phone photos of it.

Products come in *families* that share a brand: colours, logo, layout and most of the print,
and differ only in the variant name, a flavour line, a small icon and the small print, which is
exactly where global embeddings fail (one brand's apple and orange juice look alike to them).
Half the families are labels (brand band, logo, name), half are covers (title, author, a
picture block, columns of text).

Each photo shows one product: the flat artwork warped by a random perspective homography
(rotation, tilt, scale), on a cluttered background with distractor print that is in no
catalog, with a glare spot, uneven light, colour cast, blur, sensor noise and JPEG
compression, saved at 4000x3000 with a random EXIF orientation (the pixels are stored
rotated; only the tag makes them upright), as phones do.

    .venv/bin/python bench/printed_goods.py OUT [--families 10 --variants 10 --photos 2]

writes OUT/catalog.csv (sku,name,category,image), OUT/truth.csv (photo,sku), the catalog
images under OUT/catalog/ and the photos under OUT/photos/. Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import csv
import io
import random
import string
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

ART_SIZE = (600, 800)  # catalog artwork, portrait (width, height)
PHOTO_SIZE = (4000, 3000)  # 12 MP, landscape sensor
SYLLABLES = ["ka", "lo", "mi", "ra", "sen", "to", "vu", "bel", "dor", "fi", "gra", "ne", "qui"]


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _word(rng: random.Random, syllables: int = 3) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(syllables)).capitalize()


def _colour(rng: random.Random, lo: int = 0, hi: int = 256) -> tuple[int, int, int]:
    return (rng.randrange(lo, hi), rng.randrange(lo, hi), rng.randrange(lo, hi))


def _logo(draw: ImageDraw.ImageDraw, rng: random.Random, box: tuple[int, int, int, int]) -> None:
    """A brand mark: a few overlapping shapes and an initial."""
    x0, y0, x1, y1 = box
    for _ in range(3):
        c = _colour(rng)
        kind = rng.choice(["ellipse", "poly", "rect"])
        if kind == "ellipse":
            draw.ellipse([x0 + 5, y0 + 5, x1 - 5, y1 - 5], outline=c, width=rng.randrange(4, 10))
        elif kind == "poly":
            n = rng.randrange(3, 6)
            draw.polygon([(rng.randrange(x0, x1), rng.randrange(y0, y1)) for _ in range(n)], fill=c)
        else:
            a, b = sorted(rng.sample(range(x0, x1), 2)), sorted(rng.sample(range(y0, y1), 2))
            draw.rectangle([a[0], b[0], a[1], b[1]], fill=c)
    draw.text(
        ((x0 + x1) // 2, (y0 + y1) // 2),
        rng.choice(string.ascii_uppercase),
        fill=_colour(rng, 0, 80),
        font=_font((y1 - y0) // 2),
        anchor="mm",
    )


def _small_print(
    draw: ImageDraw.ImageDraw, rng: random.Random, box: tuple[int, int, int, int], size: int
) -> None:
    x0, y0, x1, y1 = box
    font = _font(size)
    y = y0
    while y + size < y1:
        line = " ".join(_word(rng, rng.randrange(1, 4)).lower() for _ in range(8))
        text = line[: max(8, (x1 - x0) // (size // 2 + 1))]
        draw.text((x0, y), text, fill=(20, 20, 20), font=font)
        y += int(size * 1.4)


def _icon(draw: ImageDraw.ImageDraw, rng: random.Random, centre: tuple[int, int], r: int) -> None:
    cx, cy = centre
    c = _colour(rng, 0, 200)
    kind = rng.randrange(4)
    if kind == 0:
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=c)
        draw.ellipse([cx - r // 2, cy - r // 2, cx + r // 2, cy + r // 2], fill=_colour(rng))
    elif kind == 1:
        draw.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=c)
    elif kind == 2:
        for i in range(5):
            draw.line([cx - r, cy - r + i * r // 2, cx + r, cy - r + i * r // 2], fill=c, width=5)
    else:
        draw.regular_polygon((cx, cy, r), rng.randrange(5, 9), fill=c)


def artwork(family: int, variant: int, seed: int = 0) -> Image.Image:
    """The catalog image of one product: shared family design plus variant-specific print."""
    brand = random.Random(f"{seed}-brand-{family}")
    var = random.Random(f"{seed}-variant-{family}-{variant}")
    w, h = ART_SIZE
    bg = _colour(brand, 150, 256)
    img = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(img)
    brand_name = _word(brand, 2).upper()
    accent = _colour(brand, 0, 150)
    if family % 2 == 0:  # label: brand band, logo, product name, flavour, icon, small print
        d.rectangle([0, 0, w, 170], fill=accent)
        _logo(d, brand, (20, 15, 160, 155))
        d.text((180, 85), brand_name, fill=bg, font=_font(64), anchor="lm")
        d.text((w // 2, 260), _word(var, 3), fill=accent, font=_font(72), anchor="mm")
        d.text((w // 2, 340), _word(var, 2).lower() + " & " + _word(var, 2).lower(),
               fill=(30, 30, 30), font=_font(40), anchor="mm")  # fmt: skip
        _icon(d, var, (w // 2, 480), 80)
        d.rectangle([0, 590, w, 600], fill=_colour(var))
        _small_print(d, var, (30, 620, w - 30, h - 60), 18)
        for i, x in enumerate(range(w - 200, w - 40, 6)):  # barcode-ish
            if var.random() < 0.6:
                d.rectangle([x, h - 55, x + (2 if i % 3 else 4), h - 10], fill=(0, 0, 0))
    else:  # cover: title, author, picture block, two columns of text
        _logo(d, brand, (w - 130, 20, w - 20, 130))
        d.text((30, 40), brand_name, fill=accent, font=_font(36))
        title = _word(var, 2) + " " + _word(var, 3)
        d.text((30, 150), title, fill=(10, 10, 10), font=_font(56))
        d.text((30, 225), "by " + _word(var, 2) + " " + _word(var, 3), fill=accent, font=_font(34))
        pic = (30, 290, w - 30, 560)
        d.rectangle(pic, fill=_colour(var, 60, 200))
        for _ in range(6):
            _icon(d, var, (var.randrange(pic[0] + 60, pic[2] - 60), var.randrange(330, 520)), 45)
        _small_print(d, var, (30, 590, w // 2 - 10, h - 30), 17)
        _small_print(d, var, (w // 2 + 10, 590, w - 30, h - 30), 17)
    return img


def _clutter(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """A table or shelf: texture, random objects and distractor print from no catalog."""
    w, h = size
    base = np.array(_colour(rng, 90, 220), dtype=np.float32)
    small = np.random.default_rng(rng.randrange(2**32)).normal(0, 18, (h // 20, w // 20, 3))
    tex = cv2.resize(small.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    img = Image.fromarray(np.clip(base + tex, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(img)
    for _ in range(rng.randrange(6, 14)):
        x, y = rng.randrange(w), rng.randrange(h)
        s = rng.randrange(75, 450)
        if rng.random() < 0.5:
            d.rectangle([x, y, x + s, y + s // 2], fill=_colour(rng))
        else:
            d.ellipse([x, y, x + s, y + s], fill=_colour(rng))
    for _ in range(rng.randrange(2, 5)):  # distractor packaging (families 1000+, in no catalog)
        other = artwork(1000 + rng.randrange(10_000), rng.randrange(50), seed=rng.randrange(9))
        other = other.resize((other.width * 3 // 4, other.height * 3 // 4)).rotate(
            rng.uniform(-40, 40), expand=True, fillcolor=(0, 0, 0)
        )
        mask = other.convert("L").point(lambda v: 255 if v > 0 else 0)
        img.paste(other, (rng.randrange(-150, w - 150), rng.randrange(-150, h - 150)), mask)
    for _ in range(rng.randrange(3, 8)):
        d.text((rng.randrange(w), rng.randrange(h)), _word(rng, 3), fill=_colour(rng),
               font=_font(rng.randrange(30, 80)))  # fmt: skip
    return img


def _homography(rng: random.Random, art: tuple[int, int], photo: tuple[int, int]) -> np.ndarray:
    """Artwork -> photo: the product is 40-80% of the frame's height, turned and tilted."""
    aw, ah = art
    pw, ph = photo
    target_h = rng.uniform(0.4, 0.8) * ph
    s = target_h / ah
    angle = np.deg2rad(rng.uniform(-30, 30))
    cx, cy = pw / 2 + rng.uniform(-0.12, 0.12) * pw, ph / 2 + rng.uniform(-0.06, 0.06) * ph
    src = np.array([[0, 0], [aw, 0], [aw, ah], [0, ah]], dtype=np.float32)
    centred = (src - [aw / 2, ah / 2]) * s
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = centred @ rot.T + [cx, cy]
    # perspective: move corners independently by up to 12% of the product's size
    jitter = np.array([[rng.uniform(-1, 1), rng.uniform(-1, 1)] for _ in range(4)])
    dst = dst + jitter * 0.12 * target_h
    return cv2.getPerspectiveTransform(src, dst.astype(np.float32))


def photo(art: Image.Image, seed: int) -> tuple[Image.Image, int, np.ndarray]:
    """A phone photo of ``art``: (upright image, EXIF orientation to save with, homography).

    The scene is rendered at half the sensor size and upscaled (a phone's 12 MP are never
    sharp at pixel level, and the 800-px artwork is upsampled anyway), then noise is added at
    full size: four times less arithmetic for the same look.
    """
    rng = random.Random(seed)
    size = (PHOTO_SIZE[0] // 2, PHOTO_SIZE[1] // 2)
    scene = _clutter(rng, size)
    h_mat = _homography(rng, art.size, size)
    art_np = np.asarray(art.convert("RGB"))
    warped = cv2.warpPerspective(art_np, h_mat, size, flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.full(art_np.shape[:2], 255, np.uint8), h_mat, size)
    out = np.asarray(scene).copy()
    m = mask > 127
    out[m] = warped[m]
    f = out.astype(np.float32)
    # uneven light and colour cast
    yy, xx = np.mgrid[0 : size[1], 0 : size[0]].astype(np.float32)
    gx, gy = rng.uniform(-1, 1), rng.uniform(-1, 1)
    light = 1 + 0.25 * (gx * (xx / size[0] - 0.5) + gy * (yy / size[1] - 0.5))
    f *= light[..., None] * rng.uniform(0.7, 1.1)
    f *= np.array([rng.uniform(0.9, 1.1) for _ in range(3)], dtype=np.float32)
    # a glare spot, somewhere on the product
    corners = cv2.perspectiveTransform(
        np.array([[[0, 0], [art.width, art.height]]], dtype=np.float32), h_mat
    )[0]
    gx0 = rng.uniform(min(corners[:, 0]), max(corners[:, 0]))
    gy0 = rng.uniform(min(corners[:, 1]), max(corners[:, 1]))
    sigma = rng.uniform(75, 225)
    gl = np.exp(-((xx - gx0) ** 2 + ((yy - gy0) * 1.6) ** 2) / (2 * sigma**2))
    gl *= rng.uniform(0.6, 0.9)
    f = f * (1 - gl[..., None]) + 255 * gl[..., None]
    half = cv2.GaussianBlur(np.clip(f, 0, 255).astype(np.uint8), (0, 0), rng.uniform(0.4, 1.2))
    full = cv2.resize(half, PHOTO_SIZE, interpolation=cv2.INTER_CUBIC)
    noise = np.empty(full.shape[:2], np.int16)
    cv2.setRNGSeed(seed)
    cv2.randn(noise, 0, rng.uniform(2, 7))
    full = np.clip(full.astype(np.int16) + noise[..., None], 0, 255).astype(np.uint8)
    orientation = rng.choice([1, 1, 3, 6, 8])
    scale = np.diag([2.0, 2.0, 1.0])  # homography into the full-size photo
    return Image.fromarray(full), orientation, scale @ h_mat


# EXIF orientation -> the transpose that makes upright pixels look like what a camera stores
_STORE = {
    1: None,
    3: Image.Transpose.ROTATE_180,
    6: Image.Transpose.ROTATE_90,  # displayed = stored rotated 90 cw, so store it 90 ccw
    8: Image.Transpose.ROTATE_270,
}


def save_photo(img: Image.Image, orientation: int, path: Path, quality: int = 88) -> None:
    """Store the pixels as the sensor would and let the EXIF tag make them upright."""
    op = _STORE[orientation]
    stored = img.transpose(op) if op is not None else img
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=quality, exif=exif.tobytes())
    path.write_bytes(buf.getvalue())


def generate(
    out: Path, families: int = 10, variants: int = 10, photos: int = 2, seed: int = 0
) -> tuple[Path, Path]:
    """Write the benchmark (skipping files already there); returns (catalog.csv, truth.csv)."""
    out = Path(out)
    (out / "catalog").mkdir(parents=True, exist_ok=True)
    (out / "photos").mkdir(parents=True, exist_ok=True)
    cat_rows, truth_rows = [], []
    for fam in range(families):
        for var in range(variants):
            sku = f"F{fam:02d}-V{var:02d}"
            img_path = out / "catalog" / f"{sku}.png"
            if not img_path.exists():
                artwork(fam, var, seed).save(img_path)
            kind = "Labels" if fam % 2 == 0 else "Covers"
            cat_rows.append(
                {"sku": sku, "name": sku, "category": kind, "image": f"catalog/{sku}.png"}
            )
            for k in range(photos):
                p = out / "photos" / f"{sku}-{k}.jpg"
                if not p.exists():
                    art = Image.open(img_path)
                    img, orientation, _ = photo(art, seed * 1_000_003 + fam * 1000 + var * 10 + k)
                    save_photo(img, orientation, p)
                truth_rows.append({"photo": f"photos/{p.name}", "sku": sku})
    for name, rows in (("catalog.csv", cat_rows), ("truth.csv", truth_rows)):
        with open(out / name, "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return out / "catalog.csv", out / "truth.csv"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out", type=Path)
    ap.add_argument("--families", type=int, default=10)
    ap.add_argument("--variants", type=int, default=10)
    ap.add_argument("--photos", type=int, default=2, help="photos per product")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    generate(a.out, a.families, a.variants, a.photos, a.seed)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
