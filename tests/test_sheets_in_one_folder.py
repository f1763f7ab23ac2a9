"""Several supplier sheets in one folder (Downloads, a mail attachments folder).

Each supplier picture remembers the sheet that last listed it, and each sheet the products
it listed (schema 8): another supplier's sheet saved beside it, sharing no product, neither
takes its pictures out nor counts in the ask-first question. Sheets sharing products (the
same supplier's list renamed each month, a specials list) are one catalog, as they always
were: the review-44 section checks those flows behave as before schema 8.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from pathlib import Path

import pytest
from test_workbooks import _picture_list

from conftest import product_image, write_catalog
from conftest import write_price_list as _sheet
from engine import backups
from engine.catalog_import import RemovalsNeedConsent
from engine.db import DB_NAME, SCHEMA_VERSION
from engine.library import Library
from engine.progress import CancelToken, Progress


def _live(lib: Library) -> list[str]:
    """SKUs still in the catalog, with a supplier picture."""
    rows = lib.db.execute(
        "SELECT DISTINCT c.sku FROM catalog_images c JOIN products p ON p.sku = c.sku "
        "WHERE c.origin = 'catalog' AND p.withdrawn_at IS NULL ORDER BY c.sku"
    )
    return [str(sku) for (sku,) in rows]


def _as_schema_7(conn: sqlite3.Connection) -> None:
    """The library as schema 7 kept it: no sheet per picture, no sheets' product lists (nor
    what later versions added: v10's calibration columns; v9's indexes come back as they
    were)."""
    conn.executescript(
        """
        ALTER TABLE decisions DROP COLUMN by_score;
        ALTER TABLE suggestions DROP COLUMN scale;
        DROP INDEX catalog_images_sheet;
        DROP TABLE sheet_products;
        ALTER TABLE catalog_images DROP COLUMN sheet;
        """
    )


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


def test_the_same_suppliers_list_renamed_takes_over_its_pictures(tmp_path: Path) -> None:
    """'alpha.csv' saved again as 'alpha-november.csv' with a product added: it lists every
    product of the earlier list, so it carries that catalog on (a product it drops later
    leaves, as when alpha.csv is imported again); another supplier's sheet is not touched."""
    downloads = tmp_path / "Downloads"
    october = _sheet(downloads, "alpha.csv", A, 10)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(None, october)
        lib.import_catalog(None, _sheet(downloads, "beta.csv", B, 40))
        november = _sheet(downloads, "alpha-november.csv", [*A, "A5"], 10)
        report = lib.import_catalog(None, november)
        assert (report.added, report.unchanged, report.removed, report.copy_of) == (1, 4, 0, None)
        _sheet(downloads, "alpha-november.csv", [*A[1:], "A5"], 10)
        again = lib.import_catalog(None, november)
        assert (again.unchanged, again.removed) == (4, 1)
        assert _live(lib) == [*A[1:], "A5", *B]


def test_the_same_suppliers_next_list_under_a_new_name_carries_it_on(tmp_path: Path) -> None:
    """'alpha-november.csv' drops A4 and adds A5: the two lists share most of their
    products, so it is the supplier's next list and A4 leaves, as if alpha.csv were imported
    again; the other supplier's sheet beside them is not touched. December keeps one
    product of four: the import asks first, naming the list those products came with."""
    downloads = tmp_path / "Downloads"
    october = _sheet(downloads, "alpha.csv", A, 10)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(None, october)
        lib.import_catalog(None, _sheet(downloads, "beta.csv", B, 40))
        november = _sheet(downloads, "alpha-november.csv", [*A[:3], "A5"], 50)
        report = lib.import_catalog(None, november)
        assert (report.added, report.unchanged, report.removed) == (1, 3, 1)
        assert _live(lib) == [*A[:3], "A5", *B]
        december = _sheet(downloads, "alpha-december.csv", ["A1", "A6", "A7", "A8", "A9"], 60)
        with pytest.raises(RemovalsNeedConsent) as asked:
            lib.import_catalog(None, december)
        assert (asked.value.skus, asked.value.held) == (["A2", "A3", "A5"], 4)  # not beta's
        lib.import_catalog(None, december, removals="keep")
        assert _live(lib) == [*A[:3], "A5", "A6", "A7", "A8", "A9", *B]


def test_a_distributors_list_sharing_a_product_asks_before_taking_the_others_out(
    tmp_path: Path,
) -> None:
    """A second distributor's gamma.csv lists A1 too, with its own picture, and two
    products of its own: the lists share too little to be one list's issues, so the import
    asks before taking alpha's other products out, naming alpha.csv (not gamma.csv, never
    imported). Kept, both catalogs stay and A1 has both pictures."""
    downloads = tmp_path / "Downloads"
    alpha = _sheet(downloads, "alpha.csv", A, 10)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(None, alpha)
        gamma = _sheet(downloads, "gamma.csv", ["A1", "G1", "G2"], 70, tag="-gamma")
        with pytest.raises(RemovalsNeedConsent) as asked:
            lib.import_catalog(None, gamma)
        assert (asked.value.skus, asked.value.held) == (A, 4)
        report = lib.import_catalog(None, gamma, removals="keep")
        assert (report.added, report.removed) == (3, 0)
        assert _live(lib) == [*A, "G1", "G2"]
        (pictures,) = lib.db.execute("SELECT count(*) FROM catalog_images WHERE sku = 'A1'")
        assert pictures[0] == 2


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


