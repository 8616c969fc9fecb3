"""Cost of a browser session: open N sessions as a browser would (page GET, then the websocket
and the full document pull) against `python serve.py`, and report the time to open one and the
server's RSS growth per live session (all its processes). Panel's published figures for a small Tabulator app on 2
cores: ~250 ms per session open and ~0.7 MB per session.

    python -m tests.bench.sessions [N]
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from tests.bench.common import percentiles, server_rss_mb
from tests.helpers import ServedApp, isolated_env


def main(n: int = 50) -> None:
    import panel as pn
    import panel_material_ui  # noqa: F401

    pn.extension("tabulator")
    from bokeh.client import pull_session

    with tempfile.TemporaryDirectory(prefix="bench-sessions-") as tmp:
        tmp = Path(tmp)
        with ServedApp(isolated_env(tmp, EMBEDDED_DATA_DIR=tmp / "pgdata"), tmp / "serve.log") as app:
            app.wait_until_ready(timeout=300)
            for _ in range(3):                              # warm-up sessions, closed again
                pull_session(url=app.url).close()
            time.sleep(1)
            baseline = server_rss_mb(app.process.pid)
            sessions, opened = [], []
            for _ in range(n):
                started = time.perf_counter()
                sessions.append(pull_session(url=app.url))
                opened.append(time.perf_counter() - started)
            time.sleep(2)
            grown = server_rss_mb(app.process.pid) - baseline
            p = percentiles(opened, 50, 95)
            live = app.get("/metrics").json()["process"]["sessions"]
            print(f"{n} sessions ({live} live on the server): open p50={p['p50']} ms p95={p['p95']} ms; "
                  f"RSS {baseline:.0f} MB -> {baseline + grown:.0f} MB, {grown / n:.2f} MB per session "
                  f"(Panel reference: ~250 ms, ~0.7 MB)")
            for s in sessions:
                s.close()
            app.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
