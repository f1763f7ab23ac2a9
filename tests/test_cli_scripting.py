"""The command line as a shop's IT person scripts it: cron jobs, pipes, odd paths and
encodings (review 27's findings; each test failed on the code it was written against).

Every test runs the real ``shopmatch`` in a real process on real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import (
    REPO,
    cli,
    photo_count,
    photo_of,
    product_image,
    small_library,
    write_catalog,
    write_photos,
)


def test_match_json_exits_nonzero_when_no_photo_could_be_used(tmp_path: Path) -> None:
    lib = small_library(tmp_path)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "broken.jpg").write_bytes(b"not a jpeg at all")
    text = cli(lib, "match", str(tmp_path / "in"))
    assert text.returncode == 1  # text mode: scripts learn that nothing was matched
    as_json = cli(lib, "match", "--json", str(tmp_path / "in"))
    assert [json.loads(line)["error"] for line in as_json.stdout.splitlines()] == [
        "not an image file"
    ]
    assert as_json.returncode == text.returncode
    missing = cli(lib, "match", "--json", str(tmp_path / "no-such-photo.jpg"))
    assert missing.returncode == 1


def test_match_json_says_on_stderr_how_many_files_could_not_be_used(tmp_path: Path) -> None:
    """Text mode ends with '1 file could not be used' on stderr; --json (stdout for the
    machine) drops that line, so a cron log of a JSON run never shows the failure."""
    lib = small_library(tmp_path)
    good = write_photos(tmp_path / "in", [1])
    (tmp_path / "in" / "broken.jpg").write_bytes(b"not a jpeg at all")
    text = cli(lib, "match", str(tmp_path / "in"))
    assert "1 file could not be used" in text.stderr
    as_json = cli(lib, "match", "--json", str(good[0].parent))
    assert "1 file could not be used" in as_json.stderr


def test_match_of_an_empty_argument_does_not_match_the_whole_current_folder(
    tmp_path: Path,
) -> None:
    """``shopmatch match "$TODAY"`` with TODAY unset: argparse's Path('') is '.', so every
    picture under the job's working folder was matched and added to the library."""
    lib = small_library(tmp_path)
    job = tmp_path / "cron-home"
    write_photos(job / "old" / "holiday", [0, 1, 2])
    proc = cli(lib, "match", "", cwd=job)
    assert proc.returncode != 0
    assert photo_count(lib) == 0  # nothing added from a folder nobody named


def test_import_of_an_empty_folder_argument_does_not_import_the_current_folder(
    tmp_path: Path,
) -> None:
    lib = tmp_path / "lib"
    job = tmp_path / "cron-home"
    write_photos(job / "snapshots", [5, 6])
    proc = cli(lib, "import", "", cwd=job)
    assert proc.returncode != 0
    assert not (lib / "shopmatch.db").exists()


def test_export_folder_given_as_an_empty_argument_is_refused(tmp_path: Path) -> None:
    """``export week.csv --folder "$DELIVERY"`` with DELIVERY unset scoped the export to the
    job's working folder (from / : every photo), exit 0: the wrong delivery booked in."""
    lib = small_library(tmp_path)
    write_photos(tmp_path / "monday", [0])
    write_photos(tmp_path / "tuesday", [1])
    assert cli(lib, "match", str(tmp_path / "monday"), str(tmp_path / "tuesday")).returncode == 0
    assert cli(lib, "confirm", "1").returncode == 0
    assert cli(lib, "confirm", "2").returncode == 0
    proc = cli(lib, "export", "-", "--folder", "", cwd=Path("/"))
    assert proc.returncode != 0, proc.stdout


