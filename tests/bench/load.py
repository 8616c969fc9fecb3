"""Load test: N simulated users against `python serve.py` (embedded PostgreSQL, Genie and Claude on
the fake workspace), each in a real session opened as a browser opens one (page GET, websocket,
document pull) and walking a script for a fixed time:

    open the app -> change the city -> Orders -> next page of the grid -> Catalog -> next page of
    products -> Assistant -> ask a question -> Marketplace -> ...

An interaction is a change a browser would send (a widget's value on the websocket); its latency
runs until the update that shows its result arrived (the chart's new title, the next rows, the
answer's summary; the script then waits for 0.3 s without updates before the next step). Reported:
sessions held, interactions per second, p50/p95/p99 latency per kind and overall, errors
(timeouts, closed sessions), and the server's RSS.

    python -m tests.bench.load --users 50 --seconds 60 [--threads 4]
"""
from __future__ import annotations

import argparse
import random
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path

import psutil
from bokeh.events import DocumentReady
from tornado.ioloop import PeriodicCallback

from tests.bench.common import percentiles
from tests.helpers import ServedApp, isolated_env

QUIET_S = 0.3
TIMEOUT_S = 20.0
WORKSPACES = ["Marketplace", "Orders", "Catalog", "Assistant", "System"]
QUESTIONS = ["Which cities have the most viewers?", "How many orders by status?", "Top cities by revenue"]


class Timeout(Exception):
    pass


class User:
    """One browser session driven over the websocket with Bokeh's client."""

    def __init__(self, url: str, rng: random.Random):
        from bokeh.client import pull_session
        started = time.perf_counter()
        self.session = pull_session(url=url)
        self.opened_s = time.perf_counter() - started
        self.rng = rng
        self.last_update: float | None = None
        self.done, self.done_at = None, None       # what the current interaction waits for, and when it came
        self.reading = False
        original = self.session._handle_patch

        def handle(message):
            original(message)
            self.last_update = time.perf_counter()
            if self.done_at is None and self.done is not None and self.done():
                self.done_at = self.last_update
        self.session._handle_patch = handle
        # A browser reports the document ready once it has rendered it; Panel runs its on-load
        # callbacks (and so finishes building some views) only then.
        self.session.document.callbacks.send_event(DocumentReady())

    def models(self, kind: str):
        return [m for m in self.session.document.models if type(m).__name__.rstrip("0123456789") == kind]

    def model(self, kind: str, **props):
        for m in self.models(kind):
            if all(getattr(m, k, None) == v for k, v in props.items()):
                return m
        return None

    def texts(self) -> list[str]:
        """Text the page shows through HTML, Markdown and chart-title models."""
        found = []
        for m in self.session.document.models:
            for prop in ("text", "object"):
                value = getattr(m, prop, None) if prop in m.properties() else None
                if isinstance(value, str) and value:
                    found.append(value)
        return found

    def interact(self, change, done) -> float:
        """Apply `change` to the client document, then wait until `done()` holds and the server's
        updates have settled. The latency runs to the update that made `done()` true: what the
        person was waiting for is on screen (later unrelated updates, a live view's refresh, do not count)."""
        self.last_update, self.done, self.done_at = None, done, None
        started = time.perf_counter()
        change()
        self._wait(started, done)
        self.done = None
        if self.done_at is None:
            raise Timeout()
        return self.done_at - started

    def _wait(self, started: float, done) -> None:
        connection = self.session._connection
        loop = connection._loop

        def check():
            now = time.perf_counter()
            settled = self.last_update is not None and now - self.last_update > QUIET_S and done()
            if settled or now - started > TIMEOUT_S or not connection.connected:
                loop.stop()
        checker = PeriodicCallback(check, 25)
        loop.add_callback(checker.start)
        if not self.reading:
            connection._until_predicate = None
            loop.add_callback(connection._next)
            self.reading = True
        loop.start()
        checker.stop()

    # -- the script -----------------------------------------------------------------------

    SHOWN_BY = {"Marketplace": "AutocompleteInput", "Orders": "DataTabulator", "Catalog": "MultiChoice",
                "Assistant": "ChatAreaInput"}

    def workspace(self, name: str) -> float:
        menu = next(m for m in self.models("TabMenu") if "Marketplace" in m.items)
        return self.interact(lambda: setattr(menu, "active", menu.items.index(name)),
                             lambda: bool(self.models(self.SHOWN_BY[name])))

    def change_city(self) -> float:
        box = self.model("AutocompleteInput", label="City")
        city = self.rng.choice([c for c in box.options[1:] if c != box.value])
        return self.interact(lambda: setattr(box, "value", city),
                             lambda: any(f"funnel: {city}," in t for t in self.texts()))

    def next_page(self) -> float:
        """The orders grid pages in SQL: its pager asks for the next page, the rows are replaced."""
        grid, pager = next(iter(self.models("DataTabulator"))), next(iter(self.models("Pagination")))
        before = list(grid.source.data.get("order_id", []))
        return self.interact(lambda: setattr(pager, "value", (pager.value or 0) + 1),
                             lambda: list(grid.source.data.get("order_id", [])) != before)

    def next_catalog_page(self) -> float:
        pager = next(iter(self.models("Pagination")))
        first = (pager.value or 0) * 24 + 25
        return self.interact(lambda: setattr(pager, "value", (pager.value or 0) + 1),
                             lambda: any(f"{first:,}–" in t for t in self.texts()))

    def ask(self) -> float:
        box = next(iter(self.models("ChatAreaInput")))
        answered = sum("Summary: the result has" in t for t in self.texts())
        question = self.rng.choice(QUESTIONS) + f" ({self.rng.randint(1, 10**6)})"   # not from the cache
        return self.interact(lambda: setattr(box, "value", question),
                             lambda: sum("Summary: the result has" in t for t in self.texts()) > answered)

    def script(self):
        yield "change city", self.change_city
        yield "open workspace", lambda: self.workspace("Orders")
        yield "page orders grid", self.next_page
        yield "open workspace", lambda: self.workspace("Catalog")
        yield "page catalog", self.next_catalog_page
        yield "open workspace", lambda: self.workspace("Assistant")
        yield "ask assistant", self.ask
        yield "open workspace", lambda: self.workspace("Marketplace")

    def close(self) -> None:
        self.session.close()


