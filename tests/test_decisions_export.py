"""Rejections, withdrawn products, sheet text on the terminal, and where and how an export is
written: real libraries, real files, the CLI run as a real process."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from conftest import cli, product_image, write_catalog
from engine.decisions import DecisionError
from engine.export_csv import PHOTO_COLUMNS, inventory_csv, safe_cell
from engine.library import Library


def pictures(folder: Path, names: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(names):
        product_image(i).save(folder / name, quality=90)


@pytest.fixture
def rejected_top(tmp_path: Path) -> tuple[Path, str, str]:
    """A photo (id 1) matched with two suggestions, whose top one staff then rejected."""
    sup = tmp_path / "sup"
    pictures(sup, ["a.jpg", "b.jpg"])
    (sup / "sheet.csv").write_text("sku,name,price,image\nA,Apple,1.29,a.jpg\nB,Banana,2,b.jpg\n")
    lib_dir = tmp_path / "lib"
    photo = tmp_path / "p.jpg"
    product_image(0).save(photo)
    with Library(lib_dir) as lib:
        lib.import_catalog(sup, sup / "sheet.csv")
        (m,) = list(lib.match([photo]))
        top, second = m.suggestions[0].sku, m.suggestions[1].sku
        lib.reject(m.photo_id, top)
    return lib_dir, top, second


# -- rejected suggestions (findings 5 and 6) ------------------------------------------------------
def test_default_confirm_takes_the_best_suggestion_not_rejected(
    rejected_top: tuple[Path, str, str],
) -> None:
    """'reject 1 A' then 'confirm 1' confirmed A, and 'match' showed A first unmarked."""
    lib_dir, top, second = rejected_top
    shown = cli(lib_dir, "match", str(lib_dir.parent / "p.jpg"), "--top", "2").stdout.splitlines()
    assert shown[1].endswith("(rejected)") and f" {top} " in shown[1], shown
    assert "rejected" not in shown[2], shown
    done = cli(lib_dir, "confirm", "1")
    assert done.returncode == 0 and f"confirmed {second}, was suggestion #2" in done.stdout, done
    with Library(lib_dir) as lib:
        assert lib.photo_state(1).decision.sku == second  # type: ignore[union-attr]
        lib.undo(1)
        lib.reject(1, second)
        with pytest.raises(DecisionError, match=r"every suggestion was rejected \(A, B\)"):
            lib.confirm(1)
        assert lib.photo_state(1).status == "suggested"


def test_export_all_suggests_no_rejected_sku(rejected_top: tuple[Path, str, str]) -> None:
    """'export --all' listed an undecided photo as 'suggested' with the SKU just rejected."""
    lib_dir, _top, second = rejected_top
    with Library(lib_dir) as lib:
        data, _n = inventory_csv(lib, include_undecided=True)
        (row,) = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
        assert (row["status"], row["sku"], row["rank"]) == ("suggested", second, "2")
        lib.reject(1, second)  # nothing left to suggest: waiting for staff, with no SKU
        data, _n = inventory_csv(lib, include_undecided=True)
        (row,) = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
        assert (row["status"], row["sku"]) == ("pending", "")


# -- where an export may go (findings 16 and 23) --------------------------------------------------
def test_export_refuses_the_imported_sheet_and_a_missing_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'export supplier/sheet.csv' replaced the catalog sheet the library came from, and
    'export ~/Documnets/sub/inventory.csv' created the mistyped folders."""
    sheet = write_catalog(tmp_path / "sup", 2)
    assert sheet is not None
    before = sheet.read_bytes()
    lib_dir = tmp_path / "lib"
    with Library(lib_dir) as lib:
        lib.import_catalog(tmp_path / "sup", sheet)
        with pytest.raises(ValueError, match="the catalog sheet this library was imported from"):
            lib.export_csv(sheet)
        # By another spelling of the same path too.
        with pytest.raises(ValueError, match="imported from"):
            lib.export_csv(tmp_path / "sup" / "images" / ".." / "sheet.csv")
    assert sheet.read_bytes() == before
    # Imported by a relative path (stored as typed), from a working folder since left.
    monkeypatch.chdir(tmp_path)
    with Library(tmp_path / "lib2") as lib:
        lib.import_catalog(Path("sup"), Path("sup") / "sheet.csv")
    monkeypatch.chdir(tmp_path / "sup" / "images")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "sheet.csv").write_text("an earlier export")
    with Library(tmp_path / "lib2") as lib:
        with pytest.raises(ValueError, match="imported from"):
            lib.export_csv(sheet)
        assert lib.export_csv(tmp_path / "other" / "sheet.csv") == 0  # another file of that name
    assert sheet.read_bytes() == before
    target = tmp_path / "Documnets" / "sub" / "inventory.csv"
    done = cli(lib_dir, "export", str(target))
    assert done.returncode == 1 and not (tmp_path / "Documnets").exists()
    assert done.stderr.splitlines() == [f"shopmatch: error: folder not found: {target.parent}"]


