"""Pure-logic pieces checked against hand-computed answers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.evaluation import ranking_metrics
from engine.export_csv import safe_cell
from engine.sheet import SheetError, map_columns, parse_price, read_sheet


def test_ranking_metrics_hand_computed() -> None:
    # ranks of the true SKU for 5 photos: 1, 2, 6, not found, 5
    m = ranking_metrics([1, 2, 6, None, 5])
    assert m.n == 5
    assert m.top1 == pytest.approx(1 / 5)
    assert m.top5 == pytest.approx(3 / 5)
    assert m.mrr == pytest.approx((1 + 1 / 2 + 1 / 6 + 0 + 1 / 5) / 5)
    assert m.map5 == pytest.approx((1 + 1 / 2 + 0 + 0 + 1 / 5) / 5)


def test_ranking_metrics_empty() -> None:
    assert ranking_metrics([]).top1 == 0.0


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("3.99", 3.99),
        ("$3.99", 3.99),
        ("1 234,50 €", 1234.5),
        ("1,234.50", 1234.5),
        ("12,5", 12.5),
        ("n/a", None),
        ("", None),
        ("EUR 3,99", 3.99),
        ("1'234.50", 1234.5),
        # Words inside the number make it text: the digits glued gave 23.0 and 120.99.
        ("2 for 3.00", None),
        ("12 x 0.99", None),
        ("1 23,50", None),
    ],
)
def test_parse_price(text: str, value: float | None) -> None:
    assert parse_price(text) == value


def test_map_columns_by_header_name() -> None:
    mapping = map_columns(
        ["Article No.", "Bezeichnung", "Product group", "Brand", "Price EUR", "Picture", "Weight"]
    )
    assert mapping == {
        "sku": "Article No.",
        "name": "Bezeichnung",
        "category": "Product group",
        "supplier": "Brand",
        "price": "Price EUR",
        "image": "Picture",
    }


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (  # German, as Excel writes it
            ["Artikel-Nr.", "Artikelbezeichnung", "Warengruppe", "Hersteller", "VK-Preis (€)"],
            ["sku", "name", "category", "supplier", "price"],
        ),
        (  # French, accents and all
            ["Référence", "Libellé", "Catégorie", "Fournisseur", "Prix unitaire", "Image"],
            ["sku", "name", "category", "supplier", "price", "image"],
        ),
        (  # Dutch and Spanish
            ["Artikelcode", "Omschrijving", "Leverancier", "Prijs", "Afbeelding"],
            ["sku", "name", "supplier", "price", "image"],
        ),
        (["Código", "Descripción", "Categoría", "Precio"], ["sku", "name", "category", "price"]),
    ],
)
def test_headers_in_other_languages(headers: list[str], expected: list[str]) -> None:
    mapping = map_columns([*headers, "Merkmal"])  # a free column stays free
    assert mapping == dict(zip(expected, headers, strict=True))


def test_read_sheet_semicolon_cp1252_and_attributes(tmp_path: Path) -> None:
    path = tmp_path / "sheet.csv"
    path.write_bytes(
        "Code;Name;Preis;Farbe\nA1;Crème brûlée;2,50;gelb\n;;;\nA2;Käse;x;\n".encode("cp1252")
    )
    sheet = read_sheet(path)
    assert [r.sku for r in sheet.rows] == ["A1", "A2"]
    assert sheet.rows[0].name == "Crème brûlée"
    assert sheet.rows[0].price == 2.5
    assert sheet.rows[0].attributes == {"Farbe": "gelb"}
    assert sheet.rows[1].price is None and sheet.rows[1].attributes["price_text"] == "x"


def test_sheet_without_sku_column_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("foo,bar\n1,2\n", encoding="utf-8")
    with pytest.raises(SheetError, match="no SKU column"):
        read_sheet(path)


def test_a_title_above_the_headers_and_junk_rows(tmp_path: Path) -> None:
    """Supplier price lists open with a title line; a sheet saved with another delimiter
    leaves rows of bare separators. The title is passed over (and said), a separator row is
    no product, and line numbers stay the file's."""
    path = tmp_path / "list.csv"
    path.write_text(
        "Price list November 2026;;;\n\nSKU,Name,Price\nK1,Kiwi,0.50\n;;;\nK1,Kiwi bio,0.60\n",
        encoding="utf-8",
    )
    sheet = read_sheet(path)
    assert [(r.sku, r.line) for r in sheet.rows] == [("K1", 4)]  # no second picture to add
    assert sheet.problems == ["line 5: ';;;' is not a SKU (only separators), row skipped"]
    assert sheet.notes[0] == "lines 1-2: above the column headers (a title): not products"
    assert sheet.notes[1].startswith("line 6: SKU K1 is also on line 4 as 'Kiwi'")
    # A title that itself names a SKU-like column ("Article") loses to the real headers,
    # and ten title lines are allowed, as said.
    titled = tmp_path / "titled.csv"
    titled.write_text(
        "Article list November 2026\n" + "note\n" * 9 + "SKU;Name;Price\nA1;Apple;1\n",
        encoding="utf-8",
    )
    sheet = read_sheet(titled)
    assert [(r.sku, r.name, r.line) for r in sheet.rows] == [("A1", "Apple", 12)]
    assert sheet.notes == ["lines 1-10: above the column headers (a title): not products"]
    # No header with a SKU column anywhere near the top: the first line's headers are named.
    (tmp_path / "none.csv").write_text("Title\nfoo,bar\n1,2\n", encoding="utf-8")
    with pytest.raises(SheetError, match=r"no SKU column .*found: Title\)"):
        read_sheet(tmp_path / "none.csv")


