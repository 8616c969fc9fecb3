"""Orders at scale: 1,000,000 orders (DEMO_SCALE=200) on the embedded server.

- page fetch (one grid page of 100 with a sort and filters, in SQL), p50/p95 — target p95 < 50 ms
- server RSS per open grid session, with 5,000 and with 1,000,000 orders — must not grow with the table
- single-edit commit (validated, versioned, audited), p50/p95 — target p95 < 20 ms
- bulk status update of 1,000 orders in one transaction — target < 1 s
- CSV export of 100,000 orders through the streaming endpoint, rows per second

    python -m tests.bench.orders [data-dir]     # a data directory is reused between runs
"""
from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

import requests

from data.backend import open_backend, prepare
from data.order_rules import Edit
from data.orders import EditorPolicy, Orders
from data.paging import PageQuery
from data.settings import load_settings
from tests.bench.common import percentiles, server_rss_mb
from tests.helpers import ServedApp, isolated_env

SCALE = 200


def backend_for(data_dir: Path, scale: float):
    settings = load_settings({"EMBEDDED_DATA_DIR": str(data_dir), "DEMO_SCALE": str(scale)})
    backend = open_backend(settings)
    started = time.monotonic()
    prepare(backend, progress=True)
    return backend, time.monotonic() - started


def data_side(backend) -> None:
    orders = Orders(backend.db, backend.tables, EditorPolicy(("*",)))
    total = orders.db.scalar("n", f"SELECT count(*) FROM {backend.tables.orders}")
    print(f"orders in the table: {total:,}")
    queries = [
        PageQuery(page=random.randint(1, 50), size=100, sort=(("total", True),),
                  filters=(("status", ["delivered", "shipped"]), ("total", ">100"))),
        PageQuery(page=random.randint(1, 50), size=100, sort=(("created_at", True),),
                  filters=(("created_at", ">2026-01-01"),)),
        PageQuery(page=random.randint(1, 20), size=100, sort=(("customer", False),),
                  filters=(("status", ["pending"]),)),
    ]
    for query in queries:
        orders.page(query)                                     # warm
        samples = []
        for _ in range(40):
            query = PageQuery(random.randint(1, 50), query.size, query.sort, query.filters)
            started = time.perf_counter()
            page = orders.page(query)
            samples.append(time.perf_counter() - started)
        p = percentiles(samples)
        print(f"page fetch sort={query.sort[0]} filters={dict(query.filters)}: p50 {p['p50']} ms, "
              f"p95 {p['p95']} ms (target p95 < 50 ms); {page.total:,}{'+ (estimated)' if page.total_is_estimate else ''} match")
    samples = []
    for _ in range(20):
        started = time.perf_counter()
        orders.page(PageQuery(size=100), search=random.choice(["garcia", "maria", "khan", "lopez"]))
        samples.append(time.perf_counter() - started)
    p = percentiles(samples)
    print(f"page fetch with free-text customer search: p50 {p['p50']} ms, p95 {p['p95']} ms")

    ids = [r["order_id"] for r in orders.db.rows("ids", f"SELECT order_id, version FROM {backend.tables.orders} "
                                                         "ORDER BY random() LIMIT 300")]
    samples = []
    for order_id in ids:
        seen = orders.db.scalar("v", f"SELECT notes FROM {backend.tables.orders} WHERE order_id = :i", {"i": order_id})
        started = time.perf_counter()
        orders.save("bench@example.com", order_id, [Edit("notes", seen, f"bench {time.time()}")])
        samples.append(time.perf_counter() - started)
    p = percentiles(samples)
    print(f"single-edit commit (lock, compare with what was seen, validate, update, audit): p50 {p['p50']} ms, "
          f"p95 {p['p95']} ms (target p95 < 20 ms)")

    rows = orders.db.rows("bulk", f"SELECT order_id, status FROM {backend.tables.orders} WHERE status = 'delivered' "
                                  "ORDER BY random() LIMIT 1000")
    started = time.perf_counter()
    orders.set_status("bench@example.com", [(r["order_id"], r["status"]) for r in rows], "returned")
    print(f"bulk status update of 1,000 orders (one transaction, audited): {time.perf_counter() - started:.3f} s "
          "(target < 1 s)")


def rss_per_session(data_dir: Path, label: str, sessions: int = 20) -> float:
    import panel as pn
    import panel_material_ui  # noqa: F401
    from bokeh.client import pull_session

    pn.extension("tabulator")
    with tempfile.TemporaryDirectory() as tmp, \
            ServedApp(isolated_env(Path(tmp), EMBEDDED_DATA_DIR=data_dir), Path(tmp) / "serve.log") as app:
        app.wait_until_ready(timeout=600)
        for _ in range(3):
            pull_session(url=app.url, arguments={"workspace": "orders"}).close()
        time.sleep(1)
        before = server_rss_mb(app.process.pid)
        opened = [pull_session(url=app.url, arguments={"workspace": "orders"}) for _ in range(sessions)]
        time.sleep(1)
        grown = (server_rss_mb(app.process.pid) - before) / sessions
        print(f"RSS per open grid session ({label}): {grown:.2f} MB")
        if "1,000,000" in label:
            export(app)
        for session in opened:
            session.close()
        app.stop()
        return grown


def export(app) -> None:
    import json
    filters = json.dumps([["status", ["delivered"]], ["order_id", "<=130000"]])
    started = time.perf_counter()
    with requests.get(f"{app.url}/orders/export.csv", params={"filters": filters}, stream=True, timeout=600) as r:
        first = None
        lines = 0
        for chunk in r.iter_content(chunk_size=1 << 16):
            first = first or time.perf_counter() - started
            lines += chunk.count(b"\n")
    elapsed = time.perf_counter() - started
    rows = lines - 1
    print(f"CSV export through the streaming endpoint: {rows:,} rows in {elapsed:.2f} s = {rows / elapsed:,.0f} rows/s; "
          f"first bytes after {first * 1000:.0f} ms")


def main() -> None:
    keep = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.gettempdir()) / "bench-orders"
    keep.mkdir(parents=True, exist_ok=True)
    random.seed(7)
    small, _ = backend_for(keep / "small", 1)
    small.close()
    large, loaded = backend_for(keep / "large", SCALE)
    print(f"prepared the 1,000,000-order database in {loaded:.0f} s")
    try:
        data_side(large)
    finally:
        large.close()
    rss_per_session(keep / "small", "5,000 orders")
    rss_per_session(keep / "large", "1,000,000 orders")


if __name__ == "__main__":
    main()
