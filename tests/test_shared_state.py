"""State the whole app shares through PostgreSQL rather than a process: Refresh data, heard by
every process, and every process's figures in System. (Genie's budget and the answer cache are
tested with the assistant.)"""
from __future__ import annotations

import threading
import time

from sqlalchemy import text

from dashboard.system import SystemState, SystemView
from data.backend import Backend
from data.changes import ChangeFeed
from data.credentials import StaticPassword
from data.health import Monitor
from data.marketplace import Marketplace
from data.processes import Processes
from data.refresh import CHANNEL, Refresh
from data.settings import load_settings

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


def test_system_shows_every_process_of_the_app_and_which_one_this_session_is_on(db, tables):
    """Three processes on two hosts report; one stopped beating a minute ago and is not counted."""
    for name, sessions in (("web-a:11", 4), ("web-a:12", 3), ("web-b:21", 5), ("web-b:22", 9)):
        Processes(db, tables, name).beat({"process": {"uptime_s": 120.0, "sessions": sessions, "rss_mb": 300.0},
                                          "pool": {"checked_out": 1, "size": 10}, "cache": {"hits": 3, "misses": 1}})
    with db.transaction("stale") as conn:
        conn.execute(text(f"UPDATE {tables.app_processes} SET seen_at = now() - interval '1 minute' "
                          "WHERE process = 'web-b:22'"))
    backend = Backend(load_settings({}), db, tables, StaticPassword("secret"), "localhost", "app")
    state = SystemState(Monitor(backend), processes=Processes(db, tables, "web-a:12"))
    view = SystemView(state)
    shown = view.process_table.value
    assert list(shown["process"]) == ["web-a:12 (this session)", "web-a:11", "web-b:21"]
    assert list(shown["sessions"]) == [3, 4, 5] and list(shown["cache"]) == ["75.0%"] * 3
    assert "12 sessions" in view.app_total.pane.object
    assert "3 processes on 2 hosts" in view.app_total.pane.object and "this session on web-a:12" in \
        view.app_total.pane.object
