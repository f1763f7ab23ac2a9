"""Remake the old-release libraries in this folder (run from the repository root, with its
history: ``python tests/data/old_libraries/make_fixtures.py``). Each library is made by the
released engine of an older commit (taken with ``git archive``, run in its own process), then
zipped without its model folders (the tests copy the bundled model in, the same version)
and thumbnails, so
that the tests need no git history.

- first-release-2f1f7c7.zip: schema v1 (no instant memory, the one index file
  index/catalog.usearch): 4 products imported, two photos matched, photo-of-000.jpg
  confirmed as SKU-000.
  Its index folder is kept: the old release's index file is what one test is about.
- dropped-cf6ece1.zip: schema v4: 4 products imported, photo-of-000.jpg matched and
  confirmed as SKU-000, then the supplier dropped SKU-000 (its sheet row and picture) and the
  catalog was imported again (its picture removed, the product and remembered photo kept).
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(REPO / "tests"))

from conftest import write_catalog, write_photos  # noqa: E402


def _tree(work: Path, commit: str) -> Path:
    tree = work / f"old-{commit}"
    tree.mkdir()
    archive = work / f"{commit}.tar"
    subprocess.run(
        ["git", "-C", str(REPO), "archive", "-o", str(archive), commit, "engine", "resources"],
        check=True,
    )
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def _run(tree: Path, lib: Path, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run(
        [sys.executable, "-m", "engine.cli", "--quiet", "--library", str(lib), *args],
        cwd=tree,
        env=env,
        check=True,
    )


def _zip(lib: Path, name: str, keep_index: bool = False) -> None:
    shutil.rmtree(lib / "models")
    shutil.rmtree(lib / "thumbs")  # the tests make their photos again from the same seeds
    if not keep_index:  # derived: the current code rebuilds it from the stored vectors
        shutil.rmtree(lib / "index")
    (lib / "shopmatch.lock").unlink(missing_ok=True)
    shutil.make_archive(str(HERE / name), "zip", lib)


def first_release(work: Path) -> None:
    tree = _tree(work, "2f1f7c7")
    sheet = write_catalog(work / "supplier", 4)
    assert sheet is not None
    photos = write_photos(work / "photos", [0, 1])
    lib = work / "lib"
    _run(tree, lib, "import", str(work / "supplier"), "--sheet", str(sheet))
    _run(tree, lib, "match", str(work / "photos"))
    _run(tree, lib, "confirm", str(photos[0]), "SKU-000")
    _zip(lib, "first-release-2f1f7c7", keep_index=True)


def dropped(work: Path) -> None:
    tree = _tree(work, "cf6ece1")
    supplier = work / "supplier"
    sheet = write_catalog(supplier, 4)
    assert sheet is not None
    (photo,) = write_photos(work / "photos", [0])
    lib = work / "lib"
    _run(tree, lib, "import", str(supplier), "--sheet", str(sheet))
    _run(tree, lib, "match", str(photo))
    _run(tree, lib, "confirm", str(photo), "SKU-000")
    with open(sheet, encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["SKU"] != "SKU-000"]
    with open(sheet, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (supplier / "images" / "SKU-000.jpg").unlink()
    _run(tree, lib, "import", str(supplier), "--sheet", str(sheet))
    _zip(lib, "dropped-cf6ece1")


if __name__ == "__main__":
    for make in (first_release, dropped):
        with tempfile.TemporaryDirectory() as work:
            make(Path(work))
