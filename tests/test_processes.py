"""Serving from several processes behind one port: every request of a session reaches the process
that holds it, a dead process is replaced, SIGTERM stops them all and the database."""
from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from bokeh.util.token import generate_jwt_token, generate_session_id

from server.balancer import Balancer, Request, Worker
from data.embedded import EmbeddedPostgres
from data.health import combine_snapshots

from .helpers import ServedApp, isolated_env, run_async
from .wire import Session


def balancer(alive=(True, True, True)) -> Balancer:
    return Balancer([Worker("127.0.0.1", 9000 + i, alive=a) for i, a in enumerate(alive)])


def request(target: str, *headers: tuple[str, str]) -> Request:
    lines = [f"GET {target} HTTP/1.1", "Host: app.example.com", *(f"{k}: {v}" for k, v in headers)]
    return Request.parse(("\r\n".join(lines) + "\r\n\r\n").encode())


def test_a_page_gets_a_session_id_and_its_websocket_goes_to_the_same_process():
    b = balancer()
    for _ in range(20):
        worker, page = b.route(request("/?workspace=orders"))
        session_id = page.header("Bokeh-Session-Id")
        assert session_id and b.owner(session_id) is worker
        token = generate_jwt_token(session_id)          # what the page hands its websocket
        socket_to, _ = b.route(request("/ws", ("Upgrade", "websocket"), ("Sec-WebSocket-Protocol", f"bokeh, {token}")))
        assert socket_to is worker


def test_new_sessions_go_only_to_running_processes_and_assets_take_turns():
    b = balancer(alive=(True, False, True))
    owners = {b.route(request("/"))[0].port for _ in range(60)}
    assert owners == {9000, 9002}
    assets = [b.route(request("/static/js/bokeh.min.js"))[0].port for _ in range(4)]
    assert assets == [9000, 9002, 9000, 9002]


def test_a_session_named_by_the_request_keeps_its_process():
    b = balancer()
    session_id = generate_session_id()
    owner = b.owner(session_id)
    assert b.route(request(f"/?bokeh-session-id={session_id}"))[0] is owner
    assert b.route(request("/", ("Bokeh-Session-Id", session_id)))[0] is owner
    worker, unchanged = b.route(request(f"/?bokeh-session-id={session_id}"))
    assert unchanged.header("Bokeh-Session-Id") is None, "Bokeh refuses an id given twice"


def test_bad_requests_get_a_400_and_nothing_reaches_a_process():
    async def send(raw: bytes) -> bytes:
        b = balancer()
        await b.start("127.0.0.1", 0)
        port = b.server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(raw)
        writer.write_eof()
        answer = await reader.read()
        await b.stop()
        assert b.routed == [0, 0, 0]
        return answer
    for raw in (b"NONSENSE\r\n\r\n", b"GET /\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x"):
        answer = run_async(lambda: send(raw))
        assert answer.startswith(b"HTTP/1.1 400") and json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]


def snapshot(state: str, checked_at: float, sessions: int, p95: float) -> dict:
    return {"database": {"state": state, "probe": {"checked_at": checked_at}},
            "pool": {"size": 5, "checked_out": 1, "checked_in": 4, "overflow": 0, "max_overflow": 15,
                     "connections_opened": 3},
            "token": {"mode": "lakebase", "mints": 2},
            "queries": [{"query": "funnel", "calls": 10, "failures": 1, "p50_ms": 1.0, "p95_ms": p95, "p99_ms": p95}],
            "cache": {"hits": 3, "misses": 1}, "errors": {"connection": 1, "timeout": 0},
            "process": {"rss_mb": 200.0, "threads": 9, "sessions": sessions}}


def test_metrics_of_several_processes_add_up():
    combined = combine_snapshots([snapshot("down", 100.0, 2, 5.0), snapshot("up", 101.0, 3, 9.0)], processes=2,
                                 started_at=time.time())
    assert combined["database"]["state"] == "up", "the latest probe wins"
    assert combined["pool"]["size"] == 10 and combined["token"]["mints"] == 4
    assert combined["queries"] == [{"query": "funnel", "calls": 20, "failures": 2, "p50_ms": 1.0, "p95_ms": 9.0,
                                    "p99_ms": 9.0}]
    assert combined["cache"] == {"hits": 6, "misses": 2, "hit_ratio": 0.75}
    assert combined["errors"] == {"connection": 2, "timeout": 0}
    assert combined["process"]["sessions"] == 5 and combined["process"]["rss_mb"] == 400.0


