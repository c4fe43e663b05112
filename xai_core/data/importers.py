"""Registry of readers for a user's files: one entry per format, each returning a ``Dataset``.

An ``Importer`` says which kind of data it reads, how to recognise its files (``detect``), which options
it takes (name -> one-line help, shown by the CLI and the dashboard) and ``read(path, name, **options)``.
The format of a path is inferred when exactly one importer recognises it; ``kind``/``fmt`` narrow it.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import XaiError
from ..registry import Registry
from .dataset import Dataset
from .user_common import UserDataError


@dataclass(frozen=True)
class Importer:
    name: str  # the format, e.g. "h5ad", "table", "image-folder", "fasta"
    kind: str  # "expression" | "image" | "sequence"
    description: str
    detect: Callable[[Path], bool]
    read: Callable[..., Dataset]  # read(path, name=..., **options) -> Dataset
    options: dict[str, str] = field(default_factory=dict)  # option -> help
    side_files: tuple[str, ...] = ()  # options that name other files (part of the content hash)
    # files the source refers to (e.g. the images a CSV lists), also part of the content hash
    referenced: Callable[[Path, dict[str, Any]], list[Path]] | None = None


IMPORTERS: Registry[Importer] = Registry("data format")


def register_importer(imp: Importer) -> Importer:
    return IMPORTERS.add(imp.name, imp)


def detect_format(path: str | Path, kind: str | None = None, fmt: str | None = None) -> Importer:
    """The importer for ``path``: ``fmt`` if given, else the one (of ``kind``) that recognises it."""
    path = Path(path)
    if not path.exists():
        raise UserDataError(path, "no such file or folder", "check the path (relative paths start at the "
                            "folder the command runs in)")
    if fmt is not None:
        imp = IMPORTERS.get(fmt)
        if kind is not None and imp.kind != kind:
            raise XaiError(f"format '{fmt}' reads {imp.kind} data, not {kind}")
        return imp
    cands = [i for i in IMPORTERS.values() if (kind is None or i.kind == kind) and _safe_detect(i, path)]
    if len(cands) == 1:
        return cands[0]
    names = ", ".join(f"{i.name} ({i.kind})" for i in (cands or IMPORTERS.values()))
    if not cands:
        if path.is_dir() and not any(path.iterdir()):
            raise UserDataError(path, "the folder is empty", "point at a folder with one subfolder of images per class")
        raise UserDataError(path, "not a recognised data file or folder" + (f" of kind {kind}" if kind else ""),
                            f"give --format, one of: {names}")
    raise UserDataError(path, f"could be read as several formats ({names})", "say which with --kind or --format")


def _safe_detect(imp: Importer, path: Path) -> bool:
    try:
        return bool(imp.detect(path))
    except OSError:
        return False


def read_user_data(path: str | Path, name: str, kind: str | None = None, fmt: str | None = None,
                   **options: Any) -> Dataset:
    """Read ``path`` with its importer; unknown options are refused with the valid ones listed."""
    imp = detect_format(path, kind, fmt)
    unknown = set(options) - set(imp.options)
    if unknown:
        raise XaiError(f"format '{imp.name}' has no option(s) {sorted(unknown)}; valid: {sorted(imp.options)}")
    ds = imp.read(Path(path), name=name, **options)
    ds.params = {**ds.params, "format": imp.name, "source": str(path)}
    return ds


def list_importers() -> list[dict[str, Any]]:
    return [{"format": i.name, "kind": i.kind, "description": i.description, "options": dict(i.options)}
            for i in IMPORTERS.values()]
