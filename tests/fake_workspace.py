"""A fake Databricks workspace: a local HTTP server speaking the REST calls the SDK makes.

The app talks to it through the real `databricks-sdk` (DATABRICKS_HOST=http://127.0.0.1:PORT
and a PAT). Its credential endpoints behave like Lakebase's: each call issues a new random
token with a short expiry *and sets the embedded server's role password to it*, so a stale
token really stops working for new connections. With a `radius.TokenCheck`, every token issued
and not yet expired works, as on Lakebase, so several processes or instances can hold their own.

Faults are injected per path prefix with `fail(prefix, status, times=…)`; every request is
recorded in `calls` for assertions.
"""
from __future__ import annotations

import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

import psycopg
from psycopg import sql

PAT = "dapi-fake-workspace-token"
SPACE_ID = "01f0fakegeniespace"
WAREHOUSE_ID = "abcdef0123456789"
ENDPOINT = "databricks-claude-sonnet-4-5"
DEFAULT_SQL = ("SELECT city, total_viewers, conversion_rate FROM marketplace.city_investment "
               "ORDER BY total_viewers DESC LIMIT 10")
_TYPE_NAMES = {16: "BOOLEAN", 20: "LONG", 21: "SHORT", 23: "INT", 700: "FLOAT", 701: "DOUBLE", 1700: "DECIMAL",
               1082: "DATE", 1114: "TIMESTAMP", 1184: "TIMESTAMP"}


@dataclass
class GenieScript:
    """How the fake Genie answers a question: the statuses successive polls see, then the result."""

    statuses: tuple[str, ...] = ("FETCHING_METADATA", "ASKING_AI", "EXECUTING_QUERY", "COMPLETED")
    sql: str | None = DEFAULT_SQL
    text: str = "Here is what the data says."
    error: str | None = None
    suggested: tuple[str, ...] = ()
    row_limit: int | None = None          # return only this many rows and say the result was truncated
    expired: bool = False                 # the first result fetch says QUERY_RESULT_EXPIRED


