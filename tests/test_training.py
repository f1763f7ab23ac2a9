"""Learning: small real training runs on generated images, export, the gate, rollback.

Tiny settings throughout (64-px input, a few classes, a few steps) so the whole file runs in
well under a minute on two cores; the exported models still follow the manifest contract.
A kill during activation leaving the old model active is covered by
tests/test_memory_and_models.py::test_kill_during_activation_keeps_old_model (the learning
code activates through the same ``Library.activate_model``).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from conftest import eval_dataset, photo_of, product_image, write_catalog
from engine.library import Library
from engine.manifest import ModelManifest
from engine.overview import learning_stats
from engine.progress import Cancelled, CancelToken, Progress
from engine.training.options import MIN_HELDOUT

torch = pytest.importorskip("torch")

from engine.learning import learn  # noqa: E402
from engine.training import gate as gate_mod  # noqa: E402
from engine.training.augment import phone_photo, photo_jitter  # noqa: E402
from engine.training.data import Sample, stratified_split  # noqa: E402
from engine.training.losses import ArcFace, class_weights, orthogonality_loss  # noqa: E402
from engine.training.model import EnsembleEncoder, build_encoder  # noqa: E402
from engine.training.trainer import TrainConfig, embed, random_crop, train  # noqa: E402

TINY = TrainConfig(
    unfreeze="conv",
    epochs=3,
    batch_size=16,
    catalog_views=4,
    photo_views=2,
    embedding_dim=64,
    input_size=64,
    cache_backend="torch",
)
N_SKUS = 6
PHOTOS_PER_SKU = 4


# -- pure pieces -------------------------------------------------------------------------------
def test_arcface_margin_and_class_weights() -> None:
    torch.manual_seed(0)
    arc = ArcFace(8, 3, scale=10.0, margin=0.5)
    emb = torch.nn.functional.normalize(torch.randn(5, 8), dim=1)
    labels = torch.tensor([0, 1, 2, 0, 1])
    plain, margin = arc.logits(emb), arc.logits(emb, labels)
    true = torch.arange(5), labels
    assert torch.all(margin[true] < plain[true])  # the true class is made harder
    others = torch.ones_like(plain, dtype=torch.bool)
    others[true] = False
    assert torch.allclose(margin[others], plain[others])
    w = class_weights(torch.tensor([100, 25, 4]))
    assert w[0] < w[1] < w[2]  # rare SKUs weigh more


def test_orthogonality_loss() -> None:
    eye = torch.eye(4)
    assert float(orthogonality_loss(eye)) == pytest.approx(0.0)
    same = torch.ones(4, 4)
    assert float(orthogonality_loss(same)) == pytest.approx(1.0)
    # Two images of one product are not pushed apart.
    assert float(orthogonality_loss(same, torch.tensor([0, 0, 0, 0]))) == 0.0


def test_augmentations_are_seeded_and_keep_size() -> None:
    img = product_image(3)
    a, b, c = phone_photo(img, 1), phone_photo(img, 1), phone_photo(img, 2)
    assert a.size == img.size and np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    assert photo_jitter(img, 5).size == img.size


def test_split_holds_out_the_newest_photos_per_sku() -> None:
    photos = [Sample(Path(f"{i}.jpg"), f"S{i % 3}", "photo", i) for i in range(3 * 20)]
    photos.append(Sample(Path("x.jpg"), "lonely", "photo", 999))
    train_part, held = stratified_split(photos, 0.15)
    assert {s.sku for s in held} == {"S0", "S1", "S2"}  # 3 per SKU of 20, none of 'lonely'
    assert len(held) == 9 and len(train_part) == 52
    # The newest photos of each SKU are held out (a burst of near-duplicates stays on one side).
    for sku in ("S0", "S1", "S2"):
        ids = sorted(s.ref_id for s in photos if s.sku == sku)
        assert sorted(s.ref_id for s in held if s.sku == sku) == ids[-3:]


def test_held_out_share_shrinks_for_big_libraries() -> None:
    photos = [Sample(Path(f"{i}.jpg"), f"S{i % 3}", "photo", i) for i in range(3 * 20)]
    train_part, held = stratified_split(photos, 0.15, max_total=3)
    assert len(held) == 3 and len(train_part) == 57  # one per SKU instead of three
    assert {s.sku for s in held} == {"S0", "S1", "S2"}


def test_many_products_with_a_few_photos_each_still_hold_some_out() -> None:
    """300 products confirmed 3 times each (a shop's first weeks): no SKU had enough photos
    for a share of its own, nothing was held out, and the gate refused every model for want
    of held-out photos. The newest photos of the most recently confirmed SKUs make it up."""
    photos = [Sample(Path(f"{i}.jpg"), f"S{i % 300}", "photo", i) for i in range(900)]
    photos += [Sample(Path("x.jpg"), "lonely", "photo", 5000)]
    train_part, held = stratified_split(photos, 0.15)
    assert len(held) == 135 and len(train_part) == 766
    assert len({s.sku for s in held}) == 135  # one each: every SKU keeps two to train on
    assert "lonely" not in {s.sku for s in held}  # a single photo is never held out
    newest = {f"S{i % 300}" for i in range(899, 899 - 135, -1)}
    assert {s.sku for s in held} == newest
    assert all(s.ref_id >= 600 for s in held)  # each SKU's newest photo


def test_heldout_count_is_what_the_split_holds_out_without_reading_photos() -> None:
    """The Learning page says beforehand whether a run could prove its model: its count must
    be the split's, for libraries of every shape."""
    from engine.training.data import heldout_count

    shapes = [[1] * 50, [2] * 40, [3] * 300, [20] * 81, [1, 2, 3, 4, 5, 40], [60] * 300, []]
    for sizes in shapes:
        photos = [
            Sample(Path("p.jpg"), f"S{k}", "photo", 1000 * k + j)
            for k, n in enumerate(sizes)
            for j in range(n)
        ]
        held = stratified_split(photos, 0.15, max_total=200)[1]
        assert heldout_count(sizes, 0.15, 200) == len(held), sizes


def test_view_budget_gives_way_with_the_catalogs_simulated_views_first() -> None:
    from engine.training.budget import (
        MIN_CATALOG_VIEWS,
        ViewPlan,
        estimate_seconds,
        plan_views,
        training_photos,
    )

    # The grocery dev set fits as it is.
    assert plan_views(81, 2440, max_views=6400) == ViewPlan(16, 2440, 6176)
    # A big catalog: fewer simulated views per image; photos keep half the budget.
    plan = plan_views(1000, 5000, max_views=6400)
    assert plan.views <= 6400 and plan.catalog_views == 3 and plan.photos == 1700
    # Many photos of a small catalog: every catalog view stays; photos fill the rest.
    plan = plan_views(81, 10_000, max_views=6400)
    assert plan.catalog_views == 16 and plan.views == 6400
    # A catalog too big for any budget keeps its floor and every photo up to half of it.
    plan = plan_views(10_000, 100, max_views=6400)
    assert plan.catalog_views == MIN_CATALOG_VIEWS and plan.photos == 100
    assert plan_views(10_000, 100, max_views=6400).views > 6400  # the documented floor
    assert plan_views(1000, 5000, max_views=0).views == 26_000  # no limit
    assert training_photos(2640) == 2440  # about 200 held out for the gate
    with pytest.raises(ValueError, match="max_views"):
        dataclasses.replace(TINY, max_views=1).resolved().validate()
    # The estimate grows with the library, and stops growing at the budget.
    small, grocery = estimate_seconds(83, 40, 123), estimate_seconds(81, 2640, 2721)
    assert 2 * 60 < small < 6 * 60 and 14 * 60 < grocery < 21 * 60
    assert estimate_seconds(81, 50_000, 2721) < 1.1 * estimate_seconds(81, 3000, 2721)
    one_core = estimate_seconds(83, 40, 123, threads=1)  # the app on two cores: 354 s measured
    assert 1.4 * small < one_core < 1.6 * small


def test_run_clock_gives_the_whole_runs_time_left_at_this_machines_pace() -> None:
    from engine.progress import RunClock

    now = [0.0]
    seen: list[Progress] = []
    plan = [("cache", 10.0), ("train", 50.0), ("embed", 40.0)]  # reference seconds
    clock = RunClock(plan, seen.append, pace=2.0, clock=lambda: now[0])

    def report(stage: str, done: int, total: int, at: float) -> Progress:
        now[0] = at
        clock(Progress(stage, done, total, at))
        return seen[-1]

    # Before any work: the plan at the expected pace (one thread: twice the reference).
    first = report("cache", 0, 100, 0.0)
    assert first.run_fraction == 0 and first.run_left_s == pytest.approx(200)
    # This machine turns out three times slower than the reference: the estimate follows.
    p = report("cache", 100, 100, 30.0)
    assert p.run_fraction == pytest.approx(0.1)
    p = report("train", 50, 100, 30.0 + 75.0)
    assert p.run_fraction == pytest.approx(0.35)
    assert p.run_left_s == pytest.approx(65 * (105 + 60) / (35 + 30))  # shrinking to 3.0
    p = report("embed", 90, 100, 300.0)
    assert p.run_fraction == pytest.approx(0.96)
    assert 2.8 * 4 < p.run_left_s < 3.1 * 4
    # An earlier stage reported again (activation re-embeds a few images) moves nothing back;
    # an unplanned stage passes through; the stage's own counts stay as they were.
    p = report("train", 1, 100, 301.0)
    assert p.run_fraction == pytest.approx(0.96) and (p.stage, p.done) == ("train", 1)
    assert report("Checking", 1, 2, 302.0).run_fraction == pytest.approx(0.96)
    assert report("embed", 100, 100, 310.0).run_left_s == 0
    # A stage that never reports (no photos to embed) counts as done once a later one starts.
    skip = RunClock(plan, seen.append, clock=lambda: 0.0)
    skip(Progress("embed", 0, 10, 0.0))
    assert seen[-1].run_fraction == pytest.approx(0.6)
    # Replanning a later stage (an import learns what is new only after its check) changes
    # the share and the time left; a stage under way or done keeps its planned work.
    later = RunClock(plan, seen.append, prior_weight_s=1.0, clock=lambda: 0.0)
    later(Progress("train", 50, 100, 0.0))
    later.replan({"embed": 0.0, "cache": 100.0, "train": 500.0})
    assert (seen[-1].stage, seen[-1].done) == ("train", 50)  # the latest report, sent again
    assert seen[-1].run_fraction == pytest.approx(35 / 60)


def test_photos_are_capped_per_sku_newest_first_and_in_all() -> None:
    from engine.learning import cap_photos

    # SKU A: 30 photos, B: 6, C: 2; ids grow with time.
    photos = [Sample(Path(f"{i}.jpg"), "A", "photo", i) for i in range(30)]
    photos += [Sample(Path(f"b{i}.jpg"), "B", "photo", 100 + i) for i in range(6)]
    photos += [Sample(Path(f"c{i}.jpg"), "C", "photo", 200 + i) for i in range(2)]
    assert len(cap_photos(photos, 200)) == 38
    capped = cap_photos(photos, 10)
    assert sorted(s.ref_id for s in capped if s.sku == "A") == list(range(20, 30))
    fit = cap_photos(photos, 200, total=14)  # limit 6: A 6, B 6, C 2
    assert len(fit) == 14 and {s.sku for s in fit} == {"A", "B", "C"}
    assert sorted(s.ref_id for s in fit if s.sku == "A") == list(range(24, 30))
    # Room for fewer photos than SKUs: one each of the SKUs confirmed most recently.
    few = cap_photos(photos, 200, total=2)
    assert sorted(s.ref_id for s in few) == [105, 201]


def test_feature_crops_are_windows_of_one_even_side() -> None:
    gen = torch.Generator().manual_seed(0)
    maps = torch.arange(4 * 2 * 14 * 14, dtype=torch.float32).reshape(4, 2, 14, 14)
    sides = set()
    for _ in range(40):
        out = random_crop(maps, 0.6, gen)
        side = out.shape[-1]
        sides.add(side)
        assert out.shape == (4, 2, side, side) and side % 2 == 0 and side >= 10
        for m, c in zip(maps, out, strict=True):
            # Each crop is a window of its own map: find its corner from the first value.
            t, left = divmod(int(c[0, 0, 0].item()) - int(m[0, 0, 0].item()), 14)
            assert torch.equal(c, m[:, t : t + side, left : left + side])
    assert sides == {10, 12, 14}
    assert torch.equal(random_crop(maps, 1.0, gen), maps)


def test_ensemble_shares_one_trunk_and_sums_its_members(tmp_path: Path) -> None:
    """Two members trained on one cache: the trunk is stored once, the embedding is the
    normalised sum of the members' (each a unit vector), and the members differ (own seeds)."""
    catalog = []
    for c in range(3):
        path = tmp_path / f"c{c}.png"
        product_image(c, 96).save(path)
        catalog.append(Sample(path, f"S{c}", "catalog", c))
    cfg = dataclasses.replace(TINY, epochs=2, members=2, member_epochs=1).resolved()
    result = train(catalog, ["S0", "S1", "S2"], cfg, tmp_path)
    model = result.model
    assert isinstance(model, EnsembleEncoder) and len(model.members) == 2
    assert [len(x) for x in result.member_losses] == [2, 1]  # member_epochs for the second
    assert result.losses == result.member_losses[0]
    assert not any(".trunk." in k for k in model.members.state_dict())  # one shared trunk
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.inference_mode():
        out = model(x)
        feats = model.trunk(x)
        a, b = (m.forward_cached(feats) for m in model.members)
    assert torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)
    expected = torch.nn.functional.normalize(a + b, dim=1)
    assert torch.allclose(out, expected, atol=1e-6)
    assert (a - b).abs().max() > 1e-3  # different seeds, different members