# -- the real thing ------------------------------------------------------------------------

async def open_and_change_city(url: str, pick: int) -> Session:
    """Open a session and change its city: the change reaches the process that built the page."""
    session = await Session.open(url)
    await session.quiet(0.3, time.perf_counter() + 20)
    box = session.find("AutocompleteInput", label="City")
    city = box.attributes["options"][1 + pick]
    await session.act(session.set_value(box, "value", city), shows=f"funnel: {city},")
    await session.close()
    return session


def workers_of(app: ServedApp) -> list[psutil.Process]:
    """The app's running worker processes: the children of the zygote they are forked from."""
    found = []
    for child in psutil.Process(app.process.pid).children():
        try:
            if "multiprocessing.forkserver" in " ".join(child.cmdline()):
                found.extend(w for w in child.children() if w.status() != psutil.STATUS_ZOMBIE)
        except psutil.Error:        # gone meanwhile
            pass
    return found


@pytest.mark.slow
def test_two_processes_share_the_sessions_and_survive_one_dying(tmp_path):
    env = isolated_env(tmp_path, APP_PROCESSES=2, EMBEDDED_DATA_DIR=tmp_path / "pgdata")
    with ServedApp(env, tmp_path / "app.log") as app:
        app.wait_until_ready(timeout=300)

        async def walk(count: int):
            for pick in range(count):
                await open_and_change_city(app.url, pick)
        run_async(lambda: walk(8))
        routed = app.get("/metrics").json()["process"]["requests_routed"]
        assert all(n > 0 for n in routed), f"both processes took sessions: {routed}"

        async def close_tabs(count: int):
            """Browsers closing their tab: the socket drops, with no websocket close frame."""
            for _ in range(count):
                session = await Session.open(app.url)
                session._reader.cancel()
                session._connection.protocol.stream.close()
        run_async(lambda: close_tabs(12))
        time.sleep(2)
        noise = [line for line in app.logs().splitlines()
                 if "Task was destroyed" in line or "already awaited" in line or "Traceback" in line]
        assert noise == [], noise
        # A worker dies: the supervisor starts another; new sessions work meanwhile and after.
        victim = workers_of(app)[0]
        victim.kill()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (victim.pid in [p.pid for p in workers_of(app)]
                                               or len(workers_of(app)) < 2
                                               or app.get("/metrics").json()["process"]["running"] < 2):
            time.sleep(0.5)
        assert "exited with status" in app.logs() and len(workers_of(app)) == 2
        assert f"exited with status {-signal.SIGKILL}; starting it again" in app.logs()
        run_async(lambda: walk(4))
        supervisor = psutil.Process(app.process.pid)
        processes = [supervisor, *supervisor.children(recursive=True)]     # and the zygote
        assert app.stop() < 15
        time.sleep(0.5)
        assert not [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE], \
            "the workers stopped with the app"
        assert EmbeddedPostgres(tmp_path / "pgdata").running_port() is None, "and so did the embedded database"


@pytest.mark.parametrize("cpus, expected", [(1, 2), (2, 4), (4, 8), (16, 8)])
def test_auto_processes_are_two_per_cpu_up_to_eight(monkeypatch, cpus, expected):
    from server import workers
    monkeypatch.setattr(workers, "available_cpus", lambda: cpus)
    assert workers.process_count("auto") == expected and workers.process_count(3) == 3


# -- the zygote the workers are forked from ----------------------------------------------------

def answer_health(port: int) -> int:
    """A stand-in worker: answers /health with its APP_WORKER on `port` until SIGTERM."""
    from tornado.ioloop import IOLoop
    from tornado.web import Application, RequestHandler

    class Health(RequestHandler):
        def get(self):
            self.write({"worker": os.environ["APP_WORKER"], "of": os.environ["APP_WORKERS"]})

    Application([("/health", Health)]).listen(port, "127.0.0.1")
    loop = IOLoop.current()
    signal.signal(signal.SIGTERM, lambda *_: loop.add_callback_from_signal(loop.stop))
    loop.start()
    return 0


