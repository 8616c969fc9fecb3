"""Every process of the app, in every instance: each records a heartbeat with its own figures
(sessions, memory, pool, cache) in one table, so any process can show the whole app.

A process that stopped beating for `STALE_AFTER` seconds (it ended, or its instance did) is no
longer counted, and its row is swept by the next beat of any process an hour later.
"""
from __future__ import annotations

import json
import logging
import os
import socket
from dataclasses import dataclass

from sqlalchemy import text

from .errors import AppError

log = logging.getLogger(__name__)

BEAT_EVERY = 5.0
STALE_AFTER = 30.0


def this_process() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class ProcessFigures:
    process: str          # host:pid
    uptime_s: float
    sessions: int
    rss_mb: float
    pool_in_use: int
    pool_size: int
    cache_hits: int
    cache_misses: int
    seen_s_ago: float

    @property
    def cache_hit_ratio(self) -> float | None:
        total = self.cache_hits + self.cache_misses
        return self.cache_hits / total if total else None


class Processes:
    def __init__(self, db, tables, name: str | None = None):
        self.db, self.t, self.name = db, tables, name or this_process()

    def beat(self, snapshot: dict) -> None:
        """Record this process's figures (`Monitor.own_figures`); a database away skips a beat."""
        figures = {"uptime_s": snapshot["process"]["uptime_s"], "sessions": snapshot["process"].get("sessions") or 0,
                   "rss_mb": snapshot["process"]["rss_mb"], "pool_in_use": snapshot["pool"]["checked_out"],
                   "pool_size": snapshot["pool"]["size"], "cache_hits": snapshot["cache"]["hits"],
                   "cache_misses": snapshot["cache"]["misses"]}
        try:
            with self.db.transaction("process_beat") as conn:
                conn.execute(text(f"DELETE FROM {self.t.app_processes} WHERE seen_at < now() - interval '1 hour'"))
                conn.execute(text(f"""
                    INSERT INTO {self.t.app_processes} (process, seen_at, figures)
                    VALUES (:process, now(), CAST(:figures AS jsonb))
                    ON CONFLICT (process) DO UPDATE SET seen_at = now(), figures = EXCLUDED.figures"""),
                             {"process": self.name, "figures": json.dumps(figures)})
        except AppError as exc:
            log.warning("heartbeat skipped: %s", exc.message)

    def everyone(self) -> list[ProcessFigures]:
        """The processes that beat within `STALE_AFTER` seconds, this one first, then by name."""
        rows = self.db.rows("processes", f"""
            SELECT process, figures, extract(epoch FROM now() - seen_at) AS seen_s_ago FROM {self.t.app_processes}
            WHERE seen_at > now() - make_interval(secs => :stale) ORDER BY process <> :me, process""",
                            {"stale": STALE_AFTER, "me": self.name})
        return [ProcessFigures(process=r["process"], seen_s_ago=float(r["seen_s_ago"]), **r["figures"]) for r in rows]
