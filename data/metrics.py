"""Process-wide counters behind /metrics and the System workspace.

Query latencies are kept per query name in a bounded window (the most recent samples), so
percentiles describe current behaviour and memory stays flat however long the app runs.
"""
from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict, deque

import numpy as np

from .errors import Category

WINDOW = 2000  # samples kept per query name


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latency: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=WINDOW))
        self._calls: Counter[str] = Counter()
        self._failures: Counter[str] = Counter()
        self._errors: Counter[str] = Counter({c.value: 0 for c in Category})
        self._cache_hits: Counter[str] = Counter()
        self._cache_misses: Counter[str] = Counter()
        self.started_at = time.time()

    def record_query(self, name: str, seconds: float, ok: bool = True) -> None:
        with self._lock:
            self._latency[name].append(seconds)
            self._calls[name] += 1
            if not ok:
                self._failures[name] += 1

    def record_error(self, category: Category | str) -> None:
        with self._lock:
            self._errors[Category(category).value] += 1

    def record_cache(self, name: str, hit: bool) -> None:
        with self._lock:
            (self._cache_hits if hit else self._cache_misses)[name] += 1

    def queries(self) -> list[dict]:
        """Latency percentiles (milliseconds) per query name, slowest p95 first."""
        with self._lock:
            samples = {name: np.fromiter(values, float) for name, values in self._latency.items()}
            calls, failures = dict(self._calls), dict(self._failures)
        rows = []
        for name, values in samples.items():
            if not len(values):
                continue
            p50, p95, p99 = np.percentile(values, [50, 95, 99]) * 1000
            rows.append({"query": name, "calls": calls.get(name, 0), "failures": failures.get(name, 0),
                         "p50_ms": round(float(p50), 2), "p95_ms": round(float(p95), 2),
                         "p99_ms": round(float(p99), 2)})
        return sorted(rows, key=lambda r: -r["p95_ms"])

    def cache(self) -> dict:
        with self._lock:
            hits, misses = sum(self._cache_hits.values()), sum(self._cache_misses.values())
            by_name = {name: {"hits": self._cache_hits[name], "misses": self._cache_misses[name]}
                       for name in sorted(set(self._cache_hits) | set(self._cache_misses))}
        total = hits + misses
        return {"hits": hits, "misses": misses, "hit_ratio": round(hits / total, 4) if total else None,
                "by_name": by_name}

    def errors(self) -> dict[str, int]:
        with self._lock:
            return dict(self._errors)

    def reset(self) -> None:
        """Forget everything (tests and benchmarks start from zero)."""
        self.__init__()


metrics = Metrics()