def run_user(url: str, seed: int, until: float, results: dict, lock: threading.Lock) -> None:
    rng = random.Random(seed)
    try:
        user = User(url, rng)
    except Exception as exc:
        with lock:
            results["errors"].append(f"open: {exc!r}")
        return
    with lock:
        results["open"].append(user.opened_s)
        results["held"] += 1
    try:
        while time.perf_counter() < until:
            for kind, step in user.script():
                if time.perf_counter() >= until:
                    break
                try:
                    latency = step()
                except Timeout:
                    with lock:
                        results["errors"].append(f"{kind}: no update within {TIMEOUT_S:.0f} s")
                    continue
                except Exception as exc:
                    with lock:
                        results["errors"].append(f"{kind}: {exc!r}")
                    continue
                with lock:
                    results["latency"][kind].append(latency)
                time.sleep(rng.uniform(0.2, 1.0))          # a person reads before the next click
    finally:
        user.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--threads", type=int, default=4, help="PANEL_NUM_THREADS for the server")
    parser.add_argument("--ramp", type=float, default=10, help="seconds over which users arrive")
    args = parser.parse_args()
    import panel as pn
    import panel_material_ui  # noqa: F401 - the Material models, for the client document
    pn.extension("tabulator")
    from tests.fake_workspace import SPACE_ID, FakeWorkspace

    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        tmp = Path(tmp)
        data_dir = tmp / "pgdata"
        # A first run creates the database; the fake Genie then answers from it.
        with ServedApp(isolated_env(tmp, EMBEDDED_DATA_DIR=data_dir), tmp / "prepare.log") as app:
            app.wait_until_ready(timeout=300)
            app.stop()
        from data.embedded import EmbeddedPostgres
        with FakeWorkspace(query_dsn=None) as ws:
            ws.stream_pause = 0.01
            env = isolated_env(tmp, EMBEDDED_DATA_DIR=data_dir, PANEL_NUM_THREADS=args.threads,
                               GENIE_SPACE_ID=SPACE_ID, GENIE_QUESTIONS_PER_MINUTE=600, ORDER_EDITORS="*",
                               **ws.env())
            with ServedApp(env, tmp / "serve.log") as app:
                app.wait_until_ready(timeout=120)
                server = EmbeddedPostgres(data_dir)
                server.port = server.running_port()            # the one serve.py started
                ws.query_dsn = server.admin_dsn("databricks_postgres")
                for _ in range(2):
                    User(app.url, random.Random(0)).close()
                server_process, me = psutil.Process(app.process.pid), psutil.Process()
                cpu_before = (sum(server_process.cpu_times()[:2]), sum(me.cpu_times()[:2]))
                results = {"open": [], "held": 0, "errors": [], "latency": defaultdict(list)}
                lock = threading.Lock()
                started = time.perf_counter()
                until = started + args.seconds
                threads = []
                peak_rss = 0.0
                for i in range(args.users):
                    thread = threading.Thread(target=run_user, args=(app.url, i, until, results, lock), daemon=True)
                    thread.start()
                    threads.append(thread)
                    time.sleep(args.ramp / max(1, args.users))
                while any(t.is_alive() for t in threads):
                    peak_rss = max(peak_rss, psutil.Process(app.process.pid).memory_info().rss / 2**20)
                    time.sleep(0.5)
                elapsed = time.perf_counter() - started
                server_cpu = sum(server_process.cpu_times()[:2]) - cpu_before[0]
                client_cpu = sum(me.cpu_times()[:2]) - cpu_before[1]
                app.stop()
    every = [x for values in results["latency"].values() for x in values]
    print(f"users={args.users} seconds={args.seconds:g} panel_threads={args.threads}: sessions held "
          f"{results['held']}/{args.users}; {len(every)} interactions, {len(every) / elapsed:.1f}/s; "
          f"errors {len(results['errors'])}; server RSS peak {peak_rss:.0f} MB")
    print(f"  CPU over {elapsed:.0f} s: server {server_cpu:.0f} s ({server_cpu / elapsed:.0%} of one core), "
          f"this load generator {client_cpu:.0f} s ({client_cpu / elapsed:.0%}); the machine has 2 cores")
    if results["open"]:
        p = percentiles(results["open"], 50, 95, 99)
        print(f"  open a session: p50={p['p50']} ms p95={p['p95']} ms p99={p['p99']} ms")
    for kind, values in sorted(results["latency"].items()):
        p = percentiles(values, 50, 95, 99)
        print(f"  {kind}: n={len(values)} p50={p['p50']} ms p95={p['p95']} ms p99={p['p99']} ms")
    if every:
        p = percentiles(every, 50, 95, 99)
        print(f"  all interactions: p50={p['p50']} ms p95={p['p95']} ms p99={p['p99']} ms")
    for error in sorted(set(results["errors"]))[:10]:
        print(f"  error: {error} (x{results['errors'].count(error)})")


if __name__ == "__main__":
    main()
