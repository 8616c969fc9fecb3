"""A browser session without a browser: the page request and the Bokeh websocket protocol, spoken
directly, for load and fault tests that need many sessions from one small process.

It sends what Chromium sends for a click (captured from a real browser: a widget's new value, a
Material tab menu's click, a Tabulator cell edit as `table-edit` events around a column patch) and
keeps an index of the session's models (id -> type and attributes) from the document and every
patch. It never builds Bokeh models: Bokeh's own client deserialises every patch into models and
costs about half of what the server spends, which would crowd out the server it measures.

    session = await Session.open("http://127.0.0.1:8000", headers={"X-Forwarded-Email": "a@b.c"})
    box = session.find("AutocompleteInput", label="City")
    seconds = await session.act(session.set_value(box, "value", "Paris"), shows="funnel: Paris,")
"""
from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable
from urllib.parse import urlsplit, urlunsplit

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from tornado.websocket import websocket_connect

TOKEN = re.compile(r'"token":\s*"([^"]+)"')


class Closed(Exception):
    """The server closed the session's websocket."""


class NoUpdate(Exception):
    """What an interaction waits for did not arrive in time."""


@dataclass
class Model:
    id: str
    type: str                     # the model's name, e.g. "panel.models.tabulator.DataTabulator"
    attributes: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """The class name without module or the digits Material models carry (`AutocompleteInput1`)."""
        return self.type.rsplit(".", 1)[-1].rstrip("0123456789")


def _event(name: str, values: dict) -> dict:
    entries = [[k, {"id": v.id} if isinstance(v, Model) else v] for k, v in values.items()]
    return {"kind": "MessageSent", "msg_type": "bokeh_event",
            "msg_data": {"type": "event", "name": name, "values": {"type": "map", "entries": entries}}}


def _changed(model: Model, attr: str, new: Any) -> dict:
    return {"kind": "ModelChanged", "model": {"id": model.id}, "attr": attr, "new": new}


def _matcher(shows, done) -> Callable[[str], bool]:
    """A test on each arriving patch: it contains one of the texts (as typed, or JSON-escaped), or,
    once it is applied, `done()` holds."""
    texts = [shows] if isinstance(shows, str) else list(shows or ())
    texts += [json.dumps(t)[1:-1] for t in texts if json.dumps(t)[1:-1] != t]
    return lambda raw: any(t in raw for t in texts) or (done is not None and done())


