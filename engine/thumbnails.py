"""Small JPEG previews of catalog images and photos, stored by content hash.

The UI shows hundreds of these; decoding 12-MP originals for each would be far too slow.
Keyed by content hash, so duplicates share one file and a re-import never rewrites them.
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from engine.atomic import atomic_write_bytes
from engine.images import make_thumbnail

THUMB_SIDE = 256


def thumbnail_path(root: Path, sha256: str) -> Path:
    return Path(root) / sha256[:2] / f"{sha256}.jpg"


def readable_source(root: Path, path: str | Path, sha256: str) -> Path | None:
    """The original file, else its thumbnail under ``root`` (originals may have moved), else
    None."""
    original, thumb = Path(path), thumbnail_path(root, sha256)
    return original if original.is_file() else thumb if thumb.is_file() else None


def save_thumbnail(root: Path, sha256: str, img: Image.Image) -> Path:
    """Write the thumbnail once; an existing one (same content hash) is kept."""
    path = thumbnail_path(root, sha256)
    if not path.exists():
        buf = io.BytesIO()
        make_thumbnail(img, THUMB_SIDE).convert("RGB").save(buf, "JPEG", quality=85)
        atomic_write_bytes(path, buf.getvalue())
    return path
