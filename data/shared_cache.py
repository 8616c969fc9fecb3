"""A cache every process and instance shares: JSON values under a key, in an UNLOGGED table of
the app's schema, each kept until it expires or the cache is cleared (Refresh data).

A cache only saves work: when the database cannot answer, a read is a miss and a write is
skipped, with one warning line, and the caller goes on as if nothing were cached.
"""
from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from sqlalchemy import text

from .errors import AppError
from .metrics import metrics

log = logging.getLogger(__name__)


def cache_key(*parts: Any) -> str:
    """A fixed-length key for any JSON-able parts (a question can be long; who asked is not shown)."""
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


class SharedCache:
    def __init__(self, db, table: str, name: str, ttl: float):
        """`table`: the quoted, qualified table (cache_key, answer, stored_at, expires_at);
        `name`: how hits and misses are counted in /metrics; `ttl`: seconds a value is kept."""
        self.db, self.table, self.name, self.ttl = db, table, name, ttl

    def get(self, key: str) -> dict | None:
        try:
            rows = self.db.rows(f"{self.name}_get", f"SELECT answer FROM {self.table} "
                                                    "WHERE cache_key = :key AND expires_at > now()", {"key": key})
        except AppError as exc:
            log.warning("shared cache %s unavailable for a read: %s", self.name, exc.message)
            rows = []
        metrics.record_cache(self.name, hit=bool(rows))
        return rows[0]["answer"] if rows else None

    def put(self, key: str, value: dict) -> None:
        """Keep `value` (replacing what the key held); expired values are swept on the way."""
        self._write(f"{self.name}_put", f"""
            WITH swept AS (DELETE FROM {self.table} WHERE expires_at <= now())
            INSERT INTO {self.table} (cache_key, answer, stored_at, expires_at)
            VALUES (:key, CAST(:value AS jsonb), now(), now() + make_interval(secs => :ttl))
            ON CONFLICT (cache_key) DO UPDATE SET answer = EXCLUDED.answer, stored_at = EXCLUDED.stored_at,
                                                  expires_at = EXCLUDED.expires_at""",
                    {"key": key, "value": json.dumps(value, default=str), "ttl": self.ttl})

    def add(self, key: str, fields: dict) -> None:
        """Add `fields` to the value under `key`, if it is still kept (what was learnt later)."""
        self._write(f"{self.name}_add", f"UPDATE {self.table} SET answer = answer || CAST(:fields AS jsonb) "
                                        "WHERE cache_key = :key AND expires_at > now()",
                    {"key": key, "fields": json.dumps(fields, default=str)})

    def clear(self) -> None:
        self._write(f"{self.name}_clear", f"DELETE FROM {self.table}", {})

    def _write(self, name: str, sql: str, params: dict) -> None:
        try:
            with self.db.transaction(name) as conn:
                conn.execute(text(sql), params)
        except AppError as exc:
            log.warning("shared cache %s unavailable for a write: %s", self.name, exc.message)