@pytest.mark.slow
def test_a_worker_killed_with_sigkill_is_started_again_and_stop_ends_them_all(monkeypatch, caplog):
    from server import workers
    from server.balancer import get_json
    monkeypatch.setattr(workers, "RESTART_PAUSE", 0.1)
    caplog.set_level(logging.INFO, logger="server.workers")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tornado.web"])       # the stand-in's, not the app's

    async def scenario():
        pool = workers.WorkerPool(2, {"APP_TEST": "1"}, answer_health, context)
        try:
            await pool.start()
            assert [await get_json(w, "/health") for w in pool.workers] == [{"worker": "1", "of": "2"},
                                                                              {"worker": "2", "of": "2"}]
            victim = pool.processes[0].pid
            os.kill(victim, signal.SIGKILL)
            watcher = asyncio.ensure_future(pool.watch())
            deadline = time.monotonic() + 60
            while pool.processes[0] is None or pool.processes[0].pid == victim or not pool.workers[0].alive:
                assert time.monotonic() < deadline, "the killed worker was started again"
                await asyncio.sleep(0.1)
            assert await get_json(pool.workers[0], "/health") == {"worker": "1", "of": "2"}
            assert pool.restarts == 1 and pool.processes[1].exitcode is None
            watcher.cancel()
            running = list(pool.processes)
            await pool.stop()
            assert [p.exitcode for p in running] == [0, 0], "both stopped on SIGTERM"
        finally:
            await pool.stop()
            workers.stop_zygote()
    run_async(scenario, timeout=120)
    assert f"worker 1 exited with status {-signal.SIGKILL}; starting it again" in caplog.text
    assert multiprocessing.forkserver._forkserver._forkserver_pid is None


WHAT_A_WORKER_IMPORTS = """
import ast, json, pathlib, sys
tree = ast.parse(pathlib.Path(serve_py).read_text())
needed = set()
for function in ast.walk(tree):
    if isinstance(function, ast.FunctionDef) and function.name in ("_worker_process", "_worker", "_serve"):
        for node in ast.walk(function):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                needed.add(node.module)
            elif isinstance(node, ast.Import):
                needed.update(alias.name for alias in node.names)
pathlib.Path(out).write_text(json.dumps(sorted(m for m in needed if m not in sys.modules)))
"""


@pytest.mark.slow
def test_the_zygote_imports_what_a_worker_needs_and_forks_with_no_thread(tmp_path, monkeypatch):
    """A thread running in the zygote when it forks would leave its locks held in every worker.
    PANEL_NUM_THREADS (set by app.yaml) makes Panel create its pool on import; its threads start
    only when it is first used."""
    from server import workers
    from .helpers import REPO
    monkeypatch.setenv("PANEL_NUM_THREADS", "4")
    context = workers.start_zygote()
    try:
        out = tmp_path / "missing.json"
        # exec: a target whose unpickling imports nothing, so the child's modules are the zygote's
        child = context.Process(target=exec, args=(WHAT_A_WORKER_IMPORTS, {"serve_py": str(REPO / "serve.py"),
                                                                           "out": str(out)}))
        child.start()
        child.join(120)
        assert child.exitcode == 0
        assert json.loads(out.read_text()) == [], "missing from workers.PRELOAD"
        zygote = psutil.Process(multiprocessing.forkserver._forkserver._forkserver_pid)
        assert zygote.num_threads() == 1
    finally:
        workers.stop_zygote()


def running(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


SUPERVISOR = """
import asyncio, multiprocessing
from server import workers
from tests.test_processes import answer_health

async def main():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tornado.web"])
    pool = workers.WorkerPool(2, {}, answer_health, context)
    await pool.start()
    print(*(p.pid for p in pool.processes), flush=True)
    await asyncio.sleep(600)
asyncio.run(main())
"""


@pytest.mark.slow
def test_the_workers_and_the_zygote_end_with_a_killed_supervisor():
    from .helpers import REPO
    supervisor = subprocess.Popen([sys.executable, "-c", SUPERVISOR], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(pid) for pid in supervisor.stdout.readline().split()]
        family = psutil.Process(supervisor.pid).children(recursive=True)     # zygote, workers, resource tracker
        assert len(pids) == 2 and set(pids) <= {p.pid for p in family}
        supervisor.kill()
        supervisor.wait()
        deadline = time.monotonic() + 20
        while any(map(running, family)):
            assert time.monotonic() < deadline, "no process of the app outlives its supervisor"
            time.sleep(0.1)
    finally:
        supervisor.kill()
        supervisor.wait()
