"""Spreading sessions over several server processes behind one port.

One Python process runs Panel's callbacks on one core at a time, so the app serves from several
worker processes. A Bokeh session lives in the process that built it, and a browser reaches it
twice: the page request builds it, the websocket then talks to it. Plain load balancing sends the
two to different processes (the second builds a second session whose models the page does not
know), so this balancer routes by session: a page request gets a fresh session id (Bokeh takes
it from the `Bokeh-Session-Id` header) chosen to hash to a live worker, and the websocket, whose
token carries the id, goes to the same one. Everything else (assets, /health, /api) goes to the
workers in turn; /metrics gathers every worker's figures.

Only request heads are parsed; bodies and websocket frames are relayed as bytes. Each plain
request gets its own upstream connection (`Connection: close`), so no request is ever answered by
a worker the router did not choose.
"""
from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import logging
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from bokeh.util.token import generate_session_id, get_session_id
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from data.health import combine_snapshots

log = logging.getLogger(__name__)

HEAD_LIMIT = 64 * 1024          # bytes of request line and headers accepted
HEAD_TIMEOUT = 30               # seconds a client may take to send them
APP_PATHS = ("/",)              # where a page request builds a session


@dataclass
class Worker:
    host: str
    port: int
    alive: bool = False


@dataclass
class Request:
    method: str
    target: str
    version: str
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def parse(cls, head: bytes) -> "Request":
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if ":" in line]
        return cls(method, target, version, headers)

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def arguments(self) -> dict[str, list[str]]:
        return parse_qs(self.target.split("?", 1)[1]) if "?" in self.target else {}

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def with_header(self, name: str, value: str) -> "Request":
        headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()] + [(name, value)]
        return Request(self.method, self.target, self.version, headers)

    def encode(self) -> bytes:
        lines = [f"{self.method} {self.target} {self.version}", *(f"{k}: {v}" for k, v in self.headers)]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    @property
    def session_id(self) -> str | None:
        """The Bokeh session this request belongs to, if it names one."""
        arguments = self.arguments
        if "bokeh-session-id" in arguments:
            return arguments["bokeh-session-id"][0]
        token = (arguments.get("bokeh-token") or [None])[0]
        protocols = [p.strip() for p in (self.header("Sec-WebSocket-Protocol") or "").split(",")]
        if token is None and len(protocols) == 2 and protocols[0] == "bokeh":
            token = protocols[1]
        if token is not None:
            try:
                return get_session_id(token)
            except Exception:  # a malformed token: the worker refuses it
                return None
        return self.header("Bokeh-Session-Id")


def worker_index(session_id: str, workers: int) -> int:
    """Which of `workers` worker processes owns a session, from its id alone."""
    return int.from_bytes(hashlib.sha256(session_id.encode()).digest()[:8], "big") % workers


