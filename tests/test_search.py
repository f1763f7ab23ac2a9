"""Product search (Library.products): case and accents forgiven at any length, on both of its
paths (the trigram index for a rare term, the name-index walk otherwise), withdrawn products
after current ones, and the schema v6 upgrade of an existing library's search index."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlite_utils

from conftest import product_image
from engine.db import DB_NAME, MIGRATIONS, PRODUCTS_FTS, SCHEMA_VERSION, fold
from engine.library import Library

NAMES = {
    "A": "Crème fraîche",
    "B": "ÄPFEL Bio",
    "C": "Straße Brot",
    "D": "Éclair",
    "E": "Apple juice",
    "F": "Fish ﬁngers",  # a ligature, as some sheets exported from PDFs have
    "G": "МОЛОКО",  # Cyrillic: LIKE folds no case here
    "H": "Bœuf haché",
    "I": "Smørrebrød",
    "J": "apple sauce",
}


@pytest.fixture
def lib(tmp_path: Path) -> Iterator[Library]:
    sup = tmp_path / "sup"
    sup.mkdir()
    product_image(0).save(sup / "a.jpg")
    rows = "".join(f"{sku},{name},{'a.jpg' if sku == 'A' else ''}\n" for sku, name in NAMES.items())
    (sup / "sheet.csv").write_text("sku,name,image\n" + rows, encoding="utf-8")
    with Library(tmp_path / "lib") as library:
        library.import_catalog(sup, sup / "sheet.csv")
        yield library


def skus(lib: Library, text: str, **kw: object) -> list[str]:
    return [str(p["sku"]) for p in lib.products(text, **kw)]  # type: ignore[arg-type]


@pytest.mark.parametrize("trigrams", [True, False], ids=["trigram index", "name-index walk"])
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("äpfel", ["B"]),  # 3 letters and more: the trigram index folded case before
        ("äp", ["B", "E", "J"]),  # under 3: LIKE folded ASCII only ('äp' found nothing)
        ("ÄP", ["B", "E", "J"]),  # by name as read: 'Äpfel' before 'Apple'
        ("éc", ["D"]),
        ("ÉC", ["D"]),
        ("creme", ["A"]),  # accents forgiven, both ways
        ("CRÈME", ["A"]),
        ("eclair", ["D"]),
        ("fraiche", ["A"]),
        ("strasse", ["C"]),
        ("fish", ["F"]),
        ("fingers", ["F"]),  # casefold spells the ligature out
        ("ﬁngers", ["F"]),
        ("\u0301", []),  # an accent alone (a combining mark) finds nothing, not everything
        ("¨", []),
        ("молоко", ["G"]),
        ("мо", ["G"]),
        ("boeuf", ["H"]),  # letters that are no base letter plus an accent, typed without
        ("smorrebrod", ["I"]),
        ("50%", []),  # typed wildcards stay literal
        ("a_p", []),
    ],
)
def test_search_forgives_case_and_accents_at_any_length(
    lib: Library, trigrams: bool, text: str, expected: list[str]
) -> None:
    if not trigrams:
        lib._fts = False  # as in an SQLite without FTS5 trigrams, or for a common term
    assert skus(lib, text) == expected


def test_search_lists_withdrawn_products_after_current_ones_on_every_page(lib: Library) -> None:
    lib.db.execute("UPDATE products SET withdrawn_at = '2026-01-01' WHERE sku IN ('A', 'B')")
    everything = skus(lib, "", limit=100)
    assert everything[-2:] == ["B", "A"]  # by name ("Äpfel", "Crème"), after the current ones
    # By name as read: capitals not first ("apple sauce" with "Apple juice"), "Éclair" among
    # the E's (it came after "Straße": COLLATE NOCASE folds ASCII only).
    assert everything[:-2] == ["E", "J", "H", "D", "F", "I", "C", "G"]
    for size in (1, 2, 3, 4):
        pages = [skus(lib, "", limit=size, offset=o) for o in range(0, len(NAMES) + 2, size)]
        assert [s for page in pages for s in page] == everything, size
    assert skus(lib, "b", limit=100) == ["H", "I", "C", "B"]  # searching too, by name
    assert skus(lib, "A")[:2] == ["A", "E"]  # an exact SKU still comes first


def test_search_orders_by_any_column_either_way(lib: Library) -> None:
    assert skus(lib, "", order="sku", limit=100) == sorted(NAMES)
    assert skus(lib, "", order="sku", descending=True, limit=3) == ["J", "I", "H"]
    assert skus(lib, "", order="sku", limit=2, offset=5) == ["F", "G"]
    with pytest.raises(ValueError, match="order"):
        lib.products("", order="name; DROP TABLE products")


def test_fold() -> None:
    assert fold("Crème FRAÎCHE") == "creme fraiche"
    assert fold("Straße") == "strasse" and fold("¨") == "¨" and fold(None) is None
    assert fold("SKU-01") == "sku-01"
    assert fold("Łódź Æbleskiver Þorramatur") == "lodz aebleskiver thorramatur"


def test_schema_5_library_gets_the_folded_search_index(tmp_path: Path) -> None:
    """A library written at schema 5 (its trigram index holds the names as written) is
    upgraded: accents are forgiven, and the index stays in step with later changes, as the
    'check' command verifies it."""
    lib_dir = tmp_path / "lib"
    lib_dir.mkdir()
    old = sqlite_utils.Database(lib_dir / DB_NAME)  # no shopmatch functions: as v5 had none
    for migration in MIGRATIONS[:5]:
        migration(old)
    old.execute("PRAGMA user_version = 5")
    now = "2026-01-01T00:00:00+00:00"
    old["products"].insert_all(
        [
            {"sku": sku, "name": name, "created_at": now, "updated_at": now}
            for sku, name in NAMES.items()
        ]
    )
    assert [
        r[0]
        for r in old.execute(f"SELECT rowid FROM {PRODUCTS_FTS} WHERE {PRODUCTS_FTS} MATCH 'creme'")
    ] == []
    old.close()
    with Library(lib_dir) as lib:
        assert lib.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert skus(lib, "creme") == ["A"] and skus(lib, "äp") == ["B", "E", "J"]
        lib.db.execute("UPDATE products SET name = 'Crêpes' WHERE sku = 'D'")
        lib.db.execute("DELETE FROM products WHERE sku = 'G'")
        lib.db["products"].insert(
            {"sku": "K", "name": "Gâteau", "created_at": now, "updated_at": now}
        )
        assert skus(lib, "crepes") == ["D"] and skus(lib, "eclair") == []
        assert skus(lib, "gateau") == ["K"] and skus(lib, "молоко") == []
        lib.db.execute(
            f"INSERT INTO {PRODUCTS_FTS}({PRODUCTS_FTS}, rank) VALUES ('integrity-check', 1)"
        )
        lib.db.execute(f"INSERT INTO {PRODUCTS_FTS}({PRODUCTS_FTS}) VALUES ('rebuild')")
        assert skus(lib, "crepes") == ["D"]


def test_another_sqlite_client_cannot_change_products_behind_the_index(tmp_path: Path) -> None:
    """The index's triggers need engine.db.fold: a client without it is refused, rather than
    leaving the search index out of step with the products."""
    with Library(tmp_path / "lib") as lib:
        lib.db["products"].insert(
            {"sku": "A", "name": "Crème", "created_at": "x", "updated_at": "x"}
        )
    conn = sqlite3.connect(tmp_path / "lib" / DB_NAME)
    try:
        with pytest.raises(sqlite3.OperationalError, match="shopmatch_fold"):
            conn.execute("UPDATE products SET name = 'Crêpe' WHERE sku = 'A'")
        assert conn.execute("SELECT name FROM products").fetchone()[0] == "Crème"  # reading is fine
    finally:
        conn.close()
