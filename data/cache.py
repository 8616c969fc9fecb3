"""Per-process read caches with time-to-live, counted in /metrics.

`@cached(name, ttl)` on a method of a long-lived query object (one per process) keeps results
per argument tuple. Cached DataFrames are shared by every session: callers must not mutate them
(copy first). `clear()` on the owner empties its caches (the Refresh action), `clear(name)` one.
"""
from __future__ import annotations

import functools
import threading

from cachetools import TTLCache

from .metrics import metrics


def cached(name: str, ttl: float, maxsize: int = 512):
    def decorate(method):
        @functools.wraps(method)
        def wrapper(self, *args):
            cache = self._caches.cache(name, ttl, maxsize)
            key = args
            with self._caches.lock:
                if key in cache:
                    metrics.record_cache(name, hit=True)
                    return cache[key]
            metrics.record_cache(name, hit=False)
            value = method(self, *args)
            with self._caches.lock:
                cache[key] = value
            return value
        return wrapper
    return decorate


class Caches:
    """The TTL caches of one query object."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._caches: dict[str, TTLCache] = {}

    def cache(self, name: str, ttl: float, maxsize: int) -> TTLCache:
        with self.lock:
            if name not in self._caches:
                self._caches[name] = TTLCache(maxsize=maxsize, ttl=ttl)
            return self._caches[name]

    def clear(self, *names: str) -> None:
        """Empty the named caches, or every one when none is named."""
        with self.lock:
            for name, cache in self._caches.items():
                if not names or name in names:
                    cache.clear()
