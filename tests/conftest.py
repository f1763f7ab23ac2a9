"""Shared fixtures: generated product images, catalogs and libraries on real disk."""

from __future__ import annotations

import csv
import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO = Path(__file__).resolve().parents[1]
SHAPES = ("ellipse", "rectangle", "triangle", "stripes", "checker", "rings")


def product_image(seed: int, size: int = 240) -> Image.Image:
    """A distinctive 'product shot' on white: a collage of shapes and colours unique to seed."""
    rng = random.Random(seed)
    img = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(img)
    m = size // 10
    draw.rectangle([m, m, size - m, size - m], fill=tuple(rng.randrange(40, 256) for _ in range(3)))
    for _ in range(10):
        colour = tuple(rng.randrange(0, 256) for _ in range(3))
        x, y = rng.randrange(m, size - 3 * m), rng.randrange(m, size - 3 * m)
        w, h = rng.randrange(m, 4 * m), rng.randrange(m, 4 * m)
        kind = rng.choice(SHAPES)
        if kind == "ellipse":
            draw.ellipse([x, y, x + w, y + h], fill=colour)
        elif kind == "rectangle":
            draw.rectangle([x, y, x + w, y + h], fill=colour)
        elif kind == "triangle":
            draw.polygon([(x + w // 2, y), (x, y + h), (x + w, y + h)], fill=colour)
        elif kind == "stripes":
            for i in range(x, x + w, 8):
                draw.line([i, y, i, y + h], fill=colour, width=3)
        elif kind == "checker":
            for i in range(x, x + w, 10):
                for j in range(y, y + h, 10):
                    if (i + j) // 10 % 2 == 0:
                        draw.rectangle([i, j, i + 9, j + 9], fill=colour)
        else:
            for r in range(max(w, h) // 2, 2, -8):
                draw.ellipse(
                    [x - r + w // 2, y - r + h // 2, x + r + w // 2, y + r + h // 2],
                    outline=colour,
                    width=3,
                )
    return img


def photo_of(img: Image.Image, seed: int) -> Image.Image:
    """A 'phone photo' of a product: tilted, shifted, relit, on a light table with clutter.

    Mild on purpose: pretrained ImageNet features are weak on abstract shapes, and these
    tests check the plumbing, not the model (the benchmarks measure quality on real photos).
    """
    rng = random.Random(seed + 10_000)
    w, h = img.size
    bg = (235, 232, 228)
    canvas = Image.new("RGB", (int(w * 1.15), int(h * 1.1)), bg)
    d = ImageDraw.Draw(canvas)
    for _ in range(3):
        x, y = rng.randrange(canvas.width), rng.randrange(canvas.height)
        d.ellipse([x, y, x + 8, y + 8], fill=(200, 200, 205))
    prod = img.rotate(rng.uniform(-4, 4), expand=True, fillcolor=bg)
    canvas.paste(
        prod,
        (
            rng.randrange(0, max(1, canvas.width - prod.width + 1)),
            rng.randrange(0, max(1, canvas.height - prod.height + 1)),
        ),
    )
    canvas = ImageEnhance.Brightness(canvas).enhance(rng.uniform(0.9, 1.05))
    return canvas.filter(ImageFilter.GaussianBlur(0.3))


def write_catalog(folder: Path, n: int, start: int = 0, sheet: bool = True) -> Path | None:
    """n catalog images under folder/images plus (optionally) a sheet; returns the sheet."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(start, start + n):
        name = f"SKU-{i:03d}"
        product_image(i).save(folder / "images" / f"{name}.jpg", quality=92)
        rows.append(
            {
                "SKU": name,
                "Product name": f"Product {i}",
                "Category": "Dairy" if i % 2 else "Produce",
                "Supplier": "Acme" if i % 3 else "Bolt",
                "Price": f"{i + 0.5:.2f}",
                "Image": f"images/{name}.jpg",
                "Colour": f"c{i}",
            }
        )
    if not sheet:
        return None
    path = folder / "sheet.csv"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_price_list(folder: Path, name: str, skus: list[str], seed: int, tag: str = "") -> Path:
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


def write_photos(folder: Path, skus: list[int], take: int = 0) -> list[Path]:
    """Phone photos of products ``skus``; another ``take`` shoots them anew (other files)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in skus:
        p = folder / f"photo-of-{i:03d}.jpg"
        photo_of(product_image(i), i + 1000 * take).save(p, quality=88)
        out.append(p)
    return out


def cli(
    lib_dir: Path,
    *args: str,
    timeout: float = 300,
    env: dict[str, str] | None = None,
    cwd: Path = REPO,
) -> subprocess.CompletedProcess[str]:
    """``shopmatch --quiet --library lib_dir ARGS`` in a real process, this checkout's code;
    ``env``: variables to set beside the usual ones (a time zone); ``cwd``: where it runs
    (a cron job's folder)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "engine", "--quiet", "--library", str(lib_dir), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def small_library(tmp_path: Path, n: int = 4) -> Path:
    """A library (``tmp_path``/lib) with ``n`` generated products, imported by the CLI."""
    sheet = write_catalog(tmp_path / "supplier", n)
    lib = tmp_path / "lib"
    proc = cli(lib, "import", str(tmp_path / "supplier"), "--sheet", str(sheet))
    assert proc.returncode == 0, proc.stderr
    return lib


def photo_count(lib: Path) -> int:
    with sqlite3.connect(lib / "shopmatch.db") as conn:
        return int(conn.execute("SELECT count(*) FROM photos").fetchone()[0])


def kill_cli_midway(lib_dir: Path, args: list[str], count_sql: str, at: int = 32) -> int:
    """Run ``shopmatch --library lib_dir ARGS`` in a real process and SIGKILL it as soon as
    ``count_sql`` (run on the library database) reaches ``at``; returns the last count seen."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "engine", "--quiet", "--library", str(lib_dir), *args]
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline, done = time.monotonic() + 180, 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with sqlite3.connect(lib_dir / "shopmatch.db", timeout=1) as conn:
                done = conn.execute(count_sql).fetchone()[0]
        except sqlite3.Error:
            done = 0
        if done >= at:
            break
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    return int(done)


@pytest.fixture(scope="session")
def qapp_cls() -> type:
    """Qt tests run in the app's own QApplication class (pytest-qt makes it), as the app
    does: it lets the window close first when the app is asked to quit."""
    from desktop_app.application import Application

    return Application


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "supplier"
    write_catalog(folder, 12)
    return folder


@pytest.fixture
def library(tmp_path: Path):  # type: ignore[no-untyped-def]
    from engine.library import Library

    with Library(tmp_path / "lib") as lib:
        yield lib


@pytest.fixture(scope="session")
def demo_matched(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled demo catalog imported and its 40 real shop photos (GroceryStoreDataset)
    matched, once per run: tests work on a copy (``demo_library``)."""
    from engine.evaluation import read_truth
    from engine.library import Library
    from engine.resources import demo_dir

    path = tmp_path_factory.mktemp("demo") / "lib"
    demo = demo_dir()
    with Library(path) as lib:
        lib.import_catalog(demo, demo / "catalog.csv")
        list(lib.match([p for p, _ in read_truth(demo / "truth.csv")]))
    return path


@pytest.fixture
def demo_library(demo_matched: Path, tmp_path: Path) -> Path:
    """A fresh copy of ``demo_matched`` for one test to change."""
    import shutil

    return Path(shutil.copytree(demo_matched, tmp_path / "lib"))


def eval_dataset(ds: Path, n: int) -> Path:
    """A dataset folder in the eval format: ``n`` catalog products in catalog.csv (pictures
    under images/) and an empty p/ for the photos a test writes."""
    write_catalog(ds, n, sheet=False)
    (ds / "p").mkdir()
    with open(ds / "catalog.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sku", "name", "category", "image"])
        for i in range(n):
            w.writerow([f"SKU-{i:03d}", f"P{i}", "C", f"images/SKU-{i:03d}.jpg"])
    return ds
