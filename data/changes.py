"""Changes to the app-owned tables, from any writer, as they are committed.

The retail schema's triggers `NOTIFY retail_changes` after every statement that changes orders,
items or customers, whoever runs it (this process, another one, plain SQL); for orders the message
names them (`orders:update:12,15`). A process keeps one dedicated connection LISTENing on every
channel it follows (`listen`), reconnecting with a fresh credential when it drops; each channel's
`ChangeFeed` calls its subscribers once per burst of notifications, and `changes_since(version)`
says which orders the bursts since then named.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable

from .database import Database
from .tables import quote

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
    """One channel's announcements, numbered, with the orders each named (for the orders channel)."""

    def __init__(self, db: Database, channel: str = CHANNEL, *, settle: float = 0.1):
        self.db = db
        self.channel = channel
        self.settle = settle          # notifications arriving within this window make one event
        self.version = 0              # bumped once per event
        self._listener: Listener | None = None
        self._subscribers: dict[int, Callable[[int], None]] = {}
        self._recent: deque[tuple[int, Changes]] = deque(maxlen=KEPT_BURSTS)
        self._lock = threading.Lock()

    @property
    def connected(self) -> bool:
        return self._listener is not None and self._listener.connected

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
        """Listen on a connection of this feed's own (`listen` shares one between channels)."""
        if self._listener is None:
            Listener(self.db, [self], settle=self.settle).start()
        return self

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.stop()


def listen(db: Database, *channels: str, settle: float = 0.1) -> list[ChangeFeed]:
    """A feed per channel, all listening on one connection (one per process, not one per channel)."""
    feeds = [ChangeFeed(db, channel, settle=settle) for channel in channels]
    Listener(db, feeds, settle=settle).start()
    return feeds


class Listener:
    """One dedicated connection LISTENing on its feeds' channels: it reconnects with a fresh
    credential when the connection drops, and hands each burst to the feeds it names."""

    def __init__(self, db: Database, feeds: list[ChangeFeed], *, settle: float):
        self.db, self.settle = db, settle
        self.feeds = {feed.channel: feed for feed in feeds}
        for feed in feeds:
            feed._listener = self
        self.connected = False
        self._stop = threading.Event()

    def start(self) -> "Listener":
        threading.Thread(target=self._run, name="change-feed", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                with self.db.dedicated_connection() as conn:
                    for channel in self.feeds:
                        conn.execute(f"LISTEN {quote(channel)}")
                    self.connected, backoff = True, 0.5
                    log.info("listening for changes channels=%s", ",".join(self.feeds))
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
            for channel, feed in self.feeds.items():
                payloads = [n.payload for n in received if n.channel == channel]
                if payloads:
                    feed.announce(Changes.parse(payloads))
