"""Training and model switches read the right pictures and say what they used: a file name
reused by a later photo, a held-out photo moved while training, a confirmation made just
after a model switch, and a view budget that cuts photos (review 21's findings). Real
libraries, real ONNX models, generated images; small trainings."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import photo_of, product_image, write_photos
from engine.library import Library
from engine.resources import bundled_model_dir

MOBILENET = bundled_model_dir("mobilenet-v2")


# -- 1. a confirmed photo's file name reused by a later photo -----------------------------------
def test_a_file_name_reused_by_a_later_photo_does_not_replace_a_confirmed_reference(
    tmp_path: Path, catalog_dir: Path
) -> None:
    """Day 1: Incoming/IMG_0001.jpg shows product 1, confirmed SKU-001 (instant memory keeps
    it as a reference). Day 2: the folder is refilled and IMG_0001.jpg now shows product 4.
    Switching model (or a training run, whose gate embeds the same way and whose data reads
    the same path) embeds the day-2 picture as SKU-001's reference: the new model's index
    holds a picture of product 4 under SKU-001. The library knows the confirmed photo's hash
    and keeps its thumbnail; a file whose content changed must not stand in for it."""
    incoming = tmp_path / "Incoming"
    incoming.mkdir()
    photo = incoming / "IMG_0001.jpg"
    photo_of(product_image(1), 1).save(photo, quality=90)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
        (res,) = lib.match([photo])
        lib.confirm(res.photo_id, "SKU-001")  # type: ignore[arg-type]
        assert lib.status().remembered == 1
        photo_of(product_image(4), 2).save(photo, quality=90)  # day 2, same file name
        other = lib.install_model(MOBILENET).version
        lib.activate_model(other)
        image_id, sha = lib.db.execute(
            "SELECT id, sha256 FROM catalog_images WHERE origin = 'confirmed'"
        ).fetchone()
        blob = lib.db.execute(
            "SELECT vector FROM embeddings WHERE image_id = ? AND model_version = ?",
            [image_id, other],
        ).fetchone()[0]
        stored = np.frombuffer(blob, np.float32)
        enc = lib.encoder_for(other)
        day2 = enc.encode_images([enc.load(photo)])[0]
        confirmed = enc.encode_images([enc.load(lib.thumbnail(sha))])[0]
        # The SKU-001 reference is the day-2 picture of product 4 itself (cosine 1.0).
        assert float(stored @ day2) < 0.99, "SKU-001's reference is now a photo of product 4"
        assert float(stored @ confirmed) > float(stored @ day2)
        # Training would learn the same picture under SKU-001.
        from engine.training.data import collect

        data = collect(lib)
        (sample,) = data.photos + data.heldout
        assert sample.source != photo, "training reads product 4's picture as SKU-001"


# -- 2. a held-out photo moved while the model trains --------------------------------------------
def test_a_held_out_photo_moved_during_training_does_not_fail_the_run(tmp_path: Path) -> None:
    """Staff tidy the delivery folder while the model trains (the app says matching keeps
    working). The newest photo of SKU-000 is held out for the gate; once its file is gone,
    the candidate cannot embed it and the gate then reads the missing original again
    (gate._photo_vectors -> encoder.load) instead of its thumbnail: ImageLoadError 'file not
    found', the whole run fails after training ('Fine-tuning failed' in the app, 'error' in
    the CLI) and the candidate is left marked 'failed'. Training itself and the reference
    embedding tolerate the same unreadable file; the gate should too (thumbnail, or leave
    the photo out)."""
    pytest.importorskip("torch")
    from test_training import TINY, _confirmed_library

    from engine.learning import learn
    from engine.progress import Progress

    lib_dir = _confirmed_library(tmp_path)
    held_out = tmp_path / "photos" / "0-3.jpg"  # the newest photo of SKU-000: held out
    moved = tmp_path / "elsewhere"
    moved.mkdir()

    def progress(p: Progress) -> None:
        if p.stage == "Training" and held_out.exists():
            shutil.move(held_out, moved / held_out.name)

    with Library(lib_dir) as lib:
        report = learn(
            lib, dataclasses.replace(TINY, members=1, epochs=1), activate=False, progress=progress
        )
        assert not held_out.exists()
        assert report.decision is not None
        status = next(m for m in lib.models() if m["version"] == report.version)["metrics"]
        assert status["status"] in ("accepted", "refused")


# -- 3. a confirmation made right after a model switch -------------------------------------------
def test_a_confirmation_after_a_model_switch_still_enters_instant_memory(
    tmp_path: Path, catalog_dir: Path
) -> None:
    """Photos matched, then the model changes (a training run activated one, or 'Use selected
    version'); staff then confirm a photo with the SKU they picked (the app's queue still
    shows it until the re-match reaches it; the CLI: 'confirm PHOTO SKU'). The decision is
    recorded but the photo never becomes a reference: memory.sync_photo finds no vector of
    the new model and gives up, and matching the photo again later does not add it either
    (nor does reopening). Instant memory silently misses that confirmation for good."""
    photos = write_photos(tmp_path / "p", [1, 4])
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(catalog_dir, catalog_dir / "sheet.csv")
        first, _ = lib.match(photos)
        lib.activate_model(lib.install_model(MOBILENET).version)
        lib.confirm(first.photo_id, "SKU-001")  # type: ignore[arg-type]
        list(lib.match(photos))  # the queue is matched again with the new model
        assert lib.photo_state(first.photo_id).status == "confirmed"  # type: ignore[arg-type]
        assert lib.status().remembered == 1, "the confirmed photo never became a reference"


# -- 7. the run's report: photos trained on ------------------------------------------------------
def test_the_learning_report_counts_the_photos_it_actually_trained_on(tmp_path: Path) -> None:
    """A library over the view budget (the README's shop with thousands of confirmations;
    here --max-views 20) trains on the most recent photos only: 5 of 18. The summary and
    the stored data still say 'trained on ... 18 confirmed photos', so `train`, the app's
    result box and `models --verbose` overstate what the model learnt from."""
    pytest.importorskip("torch")
    from test_training import TINY, _confirmed_library

    from engine.learning import learn

    lib_dir = _confirmed_library(tmp_path)
    cfg = dataclasses.replace(TINY, members=1, epochs=1, max_views=20)
    with Library(lib_dir) as lib:
        report = learn(lib, cfg, activate=False)
    catalog_views = int(report.config["catalog_views"])  # type: ignore[call-overload]
    trained_photos = (report.data["views"] - report.data["catalog"] * catalog_views) // 2
    assert trained_photos < 18  # the budget cut photos
    assert report.data["photos"] == trained_photos, report.data
    assert f"and {trained_photos} confirmed photos" in report.summary()
