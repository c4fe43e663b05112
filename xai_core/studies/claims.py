"""Claims on a study's cached units of work, so that stages run side by side share them instead of computing
the same one twice.

A long study run is split into stages (docs/studies/RUNS.md) that may run at the same time, in several processes,
on one cache. Before computing a unit (one model run of ig-expression), a process creates ``KEY.claim`` next to
where the unit's result will be written, atomically (``O_EXCL``), holding its host and pid. Another process that
finds the claim leaves the unit to its holder and comes back to it at the end; if the holder has stopped (its pid
is gone on this host, or a claim from another host is older than ``STALE_S``), the claim is taken over.
"""
from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

STALE_S = 6 * 3600  # a claim from another host, unrefreshed this long, is taken to be abandoned


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


class Claims:
    """The claim files of one folder of cached results.

    Parameters
    ----------
    folder : Path
        Where the results (and their claims) are written.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.claim"

    def held_elsewhere(self, key: str) -> bool:
        """True when another living process holds the claim on ``key``.

        Parameters
        ----------
        key : str
            The unit's cache key.

        Returns
        -------
        bool
        """
        p = self._path(key)
        try:
            holder = json.loads(p.read_text())
            age = time.time() - p.stat().st_mtime
        except (OSError, ValueError):  # no claim, or one being written or removed right now
            return p.exists()
        if holder.get("host") == socket.gethostname():
            return holder.get("pid") != os.getpid() and _alive(int(holder.get("pid", -1)))
        return age < STALE_S

    def take(self, key: str) -> bool:
        """Claim ``key`` for this process; False when another living process holds it.

        Parameters
        ----------
        key : str
            The unit's cache key.

        Returns
        -------
        bool
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        p = self._path(key)
        for _ in range(2):
            try:
                fd = os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                if self.held_elsewhere(key):
                    return False
                p.unlink(missing_ok=True)  # its holder stopped: take it over
                continue
            with os.fdopen(fd, "w") as f:
                json.dump({"host": socket.gethostname(), "pid": os.getpid(), "started": time.time()}, f)
            return True
        return False

    def release(self, key: str) -> None:
        """Remove this process's claim on ``key`` (after its result is written, or on an error).

        Parameters
        ----------
        key : str
            The unit's cache key.
        """
        self._path(key).unlink(missing_ok=True)
