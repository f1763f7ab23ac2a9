"""What the app shows when staff ask *why* a photo matched a catalog image.

The verified matching points of the local-feature stage, with both images loaded upright at
screen size, so the UI only draws: no SQL, no decoding, no OpenCV on the GUI thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from engine import overview
from engine.images import ImageLoadError, load_image

if TYPE_CHECKING:
    from engine.library import Library
    from engine.local_features import KeypointMatches

VIEW_SIDE = 480  # shorter side the images are decoded at: sharp on a laptop screen, cheap


@dataclass
class MatchView:
    """A photo, a catalog image and the matched points between them (0-1 fractions)."""

    photo: Image.Image | None
    catalog: Image.Image | None
    matches: KeypointMatches
    sku: str
    problem: str = ""  # why an image could not be shown, in plain words


def _catalog_image(lib: Library, image_id: int) -> tuple[str, Image.Image | None, str]:
    row = lib.db.execute("SELECT sku, path FROM catalog_images WHERE id = ?", [image_id]).fetchone()
    if row is None:
        raise KeyError(f"no catalog image with id {image_id}")
    sku, path = str(row[0]), Path(row[1])
    try:
        return sku, load_image(path, VIEW_SIDE), ""
    except ImageLoadError as exc:
        thumb = overview.image_thumbs(lib, [image_id]).get(image_id)
        if thumb is not None:  # the supplier folder moved: the stored thumbnail still shows it
            try:
                return sku, load_image(thumb, None), ""
            except ImageLoadError:
                pass
        return sku, None, f"the catalog image cannot be shown: {exc.reason}"


def match_view(lib: Library, photo: int | Path, image_id: int) -> MatchView:
    """Both images and the verified matching points between them (none if nothing verified)."""
    sku, catalog, problem = _catalog_image(lib, image_id)
    if isinstance(photo, int):  # resolved once here, not again inside local_matches
        records = overview.photo_records(lib, [photo])
        if photo not in records:
            raise KeyError(f"no photo with id {photo}")
        photo = records[photo].path
    matches = lib.local_matches(photo, image_id)
    try:
        shown = load_image(photo, VIEW_SIDE)
    except ImageLoadError as exc:
        shown, problem = None, f"the photo cannot be shown: {exc.reason}"
    return MatchView(shown, catalog, matches, sku, problem)