# -- a planted task ----------------------------------------------------------------------------
def test_planted_task_is_learned(tmp_path: Path) -> None:
    """Recognise products in cluttered, tilted, relit 'phone photos' knowing only one clean
    image of each: the catalog-only case. At 64 px the ImageNet features are near chance;
    training on simulated phone photos of the catalog must lift accuracy clearly."""
    n = 6
    catalog = []
    for c in range(n):
        path = tmp_path / f"c{c}.png"
        product_image(c, 160).save(path)
        catalog.append(Sample(path, f"S{c}", "catalog", c))
    queries = [
        (phone_photo(product_image(c, 160), 777_000 + 10 * c + j), c)
        for c in range(n)
        for j in range(6)
    ]
    cfg = dataclasses.replace(TINY, unfreeze="head", epochs=6, catalog_views=24).resolved()

    def accuracy(model: torch.nn.Module) -> float:
        refs = embed(model, [product_image(c, 160) for c in range(n)], cfg)
        q = embed(model, [img for img, _ in queries], cfg)
        return float(((q @ refs.T).argmax(1) == [c for _, c in queries]).mean())

    torch.manual_seed(cfg.seed)
    before = accuracy(build_encoder(cfg.arch, cfg.unfreeze, cfg.embedding_dim, 64)[0])
    result = train(catalog, [f"S{c}" for c in range(n)], cfg, tmp_path)
    after = accuracy(result.model)
    assert result.losses[-1] < 0.3 * result.losses[0]  # the loss goes down
    assert after >= before + 0.25, (before, after)  # and the task is learned
    assert result.n_views == n * cfg.catalog_views


