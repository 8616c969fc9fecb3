"""HTTP endpoints served beside the app: /health, /health/ready and /metrics (JSON).

Probes run in a worker thread so a slow database never blocks the server's event loop.
Nothing here echoes request data, settings or the environment.
"""
from __future__ import annotations

import json

from tornado.ioloop import IOLoop
from tornado.web import RequestHandler

from data.health import Monitor


def live_sessions(tornado_app) -> int:
    """Open Bokeh sessions across every app the server hosts."""
    return sum(len(list(ctx.sessions)) for ctx in tornado_app.applications.values())


class _JSONHandler(RequestHandler):
    def initialize(self, monitor: Monitor | None = None) -> None:
        self.monitor = monitor

    def reply(self, status: int, payload: dict) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(payload))


class HealthHandler(_JSONHandler):
    """Alive: the process answers HTTP."""

    def get(self) -> None:
        self.reply(200, {"status": "alive"})


class ReadyHandler(_JSONHandler):
    """Ready: the database answered a query just now."""

    async def get(self) -> None:
        probe = await IOLoop.current().run_in_executor(None, self.monitor.probe)
        if probe.ok:
            self.reply(200, {"status": "ready", "database": probe.as_dict()})
        else:
            self.reply(503, {"status": "unavailable", "reason": probe.reason, "category": probe.category})


class MetricsHandler(_JSONHandler):
    async def get(self) -> None:
        sessions = live_sessions(self.application)
        snapshot = await IOLoop.current().run_in_executor(None, lambda: self.monitor.snapshot(sessions=sessions))
        self.reply(200, snapshot)


def routes(monitor: Monitor) -> list[tuple]:
    return [(r"/health", HealthHandler), (r"/health/ready", ReadyHandler, {"monitor": monitor}),
            (r"/metrics", MetricsHandler, {"monitor": monitor})]
