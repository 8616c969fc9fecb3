"""Health and metrics: the figures behind /health/ready, /metrics and the System workspace.

`Monitor` owns the one readiness probe (a single `SELECT 1`, no retry) and builds the metrics
snapshot. Nothing here contains a secret: credential providers report ages and expiries,
never tokens, and settings are always the redacted view.
"""
from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import psutil

from .backend import Backend
from .errors import AppError, classify
from .metrics import Metrics, metrics as default_metrics

READY_WITHIN = 2.0          # seconds /health/ready waits for the database before it says why not
_PROBING = ThreadPoolExecutor(max_workers=1, thread_name_prefix="readiness")


@dataclass(frozen=True)
class Probe:
    ok: bool
    checked_at: float
    latency_ms: float | None = None
    category: str | None = None
    reason: str | None = None

    def as_dict(self) -> dict:
        out = {"ok": self.ok, "checked_at": round(self.checked_at, 3)}
        if self.ok:
            out["latency_ms"] = self.latency_ms
        else:
            out.update(category=self.category, reason=self.reason)
        return out


class Monitor:
    def __init__(self, backend: Backend, metrics: Metrics = default_metrics):
        self.backend = backend
        self.metrics = metrics
        self._last: Probe | None = None
        self._version: str | None = None
        self._lock = threading.Lock()
        self._probing: Future | None = None

    def probe(self) -> Probe:
        """Ask the database to answer one query now."""
        started = time.perf_counter()
        try:
            with self.backend.db.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1").scalar()
                if self._version is None:
                    self._version = conn.exec_driver_sql("SHOW server_version").scalar()
            elapsed = time.perf_counter() - started
            self.metrics.record_query("health_check", elapsed)
            result = Probe(True, time.time(), latency_ms=round(elapsed * 1000, 2))
        except Exception as exc:  # any failure means "not ready"; the category says why
            error: AppError = classify(exc)
            self.metrics.record_query("health_check", time.perf_counter() - started, ok=False)
            self.metrics.record_error(error.category)
            result = Probe(False, time.time(), category=error.category.value, reason=error.message)
        with self._lock:
            self._last = result
        return result

    def shared_probe(self) -> Future:
        """The probe under way, or a new one: readiness checks arriving while the database is slow
        to answer (a token being minted, a server restarting) wait for one probe, not one each."""
        with self._lock:
            if self._probing is None or self._probing.done():
                self._probing = _PROBING.submit(self.probe)
            return self._probing

    def waiting_for(self) -> str:
        """What a slow probe is most likely waiting for, for the readiness answer."""
        token = self.backend.credentials.status()
        if token.get("minting"):
            return "a Lakebase token is being minted."
        last = self._last
        if last is not None and not last.ok:
            return f"the last check said: {last.reason}"
        return "the last check answered in time."

    def recent_probe(self, max_age: float = 5.0) -> Probe:
        """The last probe if it is fresh, else a new one (pages refreshing often share probes)."""
        with self._lock:
            last = self._last
        if last is None or time.time() - last.checked_at > max_age:
            return self.probe()
        return last

    def snapshot(self, *, sessions: int | None = None) -> dict:
        backend = self.backend
        probe = self.recent_probe()
        return {
            "database": {"mode": backend.settings.mode, "mode_label": backend.settings.mode_label,
                         "state": "up" if probe.ok else "down", "version": self._version,
                         "database": backend.settings.pg_database, "probe": probe.as_dict()},
            "replica": backend.reads.status().as_dict(),
            "token": backend.credentials.status(),
            "queries": self.metrics.queries(),
            "errors": self.metrics.errors(),
            **self.own_figures(sessions=sessions),
        }

    def own_figures(self, *, sessions: int | None = None) -> dict:
        """This process's pool, cache and process figures: what needs no query (the heartbeat's)."""
        process = psutil.Process(os.getpid())
        return {
            "pool": self.backend.db.pool_status(),
            "cache": self.metrics.cache(),
            "process": {"pid": os.getpid(), "uptime_s": round(time.time() - self.metrics.started_at, 1),
                        "rss_mb": round(process.memory_info().rss / 2**20, 1), "threads": process.num_threads(),
                        "sessions": sessions},
        }


def combine_snapshots(snapshots: list[dict], *, processes: int, started_at: float) -> dict:
    """One /metrics answer for an app served by several processes, in the shape one process gives:
    counts are summed; the database state is the latest any process saw; a query's percentiles are
    the slowest process's (an upper bound: samples stay in their process). Each process's own
    snapshot is under "workers"."""
    if not snapshots:
        return {"workers": [], "process": {"processes": processes, "running": 0}}
    first = snapshots[0]
    latest = max(snapshots, key=lambda s: s["database"]["probe"]["checked_at"])["database"]
    pool = {key: sum(s["pool"].get(key) or 0 for s in snapshots)
            for key in ("size", "checked_out", "checked_in", "overflow", "max_overflow", "connections_opened")}
    queries: dict[str, dict] = {}
    for snapshot in snapshots:
        for row in snapshot["queries"]:
            merged = queries.setdefault(row["query"], {**row, "calls": 0, "failures": 0})
            merged["calls"] += row["calls"]
            merged["failures"] += row["failures"]
            for key in ("p50_ms", "p95_ms", "p99_ms"):
                merged[key] = max(merged[key], row[key])
    hits = sum(s["cache"]["hits"] for s in snapshots)
    misses = sum(s["cache"]["misses"] for s in snapshots)
    errors: dict[str, int] = {}
    for snapshot in snapshots:
        for category, count in snapshot["errors"].items():
            errors[category] = errors.get(category, 0) + count
    token = dict(first["token"])
    if "mints" in token:
        token["mints"] = sum(s["token"].get("mints", 0) for s in snapshots)
    return {
        "database": latest,
        "pool": pool,
        "replica": max((s["replica"] for s in snapshots if "replica" in s),
                       key=lambda r: r.get("checked_at") or 0, default=None),
        "token": token,
        "queries": sorted(queries.values(), key=lambda r: r["p95_ms"], reverse=True),
        "cache": {"hits": hits, "misses": misses,
                  "hit_ratio": round(hits / (hits + misses), 4) if hits + misses else None},
        "errors": errors,
        "process": {"pid": os.getpid(), "uptime_s": round(time.time() - started_at, 1), "processes": processes,
                    "running": len(snapshots), "rss_mb": round(sum(s["process"]["rss_mb"] for s in snapshots), 1),
                    "threads": sum(s["process"]["threads"] for s in snapshots),
                    "sessions": sum(s["process"].get("sessions") or 0 for s in snapshots)},
        "workers": snapshots,
    }