# -- a library that learns ---------------------------------------------------------------------
def _confirmed_library(root: Path) -> Path:
    """A library with N_SKUS catalog products and PHOTOS_PER_SKU confirmed photos of each."""
    write_catalog(root / "cat", N_SKUS)
    photos = root / "photos"
    photos.mkdir()
    truth = []
    for i in range(N_SKUS):
        for j in range(PHOTOS_PER_SKU):
            p = photos / f"{i}-{j}.jpg"
            photo_of(product_image(i), 97 * i + j).save(p, quality=88)
            truth.append((p, f"SKU-{i:03d}"))
    with Library(root / "lib") as lib:
        lib.import_catalog(root / "cat", root / "cat" / "sheet.csv")
        by_path = {str(r.path): r for r in lib.match([p for p, _ in truth])}
        for p, sku in truth:
            lib.confirm(by_path[str(p)].photo_id, sku)  # type: ignore[arg-type]
    return root / "lib"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    """One real learning run, through the command line (in-process, to share torch)."""
    from engine.cli import main

    root = tmp_path_factory.mktemp("learning")
    lib_dir = _confirmed_library(root)
    out = root / "report.json"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(
            [
                "--quiet",
                "--library",
                str(lib_dir),
                "train",
                "--epochs",
                "2",
                "--unfreeze",
                "conv",
                "--input-size",
                "64",
                "--no-activate",
                "--json",
            ]
        )
    assert code == 0
    out.write_text(buf.getvalue())
    return lib_dir, json.loads(buf.getvalue())


