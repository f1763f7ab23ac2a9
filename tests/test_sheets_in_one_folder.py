"""Supplier sheets imported alone from one folder (Downloads, a mail attachments folder).

Each sheet imported alone is its own catalog: another supplier's sheet saved beside it
neither replaces it nor asks to, while the same supplier's next list (a new name each month)
takes over the one it follows, as importing it again would. Libraries written before this
keyed such imports by their folder; they upgrade as they are imported again.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from conftest import product_image
from engine.catalog_import import RemovalsNeedConsent
from engine.library import Library


def _sheet(folder: Path, name: str, skus: list[str], seed: int, tag: str = "") -> Path:
    """A CSV price list naming one picture per SKU, the pictures saved beside it (named
    ``<SKU><tag>.jpg``; a picture already there is kept)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["sku", "name", "image"])
        for i, sku in enumerate(skus):
            picture = folder / f"{sku}{tag}.jpg"
            if not picture.exists():
                product_image(seed + i).save(picture, quality=90)
            out.writerow([sku, f"Product {sku}", picture.name])
    return path


def _live(lib: Library) -> list[str]:
    """SKUs still in the catalog, with a supplier picture."""
    rows = lib.db.execute(
        "SELECT DISTINCT c.sku FROM catalog_images c JOIN products p ON p.sku = c.sku "
        "WHERE c.origin = 'catalog' AND p.withdrawn_at IS NULL ORDER BY c.sku"
    )
    return [str(sku) for (sku,) in rows]


A = ["A1", "A2", "A3", "A4"]
B = ["B1", "B2", "B3", "B4", "B5"]


def test_another_suppliers_sheet_beside_it_leaves_the_first_catalog_alone(
    tmp_path: Path,
) -> None:
    """Both sheets were keyed by their folder: the second import asked to take all of the
    first supplier's pictures out, and with --remove-missing it withdrew them."""
    downloads = tmp_path / "Downloads"
    first, second = _sheet(downloads, "alpha.csv", A, 10), _sheet(downloads, "beta.csv", B, 40)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(None, first)
        report = lib.import_catalog(None, second)  # removals="ask": nothing to ask
        assert (report.added, report.removed, report.copy_of) == (5, 0, None)
        assert _live(lib) == A + B
        # The first supplier's next list drops A4: only A4 leaves, B's products stay.
        _sheet(downloads, "alpha.csv", A[:3], 10)
        again = lib.import_catalog(None, first, removals="remove")
        assert (again.unchanged, again.removed) == (3, 1)
        assert _live(lib) == A[:3] + B


def test_the_same_suppliers_next_list_under_a_new_name_takes_over(tmp_path: Path) -> None:
    """'alpha-november.csv' lists most of 'alpha.csv's products: it is that catalog's next
    issue, so the products it no longer lists leave (as if alpha.csv were imported again),
    and a too large share leaving is asked about first."""
    downloads = tmp_path / "Downloads"
    october = _sheet(downloads, "alpha.csv", A, 10)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(None, october)
        lib.import_catalog(None, _sheet(downloads, "beta.csv", B, 40))
        november = _sheet(downloads, "alpha-november.csv", [*A[:3], "A5"], 10)
        report = lib.import_catalog(None, november)
        assert (report.added, report.unchanged, report.removed) == (1, 3, 1)
        assert _live(lib) == [*A[:3], "A5", *B]
        # December keeps one product of four: taken for another catalog that shares one
        # product, as a second distributor's would be. The app asks whether it replaces
        # November's; told so, the import asks before taking three products out.
        december = _sheet(downloads, "alpha-december.csv", ["A1", "A6", "A7", "A8", "A9"], 10)
        report = lib.import_catalog(None, december)
        assert (report.removed, report.copy_of) == (0, str(november.resolve()))
        with pytest.raises(RemovalsNeedConsent) as asked:
            lib.import_catalog(None, december, replaces=november)
        assert asked.value.skus == ["A2", "A3", "A5"]


def test_a_list_sharing_a_few_products_asks_whether_it_replaces_the_other(
    tmp_path: Path,
) -> None:
    """A second distributor lists A1 too, with its own picture: neither catalog is taken
    for the other's next issue, and the import says which sheet it overlaps (the app asks
    whether it replaces it; --replaces makes it so)."""
    downloads = tmp_path / "Downloads"
    first = _sheet(downloads, "alpha.csv", A, 10)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(None, first)
        gamma = _sheet(downloads, "gamma.csv", ["A1", "G1", "G2"], 70, tag="-gamma")
        report = lib.import_catalog(None, gamma)
        assert report.removed == 0 and _live(lib) == [*A, "G1", "G2"]
        assert report.copy_of == str(first.resolve())
        assert any("--replaces" in why for _where, why in report.notes), report.notes
        replaced = lib.import_catalog(None, gamma, removals="remove", replaces=first)
        assert replaced.removed == 4  # alpha's pictures: A1's too, gamma's picture stays
        assert _live(lib) == ["A1", "G1", "G2"]


def test_a_library_that_keyed_the_sheet_by_its_folder_upgrades_on_the_next_import(
    tmp_path: Path,
) -> None:
    """Before, a sheet imported alone was keyed by its folder, stored as a folder import
    with that sheet is: importing the sheet again takes its pictures over (a product it
    drops leaves), and another supplier's sheet beside it then leaves them alone."""
    downloads = tmp_path / "Downloads"
    first = _sheet(downloads, "alpha.csv", A, 10)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(downloads, first)  # rows keyed by the folder, as before
        _sheet(downloads, "alpha.csv", A[:3], 10)
        report = lib.import_catalog(None, first, removals="remove")
        assert (report.unchanged, report.removed) == (3, 1)
        lib.import_catalog(None, _sheet(downloads, "beta.csv", B, 40))
        assert _live(lib) == A[:3] + B
