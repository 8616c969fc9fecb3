"""The insight watcher: what one run costs, and how soon a planted anomaly reaches an open page.

- SQL time of one run of the rules, per rule and in all (p50/p95 of 20 runs), on the default demo
  data (5,000 orders) and on 1,000,000 orders (DEMO_SCALE=200; built once, about 90 s)
- from an anomaly planted by plain SQL to its insight on screen in an open Assistant page (headless
  Chromium, `python serve.py` with its default processes), with the watcher every 10 s: one orders
  anomaly, then amenity lifts flipped one at a time; the wait is bounded by the interval (the default
  is 300 s, so expect up to that plus these seconds)

    python -m tests.bench.insights [data-dir-for-1M] [--screen: only the time to the screen]
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from data.embedded import SUPERUSER
from data.insights import RULES, Insights
from tests.bench.common import demo_backend, percentiles
from tests.helpers import ServedApp, isolated_env

EVERY = 10
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def run_cost(backend, label: str, runs: int = 20) -> None:
    insights = Insights(backend.db, backend.tables)
    total, per_rule = [], {name: [] for name in RULES}
    with backend.db.transaction("bench") as conn:
        insights.check(conn)                                   # warm, and the amenity baseline
    for _ in range(runs):
        with backend.db.transaction("bench") as conn:
            started = time.perf_counter()
            result = insights.check(conn)
            total.append(time.perf_counter() - started)
        for name, seconds in result.seconds.items():
            per_rule[name].append(seconds)
    orders = backend.db.scalar("n", f"SELECT count(*) FROM {backend.tables.orders}")
    rules = ", ".join(f"{name} {statistics.median(s) * 1000:.1f}" for name, s in per_rule.items())
    p = percentiles(total)
    print(f"watcher run on {label} ({orders:,} orders): p50 {p['p50']} ms, p95 {p['p95']} ms; "
          f"per rule p50 ms: {rules}; findings {len(result.findings)}")


def admin(data_dir: Path, port: int):
    return psycopg.connect(host=str(data_dir), port=port, user=SUPERUSER, dbname="databricks_postgres",
                           autocommit=True)


def plant_orders(conn) -> str:
    conn.execute("""INSERT INTO retail360.orders (customer_id, items_subtotal, item_count, created_at, modified_at)
                    SELECT (SELECT min(customer_id) FROM retail360.customers), 80, 1, t, t
                    FROM (SELECT date_trunc('day', now()) + random() * (now() - date_trunc('day', now())) AS t
                          FROM generate_series(1, 300)) AS planted""")
    return "Orders so far today:"


def flip_amenity(conn, n: int) -> str:
    row = conn.execute("""
        UPDATE marketplace.amenity_lift SET rate_with = rate_without - 9, confirmation_lift = -9,
               listings_with = 2000, listings_without = 2000
        WHERE (city, property_type, amenity_name) = (
            SELECT city, property_type, amenity_name FROM marketplace.amenity_lift WHERE confirmation_lift > 5
            ORDER BY city, property_type, amenity_name OFFSET %s LIMIT 1)
        RETURNING amenity_name, property_type, city""", (n,)).fetchone()
    return f"{row[0]} for {row[1]} in {row[2]} now lowers"


def to_screen(trials: int = 6) -> None:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="bench-insights-") as tmp:
        data_dir = Path(tmp) / "pgdata"
        env = isolated_env(Path(tmp), EMBEDDED_DATA_DIR=str(data_dir), INSIGHTS_EVERY_SECONDS=str(EVERY))
        with ServedApp(env, Path(tmp) / "serve.log") as app, sync_playwright() as p:
            app.wait_until_ready(timeout=300)
            port = int(next(line.split("port=")[1].split()[0] for line in app.logs().splitlines()
                            if "embedded PostgreSQL started port=" in line))
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(f"{app.url}/?workspace=assistant", wait_until="networkidle")
            page.get_by_text("Conversion in ").first.wait_for(timeout=60_000)     # the first run is done
            waits, after_run = [], []
            with admin(data_dir, port) as conn:
                for n in range(trials):
                    expected = plant_orders(conn) if n == 0 else flip_amenity(conn, n)
                    planted = time.perf_counter()
                    page.get_by_text(expected).first.wait_for(timeout=(EVERY + 30) * 1000)
                    waits.append(time.perf_counter() - planted)
                    stored = conn.execute("SELECT extract(epoch FROM max(first_seen)) FROM app.insights").fetchone()[0]
                    after_run.append(time.time() - float(stored))
                    print(f"  planted anomaly {n + 1} on screen after {waits[-1]:.1f} s, "
                          f"{after_run[-1] * 1000:.0f} ms after the watcher stored it")
            browser.close()
            app.stop()
    print(f"planted anomaly to insight on screen (watcher every {EVERY} s): p50 {statistics.median(waits):.1f} s, "
          f"max {max(waits):.1f} s over {len(waits)} anomalies; from the watcher storing it to the screen: "
          f"p50 {statistics.median(after_run) * 1000:.0f} ms, max {max(after_run) * 1000:.0f} ms")


def main() -> None:
    if "--screen" in sys.argv:
        return to_screen()
    with demo_backend(1.0) as backend:
        run_cost(backend, "the default demo data")
    with demo_backend(200, keep_dir=next((a for a in sys.argv[1:] if not a.startswith("--")), None)) as backend:
        run_cost(backend, "1,000,000 orders")
    to_screen()


if __name__ == "__main__":
    main()
