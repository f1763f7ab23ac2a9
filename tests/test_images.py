"""engine.images on real files written to tmp_path: formats, colour, orientation and failures."""

from __future__ import annotations

import io
import os
import pickle
import struct
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, features

from engine import images
from engine.images import (
    IMAGE_SUFFIXES,
    ImageLoadError,
    iter_image_files,
    load_image,
    make_thumbnail,
    register_heif,
    to_square,
    to_tensor,
)

RED = (255, 0, 0)
WHITE = (255, 255, 255)


def near(pixel: tuple[int, ...], expected: tuple[int, ...], tol: int = 12) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(pixel, expected, strict=True))


def rgb_at(img: Image.Image, xy: tuple[int, int]) -> tuple[int, int, int]:
    assert img.mode == "RGB"
    r, g, b = img.getpixel(xy)  # type: ignore[misc]
    return (r, g, b)


def load_strict(path: Path, **kwargs: int | None) -> Image.Image:
    """load_image with every warning turned into a failure: nothing may leak to stderr."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return load_image(path, **kwargs)  # type: ignore[arg-type]


def load_error(path: Path, **kwargs: int | None) -> ImageLoadError:
    with pytest.raises(ImageLoadError) as info:
        load_strict(path, **kwargs)
    assert info.value.path == path
    assert str(info.value) == f"{path.name}: {info.value.reason}"
    return info.value


def jpeg_bytes(img: Image.Image, **params: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, **params)
    return buf.getvalue()


def png_with_declared_size(tmp_path: Path, width: int, height: int) -> Path:
    """A tiny valid PNG whose IHDR claims width x height: what a decompression bomb looks like."""
    buf = io.BytesIO()
    Image.new("1", (8, 8)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 17]))
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    path = tmp_path / "bomb.png"
    path.write_bytes(bytes(data))
    return path


XYZ = tuple[float, float, float]


def matrix_icc_profile(description: str, red: XYZ, green: XYZ, blue: XYZ) -> bytes:
    """Minimal ICC v2 RGB matrix/TRC display profile (linear TRC) with the given D50 colorants."""

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + bytes(4) + struct.pack(">3i", *(round(v * 65536) for v in (x, y, z)))

    text = description.encode("ascii") + b"\0"
    desc = b"desc" + bytes(4) + struct.pack(">I", len(text)) + text + bytes(4 + 4 + 2 + 1 + 67)
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, 0x0100) + bytes(2)  # gamma 1.0
    d50 = (0.9642, 1.0, 0.8249)
    tags = [
        (b"desc", desc),
        (b"wtpt", xyz(*d50)),
        (b"rXYZ", xyz(*red)),
        (b"gXYZ", xyz(*green)),
        (b"bXYZ", xyz(*blue)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, data in tags:
        data += bytes(-len(data) % 4)
        table += struct.pack(">4sII", signature, offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (
        struct.pack(">I4sI4s4s4s", size, b"lcms", 0x02100000, b"mntr", b"RGB ", b"XYZ ")
        + bytes(12)  # date
        + b"acsp"
        + bytes(4 * 4 + 8 + 4)  # platform, flags, manufacturer, model, attributes, intent
        + xyz(*d50)[8:]
        + bytes(4 + 16 + 28)  # creator, id, reserved
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


# sRGB primaries adapted to D50, as found in sRGB ICC profiles.
SRGB_RED = (0.4361, 0.2225, 0.0139)
SRGB_GREEN = (0.3851, 0.7169, 0.0971)
SRGB_BLUE = (0.1431, 0.0606, 0.7141)


# --- orientation -------------------------------------------------------------------------


def test_exif_orientation_rotates_and_moves_marker(tmp_path: Path) -> None:
    img = Image.new("RGB", (60, 40), (128, 128, 128))
    img.paste(RED, (0, 0, 10, 10))  # marker in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    path = tmp_path / "rotated.jpg"
    path.write_bytes(jpeg_bytes(img, exif=exif.tobytes()))

    out = load_strict(path)

    assert out.size == (40, 60)
    assert near(rgb_at(out, (35, 4)), RED, tol=40)  # stored top-left ends up top-right
    assert near(rgb_at(out, (4, 4)), (128, 128, 128), tol=20)


def test_draft_decode_keeps_orientation(big_jpeg: Path, tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 8
    with Image.open(big_jpeg) as im:
        path = tmp_path / "portrait.jpg"
        im.save(path, quality=80, exif=exif.tobytes())
    assert load_strict(path).size == (750, 1000)


# --- transparency, modes, colour -----------------------------------------------------------


def _palette_with_transparency() -> Image.Image:
    img = Image.new("P", (20, 20), 1)
    img.putpalette([0, 0, 0, 255, 0, 0] + [0, 0, 0] * 254)
    img.paste(0, (0, 0, 10, 20))
    img.info["transparency"] = 0
    return img


def _la() -> Image.Image:
    img = Image.new("LA", (20, 20), (40, 255))
    img.paste((0, 0), (0, 0, 10, 20))
    return img


def _rgba() -> Image.Image:
    img = Image.new("RGBA", (20, 20), (*RED, 255))
    img.paste((0, 0, 0, 0), (0, 0, 10, 20))
    return img


def _rgb_colour_key() -> Image.Image:
    img = Image.new("RGB", (20, 20), RED)
    img.paste((0, 0, 255), (0, 0, 10, 20))
    img.info["transparency"] = (0, 0, 255)
    return img


@pytest.mark.parametrize(
    ("make", "opaque"),
    [
        (_palette_with_transparency, RED),
        (_la, (40, 40, 40)),
        (_rgba, RED),
        (_rgb_colour_key, RED),
    ],
    ids=["P+transparency", "LA", "RGBA", "RGB+tRNS"],
)
def test_transparency_is_composited_on_white(
    make: Callable[[], Image.Image], opaque: tuple[int, int, int], tmp_path: Path
) -> None:
    source = make()
    path = tmp_path / "alpha.png"
    source.save(path, transparency=source.info.get("transparency"))
    with Image.open(path) as check:  # the file really carries transparency
        assert check.has_transparency_data

    out = load_strict(path)

    assert out.mode == "RGB"
    assert rgb_at(out, (2, 10)) == WHITE
    assert rgb_at(out, (17, 10)) == opaque


def test_half_transparent_blends_with_white(tmp_path: Path) -> None:
    path = tmp_path / "half.png"
    Image.new("RGBA", (8, 8), (255, 0, 0, 128)).save(path)
    assert near(rgb_at(load_strict(path), (4, 4)), (255, 127, 127), tol=2)


def test_cmyk_jpeg_becomes_red(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (32, 24), (0, 255, 255, 0)).save(path, quality=95)
    with Image.open(path) as check:
        assert check.mode == "CMYK"
    assert near(rgb_at(load_strict(path), (16, 12)), RED, tol=20)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_grey_is_rescaled_not_clipped(suffix: str, tmp_path: Path) -> None:
    values = np.array([[0, 257 * 40, 32768, 65535]], dtype=np.uint16).repeat(4, axis=0)
    path = tmp_path / f"deep{suffix}"
    Image.fromarray(values).save(path)
    with Image.open(path) as check:
        assert check.mode in ("I;16", "I;16B", "I")

    out = load_strict(path)

    assert out.mode == "RGB"
    assert [rgb_at(out, (x, 0))[0] for x in range(4)] == [0, 40, 128, 255]
    assert rgb_at(out, (2, 0)) == (128, 128, 128)


def test_grey_and_bilevel(tmp_path: Path) -> None:
    grey = tmp_path / "grey.png"
    Image.new("L", (10, 10), 100).save(grey)
    assert rgb_at(load_strict(grey), (5, 5)) == (100, 100, 100)

    bilevel = Image.new("1", (10, 10), 0)
    bilevel.paste(1, (5, 0, 10, 10))
    path = tmp_path / "bilevel.png"
    bilevel.save(path)
    out = load_strict(path)
    assert rgb_at(out, (1, 5)) == (0, 0, 0)
    assert rgb_at(out, (8, 5)) == WHITE


# --- ICC --------------------------------------------------------------------------------


def test_embedded_srgb_profile_leaves_pixels_unchanged(tmp_path: Path) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    path = tmp_path / "srgb.png"
    Image.fromarray(pixels).save(path, icc_profile=srgb)

    assert np.array_equal(np.asarray(load_strict(path)), pixels)


def test_non_srgb_profile_is_converted(tmp_path: Path) -> None:
    # A profile whose "red" channel is sRGB's blue: only a real conversion turns red into blue.
    swapped = matrix_icc_profile("Swapped primaries", SRGB_BLUE, SRGB_GREEN, SRGB_RED)
    path = tmp_path / "swapped.png"
    Image.new("RGB", (8, 8), RED).save(path, icc_profile=swapped)

    r, g, b = rgb_at(load_strict(path), (4, 4))
    assert b > 200
    assert r < 60
    assert g < 60


def test_non_srgb_profile_is_converted_after_draft_too(tmp_path: Path) -> None:
    swapped = matrix_icc_profile("Swapped primaries", SRGB_BLUE, SRGB_GREEN, SRGB_RED)
    path = tmp_path / "swapped.jpg"
    Image.new("RGB", (2000, 1000), RED).save(path, quality=90, icc_profile=swapped)

    out = load_strict(path, min_side=100)

    assert out.size == (250, 125)  # drafted at 1/8
    assert near(rgb_at(out, (125, 60)), (0, 0, 255), tol=60)


@pytest.mark.parametrize(
    "profile",
    [
        b"this is not an ICC profile" * 10,
        ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")).tobytes(),  # wrong colour space
    ],
    ids=["garbage", "mismatched"],
)
def test_broken_profile_is_ignored(profile: bytes, tmp_path: Path) -> None:
    path = tmp_path / "broken_icc.png"
    Image.new("RGB", (8, 8), (10, 200, 30)).save(path, icc_profile=profile)
    assert rgb_at(load_strict(path), (4, 4)) == (10, 200, 30)


# --- formats and names ----------------------------------------------------------------------


def test_heic_loads(tmp_path: Path) -> None:
    register_heif()
    path = tmp_path / "phone.heic"
    img = Image.new("RGB", (64, 48), (200, 30, 30))
    img.paste((30, 30, 200), (32, 0, 64, 48))
    try:
        img.save(path, format="HEIF", quality=90)
    except (KeyError, OSError, ValueError, RuntimeError) as exc:
        pytest.skip(f"this pillow_heif build cannot encode HEIF: {exc}")

    out = load_strict(path)

    assert out.size == (64, 48)
    assert near(rgb_at(out, (8, 24)), (200, 30, 30), tol=25)
    assert near(rgb_at(out, (56, 24)), (30, 30, 200), tol=25)


def test_heic_orientation_applied_once(tmp_path: Path) -> None:
    register_heif()
    img = Image.new("RGB", (60, 40), (128, 128, 128))
    img.paste(RED, (0, 0, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "portrait.heic"
    try:
        img.save(path, format="HEIF", quality=95, exif=exif.tobytes())
    except (KeyError, OSError, ValueError, RuntimeError) as exc:
        pytest.skip(f"this pillow_heif build cannot encode HEIF: {exc}")

    out = load_strict(path)

    assert out.size == (40, 60)  # pillow_heif rotates and clears the tag: no double rotation
    assert near(rgb_at(out, (35, 4)), RED, tol=40)


def test_avif_loads(tmp_path: Path) -> None:
    if not features.check("avif"):
        pytest.skip("this Pillow build has no AVIF codec")
    path = tmp_path / "photo.avif"
    Image.new("RGB", (32, 32), (200, 30, 30)).save(path, quality=90)
    assert near(rgb_at(load_strict(path), (16, 16)), (200, 30, 30), tol=25)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("a.webp", {"lossless": True}),
        ("a.bmp", {}),
        ("a.tiff", {}),
        ("a.tif", {"compression": "tiff_lzw"}),
        ("a.png", {}),
        ("a.jpe", {"format": "JPEG", "quality": 95}),
    ],
)
def test_common_formats_load(name: str, params: dict[str, object], tmp_path: Path) -> None:
    path = tmp_path / name
    Image.new("RGB", (30, 20), (20, 120, 220)).save(path, **params)
    out = load_strict(path)
    assert out.size == (30, 20)
    assert near(rgb_at(out, (15, 10)), (20, 120, 220), tol=3)


def test_gif_gives_first_frame(tmp_path: Path) -> None:
    path = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (16, 16), RED), Image.new("RGB", (16, 16), (0, 0, 255))]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    assert rgb_at(load_strict(path), (8, 8)) == RED


def test_lying_extensions_are_sniffed(tmp_path: Path) -> None:
    png_as_jpg = tmp_path / "really_png.jpg"
    Image.new("RGB", (10, 10), RED).save(png_as_jpg, format="PNG")
    jpg_as_png = tmp_path / "really_jpeg.png"
    jpg_as_png.write_bytes(jpeg_bytes(Image.new("RGB", (10, 10), RED)))

    assert rgb_at(load_strict(png_as_jpg), (5, 5)) == RED
    assert near(rgb_at(load_strict(jpg_as_png), (5, 5)), RED, tol=10)


def test_unicode_path(tmp_path: Path) -> None:
    folder = tmp_path / "données"
    folder.mkdir()
    path = folder / "produit_été_牛奶.jpg"
    path.write_bytes(jpeg_bytes(Image.new("RGB", (12, 12), RED)))
    assert load_strict(path).size == (12, 12)
    assert load_strict(str(path)).size == (12, 12)


# --- size handling ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "camera.jpg"
    Image.linear_gradient("L").resize((4000, 3000)).convert("RGB").save(path, quality=80)
    return path


def test_draft_mode_decodes_jpeg_at_reduced_scale(big_jpeg: Path) -> None:
    out = load_strict(big_jpeg, min_side=448)
    # 1000x750 is the 1/4 DCT scale; without draft, the thumbnail step would give 1195x896.
    assert out.size == (1000, 750)
    assert 448 <= min(out.size) <= 2 * 448


def test_full_resolution_when_min_side_is_none(big_jpeg: Path) -> None:
    assert load_strict(big_jpeg, min_side=None).size == (4000, 3000)


def test_non_jpeg_is_capped_at_twice_min_side(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    Image.new("RGB", (2000, 1000), RED).save(path)
    assert load_strict(path, min_side=448).size == (1792, 896)
    small = tmp_path / "small.png"
    Image.new("RGB", (300, 200), RED).save(small)
    assert load_strict(small, min_side=448).size == (300, 200)  # never enlarged


def test_min_side_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="min_side"):
        load_image(tmp_path / "whatever.jpg", min_side=0)


# --- failures ------------------------------------------------------------------------------


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.touch()
    assert "empty" in load_error(path).reason


def test_text_file_renamed_jpg(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("delivery notes, not a photo\n")
    assert load_error(path).reason == "not an image file"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file(fmt: str, tmp_path: Path) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    reason = load_error(path).reason
    assert "truncated" in reason or "damaged" in reason


def test_missing_file(tmp_path: Path) -> None:
    assert load_error(tmp_path / "gone.jpg").reason == "file not found"


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "looks_like.jpg"
    folder.mkdir()
    assert "folder" in load_error(folder).reason


def test_too_large_by_module_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "poster.png"
    Image.new("RGB", (100, 100), RED).save(path)
    monkeypatch.setattr(images, "MAX_PIXELS", 5_000)
    reason = load_error(path).reason
    assert "too large" in reason
    assert "0.01 megapixels" in reason


@pytest.mark.parametrize("side", [20_000, 30_000], ids=["over-limit", "over-twice-limit"])
def test_declared_size_bomb_is_refused(side: int, tmp_path: Path) -> None:
    # 400 MP trips Pillow's warning, 900 MP its error: both must become ImageLoadError.
    assert "too large" in load_error(png_with_declared_size(tmp_path, side, side)).reason


def test_declared_size_checked_against_module_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(images, "MAX_PIXELS", 1_000_000)
    reason = load_error(png_with_declared_size(tmp_path, 2000, 1000)).reason
    assert reason == "image is too large (2 megapixels; limit 1)"


def test_error_pickles() -> None:
    err = ImageLoadError(Path("x/y.jpg"), "file not found")
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.path, copy.reason, str(copy)) == (err.path, err.reason, "y.jpg: file not found")


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to count handles")
def test_no_file_handles_left_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = tmp_path / "good.jpg"
    good.write_bytes(jpeg_bytes(Image.new("RGB", (50, 50), RED)))
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(good.read_bytes()[:300])
    text = tmp_path / "text.jpg"
    text.write_text("hello")
    bomb = png_with_declared_size(tmp_path, 20_000, 20_000)

    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        load_strict(good)
        for bad in (cut, text, bomb):
            with pytest.raises(ImageLoadError):
                load_strict(bad)
        monkeypatch.setattr(images, "MAX_PIXELS", 10)
        with pytest.raises(ImageLoadError):
            load_strict(good)
        monkeypatch.undo()
    assert len(os.listdir("/proc/self/fd")) == before


# --- encoder pre-processing ------------------------------------------------------------------


def test_letterbox_pads_with_white() -> None:
    out = to_square(Image.new("RGB", (200, 100), RED), 224)
    assert out.size == (224, 224)
    assert out.mode == "RGB"
    assert rgb_at(out, (112, 112)) == RED
    assert rgb_at(out, (0, 112)) == RED  # longer side fills the width
    for y in (0, 10, 55, 168, 223):
        assert rgb_at(out, (112, y)) == WHITE


def test_letterbox_custom_fill() -> None:
    out = to_square(Image.new("RGB", (50, 100), RED), 64, fill=(0, 0, 0))
    assert rgb_at(out, (0, 32)) == (0, 0, 0)
    assert rgb_at(out, (32, 32)) == RED


def test_crop_keeps_centre_without_padding() -> None:
    img = Image.new("RGB", (300, 100), (0, 0, 255))
    img.paste(RED, (90, 0, 210, 100))  # red covers the central square with a margin
    out = to_square(img, 224, mode="crop")
    assert out.size == (224, 224)
    assert np.all(np.asarray(out) == RED)  # only the centre, no white padding anywhere


def test_to_square_rejects_unknown_mode() -> None:
    with pytest.raises(ValueError, match="mode"):
        to_square(Image.new("RGB", (10, 10)), 32, mode="stretch")


def test_to_tensor_layout_and_scaling() -> None:
    imgs = [Image.new("RGB", (8, 8), WHITE), Image.new("RGB", (8, 8), (0, 0, 0))]
    out = to_tensor(imgs, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    assert out.shape == (2, 3, 8, 8)
    assert out.dtype == np.float32
    assert out.flags.c_contiguous
    assert np.all(out[0] == 1.0)
    assert np.all(out[1] == -1.0)


def test_to_tensor_channel_order_and_imagenet_stats() -> None:
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    out = to_tensor([Image.new("RGB", (4, 4), (255, 0, 0))], mean, std)
    expected = [(1 - mean[0]) / std[0], -mean[1] / std[1], -mean[2] / std[2]]
    assert np.allclose(out[0, :, 2, 2], expected, atol=1e-5)


def test_to_tensor_rejects_mixed_sizes() -> None:
    with pytest.raises(ValueError, match="one size"):
        to_tensor([Image.new("RGB", (8, 8)), Image.new("RGB", (9, 8))], (0, 0, 0), (1, 1, 1))


def test_make_thumbnail_is_a_copy() -> None:
    img = Image.new("RGB", (1000, 500), RED)
    thumb = make_thumbnail(img, 256)
    assert thumb.size == (256, 128)
    assert img.size == (1000, 500)
    assert make_thumbnail(Image.new("RGB", (100, 50)), 256).size == (100, 50)


# --- folder scanning -------------------------------------------------------------------------


def test_iter_image_files(tmp_path: Path) -> None:
    for rel in [
        "b.jpg",
        "A.JPG",
        "sub/c.png",
        "sub/deeper/d.HEIC",
        "sub/notes.txt",
        ".hidden.jpg",
        ".cache/e.jpg",
        "z.webp",
        "noext",
    ]:
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")

    found = [p.relative_to(tmp_path).as_posix() for p in iter_image_files(tmp_path)]

    assert found == ["A.JPG", "b.jpg", "sub/c.png", "sub/deeper/d.HEIC", "z.webp"]
    assert list(iter_image_files(tmp_path)) == list(iter_image_files(tmp_path))
    flat = [p.name for p in iter_image_files(tmp_path, recursive=False)]
    assert flat == ["A.JPG", "b.jpg", "z.webp"]
    # Links to themselves (with and without an image suffix) are skipped, not the whole scan.
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "loop.jpg").symlink_to(tmp_path / "loop.jpg")
    again = [p.relative_to(tmp_path).as_posix() for p in iter_image_files(tmp_path)]
    assert again == found
    # A library kept among the photos: its thumbnails and backups are not photos; a folder
    # merely named "thumbs" elsewhere still is.
    for rel in [
        "stick/shopmatch.db",
        "stick/thumbs/ab/x.jpg",
        "stick/backups/y.png",
        "stick/shelf.jpg",
        "other/thumbs/z.jpg",
    ]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    assert [
        p.relative_to(tmp_path / "stick").as_posix() for p in iter_image_files(tmp_path / "stick")
    ] == ["shelf.jpg"]
    assert (tmp_path / "other/thumbs/z.jpg") in list(iter_image_files(tmp_path))


def test_image_suffixes_are_lower_case_with_dot() -> None:
    assert all(s.startswith(".") and s == s.lower() for s in IMAGE_SUFFIXES)
    assert {".jpg", ".heic", ".avif", ".tiff"} <= IMAGE_SUFFIXES


def test_huge_transparent_png_is_shrunk_before_it_is_copied(tmp_path: Path) -> None:
    """Formats without draft mode decode at full size; the copy made for the mode conversion
    is now taken of a box-reduced image (a 250-MP RGBA PNG peaked at 2.9 GB, now 1.9 GB). The
    result is the same: shorter side capped, alpha composited on white, colours kept."""
    from PIL import ImageDraw

    big = Image.new("RGBA", (3600, 2400), (0, 0, 0, 0))
    ImageDraw.Draw(big).rectangle((900, 600, 2700, 1800), fill=(200, 30, 30, 255))
    path = tmp_path / "big.png"
    big.save(path)
    img = load_image(path, min_side=448)
    assert img.mode == "RGB" and min(img.size) == 896
    assert img.getpixel((5, 5)) == (255, 255, 255)
    assert img.getpixel((img.width // 2, img.height // 2)) == (200, 30, 30)