# -- the separator (finding 22) --------------------------------------------------------------------
def _old_export(rows: list[dict[str, object]]) -> bytes:
    """The export as it was written before the separator choice: the default must not move."""
    buf = io.StringIO(newline="")
    writer = csv.DictWriter(buf, fieldnames=PHOTO_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: safe_cell(row.get(c)) for c in PHOTO_COLUMNS})
    return buf.getvalue().encode("utf-8-sig")


def test_export_separator_choice_and_library_default(tmp_path: Path) -> None:
    sup = tmp_path / "sup"
    pictures(sup, ["a.jpg", "b.jpg"])
    (sup / "preisliste.csv").write_text(
        "Artikel-Nr.;Bezeichnung;Preis;Bild\nA1;Crème;1,29;a.jpg\nB2;Brot;2,5;b.jpg\n",
        encoding="cp1252",
    )
    photo = tmp_path / "p.jpg"
    product_image(0).save(photo)
    with Library(tmp_path / "lib") as lib:
        lib.import_catalog(sup, sup / "preisliste.csv")
        (m,) = list(lib.match([photo]))
        lib.confirm(m.photo_id, "A1")
        d = lib.photo_state(m.photo_id).decision
        assert d is not None and d.score is not None
        assert lib.setting("export_separator", "") == "semicolon"  # the ';' sheet's import
        lib.set_setting("export_separator", "comma")
        comma, _n = inventory_csv(lib)
        assert comma == inventory_csv(lib, separator="comma")[0]
        from engine.export_csv import local_time

        assert comma == _old_export(
            [
                {
                    "photo": str(photo.resolve()),
                    "status": "confirmed",
                    "sku": "A1",
                    "name": "Crème",
                    "price": 1.29,
                    "score": round(d.score, 4),
                    "rank": d.rank,
                    "decided_at": local_time(d.decided_at),
                    "model_version": d.model_version,
                }
            ]
        )
        lib.set_setting("export_separator", "semicolon")
        lib.export_csv(tmp_path / "bestand.csv", per="sku")
        lib.export_csv(tmp_path / "fotos.csv")
        tab, _n = inventory_csv(lib, per="sku", separator="tab")
    assert (tmp_path / "bestand.csv").read_text(encoding="utf-8-sig").splitlines() == [
        "sku;name;category;supplier;price;quantity",
        "A1;Crème;;;1,29;1",
    ]
    (row,) = csv.DictReader(
        io.StringIO((tmp_path / "fotos.csv").read_text(encoding="utf-8-sig")), delimiter=";"
    )
    assert row["price"] == "1,29" and row["score"] == str(round(d.score, 4)).replace(".", ",")
    assert tab.decode("utf-8-sig").splitlines()[1] == "A1\tCrème\t\t\t1.29\t1"
    with Library(tmp_path / "lib") as lib:
        with pytest.raises(ValueError, match="separator must be one of"):
            inventory_csv(lib, separator="pipe")
        lib.set_setting("export_separator", ",")  # the character itself is understood too
        assert inventory_csv(lib)[0] == comma


