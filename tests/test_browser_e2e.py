"""End to end: one person walks every workspace's main path in Chromium, in one session, against
a served app with Genie and Claude on the fake workspace. A failure leaves a screenshot in
tests/artifacts/ (the `page` fixture)."""
from __future__ import annotations

import re

import pytest

from .fake_workspace import SPACE_ID, FakeWorkspace
from .helpers import serve_demo_copy, wait_for_chart

pytestmark = [pytest.mark.browser, pytest.mark.slow]
DATABASE = "browser_e2e"


@pytest.fixture(scope="module")
def served(tmp_path_factory, pg, demo_template):
    with FakeWorkspace(query_dsn=pg.admin_dsn(DATABASE)) as ws:
        with serve_demo_copy(tmp_path_factory.mktemp("e2e"), pg, demo_template, DATABASE, ORDER_EDITORS="*",
                             GENIE_SPACE_ID=SPACE_ID, **ws.env()) as app:
            yield app


def open_workspace(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def test_every_workspace_main_path(served, page):
    page.goto(served.url, wait_until="networkidle")
    # Marketplace: the funnel chart is drawn; the Properties tab shows its table.
    wait_for_chart(page, "^Conversion funnel: all cities, last quarter$")
    page.get_by_role("tab", name="Properties").click()
    page.locator('.tabulator-cell[tabulator-field="name"]').first.wait_for()

    # Orders: the grid holds a page of orders; the Today tab shows today's figures.
    open_workspace(page, "Orders")
    page.locator('.tabulator-cell[tabulator-field="order_id"]').first.wait_for()
    assert "workspace=orders" in page.url
    page.get_by_role("tab", name="Today").click()
    page.locator(".label", has_text=re.compile("^Orders today$")).wait_for()

    # Catalog: product cards; opening one shows its similar products.
    open_workspace(page, "Catalog")
    page.get_by_role("button", name="Similar items").first.click()
    page.get_by_text("Similar products (by image embedding").wait_for()
    page.get_by_text("distance 0.").first.wait_for()

    # Assistant: a question answered by Genie with a table and a summary.
    open_workspace(page, "Assistant")
    box = page.get_by_placeholder("Ask about cities, orders or products")
    box.fill("Which cities have the most viewers?")
    box.press("Enter")
    page.get_by_text("10 rows · Genie").wait_for(timeout=20_000)
    page.get_by_text("Summary: the result has 10 rows").wait_for(timeout=10_000)

    # System: live figures, including the queries this walk made.
    open_workspace(page, "System")
    page.get_by_text("Connection pool").wait_for()
    page.get_by_text("catalog_page").first.wait_for(timeout=10_000)
    assert page.console_errors == []
