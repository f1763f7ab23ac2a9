"""The one image loader for catalog images and shop photos, plus the encoder's pre-processing.

Both sides of a match must go through the same decoding, or the embeddings drift apart: a photo
shown sideways (EXIF), a washed-out Display-P3 shot, a transparent PNG on black, or a 16-bit scan
clipped to white all look like different products to the encoder. Everything here returns plain
8-bit sRGB so the rest of the engine never has to think about file formats.

Failures are reported as :class:`ImageLoadError` with a reason a shop assistant can act on,
never as a raw Pillow traceback or a half-decoded image.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import stat
import struct
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from engine.db import DB_NAME

__all__ = [
    "IMAGE_SUFFIXES",
    "MAX_PIXELS",
    "PICTURE_KINDS",
    "ImageLoadError",
    "check_file",
    "iter_image_files",
    "load_image",
    "make_thumbnail",
    "name_problem",
    "printable",
    "register_heif",
    "to_square",
    "to_tensor",
]

# In a folder of pictures ShopMatch saved from a supplier's workbook (engine.sheet_pictures).
WORKBOOK_PICTURES_MARKER = ".shopmatch-pictures"
MAX_PIXELS: int = 250_000_000
"""Decompression-bomb limit, in pixels of the file as stored (read at call time)."""

PICTURE_KINDS = "JPEG, PNG, WebP, HEIC, AVIF, TIFF, BMP or GIF"
"""The picture files looked for, as a message names them."""

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {
        ".jpg",
        ".jpeg",
        ".jpe",
        ".png",
        ".webp",
        ".bmp",
        ".gif",
        ".tif",
        ".tiff",
        ".heic",
        ".heif",
        ".avif",
    }
)

# Pillow's own guard (89 MP by default) would reject legitimate 100-250 MP scans before our limit
# is consulted. Raise it to ours, never lower or disable it: it stays a backstop that warns above
# MAX_PIXELS and fails above twice that, and load_image turns both into ImageLoadError.
if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < MAX_PIXELS:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS

_WHITE = (255, 255, 255)
_GRAY16_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
_ICC_MODES = frozenset({"RGB", "RGBA", "L", "CMYK"})
_SRGB = ImageCms.createProfile("sRGB")
# LANCZOS after an integer box reduction (reducing_gap=2) is visually identical to plain LANCZOS
# (mean abs difference < 0.5 grey level) and ~2.4x faster: ~6 ms vs ~15 ms for 1195x896 -> 224.
_RESAMPLE = Image.Resampling.LANCZOS
_REDUCING_GAP = 2.0


class ImageLoadError(Exception):
    """A file that cannot be used as an image; ``reason`` is short and non-technical."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path.name}: {reason}")

    def __reduce__(self) -> tuple[type[ImageLoadError], tuple[Path, str]]:
        # Keeps the error picklable, so it survives a trip back from a worker process.
        return (type(self), (self.path, self.reason))


@functools.cache
def _register_heif_once() -> bool:
    try:
        import pillow_heif
    except ImportError:  # a build without it reports HEIC files as "unsupported image format"
        return False
    pillow_heif.register_heif_opener()
    # Pillow >= 11.2 reads AVIF itself; only older pillow_heif builds still offer an AVIF opener.
    if ".avif" not in Image.registered_extensions() and hasattr(
        pillow_heif, "register_avif_opener"
    ):
        pillow_heif.register_avif_opener()
    return True


# Modes Image.reduce takes; a palette image is reduced after its conversion instead.
_REDUCIBLE_MODES = frozenset({"L", "LA", "RGB", "RGBA", "CMYK"})


def register_heif() -> None:
    """Let Pillow open iPhone HEIC/HEIF (and AVIF where Pillow cannot); safe to call repeatedly."""
    _register_heif_once()


