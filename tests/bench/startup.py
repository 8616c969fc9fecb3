"""Start-up of `python serve.py` with the default settings (APP_PROCESSES=auto: two processes per
CPU) until /health/ready answers 200: a first run (empty data directory: initdb, schema, demo
data) and two later runs (same directory).

    python -m tests.bench.startup
"""
from __future__ import annotations

import re
import signal
import tempfile
from pathlib import Path

from tests.helpers import ServedApp, isolated_env


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        tmp = Path(tmp)
        env = isolated_env(tmp, EMBEDDED_DATA_DIR=tmp / "pgdata")
        env.pop("APP_PROCESSES")            # isolated_env asks for two; the bench measures the default
        for run in ("first run", "later run", "later run"):
            with ServedApp(env, tmp / "serve.log") as app:
                ready = app.wait_until_ready(timeout=300)
                stopped = app.stop(signal.SIGTERM)
                logged = re.search(r" ready url=\S+ startup_s=([\d.]+) .*processes=(\d+)", app.logs())
            startup_s, processes = (float(logged[1]), int(logged[2])) if logged else (float("nan"), 0)
            print(f"{run}: processes={processes} ready after {ready:.2f} s (target "
                  f"{'60' if run == 'first run' else '5'} s; logged startup_s={startup_s:.2f}); "
                  f"SIGTERM to exit {stopped:.2f} s (limit 15 s)", flush=True)


if __name__ == "__main__":
    main()