# --- review 38 ------------------------------------------------------------------------------


def test_sheet_imported_alone_then_with_its_folder_still_drops_what_the_supplier_dropped(
    tmp_path: Path,
) -> None:
    """The shop imports the supplier's sheet alone (README: "import it alone, no folder
    needed"), and next month picks the catalog folder and the same sheet in the import
    dialog (or `shopmatch import Acme --sheet Acme/prices.csv`). The supplier dropped A4:
    the summary says '0 removed' and A4 keeps being suggested for ever. The first import
    keyed the pictures by the sheet's path, the folder import by the folder; an unchanged
    picture is never re-keyed, so the folder import owns none of them and removes nothing.
    Before d1505d4 both were keyed by the folder and A4 left."""
    acme = tmp_path / "Acme"
    sheet = _sheet(acme, "prices.csv", A, 10)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(None, sheet)
        _sheet(acme, "prices.csv", A[:3], 10)  # next month's list: A4 dropped
        report = lib.import_catalog(acme, sheet, removals="remove")
        assert _live(lib) == A[:3], (report.removed, report.unchanged)


def test_folder_import_then_sheet_alone_then_folder_again_drops_what_the_supplier_dropped(
    tmp_path: Path,
) -> None:
    """And back: catalog folder imported with its sheet; once, someone imports only the
    sheet (it takes the folder's catalog over, re-keyed to the sheet's path); the next
    folder import no longer removes a product the supplier dropped."""
    acme = tmp_path / "Acme"
    sheet = _sheet(acme, "prices.csv", A, 10)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(acme, sheet)
        lib.import_catalog(None, sheet)
        _sheet(acme, "prices.csv", A[:3], 10)
        report = lib.import_catalog(acme, sheet, removals="remove")
        assert _live(lib) == A[:3], (report.removed, report.unchanged)


def test_upgraded_library_that_kept_two_suppliers_in_downloads_does_not_withdraw_one(
    tmp_path: Path,
) -> None:
    """A library from before d1505d4: alpha.csv and beta.csv were imported alone from
    Downloads, both keyed by the folder; the second import asked first and the shop chose
    'Keep them' (the old release's own advice). After the upgrade, importing beta.csv again
    (unchanged, default ask-first) silently withdraws all of alpha's products: beta lists
    5 of the folder catalog's 9 pictured products (>= half), so the whole folder catalog,
    alpha's pictures included, is 'taken over' and alpha's 4 pictures leave without a
    question (4 of 9 is not 'most'). This is the very loss the change set out to end."""
    downloads = tmp_path / "Downloads"
    alpha = _sheet(downloads, "alpha.csv", A, 10)
    beta = _sheet(downloads, "beta.csv", B, 40)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(downloads, alpha)  # keyed by the folder, as before
        lib.import_catalog(downloads, beta, removals="keep")  # 'Keep them', as before
        assert _live(lib) == A + B
        report = lib.import_catalog(None, beta)  # nothing asked
        assert _live(lib) == A + B, (report.removed, report.notes)


# --- review 39 ------------------------------------------------------------------------------


