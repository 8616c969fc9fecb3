"""Marketplace workspace speed.

1. Per tab, server side: the time from changing the shared city to every view of the tab being
   recomputed and re-rendered to Bokeh models, p50/p95 over cities, with the process caches
   cleared (cold) and warm (from cache), beside the raw SQL time of the same queries (measured
   at the driver with SQLAlchemy cursor events). Targets: p95 < 150 ms, < 2x raw SQL, < 5 ms cached.
2. Time to first render in Chromium (navigation start to the charts drawn), warm server.

    python -m tests.bench.marketplace
"""
from __future__ import annotations

import time

import numpy as np
import panel as pn
from bokeh.document import Document
from sqlalchemy import event

from dashboard.marketplace.state import MarketplaceState
from dashboard.marketplace.views import AmenitiesTab, DemandTab, OverviewTab, PropertiesTab
from dashboard.state import AppState
from data.marketplace import Marketplace
from data.paging import PageQuery
from tests.bench.common import demo_backend, percentiles

TABS = {"overview": OverviewTab, "properties": PropertiesTab, "amenities": AmenitiesTab, "demand": DemandTab}
# The data each tab shows, as the views read it from the state.
TAB_DATA = {
    "overview": lambda s: (s.investment(), s.quadrants(), s.funnel()),
    "properties": lambda s: (s.points(), s.property_count(), s.categories(), s.property_page(PageQuery(size=20))),
    "amenities": lambda s: (s.amenities(), s.top_amenities()),
    "demand": lambda s: (s.devices(), s.weekly(), s.diagnosis()),
}
ROUNDS = 3


class SqlClock:
    """Records the statements the app sends, and times them replayed on a bare psycopg connection
    (execute + fetch all rows): the raw SQL time of the same queries."""

    def __init__(self, engine):
        self.engine = engine
        self.statements: list[tuple[str, object]] = []
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        self.statements.append((statement, parameters))

    def start(self) -> None:
        self.statements = []

    def raw_seconds(self) -> float:
        statements = list(self.statements)
        with self.engine.connect() as conn:
            raw = conn.connection.driver_connection
            started = time.perf_counter()
            for statement, parameters in statements:
                with raw.cursor() as cursor:
                    cursor.execute(statement, parameters)
                    if cursor.description:
                        cursor.fetchall()
            elapsed = time.perf_counter() - started
            raw.rollback()
        self.statements = []
        return elapsed


def data_side(backend, queries, clock, cities, sample) -> None:
    print("Per tab, filter change (city) to all the tab's data recomputed (state methods), server side:")
    for name, read in TAB_DATA.items():
        app = AppState()
        app.set_cities(cities)
        state = MarketplaceState(app, queries)
        cold, warm, sql = [], [], []
        for _ in range(ROUNDS):
            for city in sample:
                app.city = city
                queries.clear_cache()
                clock.start()
                started = time.perf_counter()
                read(state)
                cold.append(time.perf_counter() - started)
                sql.append(clock.raw_seconds())
                started = time.perf_counter()
                read(state)
                warm.append(time.perf_counter() - started)
        c, w, s = percentiles(cold), percentiles(warm), percentiles(sql)
        print(f"  {name:<10} cold p50 {c['p50']:6.2f} ms  p95 {c['p95']:6.2f} ms | raw SQL p50 {s['p50']:6.2f} ms  "
              f"p95 {s['p95']:6.2f} ms | ratio (p95) {c['p95'] / max(s['p95'], 1e-6):4.2f}x | "
              f"cached p50 {w['p50']:6.3f} ms  p95 {w['p95']:6.3f} ms")


def server_side(backend) -> None:
    queries = Marketplace(backend.db, backend.tables)
    clock = SqlClock(backend.db.engine)
    cities = queries.cities()
    rng = np.random.default_rng(1)
    sample = list(rng.choice(cities, 20, replace=False))
    data_side(backend, queries, clock, cities, sample)
    print("Per tab, filter change (city) to all views recomputed and re-rendered to Bokeh models, server side:")
    for name, tab in TABS.items():
        app = AppState()
        app.set_cities(cities)
        state = MarketplaceState(app, queries)
        pn.panel(tab(state=state)).get_root(Document())
        cold, warm, sql = [], [], []
        for _ in range(ROUNDS):
            for city in sample:
                app.city = "All cities"
                queries.clear_cache()
                clock.start()
                started = time.perf_counter()
                app.city = city
                cold.append(time.perf_counter() - started)
                sql.append(clock.raw_seconds())
                app.city = "All cities"
                started = time.perf_counter()
                app.city = city                       # everything now comes from the cache
                warm.append(time.perf_counter() - started)
        c, w, s = percentiles(cold), percentiles(warm), percentiles(sql)
        print(f"  {name:<10} cold p50 {c['p50']:7.1f} ms  p95 {c['p95']:7.1f} ms | raw SQL p50 {s['p50']:6.1f} ms  "
              f"p95 {s['p95']:6.1f} ms | ratio (p50) {c['p50'] / max(s['p50'], 1e-6):4.1f}x | "
              f"cached p50 {w['p50']:6.1f} ms  p95 {w['p95']:6.1f} ms")


def first_render(backend_dir) -> None:
    import tempfile
    from pathlib import Path

    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM_ARGS, chromium_path
    from tests.helpers import CHARTS_DRAWN_JS, ServedApp, isolated_env

    with tempfile.TemporaryDirectory() as tmp, \
            ServedApp(isolated_env(Path(tmp), EMBEDDED_DATA_DIR=backend_dir), Path(tmp) / "serve.log") as app:
        app.wait_until_ready(timeout=300)
        times = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1400, "height": 900})  # keeps the HTTP cache
            for i in range(8):
                page = context.new_page()
                page.goto(app.url)
                page.wait_for_function(CHARTS_DRAWN_JS, arg=2, timeout=30_000)
                elapsed = page.evaluate("() => performance.now()") / 1000
                if i:                      # the first load warms the server's caches
                    times.append(elapsed)
                page.close()
            browser.close()
        p = percentiles(times)
        print(f"Time to first render in Chromium (navigation start to charts drawn), warm server and cache: "
              f"p50 {p['p50']:.0f} ms, p95 {p['p95']:.0f} ms (target 1,500 ms)")
        app.stop()


def main() -> None:
    import tempfile
    with tempfile.TemporaryDirectory(prefix="bench-marketplace-") as keep:
        with demo_backend(keep_dir=keep) as backend:
            server_side(backend)
        first_render(f"{keep}/pgdata")


if __name__ == "__main__":
    main()