def load_image(path: str | Path, min_side: int | None = 448) -> Image.Image:
    """Open any supported image and return an 8-bit RGB PIL image, upright (EXIF applied),
    colour-managed to sRGB, alpha composited on white.

    If ``min_side`` is given, JPEGs are decoded at reduced scale with Pillow draft mode (HEIF
    may use an embedded thumbnail) so that the shorter side stays >= ``min_side``, and any image
    is then downscaled (thumbnail, keep aspect) so its shorter side is at most ``2 * min_side``:
    the encoder only needs ~224 px and a full 12 MP decode costs several times more.
    ``min_side=None`` decodes at full resolution.

    Raises :class:`ImageLoadError` for anything that is not a complete, usable image.
    """
    path = Path(path)
    if min_side is not None and min_side < 1:
        raise ValueError(f"min_side must be positive or None, got {min_side}")
    check_file(path)
    register_heif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                _check_pixels(path, im.size)
                if min_side is not None:
                    im.draft(None, (min_side, min_side))  # no-op for formats without it
                im.load()  # inside the with: a decode error must not leave the file open
                _apply_exif_orientation(im)
                img = _working_copy(_reduced(im, min_side))
        if min_side is not None:
            _cap_shorter_side(img, 2 * min_side)
        return _flatten_to_rgb(_to_srgb(img))
    except (
        OSError,
        SyntaxError,
        EOFError,
        ValueError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        # A damaged chunk length makes Pillow's PNG reader ask for up to 2 GB at once
        # (tests/test_hostile_input.py found it under a memory cap): one bad file, not a crash.
        MemoryError,
    ) as exc:
        raise ImageLoadError(path, _reason(path, exc)) from exc