def test_eval_where_no_photo_could_be_read_fails(tmp_path: Path) -> None:
    from conftest import eval_dataset

    ds = eval_dataset(tmp_path / "ds", 3)
    (ds / "p" / "a.jpg").write_bytes(b"not a photo")
    (ds / "p" / "b.jpg").write_bytes(b"not a photo either")
    (ds / "truth.csv").write_text("photo,sku\np/a.jpg,SKU-000\np/b.jpg,SKU-001\n")
    proc = subprocess.run(
        [sys.executable, "-m", "engine", "--quiet", "eval", str(ds), "--json"],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    # {"n": 2, "top1": 0.0, ..., "unreadable": 2}: a measurement of nothing, exit 0
    assert proc.returncode != 0, proc.stdout


def test_match_json_says_a_photo_is_already_confirmed(tmp_path: Path) -> None:
    """Text mode heads the block '[1] PATH (confirmed as SKU-003)'; the JSON object has no
    trace of the decision, so a script acting on --json re-decides photos staff decided."""
    lib = small_library(tmp_path)
    photo = write_photos(tmp_path / "in", [1])[0]
    assert cli(lib, "match", str(photo)).returncode == 0
    assert cli(lib, "confirm", "1", "SKU-003").returncode == 0
    text = cli(lib, "match", str(photo))
    assert "(confirmed as SKU-003)" in text.stdout
    obj = json.loads(cli(lib, "match", "--json", str(photo)).stdout.splitlines()[0])
    obj.pop("suggestions")
    assert "SKU-003" in json.dumps(obj), obj


def test_export_to_a_closed_standard_output_says_so(tmp_path: Path) -> None:
    """``export -`` run with stdout closed (a daemon, 'cmd >&-') answered
    "'NoneType' object has no attribute 'flush'"; 'status' printed nothing and exited 0."""
    lib = small_library(tmp_path)
    closed = subprocess.run(
        f"exec {sys.executable} -m engine --quiet --library '{lib}' export - >&-",
        shell=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=False,
        stderr=subprocess.PIPE,
        text=True,
        timeout=300,
    )
    assert closed.returncode == 1
    assert "NoneType" not in closed.stderr, closed.stderr
    status = subprocess.run(
        f"exec {sys.executable} -m engine --quiet --library '{lib}' status >&-",
        shell=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stderr=subprocess.PIPE,
        text=True,
        timeout=300,
    )
    assert status.returncode != 0  # nothing could be said: not a success


def unicode_library(tmp_path: Path) -> Path:
    folder = tmp_path / "supplier"
    write_catalog(folder, 2, sheet=False)
    (folder / "sheet.csv").write_text(
        "sku,name,image\nSKU-000,Łódź smørrebrød ☃,images/SKU-000.jpg\n"
        "SKU-001,Crème,images/SKU-001.jpg\n",
        encoding="utf-8",
    )
    lib = tmp_path / "lib"
    assert cli(lib, "import", str(folder), "--sheet", str(folder / "sheet.csv")).returncode == 0
    return lib


def test_products_and_match_survive_a_cp1252_standard_output(tmp_path: Path) -> None:
    lib = unicode_library(tmp_path)
    photo = write_photos(tmp_path / "in", [0])[0]

    def cp1252(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "engine", "--quiet", "--library", str(lib), *args],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONIOENCODING": "cp1252"},
            capture_output=True,
            encoding="cp1252",
            errors="replace",
            timeout=300,
        )

    products = cp1252("products")
    assert "internal error" not in products.stderr, products.stderr
    assert products.returncode == 0
    for args in (["match", str(photo)], ["match", "--json", str(photo)]):
        proc = cp1252(*args)
        assert "internal error" not in proc.stderr, proc.stderr
        assert proc.returncode == 0


