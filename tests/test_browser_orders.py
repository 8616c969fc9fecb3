"""Operations staff edit orders in Chromium: a cell edit reaches the database, a bad value is
refused where they are looking, and a conflicting change is shown beside theirs and mine to choose."""
from __future__ import annotations

import getpass
import json
import re
import time

import pytest

from .helpers import plain_sql, serve_demo_copy

pytestmark = [pytest.mark.browser, pytest.mark.slow]
DATABASE = "browser_orders"


@pytest.fixture(scope="module")
def served(tmp_path_factory, pg, demo_template):
    with serve_demo_copy(tmp_path_factory.mktemp("orders"), pg, demo_template, DATABASE, ORDER_EDITORS="*") as app:
        yield app


@pytest.fixture
def sql(pg):
    with plain_sql(pg, DATABASE) as run:
        yield run


def pick(sql, status: str, offset: int) -> int:
    return sql("SELECT order_id FROM retail360.orders WHERE status = %s ORDER BY order_id OFFSET %s LIMIT 1",
               status, offset)[0][0]


def open_order_in_grid(page, served, order_id: int):
    page.goto(f"{served.url}/?workspace=orders&q=%23{order_id}", wait_until="networkidle")
    row = page.locator(".tabulator-row").first
    row.locator('.tabulator-cell[tabulator-field="order_id"]').get_by_text(f"#{order_id}").wait_for()
    return row


def edit(row, field: str, value: str) -> None:
    cell = row.locator(f'.tabulator-cell[tabulator-field="{field}"]')
    cell.click()
    cell.locator("input").fill(value)
    cell.locator("input").press("Enter")


def test_edit_a_cell_and_read_it_back_from_the_database(served, page, sql):
    order_id = pick(sql, "pending", 0)
    row = open_order_in_grid(page, served, order_id)
    edit(row, "notes", "Customer asked for gift wrap")
    page.get_by_text(f"Order {order_id}: notes saved (version").wait_for()
    # Signed in locally as the OS user who runs the app (no forwarded headers here).
    assert sql("SELECT notes, modified_by FROM retail360.orders WHERE order_id = %s", order_id) == \
        [("Customer asked for gift wrap", getpass.getuser())]
    assert sql("SELECT new_value FROM retail360.audit_log WHERE order_id = %s AND field = 'notes'", order_id) == \
        [("Customer asked for gift wrap",)]
    assert page.console_errors == []


def test_the_status_editor_offers_only_allowed_transitions(served, page, sql):
    order_id = pick(sql, "shipped", 0)
    row = open_order_in_grid(page, served, order_id)
    row.locator('.tabulator-cell[tabulator-field="status"]').click()
    options = page.locator(".tabulator-edit-list-item")
    options.first.wait_for()
    assert sorted(options.all_inner_texts()) == ["delivered", "returned", "shipped"]
    page.keyboard.press("Escape")


def test_an_invalid_edit_shows_why_and_leaves_the_database_unchanged(served, page, sql):
    order_id = pick(sql, "pending", 1)
    before = sql("SELECT shipping_address, version FROM retail360.orders WHERE order_id = %s", order_id)
    row = open_order_in_grid(page, served, order_id)
    edit(row, "shipping_address", "   ")
    page.get_by_text(f"Order {order_id}: Shipping address is required. Nothing was saved.").wait_for()
    cell = row.locator('.tabulator-cell[tabulator-field="shipping_address"]')
    page.wait_for_function("([el, text]) => el.innerText === text", arg=[cell.element_handle(), before[0][0]])
    assert sql("SELECT shipping_address, version FROM retail360.orders WHERE order_id = %s", order_id) == before


