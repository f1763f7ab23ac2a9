"""Check a library for damage and repair what its own data allows (``shopmatch check``).

SQLite is the truth; everything else is derived from it or verified against it: the vector
index (rebuilt from stored embeddings), model files (hashes in their manifests; restored from
the bundle, or the library falls back to an intact model), thumbnails (made again from the
original when it is still there). Each finding is one line a shop owner can read. Nothing is
ever "repaired" by guessing: what the data cannot restore stays reported as an error.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from engine import backups, local_features, memory, scratch
from engine.backups import DATABASE_RESTORED
from engine.db import PRODUCTS_FTS, SCHEMA_VERSION, has_products_fts
from engine.errors import describe
from engine.images import ImageLoadError, load_image
from engine.index import IndexInfo, VectorIndex, key_digest, sidecar
from engine.local_features import store
from engine.manifest import file_sha256
from engine.reembed import embed_missing
from engine.thumbnails import save_thumbnail, thumbnail_path
from engine.wording import are, count

if TYPE_CHECKING:
    from engine.library import Library

# What each count in 'library OK (...)' is of, in words.
COUNTED: dict[str, tuple[str, ...]] = {
    "products": ("product",),
    "catalog_images": ("catalog image",),
    "remembered": ("remembered photo",),
    "photos": ("photo",),
    "decisions": ("decision",),
    "models": ("model",),
    "index_entries": ("index entry", "index entries"),
    "thumbnails": ("thumbnail",),
}
# Catalog images whose keypoints a deep check decodes at once (demo catalog: 17 KB each).
KEYPOINT_CHUNK = 500
LAST_EXPORT = "last_export"  # settings key: JSON {path, sha256, rows, at} of the last export


@dataclass(frozen=True)
class Finding:
    """One line of a check: ``error`` is damage; ``note`` is harmless but worth knowing."""

    area: str  # database, index, models, embeddings, memory, thumbnails, files, imports, ...
    severity: str  # "error" or "note"
    message: str
    repaired: bool = False
    repairable: bool = True  # whether --repair can fix it

    def line(self) -> str:
        """'error: index: ...', or 'repaired: index: ...' once fixed: the first word says
        whether anything is left to do."""
        return f"{'repaired' if self.repaired else self.severity}: {self.area}: {self.message}"


@dataclass
class CheckReport:
    findings: list[Finding] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # what was looked at
    repair: bool = False  # whether this run tried to repair

    @property
    def ok(self) -> bool:
        """True when no damage is left (notes and repaired errors do not count)."""
        return not self.unrepaired

    @property
    def unrepaired(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error" and not f.repaired]

    def add(
        self,
        area: str,
        severity: str,
        message: str,
        repaired: bool = False,
        repairable: bool = True,
    ) -> None:
        self.findings.append(Finding(area, severity, message, repaired, repairable))

    def lines(self) -> list[str]:
        out = [f.line() for f in self.findings]
        seen = ", ".join(count(v, *COUNTED.get(k, (k,))) for k, v in self.counts.items())
        looked = f" ({seen})" if seen else ""
        if self.ok:
            out.append(f"library OK{looked}")
            return out
        left = count(len(self.unrepaired), "problem")
        if self.repair or not any(f.repairable for f in self.unrepaired):
            # Never "try --repair" after --repair, nor for what it cannot fix.
            out.append(f"{left} left{looked} that --repair cannot fix; see above")
        else:
            out.append(f"{left} left{looked}; try --repair")
        return out

    def to_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "counts": self.counts,
            "findings": [asdict(f) for f in self.findings],
        }


def check_library(lib: Library, *, repair: bool = False, deep: bool = False) -> CheckReport:
    """Check ``lib``; with ``repair``, fix what stored data allows. ``deep`` also decodes
    every thumbnail and compares index vectors with the stored embeddings."""
    report = CheckReport(repair=repair)
    for line in lib.repairs:  # made while opening (a damaged active model or database)
        area = "database" if line.startswith(DATABASE_RESTORED) else "models"
        report.add(area, "error", line, repaired=True)
    if not _database(lib, report, repair):
        return report  # a damaged database: nothing else can be trusted or repaired
    _backups(lib, report)
    _imports(lib, report, repair)
    _stray_files(lib, report, repair)
    _models(lib, report, repair)
    _embeddings(lib, report, repair)
    _memory(lib, report, repair)
    _index(lib, report, repair, deep)
    _old_index_files(lib, report, repair)
    _thumbnails(lib, report, repair, deep)
    _keypoints(lib, report, repair, deep)
    _exports(lib, report, repair)
    return report


# --- the checks ------------------------------------------------------------------------------


def _reindexed(lib: Library, problems: list[str]) -> bool:
    """Damage confined to indexes is rebuilt from the tables (REINDEX): nothing is lost,
    where putting back a backup would lose what was decided since."""
    if not all(" index " in f" {x} " for x in problems):
        return False
    try:
        lib.db.execute("REINDEX")
    except sqlite3.DatabaseError:  # e.g. a unique index the rows themselves now break
        return False
    return not backups.integrity_problems(lib.db.conn)


def _database(lib: Library, report: CheckReport, repair: bool) -> bool:
    problems = backups.integrity_problems(lib.db.conn)
    if problems:
        first = problems[0]  # the first real line of SQLite's dump is enough to show
        if repair and _reindexed(lib, problems):
            report.add(
                "database",
                "error",
                f"an index of the database was damaged (SQLite: {first}); rebuilt from its "
                "tables, nothing lost",
                repaired=True,
            )
            return _database(lib, report, repair=False)
        message, newest = backups.damaged_message(lib.path, f"SQLite: {first}")
        if repair and newest is not None:
            try:
                report.add("database", "error", lib.restore_backup(), repaired=True)
            except RuntimeError as exc:  # no intact backup after all (LibraryError)
                report.add("database", "error", str(exc), repairable=False)
                return False
            return _database(lib, report, repair=False)  # the restored copy, checked
        report.add("database", "error", message, repairable=newest is not None)
        return False
    bad_fk = lib.db.execute("PRAGMA foreign_key_check").fetchall()
    if bad_fk:
        tables = sorted({str(r[0]) for r in bad_fk})
        report.add(
            "database",
            "error",
            f"{count(len(bad_fk), 'row')} {'points' if len(bad_fk) == 1 else 'point'} at missing "
            f"rows (in {', '.join(tables)})",
        )
    version = int(lib.db.execute("PRAGMA user_version").fetchone()[0])
    if version != SCHEMA_VERSION:
        report.add("database", "error", f"schema version {version}, expected {SCHEMA_VERSION}")
    bad_undo = lib.db.execute(
        "SELECT count(*) FROM decisions WHERE action = 'undo' AND (undoes IS NULL OR undoes >= id)"
    ).fetchone()[0]
    if bad_undo:
        verb = "points" if bad_undo == 1 else "point"
        report.add("database", "error", f"{count(bad_undo, 'undo decision')} {verb} nowhere")
    if has_products_fts(lib.db):
        try:  # the product search index must agree with the products table
            lib.db.execute(
                f"INSERT INTO {PRODUCTS_FTS}({PRODUCTS_FTS}, rank) VALUES ('integrity-check', 1)"
            )
        except sqlite3.DatabaseError:
            report.add("database", "error", "the product search index disagrees with the catalog")
            if repair:
                lib.db.execute(f"INSERT INTO {PRODUCTS_FTS}({PRODUCTS_FTS}) VALUES ('rebuild')")
                report.findings[-1] = replace(report.findings[-1], repaired=True)
    for table in ("products", "catalog_images", "photos", "decisions"):
        report.counts[table] = int(lib.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    # Confirmed photos kept as reference images are counted apart, as 'status' shows them.
    remembered = "SELECT count(*) FROM catalog_images WHERE origin = 'confirmed'"
    report.counts["remembered"] = int(lib.db.execute(remembered).fetchone()[0])
    report.counts["catalog_images"] -= report.counts["remembered"]
    return True


def _imports(lib: Library, report: CheckReport, repair: bool) -> None:
    from engine.export_csv import local_minute  # as every time ShopMatch prints: local

    # We hold the library lock, so an import still marked 'running' was killed.
    rows = lib.db.execute(
        "SELECT id, source_root, started_at FROM imports WHERE status = 'running'"
    ).fetchall()
    for import_id, root, started in rows:
        if repair:
            lib.db.execute("UPDATE imports SET status = 'interrupted' WHERE id = ?", [import_id])
        report.add(
            "imports",
            "note",
            f"the import of {root} started {local_minute(started)} was interrupted; what it "
            "stored is kept, run it again to finish",
            repaired=repair,
        )


def _backups(lib: Library, report: CheckReport) -> None:
    """A backup folder that cannot take backups: they would fail unseen, close after close
    (the failure is only logged), until the day one is needed."""
    why = backups.problem(lib.path)
    if why:
        report.add(
            "backups",
            "error",
            f"no backup of the library can be taken ({why}); until this is fixed, a damaged "
            "database cannot be put back",
            repairable=False,
        )


def _stray_files(lib: Library, report: CheckReport, repair: bool) -> None:
    """Temporary files of writes cut short by a crash, and model folders no version names:
    never read, safe to delete."""
    stray = [p for p in lib.path.rglob(".*.tmp") if p.is_file()]
    stray += [p for p in (lib.path / "models").glob(".*.partial") if p.is_dir()]
    # A model folder no row names: a removal (or an install) cut short between its steps.
    named = {Path(str(r[0])).name for r in lib.db.execute("SELECT folder FROM models")}
    stray += [p for p in (lib.path / "models").glob("[!.]*") if p.is_dir() and p.name not in named]
    stray += scratch.leftovers(lib.path)  # of a training run that was killed
    if not stray:
        return
    if repair:
        for p in stray:
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
    report.add(
        "files",
        "note",
        f"{count(len(stray), 'temporary file')} left by an interrupted write "
        f"(e.g. {stray[0].name})",
        repaired=repair,
    )


def _models(lib: Library, report: CheckReport, repair: bool) -> None:
    versions = [str(m["version"]) for m in lib.models()]
    report.counts["models"] = len(versions)
    active = lib.active_model_version()
    for version in versions:
        problem = lib.model_problem(version)
        if problem is None:
            continue
        fixed = lib.repair_model(version) if repair else None
        if fixed is not None:
            report.add("models", "error", f"model {version}: {problem}; {fixed}", repaired=True)
            continue
        if version == active and repair:
            before = len(lib.repairs)
            try:
                lib._ensure_active_model_intact()
            except Exception as exc:  # reported, never raised: check must finish
                report.add("models", "error", f"active model {version}: {describe(exc)}")
                continue
            for line in lib.repairs[before:]:
                report.add("models", "error", line, repaired=True)
            continue
        if version == active:
            report.add("models", "error", f"active model {version}: {problem}")
        else:  # nothing in the library can restore it: it can only go
            report.add(
                "models",
                "error",
                f"model {version}: {problem}; nothing here can restore it: remove it with "
                f"'shopmatch models --remove {version}' (in the app: Learning > Remove version)",
                repairable=False,
            )
    on_disk = {p.name for p in (lib.path / "models").glob("*") if p.is_dir()}
    unknown = sorted(v for v in on_disk - set(versions) if not v.startswith("."))
    if unknown:
        report.add(
            "models",
            "note",
            f"{count(len(unknown), 'model folder')} not registered (an install was interrupted): "
            + ", ".join(unknown),
        )


def _embeddings(lib: Library, report: CheckReport, repair: bool) -> None:
    version = lib.model_version
    sql = (
        "SELECT count(*) FROM catalog_images WHERE id NOT IN "
        "(SELECT image_id FROM embeddings WHERE model_version = ?)"
    )
    missing = int(lib.db.execute(sql, [version]).fetchone()[0])
    if not missing:
        return
    if repair:
        failed = embed_missing(lib, version)
        lib.invalidate_index()
        if len(failed) < missing:
            report.add(
                "embeddings",
                "note",
                f"{count(missing - len(failed), 'reference image')} embedded with model {version}",
                repaired=True,
            )
        missing = len(failed)
    if missing:
        report.add(
            "embeddings",
            "note",
            f"{count(missing, 'reference image')} {are(missing)} not searchable with model "
            f"{version}: "
            + ("its file and thumbnail" if missing == 1 else "their files and thumbnails")
            + " could not be read",
        )


def _index(lib: Library, report: CheckReport, repair: bool, deep: bool) -> None:
    version = lib.model_version
    path = lib.index_path_for(version)
    ids = np.asarray(
        [
            r[0]
            for r in lib.db.execute(
                "SELECT image_id FROM embeddings WHERE model_version = ?", [version]
            )
        ],
        dtype=np.uint64,
    )
    report.counts["index_entries"] = len(ids)
    # A missing or out-of-date index is what a crash between two saves leaves (the database
    # is ahead of the derived file): a note, rebuilt on open anyway. Bytes that disagree with
    # their recorded checksum are damage: an error, even though a rebuild repairs it too.
    problem: str | None = None
    severity = "note"
    info = IndexInfo.read(sidecar(path))
    if not path.exists():
        problem = None if len(ids) == 0 and info is None else "the index file is missing"
    elif info is None:
        problem = "the index file's description (sidecar) is missing or unreadable"
    elif info.unverifiable:
        # Written before sidecars recorded the file's size and checksum (328150e): nothing
        # says it is damaged, nor that it is whole. Never read as it is: the next open
        # rebuilds it, and its checksum is recorded then.
        problem = (
            "the index file was written by an older ShopMatch, without a checksum; it is "
            "rebuilt from the stored embeddings when next used"
        )
    elif not info.matches_file(path):
        problem = "the index file is truncated or damaged (size or checksum differs)"
        severity = "error"
    else:
        loaded = VectorIndex.load(path)
        severity = "error"
        if loaded is None:
            problem = "the index file cannot be read"
        elif (
            loaded.model_version != version
            or loaded.dim != lib.model_manifest(version).embedding_dim
        ):
            problem = "the index file belongs to another model"
        elif key_digest(loaded.keys()) != key_digest(ids):
            severity = "note"
            problem = (
                f"the index is out of date ({len(loaded)} entries, the database has {len(ids)})"
            )
        elif deep and len(ids):
            problem = _compare_vectors(lib, loaded, version)
    if problem is None:
        return
    if repair:
        lib.invalidate_index()
        lib.rebuild_index()
    report.add(
        "index",
        severity,
        problem + ("; rebuilt from the stored embeddings" if repair else ""),
        repaired=repair,
    )


def _memory(lib: Library, report: CheckReport, repair: bool) -> None:
    """Instant memory against the decisions: a confirmed photo that is not a reference of
    its product (confirmed before instant memory existed, or by a release that failed to
    remember it), or a reference its photo's decision no longer backs. Matching would not
    offer the product from that photo, and nothing else would say so."""
    todo = memory.out_of_step(lib)
    if not todo:
        return
    fixed = 0
    if repair:
        fixed, todo = memory.catch_up(lib, todo)
    if fixed:
        report.add(
            "memory",
            "note",
            f"instant memory disagreed with the decisions on {count(fixed, 'photo')}; "
            "brought in step",
            repaired=True,
        )
    if todo:
        n = len(todo)
        report.add(
            "memory",
            "note",
            f"instant memory disagrees with the decisions on {count(n, 'photo')} (a "
            "confirmed photo not remembered, or remembered as another product); "
            + (
                ("its file and thumbnail" if n == 1 else "their files and thumbnails")
                + " could not be read"
                if repair
                else "--repair brings it in step"
            ),
            repairable=not repair,
        )


def _old_index_files(lib: Library, report: CheckReport, repair: bool) -> None:
    """The first release's index file, never read since each model version got its own."""
    left = lib.leftover_index_files()
    if not left:
        return
    if repair:
        for p in left:
            p.unlink(missing_ok=True)
    one = len(left) == 1
    report.add(
        "index",
        "note",
        f"{' and '.join(p.name for p in left)} {'was' if one else 'were'} left by the first "
        f"release and {'is' if one else 'are'} never read"
        + ("; removed" if repair else f"; --repair removes {'it' if one else 'them'}"),
        repaired=repair,
    )