def test_train_exports_a_matching_onnx_model(trained: tuple[Path, dict[str, object]]) -> None:
    lib_dir, report = trained
    assert report["config"]["members"] == 2  # type: ignore[index]  # the default: an ensemble
    assert report["onnx_max_abs_diff"] < 1e-4
    version = str(report["version"])
    with Library(lib_dir) as lib:
        manifest = lib.model_manifest(version)
        assert manifest.parent_version == "effnet-lite0-imagenet-1"
        assert (manifest.input_size, manifest.embedding_dim) == (64, 512)
        assert [len(x) for x in manifest.notes["training"]["member_losses"]] == [2, 2]
        # The gate's comparison is stored with the version; nothing was activated.
        stored = next(m for m in lib.models() if m["version"] == version)["metrics"]
        assert stored["status"] in ("accepted", "refused")
        assert stored["gate"]["candidate"]["catalog_check"]["n"] == N_SKUS
        assert lib.model_version == "effnet-lite0-imagenet-1"
        # Every reference image already has the candidate's embedding (activation is quick).
        n_refs = lib.db.execute("SELECT count(*) FROM catalog_images").fetchone()[0]
        n_emb = lib.db.execute(
            "SELECT count(*) FROM embeddings WHERE model_version = ?", [version]
        ).fetchone()[0]
        assert n_emb == n_refs == N_SKUS * (1 + PHOTOS_PER_SKU)


