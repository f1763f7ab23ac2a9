"""Hostile input: supplier sheets and image files that are odd, broken or malicious.

Every case must end in a result or a clean per-file error (``SheetError`` for sheets,
``ImageLoadError`` for images): never another exception, a crash, a hang or runaway memory.
Sheets are generated with hypothesis; images are real files of every supported format,
mutated (bit flips, truncation, spliced and duplicated chunks, absurd header sizes) and
decoded in a child process with a memory cap and a per-file alarm, so a crash or a hang in a
C decoder fails the test instead of killing it.

Run as a script for the long fuzz run (bench figure):
    nice -n 5 .venv/bin/python tests/test_hostile_input.py --cases 5000
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import csv
import io
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if __name__ == "__main__":  # the fuzz child and the bench run need no pytest
    sys.path[:0] = [str(REPO), str(REPO / "tests")]

import pytest  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from PIL import Image  # noqa: E402

from conftest import product_image  # noqa: E402
from engine.db import fold  # noqa: E402
from engine.images import ImageLoadError, load_image, register_heif  # noqa: E402
from engine.sheet import SheetError, read_sheet  # noqa: E402

# --- sheets (hypothesis) ---------------------------------------------------------------------

HEADERS = ["SKU", "Product name", "Category", "Supplier", "Price", "Image", "Colour"]
NASTY = st.sampled_from(
    [
        "=cmd|' /C calc'!A0",
        "+1+1",
        "@SUM(A1)",
        "-2",
        '"quoted ""twice"""',
        "semi;colon",
        "tab\there",
        "new\nline",
        "cr\rreturn",
        "\ufeffbom inside",
        "Ünïcödé €",
        "日本語",
        "emoji 🛒",
        "\x00nul",
        "   ",
        "",
        "x" * 200_000,  # over csv's default 128 KiB field limit
    ]
)
CELL = st.one_of(st.text(max_size=40), NASTY)
ENCODINGS = st.sampled_from(
    ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32", "cp1252", "latin-1"]
)


@st.composite
def sheets(draw: st.DrawFn) -> tuple[bytes, list[str], list[list[str]]]:
    """Raw sheet bytes plus the headers and rows that went into them."""
    headers = draw(st.lists(st.sampled_from(HEADERS), unique=True, max_size=7))
    if draw(st.booleans()):
        headers += draw(st.lists(st.text(max_size=12), max_size=2))  # odd extra columns
    rows = draw(
        st.lists(
            st.lists(CELL, min_size=len(headers), max_size=len(headers) + 2),
            max_size=8,
        )
    )
    if rows and draw(st.booleans()):
        rows.append(list(rows[0]))  # duplicate SKU line
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    buf = io.StringIO()
    writer = csv.writer(
        buf, delimiter=delimiter, lineterminator=draw(st.sampled_from(["\n", "\r\n"]))
    )
    writer.writerow(headers)
    writer.writerows(rows)
    text = buf.getvalue()
    encoding = draw(ENCODINGS)
    raw = text.encode(encoding, errors="replace")
    if draw(st.integers(0, 9)) == 0:  # a cut-off download
        raw = raw[: draw(st.integers(0, len(raw)))]
    return raw, headers, rows


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,  # the same examples on every CI run; set False locally to explore
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(sheet=sheets())
def test_any_sheet_reads_or_fails_cleanly(tmp_path: Path, sheet: tuple) -> None:  # type: ignore[type-arg]
    raw, _headers, _rows = sheet
    path = tmp_path / "sheet.csv"
    path.write_bytes(raw)
    try:
        result = read_sheet(path)
    except SheetError as exc:
        assert str(exc).startswith(("sheet ", "cannot read sheet")), exc
        return
    assert "sku" in result.mapping
    for row in result.rows:
        assert row.sku and row.sku == row.sku.strip() and "\x00" not in row.sku
        assert row.price is None or isinstance(row.price, float)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    skus=st.lists(
        st.text(
            alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
            min_size=1,
            max_size=20,
        ),
        min_size=1,
        max_size=6,
    ),
    names=st.lists(CELL, min_size=6, max_size=6),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32"]),
    delimiter=st.sampled_from([",", ";", "\t"]),
)
def test_well_formed_sheets_keep_every_sku(
    tmp_path_factory: pytest.TempPathFactory,
    skus: list[str],
    names: list[str],
    encoding: str,
    delimiter: str,
) -> None:
    """Whatever the encoding, BOM, delimiter or quoting, the SKUs read are the SKUs
    written (duplicates without an image folded into one), and names survive intact."""
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(["Article no.", "Description", "Image"])
    for i, sku in enumerate(skus):
        writer.writerow([sku, names[i].replace("\x00", ""), f"img{i}.jpg"])
    path = tmp_path_factory.mktemp("sheet") / "sheet.csv"
    path.write_bytes(buf.getvalue().encode(encoding))
    result = read_sheet(path)
    assert [r.sku for r in result.rows] == [s.strip() for s in skus if s.strip()]
    for row, i in zip(result.rows, [i for i, s in enumerate(skus) if s.strip()], strict=True):
        assert row.name == names[i].replace("\x00", "").strip()
        assert row.image == f"img{i}.jpg"


