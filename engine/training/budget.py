"""What one training run may cost, and about how long it takes (torch-free, for dialogs).

Why a budget: the feature cache keeps every training view's trunk output in memory (73 KB a
view at 288 px) and every epoch visits every view, so without one both grow with the
library: a shop with 1,000 products and 5,000 confirmations would train for over an hour
and hold 2 GB. The budget keeps any run near what the grocery dev set costs (6,186 views:
15-17 minutes of training on the 2-core reference machine, about 19 with the gate's
embedding). When a library outgrows it, confirmed photos (real shop photos, which teach
more) keep up to half of it; the catalog's simulated phone photos shrink to fit the rest,
down to two views per image; photos then fill what the catalog leaves, every SKU keeping its
most recent ones. Only a catalog that needs more than half the budget at two views per image
takes a run over it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from engine.training import TORCH_PRELOADED
from engine.training.options import (
    CATALOG_CHECK_MAX,
    HOLDOUT_MAX,
    HOLDOUT_SHARE,
    STAGE_CACHE,
    STAGE_COMPARE,
    STAGE_EMBED,
    STAGE_TRAIN,
    TRAIN_INPUT_SIZE,
)

# TrainConfig's defaults for what decides the duration (here so the estimate needs no torch).
CATALOG_VIEWS = 16  # clean + simulated phone photos per catalog image
PHOTO_VIEWS = 2  # clean + mild jitters per confirmed photo
EPOCHS = 3  # of the first member
MEMBERS = 2
MEMBER_EPOCHS = 2  # of every member after the first
MAX_VIEWS = 6400  # the grocery dev set (6,186 views) fits
MIN_CATALOG_VIEWS = 2  # the clean image and one simulated photo, whatever the catalog's size

# Seconds on the 2-core reference machine at 288 px, from bench/bench_learning.py (two-member
# run: cache 166 s of 6,186 views, 876 s for 5 member-epochs (0.0283 s a view each); 102 s
# to embed ~2,800 reference images with the candidate), rounded.
SECONDS_PER_VIEW_PASS = 0.028  # one view through the trunk (cache) or one member-epoch
SECONDS_PER_REFERENCE = 0.036  # one reference image embedded with the candidate (the gate)
# Those were measured with two threads. The app trains on all cores but one (one stays with
# matching), so on two cores on one: the demo library (83 catalog images, 40 photos) then
# took 354 s in the app against 239 s estimated for two threads, 1.48x = (2 / 1) ** 0.57.
REFERENCE_THREADS = 2
THREAD_SCALING = 0.57


@dataclass(frozen=True)
class ViewPlan:
    catalog_views: int  # per catalog image
    photos: int  # confirmed photos kept (``photo_views`` each)
    views: int  # in all


def plan_views(
    n_catalog: int,
    n_photos: int,
    *,
    catalog_views: int = CATALOG_VIEWS,
    photo_views: int = PHOTO_VIEWS,
    max_views: int = MAX_VIEWS,
) -> ViewPlan:
    """Views per catalog image and photos kept so the run stays within ``max_views`` (0: no
    limit): photos keep up to half of it, the catalog's views shrink to fit the rest (not
    below ``MIN_CATALOG_VIEWS`` each, so a catalog too big for that goes over), and photos
    fill what the catalog leaves."""
    if not max_views or n_catalog * catalog_views + n_photos * photo_views <= max_views:
        return ViewPlan(catalog_views, n_photos, n_catalog * catalog_views + n_photos * photo_views)
    photo_share = min(n_photos * photo_views, max_views // 2)
    per_image = (max_views - photo_share) // max(1, n_catalog)
    cv = min(catalog_views, max(MIN_CATALOG_VIEWS, per_image))
    room = max(max_views - n_catalog * cv, photo_share) // photo_views
    kept = min(n_photos, room)
    return ViewPlan(cv, kept, n_catalog * cv + kept * photo_views)


def member_epochs_total(
    epochs: int = EPOCHS, members: int = MEMBERS, member_epochs: int = MEMBER_EPOCHS
) -> int:
    """Epochs summed over the members: what the training loop costs in passes over the views."""
    return epochs + (members - 1) * min(epochs, member_epochs)


def training_photos(n_confirmed: int) -> int:
    """About how many of ``n_confirmed`` confirmations a run trains on (the rest are held out
    for the gate; see data.stratified_split)."""
    return n_confirmed - min(HOLDOUT_MAX, round(n_confirmed * HOLDOUT_SHARE))


def stage_seconds(
    n_catalog: int,
    n_photos: int,
    n_references: int,
    *,
    input_size: int = TRAIN_INPUT_SIZE,
    catalog_views: int = CATALOG_VIEWS,
    photo_views: int = PHOTO_VIEWS,
    max_views: int = MAX_VIEWS,
    epochs_total: int | None = None,
) -> list[tuple[str, float]]:
    """A run's stages in order, each with its seconds on the reference machine (two threads):
    the feature cache, the epochs (``epochs_total``: summed over the members, the default
    run's if None), the embedding of ``n_references`` reference images, and the comparison,
    which counts the catalog self-check that its caller embeds just before it (simulated
    photos, with the candidate and with the active model) without reporting progress."""
    plan = plan_views(
        n_catalog,
        n_photos,
        catalog_views=catalog_views,
        photo_views=photo_views,
        max_views=max_views,
    )
    pixels = (input_size / TRAIN_INPUT_SIZE) ** 2
    view_pass = plan.views * SECONDS_PER_VIEW_PASS * pixels
    epochs = member_epochs_total() if epochs_total is None else epochs_total
    checks = min(n_catalog, CATALOG_CHECK_MAX)
    return [
        (STAGE_CACHE, view_pass),
        (STAGE_TRAIN, view_pass * epochs),
        (STAGE_EMBED, n_references * SECONDS_PER_REFERENCE * pixels),
        (STAGE_COMPARE, 1.0 + 2 * checks * SECONDS_PER_REFERENCE * pixels),
    ]


def threads_for(requested: int) -> int:
    """Threads a run trains with: ``requested``, or (0) all cores, unless torch's OpenMP may
    spin-wait on busy cores. Torch-free, so the run's time-left plan counts the same."""
    if requested:
        return requested
    cores = max(1, min(os.cpu_count() or 1, 8))
    passive = os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE"
    if not passive or TORCH_PRELOADED:
        busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        if busy > 0.5 * cores:
            return 1
    return cores


def thread_pace(threads: int) -> float:
    """How many seconds a reference-machine second takes with ``threads`` cores."""
    return (REFERENCE_THREADS / max(1, threads)) ** THREAD_SCALING


def estimate_seconds(
    n_catalog: int,
    n_confirmed: int,
    n_references: int,
    *,
    threads: int = REFERENCE_THREADS,
    input_size: int = TRAIN_INPUT_SIZE,
) -> float:
    """Rough duration of a default run on ``threads`` cores as fast as the reference
    machine's, before it starts (during the run, progress.RunClock measures instead)."""
    stages = stage_seconds(
        n_catalog, training_photos(n_confirmed), n_references, input_size=input_size
    )
    return sum(seconds for _, seconds in stages) * thread_pace(threads)
