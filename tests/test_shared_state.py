"""State the whole app shares through PostgreSQL rather than a process: Refresh data, heard by
every process. (Genie's budget and the answer cache are tested with the assistant.)"""
from __future__ import annotations

import threading
import time

from data.changes import ChangeFeed
from data.marketplace import Marketplace
from data.refresh import CHANNEL, Refresh

from .conftest import app_role_database


def listening(feed: ChangeFeed) -> ChangeFeed:
    deadline = time.monotonic() + 10
    while not feed.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert feed.connected
    return feed


def test_refresh_in_one_process_makes_every_process_read_afresh(pg, database_name, tables):
    """Two processes, each with its own pool, caches and listener: Refresh in the first empties the
    second's caches within 2 s (and the shared ones at once), so its next read goes to the database."""
    here, there = app_role_database(pg, database_name), app_role_database(pg, database_name)
    feeds = []
    try:
        shared_cleared = []
        processes = []
        for db in (here, there):
            market = Marketplace(db, tables)
            feeds.append(listening(ChangeFeed(db, CHANNEL).start()))
            processes.append((market, Refresh(db, local=[market.clear_cache], shared=[lambda: shared_cleared.append(1)],
                                              feed=feeds[-1])))
        (market_a, refresh_a), (market_b, _) = processes
        market_b.cities()                                     # cached in the second process
        assert market_b._caches.cache("cities", 3600, 512)
        heard = threading.Event()
        feeds[1].subscribe(lambda _version: heard.set())
        started = time.monotonic()
        refresh_a.everywhere()
        assert shared_cleared == [1], "the shared caches are cleared once, by the process asked"
        assert heard.wait(2.0) and time.monotonic() - started < 2.0
        assert not market_b._caches.cache("cities", 3600, 512), "the other process forgot its cached reads"
    finally:
        for feed in feeds:
            feed.stop()
        here.dispose()
        there.dispose()
