"""Local-feature stage (issue 5) on generated planar scenes with known homographies."""

from __future__ import annotations

import csv
import logging
import random
import string
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from engine import local_features
from engine.library import Library
from engine.local_features import store
from engine.local_features.catalog_sync import descriptor_index, index_path
from engine.local_features.desc_index import DescriptorIndex
from engine.local_features.extract import extract_catalog, extract_photo
from engine.local_features.rerank import MIN_INLIERS
from engine.local_features.verify import verify_many
from engine.matching import PhotoMatch, Suggestion

LABEL = (300, 400)
PHOTO = (960, 720)


def label(family: int, variant: int) -> Image.Image:
    """Packaging artwork: a family header shared by all variants, variant-specific print."""
    brand, var = random.Random(f"b{family}"), random.Random(f"v{family}-{variant}")
    img = Image.new("RGB", LABEL, tuple(brand.randrange(170, 256) for _ in range(3)))
    d = ImageDraw.Draw(img)
    accent = tuple(brand.randrange(0, 120) for _ in range(3))
    d.rectangle([0, 0, LABEL[0], 70], fill=accent)
    d.ellipse([10, 8, 64, 62], outline=(250, 250, 250), width=5)
    d.text((80, 35), "".join(brand.choices(string.ascii_uppercase, k=5)), fill="white",
           font=ImageFont.load_default(size=34), anchor="lm")  # fmt: skip
    for row in range(9):
        size = var.choice([16, 20, 26, 32])
        text = "".join(var.choices(string.ascii_letters + string.digits, k=14))
        d.text((12, 80 + row * 34), text, fill=(var.randrange(0, 90),) * 3,
               font=ImageFont.load_default(size=size))  # fmt: skip
    for _ in range(4):
        x, y = var.randrange(20, LABEL[0] - 60), var.randrange(90, LABEL[1] - 60)
        d.rectangle([x, y, x + var.randrange(15, 50), y + var.randrange(15, 50)],
                    fill=tuple(var.randrange(256) for _ in range(3)))  # fmt: skip
    return img