class Session:
    def __init__(self, connection, url: str):
        self._connection = connection
        self.url = url
        self.models: dict[str, Model] = {}
        self.received: list[tuple[float, str]] = []      # (arrival, patch content) since the last act
        self.closed = False
        self._replies: dict[str, asyncio.Future] = {}
        self._watchers: list[tuple[Callable[[str], bool], asyncio.Future]] = []
        self._reader: asyncio.Task | None = None

    # -- opening and closing ----------------------------------------------------------------

    @classmethod
    async def open(cls, url: str, headers: dict | None = None, timeout: float = 60, *,
                   ready: bool = True) -> "Session":
        """GET the page (the server builds the session), connect its websocket, pull the document
        and report it ready, as a browser does once it has rendered the page (`ready=False`: not
        yet; `report_ready` does it)."""
        page = await AsyncHTTPClient().fetch(HTTPRequest(url, headers=headers or {}, request_timeout=timeout))
        token = TOKEN.search(page.body.decode()).group(1)
        parts = urlsplit(url)
        ws_url = urlunsplit(("wss" if parts.scheme == "https" else "ws", parts.netloc,
                             parts.path.rstrip("/") + "/ws", "", ""))
        request = HTTPRequest(ws_url, headers={**(headers or {}), "Origin": f"{parts.scheme}://{parts.netloc}"},
                              request_timeout=timeout)
        connection = await websocket_connect(request, subprotocols=["bokeh", token], max_message_size=1 << 30)
        session = cls(connection, url)
        header, _ = await session._read_message()
        if header["msgtype"] != "ACK":
            raise Closed(f"expected ACK, got {header['msgtype']}")
        session._reader = asyncio.ensure_future(session._read_forever())
        reply = await session._request("PULL-DOC-REQ", timeout)
        session._index(reply["doc"])
        if ready:
            await session.send(session.report_ready())
        return session

    @staticmethod
    def report_ready() -> list[dict]:
        """The event a browser sends once it has shown the page."""
        return [_event("document_ready", {})]

    async def close(self) -> None:
        self.closed = True
        self._connection.close()
        if self._reader is not None:
            self._reader.cancel()

    # -- the wire ---------------------------------------------------------------------------

    async def _read_message(self) -> tuple[dict, str]:
        """Header and content of the next message (header, metadata, content, then buffer pairs)."""
        frames = []
        while len(frames) < 3:
            frame = await self._connection.read_message()
            if frame is None:
                raise Closed("websocket closed")
            frames.append(frame)
        header = json.loads(frames[0])
        for _ in range(2 * header.get("num_buffers", 0)):      # binary arrays are not needed here
            if await self._connection.read_message() is None:
                raise Closed("websocket closed")
        return header, frames[2]

    async def _read_forever(self) -> None:
        try:
            while True:
                header, raw = await self._read_message()
                content = json.loads(raw)
                future = self._replies.pop(header.get("reqid"), None)
                if future is not None and not future.done():
                    future.set_result(content)
                if header["msgtype"] == "PATCH-DOC":
                    arrival = time.perf_counter()
                    self._apply(content)
                    self.received.append((arrival, raw))
                    self._notify(arrival, raw)
        except (Closed, asyncio.CancelledError):
            pass
        finally:
            self.closed = True
            for future in [*self._replies.values(), *(f for _, f in self._watchers)]:
                if not future.done():
                    future.set_exception(Closed("websocket closed"))

    async def _write(self, msgtype: str, content: dict) -> str:
        if self.closed:
            raise Closed("websocket closed")
        msgid = uuid.uuid4().hex
        for part in ({"msgid": msgid, "msgtype": msgtype}, {}, content):
            await self._connection.write_message(json.dumps(part))
        return msgid

    async def _request(self, msgtype: str, timeout: float) -> dict:
        msgid = uuid.uuid4().hex
        future = self._replies[msgid] = asyncio.get_running_loop().create_future()
        for part in ({"msgid": msgid, "msgtype": msgtype}, {}, {}):
            await self._connection.write_message(json.dumps(part))
        return await asyncio.wait_for(future, timeout)

    async def send(self, events: list[dict]) -> None:
        """One PATCH-DOC message per event, as BokehJS sends them; a browser's own changes are part
        of its document at once (the server does not echo them)."""
        for event in events:
            self._apply({"events": [event]})
            await self._write("PATCH-DOC", {"events": [event]})

    # -- the model index --------------------------------------------------------------------

    def _index(self, value) -> None:
        if isinstance(value, dict):
            if value.get("type") == "object" and "id" in value:
                model = self.models.setdefault(value["id"], Model(value["id"], value.get("name", "")))
                model.attributes.update(value.get("attributes", {}))
            for item in value.values():
                if isinstance(item, (dict, list)):
                    self._index(item)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, (dict, list)):
                    self._index(item)

    def _apply(self, content: dict) -> None:
        for event in content.get("events", []):
            self._index(event)
            if event.get("kind") == "ModelChanged":
                model = self.models.get(event["model"]["id"])
                if model is not None:
                    model.attributes[event["attr"]] = event["new"]

    def find_all(self, kind: str, **attributes) -> list[Model]:
        return [m for m in self.models.values()
                if m.kind == kind and all(m.attributes.get(k) == v for k, v in attributes.items())]

    def find(self, kind: str, **attributes) -> Model:
        found = self.find_all(kind, **attributes)
        if not found:
            raise LookupError(f"no {kind} with {attributes} in the session")
        return found[-1]            # the newest: views built later come later

    def component_of(self, model: Model) -> Model:
        """A Material widget is two models: the data model that holds its properties and the React
        component that draws it and sends its events."""
        for candidate in self.models.values():
            data = candidate.attributes.get("data")
            if candidate.kind == "ReactComponent" and isinstance(data, dict) and data.get("id") == model.id:
                return candidate
        raise LookupError(f"no component draws {model.type} {model.id}")

    # -- what a browser sends ---------------------------------------------------------------

    @staticmethod
    def set_value(model: Model, attr: str, value) -> list[dict]:
        return [_changed(model, attr, value)]

    def tab_click(self, menu: Model, index: int) -> list[dict]:
        """A Material TabMenu click: the click event, then the new active tab."""
        click = {"type": "map", "entries": [["type", "click"], ["item", index]]}
        return [_event("data_event", {"model": self.component_of(menu), "data": click}),
                _changed(menu, "active", index)]

    def chat_send(self, chat_input: Model, text: str) -> list[dict]:
        """Enter in the Material chat box: the typed text, then the box's send event."""
        typed = {"type": "map", "entries": [["type", "input"], ["value", text]]}
        return [_changed(chat_input, "value_input", text),
                _event("data_event", {"model": self.component_of(chat_input), "data": typed})]

    def click(self, button: Model) -> list[dict]:
        """A click on a Material button (its component reports the DOM event)."""
        return [_event("dom_event", {"model": self.component_of(button), "node": "click",
                                     "data": {"type": "map", "entries": []}})]

    @staticmethod
    def cell_edit(table: Model, source: Model, row: int, column: str, value) -> list[dict]:
        """A Tabulator cell edit: `table-edit` (pre), the source's column patch, `table-edit` (post)."""
        patch = {"kind": "ColumnsPatched", "attr": "data", "model": {"id": source.id},
                 "patches": {"type": "map", "entries": [[column, [[row, value]]]]}}
        return [_event("table-edit", {"model": table, "column": column, "row": row, "pre": True}), patch,
                _event("table-edit", {"model": table, "column": column, "row": row, "pre": False})]

    # -- waiting for what the person waits for ----------------------------------------------

    async def act(self, events: list[dict], *, shows: str | Iterable[str] | None = None, done=None,
                  then: str | Iterable[str] | None = None, timeout: float = 20, settle: float = 0.3):
        """Send `events`; return the seconds until the update that shows the result arrived: a patch
        containing one of the `shows` texts, or the one after which `done()` holds. With `then`, also
        wait for a later patch containing (one of) its text(s) and return both times. Afterwards wait until the
        server has been quiet for `settle` seconds, so the next step starts from a settled page."""
        self.received = []
        started = time.perf_counter()
        deadline = started + timeout
        shown = self._watch(_matcher(shows, done))
        await self.send(events)
        shown_at = await self._until(shown, deadline)
        then_at = await self._until(self._watch(_matcher(then, None)), deadline) if then else None
        await self.quiet(settle, deadline=time.perf_counter() + timeout)
        return shown_at - started if then is None else (shown_at - started, then_at - started)

    def showing(self, text: str) -> bool:
        """Whether the page as it is now holds `text` in a model (as typed, or JSON-escaped)."""
        return _matcher(text, None)(json.dumps([m.attributes for m in self.models.values()]))

    async def shown(self, shows: str | Iterable[str], timeout: float = 20) -> float:
        """Wait, without acting, for a patch with one of the texts (another person's change, say);
        the seconds waited."""
        started = time.perf_counter()
        await self._until(self._watch(_matcher(shows, None)), started + timeout)
        return time.perf_counter() - started

    def saw(self, text: str) -> bool:
        """Whether a patch since the last act contained `text` (as typed, or JSON-escaped)."""
        matches = _matcher(text, None)
        return any(matches(raw) for _, raw in self.received)

    async def quiet(self, seconds: float, deadline: float) -> None:
        """Return once no patch has arrived for `seconds` (or at `deadline`)."""
        while time.perf_counter() < deadline and not self.closed:
            last = self.received[-1][0] if self.received else 0.0
            wait = last + seconds - time.perf_counter()
            if wait <= 0:
                return
            await asyncio.sleep(wait)

    def _watch(self, matches: Callable[[str], bool]) -> asyncio.Future:
        """A future resolved with the arrival of the first patch (already here or to come) that matches."""
        future = asyncio.get_running_loop().create_future()
        arrived = next((arrival for arrival, raw in self.received if matches(raw)), None)
        if arrived is not None:
            future.set_result(arrived)
        else:
            self._watchers.append((matches, future))
        return future

    def _notify(self, arrival: float, raw: str) -> None:
        for watcher in list(self._watchers):
            matches, future = watcher
            if not future.done() and matches(raw):
                future.set_result(arrival)
            if future.done():
                self._watchers.remove(watcher)

    async def _until(self, future: asyncio.Future, deadline: float) -> float:
        try:
            return await asyncio.wait_for(asyncio.shield(future), max(deadline - time.perf_counter(), 0.001))
        except asyncio.TimeoutError:
            future.cancel()
            raise (Closed("websocket closed") if self.closed else NoUpdate()) from None