class Balancer:
    def __init__(self, workers: list[Worker]):
        self.workers = workers
        self._turn = itertools.cycle(range(len(workers)))
        self.server: asyncio.AbstractServer | None = None
        self.routed = [0] * len(workers)
        self.started_at = time.time()
        # Connection handlers, held here: asyncio keeps only weak references to tasks, and a handler
        # waiting on a socket the browser has just closed could be collected mid-wait ("Task was
        # destroyed but it is pending").
        self._connections: set[asyncio.Task] = set()

    # -- routing ----------------------------------------------------------------------------

    def owner(self, session_id: str) -> Worker:
        """The worker a session lives on: the same for the page request and every websocket."""
        return self.workers[worker_index(session_id, len(self.workers))]

    def new_session_id(self) -> str:
        """A fresh session id owned by a live worker (ids are random, so a few tries suffice)."""
        for _ in range(64):
            session_id = generate_session_id()
            if self.owner(session_id).alive:
                return session_id
        raise ConnectionError("no worker is running")

    def next_worker(self) -> Worker:
        for _ in range(len(self.workers)):
            worker = self.workers[next(self._turn)]
            if worker.alive:
                return worker
        raise ConnectionError("no worker is running")

    def route(self, request: Request) -> tuple[Worker, Request]:
        session_id = request.session_id
        if session_id is not None:
            return self.owner(session_id), request
        if request.method == "GET" and request.path in APP_PATHS:
            session_id = self.new_session_id()
            return self.owner(session_id), request.with_header("Bokeh-Session-Id", session_id)
        return self.next_worker(), request

    # -- serving ----------------------------------------------------------------------------

    async def start(self, address: str, port: int) -> None:
        self.server = await asyncio.start_server(self._handle, address, port, limit=HEAD_LIMIT, backlog=1024)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections.add(task)
        upstream_writer = None
        try:
            head = await asyncio.wait_for(client_reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
            request = Request.parse(head)
            if request.method == "GET" and request.path == "/metrics":
                await self._metrics(client_writer)
                return
            worker, request = self.route(request)
            self.routed[self.workers.index(worker)] += 1
            upgrade = (request.header("Upgrade") or "").lower() == "websocket"
            if not upgrade:
                request = request.with_header("Connection", "close")
            upstream_reader, upstream_writer = await asyncio.open_connection(worker.host, worker.port)
            upstream_writer.write(request.encode())
            await _relay(client_reader, client_writer, upstream_reader, upstream_writer, both=upgrade)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ValueError):
            await _reply(client_writer, 400, {"error": "malformed request"})
        except (ConnectionError, OSError) as exc:
            log.warning("balancer could not reach a worker: %s", exc)
            await _reply(client_writer, 503, {"error": "the app is restarting; try again in a few seconds"})
        finally:
            for writer in (client_writer, upstream_writer):
                if writer is not None:
                    writer.close()
            self._connections.discard(task)

    async def _metrics(self, writer: asyncio.StreamWriter) -> None:
        """Every worker's /metrics, combined into the shape one process gives."""
        snapshots = await asyncio.gather(*(get_json(w, "/metrics") for w in self.workers if w.alive),
                                         return_exceptions=True)
        combined = combine_snapshots([s for s in snapshots if isinstance(s, dict)], processes=len(self.workers),
                                     started_at=self.started_at)
        combined["process"]["requests_routed"] = list(self.routed)
        await _reply(writer, 200, combined)


async def _relay(client_reader, client_writer, upstream_reader, upstream_writer, *, both: bool) -> None:
    """Copy bytes both ways. A plain request ends when the worker has answered; a websocket when
    either side closes."""
    upward = asyncio.ensure_future(_pipe(client_reader, upstream_writer))
    downward = asyncio.ensure_future(_pipe(upstream_reader, client_writer))
    try:
        if both:
            await asyncio.wait({upward, downward}, return_when=asyncio.FIRST_COMPLETED)
        else:
            await downward
    finally:
        for task in (upward, downward):
            task.cancel()
        # Let both finish their cancellation here, while they are still referenced; left pending,
        # one could be collected when the browser closed the tab.
        await asyncio.gather(upward, downward, return_exceptions=True)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass


async def _reply(writer: asyncio.StreamWriter, status: int, payload: dict) -> None:
    body = json.dumps(payload).encode()
    reason = {200: "OK", 400: "Bad Request", 503: "Service Unavailable"}[status]
    head = (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    try:
        writer.write(head.encode() + body)
        await writer.drain()
    except (ConnectionError, OSError):
        pass


async def get_json(worker: Worker, path: str, timeout: float = 10) -> dict:
    """A worker's JSON endpoint, through Tornado's client (the workers are Bokeh's Tornado servers).
    Any failure to answer 200 is a ConnectionError."""
    try:
        response = await AsyncHTTPClient().fetch(f"http://{worker.host}:{worker.port}{path}",
                                                 connect_timeout=timeout, request_timeout=timeout)
    except HTTPClientError as exc:
        raise ConnectionError(f"{path} on port {worker.port}: {exc}") from exc
    return json.loads(response.body)
