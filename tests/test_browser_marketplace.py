"""An analyst explores the Marketplace workspace in Chromium."""
from __future__ import annotations


import pytest

from .helpers import chart_titles, serve_demo_copy, wait_for_chart

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def served(tmp_path_factory, pg, demo_template):
    with serve_demo_copy(tmp_path_factory.mktemp("marketplace"), pg, demo_template, "browser_marketplace") as app:
        yield app


def choose_city(page, city: str) -> None:
    box = page.get_by_role("combobox", name="City")
    box.click()
    box.fill(city)
    page.get_by_role("option", name=city, exact=True).click()


def test_changing_the_city_changes_the_funnel_and_the_properties_table(served, page):
    page.goto(served.url, wait_until="networkidle")
    wait_for_chart(page, "^Conversion funnel: all cities, last quarter$")
    choose_city(page, "Agra")
    wait_for_chart(page, "^Conversion funnel: Agra, last quarter$")
    assert "city=Agra" in page.url, "the link carries the city"
    page.get_by_role("tab", name="Properties").click()
    wait_for_chart(page, "^Views vs conversion: Agra")
    cells = page.locator('.tabulator-cell[tabulator-field="city"]')
    cells.first.wait_for()
    assert set(cells.all_inner_texts()) == {"Agra"}
    choose_city(page, "Phuket")
    wait_for_chart(page, "^Views vs conversion: Phuket")
    page.wait_for_function("() => [...document.querySelectorAll('.tabulator-cell[tabulator-field=\"city\"]')]"
                           ".every(c => c.innerText === 'Phuket')")
    assert page.console_errors == []


def test_a_shared_link_opens_the_same_view(served, page):
    page.goto(served.url + "/?tab=amenities&city=Phuket&type=Summer+Getaway", wait_until="networkidle")
    wait_for_chart(page, "^Confirmation lift by amenity: Phuket, summer getaway$")
    page.get_by_text("Top 3 amenities per city").wait_for()
    assert page.console_errors == []


def test_unknown_values_in_the_link_give_a_message_and_the_default_view(served, page):
    page.goto(served.url + "/?city=Atlantis%27%3B--&tab=nowhere", wait_until="networkidle")
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "The link asks for city 'Atlantis';--', which does not exist here; showing the default." in alert.inner_text()
    assert "The link asks for tab 'nowhere'" in alert.inner_text()
    wait_for_chart(page, "^Conversion funnel: all cities, last quarter$")
    assert page.console_errors == []


def test_coming_back_from_another_workspace_keeps_the_city_in_the_charts(served, page):
    page.goto(served.url, wait_until="networkidle")
    wait_for_chart(page, "^Conversion funnel: all cities, last quarter$")
    choose_city(page, "Agra")
    wait_for_chart(page, "^Conversion funnel: Agra, last quarter$")
    page.get_by_role("tab", name="Orders", exact=True).click()
    page.locator('.tabulator-cell[tabulator-field="order_id"]').first.wait_for()
    page.get_by_role("tab", name="Marketplace", exact=True).click()
    page.wait_for_timeout(1500)
    funnels = [t for t in chart_titles(page) if t.startswith("Conversion funnel")]
    assert funnels and all(t == "Conversion funnel: Agra, last quarter" for t in funnels), funnels
