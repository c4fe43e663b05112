"""The registry of a user's own datasets: imported once, kept in the cache folder, used like bundled data.

Each entry is a folder ``$XAI_CORE_CACHE/user_data/NAME/`` holding ``entry.json`` (kind, format, source
path, import options, the content hash of the source files and options, when it was imported) and the
dataset itself as ``.npz`` + ``.json`` (sparse expression as memory-mapped ``.npy`` files); nothing is
pickled. ``refresh()`` makes every entry on disk a ``DATASETS`` entry, so the CLI, the runner, the store
and the dashboard accept the name exactly as they accept ``grain``; it runs whenever datasets are listed
or a name is not found, so an import made by another process (the CLI while the dashboard runs) shows up.

Identity: the store keys results on ``Dataset.fingerprint()``, a hash of the imported arrays, so a file
changed and re-imported under the same name gives new keys and is never served stale.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from ..errors import XaiError
from ..fsutil import swap_in
from .dataset import Dataset, DatasetDamaged
from .importers import detect_format, read_user_data
from .registry import DATASETS, DatasetSpec, cache_dir
from .user_common import check_name, content_hash

USER_SIZE = "user"  # DatasetSpec.size of user entries
DEFAULT_ARCH = {"expression": "mlp", "image": "simplenet", "sequence": "dna_shallow"}


def user_dir() -> Path:
    """Where the user's imports are kept: ``cache_dir() / "user_data"``, one folder per dataset."""
    return cache_dir() / "user_data"


def _folder(name: str) -> Path:
    return user_dir() / name


def _describe(ds: Dataset, entry: dict[str, Any]) -> str:
    shape = " x ".join(str(s) for s in ds.input_shape)
    src = Path(entry.get("source") or "").name or "Python"
    return (f"your data ({entry.get('format', 'python')} from {src}): {len(ds)} samples of {shape}, "
            f"{ds.n_classes} classes")


def register(ds: Dataset, name: str | None = None, *, source: str | Path | None = None,
             options: dict[str, Any] | None = None, fmt: str = "python", digest: str | None = None,
             replace: bool = True) -> dict[str, Any]:
    """Add ``ds`` to the user registry under ``name`` (default ``ds.name``); returns its entry.

    A bundled dataset's name is refused; an existing user entry of that name is replaced (``replace``). Every
    command and page then knows the dataset by name.

    Parameters
    ----------
    ds : Dataset
        The dataset; its ``name`` (and ``sample_ids`` when missing) are set here.
    name : str, optional
        1-64 letters, digits, ``-``, ``_`` or ``.``; default ``ds.name``.
    source : str or Path, optional
        The file it was read from, recorded in the entry.
    options : dict, optional
        The import options, recorded in the entry.
    fmt : str
        The format it was read with (``"python"`` for a dataset made in Python).
    digest : str, optional
        The content hash of the source and options (``import_data`` compares it to skip an unchanged source).
    replace : bool
        Replace an existing user entry of that name; False refuses it.

    Returns
    -------
    dict
        The entry: name, kind, format, source, options, content hash, fingerprint, import time, size, shape,
        class names and description.

    Raises
    ------
    XaiError
        When ``name`` is not usable, is a bundled dataset's, or exists and ``replace`` is False.
    """
    name = check_name(name or ds.name)
    spec = DATASETS.peek(name)
    if spec is not None and spec.size != USER_SIZE:
        raise XaiError(f"'{name}' is a bundled dataset; choose another --name")
    if spec is not None and not replace:
        raise XaiError(f"a dataset named '{name}' exists; choose another name or remove it "
                       f"(python -m xai_core datasets --remove {name})")
    ds.name = name
    if ds.sample_ids is None or not len(ds.sample_ids):
        ds.sample_ids = [f"{name}:{i}" for i in range(len(ds))]
    entry = {"name": name, "kind": ds.modality, "format": fmt, "source": str(source) if source else None,
             "options": options or {}, "content_hash": digest, "fingerprint": ds.fingerprint(),
             "imported": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "n_samples": len(ds),
             "input_shape": list(ds.input_shape), "class_names": ds.class_names}
    entry["description"] = _describe(ds, entry)
    root = user_dir()
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{name}.tmp-{time.time_ns()}"
    ds.save(tmp / "dataset")
    (tmp / "entry.json").write_text(json.dumps(entry, indent=2, default=str))
    swap_in(tmp, _folder(name))
    _register_spec(entry, replace=True)
    return entry