def test_a_conflicting_change_is_shown_and_can_be_re_applied(served, page, sql):
    order_id = pick(sql, "pending", 2)
    row = open_order_in_grid(page, served, order_id)
    sql("UPDATE retail360.orders SET notes = 'changed in psql' WHERE order_id = %s", order_id)
    edit(row, "notes", "my note")
    conflict = page.get_by_text(f"Order {order_id}: Notes changed by postgres (outside the app) since you loaded it")
    conflict.wait_for()
    page.get_by_text("changed in psql").first.wait_for()
    page.screenshot(path="tests/artifacts/conflict-chooser.png")
    assert sql("SELECT notes FROM retail360.orders WHERE order_id = %s", order_id) == [("changed in psql",)]
    page.get_by_role("button", name="Use mine").click()
    page.get_by_text(f"Order {order_id}: notes saved (version").wait_for()
    assert sql("SELECT notes FROM retail360.orders WHERE order_id = %s", order_id) == [("my note",)]


def test_a_link_opens_the_order_form(served, page, sql):
    order_id = pick(sql, "confirmed", 0)
    page.goto(f"{served.url}/?workspace=orders&order={order_id}", wait_until="networkidle")
    page.get_by_text(f"Order {order_id}", exact=True).first.wait_for()
    page.get_by_role("tab", name="History").click()       # at once, while the page may still be drawing
    page.get_by_text("Every change").wait_for()
    assert page.console_errors == []


def card_value(page, label: str) -> int:
    """The big number on the card with this label (cards live in shadow DOM: use Playwright locators)."""
    card = page.locator(".card").filter(has=page.locator(".label", has_text=re.compile(f"^{label}$")))
    return int(card.locator(".value").inner_text().replace(",", ""))


def test_today_updates_within_two_seconds_of_a_change_made_with_plain_sql(served, page, sql):
    page.goto(f"{served.url}/?workspace=orders&tab=today", wait_until="networkidle")
    page.locator(".label", has_text=re.compile("^Orders today$")).wait_for()
    before = card_value(page, "Orders today")
    customer = sql("SELECT customer_id FROM retail360.customers LIMIT 1")[0][0]
    sql("INSERT INTO retail360.orders (customer_id, status, items_subtotal, shipping_address) "
        "VALUES (%s, 'pending', 10, '1 Test Street')", customer)
    changed = time.monotonic()
    while card_value(page, "Orders today") != before + 1:
        assert time.monotonic() - changed < 2.0, "today's figures did not update within 2 s"
        page.wait_for_timeout(50)


def test_export_streams_the_filtered_orders_as_csv(served, sql):
    import csv
    import io
    import json

    import requests
    filters = json.dumps([["status", ["cancelled"]]])
    response = requests.get(f"{served.url}/orders/export.csv", params={"filters": filters}, timeout=30)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == sql("SELECT count(*) FROM retail360.orders WHERE status = 'cancelled'")[0][0]
    assert {r["status"] for r in rows} == {"cancelled"}
    for bad in ("[[\"password\", \"x\"]]", "not json", "[[\"total\", \"lots\"]]", "{\"a\": 1}", "[1, 2]"):
        refused = requests.get(f"{served.url}/orders/export.csv", params={"filters": bad}, timeout=30)
        assert refused.status_code == 400 and refused.json()["parameter"] == "filters", bad


@pytest.mark.parametrize("params, parameter, says", [
    ({"search": "ana\x00"}, "search", "control or invisible characters"),
    ({"search": "x" * 300}, "search", "characters long"),
    ({"filters": json.dumps([["customer", "a\x00b"]])}, "filters", "filter on customer contains control"),
    ({"filters": json.dumps([["status", 5]])}, "filters", "filter on status must be text"),
    ({"filters": json.dumps([["status", [5, 6]]])}, "filters", "filter on status must be text"),
    ({"filters": json.dumps([["customer", ["a", "b"]]])}, "filters", "filter on customer must be text"),
    ({"filters": json.dumps([["total", {"a": 1}]])}, "filters", "filter on total must be a number"),
    ({"filters": json.dumps([["total", "١٢"]])}, "filters", "not a number filter"),
    ({"filters": json.dumps([["created_at", 7]])}, "filters", "filter on created_at must be a day"),
])
def test_export_with_a_bad_search_or_filter_is_a_400_naming_it(served, params, parameter, says):
    import requests
    response = requests.get(f"{served.url}/orders/export.csv", params=params, timeout=30)
    assert response.status_code == 400 and response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["parameter"] == parameter and says in body["error"], body
