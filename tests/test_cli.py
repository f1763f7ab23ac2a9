"""The ``shopmatch`` command line, run as a user would (a real process, real files)."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, write_catalog, write_photos

COMMANDS = [
    "import",
    "match",
    "confirm",
    "reject",
    "no-match",
    "undo",
    "export",
    "status",
    "products",
    "eval",
    "demo",
]


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}: {proc.stderr}")
    return proc


def test_help_everywhere() -> None:
    assert "import" in run("--help").stdout
    for cmd in COMMANDS:
        assert "usage: shopmatch" in run(cmd, "--help").stdout


def test_errors_are_one_clear_line(tmp_path: Path) -> None:
    proc = run("--library", str(tmp_path / "lib"), "import", str(tmp_path / "nowhere"), check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"shopmatch: error: catalog folder not found: {tmp_path / 'nowhere'}"
    ]
    assert not (tmp_path / "lib").exists()  # a mistyped folder leaves no empty library
    sheet = write_catalog(tmp_path / "supplier", 2)  # the sheet typed where the folder goes
    proc = run("--library", str(tmp_path / "lib"), "import", str(sheet), check=False)
    assert proc.stderr.strip().splitlines() == [
        f"shopmatch: error: {sheet} is a file, not a catalog folder (a sheet goes after --sheet)"
    ]
    assert not (tmp_path / "lib").exists()
    (tmp_path / "bad.csv").write_text("foo,bar\n1,2\n", encoding="utf-8")
    proc = run(
        "--library",
        str(tmp_path / "lib"),
        "import",
        "--sheet",
        str(tmp_path / "bad.csv"),
        check=False,
    )
    assert proc.returncode == 1 and "has no SKU column" in proc.stderr
    assert not (tmp_path / "lib").exists()  # nor does an unusable sheet
    proc = run("--library", str(tmp_path / "lib"), "match", str(tmp_path), check=False)
    assert proc.returncode == 1 and "no ShopMatch library at" in proc.stderr
    (tmp_path / "empty").mkdir()
    proc = run("--library", str(tmp_path / "lib"), "import", str(tmp_path / "empty"), check=False)
    assert proc.returncode == 1 and "no pictures found in" in proc.stderr
    assert not (tmp_path / "lib").exists()  # nor does a folder without a picture
    (tmp_path / "one.csv").write_text("sku,name\nA-1,Apple\n", encoding="utf-8")
    run("--library", str(tmp_path / "lib"), "import", "--sheet", str(tmp_path / "one.csv"))
    proc = run("--library", str(tmp_path / "lib"), "confirm", "42", check=False)
    assert proc.returncode == 1 and "no matched photo 42" in proc.stderr
    assert "Traceback" not in proc.stderr
    # A reader that stops early ('status | head -1'; here one that never reads) is no error.
    closed = subprocess.Popen(
        [sys.executable, "-m", "engine", "--library", str(tmp_path / "lib"), "status"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    closed.stdout.close()  # type: ignore[union-attr]
    assert closed.wait(timeout=120) == 0
    assert closed.stderr.read() == b""  # type: ignore[union-attr]


def test_a_ctrl_c_during_shutdown_ends_quietly(tmp_path: Path) -> None:
    """A Ctrl-C just as a command finished (train: torch's exit hooks) printed a traceback
    from an atexit callback. An exit hook registered before the command stands in for it."""
    script = (
        "import atexit, os, signal, sys, time\n"
        "atexit.register(lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(2)))\n"
        "from engine.cli import run\n"
        f"sys.argv = ['shopmatch', '--library', {str(tmp_path / 'lib')!r}, 'status']\n"
        "run()\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 130
    assert proc.stderr.strip().splitlines() == [
        f"shopmatch: error: no ShopMatch library at {tmp_path / 'lib'}: check --library, or "
        "create one with 'shopmatch import' (or the app)"
    ]


def test_import_asks_before_taking_most_pictures_out(tmp_path: Path, catalog_dir: Path) -> None:
    lib = str(tmp_path / "lib")
    run("--library", lib, "import", str(catalog_dir), "--sheet", str(catalog_dir / "sheet.csv"))
    few = catalog_dir / "few.csv"
    few.write_text("sku,image\nSKU-000,images/SKU-000.jpg\n", encoding="utf-8")
    refused = run("--library", lib, "import", str(catalog_dir), "--sheet", str(few), check=False)
    assert refused.returncode == 1
    assert "would take 11 of the 12 pictures" in refused.stderr
    assert "--remove-missing" in refused.stderr and "--keep-missing" in refused.stderr
    kept = run("--library", lib, "import", str(catalog_dir), "--sheet", str(few), "--keep-missing")
    assert "0 removed" in kept.stdout
    gone = run(
        "--library", lib, "import", str(catalog_dir), "--sheet", str(few), "--remove-missing"
    )
    assert "11 removed" in gone.stdout


def test_cli_round_trip(tmp_path: Path, catalog_dir: Path) -> None:
    lib = ["--library", str(tmp_path / "lib")]
    out = run(*lib, "import", str(catalog_dir), "--sheet", str(catalog_dir / "sheet.csv"))
    assert "12 added" in out.stdout
    photos = write_photos(tmp_path / "photos", [1, 4])
    lines = run(*lib, "match", str(tmp_path / "photos"), "--json", "--top", "1").stdout
    results = [json.loads(line) for line in lines.splitlines()]
    assert [[s["sku"] for s in r["suggestions"]] for r in results] == [["SKU-001"], ["SKU-004"]]
    # One shown, five kept: confirming a lower suggestion later still records its rank.
    with sqlite3.connect(tmp_path / "lib" / "shopmatch.db") as db:
        kept = db.execute("SELECT count(*) FROM suggestions GROUP BY photo_id").fetchall()
    assert kept == [(5,), (5,)]
    assert "confirmed SKU-001, was suggestion #1" in run(*lib, "confirm", str(photos[0])).stdout
    run(*lib, "confirm", str(results[1]["photo_id"]), "SKU-004")
    run(*lib, "no-match", str(results[1]["photo_id"]))
    assert "undid no match" in run(*lib, "undo").stdout
    # Matched again, a decided photo says so; SKUs line up, and matching points are shown.
    again = run(*lib, "match", str(photos[0])).stdout.splitlines()
    assert again[0].endswith(f"{photos[0]} (confirmed as SKU-001)")
    assert len({line.index("%") for line in again[1:]}) == 1
    status = json.loads(run(*lib, "status", "--json").stdout)
    assert (status["products"], status["photos"], status["confirmed"]) == (12, 2, 2)
    target = tmp_path / "inv.csv"
    run(*lib, "export", str(target), "--per", "sku")
    rows = list(csv.DictReader(target.read_text(encoding="utf-8-sig").splitlines()))
    assert [(r["sku"], r["quantity"]) for r in rows] == [("SKU-001", "1"), ("SKU-004", "1")]
    piped = run(*lib, "export", "-", "--per", "sku")  # '-': standard output, for a pipe
    assert piped.stdout == target.read_text(encoding="utf-8-sig")  # the same rows, no BOM
    assert piped.stderr.strip() == "wrote 2 rows to standard output"
    assert not (REPO / "-").exists()
    assert "SKU-004" in run(*lib, "products", "Product 4").stdout

    # Decisions forgive case and spaces, say what they replace, and record a repeat once.
    pid = str(results[1]["photo_id"])
    again = run(*lib, "confirm", pid, " sku-004 ").stdout
    assert "already confirmed SKU-004; nothing recorded" in again
    assert (
        run(*lib, "confirm", pid, "SKU-003")
        .stdout.strip()
        .endswith("confirmed SKU-003, replacing confirmed SKU-004")
    )
    unknown = run(*lib, "confirm", pid, "SKU-0O3", check=False)
    assert unknown.returncode == 1 and "did you mean SKU-003" in unknown.stderr
    run(*lib, "undo")  # back to SKU-004: a single undo, as the repeat recorded nothing
    # Rejecting the SKU a photo is confirmed as would leave it both: refused, with the way.
    refused = run(*lib, "reject", str(photos[0]), "SKU-001", check=False)
    assert refused.returncode == 1 and "is confirmed as SKU-001; undo that first" in refused.stderr
    # A rejection, as any decision, reads as done, and repeating it records nothing either.
    assert run(*lib, "reject", pid, "SKU-002").stdout.strip().endswith("rejected SKU-002")
    again = run(*lib, "reject", pid, "sku-002").stdout
    assert again.strip() == f"photo {pid}: already rejected SKU-002; nothing recorded"
    status = json.loads(run(*lib, "status", "--json").stdout)
    assert status["decisions"] == 7  # confirm, confirm, no-match, undo, confirm, undo, reject
    # Filters forgive case; one that matches nothing names the values there are.
    assert "SKU-001" in run(*lib, "products", "--category", "dairy").stdout
    nope = run(*lib, "products", "--category", "Nope", check=False)
    assert nope.returncode == 1 and "(category values: Dairy, Produce)" in nope.stderr
    none = run(*lib, "products", "zz", check=False)
    assert none.returncode == 1 and "no products match 'zz'" in none.stderr

    # Edge cases of match: a file named twice is matched once; a named pipe is refused at
    # once (hashing it blocked forever); nothing matched is an error for scripts.
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    twice = run(*lib, "match", str(photos[0]), str(photos[0]), str(fifo), "--json", check=False)
    rows = [json.loads(line) for line in twice.stdout.splitlines()]
    assert {r["photo"]: r["error"] for r in rows} == {
        str(photos[0]): None,
        str(fifo): "not an image file",
    }
    assert twice.returncode == 0  # one photo of two was matched
    alone = run(*lib, "match", str(fifo), check=False)
    assert alone.returncode == 1 and "1 file could not be used" in alone.stderr
    (tmp_path / "empty").mkdir()
    empty = run(*lib, "match", str(tmp_path / "empty"), check=False)
    assert empty.returncode == 1
    assert f"no photos found in {tmp_path / 'empty'}" in empty.stderr
    top = run(*lib, "match", str(photos[0]), "--top", "0", check=False)
    assert top.returncode == 2 and "from 1 to 50" in top.stderr
    # 0 epochs read as 'not given' and trained the default for minutes.
    zero = run(*lib, "train", "--epochs", "0", check=False)
    assert zero.returncode == 2 and "--epochs: must be a whole number from 1 to 100" in zero.stderr


@pytest.mark.slow
def test_eval_json_on_bundled_demo() -> None:
    data = json.loads(run("eval", str(REPO / "resources" / "demo"), "--json").stdout)
    for key in ("top1", "top5", "mrr", "map5", "images_per_s"):
        assert isinstance(data[key], float)
    assert data["n"] == 40 and data["unreadable"] == 0
    assert 0 <= data["top1"] <= data["top5"] <= 1 and data["map5"] <= data["mrr"]
    assert data["top5"] > 0.3  # far above chance (5/81) even for the pretrained encoder


def test_demo_command_writes_inventory(tmp_path: Path) -> None:
    out = tmp_path / "demo.csv"
    proc = run("--library", str(tmp_path / "lib"), "demo", "--output", str(out))
    assert "81 products" in proc.stdout
    rows = list(csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines()))
    assert len(rows) == 40 and all(r["status"] == "suggested" for r in rows)


def test_commands_that_only_read_never_create_a_library(tmp_path: Path) -> None:
    """A mistyped --library used to leave a new, empty library (13 MB) wherever it pointed."""
    photos = tmp_path / "holiday photos"
    photos.mkdir()
    for command in (["status"], ["export", str(tmp_path / "x.csv")], ["undo"]):
        done = run("--library", str(photos), *command, check=False)
        assert done.returncode != 0
        assert f"no ShopMatch library at {photos}" in done.stderr
    assert list(photos.iterdir()) == []
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x", encoding="utf-8")
    done = run("--library", str(a_file), "match", str(photos), check=False)
    assert done.returncode != 0 and "is a file, not a library folder" in done.stderr
