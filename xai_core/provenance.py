"""What produced a result: package versions, platform, time."""
from __future__ import annotations

import platform
import sys
from datetime import UTC, datetime
from importlib import metadata

PACKAGES = ("torch", "captum", "zennit", "numpy", "scipy", "scikit-learn", "scikit-image", "safetensors")


def package_versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform()}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            out[p] = "not installed"
    return out


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
