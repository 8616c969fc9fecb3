"""Changes to the app-owned tables, from any writer, as they are committed.

The retail schema's triggers `NOTIFY retail_changes` after every statement that changes orders,
items or customers, whoever runs it (this process, another one, plain SQL); for orders the message
names them (`orders:update:12,15`). `ChangeFeed` keeps one dedicated connection LISTENing,
reconnects with a fresh credential when it drops, and calls subscribers once per burst of
notifications; `changes_since(version)` says which orders the bursts since then named.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable

from .database import Database

log = logging.getLogger(__name__)

CHANNEL = "retail_changes"
KEPT_BURSTS = 256           # what `changes_since` can still name; older is "anything may have changed"


@dataclass(frozen=True)
class Changes:
    """Orders changed and orders added; None when any order may have been (a burst too large to
    name them, a customer renamed, bursts the feed no longer keeps)."""
    updated: frozenset[int] | None = frozenset()
    inserted: frozenset[int] | None = frozenset()

    def __or__(self, other: Changes) -> Changes:
        union = lambda a, b: None if a is None or b is None else a | b  # noqa: E731
        return Changes(union(self.updated, other.updated), union(self.inserted, other.inserted))

    @classmethod
    def parse(cls, payloads: Iterable[str]) -> Changes:
        found = cls()
        for payload in payloads:
            table, _, rest = payload.partition(":")
            operation, _, ids = rest.partition(":")
            if table == "order_items":            # their order's totals change too, and it says so
                continue
            if table != "orders" or operation not in ("update", "insert"):
                found |= ANYTHING
                continue
            named = None if ids == "*" else frozenset(int(i) for i in ids.split(",") if i.isdigit())
            found |= cls(updated=named) if operation == "update" else cls(inserted=named)
        return found


ANYTHING = Changes(updated=None, inserted=None)


class ChangeFeed:
    def __init__(self, db: Database, channel: str = CHANNEL, *, settle: float = 0.1):
        self.db = db
        self.channel = channel
        self.settle = settle          # notifications arriving within this window make one event
        self.version = 0              # bumped once per event
        self.connected = False
        self._subscribers: dict[int, Callable[[int], None]] = {}
        self._recent: deque[tuple[int, Changes]] = deque(maxlen=KEPT_BURSTS)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- subscribers ----------------------------------------------------------------------

    def subscribe(self, callback: Callable[[int], None]) -> Callable[[], None]:
        """Call `callback(version)` after each change; returns a function that unsubscribes."""
        with self._lock:
            key = id(callback)
            self._subscribers[key] = callback

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers.pop(key, None)
        return unsubscribe

    def announce(self, changes: Changes = Changes()) -> None:   # noqa: B008 - frozen, never changed
        """Tell subscribers now (the writer's own process need not wait for the notification, which
        follows and names the orders: views that re-read everything need not wait for it)."""
        with self._lock:
            self.version += 1
            self._recent.append((self.version, changes))
            version, subscribers = self.version, list(self._subscribers.values())
        for callback in subscribers:
            try:
                callback(version)
            except Exception:  # one broken session must not stop the others
                log.exception("change subscriber failed")

    def changes_since(self, version: int) -> Changes:
        """What the bursts after `version` named (ANYTHING if some are no longer kept)."""
        with self._lock:
            recent = [changes for v, changes in self._recent if v > version]
            kept_from = self._recent[0][0] if self._recent else self.version + 1
        if version + 1 < kept_from:
            return ANYTHING
        found = Changes()
        for changes in recent:
            found |= changes
        return found

    # -- listening ------------------------------------------------------------------------

    def start(self) -> "ChangeFeed":
        self._thread = threading.Thread(target=self._run, name="change-feed", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                with self.db.dedicated_connection() as conn:
                    conn.execute(f"LISTEN {self.channel}")
                    self.connected, backoff = True, 0.5
                    log.info("listening for changes channel=%s", self.channel)
                    self._listen(conn)
            except Exception as exc:  # the database went away: retry with a fresh connection
                if self.connected:
                    log.warning("change feed lost its connection (%s); reconnecting", type(exc).__name__)
                self.connected = False
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def _listen(self, conn) -> None:
        while not self._stop.is_set():
            received = list(conn.notifies(timeout=1.0, stop_after=1))
            if not received:
                continue
            time.sleep(self.settle)
            received += list(conn.notifies(timeout=0.0))  # the rest of the burst
            self.announce(Changes.parse(n.payload for n in received))
