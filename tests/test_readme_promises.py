"""The README's promises checked against the real command line (real processes, real files):
review 22's findings, each failing on the code it reviewed for the reason in its docstring."""

from __future__ import annotations

import csv
import subprocess
from pathlib import Path

from conftest import cli, product_image, write_catalog, write_photos


def _sheet(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_products_lists_every_match_or_says_how_many_more(tmp_path: Path) -> None:
    """README: `products [TEXT]` finds products by SKU or name. With 210 products named
    'Milk ...', `products milk` prints exactly 200 lines and nothing says 10 more were left
    out (Library.products' default limit=200, used as is by cli.cmd_products)."""
    sheet = _sheet(
        tmp_path / "big.csv", [{"sku": f"P{i:04d}", "name": f"Milk {i}"} for i in range(210)]
    )
    lib = tmp_path / "lib"
    assert cli(lib, "import", "--sheet", str(sheet)).returncode == 0
    proc = cli(lib, "products", "milk")
    assert proc.returncode == 0, proc.stderr
    listed = [line for line in proc.stdout.splitlines() if line.strip()]
    said = proc.stdout + proc.stderr
    assert len(listed) == 210 or "more" in said, (
        f"{len(listed)} of 210 products listed, and no word about the rest"
    )


def test_match_on_a_folder_without_photos_is_an_error_line(tmp_path: Path) -> None:
    """README, Command line reference: errors print one line starting with
    `shopmatch: error:` and exit 1. `match` on a folder holding no picture exits 1 with
    'shopmatch: no photos found in ...' instead (cli.cmd_match), so a script or a user
    looking for the error prefix misses it."""
    write_catalog(tmp_path / "supplier", 3)
    lib = tmp_path / "lib"
    assert cli(lib, "import", str(tmp_path / "supplier")).returncode == 0
    empty = tmp_path / "Lieferung März"
    empty.mkdir()
    (empty / "notes.txt").write_text("no pictures here", encoding="utf-8")
    proc = cli(lib, "match", str(empty))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("shopmatch: error:"), proc.stderr


def test_a_price_with_words_is_kept_in_the_inventory(tmp_path: Path) -> None:
    """README, Data formats: 'a price with words in it (`2 for 3.00`) is kept as text'. It is
    kept only as a hidden attribute (sheet._parse: attributes['price_text']); the exported
    inventory's price column is empty for that product (export_csv._product_cells reads
    only the numeric price), so the shop's price is lost in the CSV."""
    folder = tmp_path / "supplier"
    (folder / "images").mkdir(parents=True)
    for i in range(3):
        product_image(i).save(folder / "images" / f"SKU-{i}.jpg", quality=92)
    prices = ["2 for 3.00", "1.29", "0.99"]
    sheet = _sheet(
        folder / "sheet.csv",
        [
            {
                "sku": f"SKU-{i}",
                "name": f"Product {i}",
                "price": prices[i],
                "image": f"images/SKU-{i}.jpg",
            }
            for i in range(3)
        ],
    )
    lib = tmp_path / "lib"
    assert cli(lib, "import", str(folder), "--sheet", str(sheet)).returncode == 0
    (photo,) = write_photos(tmp_path / "photos", [0])
    assert cli(lib, "match", str(photo)).returncode == 0
    assert cli(lib, "confirm", str(photo), "SKU-0").returncode == 0
    out = tmp_path / "stock.csv"
    proc = cli(lib, "export", str(out), "--per", "sku")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines()))
    assert rows[0]["sku"] == "SKU-0"
    assert rows[0]["price"] == "2 for 3.00", f"price exported as {rows[0]['price']!r}"


def test_train_without_pictures_does_not_ask_for_products_it_has(tmp_path: Path) -> None:
    """`train` on a library whose sheet gave it 3 products but no picture says 'import a
    catalog with at least two products first' (learning.prepare): the library has three,
    and the message does not say what is actually missing (pictures)."""
    sheet = _sheet(tmp_path / "s.csv", [{"sku": f"A{i}", "name": f"Apple {i}"} for i in range(3)])
    lib = tmp_path / "lib"
    assert cli(lib, "import", "--sheet", str(sheet)).returncode == 0
    proc = cli(lib, "train", timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.startswith("shopmatch: error:")
    assert "picture" in proc.stderr or "image" in proc.stderr, proc.stderr


def test_check_names_the_last_export_in_local_time(tmp_path: Path) -> None:
    """Every time ShopMatch prints (export's decided_at, backups, status, models) is the
    computer's local time; `check`'s note on an edited export prints the raw UTC stamp
    ('... wrote at 2026-11-24T19:46:28+00:00', check.py's exports finding), nine hours off
    for a shop in Tokyo."""
    write_catalog(tmp_path / "supplier", 3)
    lib = tmp_path / "lib"
    tokyo = {"TZ": "Asia/Tokyo"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return cli(lib, *args, env=tokyo)

    assert run("import", str(tmp_path / "supplier")).returncode == 0
    out = tmp_path / "inventory.csv"
    assert run("export", str(out), "--all").returncode == 0
    with open(out, "a", encoding="utf-8") as fh:
        fh.write("edited by hand\r\n")
    proc = run("check")
    note = [line for line in proc.stdout.splitlines() if "exports" in line]
    assert note, proc.stdout
    assert "+00:00" not in note[0], note[0]


def test_check_counts_remembered_photos_apart_from_catalog_images(tmp_path: Path) -> None:
    """`check` said '4 catalog images' where `status` said 3 catalog images and 1 remembered
    photo: a confirmed photo kept for instant memory was counted as a catalog image."""
    write_catalog(tmp_path / "supplier", 3)
    lib = tmp_path / "lib"
    assert cli(lib, "import", str(tmp_path / "supplier")).returncode == 0
    (photo,) = write_photos(tmp_path / "photos", [1])
    assert cli(lib, "match", str(photo)).returncode == 0
    assert cli(lib, "confirm", str(photo), "SKU-001").returncode == 0
    said = cli(lib, "check").stdout
    assert "3 catalog images" in said and "1 remembered photo" in said, said
