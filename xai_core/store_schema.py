"""The results store's file layout (``xai_core.store``): its tables, its schema version, and the in-place migrations.

A new file gets the tables below in WAL mode (one writer, many readers) with 16 KiB pages. An existing file must be
an xai_core results store (a ``meta`` table) of ``SCHEMA_VERSION``; a version-1 store is migrated in place by adding
``attributions.checksum``, and a store written before score curves had a checksum gets ``scores.curve_checksum``
(old rows keep NULL there and are checked by size, ``xai_core.store_integrity``). Several processes may open the
same new or old file at once: creation uses IF NOT EXISTS / OR IGNORE, and each migration looks again under the
write lock.
"""
from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path

from .errors import XaiError
from .sqlite_util import immediate_write

SCHEMA_VERSION = 2  # 2: attributions.checksum (scores.curve_checksum is added by column, see _migrate_curves)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cells (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,                 -- 'attributions' or 'scores'
    dataset_fp TEXT NOT NULL, model_hash TEXT NOT NULL,
    method TEXT NOT NULL, method_key TEXT NOT NULL, output TEXT NOT NULL,
    metric TEXT NOT NULL DEFAULT '', metric_key TEXT NOT NULL DEFAULT '',
    dataset TEXT NOT NULL, model TEXT NOT NULL,
    method_params TEXT NOT NULL, metric_params TEXT,
    family TEXT, direction TEXT,
    UNIQUE (kind, dataset_fp, model_hash, method, method_key, output, metric, metric_key));
CREATE TABLE IF NOT EXISTS attributions (
    cell INTEGER NOT NULL REFERENCES cells(id), sample_id TEXT NOT NULL,
    dtype TEXT NOT NULL, shape TEXT NOT NULL, data BLOB NOT NULL,
    target INTEGER, seconds REAL, checksum TEXT,
    PRIMARY KEY (cell, sample_id));
CREATE TABLE IF NOT EXISTS scores (
    cell INTEGER NOT NULL REFERENCES cells(id), sample_id TEXT NOT NULL,
    score REAL, se REAL, reason TEXT,
    curve BLOB, curve_dtype TEXT, seconds REAL, curve_checksum TEXT,
    PRIMARY KEY (cell, sample_id));
CREATE TABLE IF NOT EXISTS provenance (
    cell INTEGER NOT NULL REFERENCES cells(id), record_key TEXT NOT NULL,
    created TEXT NOT NULL, updated TEXT NOT NULL,
    seconds REAL NOT NULL, rows INTEGER NOT NULL, record TEXT NOT NULL,
    PRIMARY KEY (cell, record_key));
"""


def prepare(con: sqlite3.Connection, path: Path, lock: AbstractContextManager) -> None:
    """Make the file behind ``con`` a usable results store: create it when new, else check and migrate it.

    Parameters
    ----------
    con : sqlite3.Connection
        An autocommit connection to the file (``sqlite_util.connect``).
    path : Path
        The file, named in the errors.
    lock : context manager
        The store's thread lock, held by each write transaction.

    Raises
    ------
    XaiError
        When the file is a SQLite database but not a results store, or has another schema version.
    """
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if tables and "meta" not in tables:
        raise XaiError(f"'{path}' is a SQLite database but not an xai_core results store; "
                       "move it away or pass another --store path")
    if not tables:
        con.execute("PRAGMA page_size = 16384")  # fewer overflow pages per attribution blob
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = NORMAL")
    if not tables:  # a new file (several processes may get here at once: IF NOT EXISTS, OR IGNORE)
        with immediate_write(con, lock):
            for stmt in _SCHEMA.split(";"):
                if stmt.strip():
                    con.execute(stmt)
            con.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            con.execute("INSERT OR IGNORE INTO meta VALUES ('created', ?)",
                        (datetime.now(UTC).isoformat(timespec="seconds"),))
    _check_version(con, path, lock)


def _check_version(con: sqlite3.Connection, path: Path, lock: AbstractContextManager) -> None:
    row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    found = None if row is None else row[0]
    if found == "1":  # add attributions.checksum; the old rows keep NULL there and are still accepted
        with immediate_write(con, lock):
            again = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if again is not None and again[0] == "1":  # another process may have migrated it meanwhile
                cols = {r[1] for r in con.execute("PRAGMA table_info(attributions)")}
                if "checksum" not in cols:
                    con.execute("ALTER TABLE attributions ADD COLUMN checksum TEXT")
                con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
        found = str(SCHEMA_VERSION)
    if found != str(SCHEMA_VERSION):
        raise XaiError(f"results store '{path}' has schema version {found}, this version of "
                       f"xai_core uses {SCHEMA_VERSION}; move the file away or pass another --store path")
    _migrate_curves(con, lock)


def _migrate_curves(con: sqlite3.Connection, lock: AbstractContextManager) -> None:
    """Add scores.curve_checksum to a store written before curves had one; its old curves keep NULL there
    and are still accepted (checked by size)."""
    if "curve_checksum" in {r[1] for r in con.execute("PRAGMA table_info(scores)")}:
        return
    with immediate_write(con, lock):  # another process may have added it meanwhile: look again under the lock
        if "curve_checksum" not in {r[1] for r in con.execute("PRAGMA table_info(scores)")}:
            con.execute("ALTER TABLE scores ADD COLUMN curve_checksum TEXT")
