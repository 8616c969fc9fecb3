"""A fake Databricks workspace: a local HTTP server speaking the REST calls the SDK makes.

The app talks to it through the real `databricks-sdk` (DATABRICKS_HOST=http://127.0.0.1:PORT
and a PAT). Its credential endpoints behave like Lakebase's: each call issues a new random
token with a short expiry *and sets the embedded server's role password to it*, so a stale
token really stops working for new connections.

Faults are injected per path prefix with `fail(prefix, status, times=…)`; every request is
recorded in `calls` for assertions.
"""
from __future__ import annotations

import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import psycopg
from psycopg import sql

PAT = "dapi-fake-workspace-token"


@dataclass
class Call:
    method: str
    path: str
    body: dict | None
    headers: dict


@dataclass
class Fault:
    status: int
    body: dict
    headers: dict = field(default_factory=dict)
    delay: float = 0.0


class FakeWorkspace:
    """Start with `with FakeWorkspace(...) as ws:`; `ws.url` is the DATABRICKS_HOST to use."""

    def __init__(self, *, admin_dsn: str | None = None, role: str | None = None, pg_host: str = "127.0.0.1",
                 instance_name: str = "lakebase-demo", endpoint_name: str = "projects/demo/branches/production/endpoints/primary",
                 user_name: str = "3f1c9a52-0000-4000-8000-00000000abcd", token_ttl: float = 3600.0):
        self.admin_dsn = admin_dsn
        self.role = role
        self.pg_host = pg_host
        self.instance_name = instance_name
        self.endpoint_name = endpoint_name
        self.user_name = user_name
        self.token_ttl = token_ttl
        self.calls: list[Call] = []
        self.tokens_issued: list[str] = []
        self._faults: dict[str, list[Fault]] = {}
        self._lock = threading.Lock()
        self._routes: list[tuple[str, re.Pattern, Callable]] = []
        self._add_routes()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> "FakeWorkspace":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def env(self) -> dict[str, str]:
        """Environment variables that point the SDK at this workspace with a PAT."""
        return {"DATABRICKS_HOST": self.url, "DATABRICKS_TOKEN": PAT, "DATABRICKS_AUTH_TYPE": "pat"}

    # -- test controls --------------------------------------------------------------------

    def fail(self, prefix: str, status: int, *, times: int = 1, message: str = "injected failure",
             error_code: str = "INTERNAL_ERROR", headers: dict | None = None, delay: float = 0.0) -> None:
        with self._lock:
            self._faults.setdefault(prefix, []).extend(
                Fault(status, {"error_code": error_code, "message": message}, headers or {}, delay)
                for _ in range(times))

    def calls_to(self, prefix: str, method: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.path.startswith(prefix) and (method is None or c.method == method)]

    def set_role_password(self, password: str) -> None:
        if not (self.admin_dsn and self.role):
            return
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(self.role), sql.Literal(password)))

    def revoke(self) -> None:
        """Invalidate the current token without issuing a new one (as a revoked credential)."""
        self.set_role_password("revoked-" + secrets.token_urlsafe(16))

    def issue_token(self) -> tuple[str, datetime]:
        token = "lbtok-" + secrets.token_urlsafe(24)
        self.set_role_password(token)
        with self._lock:
            self.tokens_issued.append(token)
        return token, datetime.now(timezone.utc) + timedelta(seconds=self.token_ttl)

    # -- routes ---------------------------------------------------------------------------

    def route(self, method: str, pattern: str):
        def register(fn):
            self._routes.append((method, re.compile(pattern + "$"), fn))
            return fn
        return register

    def _add_routes(self) -> None:
        @self.route("GET", r"/api/2\.0/preview/scim/v2/Me")
        def me(match, body):
            return 200, {"id": "1000001", "userName": self.user_name, "displayName": "App service principal",
                         "active": True, "emails": [{"value": self.user_name, "primary": True}]}

        @self.route("GET", r"/api/2\.0/database/instances/(?P<name>[^/]+)")
        def get_instance(match, body):
            if match["name"] != self.instance_name:
                return 404, {"error_code": "NOT_FOUND", "message": f"Database instance {match['name']} not found"}
            return 200, {"name": self.instance_name, "state": "AVAILABLE", "capacity": "CU_1", "pg_version": "PG_VERSION_16",
                         "uid": "0d6a7c3e-fake", "read_write_dns": self.pg_host, "node_count": 1}

        @self.route("POST", r"/api/2\.0/database/credentials")
        def database_credential(match, body):
            if self.instance_name not in (body or {}).get("instance_names", []):
                return 404, {"error_code": "NOT_FOUND", "message": "unknown instance"}
            token, expires = self.issue_token()
            return 200, {"token": token, "expiration_time": expires.isoformat().replace("+00:00", "Z")}

        @self.route("GET", r"/api/2\.0/postgres/(?P<name>projects/.+/endpoints/[^/]+)")
        def get_endpoint(match, body):
            if match["name"] != self.endpoint_name:
                return 404, {"error_code": "NOT_FOUND", "message": f"Endpoint {match['name']} not found"}
            return 200, {"name": self.endpoint_name,
                         "status": {"current_state": "ACTIVE", "endpoint_type": "ENDPOINT_TYPE_READ_WRITE",
                                    "hosts": {"host": self.pg_host}}}

        @self.route("POST", r"/api/2\.0/postgres/credentials")
        def postgres_credential(match, body):
            if (body or {}).get("endpoint") != self.endpoint_name:
                return 404, {"error_code": "NOT_FOUND", "message": "unknown endpoint"}
            token, expires = self.issue_token()
            return 200, {"token": token, "expire_time": expires.isoformat().replace("+00:00", "Z")}

    # -- HTTP plumbing --------------------------------------------------------------------

    def _dispatch(self, method: str, path: str, body: dict | None, headers: dict) -> tuple[int, dict, dict]:
        with self._lock:
            self.calls.append(Call(method, path, body, headers))
            for prefix, faults in self._faults.items():
                if path.startswith(prefix) and faults:
                    fault = faults.pop(0)
                    break
            else:
                fault = None
        if fault is not None:
            if fault.delay:
                threading.Event().wait(fault.delay)
            return fault.status, fault.body, fault.headers
        if path == "/.well-known/databricks-config":
            return 404, {"error_code": "NOT_FOUND", "message": "no host metadata"}, {}
        if headers.get("authorization") != f"Bearer {PAT}":
            return 401, {"error_code": "UNAUTHENTICATED", "message": "invalid access token"}, {}
        for route_method, pattern, handler in self._routes:
            match = pattern.match(path)
            if route_method == method and match:
                status, payload = handler(match, body)
                return status, payload, {}
        return 404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"No API found for {method} {path}"}, {}

    def _handler_class(self):
        workspace = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw.strip() else None
                path = self.path.split("?", 1)[0]
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, payload, extra = workspace._dispatch(method, path, body, headers)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_PATCH(self) -> None:
                self._serve("PATCH")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

        return Handler
