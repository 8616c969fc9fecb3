"""What a result of a few huge values costs the server: the assistant's SQL guard against a plain fetch.

The query is one the guard lets through (string_agg over a cross join): five rows of about
`--megabytes` MB each. The guard leaves values over 100 KB empty and stops at 10 MB, in
PostgreSQL, so the huge values never cross the wire; the baseline fetches the same rows with
plain psycopg, as the app did before the byte caps. We report the process's peak RSS growth and
the time for each.

    python -m tests.bench.guard_memory [--megabytes 100]
"""
from __future__ import annotations

import argparse
import threading
import time
from contextlib import contextmanager

import psutil
import psycopg

from data.assistant.guard import SqlGuard
from tests.bench.common import demo_backend

ROWS = 5


def huge_rows_sql(copies: int) -> str:
    return ("SELECT x.n AS part, string_agg(o.shipping_address, ' ') AS blob FROM retail360.orders o, "
            f"(SELECT row_number() OVER () % {ROWS} AS n FROM retail360.order_items LIMIT {copies * ROWS}) x GROUP BY x.n")


@contextmanager
def peak_rss_growth():
    """Yields a dict that holds, on exit, the peak RSS growth in MB while the block ran."""
    process, result, done = psutil.Process(), {}, threading.Event()
    start = peak = process.memory_info().rss

    def sample():
        nonlocal peak
        while not done.wait(0.005):
            peak = max(peak, process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    try:
        yield result
    finally:
        done.set()
        sampler.join()
        result.update(mb=(max(peak, process.memory_info().rss) - start) / 1e6, seconds=time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--megabytes", type=int, default=100, help="size of each of the five values")
    args = parser.parse_args()
    with demo_backend() as backend:
        db, tables = backend.db, backend.tables
        address_bytes = db.scalar("bench.address_bytes",
                                  "SELECT sum(octet_length(shipping_address) + 1) FROM retail360.orders")
        sql = huge_rows_sql(max(1, int(args.megabytes * 1e6 / address_bytes)))
        guard = SqlGuard(db, tables, timeout_ms=120_000)
        with peak_rss_growth() as guarded:
            result = guard.run(sql)
        print(f"guarded: {len(result.frame)} rows, {result.note!r}; peak RSS +{guarded['mb']:.0f} MB "
              f"in {guarded['seconds']:.1f} s")
        with psycopg.connect(backend.embedded.admin_dsn(backend.settings.pg_database)) as conn:
            with peak_rss_growth() as plain:
                rows = conn.execute(sql).fetchall()
            fetched = sum(len(blob) for _, blob in rows) / 1e6
            del rows
        print(f"plain fetch: {ROWS} rows, {fetched:.0f} MB of values; peak RSS +{plain['mb']:.0f} MB "
              f"in {plain['seconds']:.1f} s")
        print(f"ratio, peak RSS growth plain / guarded (guarded counted as at least 1 MB): "
              f"{plain['mb'] / max(guarded['mb'], 1):.0f}x")


if __name__ == "__main__":
    main()
