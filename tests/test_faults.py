"""Faults under load: simulated people (tests/users.py) keep clicking through every workspace while
Lakebase tokens rotate, PostgreSQL restarts, Genie and Claude misbehave, or the app is told to
stop. What a person sees is checked step by step, and what they were told about their edits is
checked against the database."""
from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import Counter
from contextlib import ExitStack, contextmanager

import psycopg
import pytest
import requests
from psycopg import sql

from data.embedded import EmbeddedPostgres

from .fake_workspace import SPACE_ID, FakeWorkspace
from .helpers import APP_ROLE, ServedApp, database_env, isolated_env, serve_demo_copy
from .radius import TokenCheck, checked_by
from .users import Results, run_load

pytestmark = pytest.mark.slow
THINK = (0.2, 0.8)          # brisk people: many steps overlap each fault


@contextmanager
def load_in_background(url: str, users: int, seconds: float, seed: int = 0):
    """People walk the app in a thread of their own while the test breaks things (`seed`: loads
    run side by side are different people)."""
    results = Results()
    thread = threading.Thread(target=lambda: asyncio.run(run_load(url, users, seconds, think=THINK, ramp=3,
                                                                  seed=seed, results=results)), daemon=True)
    thread.start()
    yield results
    thread.join(seconds + 120)
    assert not thread.is_alive(), "the simulated people finished"


def edits_in_database(dsn: str, results: Results) -> dict[str, int]:
    """How many times each note people typed reached the audit log."""
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT new_value, count(*) FROM retail360.audit_log WHERE field = 'notes' "
                            "AND new_value = ANY(%s) GROUP BY 1", ([note for note, _ in results.edits],)).fetchall()
    return dict(rows)


def check_edits(dsn: str, results: Results) -> None:
    """Saved means saved once; refused or in conflict means not saved; nothing is saved twice."""
    found = edits_in_database(dsn, results)
    assert results.edits, "people edited cells"
    for note, outcome in results.edits:
        expected = {"saved": {1}, "refused": {0}, "conflict": {0}, "hang": {0, 1}}[outcome]
        assert found.get(note, 0) in expected, f"{outcome} edit {note!r} is in the audit log {found.get(note, 0)}x"


def steps_of(results: Results, kinds: set[str], since: float = 0.0, until: float = float("inf")) -> dict[str, int]:
    """How the steps of these kinds that began in [since, until) ended: {"ok": n, "refused: page orders grid": n}."""
    counted: dict[str, int] = {}
    for step in results.steps:
        if step.kind in kinds and since <= step.started < until:
            key = step.outcome if step.outcome == "ok" else f"{step.outcome}: {step.kind} {step.detail}".strip()
            counted[key] = counted.get(key, 0) + 1
    return counted


def trail(results: Results, failed, since: float) -> list[tuple]:
    """The failed step and the four before it of the same person, timed from `since`."""
    own = [s for s in results.steps if s.who == failed.who and s.started <= failed.started]
    return [(s.kind, s.detail, s.outcome, round(s.started - since, 1), s.seconds and round(s.seconds, 2))
            for s in own[-5:]]


def outcomes(counted: dict[str, int]) -> set[str]:
    return {key.split(":")[0] for key in counted}


EVERYTHING = {"change city", "open workspace", "page orders grid", "edit a cell", "page catalog", "ask assistant"}


