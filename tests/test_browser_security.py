"""Someone plants markup everywhere text comes from (a link, a customer's name, an order's note,
a product name, a city, a question, Genie's text, Claude's summary and follow-ups) and walks the
app in Chromium. Nothing runs, no planted element reaches the page, and the text shows as typed.
The page also carries a Content-Security-Policy that would stop inline script if markup slipped
through (checked separately, so each layer is tested on its own)."""
from __future__ import annotations

import json
from urllib.parse import quote

import psycopg
import pytest

from .fake_workspace import SPACE_ID, FakeWorkspace
from .helpers import serve_demo_copy

pytestmark = [pytest.mark.browser, pytest.mark.slow]
DATABASE = "browser_security"

IMG = '<img src=x onerror="window.__xss=(window.__xss||0)+1">'
SCRIPT = "<script>window.__xss=(window.__xss||0)+1</script>"
SVG = '<svg onload="window.__xss=(window.__xss||0)+1"></svg>'
LINK = "[open me](javascript:window.__xss=1)"

# Any element a planted payload would create, anywhere in the page and its shadow roots.
PLANTED_JS = """() => {
  const found = [];
  const visit = (root) => {
    for (const el of root.querySelectorAll('*')) {
      for (const attr of el.getAttributeNames())
        if (attr.startsWith('on')) found.push(el.tagName + ' ' + attr);
      if (el.tagName === 'IMG' && el.getAttribute('src') === 'x') found.push('img src=x');
      if (el.tagName === 'SCRIPT' && (el.textContent || '').includes('__xss')) found.push('script');
      if (el.tagName === 'A' && (el.getAttribute('href') || '').startsWith('javascript:')) found.push('a href');
      if (el.shadowRoot) visit(el.shadowRoot);
    }
  };
  visit(document);
  return found;
}"""


def prepare(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("UPDATE retail360.customers SET name = %s WHERE customer_id = "
                     "(SELECT customer_id FROM retail360.orders ORDER BY created_at DESC LIMIT 1)", (IMG,))
        conn.execute("UPDATE retail360.orders SET notes = %s, shipping_address = %s WHERE order_id = "
                     "(SELECT order_id FROM retail360.orders ORDER BY created_at DESC LIMIT 1)", (SCRIPT, LINK))
        conn.execute("UPDATE fashion_demo.productsdb SET product_display_name = %s WHERE product_id = "
                     "(SELECT min(product_id) FROM fashion_demo.productsdb)", (SVG,))
        top = conn.execute("SELECT city FROM marketplace.city_investment ORDER BY estimated_revenue DESC "
                           "LIMIT 1").fetchone()[0]
        for table in ("city_investment", "city_funnel", "device_diagnosis", "amenity_city_top"):
            conn.execute(f"UPDATE marketplace.{table} SET city = %s WHERE city = %s", (IMG, top))


@pytest.fixture(scope="module")
def workspace(pg):
    with FakeWorkspace(query_dsn=pg.admin_dsn(DATABASE)) as ws:
        ws.script("planted", text=f"Genie says {IMG} and {LINK}", suggested=(SCRIPT,))
        plain_reply = ws.claude_reply
        ws.claude_reply = lambda body: (f"**Summary** {SVG} {LINK}"
                                        if "Summarise" in json.dumps(body) else plain_reply(body))
        yield ws


@pytest.fixture(scope="module")
def served(tmp_path_factory, pg, demo_template, workspace):
    with serve_demo_copy(tmp_path_factory.mktemp("security"), pg, demo_template, DATABASE, prepare=prepare,
                         GENIE_SPACE_ID=SPACE_ID, ORDER_EDITORS="*", **workspace.env()) as app:
        yield app


def assert_nothing_planted(page) -> None:
    assert page.evaluate(PLANTED_JS) == []
    assert page.evaluate("window.__xss") is None


def test_a_crafted_link_shows_its_values_as_text(served, page):
    response = page.goto(f"{served.url}/?city={quote(IMG + '!')}&tab={quote(SCRIPT)}&{quote(SVG)}=1",
                         wait_until="networkidle")
    alert = page.get_by_role("alert").first
    alert.wait_for()
    said = alert.inner_text()
    assert f"The link asks for city '{IMG}!'" in said, said
    assert "The link has '<svg onload=" in said and "which this app does not read" in said
    assert "tab '<script>" in said
    assert_nothing_planted(page)
    assert page.console_errors == []
    policy = response.headers["content-security-policy"]
    assert "'nonce-" in policy and "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";")[0]


def test_stored_markup_in_orders_products_and_cities_shows_as_text(served, page):
    page.goto(f"{served.url}/", wait_until="networkidle")
    page.locator(".card .label", has_text="Protect").first.wait_for()
    page.get_by_text(IMG).first.wait_for()                    # the planted city in a quadrant card
    page.get_by_role("tab", name="Orders", exact=True).click()
    # In the grid's cells: the Marketplace's quadrant cards, hidden once Orders shows, name the city too.
    page.locator(".tabulator-cell").get_by_text(IMG).first.wait_for()     # the customer's name in the grid
    page.locator(".tabulator-cell").get_by_text(SCRIPT).first.wait_for()  # the order's note
    page.locator('.tabulator-cell[tabulator-field="order_id"]').first.click()
    page.get_by_role("dialog").wait_for()
    assert page.get_by_role("dialog").get_by_label("Customer name").input_value() == IMG
    assert_nothing_planted(page)
    page.goto(f"{served.url}/?workspace=catalog", wait_until="networkidle")
    page.get_by_text(SVG).first.wait_for()                    # the product's name on its card
    assert_nothing_planted(page)
    assert page.console_errors == []


def test_questions_and_model_answers_show_as_text(served, page):
    page.goto(f"{served.url}/?workspace=assistant", wait_until="networkidle")
    box = page.get_by_placeholder("Ask about cities, orders or products")
    box.fill(f"planted {IMG}")
    box.press("Enter")
    page.get_by_text(f"planted {IMG}").first.wait_for()                    # the person's own question
    page.get_by_text(f"Genie says {IMG} and").wait_for(timeout=20_000)     # Genie's text
    page.get_by_text("open me").first.wait_for()                          # a link's words, not a link
    page.get_by_role("button", name=SCRIPT).wait_for(timeout=10_000)      # a follow-up from Genie
    page.get_by_text(SVG).first.wait_for(timeout=10_000)                  # Claude's summary
    assert page.locator("strong", has_text="Summary").count() >= 1, "Claude's Markdown keeps its formatting"
    box.fill("/sql SELECT notes, customer_id FROM retail360.orders WHERE notes LIKE '%__xss%'")
    box.press("Enter")
    page.locator("table.result td", has_text=SCRIPT).first.wait_for(timeout=10_000)
    assert_nothing_planted(page)
    assert page.console_errors == []