def fruit(seed: int) -> Image.Image:
    """Textureless goods: a smooth shaded disc on white, nothing for keypoints to hold on to."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : LABEL[1], 0 : LABEL[0]].astype(np.float32)
    cx, cy, r = LABEL[0] / 2, LABEL[1] / 2, LABEL[0] * 0.4
    inside = ((xx - cx) ** 2 + (yy - cy) ** 2) < r * r
    shade = 1 - 0.4 * np.clip(((xx - cx + r / 2) ** 2 + (yy - cy + r / 2) ** 2) / (4 * r * r), 0, 1)
    colour = rng.uniform(60, 230, 3)
    out = np.full((*inside.shape, 3), 255, np.float32)
    out[inside] = colour * shade[inside, None]
    return Image.fromarray(cv2.GaussianBlur(out, (0, 0), 3).astype(np.uint8))


def homography(seed: int) -> np.ndarray:
    """Artwork -> photo: turned, tilted, at 1.0-1.4x, placed inside the frame."""
    rng = random.Random(seed)
    w, h = LABEL
    s = rng.uniform(1.0, 1.4)
    a = np.deg2rad(rng.uniform(-25, 25))
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    dst = (src - [w / 2, h / 2]) * s @ rot.T + [PHOTO[0] / 2, PHOTO[1] / 2]
    dst += np.array([[rng.uniform(-1, 1), rng.uniform(-1, 1)] for _ in range(4)]) * 0.08 * h * s
    return cv2.getPerspectiveTransform(src, dst.astype(np.float32))


def scene(art: Image.Image, h: np.ndarray, seed: int) -> Image.Image:
    """The artwork warped by ``h`` onto a cluttered table, relit and slightly blurred."""
    rng = np.random.default_rng(seed)
    table = cv2.resize(rng.normal(150, 25, (18, 24, 3)).astype(np.float32), PHOTO)
    warped = cv2.warpPerspective(np.asarray(art), h, PHOTO).astype(np.float32)
    mask = cv2.warpPerspective(np.full(art.size[::-1], 1, np.float32), h, PHOTO)[..., None]
    out = table * (1 - mask) + warped * mask
    out = out * rng.uniform(0.8, 1.05) + rng.normal(0, 3, out.shape)
    return Image.fromarray(cv2.GaussianBlur(np.clip(out, 0, 255).astype(np.uint8), (0, 0), 0.8))


def write_catalog(folder: Path, arts: dict[str, Image.Image]) -> Path:
    (folder / "img").mkdir(parents=True, exist_ok=True)
    with open(folder / "sheet.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["sku", "name", "image"])
        for sku, art in arts.items():
            art.save(folder / "img" / f"{sku}.png")
            w.writerow([sku, sku, f"img/{sku}.png"])
    return folder / "sheet.csv"


def write_photo(path: Path, art: Image.Image, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    scene(art, homography(seed), seed).save(path, quality=90)
    return path


def index_agrees(lib: Library) -> bool:
    idx = descriptor_index(lib)
    want = store.indexable(lib.db)
    return idx.members == want and len(idx) == sum(n for _, n in want.values())


# -- tests -----------------------------------------------------------------------------------
def test_verification_recovers_the_known_homography() -> None:
    art = label(1, 1)
    h_true = homography(7)
    photo = extract_photo(scene(art, h_true, 7))
    cat = extract_catalog(art)
    others = [extract_catalog(label(1, 2)), extract_catalog(label(2, 1))]
    right, sibling, unrelated = verify_many(photo, photo.root(), [cat, *others])
    assert right.model == "homography" and right.inliers >= 40
    assert right.inliers > 2 * sibling.inliers  # the shared family header matches too
    assert unrelated.inliers < MIN_INLIERS
    # the estimate maps photo pixels back onto the artwork as the truth does (the matrix is in
    # working pixels: the photo was detected at PHOTO_SIDE, the artwork at its own size)
    corners = np.float32([[30, 100], [270, 100], [270, 380], [30, 380]]).reshape(-1, 1, 2)
    in_photo = cv2.perspectiveTransform(corners, h_true) * (photo.size[0] / PHOTO[0])
    back = cv2.perspectiveTransform(in_photo, right.matrix)
    assert np.abs(back - corners).max() < 4.0


def test_right_candidate_is_promoted_even_when_global_ranks_it_low(tmp_path: Path) -> None:
    arts = {f"V{v}": label(3, v) for v in range(6)}
    sheet = write_catalog(tmp_path / "cat", arts)
    photos = [write_photo(tmp_path / "ph" / f"V{v}.jpg", arts[f"V{v}"], 20 + v) for v in (1, 4)]
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(sheet.parent, sheet)
        assert index_agrees(lib)
        for photo, sku in zip(photos, ("V1", "V4"), strict=True):
            (res,) = lib.match([photo], top_k=3)
            top = res.suggestions[0]
            assert top.sku == sku and top.inliers >= MIN_INLIERS, res.suggestions
            assert all(s.inliers < top.inliers for s in res.suggestions[1:])
            assert lib.suggestions(res.photo_id)[0].inliers == top.inliers  # stored, for the UI

        # Deterministic: the global stage put the right product last, or left it out entirely.
        idx = descriptor_index(lib)
        ids = {r[1]: r[0] for r in lib.db.execute("SELECT id, sku FROM catalog_images")}
        img = lib.encoder.load(photos[0])
        feats, vec = extract_photo(img), lib.encoder.encode_images([img])[0]
        others = [s for s in arts if s != "V1"]
        # (look-alike siblings: the global similarities are close, as on real packaging)
        pool = [Suggestion(i + 1, s, 0.8 - 0.01 * i, 0.0, ids[s]) for i, s in enumerate(others)]
        pool_last = [*pool, Suggestion(6, "V1", 0.74, 0.0, ids["V1"])]
        for given in (pool_last, pool):
            out = local_features.rerank_photo(lib, idx, feats, vec, given, 3, lambda _s: True)
            assert out[0].sku == "V1" and out[0].inliers >= MIN_INLIERS
            assert out[0].image_id == ids["V1"] and out[0].score > 0.9
            assert [s.rank for s in out] == [1, 2, 3]
        # A category/supplier filter that excludes it keeps it out.
        out = local_features.rerank_photo(lib, idx, feats, vec, pool, 3, lambda s: s != "V1")
        assert "V1" not in [s.sku for s in out]

        km = lib.local_matches(ids["V1"] and lib.photo_id(photos[0]), ids["V1"])
        assert km.inliers >= MIN_INLIERS and km.model == "homography"
        assert km.photo_points.shape == km.catalog_points.shape == (km.inliers, 2)
        assert (km.photo_points >= 0).all() and (km.catalog_points <= 1).all()


def test_textureless_goods_keep_the_global_order(tmp_path: Path) -> None:
    arts = {f"FRUIT-{i}": fruit(i) for i in range(5)}
    sheet = write_catalog(tmp_path / "cat", arts)
    photos = [write_photo(tmp_path / "ph" / f"{i}.jpg", arts[f"FRUIT-{i}"], i) for i in (0, 3)]
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(sheet.parent, sheet)

        def ranking(results: list[PhotoMatch]) -> list[list[tuple[str, float, float]]]:
            return [[(s.sku, round(s.similarity, 5), round(s.score, 5)) for s in r.suggestions]
                    for r in results]  # fmt: skip

        lib.local_features = False
        off = ranking(list(lib.match(photos)))
        lib.local_features = True
        results = list(lib.match(photos))
        assert ranking(results) == off
        assert all(s.inliers == 0 for r in results for s in r.suggestions)


def test_damaged_or_missing_features_are_skipped_then_rebuilt(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    arts = {f"V{v}": label(5, v) for v in range(4)}
    sheet = write_catalog(tmp_path / "cat", arts)
    photo = write_photo(tmp_path / "ph" / "V2.jpg", arts["V2"], 3)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(sheet.parent, sheet)
        rows = lib.db.execute("SELECT id, sku, sha256 FROM catalog_images").fetchall()
        ids = {sku: i for i, sku, _ in rows}
        n_before = store.load(lib.db, [ids["V2"]])[ids["V2"]].features.descriptors.shape
        # V2's descriptors have the wrong size; V1's have the right size but one flipped byte;
        # V3's row is gone; V0's row is gone and so are its image and thumbnail.
        lib.db.execute(
            "UPDATE local_features SET descriptors = x'00ff' WHERE image_id = ?", [ids["V2"]]
        )
        (blob,) = lib.db.execute(
            "SELECT descriptors FROM local_features WHERE image_id = ?", [ids["V1"]]
        ).fetchone()
        flipped = bytes([blob[0] ^ 0xFF]) + bytes(blob[1:])
        lib.db.execute(
            "UPDATE local_features SET descriptors = ? WHERE image_id = ?", [flipped, ids["V1"]]
        )
        lib.db.execute(
            "DELETE FROM local_features WHERE image_id IN (?, ?)", [ids["V3"], ids["V0"]]
        )
        (tmp_path / "cat" / "img" / "V0.png").unlink()
        lib.thumbnail(next(sha for _, sku, sha in rows if sku == "V0")).unlink()
        with caplog.at_level(logging.WARNING):
            (res,) = lib.match([photo], top_k=4)
        assert res.error is None and len(res.suggestions) == 4
        assert "size" in caplog.text and "checksum mismatch" in caplog.text
        assert f"catalog image {ids['V0']}: original and thumbnail both missing" in caplog.text
        # V3 was re-extracted on the fly; V1's and V2's bad rows were dropped, to be
        # re-extracted by the next sync; V0 is recorded as failed, with its reason.
        assert ids["V3"] in store.load(lib.db, [ids["V3"]])
        assert not store.load(lib.db, [ids["V1"], ids["V2"], ids["V0"]])
        report = lib.sync_local_features()
        assert report.extracted == 2
        assert report.failed == [(ids["V0"], "original and thumbnail both missing")]
        fixed = store.load(lib.db, [ids["V2"]])[ids["V2"]].features.descriptors.shape
        assert fixed == n_before and index_agrees(lib)
        (again,) = lib.match([photo], top_k=4)
        assert again.suggestions[0].sku == "V2" and again.suggestions[0].inliers >= MIN_INLIERS


def test_descriptor_index_follows_reimport_and_removal(tmp_path: Path) -> None:
    arts = {f"V{v}": label(7, v) for v in range(5)}
    sheet = write_catalog(tmp_path / "cat", arts)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(sheet.parent, sheet)
        assert index_agrees(lib)
        first = dict(descriptor_index(lib).members)
        assert len(first) == 5

        # V1 changes content, V4 leaves the catalog: re-import
        label(8, 1).save(tmp_path / "cat" / "img" / "V1.png")
        (tmp_path / "cat" / "img" / "V4.png").unlink()
        rep = lib.import_catalog(sheet.parent, sheet)
        assert (rep.updated, rep.removed) == (1, 1)
        members = descriptor_index(lib).members
        assert index_agrees(lib) and len(members) == 4
        gone = set(first) - set(members)
        assert len(gone) == 2  # V4's features, and V1's old ones (a new feature id)
        ids = {r[1]: r[0] for r in lib.db.execute("SELECT id, sku FROM catalog_images")}
        assert "V4" not in ids
        # a photo of the new V1 verifies against its new keypoints
        (res,) = lib.match([write_photo(tmp_path / "ph" / "n.jpg", label(8, 1), 4)], top_k=2)
        assert res.suggestions[0].sku == "V1" and res.suggestions[0].inliers >= MIN_INLIERS
        path = index_path(lib)

    # Reopen: the saved index is loaded as is; a stale sidecar or a deleted file is
    # reconciled from the database.
    saved = DescriptorIndex.load(path)
    assert saved is not None and saved.members == members
    with Library(tmp_path / "lib") as lib:
        assert index_agrees(lib)
        lib.db.execute("DELETE FROM catalog_images WHERE id = ?", [ids["V0"]])
        assert index_agrees(lib) and len(descriptor_index(lib).members) == 3
    # A damaged index file (torn write, disk error) is rebuilt from the database.
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert DescriptorIndex.load(path) is None
    with Library(tmp_path / "lib") as lib:
        assert index_agrees(lib) and len(descriptor_index(lib).members) == 3
    path.unlink()
    with Library(tmp_path / "lib") as lib:
        assert index_agrees(lib)
        assert (
            len(descriptor_index(lib))
            == sum(n for _, n in members.values())
            - members[next(f for f, (img, _) in members.items() if img == ids["V0"])][1]
        )


def test_setting_off_skips_extraction_and_reranking(tmp_path: Path) -> None:
    arts = {f"V{v}": label(9, v) for v in range(3)}
    sheet = write_catalog(tmp_path / "cat", arts)
    with Library(tmp_path / "lib") as lib:
        lib.local_features = False
        assert lib.local_features is False
        lib.import_catalog(sheet.parent, sheet)
        assert lib.db.execute("SELECT count(*) FROM local_features").fetchone()[0] == 0
        (res,) = lib.match([write_photo(tmp_path / "p.jpg", arts["V0"], 1)])
        assert all(s.inliers == 0 for s in res.suggestions)
        lib.local_features = True
        assert lib.sync_local_features().extracted == 3 and index_agrees(lib)


def test_check_sees_damaged_and_missing_keypoints_and_repairs_them(tmp_path: Path) -> None:
    """Matching skips damaged keypoint rows quietly; 'check --deep' used to call such a
    library OK. Now it says so, and --repair extracts them again."""
    from engine.check import check_library

    arts = {f"V{v}": label(6, v) for v in range(3)}
    sheet = write_catalog(tmp_path / "cat", arts)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(sheet.parent, sheet)
        assert check_library(lib, deep=True).ok
        ids = dict(lib.db.execute("SELECT sku, id FROM catalog_images").fetchall())
        (blob,) = lib.db.execute(
            "SELECT descriptors FROM local_features WHERE image_id = ?", [ids["V1"]]
        ).fetchone()
        lib.db.execute(
            "UPDATE local_features SET descriptors = ? WHERE image_id = ?",
            [bytes([blob[0] ^ 0xFF]) + bytes(blob[1:]), ids["V1"]],
        )
        lib.db.execute("DELETE FROM local_features WHERE image_id = ?", [ids["V2"]])
        found = [f.line() for f in check_library(lib, deep=True).findings]
        assert found == [
            "error: keypoints: 1 damaged keypoint record",
            "note: keypoints: 2 catalog images have no keypoints yet, so matching cannot "
            "re-rank with them; --repair extracts them",
        ]
        fixed = check_library(lib, deep=True, repair=True)  # the damaged row went above
        assert [f.line() for f in fixed.findings] == [
            "repaired: keypoints: 2 catalog images had no keypoints; extracted them"
        ]
        assert fixed.ok and check_library(lib, deep=True).findings == []
        assert index_agrees(lib)


def test_a_ctrl_c_during_the_keypoint_search_stops_matching(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """usearch checks for signals while it searches, and a Ctrl-C there ends the search
    with RuntimeError("Operation has been terminated"), the KeyboardInterrupt swallowed:
    rerank_photo logged it as one failed photo and matching went on for minutes. A search
    given a cancel condition ends with that same error, deterministically (a real signal's
    arrival inside the search is a matter of timing)."""
    arts = {f"V{v}": label(3, v) for v in range(3)}
    sheet = write_catalog(tmp_path / "cat", arts)
    photo = write_photo(tmp_path / "ph" / "V1.jpg", arts["V1"], 21)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(sheet.parent, sheet)
        idx = descriptor_index(lib)
        ids = {r[1]: r[0] for r in lib.db.execute("SELECT id, sku FROM catalog_images")}
        img = lib.encoder.load(photo)
        feats, vec = extract_photo(img), lib.encoder.encode_images([img])[0]
        pool = [Suggestion(i + 1, s, 0.8 - 0.01 * i, 0.0, ids[s]) for i, s in enumerate(arts)]
        real = idx.index

        def stop(done: int, total: int) -> bool:
            return False  # the cancel condition: end the search now

        stop.__annotations__ = {"done": int, "total": int, "return": bool}  # usearch checks

        class Cancelled:
            """The real index, searched with the cancel condition."""

            def __len__(self) -> int:
                return len(real)

            def search(self, *args: object, **kwargs: object) -> object:
                return real.search(*args, progress=stop, **kwargs)

        class Broken(Cancelled):
            """The real index asked for the wrong number of dimensions: a real failure."""

            def search(self, *args: object, **kwargs: object) -> object:
                query = np.asarray(args[0])
                return real.search(query[:, : query.shape[1] // 2], *args[1:], **kwargs)

        idx.index = Cancelled()  # type: ignore[assignment]
        with pytest.raises(KeyboardInterrupt):
            local_features.rerank_photo(lib, idx, feats, vec, pool, 3, lambda _s: True)
        # Any other failure of the stage still keeps the global ranking, logged.
        idx.index = Broken()  # type: ignore[assignment]
        with caplog.at_level(logging.ERROR):
            out = local_features.rerank_photo(lib, idx, feats, vec, pool, 3, lambda _s: True)
        assert [s.sku for s in out] == ["V0", "V1", "V2"]
        assert "global ranking kept" in caplog.text
        idx.index = real
