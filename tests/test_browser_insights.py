"""An analyst with the Assistant open in Chromium is told what changed: the demo's planted anomalies
when the page opens, and an anomaly planted in the orders by plain SQL as a new chat message within
a few seconds; asking about it asks Genie, and dismissing it says who did."""
from __future__ import annotations

import time

import pytest

from data.demo.marketplace import planted_anomaly_city

from .fake_workspace import SPACE_ID, FakeWorkspace
from .helpers import plain_sql, serve_demo_copy

pytestmark = [pytest.mark.browser, pytest.mark.slow]
DATABASE = "browser_insights"
EVERY = 2       # seconds between the watcher's runs


@pytest.fixture(scope="module")
def workspace(pg):
    with FakeWorkspace(query_dsn=pg.admin_dsn(DATABASE)) as ws:
        yield ws


@pytest.fixture(scope="module")
def served(tmp_path_factory, pg, demo_template, workspace):
    with serve_demo_copy(tmp_path_factory.mktemp("insights"), pg, demo_template, DATABASE, GENIE_SPACE_ID=SPACE_ID,
                         INSIGHTS_EVERY_SECONDS=str(EVERY), APP_PROCESSES="2", **workspace.env()) as app:
        yield app


def plant_orders_now(pg, count: int = 200) -> None:
    with plain_sql(pg, DATABASE) as run:
        run("""INSERT INTO retail360.orders (customer_id, items_subtotal, item_count, created_at, modified_at)
               SELECT (SELECT min(customer_id) FROM retail360.customers), 80, 1, t, t
               FROM (SELECT date_trunc('day', now()) + random() * (now() - date_trunc('day', now())) AS t
                     FROM generate_series(1, %s)) AS planted""", count)


def test_told_what_changed_then_asked_about_it_then_dismissed(served, page, pg, workspace):
    page.goto(f"{served.url}/?workspace=assistant", wait_until="networkidle")
    city = planted_anomaly_city()
    page.get_by_text(f"Conversion in {city} was").first.wait_for(timeout=15_000)
    page.get_by_text("Mobile completion this week").first.wait_for(timeout=5_000)

    planted = time.monotonic()
    plant_orders_now(pg)
    told = page.get_by_text("Orders so far today:").first
    told.wait_for(timeout=EVERY * 1000 + 10_000)
    print(f"planted anomaly to insight on screen: {time.monotonic() - planted:.1f} s (watcher every {EVERY} s)")
    page.get_by_text("New insight").first.wait_for()

    # Ask about it: the question goes to Genie in this chat.
    asked = len(workspace.calls_to(f"/api/2.0/genie/spaces/{SPACE_ID}/", "POST"))
    card = page.locator(".insight:visible", has_text="Orders so far today:").first
    card.get_by_role("button", name="Ask about this").click()
    page.get_by_text("Why is orders today higher than yesterday at this time?").first.wait_for(timeout=10_000)
    deadline = time.monotonic() + 20
    while len(workspace.calls_to(f"/api/2.0/genie/spaces/{SPACE_ID}/", "POST")) == asked and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(workspace.calls_to(f"/api/2.0/genie/spaces/{SPACE_ID}/", "POST")) > asked

    # Dismiss it in the Insights list: it leaves the list, and the list says who dismissed it.
    page.get_by_text("Insights", exact=True).first.click()
    listed = page.locator(".insight:visible", has_text="Orders so far today:")
    listed.first.wait_for(timeout=10_000)
    listed.first.get_by_role("button", name="Dismiss").click()
    page.wait_for_function("() => ![...document.querySelectorAll('*')].some(e => e.shadowRoot && "
                           "[...e.shadowRoot.querySelectorAll('.insight')].some(c => "
                           "c.textContent.includes('Orders so far today:')))", timeout=10_000)
    page.get_by_text("Show dismissed").click()
    page.get_by_text("Dismissed by").first.wait_for(timeout=10_000)
    with plain_sql(pg, DATABASE) as run:
        assert run("SELECT dismissed_by FROM app.insights WHERE rule = 'orders_pace' AND dismissed_at IS NOT NULL")
    assert page.console_errors == []
