"""What produced a result: package versions, platform, time."""
from __future__ import annotations

import functools
import platform
import sys
from datetime import UTC, datetime
from importlib import metadata

PACKAGES = ("torch", "captum", "zennit", "numpy", "scipy", "scikit-learn", "scikit-image", "safetensors")


@functools.cache  # versions do not change while a process runs; reading them costs ~0.1 s
def _versions() -> tuple[tuple[str, str], ...]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "not installed"
    return tuple(out.items())


def package_versions() -> dict[str, str]:
    """Python, platform and the versions of the packages that shape results (read once per process)."""
    return dict(_versions())


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
