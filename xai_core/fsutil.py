"""Small file-system steps shared by the registries of user data and user models."""
from __future__ import annotations

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
