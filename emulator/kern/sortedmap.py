"""A dict kept in key order: a map's entries, an object's resident pages.

The kernel's ordered containers hold a handful of keys (a map's entries, a
file's resident pages).  :class:`SortedMap` is a ``dict`` (lookups at C
speed) that also keeps its keys in a plain sorted list, maintained with the
``bisect`` module, and iterates in key order -- the part of
``sortedcontainers.SortedDict``'s interface the kernel uses, at a fraction of
its construction cost (a ``SortedDict`` builds a ``SortedList`` and binds a
dozen methods; an execution builds two).  Inserting or removing a key costs a
list insertion, linear in the keys: fine for the few the kernel ever holds.

``keys``, ``values`` and ``items`` return lists (snapshots); ``iter`` walks the
live list of keys.  The kernel never changes a map while iterating over it.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

V = TypeVar("V")

_MISSING: Any = object()


class SortedMap(dict[int, V]):
    """A dict of int keys whose iteration, ``keys``, ``values`` and ``items`` follow key order."""

    __slots__ = ("_keys",)

    def __init__(self, items: Iterable[tuple[int, V]] = ()) -> None:
        self._keys: list[int] = []
        for key, value in items:
            self[key] = value

    # -- changes ----------------------------------------------------------------

    def __setitem__(self, key: int, value: V) -> None:
        if key not in self:
            insort(self._keys, key)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: int) -> None:
        dict.__delitem__(self, key)
        keys = self._keys
        del keys[bisect_left(keys, key)]

    def pop(self, key: int, default: Any = _MISSING) -> Any:
        if key in self:
            value = dict.__getitem__(self, key)
            del self[key]
            return value
        if default is _MISSING:
            raise KeyError(key)
        return default

    def setdefault(self, key: int, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return dict.__getitem__(self, key)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def clear(self) -> None:
        dict.clear(self)
        self._keys.clear()

    def popitem(self) -> tuple[int, V]:
        """Remove and return the item of the greatest key."""
        if not self._keys:
            raise KeyError("popitem(): the map is empty")
        key = self._keys[-1]
        return key, self.pop(key)

    def copy(self) -> SortedMap[V]:
        return SortedMap(self.items())

    def __copy__(self) -> SortedMap[V]:
        return self.copy()

    def __reduce__(self) -> Any:
        return (SortedMap, (list(self.items()),))

    def __ior__(self, other: Any) -> SortedMap[V]:  # type: ignore[override]
        self.update(other)
        return self

    def __or__(self, other: Any) -> SortedMap[V]:  # type: ignore[override]
        out = self.copy()
        out.update(other)
        return out

    # -- order ------------------------------------------------------------------

    def __iter__(self) -> Iterator[int]:
        return iter(self._keys)

    def __reversed__(self) -> Iterator[int]:
        return reversed(self._keys)

    def keys(self) -> list[int]:  # type: ignore[override]
        """The keys in order (a list: a snapshot)."""
        return list(self._keys)

    def values(self) -> list[V]:  # type: ignore[override]
        """The values in key order (a list: a snapshot)."""
        get = dict.__getitem__
        return [get(self, key) for key in self._keys]

    def items(self) -> list[tuple[int, V]]:  # type: ignore[override]
        """The items in key order (a list: a snapshot)."""
        get = dict.__getitem__
        return [(key, get(self, key)) for key in self._keys]

    def bisect_left(self, key: int) -> int:
        """The index where ``key`` would go in the keys, before any equal one."""
        return bisect_left(self._keys, key)

    def bisect_right(self, key: int) -> int:
        """The index where ``key`` would go in the keys, after any equal one."""
        return bisect_right(self._keys, key)

    def peekitem(self, index: int = -1) -> tuple[int, V]:
        """The item at ``index`` in key order."""
        key = self._keys[index]
        return key, dict.__getitem__(self, key)

    def __repr__(self) -> str:
        return f"SortedMap({dict(self.items())!r})"
