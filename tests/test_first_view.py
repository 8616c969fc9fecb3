"""The first view: the page a person opens arrives with its text, and its charts follow over the
socket once the browser has shown it (tests/bench/first_view.py measures how fast)."""
from __future__ import annotations

import asyncio

import pytest

from .helpers import plain_sql, run_async, serve_demo_copy
from .wire import Session

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory, pg, demo_template):
    with serve_demo_copy(tmp_path_factory.mktemp("first_view"), pg, demo_template, "first_view") as app:
        yield app


def texts(session: Session) -> str:
    return " ".join(str(m.attributes.get("text", "")) for m in session.models.values())


def placeholders_on_the_page(session: Session) -> int:
    """Placeholders some layout still holds (the session's index keeps models that left the page)."""
    held = {c.get("id") for m in session.models.values() for c in m.attributes.get("children") or []
            if isinstance(c, dict)}
    return sum(1 for m in session.find_all("HTML")
               if "Drawing the chart" in str(m.attributes.get("text", "")) and m.id in held)


def test_the_first_document_holds_the_cards_and_says_the_charts_are_coming(served):
    async def scenario():
        session = await Session.open(served.url, ready=False)
        try:
            first = texts(session)
            assert "Fix Conversion" in first and "Grow Demand" in first, "the overview's cards"
            assert placeholders_on_the_page(session) == 2, "a visible sign for each chart still to come"
            assert session.find_all("Figure") == []
            await session.act(session.report_ready(), shows="Conversion funnel: all cities",
                              done=lambda: len(session.find_all("Figure")) == 2)
            assert len(session.find_all("Figure")) == 2
            assert placeholders_on_the_page(session) == 0, "the placeholders are gone"
        finally:
            await session.close()
    run_async(scenario)


def test_views_opened_after_the_first_view_come_with_their_charts(served):
    async def scenario():
        session = await Session.open(served.url)
        try:
            await session.act([], done=lambda: len(session.find_all("Figure")) == 2)
            menu = next(m for m in session.find_all("TabMenu") if "Properties" in (m.attributes.get("items") or []))
            await session.act(session.tab_click(menu, 1), shows="Views vs conversion")
            assert "Drawing the chart" not in " ".join(raw for _, raw in session.received)
        finally:
            await session.close()
    run_async(scenario)


def test_people_opening_the_page_at_once_each_get_their_own_charts(served):
    """Several sessions building their charts at the same moment, one of them from a link with a
    bad value (a message on the page): each gets both charts, and the server reports no error."""
    async def person(url: str):
        session = await Session.open(url, ready=False)
        try:
            await session.act(session.report_ready(), done=lambda: len(session.find_all("Figure")) == 2, timeout=60)
            return len(session.find_all("Figure"))
        finally:
            await session.close()

    async def scenario():
        return await asyncio.gather(*(person(served.url + link) for link in ("", "/?city=Atlantis", "", "/?tab=x")))
    assert run_async(scenario) == [2, 2, 2, 2]
    logs = served.logs()
    assert "Traceback" not in logs and "Models must be owned" not in logs


def test_a_tab_clicked_while_the_page_is_still_drawing_opens(served, pg):
    """A person opens an order from a link and clicks its History tab before the browser has
    finished drawing the page (it has not reported the page ready): the history comes."""
    with plain_sql(pg, "first_view") as sql:
        order_id = sql("SELECT min(order_id) FROM retail360.orders")[0][0]

    async def scenario():
        session = await Session.open(f"{served.url}/?workspace=orders&order={order_id}", ready=False)
        try:
            menu = next(m for m in session.find_all("TabMenu") if m.attributes.get("items") == ["Details", "History"])
            await session.act(session.tab_click(menu, 1), shows="Every change", timeout=10)
        finally:
            await session.close()
    run_async(scenario)