def test_binary_and_broken_spreadsheet_files_are_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "prices.csv"
    path.write_bytes(b"PK\x03\x04" + os.urandom(200))  # a zip's start, and then garbage
    with pytest.raises(SheetError, match=r"prices\.csv is a damaged or incomplete spreadsheet"):
        read_sheet(path)
    path.write_bytes(os.urandom(4000).replace(b"\x00", b"") + b"\x00" * 400)
    with pytest.raises(SheetError):
        read_sheet(path)


def test_catalog_import_survives_a_hostile_sheet(tmp_path: Path) -> None:
    """End to end: formulas, quotes, a 200 KB cell, duplicates and a UTF-16 BOM."""
    from engine.library import Library

    folder = tmp_path / "cat"
    folder.mkdir()
    for i in range(3):
        product_image(i).save(folder / f"p{i}.jpg")
    rows = [
        ["sku", "name", "price", "image"],
        ["=1+1", '"quoted", name', "1,50 €", "p0.jpg"],
        ["B-2", "x" * 200_000, "n/a", "p1.jpg"],
        ["B-2", "dup", "2", "p2.jpg"],
        ["", "no sku", "", ""],
        ["C;3", "semi", "", "missing.jpg"],
    ]
    buf = io.StringIO()
    csv.writer(buf).writerows(rows)
    (folder / "sheet.csv").write_bytes(codecs.BOM_UTF16_LE + buf.getvalue().encode("utf-16-le"))
    with Library(tmp_path / "lib") as lib:
        rep = lib.import_catalog(folder, folder / "sheet.csv")
        assert (rep.added, rep.products) == (3, 3)
        reasons = [r for _, r in rep.skipped]
        assert "no SKU, row skipped" in reasons
        assert "file not found (a picture of C;3)" in reasons  # says whose picture is missing
        # The same SKU under another name is most likely a typo: said (as a note: the row
        # was read), not silently merged.
        assert any(r.startswith("SKU B-2 is also on line 3") for _, r in rep.notes)
        assert lib.product("=1+1")["price"] == 1.5  # type: ignore[index]
        assert len(str(lib.product("B-2")["name"])) == 200_000  # type: ignore[index]


