"""Two instances of the app (each `python serve.py` with two processes) on one PostgreSQL, as
behind a load balancer: what one person does in instance A reaches a person in instance B, and
what the app shares (Genie's budget, caches) holds for both. Real sessions over the Bokeh
websocket (tests/wire.py), the real SDK against the fake workspace."""
from __future__ import annotations

import asyncio
import random
import time
from contextlib import ExitStack

import psycopg
import pytest
from bokeh.util.token import generate_session_id

from dashboard import format as fmt
from server.balancer import worker_index
from tests.fake_workspace import FakeWorkspace, SPACE_ID
from tests.users import ANSWERED, Results, User
from tests.wire import Session

from .conftest import APP_ROLE, APP_ROLE_PASSWORD
from .helpers import ServedApp, isolated_env, run_async

DATABASE = "two_instances"
BUDGET = 2                          # Genie questions a minute, for the whole app


@pytest.fixture(scope="module")
def instances(tmp_path_factory, pg, demo_template):
    pg.create_database(DATABASE, template=demo_template, owner=APP_ROLE)
    with psycopg.connect(pg.admin_dsn(DATABASE), autocommit=True) as admin:
        # The newest order is today's, so a change to it shows in Today's figures.
        admin.execute("UPDATE retail360.orders SET created_at = now() WHERE order_id = (SELECT order_id FROM "
                      "retail360.orders ORDER BY created_at DESC, order_id DESC LIMIT 1)")
    with ExitStack() as stack:
        workspace = stack.enter_context(FakeWorkspace(query_dsn=pg.admin_dsn(DATABASE)))
        workspace.stream_pause = 0.0
        apps = []
        for name in ("a", "b"):
            tmp = tmp_path_factory.mktemp(f"instance-{name}")
            env = isolated_env(tmp, PGHOST="127.0.0.1", PGPORT=pg.port, PGUSER=APP_ROLE,
                               PGPASSWORD=APP_ROLE_PASSWORD, PGDATABASE=DATABASE, PGSSLMODE="disable",
                               GENIE_SPACE_ID=SPACE_ID, GENIE_QUESTIONS_PER_MINUTE=BUDGET, ORDER_EDITORS="*",
                               **workspace.env())
            apps.append(stack.enter_context(ServedApp(env, tmp / "app.log")))
        for app in apps:
            app.wait_until_ready()
        yield apps[0], apps[1], workspace, pg.admin_dsn(DATABASE)
        for app in apps:
            app.stop()


def person(session: Session, name: str) -> User:
    return User(session, random.Random(name), name, Results())


NEWEST = "(SELECT order_id FROM retail360.orders ORDER BY created_at DESC, order_id DESC LIMIT 1)"   # the grid's first row


def session_id_on(process: int, of: int) -> str:
    """A session id the balancer gives to worker `process` of `of`."""
    while True:
        session_id = generate_session_id()
        if worker_index(session_id, of) == process:
            return session_id


def query(dsn: str, sql: str):
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql).fetchone()[0]


def test_an_edit_in_one_instance_is_a_conflict_for_a_stale_edit_in_the_other_and_shows_in_its_today_view(instances):
    a_app, b_app, _, dsn = instances

    async def scenario():
        ana, ben = person(await Session.open(a_app.url), "ana"), person(await Session.open(b_app.url), "ben")
        for someone in (ana, ben):
            await someone.open_workspace("Orders")
        table, source, _ = ana._grid()
        await ana.session.act(ana.session.cell_edit(table, source, 0, "notes", "Ana, instance A"),
                              shows=": notes saved (version")
        table, source, _ = ben._grid()                      # Ben's page was read before Ana saved
        await ben.session.act(ben.session.cell_edit(table, source, 0, "notes", "Ben, instance B"),
                              shows="since you loaded it.")
        assert query(dsn, f"SELECT notes FROM retail360.orders WHERE order_id = {NEWEST}") == "Ana, instance A"

        # Ben watches Today in instance B while Ana gives today's newest order a discount in A.
        menu = next(m for m in ben.session.find_all("TabMenu") if "Today" in (m.attributes.get("items") or []))
        await ben.session.act(ben.session.tab_click(menu, 1), shows="Revenue today")
        discount = query(dsn, f"SELECT discount::float8 FROM retail360.orders WHERE order_id = {NEWEST}") + 1.0
        table, source, _ = ana._grid()
        await ana.session.act(ana.session.cell_edit(table, source, 0, "discount", discount),
                              shows=": discount saved (version")
        saved_at = time.perf_counter()
        revenue = query(dsn, "SELECT sum(total_amount)::float8 FROM retail360.orders WHERE created_at >= "
                             "date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'")
        await ben.session.shown(fmt.money(revenue), timeout=5)
        assert time.perf_counter() - saved_at < 2.0, "Ben's Today view showed Ana's change within 2 s"
        for someone in (ana, ben):
            await someone.session.close()
    run_async(scenario)