@pytest.mark.parametrize("cell", ["=1+1", "+1", "-2", "@SUM(A1)", "\tx"])
def test_formula_cells_are_neutralised(cell: str) -> None:
    assert safe_cell(cell) == "'" + cell


def test_plain_cells_and_numbers_untouched() -> None:
    assert safe_cell("Milk") == "Milk"
    assert safe_cell(-2.5) == -2.5
    assert safe_cell(None) == ""


def test_describe_gives_sentences() -> None:
    from engine.errors import describe

    assert describe(KeyError("no matched photo 42; run 'shopmatch match' first")).startswith(
        "no matched photo 42"
    )
    assert describe(KeyError("id")) == "unexpected internal error (KeyError: 'id')"
    assert describe(FileNotFoundError(2, "No such file", "/x/y.jpg")) == "file not found: /x/y.jpg"


def test_counts_read_as_words_not_as_photo_s() -> None:
    from engine.wording import are, count, were

    assert count(1, "photo") == "1 photo" and count(0, "photo") == "0 photos"
    assert count(12_345, "product row") == "12,345 product rows"
    assert count(2, "box", "boxes") == "2 boxes"
    assert (were(1), were(3), are(1), are(0)) == ("was", "were", "is", "are")


def test_eval_csvs_are_checked_before_any_work(tmp_path: Path) -> None:
    """Rows dropped, the last SKU winning, a training run on nothing, the gain measured on
    photos trained on, an unknown SKU found after minutes: each is refused up front, with
    the CSV's name and line."""
    from engine.evaluation import evaluate_dataset, read_truth
    from engine.resources import demo_dir

    demo = demo_dir()
    truth = read_truth(demo / "truth.csv")
    assert len(truth) == 40 and all(p.is_file() for p, _ in truth)

    (first, _), (second, second_sku) = truth[:2]
    cases = {
        "sku,photo\n": "train.csv has no photo,sku rows",
        f"photo,sku\n{tmp_path / 'gone.jpg'},A\n": "train.csv line 2: photo not found (",
        f"photo,sku\n{first},A\n{first},B\n": f"line 3: {first} is listed with SKU A on line 2",
        f"photo,sku\n{second},{second_sku}\n": "1 photo of truth.csv is also in train.csv",
        f"Photo,SKU\n{second},Bananë\n": "names 1 SKU that catalog.csv does not list: Bananë",
    }
    csv_path = tmp_path / "train.csv"
    for text, message in cases.items():
        csv_path.write_bytes(text.encode("cp1252"))  # as Excel saves it on Windows
        with pytest.raises(ValueError, match=re.escape(message)):
            evaluate_dataset(demo, train_csv=csv_path)


def test_sheets_as_other_systems_and_hands_write_them(tmp_path: Path) -> None:
    """Each of these read wrong or not at all: a decimal comma in a comma-separated sheet
    cut the price (or shifted the row) without a word; one Windows-1252 byte in a UTF-8
    sheet turned every accent into two letters; a Mac "CSV (Macintosh)" sheet (lone CR line
    ends, a LF inside a cell) was refused with Python's own message."""
    erp = tmp_path / "erp.csv"
    erp.write_text("Artikelnummer;Bezeichnung\n4711-A;Apfel\n")
    assert read_sheet(erp).delimiter == ";"

    comma = tmp_path / "comma.csv"
    comma.write_text("sku,price,name\nA,1,29,Apple\nB,0.99,Banana\nC,2,50 €,Cherry\nD,3,5,Date,x\n")
    sheet = read_sheet(comma)
    assert [(r.sku, r.price, r.name) for r in sheet.rows] == [
        ("A", 1.29, "Apple"),
        ("B", 0.99, "Banana"),
        ("C", 2.5, "Cherry"),
        ("D", 3.0, "5"),
    ]
    assert sheet.notes == [
        "lines 2, 4: a price's decimal comma split the row; read as one price (write such "
        'prices in quotes, "1,29")',
        "line 5: more cells than column headers; the extra cells are ignored (a decimal "
        'comma in a comma-separated sheet? write such prices in quotes, "1,29")',
    ]

    twice = tmp_path / "twice.csv"
    twice.write_text("sku,name,price,price\nA,Apple,1.00,1.20\n")
    sheet = read_sheet(twice)
    assert sheet.rows[0].price == 1.2
    assert sheet.notes == ["line 1: two columns are headed 'price'; the one further right is read"]

    mixed = tmp_path / "mixed.csv"
    mixed.write_bytes(b"sku,name\nA,Cr\xc3\xa8me fra\xc3\xaeche\nB,Caf\xe9\n")
    assert [r.name for r in read_sheet(mixed).rows] == ["Crème fraîche", "Café"]
    old = tmp_path / "old.csv"  # all Windows-1252 still reads as such, even where its
    old.write_bytes(b"sku,name\nB,Caf\xe9 cr\xe8me\nN,NESCAF\xc9\xae Gold\n")  # bytes are UTF-8
    assert [r.name for r in read_sheet(old).rows] == ["Café crème", "NESCAFÉ® Gold"]

    mac = tmp_path / "mac.csv"
    mac.write_bytes(b'sku,name\rA,Apple\rB,"Banana\nbio"\r')
    assert [(r.sku, r.name, r.line) for r in read_sheet(mac).rows] == [
        ("A", "Apple", 2),
        ("B", "Banana\nbio", 4),
    ]