def test_tilde_in_library_and_export_paths_means_home_as_elsewhere(tmp_path: Path) -> None:
    """bash leaves '--library=~/ShopLib' alone (not an assignment): the import made a folder
    literally named '~' in the working folder, and 'export ~/out.csv' (quoted, from a
    config file) wrote into it, while 'match ~/x.jpg' and '--folder ~/x' mean the home."""
    home, job = tmp_path / "home", tmp_path / "job"
    home.mkdir()
    job.mkdir()
    sheet = write_catalog(tmp_path / "supplier", 2)
    env = {**os.environ, "PYTHONPATH": str(REPO), "HOME": str(home)}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "engine", "--quiet", *args],
            cwd=job,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    run("--library=~/ShopLib", "import", str(tmp_path / "supplier"), "--sheet", str(sheet))
    run("--library=~/ShopLib", "export", "~/out.csv")
    assert not (job / "~").exists()
    assert (home / "ShopLib" / "shopmatch.db").is_file()
    assert (home / "out.csv").is_file()


def test_match_against_a_catalog_without_pictures_says_why_nothing_is_suggested(
    tmp_path: Path,
) -> None:
    (tmp_path / "sheet.csv").write_text("sku,name\nA-1,Apple\nB-2,Banana\n", encoding="utf-8")
    lib = tmp_path / "lib"
    assert cli(lib, "import", "--sheet", str(tmp_path / "sheet.csv")).returncode == 0
    photo = write_photos(tmp_path / "in", [0])[0]
    proc = cli(lib, "match", str(photo))
    # observed: stdout '[1] .../photo-of-000.jpg', stderr empty, exit 0
    assert "catalog" in proc.stderr.lower(), (proc.stdout, proc.stderr)
    assert proc.returncode != 0


def test_json_outputs_spell_keys_as_identifiers_and_keep_unicode_alike(tmp_path: Path) -> None:
    """check --json counts 'index entries' (a space; everything else uses snake_case:
    'catalog_images'), and status --json escapes 'ü' as \\u00fc while match --json keeps it."""
    lib = tmp_path / "Bibliothek ü"
    sheet = write_catalog(tmp_path / "supplier", 2)
    assert cli(lib, "import", str(tmp_path / "supplier"), "--sheet", str(sheet)).returncode == 0
    counts = json.loads(cli(lib, "check", "--json").stdout)["counts"]
    assert all(key.isidentifier() for key in counts), sorted(counts)
    status = cli(lib, "status", "--json").stdout
    assert json.loads(status)["path"] == str(lib)
    assert "ü" in status, status  # as match --json writes it (ensure_ascii=False)


def test_demo_run_again_counts_the_decided_rows_it_wrote(tmp_path: Path) -> None:
    lib = tmp_path / "demo-library"
    out = tmp_path / "demo-inventory.csv"
    assert cli(lib, "demo", "--output", str(out)).returncode == 0
    assert cli(lib, "confirm", "1").returncode == 0
    again = cli(lib, "demo", "--output", str(out))
    assert again.returncode == 0
    decided = [
        line for line in out.read_text(encoding="utf-8-sig").splitlines() if ",confirmed," in line
    ]
    assert len(decided) == 1
    # observed: 'wrote 40 rows (top suggestion per photo, not yet confirmed) to ...'
    assert "not yet confirmed" not in again.stdout.splitlines()[-2], again.stdout


def test_match_names_a_file_whose_name_is_not_utf8_as_import_does(tmp_path: Path) -> None:
    """import prints such a file as 'caf\\xe9.jpg' (images.printable: the bytes, to find
    and rename it); match prints the same kind of name as '?b.jpg' (one_line passes the
    lone surrogate on, and stdout replaces it): 'rename it', but which file? '?' also
    stands for every other byte that is not UTF-8."""
    lib = small_library(tmp_path)
    photos = tmp_path / "photos"
    photos.mkdir()
    photo_of(product_image(1), 1).save(photos / "a.jpg", quality=88)
    odd = os.fsdecode(os.fsencode(str(photos)) + b"/\xe4b.jpg")
    photo_of(product_image(2), 2).save(odd, format="JPEG", quality=88)
    proc = cli(lib, "match", str(photos))
    said = proc.stdout + proc.stderr
    assert "not valid text" in said, said
    assert "\\xe4b.jpg" in said, said
