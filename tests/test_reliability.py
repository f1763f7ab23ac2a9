"""Reliability: damage, full disks, read-only folders, second processes and threads, crashes.

Everything runs on real files: a real library (SQLite, usearch index, ONNX models, thumbnails),
real ``shopmatch`` processes, a real tmpfs when we are allowed to mount one. Faults are
injected only at the operating-system layer (an ``OSError(ENOSPC)`` from a write) or by
damaging files on disk the way a crash, a bad sector or a full disk would.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO, cli, write_catalog, write_photos
from engine import atomic, scratch
from engine.check import check_library
from engine.db import WrongThreadError
from engine.errors import describe
from engine.index import VectorIndex, sidecar
from engine.library import Library, LibraryError
from engine.manifest import ModelManifest, file_sha256
from engine.resources import bundled_model_dir

# --- helpers ---------------------------------------------------------------------------------


def one_clear_line(proc: subprocess.CompletedProcess[str]) -> str:
    """The command failed with exactly one plain line on stderr (no traceback)."""
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith("shopmatch: error: ")
    return lines[0]


def decisions(lib_dir: Path) -> list[tuple[int, int, str, str | None]]:
    with contextlib.closing(sqlite3.connect(lib_dir / "shopmatch.db")) as conn:
        return conn.execute(
            "SELECT id, photo_id, action, sku FROM decisions ORDER BY id"
        ).fetchall()


def top_skus(lib: Library, photos: list[Path]) -> list[list[tuple[str, float]]]:
    return [[(s.sku, round(s.similarity, 5)) for s in r.suggestions] for r in lib.match(photos)]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A library with a 12-product catalog, 4 matched photos and 2 confirmations."""
    root = tmp_path_factory.mktemp("template")
    write_catalog(root / "supplier", 12)
    write_photos(root / "photos", [1, 4, 7, 10])
    with Library(root / "lib") as lib:
        lib.import_catalog(root / "supplier", root / "supplier" / "sheet.csv")
        results = list(lib.match(sorted((root / "photos").iterdir())))
        lib.confirm(results[0].photo_id)  # type: ignore[arg-type]
        lib.no_match(results[1].photo_id)  # type: ignore[arg-type]
    return root


@pytest.fixture
def built(template: Path, tmp_path: Path) -> Path:
    """A fresh copy of the template (library, supplier folder, photos) for one test."""
    for name in ("lib", "supplier", "photos"):
        shutil.copytree(template / name, tmp_path / name, symlinks=True)
    shutil.rmtree(tmp_path / "lib" / "backups")  # the template's: its paths are not these
    with contextlib.closing(sqlite3.connect(tmp_path / "lib" / "shopmatch.db")) as conn:
        old, new = str(template), str(tmp_path)
        for table, column in [
            ("catalog_images", "path"),
            ("catalog_images", "source_root"),
            ("photos", "path"),
        ]:
            conn.execute(f"UPDATE {table} SET {column} = replace({column}, ?, ?)", [old, new])
        conn.commit()
    return tmp_path


def photos_of(root: Path) -> list[Path]:
    return sorted((root / "photos").iterdir())


# --- integrity check -------------------------------------------------------------------------


