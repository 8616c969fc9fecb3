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
    parser.add_argument("--processes", type=int, help="server processes (default: $APP_PROCESSES, auto)")
    return parser.parse_args(argv)


def _environment(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    overrides = {"DATABRICKS_APP_PORT": args.port, "APP_ADDRESS": args.address,
                 "EMBEDDED_DATA_DIR": args.data_dir, "DEMO_SCALE": args.demo_scale, "APP_PROCESSES": args.processes}
    env.update({k: str(v) for k, v in overrides.items() if v is not None})
    return env


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from data.settings import LAKEBASE, SettingsError, load_settings
    try:
        environment = _environment(args)
        settings = load_settings(environment, force_embedded=args.embedded)
    except SettingsError as exc:
        print(exc, file=sys.stderr)
        return 2

    from data.logs import setup_logging
    setup_logging(settings.log_level)
    started = time.monotonic()
    from server.workers import process_count, start_zygote, stop_zygote
    processes = process_count(settings.processes)
    # Several processes: the workers are forked from a zygote, which imports what they need (seconds
    # of CPU, once) on the other core while this one starts and prepares the database. The Databricks
    # SDK (imported when a client is made) is preloaded only where the workers will make one.
    databricks = ("databricks.sdk",) if settings.databricks_available or settings.mode == LAKEBASE else ()
    zygote = start_zygote(databricks) if processes > 1 else None
    try:
        return _supervise(args, settings, environment, processes, zygote, started)
    finally:
        stop_zygote()


def _supervise(args: argparse.Namespace, settings, environment: dict[str, str], processes: int, zygote,
               started: float) -> int:
    from data.settings import EMBEDDED
    if settings.mode == EMBEDDED:
        print(f"Embedded PostgreSQL data directory: {settings.embedded_data_dir}", flush=True)

    from data.backend import build_vector_index_in_background, open_backend, prepare
    from data.errors import AppError
    backend = None
    try:
        backend = open_backend(settings)
        prepare(backend, reset_demo=args.reset_demo_data, progress=True)
    except AppError as exc:
        log.error("cannot start: %s (%s)", exc, exc.detail)
        print(f"Cannot start: {exc}", file=sys.stderr)
        if backend is not None:
            backend.close()             # and the embedded server it started
        return 1
    if settings.mode == EMBEDDED:
        build_vector_index_in_background(backend)

    def ready() -> None:
        log.info("ready url=http://%s:%d startup_s=%.2f mode=%s processes=%d", "localhost"
                 if settings.app_address == "0.0.0.0" else settings.app_address, settings.app_port,
                 time.monotonic() - started, settings.mode, processes)
        print(f"Serving on http://localhost:{settings.app_port} (Ctrl-C to stop)", flush=True)

    try:
        if processes > 1:
            import asyncio
            import functools

            from server.workers import serve_with_workers
            worker = functools.partial(_worker_process, embedded=args.embedded)
            asyncio.run(serve_with_workers(settings, environment, worker, ready, zygote))
        else:
            server = _serve(backend, settings)
            ready()
            server.io_loop.start()
    finally:
        stopping = time.monotonic()
        backend.close()
        log.info("stopped shutdown_s=%.2f", time.monotonic() - stopping)
    return 0


def _worker_process(port: int, embedded: bool = False) -> int:
    """One of several server processes, forked from the zygote with its environment (APP_WORKER,
    APP_WORKERS and the supervisor's) in os.environ."""
    from data.logs import setup_logging
    from data.settings import load_settings
    settings = load_settings(os.environ, force_embedded=embedded)
    setup_logging(settings.log_level, worker=os.environ.get("APP_WORKER"))
    from dashboard import upstream_fixes
    upstream_fixes.bokeh_logs_through_ours()     # the zygote imported Bokeh before our logging existed
    return _worker(settings, port)


def _worker(settings, port: int) -> int:
    """One of several server processes: the database is ready; serve on a loopback port."""
    from data.backend import open_backend
    backend = open_backend(settings, attach=True)
    server = _serve(backend, settings, port=port, address="127.0.0.1")
    try:
        server.io_loop.start()
    finally:
        backend.close()
    return 0


def _serve(backend, settings, *, port: int | None = None, address: str | None = None):
    import panel as pn

    from dashboard import upstream_fixes
    from dashboard.app import TITLE, AppContext, configure_panel, create_page
    from server.endpoints import live_sessions, routes
    from server.security import origin, security_headers
    from data.assistant import build_assistant, dashboard_links
    from data.assistant.costs import AssistantCosts
    from data.assistant.history import History
    from data.catalog import Catalog
    from data.changes import CHANNEL as ORDERS_CHANNEL, listen
    from data.health import Monitor
    from data.assistant.verified import VerifiedQuestions
    from data.editors import EditorPolicy
    from data.insights import CHANNEL as INSIGHTS_CHANNEL, Insights, Thresholds
    from data.periodic import Periodic
    from data.marketplace import Marketplace
    from data.orders import Orders
    from data.presence import CHANNEL as PRESENCE_CHANNEL, Presence
    from data.processes import BEAT_EVERY, Processes
    from data.refresh import CHANNEL as REFRESH_CHANNEL, Refresh

    configure_panel(settings.num_threads)
    monitor = Monitor(backend)
    # One connection LISTENs for the whole process: orders, insights, Refresh data, presence.
    feed, insights_feed, refresh_feed, presence_feed = listen(backend.db, ORDERS_CHANNEL, INSIGHTS_CHANNEL,
                                                              REFRESH_CHANNEL, PRESENCE_CHANNEL)
    insights = Insights(backend.db, backend.tables, thresholds=Thresholds.from_settings(settings),
                        every=settings.insights_every or 300, timezone=settings.timezone, feed=insights_feed)
    background = []                 # threads to stop at shutdown, besides the listener (`feed` stops it)
    if settings.insights_every:
        background.append(Periodic(insights.run_if_due, every=settings.insights_every,
                                   first_after=min(5.0, settings.insights_every), name="insight-watcher").start())
    assistant = build_assistant(settings, backend)
    verified = VerifiedQuestions(backend.db, backend.tables, editors=EditorPolicy(settings.assistant_editors))
    if assistant.genie is not None:        # once a day for the whole app; each process asks hourly
        background.append(Periodic(lambda: verified.check(assistant.genie, force=False), every=3600,
                                   first_after=120, name="verified-check").start())
    orders = Orders(backend.db, backend.tables, EditorPolicy(settings.order_editors), timezone=settings.timezone,
                    feed=feed)
    # Reads that may be a moment stale go to the replica, if there is one and it keeps up.
    marketplace, catalog = Marketplace(backend.reads, backend.tables), Catalog(backend.reads, backend.tables)
    if backend.reads.replica is not None:
        background.append(Periodic(backend.reads.check, every=5.0, first_after=5.0, name="replica-check").start())
    refresh = Refresh(backend.db, local=[marketplace.clear_cache, catalog.clear], shared=[assistant.clear_cache],
                      feed=refresh_feed)
    processes = Processes(backend.db, backend.tables)
    presence = Presence(backend.db, backend.tables, feed=presence_feed)
    holder: dict = {}
    context = AppContext(monitor=monitor, marketplace=marketplace, orders=orders, catalog=catalog, refresh=refresh,
                         assistant=assistant, feed=feed, insights=insights, verified=verified,
                         history=History(backend.db, backend.tables), processes=processes, presence=presence,
                         costs=AssistantCosts(backend.db, backend.tables, timezone=settings.timezone,
                                              budget_per_minute=settings.genie_per_minute),
                         dashboard_links=dashboard_links(settings),
                         session_count=lambda: live_sessions(holder["server"]._tornado))

    def page():
        return create_page(context)

    server = pn.serve({"/": page}, port=port or settings.app_port, address=address or settings.app_address,
                      websocket_origin=list(settings.websocket_origins), show=False, start=False,
                      verbose=False, title=TITLE, extra_patterns=routes(monitor, orders, context.marketplace))
    holder["server"] = server

    def heartbeat() -> None:
        processes.beat(monitor.own_figures(sessions=context.session_count()))
        presence.renew()
    background.append(Periodic(heartbeat, every=BEAT_EVERY, first_after=1.0, name="heartbeat").start())
    embed = context.dashboard_links[0] if context.dashboard_links else None
    server._tornado.transforms.append(security_headers(tuple(filter(None, [origin(embed)]))))
    upstream_fixes.quiet_writes_to_closed_tabs(server.io_loop.asyncio_loop)
    server.start()
    server.feeds = [feed, *background]      # what _shutdown stops

    def stop(signum, _frame):
        log.info("signal %s received; shutting down", signal.Signals(signum).name)
        server.io_loop.add_callback_from_signal(_shutdown, server)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return server


def _shutdown(server) -> None:
    for running in server.feeds:
        running.stop()
    server.stop(wait=False)
    server.io_loop.stop()


if __name__ == "__main__":
    sys.exit(main())