def _compare_vectors(lib: Library, index: VectorIndex, version: str) -> str | None:
    rows = lib.db.execute(
        "SELECT image_id, vector FROM embeddings WHERE model_version = ? ORDER BY random() "
        "LIMIT 2000",
        [version],
    ).fetchall()
    keys = np.asarray([r[0] for r in rows], dtype=np.uint64)
    stored = np.stack([np.frombuffer(r[1], dtype=np.float32) for r in rows])
    held = np.asarray(index.index.get(keys), dtype=np.float32)
    if held.shape != stored.shape or not np.allclose(held, stored, atol=1e-5):
        return "the index holds vectors that differ from the stored embeddings"
    return None


def _thumbnails(lib: Library, report: CheckReport, repair: bool, deep: bool) -> None:
    rows = lib.db.execute(
        "SELECT sha256, path FROM catalog_images UNION SELECT sha256, path FROM photos"
    ).fetchall()
    sources: dict[str, list[str]] = {}
    for sha, path in rows:
        sources.setdefault(str(sha), []).append(str(path))
    report.counts["thumbnails"] = len(sources)
    bad: list[str] = []
    for sha in sources:
        thumb = thumbnail_path(lib.thumbs_dir, sha)
        try:
            if thumb.stat().st_size == 0:
                raise OSError("empty")
            if deep:
                with Image.open(thumb) as im:
                    im.load()
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
            bad.append(sha)
    if not bad:
        return
    # Only a file that still has the recorded content can remake a thumbnail: said the same
    # way with and without --repair (check used to send the user to a --repair that could
    # not help).
    originals = {sha: _original(sha, sources[sha]) for sha in bad}
    fixable = [sha for sha in bad if originals[sha] is not None]
    fixed = sum(_remake_thumbnail(lib, sha, originals[sha]) for sha in fixable) if repair else 0
    if fixed:
        report.add("thumbnails", "error", count(fixed, "missing or damaged thumbnail"), True)
    if len(fixable) > fixed:
        n = len(fixable) - fixed
        report.add(
            "thumbnails",
            "error",
            f"{count(n, 'thumbnail')} missing or damaged (shown blank); "
            + ("remaking failed" if repair else "try --repair"),
        )
    if len(bad) > len(fixable):
        n = len(bad) - len(fixable)
        report.add(
            "thumbnails",
            "error",
            f"{count(n, 'thumbnail')} missing or damaged (shown blank) whose original "
            f"{'file is' if n == 1 else 'files are'} gone or changed; importing the catalog "
            "again from where its pictures are now remakes them",
            repairable=False,
        )