@pytest.mark.parametrize("instances", [1, 2])
def test_tokens_rotating_every_10_seconds_fail_no_action(pg, demo_template, tmp_path, instances):
    """Lakebase mode through the real SDK: the fake workspace issues 12-second tokens, and the
    database takes a token only until it expires, so an app that kept using an old one would fail.
    Each process of each instance mints its own; as on Lakebase, every unexpired token is valid."""
    role, database = f"sp_{uuid.uuid4().hex[:8]}", f"faults_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(pg.admin_dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'not-a-token' IN ROLE {}").format(
            sql.Identifier(role), sql.Identifier(APP_ROLE)))
    pg.create_database(database, template=demo_template, owner=APP_ROLE)
    with TokenCheck(role) as check, checked_by(check, pg.admin_dsn(), database), \
            FakeWorkspace(role=role, user_name=role, token_ttl=12, query_dsn=pg.admin_dsn(database),
                          token_check=check) as ws, ExitStack() as running:
        apps = []
        for n in range(instances):
            (tmp_path / f"i{n}").mkdir()
            env = isolated_env(tmp_path / f"i{n}", **ws.env(), LAKEBASE_INSTANCE_NAME=ws.instance_name,
                               PGHOST="127.0.0.1", PGPORT=pg.port, PGDATABASE=database, PGSSLMODE="disable",
                               DB_POOL_RECYCLE=3, ORDER_EDITORS="*", GENIE_SPACE_ID=SPACE_ID,
                               GENIE_QUESTIONS_PER_MINUTE=600)
            apps.append(running.enter_context(ServedApp(env, tmp_path / f"app{n}.log")))
            apps[-1].wait_until_ready()
        minted_before = len(ws.tokens_issued)
        with ExitStack() as people:
            runs = [people.enter_context(load_in_background(app.url, users=6 // instances, seconds=45, seed=100 * n))
                    for n, app in enumerate(apps)]
        for results in runs:
            counted = steps_of(results, EVERYTHING)
            assert results.held == 6 // instances and outcomes(counted) == {"ok"}, counted
            check_edits(pg.admin_dsn(database), results)
        assert len(ws.tokens_issued) - minted_before >= 3 * instances, "tokens rotated while people worked"
        assert check.answers["accepted"] > 0
        for app in apps:
            app.stop()


@pytest.mark.parametrize("instances", [1, 2])
def test_postgres_restarting_mid_run_shows_a_message_loses_no_edit_and_heals(tmp_path, instances):
    """The embedded default with two processes (and then two such instances on the one server, as
    behind a load balancer): PostgreSQL stops for a few seconds while people work."""
    data_dir = tmp_path / "pgdata"
    with FakeWorkspace(query_dsn=None) as ws, ExitStack() as running:
        apps = []
        for n in range(instances):          # the first starts the embedded server, the second uses it
            env = isolated_env(tmp_path / f"i{n}", EMBEDDED_DATA_DIR=data_dir, APP_PROCESSES=2, ORDER_EDITORS="*",
                               GENIE_SPACE_ID=SPACE_ID, GENIE_QUESTIONS_PER_MINUTE=600, **ws.env())
            (tmp_path / f"i{n}").mkdir()
            apps.append(running.enter_context(ServedApp(env, tmp_path / f"app{n}.log")))
            apps[-1].wait_until_ready(timeout=300)
        server = EmbeddedPostgres(data_dir)
        server.port = server.running_port()
        ws.query_dsn = server.admin_dsn("databricks_postgres")
        with ExitStack() as people:
            runs = [people.enter_context(load_in_background(app.url, users=6 // instances, seconds=75, seed=100 * n))
                    for n, app in enumerate(apps)]
            time.sleep(18)
            server.started_here = True            # this test, not the app, stops and starts it now
            down = time.perf_counter()
            server.stop()
            # Down for at least 5 s, and until people have tried to save something meanwhile
            # (other steps may be served from caches): slow machines take fewer steps.
            while time.perf_counter() - down < 5 or (sum(
                    len(steps_of(r, {"edit a cell"}, since=down)) for r in runs) == 0 and time.perf_counter() - down < 30):
                time.sleep(0.5)
            server.restart_on_same_port()
            up = time.perf_counter()
            server.started_here = False
        told = set()
        for results in runs:
            during = steps_of(results, EVERYTHING, since=down, until=up + 3)
            after = steps_of(results, EVERYTHING, since=up + 3)
            # A question asked just before may meet the outage: Genie's warehouse is the same database.
            before = steps_of(results, EVERYTHING - {"ask assistant"}, until=down - 1)
            assert outcomes(before) == {"ok"}, before
            told |= outcomes(during)
            assert outcomes(during) <= {"ok", "refused"}, f"every step showed its result or a message: {during}"
            late = [trail(results, s, up) for s in results.steps if s.started >= up + 3 and s.outcome != "ok"]
            assert outcomes(after) == {"ok"} and after["ok"] > 20 // instances, \
                f"the app recovered without a restart: {late}"
            check_edits(server.admin_dsn("databricks_postgres"), results)
        assert "refused" in told, "people were told the database is away"
        for app in reversed(apps):             # the instance that started the server stops it, last
            assert app.process.poll() is None
            app.stop()


@pytest.mark.parametrize("instances", [1, 2])
def test_genie_and_claude_failing_degrade_only_the_assistant(pg, demo_template, tmp_path, instances):
    """Genie answers 500, then 429, then too slowly; Claude answers 429 and 500. The assistant says
    so in the chat; every other step, and the health checks, carry on as before. With two instances
    on the one database (as behind a load balancer), the same holds on both."""
    database = f"faults_{uuid.uuid4().hex[:6]}"
    settings = dict(ORDER_EDITORS="*", GENIE_SPACE_ID=SPACE_ID, GENIE_QUESTIONS_PER_MINUTE=600, ASSISTANT_TIMEOUT=8)
    with FakeWorkspace(query_dsn=pg.admin_dsn(database)) as ws, ExitStack() as running:
        (tmp_path / "i0").mkdir()
        apps = [running.enter_context(serve_demo_copy(tmp_path / "i0", pg, demo_template, database,
                                                      **settings, **ws.env()))]
        for n in range(1, instances):      # more instances of the same app on the same database
            (tmp_path / f"i{n}").mkdir()
            env = database_env(tmp_path / f"i{n}", pg, database, **settings, **ws.env())
            apps.append(running.enter_context(ServedApp(env, tmp_path / f"app{n}.log")))
            apps[-1].wait_until_ready()
        checks: list[int] = []
        with ExitStack() as people:
            runs = [people.enter_context(load_in_background(app.url, users=6 // instances, seconds=60, seed=100 * n))
                    for n, app in enumerate(apps)]
            time.sleep(10)
            broken = time.perf_counter()
            genie = f"/api/2.0/genie/spaces/{SPACE_ID}"
            ws.fail(genie + "/start-conversation", 500, times=6)
            ws.fail(genie + "/conversations", 429, times=40, error_code="REQUEST_LIMIT_EXCEEDED",
                    message="too many requests")
            ws.fail(genie + "/start-conversation", 200, times=4, delay=25)     # far beyond the time-out
            ws.fail("/serving-endpoints", 429, times=10, error_code="REQUEST_LIMIT_EXCEEDED")
            ws.fail("/serving-endpoints", 500, times=10)
            for _ in range(20):
                checks += [requests.get(app.url + "/health/ready", timeout=10).status_code for app in apps]
                time.sleep(1)
            ws.heal()
            healed = time.perf_counter()
        assert checks == [200] * len(checks), "health checks answered throughout"
        for results in runs:
            counted = steps_of(results, EVERYTHING - {"ask assistant"})
            assert outcomes(counted) == {"ok"}, counted
            asked = steps_of(results, {"ask assistant"}, since=broken, until=healed)
            assert outcomes(asked) <= {"ok", "refused"}, asked
            recovered = steps_of(results, {"ask assistant"}, since=healed + 8)
            assert outcomes(recovered) == {"ok"}, f"questions are answered again once the services are: {recovered}"
            check_edits(pg.admin_dsn(database), results)
        asked = sum((Counter(steps_of(r, {"ask assistant"}, since=broken, until=healed)) for r in runs), Counter())
        assert "refused" in outcomes(asked), f"people were told the assistant could not answer: {asked}"


def test_sigterm_under_load_stops_everything_within_15_seconds(tmp_path):
    data_dir = tmp_path / "pgdata"
    env = isolated_env(tmp_path, EMBEDDED_DATA_DIR=data_dir, APP_PROCESSES=2, ORDER_EDITORS="*")
    with ServedApp(env, tmp_path / "app.log") as app:
        app.wait_until_ready(timeout=300)
        with load_in_background(app.url, users=8, seconds=60) as results:
            deadline = time.perf_counter() + 60
            while results.held + len(results.errors) < 8 and time.perf_counter() < deadline:
                time.sleep(0.5)
            time.sleep(4)                           # everyone is walking through the app
            took = app.stop()
        assert app.process.returncode == 0 and took < 15, took
        assert results.held == 8
        assert EmbeddedPostgres(data_dir).running_port() is None
        assert "stopped shutdown_s=" in app.logs()


def test_sigterm_to_one_of_two_instances_leaves_the_other_serving(tmp_path):
    """A rolling deploy: instance B is stopped under load; it exits within 15 s, and the people on
    instance A never notice (every step shows its result) nor does the database stop."""
    data_dir = tmp_path / "pgdata"
    with ExitStack() as running:
        apps = []
        for n in range(2):
            (tmp_path / f"i{n}").mkdir()
            env = isolated_env(tmp_path / f"i{n}", EMBEDDED_DATA_DIR=data_dir, APP_PROCESSES=2, ORDER_EDITORS="*")
            apps.append(running.enter_context(ServedApp(env, tmp_path / f"app{n}.log")))
            apps[-1].wait_until_ready(timeout=300)
        a, b = apps
        with load_in_background(a.url, users=4, seconds=40) as on_a, \
                load_in_background(b.url, users=4, seconds=40, seed=100):
            while on_a.held + len(on_a.errors) < 4:
                time.sleep(0.5)
            time.sleep(4)
            took = b.stop()
        assert b.process.returncode == 0 and took < 15, took
        assert on_a.held == 4 and outcomes(steps_of(on_a, EVERYTHING - {"ask assistant"})) == {"ok"}   # no Genie here
        assert EmbeddedPostgres(data_dir).running_port() is not None, "B did not stop the server A uses"
        assert a.process.poll() is None
        a.stop()
