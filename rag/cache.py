"""Process-wide caches of loaded things (models, clients, retrievers), keyed by frozen settings groups.

Loading a model or opening an index costs seconds, so each is made once per process and shared by the
app's sessions (threads). The key is a frozen group of `Settings` (see `rag.config`), never a hand-picked
tuple of fields: a field added to a group changes the key by itself.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class SettingsCache(Generic[V]):
    """`get(key, make)` returns the value made once for `key`; thread-safe, `make` runs under the lock."""

    def __init__(self) -> None:
        self._items: dict[Hashable, V] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], V]) -> V:
        with self._lock:
            if key not in self._items:
                self._items[key] = make()
            return self._items[key]

    def forget(self, key: Hashable, then: Callable[[], None] | None = None) -> None:
        """Drop `key`; `then` runs under the same lock, so no `get` can make a new value halfway through."""
        with self._lock:
            self._items.pop(key, None)
            if then is not None:
                then()

    def values(self) -> list[V]:
        with self._lock:
            return list(self._items.values())

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