def _keypoints(lib: Library, report: CheckReport, repair: bool, deep: bool) -> None:
    """Local features (the keypoint re-ranking). Matching skips damaged rows and images still
    waiting for theirs (an interrupted import) quietly, so only a check can say that part
    of re-ranking is missing. ``deep`` decodes every row, checksums included; a damaged row
    is dropped either way (it is useless, and matching would drop it too)."""
    if not local_features.enabled(lib):
        return
    damaged = 0
    if deep:
        before = lib.db.execute("SELECT count(*) FROM local_features").fetchone()[0]
        ids = [r[0] for r in lib.db.execute("SELECT DISTINCT image_id FROM local_features")]
        # A chunk at a time, each dropped after decoding: not the whole catalog's at once.
        for start in range(0, len(ids), KEYPOINT_CHUNK):
            store.load(lib.db, ids[start : start + KEYPOINT_CHUNK])
        damaged = before - lib.db.execute("SELECT count(*) FROM local_features").fetchone()[0]
    waiting = len(store.pending(lib.db, retry_failed=False))
    extracted = 0
    if waiting and repair:
        lib.sync_local_features()
        left = len(store.pending(lib.db, retry_failed=False))
        extracted, waiting = waiting - left, left
    if damaged:
        report.add("keypoints", "error", count(damaged, "damaged keypoint record"), repair)
    if extracted:
        report.add(
            "keypoints",
            "note",
            f"{count(extracted, 'catalog image')} had no keypoints; extracted them",
            repaired=True,
        )
    if waiting:
        report.add(
            "keypoints",
            "note",
            f"{count(waiting, 'catalog image')} {'has' if waiting == 1 else 'have'} no "
            "keypoints yet, so matching cannot re-rank with them; --repair extracts them",
        )


