"""Changes to the app-owned tables, from any writer, as they are committed.

The retail schema's triggers `NOTIFY retail_changes` after every statement that changes orders,
items or customers, whoever runs it (this process, another one, plain SQL). `ChangeFeed` keeps
one dedicated connection LISTENing, reconnects with a fresh credential when it drops, and calls
subscribers once per burst of notifications.
"""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from .database import Database

log = logging.getLogger(__name__)

CHANNEL = "retail_changes"


class ChangeFeed:
    def __init__(self, db: Database, channel: str = CHANNEL, *, settle: float = 0.1):
        self.db = db
        self.channel = channel
        self.settle = settle          # notifications arriving within this window make one event
        self.version = 0              # bumped once per event
        self.connected = False
        self._subscribers: dict[int, Callable[[int], None]] = {}
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

    def announce(self) -> None:
        """Tell subscribers now (the writer's own process need not wait for the notification)."""
        with self._lock:
            self.version += 1
            version, subscribers = self.version, list(self._subscribers.values())
        for callback in subscribers:
            try:
                callback(version)
            except Exception:  # one broken session must not stop the others
                log.exception("change subscriber failed")

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
            list(conn.notifies(timeout=0.0))  # drain the rest of the burst
            self.announce()