def import_data(path: str | Path, name: str, kind: str | None = None, fmt: str | None = None,
                **options: Any) -> tuple[Dataset, dict[str, Any], bool]:
    """Read ``path`` and register it as ``name``; an unchanged source with the same options is not re-read.

    Parameters
    ----------
    path : str or Path
        A file or folder.
    name : str
        The dataset's name (as for ``register``).
    kind, fmt : str, optional
        As for ``detect_format``.
    **options
        The importer's options (``list_importers``).

    Returns
    -------
    tuple
        ``(dataset, entry, reused)``.

    Raises
    ------
    XaiError
        When ``name`` is not usable, or as ``read_user_data`` and ``register`` raise.
    UserDataError
        From the importer: the file, the problem and the fix.
    """
    check_name(name)
    imp = detect_format(path, kind, fmt)
    side = [options[k] for k in imp.side_files if options.get(k)]
    if imp.referenced is not None:  # an edited image listed in a CSV must make a new dataset too
        side += imp.referenced(Path(path), options)
    digest = content_hash([path, *side], {"format": imp.name, **options})
    old = entry_of(name)
    if old is not None and old.get("content_hash") == digest:
        try:
            return load_user(name), old, True
        except Exception:  # noqa: BLE001 - a damaged entry, however it fails, is rebuilt from the source below
            pass
    ds = read_user_data(path, name, kind=imp.kind, fmt=imp.name, **options)
    entry = register(ds, name, source=Path(path).resolve(), options=options, fmt=imp.name, digest=digest)
    return ds, entry, False


def entry_of(name: str) -> dict[str, Any] | None:
    """The stored entry of user dataset ``name``, or None (missing or unreadable)."""
    p = _folder(name) / "entry.json"
    if not p.exists():
        return None
    try:
        return json.loads(p.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def user_entries() -> list[dict[str, Any]]:
    """The user's imports: the entry of each, sorted by name.

    Returns
    -------
    list of dict
        As ``register`` returns them.
    """
    root = user_dir()
    if not root.exists():
        return []
    out = []
    for d in sorted(root.iterdir()):
        if d.is_dir() and not d.name.startswith("."):
            e = entry_of(d.name)
            if e is not None:
                out.append(e)
    return out


def load_user(name: str) -> Dataset:
    """Read user dataset ``name`` from its folder, checking its fingerprint; ``XaiError`` if missing or damaged."""
    folder = _folder(name)
    try:
        ds = Dataset.load(folder / "dataset")
    except FileNotFoundError:
        raise XaiError(f"user dataset '{name}' has no data in {folder}; import it again "
                       f"(python -m xai_core import FILE --name {name})") from None
    except DatasetDamaged as e:  # files that differ from their saved checksum, or unreadable ones
        raise XaiError(f"user dataset '{name}' in {folder} is damaged ({e.reason}); import it again "
                       f"(python -m xai_core import FILE --name {name})") from None
    except Exception as e:  # noqa: BLE001 - any other read error means damaged too, never an internal error
        raise XaiError(f"user dataset '{name}' in {folder} is damaged ({type(e).__name__}: {e}); import it "
                       f"again (python -m xai_core import FILE --name {name})") from None
    entry = entry_of(name) or {}
    if entry.get("fingerprint") and ds.fingerprint() != entry["fingerprint"]:
        raise XaiError(f"user dataset '{name}' in {folder} does not match its recorded fingerprint (the files "
                       f"changed on disk); import it again (python -m xai_core import FILE --name {name})")
    return ds


def remove(name: str) -> None:
    """Remove one of the user's imports (``remove_user_dataset``).

    Parameters
    ----------
    name : str
        The dataset's name.

    Raises
    ------
    XaiError
        For a bundled dataset or a name with no user dataset.
    """
    spec = DATASETS.peek(name)
    if spec is not None and spec.size != USER_SIZE:
        raise XaiError(f"'{name}' is a bundled dataset and cannot be removed; remove only your own datasets "
                       f"({', '.join(e['name'] for e in user_entries()) or 'none imported'})")
    folder = _folder(name)
    if not folder.exists():
        raise XaiError(f"no user dataset named '{name}'; yours: "
                       f"{', '.join(e['name'] for e in user_entries()) or 'none imported'}")
    shutil.rmtree(folder)
    if spec is not None:
        DATASETS.remove(name)


def _register_spec(entry: dict[str, Any], replace: bool = False) -> None:
    name = entry["name"]
    old = DATASETS.peek(name)
    if old is not None:
        if old.size != USER_SIZE:
            return  # a bundled name always wins; register() refuses such names
        if not replace:
            return
        DATASETS.remove(name)
    DATASETS.add(name, DatasetSpec(name=name, modality=entry["kind"], description=entry.get("description", ""),
                                   builder=lambda name, **_: load_user(name),
                                   default_arch=DEFAULT_ARCH[entry["kind"]], size=USER_SIZE))


def refresh() -> None:
    """Make the registry match the user entries on disk (added by this or another process, or removed)."""
    on_disk = {e["name"]: e for e in user_entries()}
    for name in [n for n, s in DATASETS.snapshot().items() if s.size == USER_SIZE and n not in on_disk]:
        DATASETS.remove(name)
    for e in on_disk.values():
        spec = DATASETS.peek(e["name"])
        if spec is None or (spec.size == USER_SIZE and spec.description != e.get("description", "")):
            _register_spec(e, replace=True)