def test_the_stick_under_another_letter_keeps_last_years_catalog_still_on_it(
    tmp_path: Path,
) -> None:
    """Two catalogs of one supplier on a USB stick: 'Acme 2025' (SKU-000..005) and
    'Acme 2026' (SKU-000..003 with the same pictures, plus two new products). Importing
    2026 noted the repeated pictures and the app asked 'Does this catalog replace the one
    imported from Acme 2025?'; the shop said No: 2025's products SKU-004/005 are still
    sold. Next time the stick comes up under another drive letter and the shop imports
    'Acme 2026' there: the summary says '2 removed' and SKU-004 and SKU-005 are withdrawn,
    never suggested again, though 'Acme 2025' sits untouched beside it on the stick and
    no file changed. The repeated pictures were followed by content (their old paths are
    gone with the old letter), which made 2025 look 'moved here'; _left_behind then takes
    its other pictures (also 'missing' under the old letter) out, without a question."""
    stick = tmp_path / "E"
    write_catalog(stick / "Acme 2025", 6)
    old = stick / "Acme 2026"
    write_catalog(old, 4)
    write_catalog(old / "new", 2, start=10, sheet=False)
    rows = (old / "sheet.csv").read_text(encoding="utf-8").splitlines()
    rows += [
        f"SKU-{i:03d},Product {i},Dairy,Acme,1.00,new/images/SKU-{i:03d}.jpg,c" for i in (10, 11)
    ]
    (old / "sheet.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(stick / "Acme 2025", stick / "Acme 2025" / "sheet.csv")
        first = lib.import_catalog(old, old / "sheet.csv")
        assert first.copy_of == str((stick / "Acme 2025").resolve())  # the app asks; 'No'
        assert _live(lib) == [f"SKU-{i:03d}" for i in (0, 1, 2, 3, 4, 5, 10, 11)]
        moved = stick.rename(tmp_path / "F")  # the same stick, another drive letter
        report = lib.import_catalog(moved / "Acme 2026", moved / "Acme 2026" / "sheet.csv")
        assert _live(lib) == [f"SKU-{i:03d}" for i in (0, 1, 2, 3, 4, 5, 10, 11)], (
            report.removed,
            report.notes,
        )


@pytest.mark.parametrize("deleted", [True, False], ids=["file deleted", "file stays"])
def test_next_months_folder_import_drops_a_product_after_a_list_was_imported_alone(
    tmp_path: Path, deleted: bool
) -> None:
    """The supplier sends its catalog folder with a price list named by month. October:
    'Acme' imported with 'prices-oct.csv'. November: someone imports only the new list,
    'prices-nov.csv' (a sheet can be imported alone; its pictures are found beside it).
    December: 'Acme' with 'prices-dec.csv' again, the supplier having dropped SKU-002, its
    picture deleted or still in images/ (as suppliers ship their folders). Reviews 39 and
    41: designs that keyed the November list by its own path said '0 removed', and SKU-002
    stayed suggested for good."""
    acme, text, october, november = _monthly(tmp_path / "Acme")
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(acme, october)
        november.write_text(text, encoding="utf-8")
        assert lib.import_catalog(None, november).unchanged == 4
        december = acme / "prices-dec.csv"
        december.write_text(_without(text, "SKU-002"), encoding="utf-8")
        if deleted:
            (acme / "images" / "SKU-002.jpg").unlink()
        report = lib.import_catalog(acme, december, removals="remove")
        paths = [Path(p) for (p,) in lib.db.execute("SELECT path FROM catalog_images")]
        missing = [p.name for p in paths if not p.exists()]
        assert "SKU-002" not in _live(lib) and not missing, (report.removed, missing)


def test_a_specials_list_saved_in_the_catalog_folder_never_withdraws_silently(
    tmp_path: Path,
) -> None:
    """The catalog folder 'Acme' is imported with its full list, prices.csv (SKU-000..005);
    a monthly specials list, specials.csv, saved in the same folder, is imported alone.
    November's specials (SKU-002/003 instead of October's SKU-000/001) withdrew SKU-000 and
    SKU-001 without a question, though prices.csv lists them and their pictures are there.
    Now it asks (the lists share too little to be one list's issues); kept, all stay."""
    acme = tmp_path / "Acme"
    write_catalog(acme, 6)
    full = (acme / "sheet.csv").read_text(encoding="utf-8").splitlines()
    prices = (acme / "sheet.csv").rename(acme / "prices.csv")
    specials = acme / "specials.csv"
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(acme, prices)
        specials.write_text("\n".join([full[0], full[1], full[2]]) + "\n", "utf-8")
        with pytest.raises(RemovalsNeedConsent):
            lib.import_catalog(None, specials)
        assert lib.import_catalog(None, specials, removals="keep").unchanged == 2
        specials.write_text("\n".join([full[0], full[3], full[4]]) + "\n", "utf-8")
        with pytest.raises(RemovalsNeedConsent):
            lib.import_catalog(None, specials)
        lib.import_catalog(None, specials, removals="keep")
        assert _live(lib) == [f"SKU-{i:03d}" for i in range(6)]


def test_a_library_from_before_sheets_were_remembered_upgrades_and_keeps_working(
    tmp_path: Path,
) -> None:
    """A schema-7 library (no sheet remembered per picture) is backed up and upgraded when
    opened: its pictures belong to no sheet, so the next import of the folder's sheet
    treats them as its own (the product it dropped leaves, as it always did) and from then
    on another supplier's sheet beside it leaves them alone."""
    downloads = tmp_path / "Downloads"
    alpha = _sheet(downloads, "alpha.csv", A, 10)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(None, alpha)
    with contextlib.closing(sqlite3.connect(tmp_path / "lib" / DB_NAME)) as conn:
        _as_schema_7(conn)
        conn.execute("PRAGMA user_version = 7")
        conn.commit()
    _sheet(downloads, "alpha.csv", A[:3], 10)
    with Library(tmp_path / "lib") as lib:
        assert lib.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION > 7
        assert lib.import_catalog(None, alpha).removed == 1
        lib.import_catalog(None, _sheet(downloads, "beta.csv", B, 40))
        assert _live(lib) == A[:3] + B
    assert "upgrade" in [b.reason for b in backups.list_backups(tmp_path / "lib")]


# --- review 41 ------------------------------------------------------------------------------


def _monthly(acme: Path) -> tuple[Path, str, Path, Path]:
    """The catalog folder 'Acme' (images/SKU-000..003) with October's list 'prices-oct.csv':
    the folder, the list's text, October's and November's list paths (November's unwritten)."""
    write_catalog(acme, 4)
    sheet = acme / "sheet.csv"
    text = sheet.read_text(encoding="utf-8")
    sheet.unlink()
    october, november = acme / "prices-oct.csv", acme / "prices-nov.csv"
    october.write_text(text, encoding="utf-8")
    return acme, text, october, november


def _without(text: str, sku: str) -> str:
    return "\n".join(x for x in text.splitlines() if sku not in x) + "\n"


def test_next_months_list_imported_alone_drops_what_the_supplier_dropped(
    tmp_path: Path,
) -> None:
    """October: the shop imports the catalog folder 'Acme' with 'prices-oct.csv'. November:
    the supplier mails only a new price list, 'prices-nov.csv', which drops SKU-003; the
    shop saves it into 'Acme' (the picture folder it already has is unchanged, SKU-003.jpg
    still in it) and imports the sheet alone (README: no folder needed). The summary says
    '0 removed', no note and no 'Does this catalog replace ...?' question: SKU-003 stays
    suggested. The folder catalog is taken over only when the list holds all its
    pictures (SKU-003.jpg is neither held nor deleted), and the overlap question is only
    for another sheet imported alone (never for the sheet's folder catalog), so the import
    neither carries the catalog on nor says anything. Two sheets imported alone in the
    same position are asked about (test_a_list_dropping_products_under_a_new_name_...).
    It stays for as long as the shop imports its monthly lists alone."""
    acme, text, october, november = _monthly(tmp_path / "Acme")
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(acme, october)
        november.write_text(_without(text, "SKU-003"), encoding="utf-8")
        report = lib.import_catalog(None, november)
        asked = report.copy_of is not None
        assert asked or "SKU-003" not in _live(lib), (report.summary(), report.notes)


def test_a_product_folder_deleted_with_its_product_takes_it_out(tmp_path: Path) -> None:
    """A supplier whose pictures sit in one folder per product (Acme/SKU-002/front.jpg),
    as many do. October: 'Acme' + 'prices-oct.csv'; November: 'prices-nov.csv' alone
    (takes the catalog over); December: the supplier drops SKU-002 and its folder, and
    the shop imports 'Acme' + 'prices-dec.csv'. '0 removed': SKU-002 stays suggested, its
    picture a file that no longer exists. _deleted counts a file as deleted only when its
    own parent folder is still there; a product folder deleted with it reads as 'out of
    reach' (an unplugged drive), though 'Acme', the folder being imported, is right there,
    so the November catalog is not carried on and the folder's catalog owns nothing."""
    acme = tmp_path / "Acme"
    write_catalog(acme, 4)
    lines = (acme / "sheet.csv").read_text(encoding="utf-8").splitlines()
    (acme / "sheet.csv").unlink()
    out = [lines[0]]
    for i, line in enumerate(lines[1:]):
        (acme / f"SKU-{i:03d}").mkdir()
        (acme / "images" / f"SKU-{i:03d}.jpg").rename(acme / f"SKU-{i:03d}" / "front.jpg")
        out.append(line.replace(f"images/SKU-{i:03d}.jpg", f"SKU-{i:03d}/front.jpg"))
    text = "\n".join(out) + "\n"
    october, november = acme / "prices-oct.csv", acme / "prices-nov.csv"
    october.write_text(text, encoding="utf-8")
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(acme, october)
        november.write_text(text, encoding="utf-8")
        assert lib.import_catalog(None, november).unchanged == 4
        (acme / "SKU-002" / "front.jpg").unlink()
        (acme / "SKU-002").rmdir()
        december = acme / "prices-dec.csv"
        december.write_text(_without(text, "SKU-002"), encoding="utf-8")
        report = lib.import_catalog(acme, december, removals="remove")
        paths = [Path(p) for (p,) in lib.db.execute("SELECT path FROM catalog_images")]
        missing = [str(p.relative_to(acme)) for p in paths if not p.exists()]
        assert "SKU-002" not in _live(lib) and not missing, (report.summary(), missing)


def test_two_suppliers_sheets_imported_with_their_pictures_folder_leave_each_other_alone(
    tmp_path: Path,
) -> None:
    """Two suppliers' price lists and their pictures land in Downloads. The shop fills in
    the import dialog as it asks: 'Images folder' Downloads (where the pictures are),
    'Product sheet' alpha.csv; next time the dialog comes back with Downloads filled in
    and the shop picks beta.csv as the sheet. That second import asks nothing and
    withdraws alpha's products (A1, A2: never suggested again), though alpha.csv and its
    pictures are untouched. 'A sheet is one catalog whether imported alone or with its
    folder' (README) holds only for a sheet imported alone: with a folder, both sheets'
    pictures are keyed by Downloads, so each list's import removes the other's pictures
    as its own missing files (2 leaving is below the ask-first threshold)."""
    from conftest import write_price_list

    downloads = tmp_path / "Downloads"
    alpha = write_price_list(downloads, "alpha.csv", ["A1", "A2"], 10)
    beta = write_price_list(downloads, "beta.csv", ["B1", "B2", "B3", "B4", "B5"], 40)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(downloads, alpha)
        report = lib.import_catalog(downloads, beta)  # default: ask first; nothing asked
        assert _live(lib) == ["A1", "A2", "B1", "B2", "B3", "B4", "B5"], (
            report.summary(),
            report.notes,
        )


# --- review 42 ------------------------------------------------------------------------------


def test_a_cancelled_import_keeps_its_pictures_from_the_next_sheet_of_the_folder(
    tmp_path: Path,
) -> None:
    """The shop imports beta.csv from Downloads and presses Cancel while it encodes
    ('run the import again to finish'). Before doing so it imports alpha.csv, the other
    supplier's list beside it, unchanged. The summary says '3 removed' and beta's products
    B1..B3 are withdrawn: never suggested again until beta.csv is imported once more,
    their remembered photos dropped from instant memory. Pictures are written in step 3
    with no ``sheet``; the sheet is set only in step 4, which a cancel never reaches, and
    ``_spared`` lets a picture 'no sheet brought in' leave with any sheet's import."""
    downloads = tmp_path / "Downloads"
    alpha = _sheet(downloads, "alpha.csv", [*A, "A5", "A6"], 10)
    beta = _sheet(downloads, "beta.csv", B[:3], 40)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(None, alpha)
        token = CancelToken()

        def stop_after_encoding(p: Progress) -> None:
            if p.stage.startswith("Encoding") and p.done:
                token.cancel()

        cut = lib.import_catalog(None, beta, progress=stop_after_encoding, cancel=token)
        assert cut.cancelled and cut.added == 3  # beta's pictures are in, encoded
        report = lib.import_catalog(None, alpha)  # unchanged; asks nothing
        assert _live(lib) == [*A, "A5", "A6", *B[:3]], report.summary()


def test_the_ask_first_check_counts_only_the_pictures_at_stake(
    tmp_path: Path,
) -> None:
    """alpha.csv (4 products) sits in Downloads beside beta.csv (12 products). The supplier
    mails 'alpha.csv' again, this time listing only its 4 new products (the README's own
    example: 'a sheet of new products only, the wrong sheet'), and the shop imports it as
    always. Nothing is asked; A1..A4 are withdrawn. The ask-first rule compares the
    pictures leaving with every picture of the folder, beta's included, though beta's
    can never leave with alpha's import: 4 of 16 is not 'most'. Before schema 8 the same
    sheet imported alone was asked about (4 of its 4 pictures)."""
    downloads = tmp_path / "Downloads"
    alpha = _sheet(downloads, "alpha.csv", A, 10)
    beta = _sheet(downloads, "beta.csv", [f"B{i}" for i in range(1, 13)], 40)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(None, alpha)
        lib.import_catalog(None, beta)
        _sheet(downloads, "alpha.csv", ["N1", "N2", "N3", "N4"], 60)  # new products only
        with pytest.raises(RemovalsNeedConsent):
            lib.import_catalog(None, alpha)


def test_replacing_downloads_replaces_only_the_sheet_repeated(tmp_path: Path) -> None:
    """alpha.csv and beta.csv (two suppliers) were imported from Downloads. Alpha then
    ships its catalog as a folder, 'Acme', with the same pictures; importing it notes the
    repeated pictures and the app asks 'Does this catalog replace the one imported from
    Downloads?'. It does (it is alpha's newer copy): Yes. The import asks nothing more and
    withdraws beta's B1 and B2, which nobody replaced. --replaces re-keys every picture of
    the older folder to this import and this sheet, though a folder now holds several
    sheets' catalogs; beta's pictures then count as this sheet's missing files."""
    downloads = tmp_path / "Downloads"
    alpha = _sheet(downloads, "alpha.csv", A, 10)
    beta = _sheet(downloads, "beta.csv", ["B1", "B2"], 40)
    acme = tmp_path / "Acme"
    acme.mkdir()
    for sku in A:
        shutil.copy(downloads / f"{sku}.jpg", acme / f"{sku}.jpg")
    shutil.copy(alpha, acme / "prices.csv")
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(None, alpha)
        lib.import_catalog(None, beta)
        first = lib.import_catalog(acme, acme / "prices.csv")
        assert first.copy_of == str(downloads.resolve())  # the app asks; the shop: Yes
        report = lib.import_catalog(acme, acme / "prices.csv", replaces=downloads)
        assert _live(lib) == [*A, "B1", "B2"], report.summary()


def test_a_picture_the_supplier_replaced_leaves_once_the_list_is_renamed(
    tmp_path: Path,
) -> None:
    """October: 'Acme' imported with prices-oct.csv. November's zip, unpacked over the
    folder, replaces SKU-001's picture (new packaging, or a wrong shot corrected):
    prices-nov.csv names a new file, SKU-001-v2.jpg (the old file stays: unzipping
    leaves it). The import of 'Acme' with prices-nov.csv keeps the old picture as a second
    picture of SKU-001, for good: were it the wrong shot, photos of the product it shows
    go on being offered SKU-001. With the list under its old name the old picture leaves (checked
    first). _spared keeps 'another sheet's picture of a product this sheet lists' whenever its file
    exists, with no exception for the sheet this one carries on; and a picture is handed
    over only when a product leaves (``followed``), never when nothing is dropped."""

    def run(lists: tuple[str, str]) -> int:
        acme = tmp_path / lists[1] / "Acme"
        _sheet(acme, lists[0], ["SKU-000", "SKU-001", "SKU-002"], 10)
        with Library(tmp_path / lists[1] / "lib") as lib:
            lib.import_catalog(acme, acme / lists[0])
            product_image(99).save(acme / "SKU-001-v2.jpg", quality=90)
            text = (
                (acme / lists[0])
                .read_text(encoding="utf-8")
                .replace("SKU-001.jpg", "SKU-001-v2.jpg")
            )
            (acme / lists[1]).write_text(text, encoding="utf-8")
            lib.import_catalog(acme, acme / lists[1])
            (n,) = lib.db.execute(
                "SELECT count(*) FROM catalog_images WHERE sku = 'SKU-001' AND origin = 'catalog'"
            ).fetchone()
            return int(n)

    assert run(("prices.csv", "prices.csv")) == 1  # same name: the old picture leaves
    assert run(("prices-oct.csv", "prices-nov.csv")) == 1


# --- review 43 ------------------------------------------------------------------------------


def _list_by_sku(path: Path, skus: list[str]) -> Path:
    """A price list with no image column: its pictures are the files named after the SKU."""
    lines = ["SKU,Name,Price"] + [f"{sku},Product {sku},{i + 1}.50" for i, sku in enumerate(skus)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_next_months_picture_workbook_dropping_one_product_goes_through(
    tmp_path: Path,
) -> None:
    """One supplier mails a workbook with its pictures pasted in the rows, named by month:
    'Preisliste 2026-01.xlsx' (E0..E7), then 'Preisliste 2026-02.xlsx' with the same eight
    pictures less E7 (discontinued). The shop imports February's list as it imported
    January's (default removals="ask"). It is stopped with RemovalsNeedConsent ('this import
    would take 1 of the 8 pictures imported from Preisliste 2026-01.xlsx ...'); on the
    command line the monthly import fails and must be rerun with --remove-missing. One
    picture of eight is everyday upkeep (ASK_ABOVE): before d355c7b it went through and E7
    left. The check's _relation looks for January's very files in February's plan
    (``present.paths``), but a renamed workbook's pictures are saved into a new folder
    ('Preisliste 2026-02 pictures'): it is followed by (SKU, size) only, so the check takes
    February for 'unsure' about January, not its next issue (which step 4, after the
    pictures were followed, does find)."""
    supplier = tmp_path / "Acme"
    supplier.mkdir()
    skus = [f"E{i}" for i in range(8)]
    january = _picture_list(supplier / "Preisliste 2026-01.xlsx", skus, list(range(8)))
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(None, january)
        assert _live(lib) == skus
        february = _picture_list(supplier / "Preisliste 2026-02.xlsx", skus[:7], list(range(7)))
        report = lib.import_catalog(None, february)  # the default: ask only when it must
        assert report.removed == 1, report.summary()
        assert _live(lib) == skus[:7]


def test_next_months_list_with_unpictured_products_drops_one_without_asking(
    tmp_path: Path,
) -> None:
    """One supplier, one catalog folder 'Acme': pictures images/SKU-000..005.jpg, and a
    monthly price list with no image column (pictures found by file name) that, like most
    suppliers' lists, also names products it has no picture for (SKU-006..013). January:
    'Acme' + prices-jan.csv. February: 'Acme' + prices-feb.csv, which drops SKU-005 (its
    file stays in images/: the zip is unpacked over the folder). The import stops with
    RemovalsNeedConsent about 1 picture of 6 (the CLI's monthly job fails), where the
    release before asked nothing and SKU-005 left. _relation takes prices-jan.csv for
    February's earlier issue only when the SKUs they share are more than half of
    'prices-jan's pictured SKUs | every SKU February lists': the eight products without
    a picture count against it (5 shared of 14), so every renamed list of such a supplier
    is 'unsure' and each dropped product is 'the user's call'."""
    acme = tmp_path / "Acme"
    (acme / "images").mkdir(parents=True)
    for i in range(6):
        product_image(i).save(acme / "images" / f"SKU-{i:03d}.jpg", quality=90)
    skus = [f"SKU-{i:03d}" for i in range(14)]
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(acme, _list_by_sku(acme / "prices-jan.csv", skus))
        assert _live(lib) == skus[:6]
        february = _list_by_sku(acme / "prices-feb.csv", skus[:5] + skus[6:])
        report = lib.import_catalog(acme, february)  # the default: ask only when it must
        assert report.removed == 1, report.summary()
        assert _live(lib) == skus[:5]


def test_the_folder_imported_without_its_sheet_counts_its_pictures(tmp_path: Path) -> None:
    """'Acme' (pictures named by SKU, images/SKU-000..009.jpg) is imported with its price
    list prices.csv (no image column). Next month the supplier sends only pictures: three
    products are gone from the folder (files deleted), the list has not changed. The shop
    imports the folder alone (the dialog's sheet field left empty; `import Acme` on the
    command line). It is stopped with 'this import would take 3 of the 0 pictures imported
    from .../prices.csv out of the catalog': three of ten is not most of the catalog
    (before d355c7b: no question, the three left), and '3 of the 0' is nonsense. With no
    sheet ``_spared`` lets every picture of the folder leave, any sheet's included, but
    ``_check_removals`` counts as 'at stake' only pictures of no sheet or of this sheet
    (``scope.own`` compares with a key of None) and those of 'touched' sheets (none
    without a sheet), so the sheet's pictures leave without being at stake."""
    acme = tmp_path / "Acme"
    (acme / "images").mkdir(parents=True)
    skus = [f"SKU-{i:03d}" for i in range(10)]
    for i, sku in enumerate(skus):
        product_image(i).save(acme / "images" / f"{sku}.jpg", quality=90)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(acme, _list_by_sku(acme / "prices.csv", skus))
        for sku in skus[7:]:
            (acme / "images" / f"{sku}.jpg").unlink()
        report = lib.import_catalog(acme, None)  # the default: ask only when it must
        assert report.removed == 3, report.summary()
        assert _live(lib) == skus[:7]


def test_the_same_list_with_next_months_copy_of_the_pictures_keeps_them(tmp_path: Path) -> None:
    """The supplier's standing list 'acme.csv' (in Downloads, naming images/SKU-000.jpg..)
    is imported with the pictures folder of its January zip, 'Acme 2026-01'. February's
    zip unpacks beside it as 'Acme 2026-02' (the same pictures); the shop imports
    acme.csv with the new folder (the dialog keeps a sheet chosen from elsewhere when the
    folder changes). Nothing is asked, the summary says '6 removed' and 6 'same picture
    as ..., skipped': every product is left without a picture, never suggested (and the
    'Does this catalog replace ...?' question that follows then fails, 'no catalog
    pictures were imported from Acme 2026-01'). Before d355c7b the January pictures stayed
    and the question offered to carry them on. ``_Scope.rows`` takes in every picture
    acme.csv brought in, from any folder, as this import's own; the copies in the new
    folder were skipped as duplicates of those very pictures (the check counted them as
    held by SKU and size, so it asked nothing), and step 4 removes them all."""
    downloads, old, new = (
        tmp_path / "Downloads",
        tmp_path / "Acme 2026-01",
        tmp_path / "Acme 2026-02",
    )
    (old / "images").mkdir(parents=True)
    (new / "images").mkdir(parents=True)
    skus = [f"SKU-{i:03d}" for i in range(6)]
    for i, sku in enumerate(skus):
        product_image(i).save(old / "images" / f"{sku}.jpg", quality=90)
        (new / "images" / f"{sku}.jpg").write_bytes((old / "images" / f"{sku}.jpg").read_bytes())
    downloads.mkdir()
    sheet = downloads / "acme.csv"
    sheet.write_text(
        "SKU,Name,Image\n" + "".join(f"{s},Product {s},images/{s}.jpg\n" for s in skus),
        encoding="utf-8",
    )
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(old, sheet)
        assert _live(lib) == skus
        report = lib.import_catalog(new, sheet)  # the default: ask only when it must
        assert report.removed == 0, report.summary()
        assert _live(lib) == skus


# --- review 44: one supplier's monthly flows, as before schema 8 --------------------------------

P = [f"P{i:02d}" for i in range(10)]


def _pictures(folder: Path, skus: list[str]) -> None:
    """images/<SKU>.jpg, each product's own picture (seeded by its name), kept if there."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    for sku in skus:
        path = folder / "images" / f"{sku}.jpg"
        if not path.exists():
            product_image(sum(map(ord, sku)) * 7 + len(sku)).save(path, quality=90)


def _list(path: Path, skus: list[str]) -> Path:
    """The supplier's price list naming images/<SKU>.jpg (its pictures saved beside it)."""
    _pictures(path.parent, skus)
    lines = ["SKU,Name,Price,Image"] + [
        f"{sku},Product {sku},{i + 1}.50,images/{sku}.jpg" for i, sku in enumerate(skus)
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_product_added_one_month_and_dropped_later_goes_without_a_question(
    tmp_path: Path,
) -> None:
    """One supplier, one folder 'Acme', a price list renamed monthly. January: P00..P09.
    February's list adds two products (N1, N2) and drops nothing. March's list drops N1
    (a trial product that did not sell; its file stays, the zip is unpacked over the
    folder). 7c9d7aa: 1 picture of 12 leaves, nothing asked. e48bfee: RemovalsNeedConsent
    ('1 of the 2 pictures imported from prices-feb.csv'), the monthly CLI job fails."""
    acme = tmp_path / "Acme"
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(acme, _list(acme / "prices-jan.csv", P))
        lib.import_catalog(acme, _list(acme / "prices-feb.csv", [*P, "N1", "N2"]))
        assert _live(lib) == ["N1", "N2", *P]
        report = lib.import_catalog(acme, _list(acme / "prices-mar.csv", [*P, "N2"]))
        assert report.removed == 1, report.summary()
        assert _live(lib) == ["N2", *P]


def test_a_seasonal_range_change_under_a_new_list_name_goes_without_a_question(
    tmp_path: Path,
) -> None:
    """One supplier, one folder 'Acme'. Autumn list (prices-autumn.csv): P00..P09. The
    winter list (prices-winter.csv) keeps P00..P05, drops the four autumn specials
    P06..P09 and adds six winter products W1..W6. 4 of 10 pictures leave: 7c9d7aa lets it
    through (not most of the catalog). e48bfee asks: _relation takes the autumn list for
    'unsure' (6 shared products are not more than half of the 16 either pictures)."""
    acme = tmp_path / "Acme"
    winter = P[:6] + [f"W{i}" for i in range(1, 7)]
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(acme, _list(acme / "prices-autumn.csv", P))
        report = lib.import_catalog(acme, _list(acme / "prices-winter.csv", winter))
        assert report.removed == 4, report.summary()
        assert _live(lib) == sorted(winter)


def test_the_consent_question_counts_the_pictures_that_leave_of_what_it_names(
    tmp_path: Path,
) -> None:
    """One supplier, one folder, a list renamed monthly. January: P00..P03. February adds
    N1..N4 (drops nothing). March keeps only P00 and N1: 6 of the 8 pictures would leave,
    and both releases ask. 7c9d7aa: '6 of the 8 pictures imported from Acme'. e48bfee:
    '6 of the 4 pictures imported from .../prices-jan.csv': it names the sheet most of the
    leaving pictures came with, counts that sheet's pictures as held, but every leaving
    picture (February's too) as leaving."""
    acme = tmp_path / "Acme"
    news = ["N1", "N2", "N3", "N4"]
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(acme, _list(acme / "prices-jan.csv", P[:4]))
        lib.import_catalog(acme, _list(acme / "prices-feb.csv", P[:4] + news))
        with pytest.raises(RemovalsNeedConsent) as asked:
            lib.import_catalog(acme, _list(acme / "prices-mar.csv", ["P00", "N1"]))
        named = asked.value.folder
        # What stays of what it names must be what is held less what leaves.
        named_rows = [
            sku
            for path, sku in lib.db.execute(
                "SELECT path, sku FROM catalog_images WHERE origin = 'catalog'"
            )
            if named == acme.resolve() or sku in P[:4]
        ]
        staying = [sku for sku in named_rows if sku in ("P00", "N1")]
        assert asked.value.held == len(named_rows), str(asked.value)
        assert asked.value.held - asked.value.leaving == len(staying), str(asked.value)


def test_an_upgraded_library_with_a_monthly_renamed_list_drops_one_product_quietly(
    tmp_path: Path,
) -> None:
    """A library from before schema 8 (made here, then its ``sheet`` column dropped as
    schema 7 had none): 'Acme' imported with prices-jan.csv, then prices-feb.csv (the
    same products). After the upgrade, March's list drops P09: one picture of ten, which
    7c9d7aa removes without a word. e48bfee asks ('1 of the 10 pictures imported from
    Acme'): no picture has a sheet, and the folder 'had several sheets imported from it',
    every month's list counting as another sheet."""
    acme = tmp_path / "Acme"
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(acme, _list(acme / "prices-jan.csv", P))
        lib.import_catalog(acme, _list(acme / "prices-feb.csv", P))
    with contextlib.closing(sqlite3.connect(tmp_path / "lib" / DB_NAME)) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(catalog_images)")]
        if "sheet" in columns:
            _as_schema_7(conn)
        conn.execute("PRAGMA user_version = 7")
        conn.commit()
    with Library(tmp_path / "lib") as lib:
        report = lib.import_catalog(acme, _list(acme / "prices-mar.csv", P[:9]))
        assert report.removed == 1, report.summary()
        assert _live(lib) == P[:9]


def test_next_months_folder_replacing_last_months_takes_out_what_it_dropped(
    tmp_path: Path,
) -> None:
    """'Acme' was imported monthly with a renamed list: prices-nov.csv (P00..P09), then
    prices-dec.csv adding N1 and N2. In January the supplier ships a whole new folder,
    'Acme 2026-01' (the same pictures, N1 and N2 discontinued). Its import notes the
    repeated pictures; the shop answers Yes to 'Does this catalog replace the one imported
    from Acme?'. 7c9d7aa: N1 and N2 leave. e48bfee: they stay suggested for good, as
    products of the old folder nobody imports any more (_held_sheets replaces only
    prices-nov.csv, whose pictures the new folder holds; December's pictures stay)."""
    acme, new = tmp_path / "Acme", tmp_path / "Acme 2026-01"
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(acme, _list(acme / "prices-nov.csv", P))
        lib.import_catalog(acme, _list(acme / "prices-dec.csv", [*P, "N1", "N2"]))
        (new / "images").mkdir(parents=True)
        for sku in P:
            (new / "images" / f"{sku}.jpg").write_bytes(
                (acme / "images" / f"{sku}.jpg").read_bytes()
            )
        sheet = _list(new / "prices.csv", P)
        first = lib.import_catalog(new, sheet)
        assert first.copy_of == str(acme.resolve()), first.notes
        report = lib.import_catalog(new, sheet, replaces=acme)
        assert _live(lib) == P, report.summary()
