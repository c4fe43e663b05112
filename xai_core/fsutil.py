"""Small file-system steps shared by the registries of user data and user models."""
from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path


def swap_in(tmp: Path, final: Path) -> None:
    """Make the fully written folder ``tmp`` the folder ``final``: a reader sees the old entry or the new one,
    never half of one (the old folder is renamed aside first, then removed)."""
    if final.exists():
        old = final.parent / f".{final.name}.old-{time.time_ns()}"
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(final)


_HASHED: dict[tuple, str] = {}  # (path, size, times, inode) -> sha256: each file version hashed once per process


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, streamed in 1 MiB blocks; cached per file version (size, times, inode)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    if key not in _HASHED:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _HASHED[key] = h.hexdigest()
    return _HASHED[key]
