"""Start the app: read settings, open the database (embedded if none is configured), serve.

    python serve.py                     # embedded PostgreSQL with demo data, http://localhost:8000
    python serve.py --reset-demo-data   # regenerate the demo data first
    python serve.py --help

On Databricks Apps the same command connects to Lakebase from the injected PG*/DATABRICKS_*
variables. SIGTERM or Ctrl-C stops the server and the embedded database within seconds.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time

log = logging.getLogger("serve")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the Lakebase Panel app.")
    parser.add_argument("--port", type=int, help="port to listen on (default: $DATABRICKS_APP_PORT or 8000)")
    parser.add_argument("--address", help="address to bind (default: $APP_ADDRESS or 0.0.0.0)")
    parser.add_argument("--embedded", action="store_true",
                        help="use the embedded PostgreSQL even if database variables are set")
    parser.add_argument("--data-dir", help="embedded PostgreSQL data directory (default: $EMBEDDED_DATA_DIR)")
    parser.add_argument("--reset-demo-data", action="store_true",
                        help="drop and regenerate the embedded demo data before serving")
    parser.add_argument("--demo-scale", type=float,
                        help="demo data size factor when (re)generating: orders = 5,000 x scale")
    return parser.parse_args(argv)


def _environment(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    overrides = {"DATABRICKS_APP_PORT": args.port, "APP_ADDRESS": args.address,
                 "EMBEDDED_DATA_DIR": args.data_dir, "DEMO_SCALE": args.demo_scale}
    env.update({k: str(v) for k, v in overrides.items() if v is not None})
    return env


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from data.settings import EMBEDDED, SettingsError, load_settings
    try:
        settings = load_settings(_environment(args), force_embedded=args.embedded)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2

    from data.logs import setup_logging
    setup_logging(settings.log_level)
    started = time.monotonic()
    if settings.mode == EMBEDDED:
        print(f"Embedded PostgreSQL data directory: {settings.embedded_data_dir}", flush=True)

    from data.backend import build_vector_index_in_background, open_backend, prepare
    from data.errors import AppError
    try:
        backend = open_backend(settings)
        prepare(backend, reset_demo=args.reset_demo_data, progress=True)
    except AppError as exc:
        log.error("cannot start: %s (%s)", exc, exc.detail)
        print(f"Cannot start: {exc}", file=sys.stderr)
        return 1
    if settings.mode == EMBEDDED:
        build_vector_index_in_background(backend)

    server = _serve(backend, settings)
    log.info("ready url=http://%s:%d startup_s=%.2f mode=%s", "localhost" if settings.app_address == "0.0.0.0"
             else settings.app_address, settings.app_port, time.monotonic() - started, settings.mode)
    print(f"Serving on http://localhost:{settings.app_port} (Ctrl-C to stop)", flush=True)
    try:
        server.io_loop.start()
    finally:
        stopping = time.monotonic()
        backend.close()
        log.info("stopped shutdown_s=%.2f", time.monotonic() - stopping)
    return 0


def _serve(backend, settings):
    import panel as pn

    from dashboard.app import TITLE, AppContext, configure_panel, create_page
    from dashboard.endpoints import live_sessions, routes
    from data.assistant import build_assistant, dashboard_links
    from data.catalog import Catalog
    from data.changes import ChangeFeed
    from data.health import Monitor
    from data.marketplace import Marketplace
    from data.orders import EditorPolicy, Orders

    configure_panel(settings.num_threads)
    monitor = Monitor(backend)
    feed = ChangeFeed(backend.db).start()
    orders = Orders(backend.db, backend.tables, EditorPolicy(settings.order_editors), timezone=settings.timezone,
                    feed=feed)
    holder: dict = {}
    context = AppContext(monitor=monitor, marketplace=Marketplace(backend.db, backend.tables), orders=orders,
                         catalog=Catalog(backend.db, backend.tables),
                         assistant=build_assistant(settings, backend), feed=feed,
                         dashboard_links=dashboard_links(settings),
                         session_count=lambda: live_sessions(holder["server"]._tornado))

    def page():
        return create_page(context)

    server = pn.serve({"/": page}, port=settings.app_port, address=settings.app_address,
                      websocket_origin=list(settings.websocket_origins), show=False, start=False,
                      verbose=False, title=TITLE, extra_patterns=routes(monitor, orders, context.marketplace))
    holder["server"] = server
    server.start()
    server.feed = feed

    def stop(signum, _frame):
        log.info("signal %s received; shutting down", signal.Signals(signum).name)
        server.io_loop.add_callback_from_signal(_shutdown, server)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return server


def _shutdown(server) -> None:
    server.feed.stop()
    server.stop(wait=False)
    server.io_loop.stop()


if __name__ == "__main__":
    sys.exit(main())