def to_square(
    img: Image.Image,
    size: int,
    mode: str = "letterbox",
    fill: tuple[int, int, int] = _WHITE,
) -> Image.Image:
    """Return a ``size`` x ``size`` RGB image for the encoder.

    'letterbox' scales the longer side to ``size`` and pads with ``fill``: the whole product
    stays visible with its true proportions, which matters more than filling every pixel.
    'crop' scales the shorter side to ``size`` and centre-crops. Written with ``resize`` rather
    than ImageOps.pad/fit because only ``resize`` takes ``reducing_gap`` (2.4x faster).
    """
    if mode not in ("letterbox", "crop"):
        raise ValueError(f"unknown to_square mode {mode!r}; use 'letterbox' or 'crop'")
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    if img.mode != "RGB":
        img = img.convert("RGB")
    width, height = img.size
    if mode == "crop":
        side = min(width, height)
        left, top = (width - side) / 2, (height - side) / 2
        box = (left, top, left + side, top + side)
        return img.resize((size, size), _RESAMPLE, box=box, reducing_gap=_REDUCING_GAP)
    scale = size / max(width, height)
    new_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = img.resize(new_size, _RESAMPLE, reducing_gap=_REDUCING_GAP)
    canvas = Image.new("RGB", (size, size), fill)
    canvas.paste(resized, ((size - new_size[0]) // 2, (size - new_size[1]) // 2))
    return canvas


def to_tensor(
    imgs: Sequence[Image.Image], mean: Sequence[float], std: Sequence[float]
) -> np.ndarray:
    """Stack same-size RGB images into contiguous float32 NCHW, scaled ``(x/255 - mean)/std``."""
    if len(imgs) == 0:
        raise ValueError("to_tensor needs at least one image")
    if len(mean) != 3 or len(std) != 3:
        raise ValueError("mean and std need one value per RGB channel")
    size = imgs[0].size
    if any(im.size != size for im in imgs):
        raise ValueError("to_tensor needs images of one size; run to_square first")
    batch = np.stack([np.asarray(im if im.mode == "RGB" else im.convert("RGB")) for im in imgs])
    # One pass to transpose and widen to float32; the arithmetic then runs in place.
    out = np.ascontiguousarray(batch.transpose(0, 3, 1, 2), dtype=np.float32)
    out /= 255.0
    out -= np.asarray(mean, dtype=np.float32).reshape(1, 3, 1, 1)
    out /= np.asarray(std, dtype=np.float32).reshape(1, 3, 1, 1)
    return out


def make_thumbnail(img: Image.Image, max_side: int = 256) -> Image.Image:
    """Return a copy that fits in ``max_side`` x ``max_side`` (aspect kept, never enlarged)."""
    thumb = img.copy()
    thumb.thumbnail((max_side, max_side), _RESAMPLE, reducing_gap=_REDUCING_GAP)
    return thumb


def iter_image_files(folder: Path, recursive: bool = True) -> Iterator[Path]:
    """Sorted, deterministic walk yielding files whose suffix (case-insensitive) is in
    IMAGE_SUFFIXES; skips hidden files/folders (name starting with '.').

    Also skips Windows hidden/system entries ($RECYCLE.BIN on USB sticks holds deleted photos)
    and does not follow folder symlinks (no loops), nor the folders a ShopMatch library keeps
    (thumbnails, backups) when one lives among the images. Unreadable sub-folders are skipped
    so one locked folder does not abort a catalog scan; an unreadable ``folder`` itself raises
    OSError.
    """
    yield from _walk(Path(folder), recursive, top=True)


# --- helpers -------------------------------------------------------------------------------


def name_problem(path: Path) -> str | None:
    """Why a file cannot be kept under this name, or None: a name that is not valid text
    (Latin-1 bytes from an old zip or a Windows share, which Python reads as lone
    surrogates) cannot be stored in the library's database, and stopped a whole batch."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        pass
    else:
        return None
    try:
        path.name.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid text (not UTF-8): rename it"
    return "the name of its folder is not valid text (not UTF-8): rename the folder"


def printable(path: Path | str) -> str:
    """A path as it can be printed and shown: bytes that are not UTF-8 as ``\\xe4``."""
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        pass
    else:
        return text
    try:  # the bytes the name was made of, where Python read them from the disk
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate of another origin (Windows)
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def check_file(path: Path) -> None:
    """Raise ImageLoadError for what is not a readable, non-empty regular file, before anything
    opens it: Pillow reports 0 bytes confusingly, and reading a pipe would block forever.
    A name that is not valid text is refused too (see ``name_problem``)."""
    if (problem := name_problem(path)) is not None:
        raise ImageLoadError(path, problem)
    try:
        st = path.stat()
    except (FileNotFoundError, NotADirectoryError):
        raise ImageLoadError(path, "file not found") from None
    except PermissionError:
        raise ImageLoadError(path, "no permission to read the file") from None
    except OSError as exc:
        raise ImageLoadError(path, "the file cannot be read") from exc
    if stat.S_ISDIR(st.st_mode):
        raise ImageLoadError(path, "this is a folder, not an image file")
    if not stat.S_ISREG(st.st_mode):  # a pipe or device would block or never end
        raise ImageLoadError(path, "not an image file")
    if st.st_size == 0:
        raise ImageLoadError(path, "empty file (0 bytes)")


def _megapixels(pixels: int) -> str:
    mp = pixels / 1_000_000
    return f"{mp:.0f}" if mp >= 10 else f"{mp:.2g}"


def _check_pixels(path: Path, size: tuple[int, int]) -> None:
    pixels = size[0] * size[1]
    if pixels > MAX_PIXELS:
        size_mp, limit_mp = _megapixels(pixels), _megapixels(MAX_PIXELS)
        raise ImageLoadError(path, f"image is too large ({size_mp} megapixels; limit {limit_mp})")


def _reason(path: Path, exc: BaseException) -> str:
    if isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning):
        return f"image is too large (limit {_megapixels(MAX_PIXELS)} megapixels)"
    if isinstance(exc, MemoryError):
        return "not enough memory to open this image (it may be damaged)"
    if isinstance(exc, UnidentifiedImageError):
        suffix = path.suffix.lower()
        if suffix in IMAGE_SUFFIXES and suffix not in Image.registered_extensions():
            return "unsupported image format"  # e.g. HEIC in a build without pillow_heif
        return "not an image file"
    if isinstance(exc, FileNotFoundError):  # deleted between the checks and the read
        return "file not found"
    if isinstance(exc, PermissionError):
        return "no permission to read the file"
    message = str(exc).lower()
    if isinstance(exc, OSError) and ("not available" in message or "unsupported" in message):
        return "unsupported image format"  # a variant whose decoder this build lacks
    return "image data is truncated or damaged"


def _apply_exif_orientation(im: Image.Image) -> None:
    # A corrupt EXIF block must not cost a good photo. In place, the rotation is already done
    # when Pillow fails while rewriting the metadata afterwards, so the image stays upright.
    with contextlib.suppress(struct.error, TypeError, ValueError, SyntaxError, OSError):
        ImageOps.exif_transpose(im, in_place=True)


def _reduced(im: Image.Image, min_side: int | None) -> Image.Image:
    """A huge decoded image shrunk by a whole factor before any copy of it is made.

    Why: formats without draft mode (PNG, TIFF, WebP) decode at full size, and the mode
    conversion that follows copied all of it: a 250-MP RGBA PNG peaked at 3 GB. Box
    reduction keeps the shorter side at least twice ``min_side``, as the cap after it does.
    """
    if min_side is None or im.mode not in _REDUCIBLE_MODES or "transparency" in im.info:
        return im  # (a colour key would be averaged away)
    factor = min(im.size) // (2 * min_side)
    return im.reduce(factor) if factor >= 2 else im


def _working_copy(im: Image.Image) -> Image.Image:
    """Return a new image in RGB, RGBA, L or CMYK, detached from the file (closing it kills it)."""
    if im.mode in _GRAY16_MODES:
        # convert("L") clips 16-bit values at 255, turning nearly everything white; rescale.
        out = im.convert("I").point(lambda v: v / 257 + 0.5).convert("L")
        out.info.pop("transparency", None)  # a 16-bit colour key means nothing in 8 bits
    elif im.has_transparency_data:
        out = im.convert("RGBA")  # P/L/RGB colour keys, LA, PA: all become one alpha channel
    elif im.mode in _ICC_MODES:
        out = im.copy()
    else:
        out = im.convert("RGB")  # 1, P, YCbCr, LAB, F, ...
    return out


def _cap_shorter_side(img: Image.Image, cap: int) -> None:
    width, height = img.size
    if min(width, height) > cap:
        # The unconstrained axis keeps its own length, so thumbnail() fits the shorter side.
        img.thumbnail((cap, height) if width <= height else (width, cap))


@functools.lru_cache(maxsize=16)
def _srgb_transform(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """Transform from an embedded profile to sRGB; None when it already is sRGB.

    Cached because phones embed the same profile in every photo (building costs ~5 ms), and the
    sRGB case is skipped because a no-op transform still costs ~25 ms per megapixel.
    """
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    if "srgb" in (profile.profile.profile_description or "").lower():
        return None
    out_mode = "RGBA" if mode == "RGBA" else "RGB"
    return ImageCms.buildTransform(profile, _SRGB, mode, out_mode, ImageCms.Intent.PERCEPTUAL)


def _to_srgb(img: Image.Image) -> Image.Image:
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in _ICC_MODES:
        return img
    try:
        transform = _srgb_transform(bytes(icc), img.mode)
        return img if transform is None else transform.apply(img)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return img  # broken or mismatched profile: the pixels are still better than nothing


def _flatten_to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGBA":
        # White, not black: catalog cut-outs sit on white, and so should their query photos.
        canvas = Image.new("RGB", img.size, _WHITE)
        canvas.paste(img, mask=img.getchannel("A"))
        return canvas
    return img if img.mode == "RGB" else img.convert("RGB")


def _is_hidden(entry: os.DirEntry[str]) -> bool:
    if entry.name.startswith("."):
        return True
    if sys.platform == "win32":  # DirEntry.stat() is free there: it comes with the listing
        attributes = getattr(entry.stat(follow_symlinks=False), "st_file_attributes", 0)
        return bool(attributes & (stat.FILE_ATTRIBUTE_HIDDEN | stat.FILE_ATTRIBUTE_SYSTEM))
    return False


# What marks a folder as a library, and the folders it manages.
LIBRARY_MARKER = DB_NAME
LIBRARY_FOLDERS = frozenset({"thumbs", "models", "index", "backups"})


def _walk(folder: Path, recursive: bool, top: bool) -> Iterator[Path]:
    try:
        with os.scandir(folder) as listing:
            # casefold first so the order is the same on case-sensitive and -insensitive disks
            entries = sorted(listing, key=lambda e: (e.name.casefold(), e.name))
    except OSError:
        if top:
            raise
        return
    # A ShopMatch library kept among the photos (a USB stick holding both): its thumbnails
    # and backups are not photos, and matching them grew the photo list at every run.
    in_library = any(e.name == LIBRARY_MARKER for e in entries)
    # The pictures ShopMatch saved from a workbook belong to that workbook's rows: found by
    # SKU besides, a picture the supplier took out stayed in the catalog.
    if not top and any(e.name == WORKBOOK_PICTURES_MARKER for e in entries):
        from engine.sheet_pictures import read_manifest  # a folder moved is the shop's

        if read_manifest(folder) is not None:
            return
    for entry in entries:
        try:
            if _is_hidden(entry) or (in_library and entry.name in LIBRARY_FOLDERS):
                continue
            folder_here = entry.is_dir(follow_symlinks=False)
            image = (
                not folder_here
                and os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES
                and entry.is_file()
            )
        except OSError:  # a link to itself, or an entry that vanished: skip it, not the scan
            continue
        if folder_here:
            if recursive:
                yield from _walk(Path(entry.path), recursive, top=False)
        elif image:
            yield Path(entry.path)