@dataclass
class Streamed:
    """A response body sent in chunks (Transfer-Encoding: chunked), a pause between them."""

    chunks: list[bytes]
    content_type: str = "text/event-stream"
    pause: float = 0.02


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
                 user_name: str = "3f1c9a52-0000-4000-8000-00000000abcd", token_ttl: float = 3600.0,
                 query_dsn: str | None = None, token_check=None):
        self.admin_dsn = admin_dsn
        self.token_check = token_check        # a radius.TokenCheck: every unexpired token stays valid
        self.query_dsn = query_dsn            # where the fake Genie runs its SQL (the test database)
        self.genie_scripts: list[tuple[str, GenieScript]] = []
        self.genie_messages: dict[str, dict] = {}
        self.spaces: dict[str, dict] = {SPACE_ID: {"title": "Demo space", "warehouse_id": WAREHOUSE_ID}}
        self.warehouses = {WAREHOUSE_ID}
        self.user_tokens: set[str] = set()      # users' own tokens (on-behalf-of-user), accepted beside the PAT
        self.feedback: list[dict] = []
        self.serving_requests: list[dict] = []
        self.unusual_note: str | None = "Phuket's viewers are twice the next city's."   # None: nothing stands out
        self.stream_pause = 0.02
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
        self._genie_routes()
        self._space_routes()
        self._serving_routes()
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

    def heal(self) -> None:
        """Drop every fault not yet served: the services answer normally again."""
        with self._lock:
            self._faults.clear()

    def calls_to(self, prefix: str, method: str | None = None) -> list[Call]:
        return [c for c in self.calls if c.path.startswith(prefix) and (method is None or c.method == method)]

    def set_role_password(self, password: str) -> None:
        if not (self.admin_dsn and self.role):
            return
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(self.role), sql.Literal(password)))

    def revoke(self) -> None:
        """Invalidate the current token without issuing a new one (as a revoked credential)."""
        if self.token_check is not None:
            self.token_check.revoke_all()
            return
        self.set_role_password("revoked-" + secrets.token_urlsafe(16))

    def script(self, phrase: str, **script) -> GenieScript:
        """Questions containing `phrase` (case-insensitive) are answered as described."""
        entry = GenieScript(**script)
        self.genie_scripts.insert(0, (phrase.lower(), entry))
        return entry

    def _script_for(self, question: str) -> GenieScript:
        scripted = next((s for phrase, s in self.genie_scripts if phrase in question.lower()), None)
        if scripted is not None:
            return scripted
        keep = re.search(r"Only include rows where (city|property_id) IN \((.*)\)\.", question)
        if keep:      # like Genie, honour a filter the question spells out
            table = {"city": "city_investment", "property_id": "property_performance"}[keep.group(1)]
            return GenieScript(sql=f"SELECT * FROM marketplace.{table} WHERE {keep.group(1)} IN ({keep.group(2)})")
        return GenieScript()

    def issue_token(self) -> tuple[str, datetime]:
        token = "lbtok-" + secrets.token_urlsafe(24)
        if self.token_check is not None:
            self.token_check.issue(token, self.token_ttl)
        else:
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

    # -- Genie ------------------------------------------------------------------------------

    def _space_routes(self) -> None:
        """Genie spaces themselves (the setup command creates and updates them)."""
        @self.route("GET", r"/api/2\.0/genie/spaces")
        def list_spaces(match, body):
            return 200, {"spaces": [{"space_id": k, "title": v["title"], "warehouse_id": v["warehouse_id"]}
                                    for k, v in self.spaces.items()]}

        @self.route("POST", r"/api/2\.0/genie/spaces")
        def create_space(match, body):
            problem = self._space_problem(body or {}, creating=True)
            if problem:
                return 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": problem}
            space_id = "01f0" + secrets.token_hex(12)
            self.spaces[space_id] = {**body, "space_id": space_id}
            return 200, {"space_id": space_id, "title": body.get("title"), "warehouse_id": body["warehouse_id"]}

        @self.route("PATCH", r"/api/2\.0/genie/spaces/(?P<space>[^/]+)")
        def update_space(match, body):
            if match["space"] not in self.spaces:
                return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Genie space not found"}
            problem = self._space_problem(body or {}, creating=False)
            if problem:
                return 400, {"error_code": "INVALID_PARAMETER_VALUE", "message": problem}
            self.spaces[match["space"]].update(body)
            return 200, {"space_id": match["space"], "title": self.spaces[match["space"]].get("title")}

        @self.route("GET", r"/api/2\.0/genie/spaces/(?P<space>[^/]+)")
        def get_space(match, body):
            space = self.spaces.get(match["space"])
            if space is None:
                return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Genie space not found"}
            return 200, {"space_id": match["space"], "title": space.get("title"), "warehouse_id": space["warehouse_id"]}

        @self.route("GET", r"/api/2\.0/serving-endpoints/(?P<name>[^/]+)")
        def get_endpoint(match, body):
            if match["name"] != ENDPOINT:
                return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"Endpoint {match['name']} not found"}
            return 200, {"name": ENDPOINT, "state": {"ready": "READY", "config_update": "NOT_UPDATING"},
                         "task": "llm/v1/chat"}

    def _space_problem(self, body: dict, *, creating: bool) -> str | None:
        if creating and not body.get("warehouse_id"):
            return "warehouse_id is required"
        if body.get("warehouse_id") and body["warehouse_id"] not in self.warehouses:
            return f"Warehouse {body['warehouse_id']} does not exist"
        if creating or "serialized_space" in body:
            try:
                space = json.loads(body.get("serialized_space") or "")
                assert space["version"] == 1 and space["data_sources"]["tables"]
            except (ValueError, KeyError, TypeError, AssertionError):
                return "serialized_space is not a valid serialized Genie space"
        return None

    def _genie_routes(self) -> None:
        base = r"/api/2\.0/genie/spaces/(?P<space>[^/]+)"
        message_path = base + r"/conversations/(?P<conversation>[^/]+)/messages/(?P<message>[^/]+)"

        def known(match) -> bool:
            return match["space"] == SPACE_ID

        @self.route("POST", base + r"/start-conversation")
        def start(match, body):
            if not known(match):
                return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Genie space not found"}
            conversation = "conv-" + secrets.token_hex(6)
            message = self._new_message(conversation, (body or {}).get("content", ""))
            return 200, {"conversation_id": conversation, "message_id": message["message_id"],
                         "conversation": {"id": conversation, "space_id": SPACE_ID, "title": message["content"]},
                         "message": self._message_json(message)}

        @self.route("POST", base + r"/conversations/(?P<conversation>[^/]+)/messages")
        def follow_up(match, body):
            if not known(match):
                return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Genie space not found"}
            message = self._new_message(match["conversation"], (body or {}).get("content", ""))
            return 200, self._message_json(message)

        @self.route("GET", message_path)
        def poll(match, body):
            message = self.genie_messages.get(match["message"])
            if message is None:
                return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "message not found"}
            message["polls"] += 1
            return 200, self._message_json(message)

        @self.route("GET", message_path + r"/attachments/(?P<attachment>[^/]+)/query-result")
        def result(match, body):
            message = self.genie_messages[match["message"]]
            return 200, self._statement(message)

        @self.route("POST", message_path + r"/attachments/(?P<attachment>[^/]+)/execute-query")
        def rerun(match, body):
            message = self.genie_messages[match["message"]]
            message["reruns"] += 1
            return 200, self._statement(message)

        @self.route("POST", message_path + r"/feedback")
        def feedback(match, body):
            self.feedback.append({"message_id": match["message"], **(body or {})})
            return 200, {}

    def _new_message(self, conversation: str, content: str) -> dict:
        message = {"message_id": "msg-" + secrets.token_hex(6), "conversation_id": conversation,
                   "content": content, "script": self._script_for(content), "polls": 0, "reruns": 0}
        with self._lock:
            self.genie_messages[message["message_id"]] = message
        return message

    def _status(self, message: dict) -> str:
        script = message["script"]
        if message.get("failed"):
            return "FAILED"
        status = script.statuses[min(message["polls"], len(script.statuses)) - 1] if message["polls"] else "SUBMITTED"
        if status == "COMPLETED" and script.expired and not message["reruns"]:
            return "QUERY_RESULT_EXPIRED"
        return status

    def _message_json(self, message: dict) -> dict:
        status, script = self._status(message), message["script"]
        if status == "COMPLETED" and script.sql and "rows" not in message:
            try:
                self._rows(message)
            except psycopg.OperationalError:        # the warehouse's database is away: Genie's query fails
                message["failed"], status = "The SQL warehouse is unavailable.", "FAILED"
        body = {"id": message["message_id"], "message_id": message["message_id"], "space_id": SPACE_ID,
                "conversation_id": message["conversation_id"], "content": message["content"], "status": status}
        if status in ("COMPLETED", "QUERY_RESULT_EXPIRED"):
            attachments = [{"attachment_id": "att-text", "text": {"content": script.text}}]
            if script.sql:
                rows = self._rows(message)
                attachments.append({"attachment_id": "att-query", "query": {
                    "query": script.sql, "description": "Query written by the fake Genie", "title": "Result",
                    "query_result_metadata": {"row_count": len(rows[1]), "is_truncated": bool(script.row_limit)}}})
            if script.suggested:
                attachments.append({"attachment_id": "att-next", "suggested_questions": {
                    "questions": list(script.suggested)}})
            body["attachments"] = attachments
            message.setdefault("completed_at", time.monotonic())    # for the assistant benchmark
        if status == "FAILED":
            body["error"] = {"error": message.get("failed") or script.error or "Genie could not generate SQL",
                             "type": "GENERIC_SQL_EXCEPTION"}
        return body

    def _rows(self, message: dict) -> tuple[list[tuple[str, str]], list[list]]:
        """The script's SQL run on the test database: (name, type) columns and string rows."""
        if "rows" not in message:
            with psycopg.connect(self.query_dsn, autocommit=True) as conn:
                cursor = conn.execute(message["script"].sql)
                columns = [(c.name, _TYPE_NAMES.get(c.type_code, "STRING")) for c in cursor.description]
                rows = [[None if v is None else str(v) for v in row] for row in cursor.fetchall()]
            limit = message["script"].row_limit
            message["rows"] = (columns, rows[:limit] if limit else rows)
        return message["rows"]

    def _statement(self, message: dict) -> dict:
        columns, rows = self._rows(message)
        return {"statement_response": {
            "statement_id": "stmt-" + message["message_id"], "status": {"state": "SUCCEEDED"},
            "manifest": {"format": "JSON_ARRAY", "total_row_count": len(rows),
                         "truncated": bool(message["script"].row_limit),
                         "schema": {"column_count": len(columns), "columns": [
                             {"name": n, "type_name": t, "type_text": t.lower(), "position": i}
                             for i, (n, t) in enumerate(columns)]}},
            "result": {"chunk_index": 0, "row_offset": 0, "row_count": len(rows), "data_array": rows}}}

    # -- Claude on a serving endpoint -------------------------------------------------------

    def _serving_routes(self) -> None:
        @self.route("POST", r"/serving-endpoints/(?P<name>[^/]+)/invocations")
        def invoke(match, body):
            if match["name"] != ENDPOINT:
                return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"Endpoint {match['name']} not found"}
            self.serving_requests.append(body or {})
            reply = self.claude_reply(body or {})
            if (body or {}).get("stream"):
                words = reply.split(" ")
                chunks = [f"data: {json.dumps({'choices': [{'index': 0, 'delta': {'content': w + (' ' if i < len(words) - 1 else '')}}]})}\n\n".encode()
                          for i, w in enumerate(words)]
                usage = {"choices": [], "usage": {"prompt_tokens": 100, "completion_tokens": len(words),
                                                  "total_tokens": 100 + len(words)}}
                return 200, Streamed(chunks + [f"data: {json.dumps(usage)}\n\n".encode(), b"data: [DONE]\n\n"],
                                     pause=self.stream_pause)
            return 200, {"id": "chatcmpl-fake", "object": "chat.completion", "model": ENDPOINT,
                         "choices": [{"index": 0, "finish_reason": "stop",
                                      "message": {"role": "assistant", "content": reply}}],
                         "usage": {"prompt_tokens": 10, "completion_tokens": len(reply.split()), "total_tokens": 20}}

    def claude_reply(self, body: dict) -> str:
        """Canned answers, chosen by what the system prompt asks for."""
        messages = body.get("messages", [])
        system = next((m["content"] for m in messages if m.get("role") == "system"), "")
        user = next((m["content"] for m in messages if m.get("role") == "user"), "")
        if "Summarise" in system:
            rows = user.split("Result: ", 1)[1].split(" rows", 1)[0] if "Result: " in user else "some"
            return f"Summary: the result has {rows} rows, led by the first row shown."
        if "anything unusual" in system:
            if self.unusual_note is None:
                return json.dumps({"unusual": ""})
            return json.dumps({"unusual": self.unusual_note, "confidence": "medium"})
        if "follow-up questions" in system:
            return json.dumps(["Which city converts best?", "How did demand change last quarter?",
                               "What is the revenue per city?"])
        if "could not be answered" in system:
            return json.dumps({"explanation": "The question was too broad for the available tables.",
                               "rephrasings": ["Show viewers per city last month",
                                               "Which 5 cities have the highest conversion?"]})
        if "Write one PostgreSQL SELECT" in system:
            return f"```sql\n{self._script_for(user).sql or DEFAULT_SQL}\n```"
        return "I am a fake Claude."

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
        if headers.get("authorization") not in {f"Bearer {t}" for t in (PAT, *self.user_tokens)}:
            return 401, {"error_code": "UNAUTHENTICATED", "message": "invalid access token"}, {}
        for route_method, pattern, handler in self._routes:
            match = pattern.match(path)
            if route_method == method and match:
                try:
                    status, payload = handler(match, body)
                except psycopg.OperationalError as exc:     # the warehouse's database is away
                    return 503, {"error_code": "TEMPORARILY_UNAVAILABLE", "message": str(exc).splitlines()[0]}, {}
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
                if isinstance(payload, Streamed):
                    self.send_response(status)
                    self.send_header("Content-Type", payload.content_type)
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for chunk in payload.chunks:
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                        self.wfile.flush()
                        threading.Event().wait(payload.pause)
                    self.wfile.write(b"0\r\n\r\n")
                    return
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
