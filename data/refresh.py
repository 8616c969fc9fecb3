"""Refresh data: every cached read is forgotten, in every process and instance.

The process that is asked clears the caches kept in PostgreSQL (the assistant's answers), its own
caches at once, and NOTIFYs `app_refresh`. Every process LISTENs on that channel (a `ChangeFeed`)
and clears its own caches when it hears, so the next read anywhere is fresh.
"""
from __future__ import annotations

import logging
from typing import Callable

from sqlalchemy import text

from .changes import ChangeFeed

log = logging.getLogger(__name__)

CHANNEL = "app_refresh"


class Refresh:
    def __init__(self, db, *, local: list[Callable[[], None]], shared: list[Callable[[], None]],
                 feed: ChangeFeed | None = None):
        """`local`: clears this process's caches; `shared`: clears caches every process reads;
        `feed`: this process's listener on the refresh channel."""
        self.db, self.local, self.shared, self.feed = db, local, shared, feed
        if feed is not None:
            feed.subscribe(lambda _version: self._clear_local())

    def everywhere(self) -> None:
        for clear in self.shared:
            clear()
        self._clear_local()
        with self.db.transaction("refresh_announce") as conn:
            conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
        log.info("data refresh announced to every process")

    def _clear_local(self) -> None:
        for clear in self.local:
            clear()
