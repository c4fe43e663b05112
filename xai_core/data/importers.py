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
    """One reader of a user's files: how to recognise a path and how to read it.

    Attributes
    ----------
    name : str
        The format, e.g. ``"h5ad"``, ``"table"``, ``"image-folder"``, ``"fasta"``.
    kind : str
        ``"expression"``, ``"image"`` or ``"sequence"``.
    description : str
        One line for listings.
    detect : callable
        ``detect(path) -> bool``: whether this importer recognises the path (an ``OSError`` counts as no).
    read : callable
        ``read(path, name=..., **options) -> Dataset``.
    options : dict of str to str
        Option -> one-line help (shown by the CLI and the dashboard); other options are refused.
    side_files : tuple of str
        Options that name other files (part of the content hash).
    referenced : callable, optional
        ``referenced(path, options) -> list[Path]``: files the source refers to (e.g. the images a CSV lists),
        also part of the content hash.
    """
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
    """Add ``imp`` to ``IMPORTERS`` under ``imp.name``.

    Parameters
    ----------
    imp : Importer
        The importer.

    Returns
    -------
    Importer
        ``imp``.

    Raises
    ------
    ValueError
        When a format of that name is registered already.
    """
    return IMPORTERS.add(imp.name, imp)


def detect_format(path: str | Path, kind: str | None = None, fmt: str | None = None) -> Importer:
    """The importer for ``path``: ``fmt`` if given, else the one (of ``kind``) that recognises it.

    Parameters
    ----------
    path : str or Path
        A file or folder.
    kind : str, optional
        ``"expression"``, ``"image"`` or ``"sequence"``: only importers of that kind.
    fmt : str, optional
        The format's name (``IMPORTERS``): no detection.

    Returns
    -------
    Importer

    Raises
    ------
    UserDataError
        When the path does not exist, is an empty folder, no importer recognises it, or several do.
    XaiError
        When ``fmt`` reads another kind of data than ``kind``.
    UnknownChoice
        For an unknown ``fmt``.
    """
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
    """Read ``path`` with its importer, without registering it.

    Unknown options are refused with the valid ones listed.

    Parameters
    ----------
    path : str or Path
        A file or folder.
    name : str
        The dataset's name.
    kind, fmt : str, optional
        As for ``detect_format``.
    **options
        The importer's options (``list_importers``).

    Returns
    -------
    Dataset
        With ``params["format"]`` and ``params["source"]`` set.

    Raises
    ------
    XaiError
        For an option the importer does not take.
    UserDataError
        From ``detect_format`` or the importer: the file, the problem and the fix.
    """
    imp = detect_format(path, kind, fmt)
    unknown = set(options) - set(imp.options)
    if unknown:
        raise XaiError(f"format '{imp.name}' has no option(s) {sorted(unknown)}; valid: {sorted(imp.options)}")
    ds = imp.read(Path(path), name=name, **options)
    ds.params = {**ds.params, "format": imp.name, "source": str(path)}
    return ds


def list_importers() -> list[dict[str, Any]]:
    """Format, kind, description and options of each importer.

    Returns
    -------
    list of dict
        Keys ``format``, ``kind``, ``description``, ``options`` (option -> help).
    """
    return [{"format": i.name, "kind": i.kind, "description": i.description, "options": dict(i.options)}
            for i in IMPORTERS.values()]
