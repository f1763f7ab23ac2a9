"""eval's inputs, review 21's findings: truth photos that are copies of train photos, catalog
pictures eval could not import, a semicolon truth.csv, and --no-train with --adapt. Each test
failed on the code it was written against, for the reason in its docstring. Real throw-away
libraries, real ONNX models, generated images."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, eval_dataset, photo_of, product_image

N_SKUS = 6


def _shopmatch(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "engine", "--quiet", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _write_truth(ds: Path, name: str, seeds: range, delimiter: str = ",") -> Path:
    """A truth/train CSV of N_SKUS x seeds generated photos of the catalog products."""
    path = ds / name
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh, delimiter=delimiter)
        w.writerow(["photo", "sku"])
        for i in range(N_SKUS):
            for s in seeds:
                photo_of(product_image(i), 50 * i + s).save(ds / "p" / f"{i}-{s}.jpg")
                w.writerow([f"p/{i}-{s}.jpg", f"SKU-{i:03d}"])
    return path


# -- eval: truth photos that are copies of train photos --------------------------------------
def test_eval_refuses_truth_photos_that_are_copies_of_train_photos(tmp_path: Path) -> None:
    """`eval DIR --train train.csv` refuses a photo listed in both CSVs ('the gain would be
    measured on photos it learnt from'), but only by path. The same picture under another
    name (a copied folder, a photo exported twice) is one photo to the library (photos are
    keyed by content), so instant memory answers it with itself: here top-1 goes from 0.17
    to a perfect 1.000 that measures nothing, without a word."""
    from engine.evaluation import evaluate_dataset

    ds = eval_dataset(tmp_path / "ds", N_SKUS)
    for name in ("train", "truth"):
        with open(ds / f"{name}.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["photo", "sku"])
            for i in range(N_SKUS):
                target = ds / "p" / f"{name}-{i}.jpg"
                if name == "train":  # a product the catalog shows otherwise
                    photo_of(product_image(500 + i), i).save(target)
                else:
                    shutil.copyfile(ds / "p" / f"train-{i}.jpg", target)
                w.writerow([f"p/{name}-{i}.jpg", f"SKU-{i:03d}"])
    with pytest.raises(ValueError, match=r"truth\.csv"):
        report = evaluate_dataset(ds, train_csv=ds / "train.csv", learn=False)
        pytest.fail(f"evaluated on copies of the train photos: top-1 {report.overall.top1:.3f}")


# -- eval: catalog pictures that could not be imported ---------------------------------------
def test_eval_says_which_catalog_pictures_it_could_not_import(tmp_path: Path) -> None:
    """Two of six catalog pictures are missing or empty (an unzip cut short). `eval` imports
    what it can, throws the import report away, and prints top-1 0.667 with no word of it:
    the two products can never be suggested, so every photo of them counts as a miss, and
    the figure reads as the model's quality. `import` lists such files with a reason; eval
    should too (or refuse)."""
    ds = eval_dataset(tmp_path / "ds", N_SKUS)
    (ds / "images" / "SKU-002.jpg").write_bytes(b"")
    (ds / "images" / "SKU-003.jpg").unlink()
    _write_truth(ds, "truth.csv", range(1))
    proc = _shopmatch("eval", str(ds))
    assert proc.returncode == 0, proc.stderr
    said = proc.stdout + proc.stderr
    assert "top-1 0.667" in proc.stdout  # the figure the missing pictures cost
    assert "SKU-002.jpg" in said and "SKU-003.jpg" in said, said


# -- eval: a truth.csv saved by a decimal-comma Excel -----------------------------------------
def test_eval_reads_a_semicolon_truth_csv_as_it_reads_a_semicolon_catalog(tmp_path: Path) -> None:
    """catalog.csv may be comma, semicolon or tab separated (the sheet reader); truth.csv
    and train.csv saved from the same German or French Excel are semicolon separated and
    refused with 'truth.csv needs the columns photo,sku', although it has exactly those
    columns. It should be read (or the message should name the separator)."""
    from engine.evaluation import read_truth

    ds = eval_dataset(tmp_path / "ds", N_SKUS)
    path = _write_truth(ds, "truth.csv", range(1), delimiter=";")
    assert len(read_truth(path)) == N_SKUS
    # Excel's 'CSV (Macintosh)': lone CR line ends, as the catalog sheet reader takes them.
    mac = ds / "mac.csv"
    mac.write_bytes(path.read_bytes().replace(b"\r\n", b"\r"))
    assert b"\n" not in mac.read_bytes()
    assert read_truth(mac) == read_truth(path)


# -- eval: --no-train with --adapt -------------------------------------------------------------
def test_eval_no_train_is_not_overruled_by_adapt(tmp_path: Path) -> None:
    """`eval --train T --no-train` promises 'confirm only, do not train a model'; adding
    --adapt (documented as 'without --train') trains and gates a model anyway, and the
    figures printed are then a trained model's. Contradictory options should be refused, as
    --no-train without --train is."""
    pytest.importorskip("torch")
    ds = eval_dataset(tmp_path / "ds", N_SKUS)
    _write_truth(ds, "train.csv", range(2))
    _write_truth(ds, "truth.csv", range(10, 11))
    proc = _shopmatch(
        "eval",
        str(ds),
        "--train",
        str(ds / "train.csv"),
        "--no-train",
        "--adapt",
        "--json",
        "--epochs",
        "1",
        "--members",
        "1",
        "--input-size",
        "64",
    )
    if proc.returncode == 0:
        data = json.loads(proc.stdout)
        assert data.get("learning") is None, "--no-train was given, yet a model was trained"


def test_eval_online_refuses_truth_photos_that_repeat_an_earlier_one(tmp_path: Path) -> None:
    """`eval --online` confirms each truth photo before the next is matched. A truth.csv
    listing the same picture twice (a photo exported twice) answers the second with the first
    from instant memory: a hit that measures nothing. Batch eval is unaffected, so only
    --online refuses, naming both files."""
    from engine.evaluation import evaluate_dataset

    ds = eval_dataset(tmp_path / "ds", N_SKUS)
    truth = _write_truth(ds, "truth.csv", range(2))
    shutil.copyfile(ds / "p" / "3-0.jpg", ds / "p" / "again.jpg")
    with open(truth, "a", newline="") as fh:
        csv.writer(fh).writerow(["p/again.jpg", "SKU-003"])
    with pytest.raises(ValueError, match=r"p/again\.jpg is p/3-0\.jpg"):
        evaluate_dataset(ds, online=True)
    report = evaluate_dataset(ds)  # without --online the copy is just one more photo
    assert report.overall.n == 2 * N_SKUS + 1
