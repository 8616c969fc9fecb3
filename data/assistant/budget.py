"""Genie's question budget: at most `per_minute` new questions a minute for the whole app.

Genie allows about five questions a minute per workspace, so the budget is the app's, not a
process's: `SharedSends` keeps the questions sent in the last minute in PostgreSQL, where every
process and instance takes from one budget under an advisory lock. `RateLimiter` queues this
process's questions first come first served and tells each person waiting where they stand.
"""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import Callable, Protocol

from sqlalchemy import text

from ..errors import AppError, Category
from .genie import Cancelled

WINDOW = 60.0                 # seconds a sent question counts against the budget
_LOCK_KEY = 7_240_613         # advisory lock of the shared budget (7_240_611/612: schema, insights)


class Sends(Protocol):
    def take(self, per_minute: int) -> float | None:
        """Count one question sent now if the budget allows (None), else the seconds until it will."""


class LocalSends:
    """The questions this process sent in the last minute (tests, and tools that run alone)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._sent: deque[float] = deque()

    def take(self, per_minute: int) -> float | None:
        now = self.clock()
        while self._sent and now - self._sent[0] >= WINDOW:
            self._sent.popleft()
        if len(self._sent) < per_minute:
            self._sent.append(now)
            return None
        return max(0.0, WINDOW - (now - self._sent[0]))


class SharedSends:
    """The questions every process and instance sent in the last minute, in one table. The
    database's clock is the only clock, so processes on different machines agree."""

    def __init__(self, db, tables):
        self.db, self.t = db, tables

    def take(self, per_minute: int) -> float | None:
        with self.db.transaction("genie_budget") as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
            conn.execute(text(f"DELETE FROM {self.t.genie_sends} "
                              "WHERE sent_at <= clock_timestamp() - make_interval(secs => :window)"),
                         {"window": WINDOW})
            sent, oldest_age = conn.execute(text(
                f"SELECT count(*), extract(epoch FROM clock_timestamp() - min(sent_at)) FROM {self.t.genie_sends}"
            )).one()
            if sent < per_minute:
                conn.execute(text(f"INSERT INTO {self.t.genie_sends} (sent_at) VALUES (clock_timestamp())"))
                return None
            return max(0.0, WINDOW - float(oldest_age))


class RateLimiter:
    """At most `per_minute` new questions a minute from `sends`, first come first served here."""

    def __init__(self, per_minute: int = 5, sends: Sends | None = None, clock: Callable[[], float] = time.monotonic):
        self.per_minute, self.clock = per_minute, clock
        self.sends = sends or LocalSends(clock)
        self._queue: deque[object] = deque()
        self._lock = threading.Lock()

    def acquire(self, on_wait: Callable[[int, float], None], cancel: threading.Event, deadline: float) -> None:
        """Block until a slot is free; `on_wait(position, seconds)` while queued."""
        ticket = object()
        with self._lock:
            self._queue.append(ticket)
        try:
            while True:
                with self._lock:
                    first = self._queue[0] is ticket
                    position = self._queue.index(ticket)
                wait = self.sends.take(self.per_minute) if first else 0.5
                if wait is None:
                    return
                on_wait(position, wait)
                if self.clock() > deadline:
                    raise AppError("Genie is answering other questions (at most "
                                   f"{self.per_minute} a minute) and yours could not start in time; ask again shortly.",
                                   category=Category.TIMEOUT)
                if cancel.wait(min(max(wait, 0.05), 1.0)):
                    raise Cancelled()
        finally:
            with self._lock:
                if ticket in self._queue:
                    self._queue.remove(ticket)
