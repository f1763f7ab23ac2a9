"""Database backups: when they are taken, that a damaged database never becomes one, and that
``check --repair`` (or the app) puts the newest back when the database is damaged."""

from __future__ import annotations

import contextlib
import errno
import shutil
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlite_utils
from test_reliability import (  # noqa: F401
    _model_copy,
    built,
    cli,
    decisions,
    photos_of,
    template,
)

from conftest import write_photos
from engine import backups
from engine.check import check_library
from engine.db import DB_NAME, MIGRATIONS, SCHEMA_VERSION, open_db
from engine.library import DamagedDatabaseError, Library


def damage_header(lib_dir: Path) -> None:
    """'file is not a database': the first page's magic string overwritten."""
    with open(lib_dir / DB_NAME, "r+b") as f:
        f.write(b"not a database at all!")


def damaged_after_a_backup(lib_dir: Path) -> list[tuple[int, int, str, str | None]]:
    """A backup, one decision made after it, then the database's first page overwritten;
    returns every decision as it stood before the damage."""
    with Library(lib_dir) as lib:
        lib.take_backup()
    decide_one_more(lib_dir)
    later = decisions(lib_dir)
    damage_header(lib_dir)
    return later


def damage_pages(lib_dir: Path) -> None:
    """Opens, but 'database disk image is malformed': pages in the middle overwritten."""
    db = lib_dir / DB_NAME
    with open(db, "r+b") as f:
        f.seek(db.stat().st_size // 2)
        f.write(b"\xff" * 16384)


def decide_one_more(lib_dir: Path) -> None:
    with Library(lib_dir) as lib:
        pid = lib.photo_id(photos_of(lib_dir.parent)[2])
        lib.confirm(pid, "SKU-007")


def test_a_changed_library_is_backed_up_on_close_and_an_unchanged_one_is_not(
    built: Path,  # noqa: F811
) -> None:
    lib_dir = built / "lib"
    with Library(lib_dir):  # a library with decisions and no backup gets one on open
        pass
    (first,) = backups.list_backups(lib_dir)
    assert backups.intact(first.path) and backups.decision_count(first.path) == "2 decisions"
    decide_one_more(lib_dir)  # changed, but the newest backup is under an hour old
    assert backups.list_backups(lib_dir) == [first]
    # An hour later the next close takes one; without a change none is taken.
    old = first.path.with_name("shopmatch-20200101-000000.db")
    first.path.rename(old)
    with Library(lib_dir):
        pass
    newest = backups.list_backups(lib_dir)[0]
    assert newest.path != old and backups.decision_count(newest.path) == "3 decisions"
    newest.path.rename(newest.path.with_name("shopmatch-20200102-000000.db"))
    with Library(lib_dir):
        pass
    assert len(backups.list_backups(lib_dir)) == 2


def test_only_the_newest_backups_are_kept_and_leftovers_are_ignored(tmp_path: Path) -> None:
    conn = open_db(tmp_path / DB_NAME).conn
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for day in range(backups.KEEP + 3):
        backups.take(conn, tmp_path, now=start + timedelta(days=day))
    # A backup cut short by a crash leaves only its temporary file, never a backup's name.
    (tmp_path / backups.FOLDER / ".shopmatch-20270101-000000.db.x1.tmp").write_bytes(b"SQLite")
    kept = backups.list_backups(tmp_path)
    assert [b.taken.day for b in kept] == list(range(backups.KEEP + 3, 3, -1))
    assert len(list((tmp_path / backups.FOLDER).glob("*.db"))) == backups.KEEP
    # Two within one second (a manual one as the library opens) are both kept, newest first.
    same = datetime(2027, 1, 1, tzinfo=UTC)
    first = backups.take(conn, tmp_path, now=same)
    second = backups.take(conn, tmp_path, reason="manual", now=same)
    third = backups.take(conn, tmp_path, reason="manual", now=same)
    assert third.name == "shopmatch-20270101-000000-manual-2.db"
    newest = [b.path for b in backups.list_backups(tmp_path)[:3]]
    assert newest[0] == third and set(newest) == {first, second, third}
    conn.close()


def test_a_damaged_database_never_pushes_out_a_good_backup(built: Path) -> None:  # noqa: F811
    lib_dir = built / "lib"
    with Library(lib_dir):  # the first backup is taken on open
        pass
    (first,) = backups.list_backups(lib_dir)
    good = first.path.rename(first.path.with_name("shopmatch-20200101-000000.db"))  # one is due
    damage_pages(lib_dir)
    conn = sqlite3.connect(lib_dir / DB_NAME)
    with pytest.raises(sqlite3.DatabaseError):  # SQLite names what it found
        backups.take(conn, lib_dir)
    assert backups.take_if_due(conn, lib_dir) is None  # logged, never raised
    conn.close()
    assert [b.path for b in backups.list_backups(lib_dir)] == [good] and backups.intact(good)
    assert not list((lib_dir / backups.FOLDER).glob(".*.tmp"))


def test_check_repair_puts_back_the_newest_backup_of_an_unreadable_database(
    built: Path,  # noqa: F811
) -> None:
    lib_dir = built / "lib"
    with Library(lib_dir) as lib:
        lib.take_backup()
    kept = decisions(lib_dir)
    decide_one_more(lib_dir)  # after the backup: this one is lost, and the user is told so
    damage_header(lib_dir)
    (lib_dir / f"{DB_NAME}-wal").write_bytes(b"a stale log that must never be replayed")

    status = cli(lib_dir, "status")
    assert status.returncode == 1 and "Traceback" not in status.stderr
    assert "is damaged (file is not a database)" in status.stderr
    assert "'shopmatch check --repair' puts back the backup of" in status.stderr
    assert "(2 decisions)" in status.stderr

    repaired = cli(lib_dir, "check", "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    line = next(x for x in repaired.stdout.splitlines() if x.startswith("repaired: database: "))
    assert "put back the backup of" in line
    # The decision made after the backup is still in the damaged file, whose first line
    # alone was overwritten: it comes back (the stale log beside it is never replayed).
    assert "1 decision made after it recovered from the damaged file" in line
    assert decisions(lib_dir)[: len(kept)] == kept and len(decisions(lib_dir)) == len(kept) + 1
    (aside,) = (lib_dir / backups.FOLDER).glob("damaged-*")
    assert (aside / DB_NAME).read_bytes().startswith(b"not a database at all!")
    assert cli(lib_dir, "check", "--deep").returncode == 0  # index and the rest agree again
    with Library(lib_dir) as lib:
        (res,) = lib.match(photos_of(built)[:1])
        assert res.suggestions[0].sku == "SKU-001"


def test_check_finds_damaged_pages_and_repair_puts_back_the_backup(built: Path) -> None:  # noqa: F811
    lib_dir = built / "lib"
    with Library(lib_dir) as lib:
        lib.take_backup()
    kept = decisions(lib_dir)
    damage_pages(lib_dir)
    with Library(lib_dir) as lib:
        found = check_library(lib)
        assert not found.ok and found.findings[0].repairable
        assert "'shopmatch check --repair' puts back the backup of" in found.findings[0].message
        fixed = check_library(lib, repair=True)
        assert fixed.ok, fixed.lines()
        assert fixed.findings[0].area == "database" and fixed.findings[0].repaired
        assert len(lib.index) == fixed.counts["index_entries"]
    assert decisions(lib_dir) == kept


def wipe_page(lib_dir: Path, page: int) -> None:
    """'database disk image is malformed': one page of the (closed) database overwritten."""
    db = lib_dir / DB_NAME
    with contextlib.closing(sqlite3.connect(db)) as conn:
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    with open(db, "r+b") as f:
        f.seek((page - 1) * size)
        f.write(b"\xff" * size)


def damage_table(lib_dir: Path, table: str) -> None:
    """Damage confined to one table: its first leaf page wiped."""
    with contextlib.closing(sqlite3.connect(lib_dir / DB_NAME)) as conn:
        (page,) = conn.execute(
            "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' LIMIT 1", [table]
        ).fetchone()
    wipe_page(lib_dir, page)


def test_repair_recovers_the_decisions_made_after_the_backup(built: Path) -> None:  # noqa: F811
    """A backup is up to an hour old; what staff decided since is still readable in the
    damaged file, here one whose header was overwritten. Opening it as the app does puts
    the backup back and writes the later decisions back, a photo new since the backup
    included, and instant memory remembers the confirmed one as if nothing had happened."""
    lib_dir = built / "lib"
    (new_photo,) = write_photos(built / "later", [5])
    with Library(lib_dir) as lib:
        lib.take_backup()
        kept = decisions(lib_dir)
        (res,) = lib.match([new_photo])  # a photo the backup does not know
        assert res.photo_id is not None
        lib.confirm(res.photo_id, "SKU-005")
        old = lib.photo_id(photos_of(built)[2])
        lib.confirm(old, "SKU-007")
        lib.undo(old)
        lib.no_match(old)
    later = decisions(lib_dir)
    assert len(later) == len(kept) + 4
    damage_header(lib_dir)

    with Library(lib_dir, restore_damaged=True) as lib:  # the app's "Put back the backup?"
        (line,) = lib.repairs
        assert "put back the backup of" in line and "(2 decisions)" in line
        assert "4 decisions made after it recovered from the damaged file with 1 photo" in line
        photo = lib.photo_id(new_photo)
        assert lib.photo_state(photo).decision.sku == "SKU-005"  # type: ignore[union-attr]
        assert lib.photo_state(old).status == "no_match"
        remembered = lib.db.execute(
            "SELECT sku FROM catalog_images WHERE origin = 'confirmed' AND photo_id = ?", [photo]
        ).fetchall()
        assert remembered == [("SKU-005",)]  # instant memory caught up
        assert lib.suggestions(photo)[0].sku == "SKU-005"  # its stored list came back too
    assert decisions(lib_dir) == later
    assert cli(lib_dir, "check", "--deep").returncode == 0


def test_recovery_keeps_what_stands_and_counts_the_rest(built: Path) -> None:  # noqa: F811
    """Damage inside the rows themselves: a decision gone (the undo of it cannot stand), a
    damaged value, the row of a photo the backup holds unreadable. Each such decision is
    counted, the others all come back (one bad row used to roll back the whole recovery),
    and a photo's suggestions keep the ones that matched a reference made after the backup."""
    from PIL import Image

    lib_dir = built / "lib"
    (first,) = write_photos(built / "later", [5])
    second = built / "later" / "again-005.jpg"
    with Image.open(first) as im:
        im.rotate(8, expand=True).save(second, quality=90)
    with Library(lib_dir) as lib:
        lib.take_backup()
        (one,) = lib.match([first])
        lib.confirm(one.photo_id, "SKU-005")  # type: ignore[arg-type]
        (two,) = lib.match([second])  # instant memory: the first photo is now a reference
        lib.confirm(two.photo_id)  # type: ignore[arg-type]
        listed = [(x.rank, x.sku) for x in lib.suggestions(two.photo_id)]  # type: ignore[arg-type]
        old = lib.photo_id(photos_of(built)[2])
        gone = lib.confirm(old, "SKU-007").id
        lib.undo(old)
        lib.no_match(old)
        bad = lib.reject(old, "SKU-003").id
    with contextlib.closing(sqlite3.connect(lib_dir / DB_NAME)) as conn:
        conn.execute("DELETE FROM decisions WHERE id = ?", [gone])
        conn.execute("UPDATE decisions SET photo_id = 'x7' WHERE id = ?", [bad])
        conn.execute("DELETE FROM photos WHERE id = ?", [old])
        conn.commit()
    damage_header(lib_dir)

    with Library(lib_dir, restore_damaged=True) as lib:
        (line,) = lib.repairs
        assert "3 decisions made after it recovered from the damaged file with 2 photos" in line
        assert "3 decisions made after it could not be recovered" in line  # gone, undo, bad
        assert lib.photo_state(old).status == "no_match"
        assert lib.photo_state(lib.photo_id(second)).decision.sku == "SKU-005"  # type: ignore[union-attr]
        assert [(x.rank, x.sku) for x in lib.suggestions(lib.photo_id(second))] == listed
    assert cli(lib_dir, "check", "--deep").returncode == 0


def test_recovery_keeps_settings_changed_after_the_backup(built: Path) -> None:  # noqa: F811
    """Instant memory turned off after the backup stays off (the backup would turn it back
    on, with its remembered photos)."""
    from engine import memory

    lib_dir = built / "lib"
    with Library(lib_dir) as lib:
        lib.take_backup()
        memory.set_enabled(lib, False)
    decide_one_more(lib_dir)
    damage_header(lib_dir)
    with Library(lib_dir, restore_damaged=True) as lib:
        assert not memory.enabled(lib)
        confirmed = "SELECT count(*) FROM catalog_images WHERE origin = 'confirmed'"
        assert lib.db.execute(confirmed).fetchone()[0] == 0
        assert len(lib.index) == lib.db.execute("SELECT count(*) FROM catalog_images").fetchone()[0]


def test_a_recovery_cut_short_is_finished_on_the_next_open(built: Path) -> None:  # noqa: F811
    """A crash between putting the backup back and reading back the decisions made since:
    the damaged copy says it is owed, and the next open reads them back."""
    lib_dir = built / "lib"
    later = damaged_after_a_backup(lib_dir)
    backups.restore_newest(lib_dir, DB_NAME)  # ... and the process is killed here
    assert len(decisions(lib_dir)) == len(later) - 1
    with Library(lib_dir) as lib:
        (line,) = lib.repairs
        assert "1 decision made after it recovered from the damaged file" in line
    assert decisions(lib_dir) == later
    with Library(lib_dir) as lib:
        assert lib.repairs == []  # once


def test_a_full_disk_stops_the_repair_before_anything_is_removed(
    built: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The backup's copy fails for want of room: the damaged database and its log stay as
    they were, and no half copy is left aside to fill the disk at every try."""
    lib_dir = built / "lib"
    later = damaged_after_a_backup(lib_dir)
    before = {p.name: p.read_bytes() for p in lib_dir.glob(f"{DB_NAME}*")}
    real_copyfile = shutil.copyfile

    def no_room(src: object, dst: object, **kw: object) -> object:
        if Path(str(dst)).name.startswith(f".{DB_NAME}."):  # the backup on its way in
            raise OSError(errno.ENOSPC, "No space left on device", str(dst))
        return real_copyfile(src, dst, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(shutil, "copyfile", no_room)
    with pytest.raises(OSError, match="No space left"):
        backups.restore_newest(lib_dir, DB_NAME)
    assert {p.name: p.read_bytes() for p in lib_dir.glob(f"{DB_NAME}*")} == before
    assert not list((lib_dir / backups.FOLDER).glob("damaged-*"))
    monkeypatch.undo()  # room again: the repair goes through and loses nothing
    assert cli(lib_dir, "check", "--repair").returncode == 0
    assert decisions(lib_dir) == later


def test_repair_recovers_decisions_around_a_damaged_page(built: Path) -> None:  # noqa: F811
    """``check --repair`` on a database with one wiped page (of a table decisions do not
    need): the backup goes back, the decision made since comes back."""
    lib_dir = built / "lib"
    with Library(lib_dir) as lib:
        lib.take_backup()
        active = lib.model_version
        # A model version made after the backup (as training makes them): its files stay
        # in the library, so its row comes back too instead of 'check' deleting them.
        lib.install_model(_model_copy(built, "v-later", active))
    decide_one_more(lib_dir)
    later = decisions(lib_dir)
    damage_table(lib_dir, "embeddings")
    proc = cli(lib_dir, "check", "--repair")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 decision made after it recovered from the damaged file" in proc.stdout
    assert "model version v-later kept (activate it to use it)" in proc.stdout
    assert decisions(lib_dir) == later
    assert cli(lib_dir, "check", "--deep").returncode == 0
    with Library(lib_dir) as lib:
        assert lib.model_version == active
        lib.activate_model("v-later")
        assert lib.model_version == "v-later" and len(lib.index) > 0


def test_decisions_on_a_damaged_page_are_counted_and_the_rest_recovered(
    built: Path,  # noqa: F811
) -> None:
    """Damage among the decisions themselves costs only the rows on the wiped page, and
    the repair line says how many."""
    lib_dir = built / "lib"
    with Library(lib_dir) as lib:
        lib.take_backup()
        pid = lib.photo_id(photos_of(built)[3])
        for _ in range(150):  # several pages of decisions (a repeated rejection is one)
            lib.reject(pid, "SKU-001")
            lib.undo(pid)
    later = decisions(lib_dir)
    with contextlib.closing(sqlite3.connect(lib_dir / DB_NAME)) as conn:
        pages = conn.execute(
            "SELECT pageno FROM dbstat WHERE name = 'decisions' AND pagetype = 'leaf'"
        ).fetchall()
    assert len(pages) > 3
    wipe_page(lib_dir, pages[len(pages) // 2][0])
    with Library(lib_dir) as lib:
        line = check_library(lib, repair=True).findings[0].message
    now = decisions(lib_dir)
    lost = len(later) - len(now)
    assert 0 < lost < 100 and set(now) < set(later)
    assert f"{300 - lost} decisions made after it recovered from the damaged file" in line
    assert f"{lost} decisions made after it could not be recovered" in line


def test_a_damaged_file_of_another_history_is_not_mixed_in(built: Path) -> None:  # noqa: F811
    """Decisions are written back only onto the backup they continue: a backup whose newest
    decision the damaged file contradicts (another library's, copied in) gets none."""
    lib_dir = built / "lib"
    with Library(lib_dir) as lib:
        lib.take_backup()
    decide_one_more(lib_dir)
    with contextlib.closing(sqlite3.connect(lib_dir / DB_NAME)) as conn:
        conn.execute("UPDATE decisions SET decided_at = '2001-01-01T00:00:00+00:00'")
        conn.commit()
    damage_table(lib_dir, "embeddings")
    with Library(lib_dir) as lib:
        fixed = check_library(lib, repair=True)
        assert "history differs from the backup's" in fixed.findings[0].message
    assert len(decisions(lib_dir)) == 2


def test_without_a_backup_the_damage_is_reported_not_guessed_at(built: Path) -> None:  # noqa: F811
    lib_dir = built / "lib"
    damage_header(lib_dir)
    with pytest.raises(DamagedDatabaseError, match="there is no backup of it") as err:
        Library(lib_dir, restore_damaged=True)
    assert err.value.backup is None
    proc = cli(lib_dir, "check", "--repair")
    assert proc.returncode == 2 and "there is no backup of it" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "1 problem left that --repair cannot fix; see above"
    assert (lib_dir / DB_NAME).read_bytes().startswith(b"not a database at all!")


def test_a_schema_upgrade_is_backed_up_first(tmp_path: Path) -> None:
    path = tmp_path / DB_NAME
    with contextlib.closing(sqlite_utils.Database(path)) as db:
        MIGRATIONS[0](db)
        db.execute("PRAGMA user_version = 1")
    open_db(path).conn.close()
    (upgrade,) = backups.list_backups(tmp_path)
    assert upgrade.reason == "upgrade"
    with contextlib.closing(sqlite3.connect(upgrade.path)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 1 < SCHEMA_VERSION


def test_cli_lists_and_takes_backups(built: Path) -> None:  # noqa: F811
    lib_dir = built / "lib"
    proc = cli(lib_dir, "backups", "--now")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("backed up to ") and lines[0].endswith("-manual.db")
    assert "2 decisions" in lines[1] and lines[1].endswith("(manual)")
    status = cli(lib_dir, "status").stdout
    assert "last backup" in status and "none" not in status


def test_an_empty_or_missing_database_beside_backups_is_damage_not_a_new_library(
    built: Path,  # noqa: F811
) -> None:
    lib_dir = built / "lib"
    with Library(lib_dir):  # takes the first backup
        pass
    kept = decisions(lib_dir)
    # An empty newest backup (SQLite reads one as a valid empty database) is never trusted.
    (lib_dir / backups.FOLDER / "shopmatch-20990101-000000.db").write_bytes(b"")
    # Nor is a look-alike name with an impossible date taken for a backup.
    (lib_dir / backups.FOLDER / "shopmatch-20261399-000000.db").write_bytes(b"x")
    for loss in ("empty", "missing"):
        db = lib_dir / DB_NAME
        db.write_bytes(b"") if loss == "empty" else db.unlink()
        status = cli(lib_dir, "status")
        assert status.returncode == 1, status.stdout
        assert f"is damaged (the database file is {loss})" in status.stderr
        assert "puts back the backup of" in status.stderr and "(2 decisions)" in status.stderr
        refused = cli(lib_dir, "match", str(photos_of(built)[0]))  # no fresh empty library
        assert refused.returncode == 1 and f"the database file is {loss}" in refused.stderr
        found = cli(lib_dir, "check")  # a finding like any other: exit 2, on stdout
        assert found.returncode == 2 and found.stdout.startswith("error: database: ")
        assert found.stdout.splitlines()[-1] == "1 problem left; try --repair"
        assert cli(lib_dir, "check", "--repair").returncode == 0
        assert decisions(lib_dir) == kept


def test_damage_confined_to_an_index_is_rebuilt_without_losing_anything(
    built: Path,  # noqa: F811
) -> None:
    lib_dir = built / "lib"
    with Library(lib_dir):
        pass
    decide_one_more(lib_dir)  # not in any backup: putting one back would lose it
    kept = decisions(lib_dir)
    with contextlib.closing(sqlite3.connect(lib_dir / DB_NAME)) as conn:
        conn.execute("PRAGMA writable_schema = ON")  # the index now claims another column
        conn.execute(
            "UPDATE sqlite_master SET sql = replace(sql, '(photo_id)', '(sku)') "
            "WHERE name = 'decisions_photo'"
        )
        conn.commit()
    with Library(lib_dir) as lib:
        found = check_library(lib)  # quick_check alone would call this library OK
        assert not found.ok and "index decisions_photo" in found.findings[0].message
        fixed = check_library(lib, repair=True)
        assert fixed.ok and fixed.findings[0].repaired
        assert "rebuilt from its tables, nothing lost" in fixed.findings[0].message
    assert decisions(lib_dir) == kept
    assert not list((lib_dir / backups.FOLDER).glob("damaged-*"))


def test_a_database_that_lost_decisions_is_not_backed_up_over_good_ones(
    built: Path,  # noqa: F811
) -> None:
    lib_dir = built / "lib"
    decide_one_more(lib_dir)
    shutil.rmtree(lib_dir / backups.FOLDER)
    with Library(lib_dir):  # a backup of all three decisions
        pass
    (first,) = backups.list_backups(lib_dir)
    old = first.path.rename(first.path.with_name("shopmatch-20200101-000000.db"))
    with contextlib.closing(sqlite3.connect(lib_dir / DB_NAME)) as conn:
        conn.execute("DELETE FROM decisions WHERE id = (SELECT max(id) FROM decisions)")
        conn.commit()
    with Library(lib_dir) as lib:
        assert lib.backup_if_due() is None  # refused (and logged), never raised
        # Said with what happened and both ways out, not "the database is damaged".
        assert backups.problem(lib_dir).startswith(
            "the database holds 2 decisions and its newest backup 3, so some were lost since"
        )
    assert [b.path for b in backups.list_backups(lib_dir)] == [old]


def test_a_backup_dated_in_the_future_does_not_stop_routine_backups(
    built: Path,  # noqa: F811
) -> None:
    """A clock that was wrong once must not make 'the newest is under an hour old' true for
    ever."""
    lib_dir = built / "lib"
    with Library(lib_dir):  # the first backup
        pass
    (first,) = backups.list_backups(lib_dir)
    first.path.rename(first.path.with_name("shopmatch-20990101-000000.db"))
    decide_one_more(lib_dir)  # a change: its close backs it up all the same
    assert len(backups.list_backups(lib_dir)) == 2
    # The one to put back is the one holding the latest decision, not the one named last.
    newest = backups.newest_intact(lib_dir)
    assert newest is not None and newest.path.name != "shopmatch-20990101-000000.db"


def test_check_says_when_no_backup_can_be_taken(built: Path) -> None:  # noqa: F811
    """A failing backup is only logged at close; 'check' must say so before the day a
    backup is needed."""
    lib_dir = built / "lib"
    (lib_dir / backups.FOLDER).write_text("a file where the backups folder should be")
    proc = cli(lib_dir, "check")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stdout.startswith("error: backups: no backup of the library can be taken (")
    assert "(its backups folder is a file)" in proc.stdout
    status = cli(lib_dir, "status")
    assert "backup problem  its backups folder is a file" in status.stdout, status.stdout
    assert "Errno" not in status.stderr  # the folder is named, not an error number
    assert cli(lib_dir, "backups").stdout.strip() == (
        "no backup can be taken: its backups folder is a file"
    )
    (lib_dir / backups.FOLDER).unlink()
    assert cli(lib_dir, "check").returncode == 0  # and the open took the first backup
    assert len(backups.list_backups(lib_dir)) == 1


def test_repair_says_what_a_garbage_decisions_page_lost(tmp_path: Path) -> None:
    """The decisions table's one leaf page overwritten past its 8-byte header (page type and
    cell count kept): SQLite answers 'max(id)' with a garbage id (negative here), and salvage
    took it as where the decisions end: it read nothing and said 'no decision was made after
    it', although the file counts decisions the backup lacks. In a real process, killed at a
    time limit: the same damage with a huge garbage id used to walk ids for ever."""
    import subprocess

    from conftest import write_catalog

    supplier = tmp_path / "supplier"
    sheet = write_catalog(supplier, 4)
    assert sheet is not None
    photos = write_photos(tmp_path / "photos", [0, 1, 2])
    lib = tmp_path / "lib"
    assert cli(lib, "import", str(supplier), "--sheet", str(sheet)).returncode == 0
    assert cli(lib, "match", str(tmp_path / "photos")).returncode == 0
    assert cli(lib, "confirm", str(photos[0]), "SKU-000").returncode == 0
    with Library(lib) as opened:
        opened.take_backup()
    assert cli(lib, "confirm", str(photos[1]), "SKU-001").returncode == 0
    assert cli(lib, "no-match", str(photos[2])).returncode == 0
    with contextlib.closing(sqlite3.connect(lib / DB_NAME)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        (page,) = conn.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'decisions'"
        ).fetchone()
        assert conn.execute("SELECT count(*) FROM decisions").fetchone()[0] == 3
    with open(lib / DB_NAME, "r+b") as fh:
        fh.seek((page - 1) * size + 8)
        fh.write(b"\xde\xad\xbe\xef" * ((size - 100) // 4))
    try:
        repaired = cli(lib, "check", "--repair", timeout=150)
    except subprocess.TimeoutExpired:
        pytest.fail("check --repair never finishes on a garbage decisions page")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "no decision was made after it" not in repaired.stdout, repaired.stdout
    assert "2 decisions made after it could not be recovered" in repaired.stdout, repaired.stdout


@pytest.mark.parametrize("garbage", [9060946509237792190, -4848697862485217314, 1])
def test_salvage_does_not_trust_a_garbage_end_of_the_decisions(
    tmp_path: Path, garbage: int
) -> None:
    """Where a damaged page makes 'max(id)' a garbage id, the walk ends after the last
    readable decisions (a huge id was walked 256 ids at a time for ever) and the decisions
    the file counts but that could not be read are counted as lost (a negative or too small
    id read nothing and said nothing was lost)."""
    import threading

    from engine import salvage

    old = sqlite3.connect(tmp_path / "old.db", check_same_thread=False)
    old.execute("CREATE TABLE decisions (id INTEGER PRIMARY KEY, action TEXT)")
    old.executemany("INSERT INTO decisions VALUES (?, 'confirm')", [(i,) for i in range(1, 6)])
    old.execute("DELETE FROM decisions WHERE id IN (4, 5)")  # 'on a damaged page'
    old.commit()
    recovery = salvage._Recovery.__new__(salvage._Recovery)
    recovery.old, recovery.result = old, salvage.Salvage()
    real = recovery._query

    def answers(sql: str, params: tuple[object, ...]) -> list[tuple[object, ...]] | None:
        if sql.startswith("SELECT max(id)"):
            return [(garbage,)]
        if sql.startswith("SELECT count(*)"):
            return [(5,)]  # the page's cell count survives the damage
        return real(sql, params)

    recovery._query = answers  # type: ignore[method-assign]
    done: list[list[tuple[object, ...]]] = []
    walk = threading.Thread(
        target=lambda: done.append(recovery._decisions_after(["id", "action"], 1)), daemon=True
    )
    walk.start()
    walk.join(timeout=30)
    assert done, "salvage walked decision ids without end"
    assert [r[0] for r in done[0]] == [2, 3]
    assert recovery.result.lost == 2 and recovery.result.unreadable
    assert "could not be" in recovery.result.describe()
    old.close()
