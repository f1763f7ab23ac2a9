"""The Library facade: one folder holding a shop's catalog, index, models and decisions.

This is the engine's public surface for the CLI and the desktop app. A Library is not
thread-safe: use it from the thread that opened it (its database connection refuses any
other, see ``engine.db.GuardedConnection``). The desktop app, as Anki does, runs every
engine call on a single worker thread, so writes are serialised and the window never blocks.
A file lock refuses a second process on the same library.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs
import sqlite_utils
from filelock import FileLock, Timeout
from PIL import Image

from engine import (
    backups,
    calibration,
    catalog_import,
    decisions,
    export_csv,
    matching,
    memory,
    photo_scope,
    reembed,
    salvage,
    scratch,
)
from engine import local_features as local_stage
from engine.db import (
    DB_NAME,
    PRODUCTS_FTS,
    UPGRADED_FROM,
    fold,
    has_products_fts,
    open_db,
    select_in,
    transaction,
    utcnow,
)
from engine.encoder import Encoder
from engine.errors import describe, describe_storage
from engine.index import VectorIndex, sidecar
from engine.manifest import MANIFEST_NAME, ModelManifest, model_folder_problem
from engine.photo_scope import PhotoFolder, PhotoScope
from engine.progress import CancelToken, ProgressCallback
from engine.resources import bundled_model_dir
from engine.sheet import Sheet


class LibraryError(RuntimeError):
    """A library-level problem with a message meant for the user."""


class DamagedDatabaseError(LibraryError):
    """The database cannot be read; ``backup`` is the newest backup that could replace it."""

    def __init__(self, message: str, backup: backups.Backup | None) -> None:
        super().__init__(message)
        self.backup = backup
        # Described where it was raised (the engine thread): it reads the backup file.
        self.backup_text = backup.describe() if backup is not None else ""


class LibraryLockedError(LibraryError):
    pass


log = logging.getLogger(__name__)


def default_library_path() -> Path:
    return Path(platformdirs.user_data_dir("ShopMatch", appauthor=False)) / "Library"


@dataclass(frozen=True)
class LibraryStatus:
    path: Path
    products: int
    catalog_images: int
    remembered: int  # confirmed photos serving as reference images (instant memory)
    photos: int
    confirmed: int
    no_match: int
    decisions: int
    model_version: str
    index_size: int
    last_backup: str  # local time of the newest backup, or "none"
    backup_problem: str = ""  # why no backup can be taken ("" when backups work)
    scores: str = ""  # how match scores are calibrated (engine.calibration)


def _status(
    conn: sqlite3.Connection, path: Path, model_version: str, index_size: int
) -> LibraryStatus:
    one = lambda sql: int(conn.execute(sql).fetchone()[0])  # noqa: E731
    states = decisions.state_counts(conn)
    return LibraryStatus(
        path=path,
        products=one("SELECT count(*) FROM products"),
        catalog_images=one("SELECT count(*) FROM catalog_images WHERE origin = 'catalog'"),
        remembered=one("SELECT count(*) FROM catalog_images WHERE origin = 'confirmed'"),
        photos=one("SELECT count(*) FROM photos"),
        confirmed=states.get("confirm", 0),
        no_match=states.get("no_match", 0),
        decisions=one("SELECT count(*) FROM decisions"),
        model_version=model_version,
        index_size=index_size,
        last_backup=next(
            (b.taken.astimezone().strftime("%Y-%m-%d %H:%M") for b in backups.list_backups(path)),
            "none",
        ),
        backup_problem=backups.problem(path),
        scores=_scores(conn),
    )


def _scores(conn: sqlite3.Connection) -> str:
    try:
        return calibration.described(conn)
    except sqlite3.OperationalError:  # read by read_status before its owner upgraded it
        return ""


def read_status(path: Path) -> LibraryStatus:
    """The status of a library that another window or command holds open, read without its
    lock through a read-only connection (WAL lets a reader in beside the writer): the figures
    of its last commit. Nothing is written, repaired or backed up."""
    file = Path(path) / DB_NAME
    if not file.is_file():
        raise LibraryError(f"no ShopMatch library at {path}")
    conn = sqlite3.connect(f"{file.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
    try:
        row = conn.execute("SELECT version FROM models WHERE active = 1").fetchone()
        if row is None:
            raise LibraryError("this library has no active model")
        # The index file may be mid-save by its owner: its stored embeddings say its size.
        size = conn.execute(
            "SELECT count(*) FROM embeddings WHERE model_version = ?", [row[0]]
        ).fetchone()[0]
        return _status(conn, Path(path), str(row[0]), int(size))
    finally:
        conn.close()


# How Library.products may order a page (the first two walk an index: no sort). Text is
# sorted by its stored ``fold`` (schema v7: 'Éclair' among the E's, 'apple' beside 'Apple');
# the unique raw SKU last makes the order total, so pages never overlap.
PRODUCT_ORDERS: dict[str, tuple[str, ...]] = {
    "name": ("name_key", "sku_key", "sku"),
    "sku": ("sku_key", "sku"),
    "category": ("category_key", "name_key", "sku_key", "sku"),
    "supplier": ("supplier_key", "name_key", "sku_key", "sku"),
    "price": ("price", "name_key", "sku_key", "sku"),
}
# A row contains the folded text :f: compared with the folded SKU and name stored beside them
# (schema v7), in C, where calling ``fold`` on each row with an accent took 0.56 s at 100k.
_FOLDED_CONTAINS = "(instr(sku_key, :f) > 0 OR instr(name_key, :f) > 0)"


def _fts_phrase(text: str) -> str:
    """``text`` as one FTS5 phrase (a substring, for the trigram tokenizer)."""
    return '"' + text.replace('"', '""') + '"'


class Library:
    """Open (or create) a library folder. Use as a context manager, or call ``close()``."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        square_mode: str = "letterbox",
        model_dir: Path | None = None,
        lock: bool = True,
        restore_damaged: bool = False,
    ) -> None:
        """``restore_damaged``: a database too damaged to open is replaced by the newest
        intact backup (said in ``repairs``) instead of raising :class:`DamagedDatabaseError`."""
        self.path = Path(path) if path is not None else default_library_path()
        self.path.mkdir(parents=True, exist_ok=True)
        self.square_mode = square_mode
        self._forget_derived()
        self._lock: FileLock | None = None
        # One line per repair made while opening (e.g. a damaged model replaced), for the
        # CLI and the app to show: a repair is never silent.
        self.repairs: list[str] = []
        if lock:
            self._lock = FileLock(str(self.path / "shopmatch.lock"), timeout=0)
            try:
                self._lock.acquire()
            except Timeout as exc:
                raise LibraryLockedError(
                    f"the library {self.path} is already open in another ShopMatch window or "
                    "command; close it first"
                ) from exc
            except OSError as exc:  # read-only folder or full disk: say so, not "locked"
                raise LibraryError(
                    f"cannot open the library {self.path}: {describe_storage(self.path, exc)}"
                ) from exc
        try:
            self.db: sqlite_utils.Database
            self.db, restored = self._open_database(restore_damaged)
            self.thumbs_dir = self.path / "thumbs"
            self.models_dir = self.path / "models"
            if self.active_model_version() is None:
                first = self.install_model(model_dir or bundled_model_dir(), check=False)
                self.db.execute("UPDATE models SET active = (version = ?)", [first.version])
            else:
                self._ensure_active_model_intact()
            # The database was put back from a backup just now, or by a run that stopped
            # before reading back the decisions made since: read them back.
            owed = [restored] if restored else backups.pending_recoveries(self.path)
            for restored in owed:
                self.repairs.append(self._recover_after(restored))
            if self._lock is not None:  # no other process holds it: safe to write
                self._catch_up_after_upgrade()
            self.backup_if_due()  # e.g. the last session ended without one
            if self._lock is not None:  # no run of another process can be using them
                for left in scratch.leftovers(self.path):
                    log.info("removing %s, left by a training run that was stopped", left)
                    scratch.release(left)
        except BaseException:
            self.close()
            raise

    def _catch_up_after_upgrade(self) -> None:
        """Once, on the first open after a schema upgrade (``db.UPGRADED_FROM``): do what the
        old release left undone, so that the library behaves as if the current one had made
        it. Confirmations made before instant memory existed (or that a release failed to
        remember) become references, products a release before schema v5 dropped from the
        catalog are withdrawn, and the first release's index file goes. Each is logged, not
        a repair: nothing was damaged. A failure is logged and tried again at the next open
        (``check`` reports what is still out of step)."""
        raw = self.setting(UPGRADED_FROM, "")
        if not raw:
            return
        try:
            since = int(raw)
        except ValueError:
            since = 1
        try:
            if since < 5:
                withdrawn = catalog_import.withdraw_dropped_before_v5(self)
                if withdrawn:
                    log.info(
                        "upgrade: %d products an older release dropped from the catalog are "
                        "withdrawn (%s)",
                        len(withdrawn),
                        ", ".join(withdrawn[:5]),
                    )
                    self.invalidate_index()  # their remembered photos left it
            remembered = memory.catch_up(self)[0] if memory.enabled(self) else 0
            if remembered:
                log.info("upgrade: instant memory caught up on %d confirmed photos", remembered)
            for left in self.leftover_index_files():
                log.info("upgrade: removing %s, an index file no version reads", left)
                left.unlink(missing_ok=True)
            self.flush()
        except Exception:  # opening must not fail for it: the next open tries again
            log.exception("catching up after the upgrade from schema version %s failed", raw)
            return
        self.db.execute("DELETE FROM settings WHERE key = ?", [UPGRADED_FROM])

    def leftover_index_files(self) -> list[Path]:
        """Index files of a layout no version reads: the first release's one index,
        ``index/catalog.usearch`` and its sidecar (since then each model version has its
        own ``catalog-VERSION.usearch``)."""
        first = self.path / "index" / "catalog.usearch"
        return [p for p in (first, sidecar(first)) if p.is_file()]

    def _open_database(
        self, restore_damaged: bool
    ) -> tuple[sqlite_utils.Database, backups.Restored | None]:
        """The database, and the backup put back in its place if it was too damaged."""
        file = self.path / DB_NAME
        try:
            # A missing or emptied database beside backups is a lost one, not a new library:
            # SQLite would quietly start an empty database there.
            if backups.list_backups(self.path) and (not file.exists() or not file.stat().st_size):
                raise sqlite3.DatabaseError(
                    "the database file is " + ("empty" if file.exists() else "missing")
                )
            return open_db(file), None
        except sqlite3.OperationalError as exc:  # e.g. no room left for the WAL files
            raise LibraryError(
                f"cannot open the library {self.path}: {describe_storage(self.path, exc)}"
            ) from exc
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:  # "not a database", ...
            detail = str(exc) if isinstance(exc, sqlite3.DatabaseError) else "unreadable text"
            message, newest = backups.damaged_message(self.path, detail)
            if not restore_damaged or newest is None:
                raise DamagedDatabaseError(message, newest) from exc
            restored = self._put_back_backup()
            return open_db(file), restored

    def _put_back_backup(self) -> backups.Restored:
        """Replace the (closed) damaged database with the newest intact backup. The index
        files go stale first: ids the backup had not yet handed out will be handed out again."""
        self.forget_index_files(keypoints=True)
        try:
            return backups.restore_newest(self.path, DB_NAME)
        except backups.NoBackupError as exc:
            raise DamagedDatabaseError(f"the library database is damaged and {exc}", None) from exc

    def _recover_after(self, done: backups.Restored) -> str:
        """Once the backup is open: write back the decisions the damaged file still holds
        that the backup lacks (``engine.salvage``); returns the line that reports the repair."""
        try:
            got = salvage.recover(self, done.damaged_copy, DB_NAME).describe()
        except Exception as exc:  # e.g. a full disk: the backup itself stands, said as such
            log.exception("reading decisions back from %s failed", done.damaged_copy)
            got = f"decisions made after it could not be recovered ({describe(exc)})"
        backups.recovery_done(done)
        return (
            f"{backups.DATABASE_RESTORED} {done.backup.describe()}; {got} "
            f"(the damaged file is in {done.damaged_copy})"
        )

    def restore_backup(self) -> str:
        """Put back the newest intact backup in place of this open library's damaged
        database (``check --repair``), then recover what the damaged file still holds;
        returns the line to show. Derived files are rebuilt as they are next used or checked."""
        self.db.close()
        try:
            done = self._put_back_backup()
        finally:
            self.db = open_db(self.path / DB_NAME)
            self._forget_derived()
        return self._recover_after(done)

    def _forget_derived(self) -> None:
        """Drop everything held in memory that the database decides (on open, and when a
        backup replaces the database): each is read or rebuilt again when next needed."""
        self._encoder: Encoder | None = None
        self._index: VectorIndex | None = None
        self._index_dirty = False
        self._index_removals = 0
        self._local_index: local_stage.DescriptorIndex | None = None  # local_features owns it
        self._active: str | None = None
        self._fts: bool | None = None  # whether the products trigram index exists
        # memory.photo_offset's last estimate: (model version, newest photo id then, offset).
        self.photo_offset_cache: tuple[str, int, float] | None = None
        # calibration.score_scale's last fit: (newest decision id then, scale, decisions
        # it rests on).
        self.score_scale_cache: tuple[int, float, int] | None = None

    def backup_if_due(self) -> Path | None:
        """Take a routine backup when one is due (see ``engine.backups``)."""
        return backups.take_if_due(self.db.conn, self.path)

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        """Save derived files, close the database and release the lock, whatever fails.

        A failed index save (full disk, read-only folder) costs nothing recorded: the index is
        rebuilt from the database on the next open. It is logged, and the close goes on, so
        the lock is always released.
        """
        db = getattr(self, "db", None)
        try:
            if db is not None:
                try:
                    self.flush()
                except OSError as exc:
                    log.warning("index not saved on close (%s); rebuilt on next open", exc)
                self.backup_if_due()
        finally:
            if db is not None:
                db.close()
                self.db = None  # type: ignore[assignment]
            if self._lock is not None and self._lock.is_locked:
                self._lock.release()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- models ------------------------------------------------------------------------------
    def install_model(
        self, source_dir: Path, metrics: dict[str, object] | None = None, *, check: bool = True
    ) -> ModelManifest:
        """Copy a model folder (ONNX + manifest) into the library and register it (inactive).

        The folder is checked first (manifest, file hash, and one real inference giving
        vectors of the stated size): a broken model installed "fine" only failed later, at
        activation, with an onnxruntime message. A version already installed is refused, so
        re-installing never wipes its stored gate comparison. ``check=False`` is for models
        the engine made or ships itself (already checked against torch, or bundled)."""
        manifest = self._installable(Path(source_dir)) if check else ModelManifest.load(source_dir)
        dest = self.models_dir / manifest.version
        if not dest.exists():
            tmp = self.models_dir / f".{manifest.version}.partial"
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                shutil.copytree(source_dir, tmp)
                tmp.replace(dest)
            except (OSError, shutil.Error) as exc:
                shutil.rmtree(tmp, ignore_errors=True)
                first = exc.args[0][0][2] if isinstance(exc, shutil.Error) else describe(exc)
                raise LibraryError(
                    f"could not copy model {manifest.version} into the library: {first}"
                ) from exc
        with transaction(self.db):
            self.db["models"].upsert(
                {
                    "version": manifest.version,
                    "folder": str(dest.relative_to(self.path)),
                    "architecture": manifest.architecture,
                    "embedding_dim": manifest.embedding_dim,
                    "parent_version": manifest.parent_version,
                    "created_at": utcnow(),
                    "metrics": json.dumps(metrics or {}),
                    "manifest": manifest.to_json(),
                },
                pk="version",
            )
        return manifest

    def _installable(self, source_dir: Path) -> ModelManifest:
        try:
            manifest = ModelManifest.load(source_dir)
        except (OSError, ValueError, TypeError) as exc:
            raise LibraryError(
                f"{source_dir} is not a model folder: its {MANIFEST_NAME} is missing or "
                f"unreadable ({describe(exc)})"
            ) from exc
        if self.db.execute("SELECT 1 FROM models WHERE version = ?", [manifest.version]).fetchone():
            raise LibraryError(f"model {manifest.version} is already installed")
        problem = model_folder_problem(source_dir)
        if problem is None:
            try:  # one inference on a blank image, as matching would run it
                Encoder(source_dir, threads=1).encode_images([Image.new("RGB", (32, 32))])
            except Exception as exc:  # onnxruntime raises its own types for a bad graph
                problem = f"it does not run as an image encoder ({describe(exc).splitlines()[0]})"
        if problem is not None:
            raise LibraryError(f"model {manifest.version} was not installed: {problem}")
        return manifest

    def models(self) -> list[dict[str, object]]:
        """Every installed model version, newest first, with its stored gate metrics."""
        rows = self.db.query("SELECT * FROM models ORDER BY created_at DESC, version DESC")
        return [{**r, "metrics": json.loads(str(r["metrics"]))} for r in rows]

    def removal_problem(self, version: str) -> str | None:
        """Why ``version`` cannot be removed, or None when it can."""
        row = self.db.execute("SELECT active FROM models WHERE version = ?", [version]).fetchone()
        if row is None:
            known = ", ".join(str(m["version"]) for m in self.models())
            return f"no model version {version!r} in this library (versions: {known})"
        if row[0]:
            return f"{version} is the active model; switch to another version first"
        if version == ModelManifest.load(bundled_model_dir()).version:
            return f"{version} is the bundled model the library falls back on; it stays"
        return None

    def remove_model(self, version: str, *, compact: bool = True) -> None:
        """Delete a model version not in use: its files, its index and its stored vectors,
        giving their disk space back (every run leaves a version, ~30 MB with its vectors).
        Decisions keep naming it; the bundled model and the active one stay.

        The rows go in one transaction, then the files: a crash in between leaves only a
        folder that no row names, which ``check --repair`` removes."""
        problem = self.removal_problem(version)
        if problem:
            raise ValueError(problem)
        folder = self.model_dir(version)
        if folder.resolve().parent != self.models_dir.resolve():  # never delete outside it
            raise ValueError(f"model {version}'s folder {folder} is not in the library's models")
        with transaction(self.db):
            for table in ("embeddings", "photo_embeddings", "suggestions"):
                self.db.execute(f"DELETE FROM {table} WHERE model_version = ?", [version])
            self.db.execute("DELETE FROM models WHERE version = ?", [version])
        if folder.is_dir():
            doomed = folder.with_name(f".{folder.name}.partial")  # never half-gone by its name
            folder.replace(doomed)
            shutil.rmtree(doomed, ignore_errors=True)
        index = self.index_path_for(version)
        for p in (index, sidecar(index)):
            p.unlink(missing_ok=True)
        if compact:  # ``compact=False``: the caller removes several, then compacts once
            self.compact()

    def compact(self) -> None:
        """Give freed pages (removed vectors) back to the disk; skipped with a warning when
        it cannot run (e.g. no room for its temporary copy)."""
        try:
            self.db.execute("VACUUM")
        except sqlite3.OperationalError as exc:
            log.warning("database not compacted (%s)", exc)

    def set_model_metrics(self, version: str, metrics: dict[str, object]) -> None:
        self.db["models"].update(version, {"metrics": json.dumps(metrics)})

    def model_dir(self, version: str) -> Path:
        row = self.db.execute("SELECT folder FROM models WHERE version = ?", [version]).fetchone()
        if row is None:
            raise LibraryError(f"no model version {version!r} in this library")
        return self.path / row[0]

    def model_manifest(self, version: str) -> ModelManifest:
        return ModelManifest.load(self.model_dir(version))

    def active_model_version(self) -> str | None:
        row = self.db.execute("SELECT version FROM models WHERE active = 1").fetchone()
        return row[0] if row else None

    @property
    def model_version(self) -> str:
        if self._active is None:
            self._active = self.active_model_version()
            if self._active is None:
                raise LibraryError("this library has no active model")
        return self._active

    def model_problem(self, version: str) -> str | None:
        """Why a model version's files cannot be trusted (missing, or a hash that disagrees
        with its manifest), or None when they are intact."""
        return model_folder_problem(self.model_dir(version))

    def repair_model(self, version: str) -> str | None:
        """Restore a damaged model's files from what the library still holds: the manifest
        stored in the database, and the bundled copy of the same version. Returns what was
        done, or None if the files could not be restored."""
        folder = self.model_dir(version)
        row = self.db.execute("SELECT manifest FROM models WHERE version = ?", [version]).fetchone()
        from engine.atomic import atomic_path, atomic_write_text

        source = self._bundled_copy(version)
        if not folder.is_dir() and source is None:
            return None  # the folder is gone and nothing holds its model file: a manifest
            # alone would only leave a folder that still cannot run
        done = []
        try:
            ModelManifest.load(folder)
        except (OSError, ValueError, TypeError):
            if row is not None:
                atomic_write_text(folder / MANIFEST_NAME, str(row[0]))
                done.append("manifest restored from the database")
        if self.model_problem(version) is None:
            return "; ".join(done) or None
        if source is not None:
            file = ModelManifest.load(source).file
            with atomic_path(folder / file) as tmp:
                shutil.copyfile(source / file, tmp)
            if self.model_problem(version) is None:
                done.append("model file copied again from the bundled model")
                return "; ".join(done)
        return None

    @staticmethod
    def _bundled_copy(version: str) -> Path | None:
        """The bundled model folder of that version, if this installation ships it."""
        bundle = bundled_model_dir().parent
        for source in sorted(bundle.iterdir()) if bundle.is_dir() else []:
            try:
                if ModelManifest.load(source).version == version:
                    return source
            except (OSError, ValueError, TypeError):
                continue
        return None

    def _ensure_active_model_intact(self) -> None:
        """On open: a damaged active model is restored from the bundle, or the library falls
        back to the newest intact model (its parent first), re-activated safely."""
        active = self.active_model_version()
        if active is None:
            return
        problem = self.model_problem(active)
        if problem is None:
            return
        fixed = self.repair_model(active)
        if fixed is not None and self.model_problem(active) is None:
            self.repairs.append(f"model {active}: {problem}; repaired ({fixed})")
            return
        candidates = [str(m["version"]) for m in self.models() if m["version"] != active]
        parent = self.db.execute(
            "SELECT parent_version FROM models WHERE version = ?", [active]
        ).fetchone()[0]
        if parent in candidates:
            candidates.remove(parent)
            candidates.insert(0, parent)
        for version in candidates:
            if self.model_problem(version) is None:
                self.activate_model(version)
                self.repairs.append(f"model {active}: {problem}; switched back to model {version}")
                return
        raise LibraryError(
            f"the active model {active} is unusable: {problem}, and no intact model is left "
            "to fall back to; reinstall ShopMatch or install a model with 'shopmatch models "
            "--install'"
        )

    def encoder_for(self, version: str, threads: int | None = None) -> Encoder:
        """A fresh encoder session for ``version`` (``threads``: default all cores, up to 8)."""
        return Encoder(self.model_dir(version), threads=threads, square_mode=self.square_mode)

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None or self._encoder.version != self.model_version:
            self._encoder = self.encoder_for(self.model_version)
        return self._encoder

    def plan_embeddings(self, version: str) -> reembed.EmbedPlan:
        """What activating ``version`` would embed: run its :meth:`~EmbedPlan.encode` off the
        engine thread and hand the result to :meth:`activate_model`, so that the minutes of
        encoder time never hold up matching."""
        return reembed.plan(self, version)

    def check_activatable(self, version: str) -> None:
        """Raise, in words, when ``version``'s files cannot run and cannot be restored. E.g.
        a backup taken before 'models remove' brings back its row, not its files: switching
        to it failed deep in the encoder with a bare FileNotFoundError."""
        problem = self.model_problem(version)
        if problem is not None and self.repair_model(version) is None:
            raise LibraryError(
                f"model {version} cannot be activated: {problem}; 'shopmatch models' lists "
                "the versions that can be used"
            )

    def store_embeddings(self, embedded: reembed.Embedded) -> int:
        """Store vectors computed from :meth:`plan_embeddings` (fast); images removed or
        changed since the plan was read are skipped. Returns how many were stored."""
        return reembed.store(self, embedded)

    def activate_model(
        self,
        version: str,
        *,
        embedded: reembed.Embedded | None = None,
        skip: Collection[int] = (),
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        """Switch the library to another model version, safely.

        Stores ``embedded`` (vectors computed elsewhere from :meth:`plan_embeddings`), embeds
        every reference image still without a vector, builds and saves the new model's own
        index file, and only then flips the active flag in one transaction. A crash or cancel
        at any point before the flip leaves the previous model, and its index, fully working.
        Images in ``skip``, and those ``embedded`` failed on, are not tried again here (they
        stay out of the index until ``shopmatch check --repair``).
        """
        self.check_activatable(version)
        self.flush()
        failed = set(skip)
        if embedded is not None:
            if embedded.version != version:
                raise ValueError(f"vectors of {embedded.version} given to activate {version}")
            self.store_embeddings(embedded)
            failed |= {image_id for image_id, _ in embedded.failed}  # no second try here
        reembed.embed_missing(self, version, progress=progress, cancel=cancel, skip=failed)
        keys, vecs = self._embedding_rows(version)
        index = VectorIndex.build(keys, vecs, version)
        index.save(self.index_path_for(version))
        with transaction(self.db):
            self.db.execute("UPDATE models SET active = (version = ?)", [version])
        self._active = version
        self._index = index
        self._index_dirty = False
        self._index_removals = 0

    # -- settings ----------------------------------------------------------------------------
    def setting(self, key: str, default: str) -> str:
        row = self.db.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
        return str(row[0]) if row else default

    def set_setting(self, key: str, value: str) -> None:
        self.db["settings"].upsert({"key": key, "value": value}, pk="key")

    @property
    def instant_memory(self) -> bool:
        return memory.enabled(self)

    @instant_memory.setter
    def instant_memory(self, on: bool) -> None:
        memory.set_enabled(self, on)

    @property
    def local_features(self) -> bool:
        """Re-rank with verified local keypoints (printed goods); on unless turned off."""
        return local_stage.enabled(self)

    @local_features.setter
    def local_features(self, on: bool) -> None:
        local_stage.set_enabled(self, on)

    def sync_local_features(
        self, *, progress: ProgressCallback | None = None, cancel: CancelToken | None = None
    ) -> local_stage.SyncReport:
        """Extract keypoints for every supplier image lacking them and update their index."""
        return local_stage.sync(self, progress=progress, cancel=cancel)

    def local_matches(self, photo: int | Path, image_id: int) -> local_stage.KeypointMatches:
        """Verified matching points between a photo (id or path) and a catalog image, as
        0-1 fractions of each image's size, for the app to draw."""
        path = photo
        if isinstance(photo, int):
            row = self.db.execute("SELECT path FROM photos WHERE id = ?", [photo]).fetchone()
            if row is None:
                raise KeyError(f"no photo with id {photo}")
            path = Path(row[0])
        return local_stage.explain(self, Path(path), image_id)

    # -- vector index ------------------------------------------------------------------------
    def _embedding_rows(
        self, version: str, only: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(image ids, vectors) stored for ``version``: all of them, or the ids in ``only``."""
        sql = "SELECT image_id, vector FROM embeddings WHERE model_version = ?"
        if only is None:
            rows = self.db.execute(sql + " ORDER BY image_id", [version]).fetchall()
        else:
            where = sql + " AND image_id IN ({marks})"
            rows = list(select_in(self.db, where, only.tolist(), prefix=[version]))
        dim = self.model_manifest(version).embedding_dim
        keys = np.fromiter((r[0] for r in rows), dtype=np.uint64, count=len(rows))
        vecs = np.zeros((len(rows), dim), dtype=np.float32)
        for i, (_, blob) in enumerate(rows):
            vecs[i] = np.frombuffer(blob, dtype=np.float32)
        return keys, vecs

    @property
    def index_path(self) -> Path:
        return self.index_path_for(self.model_version)

    def index_path_for(self, version: str) -> Path:
        """One index file per model version: activating a model never touches the old one."""
        return self.path / "index" / f"catalog-{version}.usearch"

    def rebuild_index(self) -> VectorIndex:
        """Rebuild the index from stored embeddings (no re-encoding) and save it atomically."""
        keys, vecs = self._embedding_rows(self.model_version)
        index = VectorIndex.build(keys, vecs, self.model_version)
        index.save(self.index_path)
        self._index = index
        self._index_dirty = False
        self._index_removals = 0
        return index

    def index_add(self, image_id: int, vector: np.ndarray) -> None:
        """Add one reference image at once; persisted by ``flush()`` (the DB is the truth, so a
        crash before then only costs a rebuild from stored embeddings)."""
        index = self.index
        if image_id in index:  # cannot happen with never-reused ids; never crash on it
            self.rebuild_index()
            return
        index.add(image_id, vector)
        self._index_dirty = True

    def index_remove(self, image_id: int) -> None:
        index = self.index
        if image_id in index:
            index.remove(image_id)
            self._index_dirty = True
            self._index_removals += 1

    def flush(self) -> None:
        """Persist in-memory index changes; many removals trigger a clean rebuild instead of
        piling up tombstones in the graph."""
        local_stage.flush(self)
        if self._index is None or not self._index_dirty:
            return
        if self._index_removals > max(100, len(self._index) // 20):
            self.rebuild_index()
            return
        self._index.save(self.index_path)
        self._index_dirty = False

    @property
    def index(self) -> VectorIndex:
        """The current index; a missing, stale or damaged file is rebuilt transparently."""
        if self._index is not None and self._index.model_version == self.model_version:
            return self._index
        loaded = VectorIndex.load(self.index_path)
        if loaded is not None and loaded.model_version == self.model_version:
            caught_up = self._catch_up_index(loaded)
            if caught_up is not None:
                self._index = caught_up
                return caught_up
        # Logged so a rebuild at every start, a sign of a deeper problem, shows.
        log.info(
            "index of model %s %s; rebuilt from stored embeddings",
            self.model_version,
            "missing or unreadable" if loaded is None else "far out of date",
        )
        return self.rebuild_index()

    def _catch_up_index(self, loaded: VectorIndex) -> VectorIndex | None:
        """``loaded`` brought level with the stored embeddings, or None where a rebuild is
        the better deal. After an unclean exit the file lacks the changes since its last save
        (a confirmation's reference, an undo's removal); rebuilding it all for those took 24 s
        at 60k references before the window could show anything (review 48). Adding what is
        missing and removing what left is exact because ids are never reused and a stored
        vector never changes under its id while the file is valid: the changes that break
        either (a picture replaced, a backup put back) forget the file first
        (:meth:`forget_index_files`)."""
        ids = np.fromiter(
            (
                r[0]
                for r in self.db.execute(
                    "SELECT image_id FROM embeddings WHERE model_version = ?", [self.model_version]
                )
            ),
            dtype=np.uint64,
        )
        have = loaded.keys()
        missing, extra = np.setdiff1d(ids, have), np.setdiff1d(have, ids)
        if not len(missing) and not len(extra):
            return loaded
        if len(extra) > max(100, len(ids) // 20) or len(missing) > max(100, len(ids) // 2):
            return None  # tombstones, or most of the work of a rebuild anyway
        for key in extra:
            loaded.remove(int(key))
        if len(missing):
            loaded.extend(*self._embedding_rows(self.model_version, only=missing))
        self._index_dirty = True  # saved with the next flush, as the changes would have been
        self._index_removals = len(extra)
        log.info(
            "index of model %s caught up with the database: %d added, %d removed",
            self.model_version,
            len(missing),
            len(extra),
        )
        return loaded

    def forget_index_files(self, keypoints: bool = False) -> None:
        """Make the saved vector index files read as stale (their sidecars go) and drop the
        index held in memory, so it is rebuilt from the database when next used: for changes
        a catch-up cannot see, a stored vector replaced under its id (a supplier picture
        changed). A crash, or a failure that leaves the process running, after this costs a
        rebuild, never a stale vector saved again as current. With ``keypoints``, the
        keypoint index's files too: ids handed out again (a backup put back) break both."""
        folder = self.path / "index"
        pattern = "*.usearch.json" if keypoints else "catalog-*.usearch.json"
        for info in folder.glob(pattern) if folder.is_dir() else []:
            info.unlink(missing_ok=True)
        self._index = None
        self._index_dirty = False
        self._index_removals = 0

    def invalidate_index(self) -> None:
        self._index = None

    # -- catalog -----------------------------------------------------------------------------
    def import_catalog(
        self,
        folder: Path | None = None,
        sheet: Path | Sheet | None = None,
        *,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
        removals: str = "ask",
        replaces: Path | None = None,
    ) -> catalog_import.ImportReport:
        """Import or update the catalog; ``sheet`` is a CSV path, or one already read;
        ``removals``, ``replaces``: see :func:`catalog_import.import_catalog`."""
        return catalog_import.import_catalog(
            self,
            folder,
            sheet,
            progress=progress,
            cancel=cancel,
            removals=removals,
            replaces=replaces,
        )

    def products(
        self,
        text: str = "",
        category: str | None = None,
        supplier: str | None = None,
        limit: int = 200,
        offset: int = 0,
        order: str = "name",
        descending: bool = False,
    ) -> list[dict[str, object]]:
        """Products whose SKU or name contains ``text``, for search boxes; case and accents
        ignored at any length ('creme' finds 'Crème', 'äp' finds 'ÄPFEL'; ``engine.db.fold``).
        One page of ``limit`` rows from ``offset``: an exact SKU first, then products in the
        catalog by ``order`` (a key of PRODUCT_ORDERS), then withdrawn ones (never suggested,
        so never what a search is after), in the same order."""
        # The exact SKU is fetched on its own so the rest can walk the (name, sku) index in
        # order and stop after one page: ~1 ms at 100k products instead of sorting every match
        # (bench/bench_scale.py). '%' and '_' typed by a user are literal, not wildcards.
        if order not in PRODUCT_ORDERS:
            raise ValueError(f"cannot order products by {order!r}")
        limit, offset = max(0, int(limit)), max(0, int(offset))
        text = text.replace("\x00", "")  # SQLite ends LIKE patterns and FTS queries at a NUL
        where = ["sku != :exact"]
        params: dict[str, object] = {"exact": text}
        # Accents alone ('\u0301') fold to nothing: they find nothing, not everything.
        folded = fold(text) or text.casefold()
        few = False
        if folded:
            few = len(folded) >= 3 and self._few_text_matches(folded)
            if few:
                # A rare term: fetch its few matches through the trigram index of the folded
                # SKUs and names and sort them, instead of walking the whole name index.
                where.append(
                    f"rowid IN (SELECT rowid FROM {PRODUCTS_FTS} WHERE {PRODUCTS_FTS} MATCH :q)"
                )
                params["q"] = _fts_phrase(folded)
            else:
                where.append(_FOLDED_CONTAINS)
                params["f"] = folded
        if category:
            where.append("category = :category")
            params["category"] = category
        if supplier:
            where.append("supplier = :supplier")
            params["supplier"] = supplier
        exact = self.product(text) if text else None
        if exact is not None and (
            (category and exact["category"] != category)
            or (supplier and exact["supplier"] != supplier)
        ):
            exact = None
        head: list[dict[str, object]] = []
        if exact is not None:
            if offset == 0 and limit:
                head, limit = [exact], limit - 1
            else:
                offset -= 1
        direction = " DESC" if descending else ""
        # Text in the order people read it ('Alpro', 'apple juice', 'ARLA', 'Éclair'): by the
        # folded keys the partial indexes hold, so a page still walks one.
        sort = ", ".join(f"{column}{direction}" for column in PRODUCT_ORDERS[order])

        def page(withdrawn: bool, limit: int, offset: int) -> list[dict[str, object]]:
            state = "withdrawn_at IS NOT NULL" if withdrawn else "withdrawn_at IS NULL"
            sql = (
                f"SELECT * FROM products WHERE {' AND '.join([*where, state])} "
                f"ORDER BY {sort} LIMIT :limit OFFSET :offset"
            )
            return list(self.db.query(sql, {**params, "limit": limit, "offset": offset}))

        if few:  # a few matches, sorted anyway: in one query
            sql = (
                f"SELECT * FROM products WHERE {' AND '.join(where)} "
                f"ORDER BY withdrawn_at IS NOT NULL, {sort} LIMIT :limit OFFSET :offset"
            )
            return head + list(self.db.query(sql, {**params, "limit": limit, "offset": offset}))
        current = page(False, limit, offset)
        if len(current) == limit:
            return head + current
        if current or offset == 0:
            skip = 0  # the current products ended on this page
        else:  # the page lies past them: how far into the withdrawn ones?
            conditions = " AND ".join([*where, "withdrawn_at IS NULL"])
            sql = f"SELECT count(*) FROM products WHERE {conditions}"
            skip = offset - int(self.db.execute(sql, params).fetchone()[0])
        return head + current + page(True, limit - len(current), max(0, skip))

    def _few_text_matches(self, folded: str, few: int = 2000) -> bool:
        """Whether at most ``few`` products contain ``folded`` (a ``fold``ed search text),
        through the trigram index (False without it)."""
        if self._fts is None:
            self._fts = has_products_fts(self.db)
        if not self._fts:
            return False
        n = self.db.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {PRODUCTS_FTS} WHERE {PRODUCTS_FTS} MATCH ? "
            "LIMIT ?)",
            [_fts_phrase(folded), few + 1],
        ).fetchone()[0]
        return int(n) <= few

    def product(self, sku: str) -> dict[str, object] | None:
        rows = list(self.db.query("SELECT * FROM products WHERE sku = ?", [sku]))
        return rows[0] if rows else None

    def catalog_images(self, sku: str) -> list[dict[str, object]]:
        return list(self.db.query("SELECT * FROM catalog_images WHERE sku = ? ORDER BY id", [sku]))

    def thumbnail(self, sha256: str) -> Path:
        from engine.thumbnails import thumbnail_path

        return thumbnail_path(self.thumbs_dir, sha256)

    # -- matching ----------------------------------------------------------------------------
    def match(
        self,
        paths: Sequence[Path],
        *,
        top_k: int = 5,
        category: str | None = None,
        supplier: str | None = None,
        progress: ProgressCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> Iterator[matching.PhotoMatch]:
        """Match photos (files or folders), yielding results batch by batch as they arrive."""
        return matching.match_paths(
            self,
            paths,
            top_k=top_k,
            category=category,
            supplier=supplier,
            progress=progress,
            cancel=cancel,
        )

    def suggestions(self, photo_id: int) -> list[matching.Suggestion]:
        return matching.stored_suggestions(self, photo_id)

    def photo_id(self, ref: str | int | Path) -> int:
        """Resolve a photo id, or a path of a photo matched before, to its id."""
        return matching.resolve_photo(self, ref)

    # -- decisions ---------------------------------------------------------------------------
    def confirm(
        self, photo_id: int, sku: str | None = None, *, by_score: bool = False
    ) -> decisions.Decision:
        """Confirm ``sku`` for a photo (default: its top suggestion); with instant memory on,
        the photo becomes a reference image of that SKU at once. ``by_score``: taken on the
        score alone ("Accept confident"), which the scores' calibration must not learn from."""
        decision = decisions.confirm(self, photo_id, sku, by_score=by_score)
        memory.sync_photo(self, photo_id)
        return decision

    def reject(self, photo_id: int, sku: str) -> decisions.Decision:
        return decisions.record(self, photo_id, "reject", sku)

    def no_match(self, photo_id: int) -> decisions.Decision:
        decision = decisions.record(self, photo_id, "no_match", None)
        memory.sync_photo(self, photo_id)
        return decision

    def undo(self, photo_id: int | None = None) -> decisions.Decision | None:
        undone = decisions.undo(self, photo_id)
        if undone is not None:
            memory.sync_photo(self, undone.photo_id)
        return undone

    def photo_state(self, photo_id: int) -> decisions.PhotoState:
        return decisions.photo_state(self, photo_id)

    def reference_mark(self) -> int:
        """Where the references stand now: pass it to :meth:`outdated_suggestions` after a
        decision (see ``memory.reference_mark``)."""
        return memory.reference_mark(self)

    def outdated_suggestions(
        self, photo_ids: Sequence[int], since: int, limit: int = 0
    ) -> list[int]:
        """Of these undecided photos, those the references changed since ``since`` would
        suggest otherwise: search them again (see ``memory.waiting_to_search_again``)."""
        return memory.waiting_to_search_again(self, photo_ids, since, limit)

    def rescore(self, photo_ids: Sequence[int]) -> dict[int, dict[str, float]]:
        """Of these undecided photos, those scored at another calibration than the one in use
        now, with their new scores by SKU (stored too; see ``calibration.rescore``)."""
        return calibration.rescore(self, photo_ids)

    # -- export ------------------------------------------------------------------------------
    def export_csv(
        self,
        target: Path,
        *,
        per: str = "photo",
        include_undecided: bool = False,
        separator: str | None = None,
        scope: PhotoScope | None = None,
    ) -> int:
        """Write the inventory CSV atomically; returns the number of data rows.
        ``separator``: comma, semicolon or tab; None follows the supplier sheet's.
        ``scope``: which photos (one delivery's); None is every photo."""
        return export_csv.export_inventory(
            self,
            target,
            per=per,
            include_undecided=include_undecided,
            separator=separator,
            scope=scope,
        )

    def photos_in(self, scope: PhotoScope) -> int:
        """How many photos ``scope`` covers, decided or not."""
        return len(photo_scope.photo_ids(self.db.conn, scope))

    def photo_folders(self) -> list[PhotoFolder]:
        """The folders photos were added from, newest first: an export's deliveries."""
        return photo_scope.photo_folders(self.db.conn)

    # -- overview ----------------------------------------------------------------------------
    def status(self) -> LibraryStatus:
        return _status(self.db.conn, self.path, self.model_version, len(self.index))

    def backups(self) -> list[backups.Backup]:
        """This library's database backups, newest first."""
        return backups.list_backups(self.path)

    def take_backup(self) -> Path:
        """A backup now, whatever the schedule (``shopmatch backups --now``)."""
        return backups.take(self.db.conn, self.path, reason="manual")