def _original(sha: str, paths: list[str]) -> Path | None:
    """A file among ``paths`` whose content still has the recorded hash, if any."""
    for original in map(Path, paths):
        try:
            if original.is_file() and file_sha256(original) == sha:
                return original
        except OSError:
            continue
    return None


def _remake_thumbnail(lib: Library, sha: str, original: Path | None) -> int:
    if original is None:
        return 0
    try:
        img = load_image(original)
    except (OSError, ImageLoadError):
        return 0
    thumbnail_path(lib.thumbs_dir, sha).unlink(missing_ok=True)
    save_thumbnail(lib.thumbs_dir, sha, img)
    return 1


def _exports(lib: Library, report: CheckReport, repair: bool) -> None:
    raw = lib.setting(LAST_EXPORT, "")
    if not raw:
        return
    try:
        last = json.loads(raw)
        target = Path(str(last["path"]))
    except (ValueError, KeyError, TypeError):
        return
    stray = [p for p in target.parent.glob(f".{target.name}.*.tmp") if p.is_file()]
    if stray:
        if repair:
            for p in stray:
                p.unlink(missing_ok=True)
        report.add(
            "exports",
            "note",
            f"an export to {target} was interrupted; the file there is the previous, complete one",
            repaired=repair,
        )
    if not target.is_file():
        report.add("exports", "note", f"the last export {target} is no longer there")
        return
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    if digest != last.get("sha256"):
        from engine.export_csv import local_minute  # as every time ShopMatch prints: local

        wrote = local_minute(str(last.get("at")))
        report.add(
            "exports",
            "note",
            f"{target} differs from what ShopMatch wrote at {wrote} (edited, or incomplete): "
            "export again to be sure",
        )


def record_export(lib: Library, target: Path, data: bytes, rows: int) -> None:
    """Remember the last export (path and hash) so ``check`` can tell a damaged one."""
    from engine.db import utcnow

    value = {
        "path": str(Path(target).resolve()),
        "sha256": hashlib.sha256(data).hexdigest(),
        "rows": rows,
        "at": utcnow(),
    }
    lib.set_setting(LAST_EXPORT, json.dumps(value))