def test_questions_from_both_instances_stay_within_the_one_genie_budget(instances):
    a_app, b_app, workspace, _ = instances
    sent_before = len(workspace.calls_to(f"/api/2.0/genie/spaces/{SPACE_ID}/start-conversation", "POST"))

    async def scenario():
        people = [person(await Session.open(url), f"p{i}") for i, url in enumerate([a_app.url, a_app.url,
                                                                                     b_app.url, b_app.url])]
        for someone in people:
            await someone.open_workspace("Assistant")
        questions = [f"How many orders by status? (#{i})" for i in range(len(people))]
        await asyncio.gather(*(p.session.send(p.session.chat_send(p.session.find("ChatAreaInput"), q))
                               for p, q in zip(people, questions)))
        deadline = time.monotonic() + 30
        while sum(p.session.showing(ANSWERED) for p in people) < BUDGET and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        answered = [p for p in people if p.session.showing(ANSWERED)]
        waiting = [p for p in people if p.session.showing("Waiting for Genie") and p not in answered]
        for someone in people:
            await someone.session.close()
        return answered, waiting

    answered, waiting = run_async(scenario)
    sent = len(workspace.calls_to(f"/api/2.0/genie/spaces/{SPACE_ID}/start-conversation", "POST")) - sent_before
    assert sent == BUDGET, f"{sent} questions reached Genie within the minute; the app's budget is {BUDGET}"
    assert len(answered) == BUDGET and len(waiting) == 4 - BUDGET, "the others were told they wait for Genie"


def test_refresh_in_one_instance_makes_the_other_read_fresh_data(instances):
    a_app, b_app, _, dsn = instances
    quadrant = query(dsn, "SELECT quadrant FROM marketplace.city_investment ORDER BY estimated_revenue DESC LIMIT 1")

    def revenue_text() -> str:
        total = query(dsn, f"SELECT sum(estimated_revenue)::float8 FROM marketplace.city_investment "
                           f"WHERE quadrant = '{quadrant}'")
        return f"{fmt.money(total)[:-3]} revenue"

    async def opened(url: str, process: int) -> Session:
        """A session on B's process number `process` (the balancer places a session by its id)."""
        session = await Session.open(f"{url}/?bokeh-session-id={session_id_on(process, of=2)}")
        await session.quiet(0.5, deadline=time.perf_counter() + 10)
        return session

    async def scenario():
        before = revenue_text()
        readers = [await opened(b_app.url, n) for n in range(2)]        # one session on each of B's processes
        assert all(s.showing(before) for s in readers)
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute("UPDATE marketplace.city_investment SET estimated_revenue = estimated_revenue + 1000000 "
                          f"WHERE city = (SELECT city FROM marketplace.city_investment WHERE quadrant = '{quadrant}' "
                          "ORDER BY estimated_revenue DESC LIMIT 1)")
        after = revenue_text()
        cached = [await opened(b_app.url, n) for n in range(2)]
        assert all(s.showing(before) and not s.showing(after) for s in cached), "B serves its cached reads"
        ana = await Session.open(a_app.url)
        await ana.act(ana.click(ana.find("Button", label="Refresh data")), shows=after)
        await asyncio.sleep(2.0)
        fresh = [await opened(b_app.url, n) for n in range(2)]
        assert all(s.showing(after) for s in fresh), "after Refresh in A, every process of B reads afresh"
        for session in [*readers, *cached, ana, *fresh]:
            await session.close()
    run_async(scenario)


def test_who_has_an_order_open_in_one_instance_shows_in_the_other(instances):
    """Ben has the orders grid open in instance B (on each of its processes in turn); Ana opens the
    grid's first order in instance A, by its link: Ben's grid says so within 2 s."""
    a_app, b_app, _, dsn = instances
    order_id = query(dsn, f"SELECT {NEWEST}")

    async def scenario():
        for process in range(2):
            url = f"{b_app.url}/?workspace=orders&bokeh-session-id={session_id_on(process, of=2)}"
            ben = await Session.open(url, headers={"X-Forwarded-Email": "ben@example.com"})
            await ben.quiet(0.5, deadline=time.perf_counter() + 10)
            assert not ben.showing(f"ana{process}@example.com")
            ana = await Session.open(f"{a_app.url}/?workspace=orders&order={order_id}",
                                     headers={"X-Forwarded-Email": f"ana{process}@example.com"})
            opened = time.perf_counter()
            await ben.shown(f"ana{process}@example.com has #{order_id} open", timeout=5)
            assert time.perf_counter() - opened < 2.0
            for session in (ana, ben):
                await session.close()
    run_async(scenario)
