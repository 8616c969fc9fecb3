"""Start-up of `python serve.py` until /health/ready answers 200: first run (empty data
directory: initdb, schema, demo data) and a later run (same directory).

    python -m tests.bench.startup
"""
from __future__ import annotations

import signal
import tempfile
from pathlib import Path

from tests.helpers import ServedApp, isolated_env


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        tmp = Path(tmp)
        env = isolated_env(tmp, EMBEDDED_DATA_DIR=tmp / "pgdata")
        for run in ("first run", "later run", "later run"):
            with ServedApp(env, tmp / "serve.log") as app:
                ready = app.wait_until_ready(timeout=300)
                stopped = app.stop(signal.SIGTERM)
            print(f"{run}: ready after {ready:.2f} s (target {'60' if run == 'first run' else '5'} s); "
                  f"SIGTERM to exit {stopped:.2f} s (limit 15 s)")


if __name__ == "__main__":
    main()
