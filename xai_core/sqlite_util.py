"""The SQLite steps that the results store (``xai_core.store``) and its leases (``xai_core.leases``) share.

Both keep one connection per object in autocommit mode (``isolation_level=None``), shared between threads under
the object's lock, and write in short ``BEGIN IMMEDIATE`` transactions: the write lock is taken up front, and a
writer that finds the file locked by another process waits up to ``BUSY_TIMEOUT_S`` seconds (SQLite's busy
timeout) before the statement fails with "database is locked". Nothing here retries on its own; the busy timeout
is the only wait.
"""
from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

BUSY_TIMEOUT_S = 30  # seconds a statement waits for another process's lock before "database is locked"


def connect(path: str | Path) -> sqlite3.Connection:
    """Open ``path`` the way the store and the leases use it: autocommit, shareable between threads, busy timeout.

    Parameters
    ----------
    path : str or Path
        The SQLite file (created if missing).

    Returns
    -------
    sqlite3.Connection
        With ``PRAGMA busy_timeout`` set to ``BUSY_TIMEOUT_S`` seconds (closed again if that fails).

    Raises
    ------
    sqlite3.Error
        When the file cannot be opened.
    """
    con = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
    try:
        con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
    except BaseException:
        con.close()
        raise
    return con


@contextmanager
def immediate_write(con: sqlite3.Connection, lock: AbstractContextManager) -> Iterator[sqlite3.Connection]:
    """One IMMEDIATE transaction on ``con`` under ``lock``: committed on a normal exit, rolled back on any error.

    The write lock is taken up front (waiting up to the connection's busy timeout); the error that ended the
    block is raised again even when the rollback itself fails.

    Parameters
    ----------
    con : sqlite3.Connection
        An autocommit connection (``isolation_level=None``), e.g. from ``connect``.
    lock : context manager
        The owner's thread lock (an ``RLock``, so that a transaction may be opened while it is held).

    Yields
    ------
    sqlite3.Connection
        ``con``, inside the transaction.
    """
    with lock:
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            try:
                con.execute("ROLLBACK")
            except sqlite3.Error:  # a damaged file may refuse even that; the original error matters
                pass
            raise
        con.execute("COMMIT")


def unique_chunks(ids: Iterable[str], size: int) -> Iterator[list[str]]:
    """The distinct ids, in first-seen order, in lists of at most ``size`` (one ``IN (...)`` query each).

    Parameters
    ----------
    ids : iterable of str
        Sample ids, repeats allowed.
    size : int
        Ids per list, chosen to keep a statement under SQLite's 999-variable limit.

    Yields
    ------
    list of str
    """
    uniq = list(dict.fromkeys(ids))
    for i in range(0, len(uniq), size):
        yield uniq[i:i + size]
