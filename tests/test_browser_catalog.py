"""An analyst browses the fashion catalog in Chromium: filters, pages, opens a product and sees
the products that look most like it."""
from __future__ import annotations

import os

import pytest

from .conftest import ARTIFACTS
from .helpers import serve_demo_copy

pytestmark = [pytest.mark.browser, pytest.mark.slow]
DATABASE = "browser_catalog"


@pytest.fixture(scope="module")
def served(tmp_path_factory, pg, demo_template):
    with serve_demo_copy(tmp_path_factory.mktemp("catalog"), pg, demo_template, DATABASE) as app:
        yield app


def screenshot(page, name: str) -> None:
    if os.environ.get("SCREENSHOTS"):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_filter_page_and_open_a_product_with_its_similar_products(served, page, pg):
    import psycopg
    with psycopg.connect(pg.admin_dsn(DATABASE)) as conn:
        ties = conn.execute("SELECT count(*) FROM fashion_demo.productsdb WHERE article_type = 'Ties'").fetchone()[0]
    page.goto(f"{served.url}/?workspace=catalog", wait_until="networkidle")
    page.get_by_text("Similar items").first.wait_for()
    article = page.get_by_role("combobox", name="Article type")
    article.click()
    page.get_by_text(f"Ties ({ties:,})", exact=True).click()
    page.get_by_text(f"{ties:,} products").wait_for()
    page.mouse.click(1390, 450)                 # outside the open menu: closes it, as a person would
    page.get_by_role("button", name="Go to page 2").click()
    page.get_by_text("25–48").wait_for()
    screenshot(page, "catalog_browse")
    page.get_by_role("button", name="Similar items").first.click()
    page.get_by_text("Similar products (by image embedding").wait_for()
    page.get_by_text("distance 0.").first.wait_for()
    assert page.get_by_text("distance 0.").count() == 12
    screenshot(page, "catalog_product")
    assert page.console_errors == []


def test_a_link_opens_a_product_with_its_similar_products(served, page):
    page.goto(f"{served.url}/?workspace=catalog&product=10001", wait_until="networkidle")
    page.get_by_text("Similar products (by image embedding").wait_for()
    assert page.get_by_text("10001", exact=True).count() == 1
    assert page.get_by_text("distance 0.").count() == 12
    assert page.console_errors == []
