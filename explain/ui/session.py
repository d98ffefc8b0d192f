"""The one per-session cache: a bounded mapping in st.session_state for each name, least recently used dropped first.

A user's results (recordings, maps, datasets, model files) stay in their session so a rerun (any click)
does not recompute them; every name has a bound, so one session cannot pile up memory on a shared server.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Container, Hashable, Iterator, Mapping, MutableMapping
from typing import Any, TypeVar

import numpy as np
import streamlit as st

V = TypeVar("V")


class BoundedCache(MutableMapping):
    """A mapping that keeps at most `max_entries` items; past the bound the least recently used ones go.

    An entry's age counts from when its key was first stored or last `use`d. Reading with [] does not
    count (so a page can look without reordering), and storing under a key already there replaces the
    value in its place (the sidebar lists own models in the order they came).
    """

    def __init__(self, max_entries: int, items: Mapping | None = None) -> None:
        if max_entries < 1:
            raise ValueError(f"a cache keeps at least one entry, not {max_entries}")
        self.max_entries = max_entries
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        for key, value in (items or {}).items():
            self.put(key, value)

    def __getitem__(self, key: Hashable) -> Any:
        return self._items[key]

    def __setitem__(self, key: Hashable, value: Any) -> None:
        self.put(key, value)

    def __delitem__(self, key: Hashable) -> None:
        del self._items[key]

    def __iter__(self) -> Iterator[Hashable]:
        return iter(self._items)  # oldest first

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"BoundedCache({self.max_entries}, {dict(self._items)!r})"

    def use(self, key: Hashable) -> Any:
        """The value under `key`, now the most recently used."""
        self._items.move_to_end(key)
        return self._items[key]

    def put(self, key: Hashable, value: Any, keep: Container = ()) -> None:
        """Store `value`; past the bound the oldest entries go, except `key` itself and the keys in `keep`."""
        self._items[key] = value
        self._trim(self.max_entries, lambda k: k == key or k in keep)

    def make_room(self) -> None:
        """Drop the oldest entries until one more fits: before building a large value, so two never coexist."""
        self._trim(self.max_entries - 1, lambda k: False)

    def _trim(self, size: int, kept: Callable[[Hashable], bool]) -> None:
        droppable = [k for k in self._items if not kept(k)]
        for key in droppable[: max(0, len(self._items) - size)]:
            del self._items[key]


def session_cache(name: str, max_entries: int) -> BoundedCache:
    """This session's cache `name` (st.session_state[name]), made with `max_entries` the first time."""
    store = st.session_state.get(name)
    if not isinstance(store, BoundedCache):
        # a plain mapping (a test seeding the cache) or one made before a code reload is taken over
        store = BoundedCache(max_entries, store if isinstance(store, Mapping) else None)
        st.session_state[name] = store
    return store


SHARED_KEPT = 2  # per name: what every session may re-use (the sample photos on a registry network); bounded like a session

_shared: dict[str, BoundedCache] = {}
_shared_lock = threading.Lock()
_building: dict[tuple[str, Hashable], threading.Lock] = {}


def shared_cached(name: str, key: Hashable, build: Callable[[], V], max_entries: int = SHARED_KEPT) -> V:
    """build() once per `key` for the whole server, every session included: 30 students on the same sample photo wait once.

    Only for values that depend on nothing but `key`'s public inputs (a registry network, pixels, settings), never on
    a session's own model. Two sessions asking for the same key at once build it once; different keys build in parallel.
    The values are shared: callers must not change them.
    """
    with _shared_lock:
        store = _shared.setdefault(name, BoundedCache(max_entries))
        if key in store:
            return store.use(key)
        building = _building.setdefault((name, key), threading.Lock())
    with building:
        with _shared_lock:
            if key in store:
                return store.use(key)
        value = build()
        with _shared_lock:
            store.put(key, value)
            _building.pop((name, key), None)
    return value


def cached(name: str, key: Hashable, build: Callable[[], V], max_entries: int, shared: bool = False) -> V:
    """build() once per `key` in this session's cache `name`, which keeps the `max_entries` most recently used.

    shared: the value depends on public inputs only (see shared_cached): another session's result is re-used.
    """
    store = session_cache(name, max_entries)
    if key in store:
        return store.use(key)
    store.make_room()
    value = shared_cached(name, key, build) if shared else build()
    store.put(key, value)
    return value


def image_key(image: np.ndarray) -> str:
    """A short key for a photo's pixels (and shape), for caches and "is this a new photo?" checks."""
    return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()[:16] + f"{image.shape}"
