"""Reads that may be a moment stale go to a read-only replica (a hot standby), while it answers
and keeps up; otherwise to the primary.

`ReadRouter` stands where a `Database` would for the marketplace, catalog and assistant reads.
Writes, and anything that must read its own writes (orders), use the primary `Database` itself.
Every few seconds `check()` asks the replica how far behind it is; if it is unreachable or lags
more than the limit, reads go to the primary until it is back, and `status()` says so (System
shows it). A read the replica fails to answer for want of a connection is run on the primary at
once, so a replica going away costs a person nothing.
"""
from __future__ import annotations

import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from .database import Database
from .errors import AppError, Category

log = logging.getLogger(__name__)

# Behind = replayed less than received; then the age of the last transaction replayed. A replica
# that has replayed all it received is not behind, however long ago the primary last wrote.
LAG_SQL = """SELECT pg_is_in_recovery() AS standby,
    CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
         ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END AS lag_s"""


@dataclass
class ReplicaStatus:
    configured: bool
    in_use: bool = False
    lag_s: float | None = None
    reason: str = ""               # why reads are on the primary, when they are
    checked_at: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


class ReadRouter:
    def __init__(self, primary: Database, replica: Database | None, *, max_lag: float = 10.0):
        self.primary, self.replica, self.max_lag = primary, replica, max_lag
        self._status = ReplicaStatus(configured=replica is not None,
                                     reason="" if replica is not None else "no replica configured")
        self._lock = threading.Lock()

    # -- where reads go -------------------------------------------------------------------

    def status(self) -> ReplicaStatus:
        return self._status

    def check(self) -> ReplicaStatus:
        """Ask the replica how far behind it is, and route reads accordingly."""
        if self.replica is None:
            return self._status
        try:
            row = self.replica.rows("replica_lag", LAG_SQL)[0]
        except AppError as exc:
            return self._route(False, None, f"the replica is unreachable ({exc.message})")
        lag = float(row["lag_s"] or 0.0)
        if not row["standby"]:
            return self._route(False, None, "the read-only host is not a replica (not in recovery)")
        if lag > self.max_lag:
            return self._route(False, lag, f"the replica is {lag:.1f} s behind (limit {self.max_lag:g} s)")
        return self._route(True, lag, "")

    def _route(self, in_use: bool, lag: float | None, reason: str) -> ReplicaStatus:
        with self._lock:
            was = self._status.in_use
            self._status = ReplicaStatus(True, in_use, lag, reason, time.time())
        if was and not in_use:
            log.warning("reads go to the primary: %s", reason)
        elif in_use and not was:
            log.info("reads go to the replica lag_s=%.2f", lag or 0.0)
        return self._status

    def reader(self) -> Database:
        return self.replica if self.replica is not None and self._status.in_use else self.primary

    def _on_either(self, method: str, *args, **kwargs):
        target = self.reader()
        try:
            return getattr(target, method)(*args, **kwargs)
        except AppError as exc:
            if target is self.primary or exc.category is not Category.CONNECTION:
                raise
            self._route(False, None, f"the replica stopped answering ({exc.message})")
            return getattr(self.primary, method)(*args, **kwargs)

    # -- the reads of a Database ------------------------------------------------------------

    def frame(self, *args, **kwargs):
        return self._on_either("frame", *args, **kwargs)

    def rows(self, *args, **kwargs):
        return self._on_either("rows", *args, **kwargs)

    def scalar(self, *args, **kwargs):
        return self._on_either("scalar", *args, **kwargs)

    @contextmanager
    def read_only(self, name: str):
        with self.reader().read_only(name) as conn:
            yield conn

    @contextmanager
    def isolated(self, name: str):
        with self.reader().isolated(name) as conn:
            yield conn

    def __getattr__(self, name: str):
        """Everything else (writes, the pool, metrics) is the primary's."""
        return getattr(self.primary, name)

    def dispose(self) -> None:
        if self.replica is not None:
            self.replica.dispose()
