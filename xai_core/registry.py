"""A tiny registry: the set of datasets, models and methods is data, not ``if`` chains."""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import UnknownChoice

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> entry mapping whose lookups fail with a message listing the valid names."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} '{name}' is registered twice")
        self._entries[name] = entry
        return entry

    def decorator(self, name: str, make: Callable[[Callable], T]) -> Callable[[Callable], Callable]:
        """Register ``make(fn)`` under ``name`` and return ``fn`` unchanged."""

        def wrap(fn: Callable) -> Callable:
            self.add(name, make(fn))
            return fn

        return wrap

    def remove(self, name: str) -> T:
        """Take an entry out again (tests that register temporary entries)."""
        return self._entries.pop(name)

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownChoice(self.kind, name, self._entries) from None

    def peek(self, name: str) -> T | None:
        """The entry registered under ``name`` at this moment, or None: no error, and nothing refreshed first
        (``DatasetRegistry.get`` re-reads the user's datasets on a miss; its own bookkeeping must not)."""
        return self._entries.get(name)

    def snapshot(self) -> dict[str, T]:
        """A copy of the name -> entry mapping as registered at this moment (nothing refreshed first)."""
        return dict(self._entries)

    def names(self) -> list[str]:
        return list(self._entries)

    def values(self) -> list[T]:
        return list(self._entries.values())

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
