"""HTTP endpoints served beside the app: /health, /health/ready and /metrics (JSON).

Probes run in a worker thread so a slow database never blocks the server's event loop.
Nothing here echoes request data, settings or the environment.
"""
from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime

from tornado.ioloop import IOLoop

from data.api import MarketplaceApi
from data.errors import AppError, Category
from data.health import READY_WITHIN, Monitor
from data.marketplace import Marketplace
from data.orders import Orders, csv_lines

from .api import api_routes
from .http import JSONHandler

log = logging.getLogger(__name__)


def live_sessions(tornado_app) -> int:
    """Open Bokeh sessions across every app the server hosts."""
    return sum(len(list(ctx.sessions)) for ctx in tornado_app.applications.values())


class MonitorHandler(JSONHandler):
    def initialize(self, monitor: Monitor | None = None) -> None:
        self.monitor = monitor


class HealthHandler(MonitorHandler):
    """Alive: the process answers HTTP."""

    def get(self) -> None:
        self.reply(200, {"status": "alive"})


class ReadyHandler(MonitorHandler):
    """Ready: the database answered a query just now. Answers within READY_WITHIN seconds whatever
    the database does, with the reason when it is not ready."""

    async def get(self) -> None:
        try:
            probe = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(self.monitor.shared_probe())),
                                           READY_WITHIN)
        except asyncio.TimeoutError:
            self.reply(503, {"status": "unavailable", "category": "timeout",
                             "reason": f"The database did not answer within {READY_WITHIN:g} s (starting, or a "
                                       f"credential being renewed); {self.monitor.waiting_for()}"})
            return
        if probe.ok:
            self.reply(200, {"status": "ready", "database": probe.as_dict()})
        else:
            self.reply(503, {"status": "unavailable", "reason": probe.reason, "category": probe.category})


class MetricsHandler(MonitorHandler):
    async def get(self) -> None:
        sessions = live_sessions(self.application)
        snapshot = await IOLoop.current().run_in_executor(None, lambda: self.monitor.snapshot(sessions=sessions))
        self.reply(200, snapshot)


class OrdersExportHandler(JSONHandler):
    """Every order matching the grid's search and filters as CSV, streamed in chunks as the
    server-side cursor yields them (the whole file is never held in memory). The search and the
    filters are checked, and the first chunk read, before the status line goes out, so a bad
    request is a 400 naming the parameter and a database problem a 503, never a 200 with no rows."""

    def initialize(self, orders: Orders) -> None:
        self.orders = orders

    async def get(self) -> None:
        # Raw values: Tornado's get_argument would quietly turn control characters into spaces,
        # and the one rule for typed text (data.paging.typed_text) should say so instead.
        search, filters_text = (self.request.query_arguments.get(name, [default])[-1].decode("utf-8", "replace")
                                for name, default in (("search", b""), ("filters", b"[]")))
        try:
            pairs = json.loads(filters_text)
            if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
                raise ValueError
            filters = tuple((str(name), value) for name, value in pairs)
        except ValueError:
            self.reply(400, {"error": "filters must be a JSON list of [column, value] pairs", "parameter": "filters"})
            return
        loop = IOLoop.current()
        chunks = csv_lines(self.orders.export_rows(search, filters))
        try:
            await loop.run_in_executor(None, self.orders.check_export, search, filters)
            first = await loop.run_in_executor(None, next, chunks, None)
        except AppError as exc:
            status = 400 if exc.category is Category.VALIDATION else 503
            self.reply(status, {"error": exc.message, "parameter": getattr(exc, "parameter", None),
                                "category": exc.category.value})
            return
        stamp = datetime.now().strftime("%Y%m%d-%H%M")
        self.set_header("Content-Type", "text/csv; charset=utf-8")
        self.set_header("Content-Disposition", f'attachment; filename="orders-{stamp}.csv"')
        self.set_header("Cache-Control", "no-store")
        try:
            chunk = first
            while chunk is not None:
                self.write(chunk)
                await self.flush()
                chunk = await loop.run_in_executor(None, next, chunks, None)
        except Exception:  # the status line is gone already: log and end the response
            log.exception("orders export failed part way")
        self.finish()


def routes(monitor: Monitor, orders: Orders | None = None, marketplace: Marketplace | None = None) -> list[tuple]:
    patterns = [(r"/health", HealthHandler), (r"/health/ready", ReadyHandler, {"monitor": monitor}),
                (r"/metrics", MetricsHandler, {"monitor": monitor})]
    if orders is not None:
        patterns.append((r"/orders/export\.csv", OrdersExportHandler, {"orders": orders}))
    if marketplace is not None:
        patterns += api_routes(MarketplaceApi(marketplace))
    return patterns