def test_models_lists_what_the_gate_made_of_each_version(
    trained: tuple[Path, dict[str, object]], capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.cli import main

    lib_dir, report = trained
    gate = report["gate"]
    assert isinstance(gate, dict)
    assert main(["--quiet", "--library", str(lib_dir), "models", "--verbose"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if str(report["version"]) in x)
    assert line.startswith(" ")  # not active: trained with --no-activate
    assert ("(passed the check)" if gate["accept"] else "(refused by the check)") in line
    held = gate["candidate"]["heldout"]["n"]
    assert f"{held} held-out confirmed photos: top-1" in out
    assert f"{N_SKUS} simulated photos of the catalog: top-1" in out
    assert f"Verdict: {gate['reason']}." in out
    assert "MRR on" in gate["reason"]  # the verdict names its measure in words
    assert held < MIN_HELDOUT and "top-1 0." not in line  # too few to show as its top-1
    pretrained = next(x for x in out.splitlines() if x.startswith("*"))
    assert "effnet-lite0-imagenet-1" in pretrained and "(" not in pretrained


def test_activate_trained_model_then_roll_back(
    trained: tuple[Path, dict[str, object]], tmp_path: Path
) -> None:
    lib_dir, report = trained
    version = str(report["version"])
    copy = tmp_path / "lib"
    shutil.copytree(lib_dir, copy)
    photo = tmp_path / "new.jpg"
    photo_of(product_image(2), 4242).save(photo)
    with Library(copy) as lib:
        old = lib.model_version
        lib.activate_model(version)
        assert lib.model_version == version and lib.index.dim == 512
        assert learning_stats(lib).new_confirmations == 0  # it learnt from all of them
        (res,) = lib.match([photo])
        assert res.suggestions and res.suggestions[0].sku == "SKU-002"
        lib.confirm(res.photo_id, "SKU-002")  # type: ignore[arg-type]
        assert learning_stats(lib).new_confirmations == 1
        lib.activate_model(old)  # rollback: the ImageNet model and its index come back
        assert lib.model_version == old and lib.index.dim == 1280
        assert {m["version"] for m in lib.models()} == {old, version}
        stats = learning_stats(lib)  # the ImageNet model learnt from none of them
        assert stats.new_confirmations == stats.confirmed == N_SKUS * PHOTOS_PER_SKU + 1


def _damaged_copy(src: Path, dest: Path, version: str, blind: bool = False) -> Path:
    """The same network with every weight drowned in noise: a model that must lose. With
    ``blind``, every convolution kernel zeroed instead: each image gets the same embedding,
    so every product ties and the model is the worst there can be (MRR 1 / products)."""
    proto = onnx.load(str(src / "model.onnx"))
    rng = np.random.default_rng(0)
    for init in proto.graph.initializer:
        arr = numpy_helper.to_array(init)
        if blind and arr.dtype == np.float32 and arr.ndim == 4:
            init.CopyFrom(numpy_helper.from_array(np.zeros_like(arr), init.name))
        elif not blind and arr.dtype == np.float32 and arr.size > 1:
            noisy = arr + rng.normal(0, 3 * (float(arr.std()) + 1e-3), arr.shape)
            init.CopyFrom(numpy_helper.from_array(noisy.astype(np.float32), init.name))
    dest.mkdir(parents=True)
    onnx.save(proto, str(dest / "model.onnx"))
    manifest = dataclasses.replace(ModelManifest.load(src), version=version, sha256="")
    manifest.save(dest)
    return dest


def test_gate_refuses_a_worse_model_and_accepts_a_better_one(
    trained: tuple[Path, dict[str, object]], tmp_path: Path
) -> None:
    lib_dir, report = trained
    copy = tmp_path / "lib"
    shutil.copytree(lib_dir, copy)
    with Library(copy) as lib:
        from engine.training.data import collect

        data = collect(lib, holdout=0.5)  # 12 held-out photos: the held-out criterion
        active = lib.model_version
        src = lib.model_dir(str(report["version"]))
        bad = lib.install_model(_damaged_copy(src, tmp_path / "bad", "damaged-1")).version
        decision = gate_mod.compare(lib, bad, data.heldout, data.catalog)
        assert not decision.accept, decision.reason
        assert decision.candidate.heldout.mrr < decision.active.heldout.mrr
        assert lib.model_version == active
        # The other way round: with the damaged model active, the ImageNet one is better.
        lib.activate_model(bad)
        decision = gate_mod.compare(lib, active, data.heldout, data.catalog)
        assert decision.accept, decision.reason


def test_only_the_newest_versions_no_check_let_in_are_kept(
    trained: tuple[Path, dict[str, object]], tmp_path: Path
) -> None:
    """Every run leaves a version (~30 MB with its vectors), refused ones included: a shop
    training weekly filled its disk with models nobody uses. Learning now keeps the newest
    three that no check let in; versions that passed, the active and the bundled one stay."""
    from engine.learning import prune_unused

    lib_dir, report = trained
    copy = tmp_path / "lib"
    shutil.copytree(lib_dir, copy)
    with Library(copy) as lib:
        src = lib.model_dir(lib.model_version)
        made = {"bad-1": "refused", "bad-2": "cancelled", "bad-3": "refused", "ok-4": "accepted"}
        made |= {"bad-5": "failed"}
        for n, (version, status) in enumerate(made.items()):
            _damaged_copy(src, tmp_path / version, version)
            lib.install_model(tmp_path / version, metrics={"status": status}, check=False)
            lib.db["models"].update(version, {"created_at": f"2020-01-0{n + 1}T00:00:00+00:00"})
        lib.db["models"].update(str(report["version"]), {"created_at": "2019-12-31T00:00:00+00:00"})
        fixture = next(m for m in lib.models() if m["version"] == report["version"])
        fixture_unused = fixture["metrics"]["status"] in {"refused", "evaluating"}  # type: ignore[index]
        removed = prune_unused(lib, keep=2)
        assert removed == ["bad-2", "bad-1"] + ([str(report["version"])] * fixture_unused)
        left = {str(m["version"]) for m in lib.models()}
        assert {"bad-3", "ok-4", "bad-5", lib.model_version} <= left and not left & set(removed)
        assert not (copy / "models" / "bad-1").exists()
        assert prune_unused(lib, keep=2) == []  # nothing more to remove


def test_a_library_over_the_view_budget_trains_within_it(tmp_path: Path) -> None:
    from engine import learning

    lib_dir = _confirmed_library(tmp_path)
    with Library(lib_dir) as lib:
        data = learning.prepare(lib)
    n_photos = len(data.photos)
    assert N_SKUS * TINY.catalog_views + n_photos * TINY.photo_views > 40
    cfg = dataclasses.replace(TINY, max_views=40, members=1, epochs=1)
    result = learning.train_candidate(data, cfg, tmp_path)
    assert result.n_views <= 40
    assert result.config.catalog_views < TINY.catalog_views  # stored with the model
    # Room for 11 photos: one of each SKU, then a second of the five confirmed most recently.
    assert result.config.catalog_views == 3 and result.n_views == 40
    assert result.n_samples == N_SKUS + (40 - N_SKUS * 3) // TINY.photo_views


def test_a_learning_run_reports_one_progress_for_the_whole_run(tmp_path: Path) -> None:
    """Every report of learn() carries the whole run's share done and time left; the share
    only grows and ends at 1. The cache stage counts views, not images, so its rate is even
    though a catalog image makes more views than a photo."""
    from engine.training.options import STAGE_CACHE, STAGE_EMBED, STAGE_TRAIN

    lib_dir = _confirmed_library(tmp_path)
    seen: list[Progress] = []
    cfg = dataclasses.replace(TINY, members=1, epochs=1)
    with Library(lib_dir) as lib:
        report = learn(lib, cfg, activate=False, holdout=0.0, progress=seen.append)
    assert report.version and report.data["heldout"] == 0
    # Nothing held out: the summary says so instead of giving held-out figures of 0.000.
    assert "no confirmed photo held out" in report.summary()
    assert "held-out photo" not in report.summary()
    stages = [p.stage for p in seen]
    assert stages.index(STAGE_CACHE) < stages.index(STAGE_TRAIN) < stages.index(STAGE_EMBED)
    cache = [p for p in seen if p.stage == STAGE_CACHE]
    assert cache[-1].total == cache[-1].done == report.data["views"]
    assert {p.done - q.done for p, q in zip(cache[1:], cache, strict=False)} == {
        TINY.catalog_views,
        TINY.photo_views,
    }
    shares = [p.run_fraction for p in seen]
    assert all(f is not None for f in shares) and all(p.run_left_s is not None for p in seen)
    assert shares == sorted(shares) and shares[-1] == 1.0 and seen[-1].run_left_s == 0
    # The catalog-only loss learns from no photo, and says so (it reported every one).
    with Library(lib_dir) as lib:
        ortho = learn(lib, dataclasses.replace(cfg, loss="ortho"), activate=False, holdout=0.0)
    assert report.data["photos"] > 0 and ortho.data["photos"] == 0
    assert ortho.data["confirmations"] == 0
    assert ortho.data["views"] == report.data["catalog"] * TINY.catalog_views


def test_cancel_leaves_the_library_as_it_was(tmp_path: Path) -> None:
    lib_dir = _confirmed_library(tmp_path)
    token = CancelToken()

    def progress(p: Progress) -> None:
        if p.stage == "Training" and p.done >= 1:
            token.cancel()

    with Library(lib_dir) as lib:
        before = [m["version"] for m in lib.models()]
        with pytest.raises(Cancelled):
            learn(lib, TINY, progress=progress, cancel=token)
        assert [m["version"] for m in lib.models()] == before
        assert lib.model_version == before[0]
        assert not list(lib_dir.glob(".learning-*"))  # the work folder is cleaned up


def test_gate_work_done_beside_the_library_matches_the_gate_done_inside(
    tmp_path: Path,
) -> None:
    """The app's phases: plan (library), train + export + embed (no library), finish
    (library). Photos confirmed or undone meanwhile still end up right, and the precomputed
    self-check scores what the gate would have computed itself."""
    from engine import learning

    lib_dir = _confirmed_library(tmp_path)
    extra = tmp_path / "late.jpg"
    photo_of(product_image(3), 5151).save(extra)
    with Library(lib_dir) as lib:
        data = learning.prepare(lib)
        plan = learning.plan_gate(lib, TINY)
        assert len(plan.references.refs) == N_SKUS * (1 + PHOTOS_PER_SKU)
        work_dir = tmp_path / "work"
        work_dir.mkdir()
        result = learning.train_candidate(data, TINY, work_dir)
        work = learning.embed_for_gate(plan, data, result, work_dir)
        assert work.version == plan.version and work.onnx_max_abs_diff < 1e-3
        assert set(work.checks.vectors) == {plan.version, lib.model_version}
        (late,) = lib.match([extra])
        lib.confirm(late.photo_id, "SKU-003")  # type: ignore[arg-type]  # after the plan
        report = learning.finish(lib, data, result, work, activate=False)
        assert report.version == plan.version and "embed_s" in report.timings
        live = lib.db.execute("SELECT count(*) FROM catalog_images").fetchone()[0]
        n_emb = lib.db.execute(
            "SELECT count(*) FROM embeddings WHERE model_version = ?", [plan.version]
        ).fetchone()[0]
        assert n_emb == live == N_SKUS * (1 + PHOTOS_PER_SKU) + 1
        inside = gate_mod.compare(lib, plan.version, data.heldout, data.catalog)
        assert report.decision is not None
        for got, want in (
            (report.decision.candidate, inside.candidate),
            (report.decision.active, inside.active),
        ):
            assert got.catalog_check.n == want.catalog_check.n == N_SKUS
            assert got.catalog_check.mrr == pytest.approx(want.catalog_check.mrr, abs=1e-6)
            assert got.heldout.mrr == pytest.approx(want.heldout.mrr, abs=1e-6)


def test_a_reference_that_failed_beside_the_library_is_not_read_again_on_it(
    tmp_path: Path,
) -> None:
    """A confirmed photo the candidate could not read off the engine thread is not tried
    again by the gate or the activation (a hung network share would hold up matching
    twice); ``check --repair`` embeds it once it reads again."""
    from engine import learning
    from engine.check import check_library

    lib_dir = _confirmed_library(tmp_path)
    with Library(lib_dir) as lib:
        # A blind active model, so that the gate accepts any candidate and finish activates.
        src = lib.model_dir(lib.model_version)
        blind = lib.install_model(_damaged_copy(src, tmp_path / "blind", "blind-1", blind=True))
        lib.activate_model(blind.version)
        data = learning.prepare(lib)
        plan = learning.plan_gate(lib, TINY)
        held = {s.ref_id for s in data.heldout}
        ref = next(
            r
            for r in plan.references.refs
            if r.source.parent.name == "photos" and r.image_id not in held
        )
        work_dir = tmp_path / "work"
        work_dir.mkdir()
        result = learning.train_candidate(data, TINY, work_dir)
        good = ref.source.read_bytes()
        ref.source.write_bytes(good[:64])  # truncated: unreadable while the pool embeds
        work = learning.embed_for_gate(plan, data, result, work_dir)
        assert [image_id for image_id, _ in work.references.failed] == [ref.image_id]
        ref.source.write_bytes(good)  # readable again: only a second read would notice
        report = learning.finish(lib, data, result, work, trust_catalog_check=True)
        assert report.decision is not None and report.decision.accept, report.decision
        assert report.activated and lib.model_version == plan.version

        def embedded(version: str) -> set[int]:
            sql = "SELECT image_id FROM embeddings WHERE model_version = ?"
            return {row[0] for row in lib.db.execute(sql, [version])}

        live = {row[0] for row in lib.db.execute("SELECT id FROM catalog_images")}
        assert embedded(plan.version) == live - {ref.image_id}
        assert len(lib.index) == len(live) - 1
        check_library(lib, repair=True)
        assert embedded(plan.version) == live


def test_online_eval_lets_later_photos_match_earlier_confirmed_ones(tmp_path: Path) -> None:
    """`eval --online`: photos of a product the catalog shows otherwise (product 500 sold as
    SKU-003) match it once the first one is confirmed; without --online none can."""
    from engine.evaluation import evaluate_dataset

    ds = eval_dataset(tmp_path / "ds", N_SKUS)
    with open(ds / "truth.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["photo", "sku"])
        for s in range(4):
            photo_of(product_image(500), s).save(ds / "p" / f"odd-{s}.jpg")
            w.writerow([f"p/odd-{s}.jpg", "SKU-003"])
    never = evaluate_dataset(ds)
    online = evaluate_dataset(ds, online=True)
    assert never.overall.n == online.overall.n == 4
    assert never.overall.top1 < 0.5  # the catalog alone does not know this picture
    assert online.overall.top1 >= 0.75  # all but the first, matched to the one before


def test_eval_with_train_csv_confirms_first(tmp_path: Path) -> None:
    """`eval --train --no-train`: instant memory alone, measured on unseen photos."""
    from engine.evaluation import evaluate_dataset

    ds = eval_dataset(tmp_path / "ds", N_SKUS)
    for name, seeds in (("train.csv", range(2)), ("truth.csv", range(10, 12))):
        with open(ds / name, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["photo", "sku"])
            for i in range(N_SKUS):
                for s in seeds:
                    photo_of(product_image(i), 50 * i + s).save(ds / "p" / f"{i}-{s}.jpg")
                    w.writerow([f"p/{i}-{s}.jpg", f"SKU-{i:03d}"])
    report = evaluate_dataset(ds, train_csv=ds / "train.csv", learn=False)
    data = report.to_dict()
    assert data["train_photos"] == 2 * N_SKUS and data["confirm_s"] > 0
    assert {"top1", "top5", "mrr", "map5", "images_per_s"} <= set(data)
    assert report.overall.n == 2 * N_SKUS and report.learning is None
