"""Orders at scale: 1,000,000 orders (DEMO_SCALE=200) on the embedded server.

- grid pages 1, 50, 1,000 and the last, for every sortable column in both directions, with and
  without filters, as the grid reaches them (from the page before, or from the end), p50/p95 beside
  the same pages read by skipping rows (OFFSET, the way before) — target p95 < 50 ms at any depth
- server RSS per open grid session, with 5,000 and with 1,000,000 orders — must not grow with the table
- single-edit commit (validated, versioned, audited), p50/p95 — target p95 < 20 ms
- bulk status update of 1,000 orders in one transaction — target < 1 s
- CSV export of 100,000 orders through the streaming endpoint, rows per second

    python -m tests.bench.orders [data-dir]     # a data directory is reused between runs
    python -m tests.bench.orders [data-dir] --pages   # the grid's pages only
"""
from __future__ import annotations

import random
import sys
import tempfile
import time
from dataclasses import replace
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


FILTERS = {
    "no filter": (),
    "status in (delivered, shipped)": (("status", ["delivered", "shipped"]),),
    "total > 100": (("total", ">100"),),
    "created since 2026-01-01": (("created_at", ">=2026-01-01"),),
    "customer contains 'an'": (("customer", "an"),),
}
DEPTHS = (1, 50, 1000, "last")


def timed(call):
    started = time.perf_counter()
    result = call()
    return result, time.perf_counter() - started


def skipping(orders, query: PageQuery) -> float:
    """The page read the way it was before seeking: count, then OFFSET from the start."""
    listing = orders.listing
    clauses, bound = listing.conditions(query)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    select = ", ".join(f"{c.sql} AS \"{name}\"" for name, c in listing.columns.items())
    sql = (f"SELECT {select} FROM {listing.source} {where} ORDER BY {listing.order_by(query)} "
           "LIMIT :page_limit OFFSET :page_offset")
    _, seconds = timed(lambda: orders.db.frame("offset_page", sql, {**bound, "page_limit": query.size,
                                                                     "page_offset": (query.page - 1) * query.size}))
    return seconds


def grid_pages(orders, repeats: int = 3) -> None:
    """Each depth reached as the grid reaches it: page 1 and the last directly, 50 and 1,000 by
    'next' from the page before (its bookmark made beforehand, not timed)."""
    sortable = [name for name, column in orders.listing.columns.items() if column.sortable]
    seek = {depth: [] for depth in DEPTHS}
    skip = {depth: [] for depth in DEPTHS}
    worst = []
    for label, filters in FILTERS.items():
        for column in sortable:
            for descending in (False, True):
                query = PageQuery(size=100, sort=((column, descending),), filters=filters)
                first = orders.page(query)
                for depth in DEPTHS:
                    page = first.pages if depth == "last" else depth
                    if page > first.pages:
                        continue
                    before = None if page in (1, first.pages) else orders.page(replace(query, page=page - 1))
                    asked = replace(query, page=page, bookmark=before.bookmark if before else None)
                    for _ in range(repeats):
                        shown, seconds = timed(lambda: orders.page(asked))
                        seek[depth].append(seconds)
                        worst.append((seconds, depth, column, descending, label))
                    assert shown.page == page, (shown.page, page)
                    if descending is False and depth != 1:
                        skip[depth].append(skipping(orders, replace(query, page=page)))
    print(f"grid pages of 100 at 1,000,000 orders, {len(sortable)} sortable columns × both directions × "
          f"{len(FILTERS)} filters ({', '.join(FILTERS)}):")
    for depth in DEPTHS:
        p = percentiles(seek[depth])
        was = percentiles(skip[depth]) if skip[depth] else None
        print(f"  page {depth!s:>5}: seeking p50 {p['p50']:7.2f} ms  p95 {p['p95']:7.2f} ms"
              + (f"   | skipping rows (OFFSET, before) p50 {was['p50']:8.1f} ms  p95 {was['p95']:8.1f} ms  "
                 f"ratio at p95 {was['p95'] / p['p95']:.0f}×" if was else ""))
    every = [s for samples in seek.values() for s in samples]
    p = percentiles(every)
    print(f"  every page: p50 {p['p50']} ms, p95 {p['p95']} ms (target p95 < 50 ms); slowest:")
    for seconds, depth, column, descending, label in sorted(worst, key=lambda w: w[0], reverse=True)[:5]:
        print(f"    {seconds * 1000:6.1f} ms page {depth} by {column} {'desc' if descending else 'asc'}, {label}")


def data_side(backend) -> None:
    orders = Orders(backend.db, backend.tables, EditorPolicy(("*",)))
    total = orders.db.scalar("n", f"SELECT count(*) FROM {backend.tables.orders}")
    print(f"orders in the table: {total:,}")
    grid_pages(orders)
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


def rss_per_session(data_dir: Path, label: str, sessions: int = 20, export_from: int | None = None) -> float:
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
        if export_from is not None:
            export(app, export_from)
        for session in opened:
            session.close()
        app.stop()
        return grown


def export(app, first_id: int) -> None:
    import json
    filters = json.dumps([["status", ["delivered"]], ["order_id", f"<{first_id + 130_000}"]])
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
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    keep = Path(args[0]) if args else Path(tempfile.gettempdir()) / "bench-orders"
    keep.mkdir(parents=True, exist_ok=True)
    random.seed(7)
    large, loaded = backend_for(keep / "large", SCALE)
    print(f"prepared the 1,000,000-order database in {loaded:.0f} s")
    if "--pages" in sys.argv:
        try:
            grid_pages(Orders(large.db, large.tables, EditorPolicy(("*",))))
        finally:
            large.close()
        return
    try:
        data_side(large)
        first_id = large.db.scalar("first", f"SELECT min(order_id) FROM {large.tables.orders}")
    finally:
        large.close()
    small, _ = backend_for(keep / "small", 1)
    small.close()
    rss_per_session(keep / "small", "5,000 orders")
    rss_per_session(keep / "large", "1,000,000 orders", export_from=first_id)


if __name__ == "__main__":
    main()
