"""Small JPEG previews of catalog images and photos, stored by content hash.

The UI shows hundreds of these; decoding 12-MP originals for each would be far too slow.
Keyed by content hash, so duplicates share one file and a re-import never rewrites them.
"""

from __future__ import annotations

import functools
import io
import stat
from pathlib import Path

from PIL import Image

from engine.atomic import atomic_write_bytes
from engine.images import make_thumbnail
from engine.manifest import file_sha256

THUMB_SIDE = 256


def thumbnail_path(root: Path, sha256: str) -> Path:
    return Path(root) / sha256[:2] / f"{sha256}.jpg"


def readable_source(
    root: Path, path: str | Path, sha256: str, size: int = 0, mtime: float = 0.0
) -> Path | None:
    """The original file while it still holds this content, else its thumbnail under
    ``root``, else None. Originals move, and a phone's next photo may take a confirmed
    photo's file name: that picture must not be embedded or learnt as the confirmed one.
    ``size``/``mtime`` as recorded at import spare the hash of an untouched file."""
    original, thumb = Path(path), thumbnail_path(root, sha256)
    if _holds(original, sha256, size, mtime):
        return original
    return thumb if thumb.is_file() else None


def _holds(path: Path, sha256: str, size: int, mtime: float) -> bool:
    try:
        st = path.stat()
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode):
        return False
    if size and st.st_size == size and st.st_mtime == mtime:
        return True  # as it was when imported
    try:
        return _content_hash(str(path), st.st_size, st.st_mtime_ns) == sha256
    except OSError:
        return False


@functools.lru_cache(maxsize=1 << 16)
def _content_hash(path: str, size: int, mtime_ns: int) -> str:
    """A file's hash, remembered while its size and time stay (a model switch, then a
    training run, would hash every confirmed photo again)."""
    return file_sha256(Path(path))


def save_thumbnail(root: Path, sha256: str, img: Image.Image) -> Path:
    """Write the thumbnail once; an existing one (same content hash) is kept."""
    path = thumbnail_path(root, sha256)
    if not path.exists():
        buf = io.BytesIO()
        make_thumbnail(img, THUMB_SIDE).convert("RGB").save(buf, "JPEG", quality=85)
        atomic_write_bytes(path, buf.getvalue())
    return path