# -- sheet text on the terminal (finding 24) and withdrawn products (finding 11) -------------------
def test_cli_prints_sheet_text_on_one_line_and_says_withdrawn(tmp_path: Path) -> None:
    """A name with a line break split a 'match' suggestion over two lines and its ANSI escape
    reached the terminal; a withdrawn product was listed and confirmed without a word."""
    sup = tmp_path / "sup"
    pictures(sup, ["a.jpg", "b.jpg"])
    (sup / "sheet.csv").write_text(
        'sku,name,image\nA,"Milk\n1 l\x1b[31m\u202e",a.jpg\nB,Bread,b.jpg\n', encoding="utf-8"
    )
    photo = tmp_path / "p.jpg"
    product_image(1).save(photo)
    lib_dir = tmp_path / "lib"
    with Library(lib_dir) as lib:
        lib.import_catalog(sup, sup / "sheet.csv")
    out = cli(lib_dir, "match", str(photo), "--top", "2").stdout
    lines = out.splitlines()
    assert len(lines) == 3 and "\x1b" not in out and "\u202e" not in out, out
    assert any(line.endswith("Milk 1 l[31m") for line in lines), out
    (sup / "sheet.csv").write_text("sku,name,image\nA,Milk,a.jpg\n")  # B leaves the catalog
    with Library(lib_dir) as lib:
        lib.import_catalog(sup, sup / "sheet.csv")
    listed = cli(lib_dir, "products").stdout.splitlines()
    # Withdrawn products come last.
    assert [line.endswith("(no longer in the catalog)") for line in listed] == [False, True]
    done = cli(lib_dir, "confirm", "1", "b")
    assert done.returncode == 0 and done.stdout.startswith("photo 1: confirmed B"), done
    assert done.stderr.splitlines() == [
        f"shopmatch: warning: B is no longer in the supplier's catalog (withdrawn "
        f"{done.stderr.split('withdrawn ')[1][:10]})"
    ]
    again = cli(lib_dir, "confirm", "1", "A")  # a current product: no warning
    assert again.returncode == 0 and again.stderr == "", again
    piped = cli(lib_dir, "export", "-", "--per", "sku", "--separator", "semicolon")
    assert piped.stdout.splitlines() == ["sku;name;category;supplier;price;quantity", "A;Milk;;;;1"]


def test_cli_prints_a_sku_as_confirm_takes_it(tmp_path: Path) -> None:
    """'match' squeezed 'AB  12' to 'AB 12', and that copied into 'confirm' was an unknown
    SKU: SKUs print with their spaces (names may still be squeezed)."""
    sup = tmp_path / "sup"
    pictures(sup, ["a.jpg", "b.jpg"])
    (sup / "sheet.csv").write_text("sku,name,image\nAB  12,Milk  1 l,a.jpg\nCD  34,Bread,b.jpg\n")
    photo = tmp_path / "p.jpg"
    product_image(0).save(photo)
    lib_dir = tmp_path / "lib"
    with Library(lib_dir) as lib:
        lib.import_catalog(sup, sup / "sheet.csv")
    out = cli(lib_dir, "match", str(photo), "--top", "2").stdout
    shown = re.search(r"^ +1\. (.+?) +\d+\.\d%", out, re.MULTILINE)
    assert shown is not None and shown[1] == "AB  12", out
    done = cli(lib_dir, "confirm", "1", shown[1])  # copied from the screen
    assert done.returncode == 0, done
    assert done.stdout.startswith("photo 1: confirmed AB  12, was suggestion #1"), done
    listed = cli(lib_dir, "products").stdout.splitlines()
    milk = next(line for line in listed if "Milk" in line)  # listed by name
    assert milk.startswith("AB  12 ") and "Milk 1 l " in milk, listed  # a name is only read
    undone = cli(lib_dir, "undo")
    assert undone.stdout == "undid confirm of photo 1 (AB  12)\n", undone