def test_unreadable_files_leave_no_products_and_an_empty_sheet_is_said(tmp_path: Path) -> None:
    """Without a sheet, products are named after files: an unreadable one used to leave a
    product with no picture behind, which could never be suggested."""
    from engine.library import Library

    folder = tmp_path / "cat"
    folder.mkdir()
    product_image(0).save(folder / "good.jpg")
    (folder / "zero.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("not a picture", encoding="utf-8")
    with Library(tmp_path / "lib") as lib:
        rep = lib.import_catalog(folder, None)
        assert (rep.added, rep.products, len(rep.skipped)) == (1, 1, 2)
        assert [p["sku"] for p in lib.products()] == ["good"]
        (folder / "header.csv").write_text("sku,name,image\n", encoding="utf-8")
        rep = lib.import_catalog(folder, folder / "header.csv")
        assert ("header.csv", "the sheet has no product rows, only its header") in rep.skipped


def test_sheet_picture_paths_from_windows_and_the_web(tmp_path: Path) -> None:
    """Excel on Windows writes 'catalog\\x.jpg'; a web address is said, not mangled into a
    path; a picture next to the catalog folder rather than the sheet is found there."""
    from engine.library import Library

    folder = tmp_path / "supplier" / "catalog"
    folder.mkdir(parents=True)
    product_image(0).save(folder / "a.jpg")
    product_image(1).save(folder / "b.jpg")
    sheet = tmp_path / "sheets" / "list.csv"
    sheet.parent.mkdir()
    sheet.write_text(
        "sku,name,image\n"
        "A,Apple,..\\supplier\\catalog\\a.jpg\n"  # Windows separators, relative to the sheet
        "B,Bean,b.jpg\n"  # relative to the catalog folder
        "C,Cake,https://example.com/c.jpg\n",
        encoding="utf-8",
    )
    with Library(tmp_path / "lib") as lib:
        rep = lib.import_catalog(folder, sheet)
        assert rep.added == 2, rep.skipped
        ((where, reason),) = rep.skipped
        assert where == "list.csv line 4" and "pictures on the web are not downloaded" in reason


@pytest.fixture(scope="module")
def small_library(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from conftest import write_catalog
    from engine.library import Library

    root = tmp_path_factory.mktemp("search")
    sheet = write_catalog(root / "cat", 6)
    with Library(root / "lib") as lib:
        lib.import_catalog(root / "cat", sheet)
        yield lib


@settings(max_examples=300, deadline=None, derandomize=True)
@given(text=st.one_of(st.text(max_size=30), NASTY.filter(lambda t: len(t) < 1000)))
def test_product_search_takes_any_text(small_library, text: str) -> None:  # type: ignore[no-untyped-def]
    """Search boxes pass whatever was typed or pasted: quotes, FTS syntax, wildcards, NULs."""
    rows = small_library.products(text, limit=10)
    assert len(rows) <= 10
    # A pasted NUL is dropped, not a wildcard; case, accents and letters such as 'ð' fold.
    typed = text.replace("\x00", "")
    typed = fold(typed) or typed.casefold()
    for row in rows:
        assert typed in (fold(str(row["sku"])) or "") or typed in (fold(str(row["name"])) or "")


# --- images (mutation fuzzing in a child process) --------------------------------------------


def seed_files() -> dict[str, bytes]:
    """Real image files of every format the loader supports, a few of them unusual."""
    register_heif()
    base = product_image(5, size=160)
    out: dict[str, bytes] = {}

    def save(name: str, img: Image.Image, fmt: str, **kw: object) -> None:
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        out[name] = buf.getvalue()

    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: exercises the EXIF path
    save("exif.jpg", base, "JPEG", quality=85, exif=exif.tobytes())
    save("progressive.jpg", base, "JPEG", quality=70, progressive=True)
    save("cmyk.jpg", base.convert("CMYK"), "JPEG")
    save("rgba.png", base.convert("RGBA"), "PNG")
    save("palette.png", base.convert("P"), "PNG", transparency=0)
    save("gray16.png", base.convert("I;16"), "PNG")
    save("anim.gif", base.convert("P"), "GIF", save_all=True, append_images=[base.convert("P")])
    save("image.bmp", base, "BMP")
    save("image.tiff", base, "TIFF", compression="tiff_lzw")
    save("image.webp", base, "WEBP", quality=80)
    with contextlib.suppress(KeyError, OSError, ValueError):  # a build without HEIF writing
        save("image.heic", base, "HEIF", quality=60)
    return out


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to three random mutations of the kinds real damage and malice produce."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(7)
        n = len(b)
        if n < 4:
            break
        if kind == 0:  # bit flips
            for _ in range(rng.randint(1, 16)):
                b[rng.randrange(n)] ^= 1 << rng.randrange(8)
        elif kind == 1:  # truncation
            del b[rng.randrange(1, n) :]
        elif kind == 2:  # random bytes over a span
            start = rng.randrange(n)
            span = rng.randint(1, 64)
            b[start : start + span] = rng.randbytes(min(span, n - start))
        elif kind == 3:  # a chunk duplicated
            start = rng.randrange(n)
            b[start:start] = b[start : start + rng.randint(1, 512)]
        elif kind == 4:  # header bytes set to extremes (sizes, counts, offsets)
            for _ in range(rng.randint(1, 4)):
                b[rng.randrange(min(n, 64))] = rng.choice([0x00, 0x7F, 0x80, 0xFF])
        elif kind == 5:  # a span removed
            start = rng.randrange(n)
            del b[start : start + rng.randint(1, 256)]
        else:  # interesting 32-bit values written at a random place
            pos = rng.randrange(max(1, n - 4))
            b[pos : pos + 4] = rng.choice([0, 1, 0x7FFFFFFF, 0xFFFFFFFF, 65535, 65536]).to_bytes(
                4, rng.choice(["little", "big"])
            )
    return bytes(b)


def fuzz(cases: int, seed: int, work: Path, per_case_s: int = 10) -> dict[str, object]:
    """Decode ``cases`` mutated files in this process; returns outcome counts and failures.

    Meant to run in a child: a hard crash ends the child (the parent sees it), a hang trips
    SIGALRM, and RLIMIT_AS turns runaway allocation into MemoryError.
    """
    seeds = seed_files()
    names = sorted(seeds)
    rng = random.Random(seed)
    work.mkdir(parents=True, exist_ok=True)
    outcomes: dict[str, int] = {"ok": 0, "ImageLoadError": 0}
    reasons: dict[str, int] = {}
    failures: list[str] = []
    slowest = 0.0

    def alarm(signum: int, frame: object) -> None:
        raise TimeoutError("decode took too long")

    signal.signal(signal.SIGALRM, alarm)
    started = time.perf_counter()
    for i in range(cases):
        name = names[i % len(names)]
        data = mutate(seeds[name], rng)
        path = work / f"case{i % 50}{Path(name).suffix}"
        path.write_bytes(data)
        t0 = time.perf_counter()
        signal.alarm(per_case_s)
        try:
            img = load_image(path, min_side=None if i % 3 == 0 else 448)
            assert img.mode == "RGB" and img.width > 0 and img.height > 0
            outcomes["ok"] += 1
        except ImageLoadError as exc:
            outcomes["ImageLoadError"] += 1
            reasons[exc.reason] = reasons.get(exc.reason, 0) + 1
        except BaseException as exc:  # anything else is a bug: keep the case to replay
            keep = work / f"fail-{i}{Path(name).suffix}"
            keep.write_bytes(data)
            failures.append(f"case {i} ({name}): {type(exc).__name__}: {exc} -> {keep}")
        finally:
            signal.alarm(0)
        slowest = max(slowest, time.perf_counter() - t0)
    return {
        "cases": cases,
        "outcomes": outcomes,
        "reasons": reasons,
        "failures": failures,
        "slowest_case_s": round(slowest, 3),
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "seed_formats": names,
    }


def run_fuzz_child(cases: int, seed: int, work: Path, mem_mb: int = 3072) -> dict[str, object]:
    """Run :func:`fuzz` in a fresh interpreter with an address-space cap; raises on a crash."""
    proc = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            "--cases",
            str(cases),
            "--seed",
            str(seed),
            "--work",
            str(work),
            "--mem-mb",
            str(mem_mb),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=max(120, cases),
    )
    if proc.returncode != 0:
        raise AssertionError(f"fuzz child died (exit {proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_mutated_images_load_or_fail_cleanly(tmp_path: Path) -> None:
    result = run_fuzz_child(cases=400, seed=11, work=tmp_path)
    assert result["failures"] == [], result["failures"]
    outcomes = result["outcomes"]
    assert outcomes["ok"] + outcomes["ImageLoadError"] == 400  # type: ignore[index]
    assert outcomes["ok"] > 20 and outcomes["ImageLoadError"] > 20  # type: ignore[index]
    assert result["slowest_case_s"] < 10


def main() -> int:
    ap = argparse.ArgumentParser(description="Fuzz engine.images.load_image with mutated files")
    ap.add_argument("--cases", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--work", type=Path, default=Path("/tmp/shopmatch-fuzz"))
    ap.add_argument("--mem-mb", type=int, default=3072)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        limit = args.mem_mb << 20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        print(json.dumps(fuzz(args.cases, args.seed, args.work)))
        return 0
    result = run_fuzz_child(args.cases, args.seed, args.work, args.mem_mb)
    print(json.dumps(result, indent=2))
    return 1 if result["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