def test_check_passes_on_a_healthy_library(built: Path) -> None:
    proc = cli(built / "lib", "check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith("library OK (12 products")
    data = json.loads(cli(built / "lib", "check", "--deep", "--json").stdout)
    assert data["ok"] is True and data["findings"] == []
    assert data["counts"]["decisions"] == 2 and data["counts"]["index_entries"] == 13


@pytest.mark.parametrize(
    ("damage", "severity"),
    [
        ("truncate", "error"),
        ("garbage", "error"),
        ("flip", "error"),  # same size, a few bytes changed: usearch itself loads it happily
        ("no_sidecar", "note"),
        ("no_index", "note"),
    ],
)
def test_damaged_index_is_detected_and_rebuilt(built: Path, damage: str, severity: str) -> None:
    lib_dir = built / "lib"
    with Library(lib_dir) as lib:
        before = top_skus(lib, photos_of(built))
        path = lib.index_path
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 3])
    elif damage == "garbage":
        path.write_bytes(os.urandom(len(raw)))
    elif damage == "flip":
        flipped = bytearray(raw)
        for i in range(len(raw) // 2, len(raw) // 2 + 64, 8):
            flipped[i] ^= 0xFF
        path.write_bytes(bytes(flipped))
    elif damage == "no_sidecar":
        sidecar(path).unlink()
    else:
        path.unlink()
    assert VectorIndex.load(path) is None  # never trusted once it disagrees with its sidecar

    with Library(lib_dir) as lib:
        report = check_library(lib)
        (finding,) = report.findings
        assert finding.area == "index" and finding.severity == severity
        assert report.ok is (severity == "note")
        fixed = check_library(lib, repair=True)
        assert fixed.ok and fixed.findings[0].repaired
        assert check_library(lib, deep=True).findings == []
        assert top_skus(lib, photos_of(built)) == before
    assert VectorIndex.load(path) is not None


def test_damaged_index_is_rebuilt_transparently_on_open(built: Path) -> None:
    lib_dir = built / "lib"
    with Library(lib_dir) as lib:
        before = top_skus(lib, photos_of(built))
        path = lib.index_path
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x55
    path.write_bytes(bytes(raw))
    with Library(lib_dir) as lib:
        assert top_skus(lib, photos_of(built)) == before


def test_missing_thumbnails_are_remade_or_reported(built: Path) -> None:
    lib_dir = built / "lib"
    with Library(lib_dir) as lib:
        rows = lib.db.execute(
            "SELECT path, sha256 FROM catalog_images WHERE origin = 'catalog' ORDER BY id LIMIT 3"
        ).fetchall()
        thumbs = [lib.thumbnail(sha) for _, sha in rows]
    thumbs[0].unlink()
    thumbs[1].write_bytes(b"")  # a half-written file from before atomic writes
    thumbs[2].write_bytes(b"\xff\xd8 not really a jpeg")
    Path(rows[1][0]).unlink()  # its original is gone too: cannot be remade

    proc = cli(lib_dir, "check")
    assert proc.returncode == 2
    # The same words with and without --repair: only what --repair can remake is sent there.
    beyond = (
        "error: thumbnails: 1 thumbnail missing or damaged (shown blank) whose original file "
        "is gone or changed; importing the catalog again from where its pictures are now "
        "remakes them"
    )
    assert "error: thumbnails: 1 thumbnail missing or damaged (shown blank); try --repair" in (
        proc.stdout
    )
    assert beyond in proc.stdout
    deep = cli(lib_dir, "check", "--deep").stdout
    assert "2 thumbnails missing or damaged (shown blank); try --repair" in deep
    repaired = cli(lib_dir, "check", "--deep", "--repair")
    assert repaired.returncode == 2  # one is beyond repair, and says so
    assert "repaired: thumbnails: 2 missing or damaged thumbnails" in repaired.stdout
    assert beyond in repaired.stdout
    assert thumbs[0].stat().st_size > 0 and thumbs[2].read_bytes()[:2] == b"\xff\xd8"
    again = cli(lib_dir, "check")
    assert beyond in again.stdout and "try --repair" not in again.stdout
    assert again.stdout.splitlines()[-1].endswith("that --repair cannot fix; see above")


def _model_copy(tmp: Path, version: str, parent: str) -> Path:
    """A non-bundled model (mobilenet weights under a new version), as training makes them."""
    folder = tmp / version
    shutil.copytree(bundled_model_dir("mobilenet-v2"), folder)
    manifest = ModelManifest.load(folder)
    data = json.loads(manifest.to_json())
    data.update(version=version, parent_version=parent)
    ModelManifest.from_dict(data).save(folder)
    return folder


def test_activating_a_model_whose_files_are_gone_says_why_and_keeps_the_model_in_use(
    built: Path,
) -> None:
    """A backup taken before 'models remove' brings the model's row back without its folder:
    activating it raised a bare FileNotFoundError from deep in the encoder. It now says which
    model and why, in the window and on the command line, and nothing changes."""
    lib_dir = built / "lib"
    with Library(lib_dir) as lib:
        active = lib.model_version
        lib.install_model(_model_copy(built, "v-gone", active))
        shutil.rmtree(lib.model_dir("v-gone"))
        for step in (lib.check_activatable, lib.activate_model):  # the window checks first
            with pytest.raises(LibraryError, match="model v-gone cannot be activated: its man"):
                step("v-gone")
        assert lib.model_version == active
    proc = cli(lib_dir, "models", "--activate", "v-gone")
    assert proc.returncode != 0
    assert "model v-gone cannot be activated: its manifest is missing" in proc.stderr
    assert "Traceback" not in proc.stderr
    with Library(lib_dir) as lib:
        assert lib.model_version == active and len(lib.index) > 0


def test_damaged_bundled_model_is_restored_on_open(built: Path) -> None:
    lib_dir = built / "lib"
    with Library(lib_dir) as lib:
        version = lib.model_version
        weights = lib.model_dir(version) / "model.onnx"
        expected = lib.model_manifest(version).sha256
    with open(weights, "r+b") as fh:
        fh.seek(1_000_000)
        fh.write(b"\x00" * 4096)
    assert file_sha256(weights) != expected
    proc = cli(lib_dir, "status")
    assert proc.returncode == 0
    assert proc.stderr.strip().splitlines() == [
        f"shopmatch: repaired: model {version}: its model file model.onnx is damaged "
        "(hash mismatch); repaired (model file copied again from the bundled model)"
    ]
    assert file_sha256(weights) == expected
    assert cli(lib_dir, "check").returncode == 0


def test_damaged_active_model_falls_back_to_its_parent(built: Path) -> None:
    lib_dir = built / "lib"
    with Library(lib_dir) as lib:
        parent = lib.model_version
        custom = _model_copy(built, "custom-1", parent)
        lib.install_model(custom)
        lib.activate_model("custom-1")
        weights = lib.model_dir("custom-1") / "model.onnx"
    weights.write_bytes(weights.read_bytes()[:50_000])  # truncated by a crash or a bad disk
    with Library(lib_dir) as lib:
        assert lib.model_version == parent
        assert lib.repairs == [
            "model custom-1: its model file model.onnx is damaged (hash mismatch); "
            f"switched back to model {parent}"
        ]
        report = check_library(lib)
        lines = [f.line() for f in report.findings]
        assert lines[0].startswith("repaired: models: ")
        # the damaged model stays reported: nothing the library holds can restore it
        assert lines[1] == (
            "error: models: model custom-1: its model file model.onnx is damaged (hash "
            "mismatch); nothing here can restore it: remove it with 'shopmatch models --remove "
            "custom-1' (in the app: Learning > Remove version)"
        )
        assert not report.ok
        (res,) = lib.match(photos_of(built)[2:3])
        assert res.suggestions[0].sku == "SKU-007"


def test_missing_model_manifest_is_restored_from_the_database(built: Path) -> None:
    lib_dir = built / "lib"
    with Library(lib_dir) as lib:
        manifest = lib.model_dir(lib.model_version) / "manifest.json"
    text = manifest.read_text()
    manifest.unlink()
    proc = cli(lib_dir, "check", "--repair")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "manifest restored from the database" in proc.stderr + proc.stdout
    assert manifest.read_text() == text


# --- exports ---------------------------------------------------------------------------------


def test_export_cut_short_by_a_full_disk_keeps_the_previous_file(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = built / "inventory.csv"
    with Library(built / "lib") as lib:
        assert lib.export_csv(target, include_undecided=True) == 4
        good = target.read_bytes()
        real_write = Path.write_bytes

        def half_then_full(self: Path, data: bytes) -> int:  # the disk fills mid-write
            real_write(self, bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

        monkeypatch.setattr(Path, "write_bytes", half_then_full)
        with pytest.raises(ValueError) as info:
            lib.export_csv(target)
        monkeypatch.undo()
        assert describe(info.value) == (
            f"cannot write {target}: the disk is full; a previous file of that name is kept "
            "as it was"
        )
        assert target.read_bytes() == good
        assert [p.name for p in built.iterdir() if p.name.endswith(".tmp")] == []
        assert check_library(lib).findings == []

        # What a SIGKILL mid-export leaves: a temp file beside an intact previous export.
        (built / ".inventory.csv.k1ll3d.tmp").write_bytes(good[:100])
        notes = [f.line() for f in check_library(lib).findings]
        assert notes == [
            f"note: exports: an export to {target} was interrupted; the file there is the "
            "previous, complete one"
        ]
        assert check_library(lib, repair=True).findings[0].repaired
        assert not (built / ".inventory.csv.k1ll3d.tmp").exists()

        target.write_bytes(good[: len(good) // 2])  # truncated later, e.g. a failed copy
        (finding,) = check_library(lib).findings
        assert "differs from what ShopMatch wrote" in finding.message


# --- full disk, read-only folder -----------------------------------------------------------------


def test_full_database_refuses_writes_and_keeps_what_was_recorded(built: Path) -> None:
    lib_dir = built / "lib"
    recorded = decisions(lib_dir)
    with Library(lib_dir) as lib:
        pid = lib.photo_id(photos_of(built)[2])
        pages = lib.db.execute("PRAGMA page_count").fetchone()[0]
        lib.db.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "disk is full"
        with pytest.raises(sqlite3.OperationalError) as info:
            for _ in range(5000):  # (a repeated rejection records nothing: undo between)
                lib.reject(pid, "SKU-003")
                recorded.append(decisions(lib_dir)[-1])
                lib.undo(pid)
                recorded.append(decisions(lib_dir)[-1])
        assert describe(info.value).startswith("the disk is full; nothing more was saved")
        with pytest.raises(sqlite3.OperationalError, match="full"):  # and stays refused
            lib.no_match(pid)
    assert decisions(lib_dir) == recorded  # every decision that returned is there, no other
    assert cli(lib_dir, "check").returncode == 0


def test_a_model_folder_deleted_by_hand_is_named_with_the_way_out(built: Path) -> None:
    """check --repair said it 'cannot fix' it and made the folder again with a manifest only;
    nothing said the version can simply be removed."""
    lib_dir = built / "lib"
    with Library(lib_dir) as lib:
        other = lib.install_model(_model_copy(built, "custom-9", lib.model_version)).version
        shutil.rmtree(lib.model_dir(other))
        report = check_library(lib, repair=True)
        (finding,) = [f for f in report.findings if f.area == "models"]
        assert not finding.repairable and not finding.repaired
        assert f"'shopmatch models --remove {other}'" in finding.message
        assert (
            report.lines()[-1].startswith("1 problem left") and "cannot fix" in report.lines()[-1]
        )
        assert not lib.model_dir(other).exists()  # not made again, half
    listed = cli(lib_dir, "models").stdout
    assert f"{other}" in listed and "cannot be used: " in listed
    assert cli(lib_dir, "models", "--remove", other).returncode == 0
    assert cli(lib_dir, "check").returncode == 0


def test_scratch_of_a_killed_training_run_is_found_and_removed(built: Path) -> None:
    """A training run killed outright (or the window closed mid-run) left its scratch folder
    in the library for ever, unseen by check."""
    lib_dir = built / "lib"
    left = lib_dir / f"{scratch.PREFIX}killed"
    left.mkdir()
    (left / "features.npy").write_bytes(b"\0" * 4096)
    with Library(lib_dir, lock=False) as lib:  # (no lock: an open must not clean up)
        running = scratch.make(lib_dir)  # a run of this process: not a leftover
        lines = [f.line() for f in check_library(lib).findings]
        assert lines == [
            f"note: files: 1 temporary file left by an interrupted write (e.g. {left.name})"
        ]
        scratch.release(running)
    assert left.is_dir()
    with Library(lib_dir):  # the lock held: nothing else can be training here
        pass
    assert not left.exists()


def test_index_save_failing_on_close_loses_nothing(
    built: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib_dir = built / "lib"
    real_replace = os.replace

    def no_space(src: object, dst: object) -> None:
        if str(dst).endswith(".usearch"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        real_replace(src, dst)  # type: ignore[arg-type]

    lib = Library(lib_dir)
    pid = lib.photo_id(photos_of(built)[3])
    lib.confirm(pid)  # instant memory adds a reference image: the index must be saved
    monkeypatch.setattr(atomic.os, "replace", no_space)
    lib.close()  # logs the failure, still closes the database and releases the lock
    monkeypatch.undo()
    assert [p for p in (lib_dir / "index").iterdir() if p.name.endswith(".tmp")] == []
    with Library(lib_dir) as again:
        assert again.photo_state(pid).status == "confirmed"
        assert len(again.index) == 14  # rebuilt from the stored embeddings
        assert check_library(again).ok


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A real small filesystem; skips the test where mounting is not allowed (not root)."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(folder: Path) -> Path:
    """Fill the filesystem holding ``folder`` to the last byte."""
    filler = folder / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        for size in (1 << 16, 1 << 10, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


def import_supplier(lib_dir: Path, supplier: Path) -> None:
    """Import a catalog written by ``write_catalog`` through the command line."""
    proc = cli(lib_dir, "import", str(supplier), "--sheet", str(supplier / "sheet.csv"))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_full_disk_every_command_fails_cleanly_and_loses_nothing(tmp_path: Path) -> None:
    write_catalog(tmp_path / "supplier", 6)
    photos = write_photos(tmp_path / "photos", [1, 2, 3, 4])
    with tmpfs(tmp_path / "disk", "40m") as disk:
        lib_dir = disk / "lib"
        import_supplier(lib_dir, tmp_path / "supplier")
        assert cli(lib_dir, "match", str(photos[0]), str(photos[1])).returncode == 0
        assert cli(lib_dir, "confirm", str(photos[0])).returncode == 0
        before = decisions(lib_dir)
        assert len(before) == 1
        filler = fill(disk)
        outcomes = {}
        for name, args in {
            "match": ("match", str(photos[2])),
            "confirm": ("confirm", str(photos[1])),
            "export": ("export", str(disk / "inventory.csv")),
            "import": ("import", str(tmp_path / "photos")),
        }.items():
            proc = cli(lib_dir, *args)
            outcomes[name] = proc.returncode
            if proc.returncode:
                line = one_clear_line(proc)
                assert "disk is full" in line or "library database could not be used" in line
        assert outcomes["export"] == 1  # a new file cannot fit on a full disk
        assert not (disk / "inventory.csv").exists()
        filler.unlink()
        proc = cli(lib_dir, "check", "--repair")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert decisions(lib_dir)[: len(before)] == before


def test_read_only_library_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    write_catalog(tmp_path / "supplier", 4)
    with tmpfs(tmp_path / "disk", "40m") as disk:
        lib_dir = disk / "lib"
        import_supplier(lib_dir, tmp_path / "supplier")
        before = decisions(lib_dir)
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        line = one_clear_line(cli(lib_dir, "status"))
        assert line == (
            f"shopmatch: error: cannot open the library {lib_dir}: the library folder is "
            f"read-only; ShopMatch needs to write there ({lib_dir / 'shopmatch.lock'})"
        )
        subprocess.run(["mount", "-o", "remount,rw", str(disk)], check=True)
        assert decisions(lib_dir) == before
        assert cli(lib_dir, "check").returncode == 0


def test_read_only_folder_is_refused_with_a_clear_message(built: Path) -> None:
    """chmod a-w, as on a locked-down shared folder. Root ignores permissions, so as root the
    CLI runs without CAP_DAC_OVERRIDE (setpriv), which makes it obey them like any user."""
    lib_dir = built / "lib"
    before = decisions(lib_dir)
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("root ignores permissions and setpriv is not available")
        prefix = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]
    lib_dir.chmod(0o555)
    try:
        proc = subprocess.run(
            [
                *prefix,
                sys.executable,
                "-m",
                "engine",
                "--library",
                str(lib_dir),
                "confirm",
                "2",
                "SKU-004",
            ],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        lib_dir.chmod(0o755)
    line = one_clear_line(proc)
    assert line.startswith(f"shopmatch: error: cannot open the library {lib_dir}: ")
    assert "the library folder is read-only; ShopMatch needs to write there" in line
    assert decisions(lib_dir) == before


# --- concurrency -----------------------------------------------------------------------------


def test_second_process_is_refused_with_a_clear_message(built: Path) -> None:
    lib_dir = built / "lib"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from engine.library import Library; "
            "lib = Library(sys.argv[1]); print('open', flush=True); time.sleep(60)",
            str(lib_dir),
        ],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        line = one_clear_line(cli(lib_dir, "confirm", "1", "SKU-002"))
        assert line == (
            f"shopmatch: error: the library {lib_dir} is already open in another ShopMatch "
            "window or command; close it first"
        )
        # Looking is harmless: status reads the figures the holder last saved, and says so.
        peek = cli(lib_dir, "status", "--json")
        assert peek.returncode == 0 and "is open in another ShopMatch window" in peek.stderr
        held = json.loads(peek.stdout)
    finally:
        holder.kill()
        holder.wait()
    assert cli(lib_dir, "status").returncode == 0  # the lock dies with its process
    with Library(lib_dir) as lib:
        assert held == {k: str(v) if k == "path" else v for k, v in lib.status().__dict__.items()}


def test_library_refuses_a_second_thread(built: Path) -> None:
    with Library(built / "lib") as lib:
        errors: list[BaseException] = []
        n = lib.db.execute("SELECT count(*) FROM decisions").fetchone()[0]

        def intruder() -> None:
            for call in (lib.status, lambda: lib.no_match(1), lambda: lib.products("SKU")):
                try:
                    call()
                except BaseException as exc:
                    errors.append(exc)

        lib.db.execute("BEGIN IMMEDIATE")  # the owner is mid-transaction
        t = threading.Thread(target=intruder)
        t.start()
        t.join()
        lib.db.execute("ROLLBACK")
        assert [type(e) for e in errors] == [WrongThreadError] * 3
        assert "ShopMatch runs every engine call on the one thread that opened it" in str(errors[0])
        assert lib.db.execute("SELECT count(*) FROM decisions").fetchone()[0] == n
        assert lib.status().decisions == n  # the owner thread is unaffected


# --- crashes ---------------------------------------------------------------------------------


def _harness():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "crash_harness", REPO / "bench" / "crash_harness.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["crash_harness"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_random_sigkills_lose_nothing(tmp_path: Path) -> None:
    """A short run of bench/crash_harness.py: real processes SIGKILLed at random moments."""
    started = time.monotonic()
    results = _harness().run(tmp_path, kills=9, seed=3, n_images=48, n_photos=8)
    total = results["total"]
    assert total["kills"] == 9
    for name in ("import", "decide", "activate"):
        assert results[name]["failures"] == [], results[name]
        assert results[name]["cli_check"].startswith("library OK"), results[name]
    assert total["decisions_lost"] == 0 and total["kills_with_damage"] == 0
    assert time.monotonic() - started < 240


@pytest.mark.parametrize("where", ["header", "middle", "one page"])
def test_damaged_database_is_reported_in_one_line(built: Path, where: str) -> None:
    """SQLite is the truth: without a backup (tests/test_backups.py has those) damage there
    cannot be repaired from anything else, so it must be reported plainly, never papered
    over."""
    db = built / "lib" / "shopmatch.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'photos'").fetchone()
    raw = bytearray(db.read_bytes())
    if where == "header":
        raw[:100] = b"\xff" * 100
    elif where == "middle":  # b-tree pages across the middle third
        start = len(raw) // 3 // 4096 * 4096
        raw[start : start + len(raw) // 3] = b"\x5a" * (len(raw) // 3)
    else:  # the cell pointers of one table's page: the schema still opens
        at = (root[0] - 1) * page_size + 8
        raw[at : at + 64] = b"\xff" * 64
    db.write_bytes(bytes(raw))
    proc = cli(built / "lib", "check")
    assert "Traceback" not in proc.stderr
    # Whether it opens (the check finds it) or not (opening fails), check reports it as a
    # finding on stdout and exits 2.
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout.startswith("error: database: the library database is damaged (")
    if where == "one page":
        assert proc.stdout.startswith("error: database: the library database is damaged (SQLite: ")
    assert f"there is no backup of it in {built / 'lib' / 'backups'}" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "1 problem left that --repair cannot fix; see above"
    assert len(proc.stdout.splitlines()) == 2  # SQLite's multi-line dump is not shown
    again = cli(built / "lib", "check", "--repair")  # and --repair does not send you back
    assert "try --repair" not in again.stdout and again.returncode == 2
    export = cli(built / "lib", "export", str(built / "out.csv"))
    if where == "header":  # it cannot be opened: every other command fails in one line
        line = one_clear_line(export)
        assert line.startswith("shopmatch: error: the library database is damaged (")
        assert line.endswith(f"; there is no backup of it in {built / 'lib' / 'backups'}")
    else:  # it opens: what can still be read is, and no backup of it is taken (said once)
        assert export.stderr.count("no backup of the library taken: ") == 1, export.stderr
        assert "the database is damaged" in export.stderr


def test_check_sees_a_decision_row_removed_behind_its_back(built: Path) -> None:
    """The harness compares decisions; check itself catches an undo pointing nowhere."""
    lib_dir = built / "lib"
    with contextlib.closing(sqlite3.connect(lib_dir / "shopmatch.db")) as conn:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute(
            "INSERT INTO decisions (photo_id, action, undoes, decided_at) "
            "VALUES (1, 'undo', 999, '2026-01-01')"
        )
        conn.commit()
    proc = cli(lib_dir, "check")
    assert proc.returncode == 2
    assert "error: database: 1 row points at missing rows (in decisions)" in proc.stdout


# --- UI read queries (paged in SQL for 100k-product catalogs) ----------------------------------


def test_ui_queries_page_and_agree_with_decisions(built: Path) -> None:
    from engine import overview
    from engine.decisions import effective_states

    with Library(built / "lib") as lib:
        ids = [lib.photo_id(p) for p in photos_of(built)]
        lib.undo(ids[1])  # the no-match is cancelled: undecided again
        lib.confirm(ids[2], "SKU-003")
        decided = set(effective_states(lib))
        expected = [i for i in sorted(ids) if i not in decided]
        assert [r.id for r in overview.undecided_photos(lib)] == expected
        assert [r.id for r in overview.undecided_photos(lib, limit=1, offset=1)] == expected[1:2]

        every = lib.products(limit=100)
        assert [p["sku"] for p in every] == sorted(
            (p["sku"] for p in every), key=lambda s: f"Product {int(s[4:])}"
        )
        pages = [lib.products(limit=5, offset=o) for o in (0, 5, 10)]
        assert [p["sku"] for page in pages for p in page] == [p["sku"] for p in every]
        assert lib.products("SKU-001")[0]["sku"] == "SKU-001"  # the exact SKU first
        assert lib.products("SKU-001", limit=1, offset=1) == []  # one match, on page one
        assert {p["sku"] for p in lib.products("product 1")} == {"SKU-001", "SKU-010", "SKU-011"}
        assert lib.products("%") == [] and lib.products("_") == []  # literal, not wildcards
        assert lib.products('x" OR "1') == [] and lib.products("')--") == []  # no injection
        assert [p["sku"] for p in lib.products("roduct 11")] == ["SKU-011"]  # trigram path
        assert {p["sku"] for p in lib.products("", "Dairy", "Bolt")} == {"SKU-003", "SKU-009"}
