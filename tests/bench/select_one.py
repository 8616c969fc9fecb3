"""`SELECT 1` through the bare SQLAlchemy pool vs through the app's instrumented, token-aware
path (named query, timing, metrics, retry wrapper, error mapping), on the embedded server.

    python -m tests.bench.select_one
"""
from __future__ import annotations

import time

from tests.bench.common import demo_backend, describe

N = 5000


def timed(fn, n: int = N) -> list[float]:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    with demo_backend(scale=0.01) as backend:
        engine = backend.db.engine

        def bare():
            with engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1").scalar()

        def instrumented():
            backend.db.scalar("select_one", "SELECT 1")

        for fn in (bare, instrumented):  # warm both paths
            timed(fn, 200)
        bare_s, ours_s = timed(bare), timed(instrumented)
        print(describe("bare pool", bare_s))
        print(describe("instrumented path", ours_s))
        print(f"ratio instrumented/bare: p50 {sorted(ours_s)[N // 2] / sorted(bare_s)[N // 2]:.2f}x, "
              f"mean {sum(ours_s) / sum(bare_s):.2f}x")


if __name__ == "__main__":
    main()
