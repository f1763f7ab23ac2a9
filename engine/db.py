"""The library's SQLite catalog: schema, migrations and connection set-up.

SQLite (through sqlite-utils) is the single source of truth: products, images, stored
embeddings, photos, suggestions, append-only decisions and model versions. Every derived file
(the vector index, thumbnails) can be rebuilt from it, which is what makes crashes harmless.
"""

from __future__ import annotations

import sqlite3
import threading
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import sqlite_utils

from engine import backups

DB_NAME = "shopmatch.db"


def utcnow() -> str:
    """ISO-8601 UTC timestamp with seconds, the one time format stored everywhere."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _v1(db: sqlite_utils.Database) -> None:
    db.executescript(
        """
        CREATE TABLE products (
            sku TEXT PRIMARY KEY,
            name TEXT NOT NULL DEFAULT '',
            category TEXT NOT NULL DEFAULT '',
            supplier TEXT NOT NULL DEFAULT '',
            price REAL,
            attributes TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX products_category ON products(category);
        CREATE INDEX products_supplier ON products(supplier);

        -- One row per reference image of a product. origin 'catalog' comes from a supplier
        -- import, 'confirmed' from a staff confirmation (instant memory, learning issue).
        -- AUTOINCREMENT: ids are the vector index keys and must never be reused after removal.
        CREATE TABLE catalog_images (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            sku TEXT NOT NULL REFERENCES products(sku) ON DELETE CASCADE,
            path TEXT NOT NULL,
            source_root TEXT NOT NULL DEFAULT '',
            sha256 TEXT NOT NULL,
            size INTEGER NOT NULL DEFAULT 0,
            mtime REAL NOT NULL DEFAULT 0,
            width INTEGER,
            height INTEGER,
            origin TEXT NOT NULL DEFAULT 'catalog',
            added_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE UNIQUE INDEX catalog_images_path ON catalog_images(path);
        CREATE INDEX catalog_images_sha ON catalog_images(sha256);
        CREATE INDEX catalog_images_sku ON catalog_images(sku);
        CREATE INDEX catalog_images_root ON catalog_images(source_root);

        -- Stored so the index can be rebuilt without re-encoding; one row per model version.
        CREATE TABLE embeddings (
            image_id INTEGER NOT NULL REFERENCES catalog_images(id) ON DELETE CASCADE,
            model_version TEXT NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (image_id, model_version)
        );

        CREATE TABLE photos (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL UNIQUE,
            width INTEGER,
            height INTEGER,
            added_at TEXT NOT NULL
        );

        CREATE TABLE photo_embeddings (
            photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
            model_version TEXT NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (photo_id, model_version)
        );

        CREATE TABLE suggestions (
            photo_id INTEGER NOT NULL REFERENCES photos(id) ON DELETE CASCADE,
            model_version TEXT NOT NULL,
            rank INTEGER NOT NULL,
            sku TEXT NOT NULL,
            image_id INTEGER,
            similarity REAL NOT NULL,
            score REAL NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (photo_id, model_version, rank)
        );

        -- Append-only: nothing is ever updated or deleted; undo is a row that points at the
        -- decision it cancels. sku/rank/score are copied so history survives catalog edits.
        CREATE TABLE decisions (
            id INTEGER PRIMARY KEY,
            photo_id INTEGER NOT NULL REFERENCES photos(id),
            action TEXT NOT NULL CHECK (action IN ('confirm', 'reject', 'no_match', 'undo')),
            sku TEXT,
            rank INTEGER,
            score REAL,
            model_version TEXT,
            undoes INTEGER REFERENCES decisions(id),
            decided_at TEXT NOT NULL
        );
        CREATE INDEX decisions_photo ON decisions(photo_id);

        CREATE TABLE models (
            version TEXT PRIMARY KEY,
            folder TEXT NOT NULL,
            architecture TEXT NOT NULL,
            embedding_dim INTEGER NOT NULL,
            parent_version TEXT,
            created_at TEXT NOT NULL,
            active INTEGER NOT NULL DEFAULT 0,
            metrics TEXT NOT NULL DEFAULT '{}',
            manifest TEXT NOT NULL
        );

        CREATE TABLE imports (
            id INTEGER PRIMARY KEY,
            source_root TEXT NOT NULL,
            sheet TEXT,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            added INTEGER NOT NULL DEFAULT 0,
            updated INTEGER NOT NULL DEFAULT 0,
            removed INTEGER NOT NULL DEFAULT 0,
            unchanged INTEGER NOT NULL DEFAULT 0,
            skipped INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL DEFAULT 'running'
        );
        """
    )


def _v2(db: sqlite_utils.Database) -> None:
    """Library settings, and the photo a 'confirmed' reference image was made from."""
    db.executescript(
        """
        CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        ALTER TABLE catalog_images ADD COLUMN photo_id INTEGER REFERENCES photos(id);
        CREATE INDEX catalog_images_photo ON catalog_images(photo_id);
        """
    )


def _v3(db: sqlite_utils.Database) -> None:
    """Local features (RootSIFT keypoints) of reference images, and verified inliers per
    suggestion so the UI can say "47 matching points" for stored results too."""
    db.executescript(
        """
        -- One row per extraction; id (never reused) is part of the descriptor index keys.
        -- error is set when the image could not be read; n = 0 when it has no keypoints.
        CREATE TABLE local_features (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            image_id INTEGER NOT NULL UNIQUE REFERENCES catalog_images(id) ON DELETE CASCADE,
            sha256 TEXT NOT NULL,
            version TEXT NOT NULL,
            n INTEGER NOT NULL,
            width INTEGER NOT NULL,
            height INTEGER NOT NULL,
            points BLOB NOT NULL,
            descriptors BLOB NOT NULL,
            crc INTEGER NOT NULL,
            error TEXT,
            created_at TEXT NOT NULL
        );
        ALTER TABLE suggestions ADD COLUMN inliers INTEGER NOT NULL DEFAULT 0;
        """
    )


PRODUCTS_FTS = "products_fts"


def _v4(db: sqlite_utils.Database) -> None:
    """Catalog browsing at 100k products: indexes for paging by name and for counting
    remembered (confirmed) reference images, and a trigram full-text index over SKU and name
    so a rare search term is found without scanning every row (bench/bench_scale.py). The FTS
    table is skipped where SQLite lacks FTS5 trigrams; ``Library.products`` then falls back to
    the index walk."""
    db.executescript(
        """
        CREATE INDEX IF NOT EXISTS products_name ON products(name, sku);
        CREATE INDEX IF NOT EXISTS catalog_images_origin ON catalog_images(origin);
        """
    )
    try:
        db.execute(
            f"CREATE VIRTUAL TABLE {PRODUCTS_FTS} USING fts5(sku, name, content='products', "
            "tokenize='trigram')"
        )
    except sqlite3.OperationalError:
        return
    db.executescript(
        f"""
        CREATE TRIGGER products_fts_insert AFTER INSERT ON products BEGIN
            INSERT INTO {PRODUCTS_FTS}(rowid, sku, name) VALUES (new.rowid, new.sku, new.name);
        END;
        CREATE TRIGGER products_fts_delete AFTER DELETE ON products BEGIN
            INSERT INTO {PRODUCTS_FTS}({PRODUCTS_FTS}, rowid, sku, name)
            VALUES ('delete', old.rowid, old.sku, old.name);
        END;
        CREATE TRIGGER products_fts_update AFTER UPDATE OF sku, name ON products BEGIN
            INSERT INTO {PRODUCTS_FTS}({PRODUCTS_FTS}, rowid, sku, name)
            VALUES ('delete', old.rowid, old.sku, old.name);
            INSERT INTO {PRODUCTS_FTS}(rowid, sku, name) VALUES (new.rowid, new.sku, new.name);
        END;
        INSERT INTO {PRODUCTS_FTS}({PRODUCTS_FTS}) VALUES ('rebuild');
        """
    )


def _v5(db: sqlite_utils.Database) -> None:
    """When a product left the supplier's catalog (an import removed its last picture and no
    longer lists it): kept for the decisions that name it, but its remembered photos stop
    being references too, or it went on being suggested. NULL while it is in the catalog."""
    db.execute("ALTER TABLE products ADD COLUMN withdrawn_at TEXT")


# A suggestion's product is still in the supplier's catalog (stored suggestions outlive it).
CURRENT_SKUS = "sku NOT IN (SELECT sku FROM products WHERE withdrawn_at IS NOT NULL)"

FOLD = "shopmatch_fold"  # the SQL name of ``fold``, registered on every connection open_db makes


def fold(text: str | None) -> str | None:
    """``text`` as product search compares it: accents dropped ('Crème' reads 'creme') and
    case folded for every script (SQLite's LIKE folds ASCII only). Canonical decomposition
    only: a compatibility one turns a lone '¨' into a space, found in every name. The search
    index stores these forms: a change here needs a migration that rebuilds it."""
    if text is None:
        return None
    text = str(text)
    if text.isascii():
        return text.lower()
    plain = unicodedata.normalize("NFD", text)
    bare = "".join(c for c in plain if not unicodedata.combining(c)).casefold()
    return bare.translate(_LETTERS)


# Letters that are not a base letter plus an accent, written as one by people without them:
# 'smorrebrod' finds 'Smørrebrød', 'boeuf' finds 'Bœuf'.
_LETTERS = str.maketrans(
    {"ø": "o", "ł": "l", "đ": "d", "ð": "d", "ħ": "h", "ı": "i", "æ": "ae", "œ": "oe", "þ": "th"}
)


def register_functions(conn: sqlite3.Connection) -> None:
    """The SQL functions the schema's search index and triggers call (``fold``)."""
    conn.create_function(FOLD, 1, fold, deterministic=True)


def _v6(db: sqlite_utils.Database) -> None:
    """Search forgives accents and folds case for any length ('creme' finds 'Crème',
    'äp' finds 'ÄPFEL') and lists withdrawn products last: the trigram index now holds the
    folded SKU and name (``fold``, through a view, so 'rebuild' and 'integrity-check' still
    read it from the products).
    Its triggers call ``fold``, which open_db registers: another SQLite client cannot change
    the products table of a library (it says 'no such function: shopmatch_fold')."""
    # Pages list current products, then withdrawn ones: each walks its own index in order.
    db.executescript(
        """
        CREATE INDEX products_current_name ON products(name COLLATE NOCASE, sku COLLATE NOCASE)
            WHERE withdrawn_at IS NULL;
        CREATE INDEX products_current_sku ON products(sku COLLATE NOCASE)
            WHERE withdrawn_at IS NULL;
        CREATE INDEX products_withdrawn ON products(name COLLATE NOCASE, sku COLLATE NOCASE)
            WHERE withdrawn_at IS NOT NULL;
        """
    )
    if not has_products_fts(db):
        return  # no FTS5 trigrams in this SQLite: Library.products walks the name index
    db.executescript(
        f"""
        DROP TRIGGER IF EXISTS products_fts_insert;
        DROP TRIGGER IF EXISTS products_fts_delete;
        DROP TRIGGER IF EXISTS products_fts_update;
        DROP TABLE {PRODUCTS_FTS};
        CREATE VIEW products_folded AS
            SELECT rowid AS rowid, {FOLD}(sku) AS sku, {FOLD}(name) AS name FROM products;
        CREATE VIRTUAL TABLE {PRODUCTS_FTS} USING fts5(sku, name, content='products_folded',
            content_rowid='rowid', tokenize='trigram');
        CREATE TRIGGER products_fts_insert AFTER INSERT ON products BEGIN
            INSERT INTO {PRODUCTS_FTS}(rowid, sku, name)
            VALUES (new.rowid, {FOLD}(new.sku), {FOLD}(new.name));
        END;
        CREATE TRIGGER products_fts_delete AFTER DELETE ON products BEGIN
            INSERT INTO {PRODUCTS_FTS}({PRODUCTS_FTS}, rowid, sku, name)
            VALUES ('delete', old.rowid, {FOLD}(old.sku), {FOLD}(old.name));
        END;
        CREATE TRIGGER products_fts_update AFTER UPDATE OF sku, name ON products BEGIN
            INSERT INTO {PRODUCTS_FTS}({PRODUCTS_FTS}, rowid, sku, name)
            VALUES ('delete', old.rowid, {FOLD}(old.sku), {FOLD}(old.name));
            INSERT INTO {PRODUCTS_FTS}(rowid, sku, name)
            VALUES (new.rowid, {FOLD}(new.sku), {FOLD}(new.name));
        END;
        INSERT INTO {PRODUCTS_FTS}({PRODUCTS_FTS}) VALUES ('rebuild');
        """
    )


def has_products_fts(db: sqlite_utils.Database) -> bool:
    return PRODUCTS_FTS in db.table_names()


# Each text column products are sorted by, and the column holding its ``fold`` (schema v7).
SORT_KEYS = {
    "sku": "sku_key",
    "name": "name_key",
    "category": "category_key",
    "supplier": "supplier_key",
}


def _v7(db: sqlite_utils.Database) -> None:
    """Products sort as people read them: 'Éclair' among the E's, not after 'Zucchini'
    (COLLATE NOCASE folds ASCII only), as search forgives accents. Each sorted text column
    gets its ``fold`` stored beside it, filled here and kept current by triggers that call
    ``fold`` (as v6's do): pages walk indexes of these keys in order, and a short search
    compares them without calling ``fold`` on every row (0.56 s at 100k accented names).
    The raw SKU (unique) ends each index so that a page's order is total: paging never
    repeats nor skips a product whose keys tie ('Apple' and 'apple')."""
    for key in SORT_KEYS.values():
        db.execute(f"ALTER TABLE products ADD COLUMN {key} TEXT NOT NULL DEFAULT ''")

    def assign(row: str) -> str:
        return ", ".join(
            f"{key} = coalesce({FOLD}({row}{column}), '')" for column, key in SORT_KEYS.items()
        )

    db.executescript(
        f"""
        UPDATE products SET {assign("")};
        CREATE TRIGGER products_keys_insert AFTER INSERT ON products BEGIN
            UPDATE products SET {assign("new.")} WHERE rowid = new.rowid;
        END;
        CREATE TRIGGER products_keys_update AFTER UPDATE OF {", ".join(SORT_KEYS)} ON products
        BEGIN
            UPDATE products SET {assign("new.")} WHERE rowid = new.rowid;
        END;
        DROP INDEX products_current_name;
        DROP INDEX products_current_sku;
        DROP INDEX products_withdrawn;
        CREATE INDEX products_current_name ON products(name_key, sku_key, sku)
            WHERE withdrawn_at IS NULL;
        CREATE INDEX products_current_sku ON products(sku_key, sku) WHERE withdrawn_at IS NULL;
        CREATE INDEX products_withdrawn ON products(name_key, sku_key, sku)
            WHERE withdrawn_at IS NOT NULL;
        """
    )


def _v8(db: sqlite_utils.Database) -> None:
    """Each supplier picture remembers the sheet that last listed it, and each sheet the
    products it listed when last imported: a folder may hold several suppliers' sheets
    (Downloads), and importing one must not take out the pictures of another that lists
    none of its products. NULL: a folder imported without a sheet, or before v8 (such a
    picture leaves as it always did, and belongs to the next sheet that lists it)."""
    db.executescript(
        """
        ALTER TABLE catalog_images ADD COLUMN sheet TEXT;
        CREATE INDEX catalog_images_sheet ON catalog_images(sheet);
        CREATE TABLE sheet_products (
            sheet TEXT NOT NULL,
            sku TEXT NOT NULL,
            PRIMARY KEY (sheet, sku)
        ) WITHOUT ROWID;
        """
    )


def _v9(db: sqlite_utils.Database) -> None:
    """Indexes a library a year old needs (review 48: 20k products, 40k decisions). Without
    statistics SQLite preferred the index on ``origin`` (two values) to the photo's or the
    picture's own, so remembering one confirmation walked every remembered photo; partial
    indexes serve the same filters without competing. An undo is found by the decision it
    cancels, and a product's confirmed photos by their SKU, instead of reading every
    decision per key press."""
    db.executescript(
        """
        DROP INDEX IF EXISTS catalog_images_origin;
        CREATE INDEX IF NOT EXISTS catalog_images_remembered ON catalog_images(photo_id)
            WHERE origin = 'confirmed';
        CREATE INDEX IF NOT EXISTS catalog_images_supplied ON catalog_images(sku)
            WHERE origin = 'catalog';
        CREATE INDEX IF NOT EXISTS decisions_undone ON decisions(undoes) WHERE action = 'undo';
        CREATE INDEX IF NOT EXISTS decisions_sku ON decisions(sku, photo_id)
            WHERE action = 'confirm';
        """
    )


def _v10(db: sqlite_utils.Database) -> None:
    """What the scores' calibration (``engine.calibration``) learns from: a confirmation
    taken by "Accept confident" says so, since it was made on the score alone and must not
    teach the scores how sure to be; and suggestions keep the scale they were scored with,
    so their stored scores give back the mass of the products beyond the five stored (1.0:
    the model's own temperature, as every score before v10)."""
    db.executescript(
        """
        ALTER TABLE decisions ADD COLUMN by_score INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE suggestions ADD COLUMN scale REAL NOT NULL DEFAULT 1.0;
        """
    )


# Append new migrations here; never edit a released one. Index i upgrades to version i + 1.
MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = [
    _v1,
    _v2,
    _v3,
    _v4,
    _v5,
    _v6,
    _v7,
    _v8,
    _v9,
    _v10,
]
SCHEMA_VERSION = len(MIGRATIONS)
MAX_SQLITE_INT = 2**63 - 1  # the largest id SQLite stores
# Settings key: the schema version an upgrade started from (the oldest, if several), set in
# the migration's own transaction and cleared once the library has caught up with what the
# old release left undone (``Library``: instant memory, products it dropped, its index file).
UPGRADED_FROM = "upgraded_from"


def select_in(
    db: sqlite_utils.Database,
    sql: str,
    values: Sequence[object],
    chunk: int = 900,
    prefix: Sequence[object] = (),
) -> Iterator[tuple]:  # type: ignore[type-arg]
    """Rows of ``sql`` whose single ``{marks}`` placeholder takes ``values`` in chunks, staying
    under SQLite's bound-parameter limit however many ids a caller passes; ``prefix`` binds
    the placeholders before it."""
    values = list(values)
    for start in range(0, len(values), chunk):
        part = values[start : start + chunk]
        yield from db.execute(sql.format(marks=",".join("?" * len(part))), [*prefix, *part])


def store_photo_vector(
    db: sqlite_utils.Database, photo_id: int, version: str, vector: np.ndarray
) -> bytes:
    """Store a photo's vector under one model version (little-endian float32, the layout every
    reader expects) and return the stored bytes; one writer, so the layout cannot drift."""
    blob = vector.astype("<f4").tobytes()
    db["photo_embeddings"].upsert(
        {"photo_id": photo_id, "model_version": version, "vector": blob},
        pk=("photo_id", "model_version"),
    )
    return blob


class WrongThreadError(RuntimeError):
    """The library's database was used from a thread other than the one that opened it."""


class GuardedConnection(sqlite3.Connection):
    """A connection that refuses statements from any thread but its owner's.

    sqlite3's own ``check_same_thread`` would do the same, but also forbids closing from
    another thread; and a statement slipped in from a second thread between another's BEGIN and
    COMMIT would silently join that transaction. The desktop app keeps the library on one
    worker thread; this turns any slip into a loud error instead of a torn write.
    """

    owner: int = 0

    def _check(self) -> None:
        here = threading.get_ident()
        if self.owner and here != self.owner:
            raise WrongThreadError(
                f"the library database belongs to thread {self.owner} and was used from thread "
                f"{here}; ShopMatch runs every engine call on the one thread that opened it"
            )

    def execute(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._check()
        return super().execute(*args, **kwargs)

    def executemany(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._check()
        return super().executemany(*args, **kwargs)

    def executescript(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._check()
        return super().executescript(*args, **kwargs)

    def cursor(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self._check()
        return super().cursor(*args, **kwargs)

    def commit(self) -> None:
        self._check()
        super().commit()

    def rollback(self) -> None:
        self._check()
        super().rollback()


class SchemaTooNewError(RuntimeError):
    """The library was written by a newer ShopMatch; opening it could damage it."""


def open_db(path: Path) -> sqlite_utils.Database:
    """Open (creating if needed) the catalog database in WAL mode and migrate it.

    WAL lets readers (the UI, exports) proceed while the single writer works, and keeps the
    database intact if the process is killed mid-write.
    """
    # One thread owns the library (the desktop app runs every engine call on its one worker
    # thread); GuardedConnection refuses any other thread with a clear error, and lets the
    # connection be closed from anywhere (check_same_thread=False).
    conn = sqlite3.connect(
        str(path),
        timeout=30.0,
        isolation_level=None,
        check_same_thread=False,
        factory=GuardedConnection,
    )
    conn.owner = threading.get_ident()
    register_functions(conn)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA busy_timeout = 30000")
    db = sqlite_utils.Database(conn)
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":  # e.g. a network drive; still correct, just slower
        conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("PRAGMA synchronous = NORMAL")
    current = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if 0 < current < SCHEMA_VERSION:  # an upgrade is the riskiest write a library sees
        backups.take(conn, path.parent, reason="upgrade")
    migrate(db)
    return db


def migrate(db: sqlite_utils.Database) -> int:
    """Apply pending migrations, each in its own transaction with the version bump."""
    current = int(db.execute("PRAGMA user_version").fetchone()[0])
    if current > SCHEMA_VERSION:
        raise SchemaTooNewError(
            f"this library uses schema version {current}, but this ShopMatch only knows up to "
            f"{SCHEMA_VERSION}; please update ShopMatch"
        )
    for version in range(current, SCHEMA_VERSION):
        with transaction(db):
            MIGRATIONS[version](db)
            db.execute(f"PRAGMA user_version = {version + 1}")
            if current and version + 1 >= 2:  # an existing library (v2 adds the settings)
                db.execute(
                    "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO "
                    "UPDATE SET value = min(CAST(value AS INTEGER), CAST(excluded.value AS "
                    "INTEGER))",
                    [UPGRADED_FROM, str(current)],
                )
    return SCHEMA_VERSION


class transaction:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any exception.

    IMMEDIATE takes the write lock up front, so two writers fail fast instead of deadlocking
    half-way through a batch.
    """

    def __init__(self, db: sqlite_utils.Database) -> None:
        self.conn = db.conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        elif self.conn.in_transaction:
            # SQLite has already rolled back by itself after some errors (SQLITE_FULL, IOERR):
            # a second ROLLBACK would raise and hide the real error ("disk is full").
            self.conn.execute("ROLLBACK")
