"""Integrity of the results store (``xai_core.store``): row checksums, read-back checks and a damaged file.

Each attribution row carries a checksum of its dtype, shape and bytes (schema version 2; a version-1 store is
migrated in place by adding the column, and its old rows, without a checksum, are still accepted if their size fits
their dtype and shape). A row that fails its checksum is never used: it is reported on stderr and treated as
missing, so it is computed again and replaced. Stored score curves carry a checksum of their dtype and bytes too
(``scores.curve_checksum``, added in place to an older store when it is opened; old curves without one are still
accepted if their size fits their dtype); a curve that fails it is reported on stderr and treated as missing.

A damaged database file (``database disk image is malformed``, ``file is not a database``) is told apart from a
locked, full or misused one (``is_corruption``) and reported as one line naming the file and
``python -m xai_core store check|repair`` (``damaged_message``; ``xai_core.cli_store`` uses the same checks).
"""
from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np


def blob_checksum(dtype: str, shape: str, data: bytes) -> str:
    """Checksum of one stored attribution row: its dtype, shape (JSON text) and bytes."""
    h = hashlib.sha256(f"{dtype}|{shape}|".encode())
    h.update(data)
    return h.hexdigest()[:16]


def blob_problem(dtype, shape, data, checksum) -> str | None:
    """Why a stored attribution row cannot be used (None if it can): a checksum mismatch, or for an old row
    without a checksum, bytes that do not fit its dtype and shape."""
    if checksum is not None:
        return None if blob_checksum(dtype, shape, data) == checksum else "checksum mismatch"
    try:
        n = math.prod(json.loads(shape)) * np.dtype(dtype).itemsize
    except (TypeError, ValueError):
        return "unreadable dtype or shape"
    return None if isinstance(data, bytes) and len(data) == n else "size does not match its shape"


def curve_checksum(dtype: str, data: bytes) -> str:
    """Checksum of one stored score curve: its dtype and bytes."""
    h = hashlib.sha256(f"{dtype}|".encode())
    h.update(data)
    return h.hexdigest()[:16]


def curve_problem(data, dtype, checksum) -> str | None:
    """Why a stored score curve cannot be used (None if it can, or if there is none): a checksum mismatch, or
    for an old curve without a checksum, bytes that do not fit its dtype."""
    if data is None:
        return None
    if checksum is not None:
        return None if isinstance(data, bytes) and curve_checksum(dtype, data) == checksum else "checksum mismatch"
    try:
        size = np.dtype(dtype).itemsize
    except (TypeError, ValueError):
        return "unreadable dtype"
    return None if isinstance(data, bytes) and len(data) % size == 0 else "size does not match its dtype"


def drop_failing(found: dict, problem: Callable[..., str | None], path: Path, what: str, then: str = "") -> None:
    """Remove from ``found`` (sample id -> stored row) every row ``problem(*row)`` flags, with one stderr line:
    a row that fails its checksum is never used, it counts as missing.

    Parameters
    ----------
    found : dict
        Sample id -> the stored row's columns, in the order ``problem`` takes them; changed in place.
    problem : callable
        ``blob_problem`` or ``curve_problem``.
    path : Path
        The store's file, named in the line.
    what : str
        What the rows are, e.g. ``attribution(s) of saliency``.
    then : str
        Appended to the line (what happens next).
    """
    bad = [s for s, row in found.items() if problem(*row) is not None]
    if bad:
        print(f"warning: results store {path}: {len(bad)} stored {what} failed their checksum "
              f"({', '.join(bad[:3])}{', ...' if len(bad) > 3 else ''}); not used: treated as missing{then}",
              file=sys.stderr)
        for s in bad:
            del found[s]


def is_corruption(e: BaseException) -> bool:
    """A SQLite error that means the file is damaged (not locked, full or misused)."""
    if not isinstance(e, sqlite3.DatabaseError):
        return False
    msg = str(e).lower()
    return (type(e) is sqlite3.DatabaseError or "malformed" in msg or "not a database" in msg
            or getattr(e, "sqlite_errorcode", None) in (11, 26))  # SQLITE_CORRUPT, SQLITE_NOTADB


def damaged_message(path: Path, e: BaseException) -> str:
    """The one-line message for a damaged store at ``path``: the error and the ``store check`` / ``repair`` fix."""
    return (f"results store '{path}' is damaged ({e}); nothing in it was changed: check it with "
            f"`python -m xai_core store check --store {path}` and copy its readable rows into a new file with "
            f"`python -m xai_core store repair --store {path}`")


def has_sqlite_header(path: Path) -> bool:
    """Whether the file at ``path`` starts with SQLite's 16-byte header (False when it cannot be read)."""
    try:
        with open(path, "rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False
