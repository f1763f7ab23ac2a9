"""Training data from a library: catalog images and confirmed photos, one class per SKU.

Confirmed photos come from the live decisions (not from instant-memory rows), so learning
works whether or not instant memory is on, and an undone confirmation is never learnt.
A stratified share of the confirmed photos is held out for the gate and never trained on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image

from engine.images import load_image
from engine.thumbnails import readable_source
from engine.training.options import HOLDOUT_MAX, HOLDOUT_SHARE

if TYPE_CHECKING:
    from engine.library import Library


@dataclass(frozen=True)
class Sample:
    """One image with its SKU. ``ref_id`` is a catalog_images id ('catalog') or a photos id
    ('photo')."""

    source: Path
    sku: str
    kind: str
    ref_id: int

    def load(self, input_size: int) -> Image.Image:
        """Decode at reduced scale, as the encoder does: training needs ~input_size pixels."""
        return load_image(self.source, min_side=2 * input_size)


@dataclass
class TrainingSet:
    skus: list[str]  # class index -> SKU
    catalog: list[Sample]
    photos: list[Sample]  # confirmed photos used for training
    heldout: list[Sample]  # confirmed photos kept for the gate
    missing: list[str] = field(default_factory=list)  # unreadable sources, skipped
    confirmations: int = 0  # live confirmations when the data was read (readable or not)
    # The latest decision then: confirmations made after it are new to the model trained.
    decided_up_to: int = 0

    @property
    def class_of(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.skus)}


def _own_share(n: int, fraction: float) -> int:
    """How many of a SKU's ``n`` photos are held out on its own: at least one stays."""
    return min(int(n * fraction + 0.5), n - 1) if n > 1 else 0


def heldout_count(
    sizes: Iterable[int], fraction: float = HOLDOUT_SHARE, max_total: int | None = HOLDOUT_MAX
) -> int:
    """How many photos :func:`stratified_split` holds out of SKUs with ``sizes`` photos each,
    without reading them: the app says beforehand whether a run could prove a model."""
    sizes = list(sizes)
    total = sum(sizes)
    if max_total is not None:
        fraction = min(fraction, max_total / max(1, total))
    held = sum(_own_share(n, fraction) for n in sizes)
    spare = sum(1 for n in sizes if n > 1 and _own_share(n, fraction) == 0)
    return held + max(0, min(spare, int(total * fraction + 0.5) - held))


def stratified_split(
    photos: list[Sample], fraction: float, max_total: int | None = None
) -> tuple[list[Sample], list[Sample]]:
    """(train, held-out): the most recent ``fraction`` of each SKU's photos held out, at
    least one kept for training, none held out from a SKU with a single photo; with
    ``max_total``, the fraction shrinks so that about that many are held out in all. SKUs
    too small for a share of their own give their newest photo until ``fraction`` of all
    photos is held out.

    Most recent rather than random: staff shoot a delivery in bursts, so a random pick puts
    near-duplicates of held-out photos in training and every model looks perfect (on the
    grocery set a random split gave both models a held-out MRR near 0.99). The newest
    photos are also the best stand-in for the next delivery.
    """
    if max_total is not None:
        fraction = min(fraction, max_total / max(1, len(photos)))
    by_sku: dict[str, list[Sample]] = defaultdict(list)
    for s in photos:
        by_sku[s.sku].append(s)
    train: list[Sample] = []
    held: list[Sample] = []
    spare: list[Sample] = []  # the newest photo of a SKU with 2 or 3, which held none
    for sku in sorted(by_sku):
        group = sorted(by_sku[sku], key=lambda s: s.ref_id)  # ids grow with time
        k = _own_share(len(group), fraction)
        if k == 0 and len(group) > 1:
            spare.append(group[-1])
        train.extend(group[: len(group) - k])
        held.extend(group[len(group) - k :])
    # Many products with two or three photos each (a shop's usual start) held out nothing
    # per SKU, and the gate refused every model for want of held-out photos: their newest
    # photos, most recent first, make up the share.
    want = int(len(photos) * fraction + 0.5)
    if len(held) < want and spare:
        topped = {id(s) for s in sorted(spare, key=lambda s: -s.ref_id)[: want - len(held)]}
        held.extend(s for s in spare if id(s) in topped)
        train = [s for s in train if id(s) not in topped]
    return train, held


def collect(lib: Library, holdout: float = HOLDOUT_SHARE) -> TrainingSet:
    """Catalog images (origin 'catalog') and live-confirmed photos, split for the gate."""
    from engine.decisions import effective_states

    missing: list[str] = []
    catalog: list[Sample] = []
    decided_up_to = int(lib.db.execute("SELECT coalesce(max(id), 0) FROM decisions").fetchone()[0])
    for image_id, sku, path, sha, size, mtime in lib.db.execute(
        "SELECT id, sku, path, sha256, size, mtime FROM catalog_images "
        "WHERE origin = 'catalog' ORDER BY id"
    ):
        src = readable_source(lib.thumbs_dir, path, sha, size, mtime)
        if src is None:
            missing.append(path)
        else:
            catalog.append(Sample(src, sku, "catalog", int(image_id)))
    photos: list[Sample] = []
    withdrawn = {
        sku for (sku,) in lib.db.execute("SELECT sku FROM products WHERE withdrawn_at IS NOT NULL")
    }
    confirmed = {
        pid: d.sku for pid, d in effective_states(lib).items() if d.action == "confirm" and d.sku
    }
    for pid, path, sha in lib.db.execute("SELECT id, path, sha256 FROM photos ORDER BY id"):
        sku = confirmed.get(int(pid))
        if sku is None or sku in withdrawn:  # left the catalog: never suggested, not learnt
            continue
        src = readable_source(lib.thumbs_dir, path, sha)
        if src is None:
            missing.append(path)
        else:
            photos.append(Sample(src, sku, "photo", int(pid)))
    train, held = stratified_split(photos, holdout, max_total=HOLDOUT_MAX)
    skus = sorted({s.sku for s in catalog} | {s.sku for s in photos})
    return TrainingSet(
        skus,
        catalog,
        train,
        held,
        missing,
        confirmations=len(confirmed),
        decided_up_to=decided_up_to,
    )
