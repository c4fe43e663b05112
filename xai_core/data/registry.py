"""Registry of bundled datasets and a content-keyed on-disk cache for generated data.

A cache entry that is damaged (its files do not match the checksum saved with them, or cannot be read) is
never used: ``load_dataset`` rebuilds it from the generator and prints one line on stderr saying so (a
``print``, not ``warnings.warn``: the CLI silences warnings).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..registry import Registry
from .dataset import Dataset, DatasetDamaged


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: how to build it, its default parameters and model, and its cache version."""
    name: str
    modality: str
    description: str
    builder: Callable[..., Dataset]
    params: dict[str, Any] = field(default_factory=dict)
    default_arch: str = ""
    size: str = "small"  # "small" (seconds, used in demos and tests) or "paper" (the study's size)
    version: int = 1  # bump when the generator's output changes, to invalidate caches

    def cache_key(self, params: dict[str, Any]) -> str:
        """The cache key of this dataset built with ``params``: a hash of its name, version and parameters."""
        blob = json.dumps({"name": self.name, "v": self.version, "p": params}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


class DatasetRegistry(Registry[DatasetSpec]):
    """The dataset registry; ``refreshers`` (the user-data registry) re-sync entries kept on disk before a
    listing and on a lookup miss, so a dataset imported by another process is seen without a restart."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.refreshers: list[Callable[[], None]] = []

    def refresh(self) -> None:
        """Run the refreshers: re-sync the entries kept on disk (the user's imports)."""
        for fn in self.refreshers:
            fn()

    def get(self, name: str) -> DatasetSpec:
        """The entry ``name``, refreshing once on a miss (``UnknownChoice`` if still unknown)."""
        if name not in self._entries:
            self.refresh()
        return super().get(name)

    def names(self) -> list[str]:
        """The registered names, after a refresh."""
        self.refresh()
        return super().names()

    def values(self) -> list[DatasetSpec]:
        """The registered entries, after a refresh."""
        self.refresh()
        return super().values()

    def __contains__(self, name: object) -> bool:
        """Whether ``name`` is registered, refreshing once on a miss."""
        if name not in self._entries:
            self.refresh()
        return name in self._entries


DATASETS: DatasetRegistry = DatasetRegistry("dataset")


def register_dataset(name: str, modality: str, description: str, builder: Callable[..., Dataset],
                     default_arch: str, size: str = "small", version: int = 1, **params: Any) -> None:
    """Add a generated or bundled dataset to ``DATASETS``.

    Parameters
    ----------
    name : str
        The registry key (also the CLI's ``--dataset`` value).
    modality : str
        One of ``MODALITIES``.
    description : str
        One line for listings.
    builder : callable
        ``builder(name=name, **params) -> Dataset``.
    default_arch : str
        The architecture ``load_model`` uses when no model is named.
    size : str
        ``"small"`` (seconds, used in demos and tests) or ``"paper"`` (the study's size).
    version : int
        Bump when the generator's output changes, to invalidate caches.
    **params
        The generator's default parameters (``load_dataset``'s ``overrides`` change them).

    Raises
    ------
    ValueError
        When ``name`` is registered already.
    """
    DATASETS.add(name, DatasetSpec(name, modality, description, builder, dict(params),
                                   default_arch, size, version))


def cache_dir() -> Path:
    """``$XAI_CORE_CACHE``, default ``~/.cache/xai_core``.

    Returns
    -------
    Path
    """
    return Path(os.environ.get("XAI_CORE_CACHE", Path.home() / ".cache" / "xai_core"))


def load_dataset(name: str, use_cache: bool = True, **overrides: Any) -> Dataset:
    """Build (or read from the cache) the dataset ``name``; ``overrides`` change generator params.

    A user's import is read from its own folder. A cache entry that is damaged is never used: it is rebuilt
    from the generator, with one line on stderr.

    Parameters
    ----------
    name : str
        A bundled or imported dataset (``list_datasets``).
    use_cache : bool
        Read and write the content-keyed cache under ``cache_dir()``; False always builds.
    **overrides
        Generator parameters to change (none for a user's import).

    Returns
    -------
    Dataset

    Raises
    ------
    UnknownChoice
        For an unknown ``name`` (from ``DATASETS``).
    TypeError
        For a parameter the generator does not have, or any parameter for a user's import.
    """
    spec = DATASETS.get(name)
    if spec.size == "user":  # a user's import lives in its own folder already (see data/user.py)
        if overrides:
            raise TypeError(f"dataset '{name}' is your own import and takes no parameters; re-import it "
                            f"with other options instead")
        return spec.builder(name=name)
    unknown = set(overrides) - set(spec.params)
    if unknown:
        raise TypeError(f"dataset '{name}' has no parameter(s) {sorted(unknown)}; "
                        f"valid: {sorted(spec.params)}")
    params = {**spec.params, **overrides}
    path = cache_dir() / "datasets" / f"{name}-{spec.cache_key(params)}"
    damaged = None
    if use_cache and path.with_suffix(".json").exists() and path.with_suffix(".npz").exists():
        try:
            return Dataset.load(path)
        except (DatasetDamaged, FileNotFoundError) as e:  # never used: rebuilt from the generator below
            damaged = e.reason if isinstance(e, DatasetDamaged) else str(e)
    ds = spec.builder(name=name, **params)
    if use_cache:
        ds.save(path)
    if damaged is not None:
        print(f"warning: cache entry {path} of dataset '{name}' was damaged ({damaged}); rebuilt",
              file=sys.stderr)
    return ds


def list_datasets() -> list[dict[str, Any]]:
    """Name, modality, size, default model and description of each registered dataset.

    Returns
    -------
    list of dict
        Keys ``name``, ``modality``, ``size``, ``default_model``, ``description``.
    """
    return [{"name": s.name, "modality": s.modality, "size": s.size, "default_model": s.default_arch,
             "description": s.description} for s in DATASETS.values()]
