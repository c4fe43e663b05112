"""Shared work between runs on one results store: expiring leases on (cell, sample) rows.

Two evaluations started on the same store (two terminals, the CLI beside the dashboard, a crashed run restarted
while its first attempt still lives) used to compute the same rows twice. Now a run first *claims* the rows it is
about to compute. A row claimed by another live run is not computed again: the run computes what it could claim,
then waits for the other run's rows to appear in the store. A claim is a lease with an expiry time that a
heartbeat thread renews while the run lives; a run killed with ``kill -9`` stops renewing, its leases expire after
``ttl`` seconds, and the waiting run claims and computes those rows itself. So work is shared and never lost.

The leases live in a ``leases`` table inside the store's own SQLite file (WAL mode: claims are short IMMEDIATE
transactions). They are transient: ``store repair`` does not copy them. Expiry uses the wall clock
(``time.time()``), so the processes sharing a store must share a clock (one machine, or hosts kept in sync by NTP
well within ``ttl``).
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from .errors import XaiError
from .sqlite_util import connect, immediate_write, unique_chunks

DEFAULT_TTL = 30.0  # seconds a lease outlives its last renewal; the heartbeat renews every ttl / 3
_SCHEMA = """CREATE TABLE IF NOT EXISTS leases (
    cell TEXT NOT NULL, sample_id TEXT NOT NULL, owner TEXT NOT NULL, expires REAL NOT NULL,
    PRIMARY KEY (cell, sample_id))"""
_CHUNK = 400  # sample ids per statement (2 variables each, under SQLite's 999)


def cell_name(**key) -> str:
    """A short stable name for a cell key (the store's keyword arguments that identify a cell).

    Parameters
    ----------
    **key
        ``dataset_fp``, ``model_hash``, ``method``, ``method_params``, ``output`` and for scores ``metric`` and
        ``metric_params`` (JSON-serialisable values).

    Returns
    -------
    str
        A 24-character hex digest of the sorted key.
    """
    text = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class Leases:
    """The leases of one process on one results store file; a daemon thread renews the ones held.

    Parameters
    ----------
    path : str or Path
        The results store's SQLite file (open it with ``ResultStore`` first, so the file has the store's schema).
    ttl : float
        Seconds a lease lives past its last renewal (a killed holder's rows are taken over after this long).
    owner : str, optional
        The holder's name; default host:pid:random, unique per object.

    Raises
    ------
    XaiError
        When ``ttl`` is not a positive number of seconds or the file cannot be opened.
    """

    def __init__(self, path: str | Path, ttl: float = DEFAULT_TTL, owner: str | None = None):
        if not (isinstance(ttl, (int, float)) and ttl > 0):
            raise XaiError(f"lease ttl must be a positive number of seconds, got {ttl!r}")
        self.path, self.ttl = Path(path), float(ttl)
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._lock = threading.RLock()
        self._held: dict[str, set[str]] = {}
        try:
            self._con = connect(self.path)
            self._con.execute(_SCHEMA)
        except sqlite3.Error as e:
            raise XaiError(f"cannot keep leases in results store '{self.path}': {e}") from e
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, name="xai_core-leases", daemon=True)
        self._beat.start()

    # ---- transactions ------------------------------------------------------------------------
    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        return immediate_write(self._con, self._lock)

    @staticmethod
    def _chunks(ids: Sequence[str]) -> Iterator[list[str]]:
        return unique_chunks(ids, _CHUNK)

    def claim(self, cell: str, sample_ids: Sequence[str]) -> list[str]:
        """Claim the rows not held by another live run; returns those now held by this one, in input order.

        Parameters
        ----------
        cell : str
            ``cell_name(...)`` of the cell.
        sample_ids : sequence of str
            The rows wanted.

        Returns
        -------
        list of str
            The subset of ``sample_ids`` this object now holds (expired leases of others are taken over).
        """
        now = time.time()
        got: set[str] = set()
        with self._write() as con:
            for chunk in self._chunks(sample_ids):
                q = ",".join("?" * len(chunk))
                con.execute(f"DELETE FROM leases WHERE cell = ? AND expires < ? AND sample_id IN ({q})",
                            [cell, now, *chunk])
                taken = {r[0] for r in con.execute(
                    f"SELECT sample_id FROM leases WHERE cell = ? AND owner != ? AND sample_id IN ({q})",
                    [cell, self.owner, *chunk])}
                mine = [s for s in chunk if s not in taken]
                con.executemany("INSERT INTO leases VALUES (?,?,?,?) ON CONFLICT (cell, sample_id) DO UPDATE SET"
                                " expires = excluded.expires", [(cell, s, self.owner, now + self.ttl) for s in mine])
                got.update(mine)
            self._held.setdefault(cell, set()).update(got)
        return [s for s in dict.fromkeys(sample_ids) if s in got]

    def release(self, cell: str, sample_ids: Sequence[str]) -> None:
        """Give up this object's leases on these rows (after storing them, or on failure).

        Parameters
        ----------
        cell : str
            ``cell_name(...)`` of the cell.
        sample_ids : sequence of str
            The rows to release; rows not held by this object are left alone.
        """
        with self._write() as con:
            for chunk in self._chunks(sample_ids):
                con.execute(f"DELETE FROM leases WHERE cell = ? AND owner = ? AND sample_id IN "
                            f"({','.join('?' * len(chunk))})", [cell, self.owner, *chunk])
            held = self._held.get(cell, set())
            held.difference_update(sample_ids)
            if not held:
                self._held.pop(cell, None)

    def held_elsewhere(self, cell: str, sample_ids: Sequence[str]) -> dict[str, float]:
        """Rows among ``sample_ids`` that another run holds by a live lease.

        Parameters
        ----------
        cell : str
            ``cell_name(...)`` of the cell.
        sample_ids : sequence of str
            The rows to look at.

        Returns
        -------
        dict
            {sample id: seconds until its lease expires unless renewed}.
        """
        now, out = time.time(), {}
        with self._lock:
            for chunk in self._chunks(sample_ids):
                out.update((s, e - now) for s, e in self._con.execute(
                    f"SELECT sample_id, expires FROM leases WHERE cell = ? AND owner != ? AND expires >= ? AND "
                    f"sample_id IN ({','.join('?' * len(chunk))})", [cell, self.owner, now, *chunk]))
        return out

    def renew(self) -> None:
        """Push the expiry of every lease this object holds to now + ttl (the heartbeat calls it)."""
        with self._lock:
            if not self._held:
                return
            expires = time.time() + self.ttl
            with self._write() as con:
                for cell, ids in self._held.items():
                    for chunk in self._chunks(sorted(ids)):
                        con.execute(f"UPDATE leases SET expires = ? WHERE cell = ? AND owner = ? AND sample_id IN "
                                    f"({','.join('?' * len(chunk))})", [expires, cell, self.owner, *chunk])

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                self.renew()
            except sqlite3.Error:  # a busy or closed file: the next beat tries again; expiry is the fallback
                pass

    def close(self) -> None:
        """Stop the heartbeat, release everything still held, and close the connection."""
        self._stop.set()
        self._beat.join(timeout=5)
        with self._lock:
            try:
                with self._write() as con:
                    con.execute("DELETE FROM leases WHERE owner = ?", (self.owner,))
            except sqlite3.Error:
                pass  # the leases expire on their own
            self._held.clear()
            self._con.close()

    def __enter__(self) -> Leases:
        """The object itself."""
        return self

    def __exit__(self, *exc) -> None:
        """``close()``."""
        self.close()


def shared(leases: Leases | None, cell: str, sample_ids: Sequence[str], missing: Callable[[list[str]], list[str]],
           chunk: int | None = None, poll: float = 0.5, on_wait: Callable[[int], None] | None = None
           ) -> Iterator[list[str]]:
    """Yield the rows this run should compute now, until every row of ``sample_ids`` is stored.

    The caller computes and stores each yielded list before asking for the next; its leases on those rows are
    released after it asks. Rows held by another live run are waited for (polling the store), and taken over
    when their lease expires.

    Parameters
    ----------
    leases : Leases or None
        None: no sharing, the missing rows are yielded once.
    cell : str
        ``cell_name(...)`` of the cell.
    sample_ids : sequence of str
        The rows wanted.
    missing : callable
        ``missing(ids) -> ids not yet stored`` (reads the store).
    chunk : int, optional
        Claim at most this many rows at a time, so that runs sharing a cell split it between them (default: all
        that are free).
    poll : float
        Seconds between looks at the store while waiting.
    on_wait : callable, optional
        Called with the number of rows being waited for, once per poll.

    Yields
    ------
    list of str
        Rows claimed by this run and not yet stored.
    """
    todo = missing(list(dict.fromkeys(sample_ids)))
    if leases is None:
        if todo:
            yield todo
        return
    tried: set[str] = set()  # rows this run computed once: not again here, even when stored as failed (retried later)
    while todo:
        busy = leases.held_elsewhere(cell, todo)
        free = [s for s in todo if s not in busy]
        mine = leases.claim(cell, free[:chunk] if chunk else free) if free else []
        if mine:  # look again under the lease: another run may have stored rows and released them meanwhile
            fresh = set(missing(mine))
            leases.release(cell, [s for s in mine if s not in fresh])
            mine = [s for s in mine if s in fresh]
        if mine:
            try:
                yield mine
            finally:
                leases.release(cell, mine)
            tried.update(mine)
        todo = [s for s in missing(todo) if s not in tried]
        if todo and not mine:
            if on_wait is not None:
                on_wait(len(todo))
            time.sleep(poll)


@functools.cache
def for_store(path: str | Path) -> Leases:
    """The one ``Leases`` of this process on a store file (one heartbeat thread per file, not per run).

    Parameters
    ----------
    path : str or Path
        The results store's SQLite file.

    Returns
    -------
    Leases
    """
    return Leases(Path(path).resolve())
